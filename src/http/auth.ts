// What a route knows about its caller once its credentials are checked, and
// the authenticators that check them. The identity service issues and
// validates Keystone tokens; every other service only reads Credentials. A
// service names the authenticators it accepts (Keystone tokens by default;
// the agent API its own credential; later signed URLs and S3 signatures).
import type { FastifyRequest } from 'fastify';

export interface Credentials {
  userId: string;
  userName: string;
  userDomainId: string;
  /** Set for a project-scoped token. */
  projectId: string | null;
  projectDomainId: string | null;
  /** Set for a domain-scoped token. */
  domainId: string | null;
  /** True for a system-scoped token. */
  system: boolean;
  /** Role names, implied roles included. */
  roles: ReadonlySet<string>;
  roleIds: readonly string[];
  /** The validated token itself, as the identity service decoded it. */
  token: unknown;
}

/** Validates a Keystone token string and returns its caller; throws ApiError 401 when it is not valid. */
export type TokenValidator = (token: string) => Credentials;

export interface Authenticator {
  /**
   * The caller of a request; null when the request carries none of this
   * authenticator's credentials (the next one is tried). Throws ApiError 401
   * when it carries them and they are not valid.
   */
  authenticate(req: FastifyRequest): Credentials | null | Promise<Credentials | null>;
}

/** Keystone tokens in X-Auth-Token. */
export function keystoneTokens(validate: TokenValidator): Authenticator {
  return {
    authenticate(req) {
      const header = req.headers['x-auth-token'];
      return typeof header === 'string' && header !== '' ? validate(header) : null;
    },
  };
}
