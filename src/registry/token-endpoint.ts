// /v2/token: Docker's token endpoint. GET: the client authenticates with
// HTTP Basic (a Keystone user of the Default domain and their password, or
// an application credential's id and secret) or not at all (anonymous: pull
// of public repositories), names the scopes it wants, and gets a short-lived
// bearer token granting the intersection of what it asked and what it may do
// (token.ts); with `offline_token=true` a logged-in client also gets a
// refresh token. POST: the OAuth2 form of distribution's token spec
// (`grant_type=password` with username and password, or
// `grant_type=refresh_token`; `access_type=offline` asks for a refresh
// token; `scope` space-separated). A refresh token is the Keystone token
// behind the login (an unscoped one, or the application credential's), so
// it lasts as Keystone's tokens do and is revoked with them (a password
// change, a disabled user, a deleted application credential). Asking for
// more than one may do is not an error (the spec): the token just grants
// less, and the registry refuses the request later.
import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/database.ts';
import type { Credentials } from '../http/auth.ts';
import type { BasicAuthenticator, BasicLogin } from '../identity/basic-auth.ts';
import { DEFAULT_DOMAIN, HEX_ID, isCloudAdmin, isPublic, resolveProject, rolesAllow } from './access.ts';
import { RegistryError } from './errors.ts';
import { parseName, type RepoName } from './names.ts';
import { ACTIONS, TOKEN_TTL, parseScopes, type Action, type Grant, type RegistryClaims, type TokenSigner } from './token.ts';

export interface TokenDeps {
  db: Db;
  basicAuth: BasicAuthenticator;
  /** The login a refresh token stands for (identity's refreshLogin); 401 when it is no longer valid. */
  refreshLogin: (refreshToken: string) => Promise<BasicLogin>;
  signer: TokenSigner;
  log: { info(o: object, m: string): void };
}

/** The user name and secret of an `Authorization: Basic` header; null when there is none. */
export function basicCredentials(req: FastifyRequest): { user: string; secret: string } | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !/^basic /i.test(h)) return null;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/** A scope's repository name as the registry's routes parse it (names.ts); null when it is none (the scope grants nothing). */
function nameOrNull(full: string): RepoName | null {
  try {
    return parseName(full);
  } catch {
    return null;
  }
}

/** The Credentials a login has on the project a name's first component names (id first, then name). */
async function projectCredentials(login: BasicLogin, ref: string): Promise<Credentials | null> {
  if (HEX_ID.test(ref)) {
    const byId = await login.forProject({ id: ref });
    if (byId) return byId;
  }
  return login.forProject({ name: ref });
}

/** A login by user name (or application credential id) and secret; the registry's 401 when it fails (the user name logged, never the secret). */
async function login(deps: TokenDeps, user: string, secret: string): Promise<BasicLogin> {
  try {
    return await deps.basicAuth(user, secret);
  } catch (e) {
    deps.log.info({ user }, 'registry token: authentication failed');
    throw authFailure(e, 'authentication failed: invalid user name or password');
  }
}

function authFailure(e: unknown, message: string): unknown {
  const status = (e as { status?: number }).status;
  return status === 401 || status === 400 || status === 404 || status === 403 ? new RegistryError('UNAUTHORIZED', message) : e;
}

/** GET /v2/token. */
export async function issueRegistryToken(deps: TokenDeps, req: FastifyRequest, scopeParams: string[], offline = false): Promise<Record<string, unknown>> {
  const basic = basicCredentials(req);
  const who = basic ? await login(deps, basic.user, basic.secret) : null;
  return (await grantToken(deps, who, scopeParams, offline && who !== null)).body;
}

