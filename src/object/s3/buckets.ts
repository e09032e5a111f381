// Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
// GetBucketLocation, ListObjects (V1 and V2), the bucket's ACL and policy.
// A bucket is a container of the caller's project; the names are one
// namespace across projects, as in S3 (another project's name is
// BucketAlreadyExists; its contents stay closed unless its ACLs open them).
import type { ContainerInfo, ObjectEntry } from '../store.ts';
import { timestampDate } from '../store.ts';
import { ownLevel } from '../swift/acl.ts';
import { bucketAclsOf, cannedOf, check, SYS, validatePolicy } from './access.ts';
import { checkNewBucketName, loadBucket, multipartContainer, noSuchBucket, versionsContainer, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import { quoteEtag } from './headers.ts';
import { listingParams, type S3Request } from './request.ts';
import { many, node, parseXml, text, xmlDocument, type XmlNode } from './xml.ts';

export const owner = (project: string): XmlNode => [['ID', project], ['DisplayName', project]];

/** The caller must be signed in with a project, else AccessDenied. */
export function projectOf(r: S3Request): string {
  if (!r.cred?.projectId) throw s3Error('AccessDenied');
  return r.cred.projectId;
}

export async function listBuckets(ctx: S3Context, r: S3Request): Promise<string> {
  const project = projectOf(r);
  const entries = await ctx.store.listContainers(project, { limit: 10000 });
  const buckets = entries.filter((e) => e.kind === 'container').map((e) => [
    ['Name', e.name], ['CreationDate', timestampDate(e.timestamp).toISOString()],
  ] as XmlNode);
  return r.xml(xmlDocument('ListAllMyBucketsResult', [['Owner', owner(project)], ['Buckets', [['Bucket', many(buckets)]]]]));
}

export async function createBucket(ctx: S3Context, r: S3Request): Promise<void> {
  const project = projectOf(r);
  if (ownLevel(r.cred, project) !== 'owner') throw s3Error('AccessDenied');
  checkNewBucketName(r.bucket);
  let location = '';
  const body = await r.smallBody();
  if (body.trim() !== '') {
    const doc = node(parseXml(body).CreateBucketConfiguration);
    if (!doc) throw s3Error('MalformedXML');
    location = text(doc.LocationConstraint) ?? '';
  }
  const acls = bucketAclsOf(r.header('x-amz-acl') ?? 'private');
  const mine = await ctx.store.getContainer(project, r.bucket);
  if (mine) throw s3Error('BucketAlreadyOwnedByYou', undefined, [['BucketName', r.bucket]]);
  const other = await ctx.store.findContainer(r.bucket);
  if (other && other.project !== project) throw s3Error('BucketAlreadyExists', undefined, [['BucketName', r.bucket]]);
  const { created } = await ctx.store.createContainer(project, r.bucket, { ...acls, sysmeta: location ? { [SYS.location]: location } : {} });
  if (!created) throw s3Error('BucketAlreadyOwnedByYou', undefined, [['BucketName', r.bucket]]);
  r.reply.header('location', `/${r.bucket}`);
}

export async function headBucket(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'list');
  r.reply.header('x-amz-bucket-region', ctx.region);
}

export async function deleteBucket(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  // Older versions and delete markers keep a versioned bucket from being empty, as in S3.
  const versions = await ctx.store.getContainer(b.project, versionsContainer(b.name), { internal: true });
  if (b.objectCount > 0 || (versions && versions.objectCount > 0)) throw s3Error('BucketNotEmpty', undefined, [['BucketName', b.name]]);
  await ctx.store.deleteContainer(b);
  // Uploads in progress go with the bucket.
  const uploads = await ctx.store.getContainer(b.project, multipartContainer(b.name), { internal: true });
  if (uploads) await emptyAndDelete(ctx, uploads);
  if (versions) await ctx.store.deleteContainer(versions).catch(() => undefined);
  r.reply.code(204);
}

