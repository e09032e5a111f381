// What a token carries. Tokens are stateless: everything needed to answer a
// validation is inside, encrypted (see codec.ts); only revocations are looked up.

export interface Named { id: string; name: string }
export interface NamedInDomain extends Named { domain: Named }

export interface TokenData {
  user: NamedInDomain;
  methods: string[];
  /** Milliseconds since the epoch. */
  issuedAt: number;
  expiresAt: number;
  /** [this token's audit id, the audit id of the token it was rescoped from (the chain)]. */
  auditIds: string[];
  project?: NamedInDomain;
  domain?: Named;
  system?: boolean;
  roles: Named[];
  passwordExpiresAt?: string | null;
  appCred?: { id: string; name: string; restricted: boolean };
  trust?: { id: string; trustorId: string; trusteeId: string; impersonation: boolean };
}
