// The Stratus dashboard: a login, then the project's pages, every call to the
// public OpenStack APIs with the session's token (api.ts), live through the
// resource event stream (events.ts).
import './app.css';
import { render, type ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { hasService, isAdmin, logout, myProjects, onSession, resume, session, switchProject, type Project } from './api.ts';
import { onStreamState, restartStream } from './events.ts';
import { match, navigate, useLocation } from './router.ts';
import { Login } from './pages/login.tsx';
import { Overview } from './pages/overview.tsx';
import { ServerList } from './pages/servers.tsx';
import { ErrorNote, Loading, errorText } from './ui.tsx';

/**
 * A page loaded when first opened: its module is a chunk of its own, so the
 * first page (login, overview, servers) downloads only what it shows.
 */
function lazy<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  return function LazyPage(props: P) {
    const [Page, setPage] = useState<ComponentType<P> | null>(() => loaded);
    const [error, setError] = useState<string | null>(null);
    useEffect(() => {
      if (Page) return;
      load().then((c) => {
        loaded = c;
        setPage(() => c);
      }, (err: unknown) => setError(errorText(err)));
    }, []);
    if (error) return <ErrorNote error={`This page could not be loaded: ${error}`} />;
    return Page ? <Page {...props} /> : <Loading what="the page" />;
  };
}

const ServerDetail = lazy(() => import('./pages/server-detail.tsx').then((m) => m.ServerDetail));
const LaunchServer = lazy(() => import('./pages/launch.tsx').then((m) => m.LaunchServer));
const Images = lazy(() => import('./pages/images.tsx').then((m) => m.Images));
const ImageDetail = lazy(() => import('./pages/images.tsx').then((m) => m.ImageDetail));
const Networks = lazy(() => import('./pages/networks.tsx').then((m) => m.Networks));
const Volumes = lazy(() => import('./pages/volumes.tsx').then((m) => m.Volumes));
const Baremetal = lazy(() => import('./pages/baremetal.tsx').then((m) => m.Baremetal));
const BaremetalNode = lazy(() => import('./pages/baremetal.tsx').then((m) => m.BaremetalNode));
const Identity = lazy(() => import('./pages/identity.tsx').then((m) => m.Identity));
const Objects = lazy(() => import('./pages/objects.tsx').then((m) => m.Objects));

/** The pages, each shown when the cloud has its service and the caller may use it (bare metal: admins; identity: everyone, its admin tabs to admins). */
const NAV: Array<[string, string, () => boolean]> = [
  ['/', 'Overview', () => true], ['/servers', 'Servers', () => hasService('compute')], ['/images', 'Images', () => hasService('image')],
  ['/networks', 'Networks', () => hasService('network')], ['/volumes', 'Volumes', () => hasService('block-storage')],
  ['/objects', 'Object storage', () => hasService('object-store')],
  ['/baremetal', 'Bare metal', () => isAdmin() && hasService('baremetal')],
  ['/identity', 'Identity', () => true],
];

function Routes() {
  const { path, query } = useLocation();
  let m: Record<string, string> | null;
  if (path === '/') return <Overview />;
  if (path === '/servers') return <ServerList query={query} />;
  if (path === '/servers/new') return <LaunchServer />;
  if ((m = match('/servers/:id', path))) return <ServerDetail id={m.id!} />;
  if (path === '/images') return <Images />;
  if ((m = match('/images/:id', path))) return <ImageDetail id={m.id!} />;
  if (path === '/networks') return <Networks tab={query.get('tab') ?? 'networks'} />;
  if (path === '/baremetal') return <Baremetal />;
  if ((m = match('/baremetal/:id', path))) return <BaremetalNode id={m.id!} />;
  if (path === '/identity') return <Identity tab={query.get('tab') ?? 'appcreds'} />;
  if (path === '/objects') return <Objects query={query} />;
  if (path === '/volumes') return <Volumes tab={query.get('tab') ?? 'volumes'} query={query} />;
  return <section class="page"><h1>Not found</h1><p>No page at {path}.</p><a href="#/">Overview</a></section>;
}

function ProjectSwitcher() {
  const s = session()!;
  const [projects, setProjects] = useState<Project[]>(s.project ? [s.project] : []);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    myProjects().then(setProjects, () => undefined);
  }, [s.unscoped]);
  if (!s.unscoped) return <span class="project">{s.project?.name ?? 'no project'}</span>;
  return (
    <label class="project">
      <span class="sr-only">Project</span>
      <select value={s.project?.id ?? ''} onChange={async (e) => {
        try {
          await switchProject(e.currentTarget.value);
          navigate('/');
        } catch (err) {
          setError(errorText(err));
        }
      }}>
        {!s.project && <option value="">(no project)</option>}
        {projects.map((p) => <option value={p.id} key={p.id}>{p.name}</option>)}
      </select>
      {error && <span class="error" role="alert">{error}</span>}
    </label>
  );
}

function Shell() {
  const s = session()!;
  const { path } = useLocation();
  const [live, setLive] = useState(false);
  useEffect(() => onStreamState(setLive), []);
  const section = '/' + (path.split('/')[1] ?? '');
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <header class="top">
        <a class="brand" href="#/">Stratus</a>
        <nav aria-label="Main">
          <ul>
            {NAV.filter(([, , show]) => show()).map(([to, label]) => <li key={to}><a href={`#${to}`} aria-current={section === to ? 'page' : undefined}>{label}</a></li>)}
          </ul>
        </nav>
        <div class="who">
          <span class={`live ${live ? 'on' : 'off'}`} title={live ? 'Live updates on' : 'Live updates reconnecting'}>
            <span class="sr-only">{live ? 'Live updates on' : 'Live updates off'}</span>
          </span>
          <ProjectSwitcher />
          <span class="user">{s.user.name}</span>
          <button type="button" onClick={() => void logout()}>Log out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes key={s.token} />
      </main>
    </>
  );
}

function App() {
  const [, setN] = useState(0);
  const [ready, setReady] = useState(false);
  useEffect(() => {
    const off = onSession(() => {
      restartStream();
      setN((n) => n + 1);
    });
    resume().finally(() => setReady(true));
    return off;
  }, []);
  if (!ready) return <p class="muted">Loading…</p>;
  return session() ? <Shell /> : <Login />;
}

render(<App />, document.getElementById('app')!);