export async function emptyAndDelete(ctx: S3Context, c: ContainerInfo): Promise<void> {
  for (;;) {
    const batch = await ctx.store.listObjects(c, { limit: 1000 });
    for (const e of batch) if (e.kind === 'object') await ctx.store.deleteObject(c, e.name);
    if (batch.length < 1000) break;
  }
  await ctx.store.deleteContainer(c).catch(() => undefined);
}

export async function getBucketLocation(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const location = b.sysmeta[SYS.location] ?? '';
  return r.xml(`<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${location === 'us-east-1' ? '' : location.replace(/[<&>]/g, '')}</LocationConstraint>`);
}

// ---- listings -------------------------------------------------------------------

/** A page of entries after `after`: up to `max` (objects and common prefixes together), and whether more follow. */
async function page(ctx: S3Context, b: ContainerInfo, o: { prefix: string; delimiter: string; after: string; max: number }): Promise<{ entries: ObjectEntry[]; truncated: boolean }> {
  if (o.max === 0) return { entries: [], truncated: false };
  const entries = await ctx.store.listObjects(b, { prefix: o.prefix || undefined, delimiter: o.delimiter || undefined, marker: o.after || undefined, limit: o.max + 1 });
  return { entries: entries.slice(0, o.max), truncated: entries.length > o.max };
}

function contents(entries: ObjectEntry[], enc: (s: string) => string, withOwner: string | null): { objects: XmlNode[]; prefixes: XmlNode[] } {
  const objects: XmlNode[] = [];
  const prefixes: XmlNode[] = [];
  for (const e of entries) {
    if (e.kind === 'subdir') prefixes.push([['Prefix', enc(e.name)]]);
    else {
      objects.push([
        ['Key', enc(e.name)], ['LastModified', timestampDate(e.timestamp).toISOString()], ['ETag', quoteEtag(e.etag)],
        ['Size', e.size], ['StorageClass', 'STANDARD'], ...(withOwner ? [['Owner', owner(withOwner)] as const] : []),
      ]);
    }
  }
  return { objects, prefixes };
}

export async function listObjectsV1(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'list');
  const { prefix, delimiter, max, enc } = listingParams(r);
  const marker = r.query.get('marker') ?? '';
  const { entries, truncated } = await page(ctx, b, { prefix, delimiter, after: marker, max });
  const { objects, prefixes } = contents(entries, enc, b.project);
  const last = entries[entries.length - 1];
  return r.xml(xmlDocument('ListBucketResult', [
    ['Name', b.name], ['Prefix', enc(prefix)], ['Marker', enc(marker)],
    ['NextMarker', truncated && delimiter && last ? enc(last.name) : null],
    ['MaxKeys', max], ['Delimiter', delimiter ? enc(delimiter) : null], ['IsTruncated', truncated],
    ...(r.query.has('encoding-type') ? [['EncodingType', 'url'] as const] : []),
    ['Contents', many(objects)], ['CommonPrefixes', many(prefixes)],
  ]));
}

const token = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
function untoken(s: string): string {
  const d = Buffer.from(s, 'base64url').toString('utf8');
  if (token(d) !== s.replace(/=+$/, '')) throw s3Error('InvalidArgument', 'The continuation token provided is incorrect', [['ArgumentName', 'continuation-token']]);
  return d;
}

export async function listObjectsV2(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'list');
  const { prefix, delimiter, max, enc } = listingParams(r);
  const startAfter = r.query.get('start-after') ?? '';
  const continuation = r.query.get('continuation-token');
  let after = continuation !== undefined ? untoken(continuation) : startAfter;
  if (continuation === undefined && startAfter && prefix && startAfter < prefix) after = '';
  const { entries, truncated } = await page(ctx, b, { prefix, delimiter, after, max });
  const { objects, prefixes } = contents(entries, enc, r.query.get('fetch-owner') === 'true' ? b.project : null);
  const last = entries[entries.length - 1];
  return r.xml(xmlDocument('ListBucketResult', [
    ['Name', b.name], ['Prefix', enc(prefix)], ['MaxKeys', max], ['KeyCount', entries.length],
    ['Delimiter', delimiter ? enc(delimiter) : null], ['IsTruncated', truncated],
    ...(r.query.has('encoding-type') ? [['EncodingType', 'url'] as const] : []),
    ['ContinuationToken', continuation ?? null], ['NextContinuationToken', truncated && last ? token(last.name) : null],
    ['StartAfter', startAfter ? enc(startAfter) : null],
    ['Contents', many(objects)], ['CommonPrefixes', many(prefixes)],
  ]));
}

