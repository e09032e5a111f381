// The session and the calls to Stratus's public APIs: the same OpenStack APIs
// every client uses, with the token in X-Auth-Token, at the endpoints the
// token's service catalog names. The token lives in this tab's memory and in
// sessionStorage (so a reload keeps the session); never in localStorage or a
// cookie, so no request is authenticated by the browser on its own (no CSRF).

export interface CatalogEndpoint { interface: string; url: string; region?: string }
export interface CatalogEntry { type: string; name: string; endpoints: CatalogEndpoint[] }
export interface Project { id: string; name: string; domain?: { id: string; name: string } }

export interface Session {
  /** The project-scoped token every call carries. */
  token: string;
  /** The unscoped token of a password login, which rescopes to the user's other projects. */
  unscoped: string | null;
  user: { id: string; name: string; domain: { id: string; name: string } };
  project: Project | null;
  roles: string[];
  catalog: CatalogEntry[];
  expiresAt: string;
  /** Logged in with an application credential: bound to its project. */
  appCredential: boolean;
}

const KEY = 'stratus.session';
let current: Session | null = null;
const watchers = new Set<() => void>();

export const session = (): Session | null => current;
export function onSession(fn: () => void): () => void {
  watchers.add(fn);
  return () => watchers.delete(fn);
}
function setSession(s: Session | null): void {
  current = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify({ token: s.token, unscoped: s.unscoped, appCredential: s.appCredential }));
  else sessionStorage.removeItem(KEY);
  for (const w of watchers) w();
}

export class ApiError extends Error {
  status: number;
  body: unknown;
  constructor(status: number, message: string, body: unknown) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** The message in an OpenStack error body, whatever the service's envelope. */
export function errorMessage(body: unknown, status: number): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, any>;
    // Ironic: {"error_message": "<JSON with faultstring>"}
    if (typeof b.error_message === 'string') {
      try {
        const e = JSON.parse(b.error_message);
        if (typeof e?.faultstring === 'string') return e.faultstring;
      } catch {
        return b.error_message;
      }
    }
    const inner = b.error ?? b.NeutronError ?? b.badRequest ?? b.itemNotFound ?? b.forbidden ?? b.conflictingRequest ?? b.overLimit ?? b.computeFault ?? Object.values(b)[0];
    if (inner && typeof inner === 'object' && typeof inner.message === 'string') return inner.message;
    if (typeof b.message === 'string') return b.message;
  }
  if (typeof body === 'string' && body.trim()) return body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
  return `HTTP ${status}`;
}

/**
 * An endpoint's URL from the catalog. The dashboard is served by the same
 * server as the APIs, so a catalog URL naming another host name for this
 * server (the public URL behind a proxy) is taken on this page's origin: the
 * Content-Security-Policy allows connections to it alone.
 */
export function endpoint(type: string): string {
  const s = current;
  const entry = s?.catalog.find((e) => e.type === type);
  const ep = entry?.endpoints.find((e) => e.interface === 'public') ?? entry?.endpoints[0];
  if (!ep) throw new ApiError(0, `The cloud has no ${type} service in its catalog.`, null);
  const u = new URL(ep.url, location.href);
  return `${location.origin}${u.pathname.replace(/\/$/, '')}`;
}

export const hasService = (type: string): boolean => !!current?.catalog.some((e) => e.type === type);

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  token?: string | null;
  raw?: BodyInit;
}

/** A call to a service (by catalog type) or an absolute path; JSON in and out; a non-2xx is an ApiError. */
export async function call<T = any>(method: string, service: string | null, path: string, o: CallOptions = {}): Promise<{ status: number; body: T; headers: Headers }> {
  const url = service ? `${endpoint(service)}${path}` : path;
  const headers: Record<string, string> = { Accept: 'application/json', ...o.headers };
  const token = o.token === undefined ? current?.token : o.token;
  if (token) headers['X-Auth-Token'] = token;
  if (service === 'compute') headers['X-OpenStack-Nova-API-Version'] ??= '2.79';
  if (service === 'volumev3' || service === 'block-storage') headers['OpenStack-API-Version'] ??= 'volume 3.59';
  let body: BodyInit | undefined = o.raw;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['Content-Type'] ??= 'application/json';
  }
  const r = await fetch(url, { method, headers, body, credentials: 'omit', cache: 'no-store' });
  const text = await r.text();
  let parsed: unknown = text;
  if ((r.headers.get('content-type') ?? '').includes('json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch { /* left as text */ }
  }
  if (r.status === 401 && current && token === current.token) {
    setSession(null);
  }
  if (!r.ok) throw new ApiError(r.status, errorMessage(parsed, r.status), parsed);
  return { status: r.status, body: parsed as T, headers: r.headers };
}

export const IDENTITY = '/identity/v3';

/** Calls Keystone v3 with the session's token (or `token`). */
export const keystone = <T = any>(method: string, path: string, body?: unknown, token?: string) =>
  call<T>(method, null, `${IDENTITY}${path}`, { ...(body === undefined ? {} : { body }), ...(token ? { token } : {}) });

async function issue(auth: unknown): Promise<{ token: string; body: any }> {
  const r = await call('POST', null, `${IDENTITY}/auth/tokens`, { body: { auth }, token: null });
  return { token: r.headers.get('x-subject-token')!, body: r.body.token };
}

function sessionOf(token: string, unscoped: string | null, t: any, appCredential: boolean): Session {
  return {
    token, unscoped, appCredential,
    user: t.user, project: t.project ?? null, roles: (t.roles ?? []).map((r: { name: string }) => r.name),
    catalog: t.catalog ?? [], expiresAt: t.expires_at,
  };
}

