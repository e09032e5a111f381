// Who may do what to a bucket and its objects, by Swift's own rules
// (swift/acl.ts), so both APIs decide alike: the bucket's project's members
// own it, its readers read, the admin is the reseller admin, the account's
// ACL grants its levels; everyone else goes by the container's ACLs
// (X-Container-Read/Write): `.r:*` lets anyone read objects,
// `.rlistings` list them, `<project>:<user>`/`<project>:*`/`*:<user>` name
// Keystone callers. S3's canned ACLs are written as those ACLs, so each API
// honours what the other set: `public-read` on a bucket is `.r:*,.rlistings`;
// `public-read-write` adds `*:*` to the write ACL. An object's own canned ACL
// (x-amz-acl on PUT) is kept in its sysmeta and grants anonymous reads of that
// object only; a bucket policy granting s3:GetObject to "*" is kept in the
// bucket's sysmeta and grants the same as `.r:*`.
import type { Credentials } from '../../http/auth.ts';
import type { ObjectStore } from '../store.ts';
import { accountAclLevel, aclNames, ownLevel, parseAcl, referrerAllowed, type AccessLevel } from '../swift/acl.ts';
import { s3Error } from './errors.ts';

export type Access = 'read' | 'list' | 'write' | 'owner';

export interface AclHolder {
  project: string;
  /** The bucket's name (a policy's Resource names it). */
  name: string;
  readAcl: string | null;
  writeAcl: string | null;
  sysmeta: Record<string, string>;
}

/** Sysmeta keys S3 keeps on containers and objects. */
export const SYS = {
  /** A bucket's policy document (JSON text), as PutBucketPolicy stored it. */
  policy: 's3-policy',
  /** An object's canned ACL. */
  objectAcl: 's3-acl',
  /** A bucket's location constraint as created. */
  location: 's3-location',
} as const;

/** Who asks: the caller and the request's headers (the Referer, which Swift's referrer ACLs match). */
export interface Caller {
  cred: Credentials | null;
  header(name: string): string | undefined;
}

const RANK: Record<AccessLevel, number> = { none: 0, 'read-only': 1, 'read-write': 2, admin: 3, owner: 4 };

/**
 * The caller's standing on the bucket's project, as Swift decides it
 * (swift/acl.ts): its own roles (members own their project, readers read,
 * the admin is the reseller admin), else what the account's ACL grants it.
 */
export async function levelOf(store: ObjectStore, c: Credentials | null, project: string): Promise<AccessLevel> {
  const own = ownLevel(c, project);
  if (own === 'owner' || !c) return own;
  const byAcl = accountAclLevel((await store.getAccount(project)).acl, c);
  return RANK[byAcl] > RANK[own] ? byAcl : own;
}

/** Anyone may read the bucket's objects: its read ACL's referrer rules let this Referer in (Swift's), or its policy's public-read statement. */
const publicRead = (b: AclHolder, referer: string | undefined): boolean =>
  referrerAllowed(referer, parseAcl(b.readAcl).referrers) || policyAllowsPublicRead(b.sysmeta[SYS.policy], b.name);
/** Anyone may list the bucket: `.rlistings` and a referrer rule letting this Referer in, as Swift has it. */
const publicList = (b: AclHolder, referer: string | undefined): boolean => {
  const acl = parseAcl(b.readAcl);
  return acl.listings && referrerAllowed(referer, acl.referrers);
};

/** Whether the caller may do `what` to the bucket (`objectPublic`: the object's own ACL lets anyone read it). */
export async function allowed(store: ObjectStore, who: Caller, b: AclHolder, what: Access, objectPublic = false): Promise<boolean> {
  const c = who.cred;
  const referer = who.header('referer');
  const level = await levelOf(store, c, b.project);
  switch (what) {
    case 'owner': return RANK[level] >= RANK.admin;
    case 'write': return RANK[level] >= RANK['read-write'] || aclNames(b.writeAcl, c);
    case 'read': return RANK[level] >= RANK['read-only'] || objectPublic || publicRead(b, referer) || aclNames(b.readAcl, c);
    case 'list': return RANK[level] >= RANK['read-only'] || publicList(b, referer) || aclNames(b.readAcl, c);
  }
}

export async function check(store: ObjectStore, who: Caller, b: AclHolder, what: Access, objectPublic = false): Promise<void> {
  if (!(await allowed(store, who, b, what, objectPublic))) throw s3Error('AccessDenied');
}