// ---- ACL and policy -------------------------------------------------------------

const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
const AUTHENTICATED = 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers';

/** The AccessControlPolicy document of a canned ACL owned by `project`. */
export function aclDocument(project: string, canned: string): string {
  const grant = (grantee: XmlNode, permission: string): XmlNode => [['Grantee', grantee], ['Permission', permission]];
  const user: XmlNode = [['ID', project], ['DisplayName', project]];
  const grants: XmlNode[] = [grant(user, 'FULL_CONTROL')];
  if (canned === 'public-read' || canned === 'public-read-write') grants.push(grant([['URI', ALL_USERS]], 'READ'));
  if (canned === 'public-read-write') grants.push(grant([['URI', ALL_USERS]], 'WRITE'));
  if (canned === 'authenticated-read') grants.push(grant([['URI', AUTHENTICATED]], 'READ'));
  // Grantee carries xsi:type in S3; clients read the ID/URI children.
  const xml = xmlDocument('AccessControlPolicy', [['Owner', owner(project)], ['AccessControlList', [['Grant', many(grants)]]]]);
  return xml.replace(/<Grantee>(<ID>)/g, '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">$1')
    .replace(/<Grantee>(<URI>)/g, '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">$1');
}

/** The canned ACL an AccessControlPolicy body amounts to (grants to AllUsers/AuthenticatedUsers); MalformedACLError otherwise. */
export function cannedOfDocument(body: string): string {
  const doc = node(parseXml(body, 'MalformedACLError').AccessControlPolicy);
  if (!doc) throw s3Error('MalformedACLError');
  const list = node(doc.AccessControlList);
  const grants = (list?.Grant as unknown[] | undefined) ?? [];
  const perms = new Set<string>();
  for (const g of grants) {
    const grant = node(g);
    const grantee = node(grant?.Grantee);
    const permission = text(grant?.Permission);
    if (!grant || !grantee || !permission) throw s3Error('MalformedACLError');
    const uri = text(grantee.URI);
    if (uri === ALL_USERS) perms.add(`all:${permission}`);
    else if (uri === AUTHENTICATED) perms.add(`auth:${permission}`);
  }
  if (perms.has('all:WRITE') || perms.has('all:FULL_CONTROL')) return 'public-read-write';
  if (perms.has('all:READ')) return 'public-read';
  if (perms.has('auth:READ') || perms.has('auth:FULL_CONTROL')) return 'authenticated-read';
  return 'private';
}

export async function getBucketAcl(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  return r.xml(aclDocument(b.project, cannedOf(b)));
}

export async function putBucketAcl(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const header = r.header('x-amz-acl');
  const body = await r.smallBody();
  const canned = header ?? (body.trim() ? cannedOfDocument(body) : undefined);
  if (canned === undefined) throw s3Error('MissingSecurityHeader', 'Your request was missing a required header', [['MissingHeaderName', 'x-amz-acl']]);
  await ctx.store.updateContainer(b, bucketAclsOf(canned));
}

export async function getBucketPolicy(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const policy = b.sysmeta[SYS.policy];
  if (!policy) throw s3Error('NoSuchBucketPolicy', undefined, [['BucketName', b.name]]);
  r.reply.header('content-type', 'application/json');
  return policy;
}

export async function putBucketPolicy(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const body = await r.smallBody(20 * 1024);
  validatePolicy(body, b.name);
  await ctx.store.updateContainer(b, { sysmeta: { [SYS.policy]: body } });
  r.reply.code(204);
}

export async function deleteBucketPolicy(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  await ctx.store.updateContainer(b, { sysmeta: { [SYS.policy]: null } });
  r.reply.code(204);
}

export { noSuchBucket };
