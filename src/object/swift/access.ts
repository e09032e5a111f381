// Who may do what to a Swift request's target (acl.ts has the rules): run by
// the core before its handlers, after middleware had the chance to authorize
// a request by its own means (a TempURL, a FormPost signature).
import type { ContainerInfo } from '../store.ts';
import { accountAclLevel, aclNames, ownLevel, parseAcl, referrerAllowed, type AccessLevel } from './acl.ts';
import { swiftStatus } from './errors.ts';
import { header } from './headers.ts';
import type { SwiftRequest } from './request.ts';

const RANK: Record<AccessLevel, number> = { none: 0, 'read-only': 1, 'read-write': 2, admin: 3, owner: 4 };

/** The caller's access to the request's account: its own standing, or what the account ACL grants. */
export async function accountLevel(sr: SwiftRequest): Promise<AccessLevel> {
  if (sr.level) return sr.level;
  if (sr.authorized) return (sr.level = 'owner');
  let level = ownLevel(sr.cred, sr.project);
  if (level !== 'owner' && sr.cred) {
    const acct = await sr.ctx.store.getAccount(sr.project);
    const byAcl = accountAclLevel(acct.acl, sr.cred);
    if (RANK[byAcl] > RANK[level]) level = byAcl;
  }
  return (sr.level = level);
}

/** Owners and account admins see and set ACLs (Swift's swift_owner). */
export const isSwiftOwner = (level: AccessLevel): boolean => level === 'owner' || level === 'admin';
export const canWriteAccount = (level: AccessLevel): boolean => RANK[level] >= RANK['read-write'];
export const canRead = (level: AccessLevel): boolean => RANK[level] >= RANK['read-only'];

/** 401 for an anonymous caller, 403 for a known one. */
export const denied = (sr: SwiftRequest) => swiftStatus(sr.cred ? 403 : 401);

export type ContainerAccess = 'list' | 'read-object' | 'write-object';

/** Throws unless the caller may do `what` in container `c` (null: it does not exist, which only callers who could see it learn). */
export async function checkContainerAccess(sr: SwiftRequest, c: ContainerInfo | null, what: ContainerAccess): Promise<void> {
  const level = await accountLevel(sr);
  if (what === 'write-object' ? canWriteAccount(level) : canRead(level)) return;
  if (!c) throw denied(sr);
  if (what === 'write-object') {
    if (aclNames(c.writeAcl, sr.cred)) return;
    throw denied(sr);
  }
  if (aclNames(c.readAcl, sr.cred)) return;
  const acl = parseAcl(c.readAcl);
  const referer = header(sr.headers, 'referer');
  if (what === 'read-object' && referrerAllowed(referer, acl.referrers)) return;
  if (what === 'list' && acl.listings && referrerAllowed(referer, acl.referrers)) return;
  throw denied(sr);
}
