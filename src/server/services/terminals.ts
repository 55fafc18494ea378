// Open terminal sessions on this server: how many each caller holds (capped), which sign-in
// session opened each (a logout closes them), which instance each is in (its removal closes
// them), and the audit entry each leaves: who, which instance, from when to when, bytes each way.
import { createHash } from 'node:crypto';
import type { ClusterState } from '../state.js';
import type { AuditLog } from './audit.js';
import type { AuditRecord } from '../../model/types.js';
import { MAX_TERMINALS_PER_CALLER } from '../../model/terminal.js';

export const TERMINAL_ROUTE = '/v1/instances/:id/exec';

/** One open session, as the route reports on it. */
export interface OpenTerminal {
  instance: string;
  /** Counted by the route: characters typed, characters printed. */
  bytesIn: number;
  bytesOut: number;
  /** Ends it (the route closes the socket and the shell). */
  end(reason: string): void;
}

interface Held extends OpenTerminal {
  caller: string;
  credential: string;
  startedAt: number;
  base: Omit<AuditRecord, 'time' | 'summary' | 'status' | 'outcome' | 'ms'>;
}

export class TooManyTerminals extends Error {
  readonly statusCode = 429;
}

export class TerminalSessions {
  private readonly open = new Set<Held>();
  private readonly unsubscribe: () => void;

  constructor(
    state: ClusterState,
    private readonly audit: AuditLog,
  ) {
    // A removed instance takes its terminals with it (its shell may linger a moment in a dying container).
    this.unsubscribe = state.onChange((kind) => {
      if (kind !== 'instance') return;
      for (const session of this.open) {
        const instance = state.instances.get(session.instance);
        if (!instance || instance.desired === 'removed') session.end(`instance ${session.instance} was removed`);
      }
    });
  }

  /** Throws TooManyTerminals when the caller holds the most it may. */
  checkRoom(caller: string): void {
    const mine = [...this.open].filter((s) => s.caller === caller).length;
    if (mine >= MAX_TERMINALS_PER_CALLER) throw new TooManyTerminals(`${caller} has ${mine} terminals open, the most one may; close some first`);
  }

  /** Counts a session in and audits its start; returns the function that ends its record. */
  begin(session: OpenTerminal, who: { caller: string; credential: string; base: Held['base'] }): (outcome: string) => void {
    const held: Held = Object.assign(session, { caller: who.caller, credential: fingerprint(who.credential), startedAt: Date.now(), base: who.base });
    this.open.add(held);
    this.record(held, `terminal opened in ${held.instance}`, 0);
    let done = false;
    return (outcome) => {
      if (done) return;
      done = true;
      this.open.delete(held);
      this.record(held, `terminal in ${held.instance} ${outcome}; ${held.bytesIn} bytes in, ${held.bytesOut} bytes out, from ${new Date(held.startedAt).toISOString()}`, Date.now() - held.startedAt);
    };
  }

  /** A sign-in session ended (logout): its terminals end too. */
  endSignedIn(token: string): number {
    const print = fingerprint(token);
    let ended = 0;
    for (const session of this.open) {
      if (session.credential !== print) continue;
      session.end('signed out');
      ended++;
    }
    return ended;
  }

  /** A user's password or role changed, or they were removed: their terminals end with their sessions. */
  endUser(user: string, reason: string): void {
    for (const session of this.open) if (session.caller === user) session.end(reason);
  }

  close(): void {
    this.unsubscribe();
    for (const session of this.open) session.end('the server is stopping');
  }

  private record(session: Held, summary: string, ms: number): void {
    this.audit.append({ ...session.base, time: Date.now(), summary, status: 101, outcome: 'ok', ms });
  }
}

/** Sessions are matched to their sign-in by a hash of its token: the token itself is not kept. */
function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
