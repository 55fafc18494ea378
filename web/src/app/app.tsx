// The layout (header, nav, theme toggle, sign-out) and the route table.
import { useState, type ReactNode } from 'react';
import { Link, match, useLocation } from '../lib/router';
import { useCan, useSession } from '../lib/session';
import { applyTheme, initialTheme, type Theme } from '../lib/theme';
import { SignIn } from '../pages/sign-in';
import { Overview } from '../pages/overview';
import { AppPage } from '../pages/app/app-page';
import { NodesPage } from '../pages/nodes';
import { EventsPage } from '../pages/events';
import { AuditPage } from '../pages/audit';
import { DeployPage } from '../pages/deploy';

const ROUTES: [string, (params: Record<string, string>) => ReactNode][] = [
  ['/', () => <Overview />],
  ['/deploy', () => <DeployPage />],
  ['/apps/:app', (p) => <AppPage key={p.app} app={p.app!} tab="instances" />],
  ['/apps/:app/:tab', (p) => <AppPage key={p.app} app={p.app!} tab={p.tab!} />],
  ['/apps/:app/instances/:id', (p) => <AppPage key={p.app} app={p.app!} tab="instance" instance={p.id!} />],
  ['/nodes', () => <NodesPage />],
  ['/events', () => <EventsPage />],
  ['/audit', () => <AuditPage />],
];

/** Nav links, each with what the caller must be allowed to see it (the pages for admins and operators). */
const NAV: [string, string, [string, string]?][] = [
  ['/', 'Overview'],
  ['/nodes', 'Nodes', ['read', 'node']],
  ['/events', 'Events'],
  ['/audit', 'Audit', ['read', 'audit']],
  ['/deploy', 'Deploy'],
];

export function App() {
  const { me } = useSession();
  const { path } = useLocation();
  if (me === undefined) return <p className="loading">Loading…</p>;
  if (me === null) return <SignIn />;
  let page: ReactNode = <NotFound />;
  for (const [pattern, render] of ROUTES) {
    const params = match(pattern, path);
    if (params) {
      page = render(params);
      break;
    }
  }
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <Header path={path} />
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

function Header({ path }: { path: string }) {
  const { me, signOut } = useSession();
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const toggle = () => {
    const next = theme === 'dark' ? 'light' : 'dark';
    applyTheme(next, true);
    setTheme(next);
  };
  const current = (to: string) => (to === '/' ? path === '/' || path.startsWith('/apps/') : path.startsWith(to));
  return (
    <header className="top">
      <Link to="/" className="brand">
        Gantry
      </Link>
      <nav aria-label="Main">
        {NAV.map(([to, label, needs]) => (
          <NavLink key={to} to={to} label={label} needs={needs} current={current(to)} />
        ))}
      </nav>
      <div className="who">
        <span title={`role: ${me?.role}`}>
          {me?.name} <small>({me?.role})</small>
        </span>
        <button type="button" className="ghost" onClick={toggle} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
          {theme === 'dark' ? '☀' : '☾'}
        </button>
        <button type="button" className="ghost" onClick={() => void signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function NavLink({ to, label, needs, current }: { to: string; label: string; needs?: [string, string]; current: boolean }) {
  const allowed = useCan(needs?.[0] ?? 'read', needs?.[1] ?? 'app');
  if (needs && allowed !== true) return null;
  return (
    <Link to={to} aria-current={current ? 'page' : undefined}>
      {label}
    </Link>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        Nothing here. <Link to="/">Back to the overview</Link>.
      </p>
    </section>
  );
}