/** POST /v2/token: distribution's OAuth2 token request (an application/x-www-form-urlencoded body). */
export async function issueOAuthToken(deps: TokenDeps, body: string): Promise<Record<string, unknown>> {
  const form = new URLSearchParams(body);
  const grant = form.get('grant_type');
  let who: BasicLogin;
  if (grant === 'password') {
    const user = form.get('username');
    const password = form.get('password');
    if (!user || !password) throw new RegistryError('UNSUPPORTED', 'grant_type=password needs username and password', { status: 'BadRequest' });
    who = await login(deps, user, password);
  } else if (grant === 'refresh_token') {
    const token = form.get('refresh_token');
    if (!token) throw new RegistryError('UNSUPPORTED', 'grant_type=refresh_token needs refresh_token', { status: 'BadRequest' });
    try {
      who = await deps.refreshLogin(token);
    } catch (e) {
      throw authFailure(e, 'invalid refresh token');
    }
  } else {
    throw new RegistryError('UNSUPPORTED', `unsupported grant_type: ${grant ?? '(none)'}`, { status: 'BadRequest' });
  }
  const granted = await grantToken(deps, who, [form.get('scope') ?? ''], grant === 'refresh_token' || form.get('access_type') === 'offline');
  return { ...granted.body, scope: granted.access.map((g) => `repository:${g.name}:${g.actions.join(',')}`).join(' ') };
}

/** The token granting `who` (null: anonymous) what it asked of `scopeParams` and may do; with a refresh token when asked. */
async function grantToken(deps: TokenDeps, who: BasicLogin | null, scopeParams: string[], withRefresh: boolean): Promise<{ body: Record<string, unknown>; access: Grant[] }> {
  const login = who;
  const access: Grant[] = [];
  let catalog: string[] | undefined;
  // the cloud's administrator reaches every repository (access.ts: isCloudAdmin, the rule of the Keystone-token path too)
  let admin: Promise<boolean> | undefined;
  const cloudAdmin = () => (admin ??= login ? isCloudAdmin(login) : Promise.resolve(false));
  for (const s of parseScopes(scopeParams)) {
    if (s.type === 'registry' && s.name === 'catalog') {
      catalog = login ? await login.projectIds() : [];
      continue;
    }
    if (s.type !== 'repository') continue;
    const name = nameOrNull(s.name);
    if (!name) continue;
    const wanted = new Set<Action>(s.actions.includes('*') ? ACTIONS : s.actions.filter((a): a is Action => (ACTIONS as string[]).includes(a)));
    if (wanted.size === 0) continue;
    const { project: projectRef, path } = name;
    const granted = new Set<Action>();
    let projectId: string | undefined;
    if (login) {
      const cred = await projectCredentials(login, projectRef);
      if (cred?.projectId) {
        projectId = cred.projectId;
        for (const a of wanted) if (rolesAllow(cred.roles, a)) granted.add(a);
      } else if (await cloudAdmin()) {
        const project = await resolveProject(deps.db, projectRef, login.userDomainId);
        if (project) {
          projectId = project.id;
          for (const a of wanted) granted.add(a);
        }
      }
    }
    if (wanted.has('pull') && !granted.has('pull')) {
      const project = projectId ? { id: projectId } : await resolveProject(deps.db, projectRef, login?.userDomainId ?? DEFAULT_DOMAIN);
      if (project && (await isPublic(deps.db, project.id, path))) {
        projectId = project.id;
        granted.add('pull');
      }
    }
    if (projectId && granted.size > 0) {
      const existing = access.find((g) => g.name === s.name);
      if (existing) existing.actions = [...new Set([...existing.actions, ...granted])];
      else access.push({ name: s.name, projectId, actions: [...granted] });
    }
  }
  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const claims: RegistryClaims = { sub: login?.userId ?? null, user: login?.userName ?? null, iat, exp: iat + TOKEN_TTL, access };
  if (catalog) claims.catalog = catalog;
  const token = deps.signer.sign(claims);
  const body: Record<string, unknown> = { token, access_token: token, expires_in: TOKEN_TTL, issued_at: new Date(iat * 1000).toISOString() };
  if (withRefresh && login) body.refresh_token = login.refreshToken;
  return { body, access };
}