/** The projects the user may scope to (GET /v3/auth/projects with the unscoped token). */
export async function myProjects(): Promise<Project[]> {
  const s = current;
  if (!s) return [];
  if (!s.unscoped) return s.project ? [s.project] : [];
  const r = await call('GET', null, `${IDENTITY}/auth/projects`, { token: s.unscoped });
  return (r.body.projects as Project[]).sort((a, b) => a.name.localeCompare(b.name));
}

/** A token of the unscoped one rescoped to `projectId`; the old scoped token is revoked. */
export async function switchProject(projectId: string): Promise<void> {
  const s = current;
  if (!s?.unscoped) throw new ApiError(0, 'This login cannot change project.', null);
  const { token, body } = await issue({ identity: { methods: ['token'], token: { id: s.unscoped } }, scope: { project: { id: projectId } } });
  const old = s.token;
  sessionStorage.setItem('stratus.project', projectId);
  setSession(sessionOf(token, s.unscoped, body, false));
  if (old !== s.unscoped) await revoke(old).catch(() => undefined);
}

export async function loginPassword(domain: string, user: string, password: string): Promise<void> {
  const d = /^[0-9a-f]{32}$/.test(domain) ? { id: domain } : { name: domain || 'Default' };
  const { token: unscoped } = await issue({ identity: { methods: ['password'], password: { user: { name: user, domain: d, password } } } });
  current = { token: unscoped, unscoped, user: { id: '', name: user, domain: { id: '', name: '' } }, project: null, roles: [], catalog: [], expiresAt: '', appCredential: false };
  let projects: Project[] = [];
  try {
    projects = await myProjects();
  } catch { /* none listed */ }
  const remembered = sessionStorage.getItem('stratus.project');
  const pick = projects.find((p) => p.id === remembered) ?? projects[0];
  if (!pick) {
    const v = await call('GET', null, `${IDENTITY}/auth/tokens`, { token: unscoped, headers: { 'X-Subject-Token': unscoped } });
    setSession(sessionOf(unscoped, unscoped, v.body.token, false));
    return;
  }
  const { token, body } = await issue({ identity: { methods: ['token'], token: { id: unscoped } }, scope: { project: { id: pick.id } } });
  setSession(sessionOf(token, unscoped, body, false));
}

export async function loginAppCredential(id: string, secret: string): Promise<void> {
  const { token, body } = await issue({ identity: { methods: ['application_credential'], application_credential: { id, secret } } });
  setSession(sessionOf(token, null, body, true));
}

/** The session kept in this tab, validated again (and its catalog reloaded); none if it expired. */
export async function resume(): Promise<void> {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return;
  try {
    const kept = JSON.parse(raw) as { token: string; unscoped: string | null; appCredential: boolean };
    const v = await call('GET', null, `${IDENTITY}/auth/tokens`, { token: kept.token, headers: { 'X-Subject-Token': kept.token } });
    setSession(sessionOf(kept.token, kept.unscoped, v.body.token, kept.appCredential));
  } catch {
    setSession(null);
  }
}

async function revoke(token: string): Promise<void> {
  await call('DELETE', null, `${IDENTITY}/auth/tokens`, { token, headers: { 'X-Subject-Token': token } });
}

/** A domain-scoped token of a domain admin (the identity pages' admin scope), revoked at logout. */
let domainScope: { token: string; domain: { id: string; name: string }; unscoped: string } | null = null;

/**
 * Where the caller may administer identity: the whole cloud (the admin role),
 * a domain (the admin role on a domain the user may scope to, through a
 * domain-scoped token of the unscoped one, as Keystone's policy for domain
 * admins asks), or nowhere (null).
 */
export async function identityAdminScope(): Promise<{ token: string; domain: { id: string; name: string } | null } | null> {
  const s = current;
  if (!s) return null;
  if (isAdmin()) return { token: s.token, domain: null };
  if (!s.unscoped) return null;
  if (domainScope?.unscoped === s.unscoped) return domainScope;
  const domains = (await call('GET', null, `${IDENTITY}/auth/domains`, { token: s.unscoped })).body.domains as Array<{ id: string; name: string }>;
  for (const d of domains) {
    const { token, body } = await issue({ identity: { methods: ['token'], token: { id: s.unscoped } }, scope: { domain: { id: d.id } } });
    if ((body.roles ?? []).some((r: { name: string }) => r.name === 'admin')) {
      domainScope = { token, domain: { id: d.id, name: d.name }, unscoped: s.unscoped };
      return domainScope;
    }
    await revoke(token).catch(() => undefined);
  }
  return null;
}

/** Logs out: both tokens revoked (DELETE /v3/auth/tokens), the session forgotten. */
export async function logout(): Promise<void> {
  const s = current;
  setSession(null);
  if (domainScope) await revoke(domainScope.token).catch(() => undefined);
  domainScope = null;
  if (!s) return;
  await revoke(s.token).catch(() => undefined);
  if (s.unscoped && s.unscoped !== s.token) await revoke(s.unscoped).catch(() => undefined);
}

// ---- what the caller may do: the services' default policies, so that buttons the API would refuse are not shown

export const isAdmin = (): boolean => !!current?.roles.includes('admin');
/** Creates, changes and deletes in the project: the member role (or admin). A reader only reads. */
export const canWrite = (): boolean => !!current && (current.roles.includes('member') || current.roles.includes('admin'));
