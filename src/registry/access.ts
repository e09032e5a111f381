// Who may do what to a repository. A repository `<project>/<path>` belongs to
// the project named by its first component (the project's name in the
// caller's domain, or its id). Pull needs a role on the project (reader and
// up), push and delete need member (or admin); a public repository is pulled
// by anyone, without credentials. Callers come three ways:
//   - the registry's bearer token (GET /v2/token): its grants, as the token
//     endpoint resolved them; lacking one is the spec's 401 with an
//     `insufficient_scope` challenge, so a client asks for a new token;
//   - a Keystone token (X-Auth-Token): its roles on its own project; lacking
//     one is DENIED (403);
//   - none: public repositories only; anything else is 401 with a challenge.
// A repository of a project the caller has no access to is refused whether or
// not it exists, so nothing is learnt about other projects.
import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/database.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import type { BasicLogin } from '../identity/basic-auth.ts';
import { getProject, getProjectByName } from '../identity/lookup.ts';
import { RegistryError } from './errors.ts';
import type { RepoName } from './names.ts';
import type { Action, RegistryClaims } from './token.ts';

export const SERVICE_NAME = 'stratus';
export const DEFAULT_DOMAIN = 'default';

/** The registry's bearer token, as the `token` of the Credentials routes see. */
export class RegistryAccess {
  readonly claims: RegistryClaims;
  constructor(claims: RegistryClaims) {
    this.claims = claims;
  }
}

export const accessOf = (cred: Credentials | null): RegistryAccess | null =>
  cred?.token instanceof RegistryAccess ? cred.token : null;

/** The Credentials of a bearer token (no Keystone roles: the grants are in the token). */
export function bearerCredentials(claims: RegistryClaims): Credentials {
  return {
    userId: claims.sub ?? '', userName: claims.user ?? '', userDomainId: '', projectId: null, projectDomainId: null,
    domainId: null, system: false, roles: new Set(), roleIds: [], token: new RegistryAccess(claims),
  };
}

/** Whether a Keystone caller's roles allow the action on its project. */
export function rolesAllow(roles: ReadonlySet<string>, action: Action): boolean {
  if (roles.has('admin') || roles.has('member')) return true;
  return action === 'pull' && roles.has('reader');
}

/**
 * The one rule for the cloud's administrator, who reaches every project's
 * repositories: a caller whose token carries the admin role (`isAdmin`, as
 * every Stratus policy has it). A Keystone token (X-Auth-Token) is judged by
 * its roles; an HTTP Basic login at the token endpoint by whether a token of
 * it could carry them (identity's `BasicLogin.isAdmin`, effective roles).
 */
export const isCloudAdmin = (who: Credentials | BasicLogin): Promise<boolean> =>
  'isAdmin' in who ? who.isAdmin() : Promise.resolve(isAdmin(who));

/** A project id (Keystone's: 32 hex digits), tried before a name. */
export const HEX_ID = /^[0-9a-f]{32}$/;

/** The enabled project a name's first component names: its id, else its name in the domain. */
export async function resolveProject(db: Db, ref: string, domainId: string): Promise<{ id: string; name: string } | undefined> {
  let p = HEX_ID.test(ref) ? await getProject(db, ref) : undefined;
  if (!p) p = await getProjectByName(db, domainId, ref);
  return p && p.enabled ? { id: p.id, name: p.name } : undefined;
}

export async function isPublic(db: Db, projectId: string, path: string): Promise<boolean> {
  const row = await db.selectFrom('registry_repositories').select('public').where('project_id', '=', projectId).where('path', '=', path).executeTakeFirst();
  return row?.public === 1;
}

/** The realm clients fetch tokens from. */
export function realmOf(req: FastifyRequest, publicUrl: string | undefined): string {
  const base = publicUrl ?? `${req.protocol}://${req.headers.host}`;
  return `${base.replace(/\/$/, '')}/v2/token`;
}

export function challenge(req: FastifyRequest, publicUrl: string | undefined, scope?: string, insufficient = false): string {
  let h = `Bearer realm="${realmOf(req, publicUrl)}",service="${SERVICE_NAME}"`;
  if (scope) h += `,scope="${scope}"`;
  if (insufficient) h += ',error="insufficient_scope"';
  return h;
}

/** The actions a route's action needs in a token's scope, as a challenge names them. */
const scopeActions = (action: Action) => (action === 'pull' ? 'pull' : action === 'push' ? 'pull,push' : 'delete');

export interface Authorized { projectId: string; projectName: string | null }

/**
 * Checks that the caller may do `action` on the repository; the project it
 * belongs to. Throws UNAUTHORIZED (401, with a challenge) or DENIED (403).
 */
export async function authorize(db: Db, req: FastifyRequest, publicUrl: string | undefined, cred: Credentials | null, name: RepoName, action: Action): Promise<Authorized> {
  const scope = `repository:${name.full}:${scopeActions(action)}`;
  const unauthorized = (insufficient: boolean) => new RegistryError('UNAUTHORIZED', 'authentication required',
    { detail: [{ Type: 'repository', Name: name.full, Action: action }], headers: { 'WWW-Authenticate': challenge(req, publicUrl, scope, insufficient) } });
  const access = accessOf(cred);
  if (access) {
    const grant = access.claims.access.find((g) => g.name === name.full);
    if (grant?.actions.includes(action)) return { projectId: grant.projectId, projectName: null };
  } else if (cred) {
    const project = await resolveProject(db, name.project, cred.projectDomainId ?? cred.userDomainId);
    if (project && ((cred.projectId === project.id && rolesAllow(cred.roles, action)) || (await isCloudAdmin(cred)))) {
      return { projectId: project.id, projectName: project.name };
    }
  }
  if (action === 'pull') {
    const domain = cred && !access ? (cred.projectDomainId ?? cred.userDomainId) : DEFAULT_DOMAIN;
    const project = await resolveProject(db, name.project, domain);
    if (project && (await isPublic(db, project.id, name.path))) return { projectId: project.id, projectName: project.name };
  }
  if (cred && !access) throw new RegistryError('DENIED', 'requested access to the resource is denied', { detail: [{ Type: 'repository', Name: name.full, Action: action }] });
  throw unauthorized(!!access);
}