// ---- canned ACLs --------------------------------------------------------------

export const CANNED = ['private', 'public-read', 'public-read-write', 'authenticated-read', 'bucket-owner-read', 'bucket-owner-full-control', 'aws-exec-read', 'log-delivery-write'] as const;

/** A bucket's Swift ACLs for a canned ACL; InvalidArgument for an unknown one. */
export function bucketAclsOf(canned: string): { readAcl: string | null; writeAcl: string | null } {
  switch (canned) {
    case 'private':
    case 'bucket-owner-read':
    case 'bucket-owner-full-control':
    case 'aws-exec-read':
    case 'log-delivery-write':
      return { readAcl: null, writeAcl: null };
    case 'public-read': return { readAcl: '.r:*,.rlistings', writeAcl: null };
    case 'public-read-write': return { readAcl: '.r:*,.rlistings', writeAcl: '*:*' };
    case 'authenticated-read': return { readAcl: '*:*', writeAcl: null };
    default: throw s3Error('InvalidArgument', undefined, [['ArgumentName', 'x-amz-acl'], ['ArgumentValue', canned]]);
  }
}

/** The canned ACL a bucket's Swift ACLs amount to. */
export function cannedOf(b: AclHolder): string {
  const read = parseAcl(b.readAcl);
  if (parseAcl(b.writeAcl).groups.includes('*:*')) return 'public-read-write';
  if (read.referrers.includes('*')) return 'public-read';
  if (read.groups.includes('*:*')) return 'authenticated-read';
  return 'private';
}

export function checkObjectCanned(canned: string): string {
  if (!(CANNED as readonly string[]).includes(canned)) throw s3Error('InvalidArgument', undefined, [['ArgumentName', 'x-amz-acl'], ['ArgumentValue', canned]]);
  return canned;
}

// ---- bucket policies ------------------------------------------------------------

/**
 * Whether a policy document grants anonymous s3:GetObject on every object of
 * the bucket (the public-read statement: Effect Allow, Principal "*" or
 * {"AWS": "*"}, Action s3:GetObject or s3:*, Resource the bucket's objects,
 * no Condition) and denies nothing. A narrower or conditional grant, or any
 * Deny, is not honoured: the bucket stays closed rather than opened wider than
 * the policy says.
 */
export function policyAllowsPublicRead(text: string | undefined, bucket: string): boolean {
  if (!text) return false;
  try {
    const doc = JSON.parse(text) as { Statement?: unknown };
    const statements: any[] = Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];
    const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);
    const whole = new Set([`arn:aws:s3:::${bucket}/*`, 'arn:aws:s3:::*', '*']);
    if (statements.some((s) => s?.Effect !== 'Allow')) return false;
    return statements.some((s) => {
      const principal = s?.Principal === '*' || list(s?.Principal?.AWS).includes('*');
      const action = list(s?.Action).some((a) => a === 's3:GetObject' || a === 's3:*' || a === '*');
      const resource = list(s?.Resource).some((r) => typeof r === 'string' && whole.has(r));
      return principal && action && resource && !s?.Condition;
    });
  } catch {
    return false;
  }
}

/** Checks a policy document's shape (JSON, a Statement list of Effect/Principal/Action/Resource); MalformedPolicy otherwise. */
export function validatePolicy(text: string, bucket: string): void {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch {
    throw s3Error('MalformedPolicy', 'Policies must be valid JSON and the first byte must be \'{\'');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw s3Error('MalformedPolicy', 'Policies must be valid JSON and the first byte must be \'{\'');
  const statements = Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];
  if (statements.length === 0) throw s3Error('MalformedPolicy', 'Missing required field Statement');
  for (const s of statements) {
    if (!s || typeof s !== 'object') throw s3Error('MalformedPolicy', 'Statement is not an object');
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw s3Error('MalformedPolicy', 'Invalid effect');
    if (s.Principal === undefined) throw s3Error('MalformedPolicy', 'Missing required field Principal');
    if (s.Action === undefined) throw s3Error('MalformedPolicy', 'Missing required field Action');
    const resources: unknown[] = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
    for (const r of resources) {
      if (typeof r !== 'string' || !(r === `arn:aws:s3:::${bucket}` || r.startsWith(`arn:aws:s3:::${bucket}/`))) {
        throw s3Error('MalformedPolicy', 'Policy has invalid resource');
      }
    }
  }
}
