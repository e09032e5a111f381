// What a route knows about its caller once the token is validated. The identity
// service issues and validates tokens; every other service only reads this.

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

/** Validates a token string and returns its caller; throws ApiError 401 when it is not valid. */
export type Authenticator = (token: string) => Credentials;
