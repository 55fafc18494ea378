// Who is signed in. The session itself is an HttpOnly cookie the page cannot read; the CSRF value
// comes back from sign-in or /v1/whoami and is kept in memory only (never localStorage or a URL).
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, get, HttpError, setCsrf, whenSignedOut } from './api';
import type { TeamRole } from './model';

export interface Me {
  name: string;
  role: string;
  user?: string;
  teams?: { team: string; role: TeamRole }[];
  csrf?: string;
}

interface Session {
  me: Me | null | undefined; // undefined: still asking
  signIn(user: string, password: string): Promise<void>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const refresh = useCallback(async () => {
    try {
      const who = await get<Me>('/v1/whoami');
      setCsrf(who.csrf);
      setMe(who);
    } catch (err) {
      if (!(err instanceof HttpError) || err.status !== 401) console.error(err);
      setCsrf(undefined);
      setMe(null);
    }
  }, []);
  useEffect(() => {
    whenSignedOut(() => {
      setCsrf(undefined);
      setMe(null);
    });
    void refresh();
  }, [refresh]);
  const signIn = useCallback(
    async (user: string, password: string) => {
      const answer = await api<{ csrf?: string }>('POST', '/v1/login', { user, password, session: 'cookie' });
      setCsrf(answer.csrf);
      await refresh();
    },
    [refresh],
  );
  const signOut = useCallback(async () => {
    try {
      await api('POST', '/v1/logout', {});
    } finally {
      setCsrf(undefined);
      setMe(null);
      canCache.clear();
    }
  }, []);
  return <SessionContext.Provider value={{ me, signIn, signOut }}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}

const canCache = new Map<string, Promise<boolean>>();

/**
 * Whether the signed-in caller may `verb` `resource` (e.g. "write", "app/shop"), from the server's
 * own policy (/v1/auth/can-i): buttons a role may not use are not shown. undefined while asking.
 */
export function useCan(verb: string, resource: string): boolean | undefined {
  const key = `${verb} ${resource}`;
  const [allowed, setAllowed] = useState<boolean | undefined>(undefined);
  useEffect(() => {
    let live = true;
    let asked = canCache.get(key);
    if (!asked) {
      asked = get<{ allowed: boolean }>(`/v1/auth/can-i?verb=${encodeURIComponent(verb)}&resource=${encodeURIComponent(resource)}`).then(
        (a) => a.allowed,
        () => false,
      );
      canCache.set(key, asked);
    }
    void asked.then((a) => live && setAllowed(a));
    return () => {
      live = false;
    };
  }, [key, verb, resource]);
  return allowed;
}
