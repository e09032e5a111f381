// Turns a validated token into the caller every route sees.
import { unauthorized } from '../common/errors.ts';
import type { Credentials, TokenValidator } from '../http/auth.ts';
import type { IdentityContext } from './context.ts';
import { validateToken } from './tokens/issue.ts';
import type { TokenData } from './tokens/token.ts';

export function credentialsOf(t: TokenData): Credentials {
  return {
    userId: t.user.id,
    userName: t.user.name,
    userDomainId: t.user.domain.id,
    projectId: t.project?.id ?? null,
    projectDomainId: t.project?.domain.id ?? null,
    domainId: t.domain?.id ?? null,
    system: t.system === true,
    roles: new Set(t.roles.map((r) => r.name)),
    roleIds: t.roles.map((r) => r.id),
    token: t,
  };
}

export function tokenAuthenticator(ctx: IdentityContext): TokenValidator {
  return (token: string) => {
    const data = validateToken(ctx, token, false);
    if (!data) throw unauthorized('The request you have made requires authentication.');
    return credentialsOf(data);
  };
}

export const tokenOf = (c: Credentials): TokenData => c.token as TokenData;
