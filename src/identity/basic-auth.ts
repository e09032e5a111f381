// HTTP Basic logins for services that cannot take a Keystone token (the OCI
// registry's token endpoint: `docker login`, podman, skopeo send a user name
// and a secret). The name and secret are either a Keystone user of the Default
// domain and their password, or an application credential's id and secret.
// Both go through Keystone's own checks (issue.ts): a wrong password counts
// towards the user's lockout as a failed POST /v3/auth/tokens does, an expired
// or disabled anything is refused. The secret is never logged or kept.
import { ApiError, unauthorized } from '../common/errors.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { projectIdsForUser } from './assignments.ts';
import type { IdentityContext } from './context.ts';
import { credentialsOf } from './credentials.ts';
import { issueToken, validateToken } from './tokens/issue.ts';
import type { TokenData } from './tokens/token.ts';

/** The project a login asks for: by id, or by name in the user's domain. */
export type ProjectRef = { id: string } | { name: string };

export interface BasicLogin {
  userId: string;
  userName: string;
  userDomainId: string;
  /** Set when the login was an application credential: the one project it may act on. */
  appCredProjectId: string | null;
  /** The Keystone token behind the login, a refresh token (`refreshLogin`) until it expires or is revoked; never logged. */
  refreshToken: string;
  /** When it expires (milliseconds since the epoch). */
  refreshExpiresAt: number;
  /**
   * The caller's Credentials on a project (roles as a token scoped there
   * carries them), or null when the project is unknown, disabled, or the
   * user holds no role on it (an application credential: any project but its own).
   */
  forProject(ref: ProjectRef): Promise<Credentials | null>;
  /** Ids of the projects the user may scope to (an application credential: its project). */
  projectIds(): Promise<string[]>;
  /**
   * Whether a token of this login could carry the admin role (the cloud's
   * administrator, `isAdmin` as every Stratus policy reads a token): the
   * user's effective roles on an enabled project or on the system (an
   * application credential: the roles it grants on its project).
   */
  isAdmin(): Promise<boolean>;
}

/** Checks a user name and secret; throws ApiError 401 when they are not valid. */
export type BasicAuthenticator = (username: string, secret: string) => Promise<BasicLogin>;

const DEFAULT_DOMAIN = 'default';
const ADMIN = 'admin';

/** Refusals of a scope (no role, unknown project) are null; anything else is thrown. */
async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 404 || e.status === 400)) return null;
    throw e;
  }
}

/** The login a Keystone token stands for: an application credential's (its one project), or a user's (rescoped by the token). */
function loginOf(ctx: IdentityContext, token: string, data: TokenData): BasicLogin {
  if (data.appCred && data.project) {
    const project = data.project;
    const cred = credentialsOf(data);
    return {
      userId: data.user.id, userName: data.user.name, userDomainId: data.user.domain.id, appCredProjectId: project.id,
      refreshToken: token, refreshExpiresAt: data.expiresAt,
      async forProject(ref) {
        const matches = 'id' in ref ? ref.id === project.id : ref.name === project.name && project.domain.id === data.user.domain.id;
        return matches ? cred : null;
      },
      async projectIds() { return [project.id]; },
      async isAdmin() { return isAdmin(cred); },
    };
  }
  const rescope = async (ref: ProjectRef): Promise<TokenData | null> => {
    const project = 'id' in ref ? { id: ref.id } : { name: ref.name, domain: { id: data.user.domain.id } };
    const r = await orNull(issueToken(ctx, { auth: { identity: { methods: ['token'], token: { id: token } }, scope: { project } } }));
    return r?.data ?? null;
  };
  return {
    userId: data.user.id, userName: data.user.name, userDomainId: data.user.domain.id, appCredProjectId: null,
    refreshToken: token, refreshExpiresAt: data.expiresAt,
    async forProject(ref) {
      const scoped = await rescope(ref);
      return scoped ? credentialsOf(scoped) : null;
    },
    async projectIds() { return [...(await projectIdsForUser(ctx.db, data.user.id))]; },
    async isAdmin() {
      const admin = (roles: Array<{ name: string }>) => roles.some((r) => r.name === ADMIN);
      if (admin(await ctx.cache.roles(ctx.db, data.user.id, { system: true }))) return true;
      for (const id of await projectIdsForUser(ctx.db, data.user.id)) {
        const project = await ctx.cache.project(ctx.db, id);
        const domain = project?.enabled ? await ctx.cache.domain(ctx.db, project.domain_id) : undefined;
        if (domain?.enabled && admin(await ctx.cache.roles(ctx.db, data.user.id, { projectId: id }))) return true;
      }
      return false;
    },
  };
}

export function basicAuthenticator(ctx: IdentityContext): BasicAuthenticator {
  return async (username, secret) => {
    if (username === '' || secret === '') throw unauthorized();
    // An application credential's id is 32 hex digits; a user may be named so too, so the id is looked up first.
    const appCred = /^[0-9a-f]{32}$/.test(username)
      ? await ctx.db.selectFrom('identity_app_credentials').select('id').where('id', '=', username).executeTakeFirst()
      : undefined;
    if (appCred) {
      const { token, data } = await issueToken(ctx, { auth: { identity: { methods: ['application_credential'], application_credential: { id: username, secret } } } });
      return loginOf(ctx, token, data);
    }
    const { token, data } = await issueToken(ctx, {
      auth: { identity: { methods: ['password'], password: { user: { name: username, domain: { id: DEFAULT_DOMAIN }, password: secret } } }, scope: 'unscoped' },
    });
    return loginOf(ctx, token, data);
  };
}

/**
 * The login a refresh token stands for (the registry's OAuth2 refresh_token
 * grant): the Keystone token an earlier login was (its `refreshToken`),
 * still valid and not revoked; 401 otherwise. Only an unscoped user token
 * or an application credential's token is one.
 */
export function refreshLogin(ctx: IdentityContext): (refreshToken: string) => Promise<BasicLogin> {
  return async (refreshToken) => {
    const data = validateToken(ctx, refreshToken, false);
    if (!data || data.trust || (!data.appCred && (data.project || data.domain || data.system))) throw unauthorized();
    return loginOf(ctx, refreshToken, data);
  };
}
