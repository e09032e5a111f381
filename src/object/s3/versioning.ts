// Bucket versioning, kept in the layout of Swift's object versioning
// (swift/versioning.ts, X-Versions-Enabled), so both APIs see the same
// versions: the container's sysmeta `versions-enabled` is 'true' (S3's
// Enabled) or 'false' (Suspended; absent: never enabled). Every version
// written while it is on is an object of the internal container
// `versions/<bucket>` named `<key>\u0001<inverted timestamp>` (a prefix walk
// lists a key's versions newest first), sharing the blobs of what it copies;
// the current version is also the object in the bucket, with its version id
// (its write's Swift timestamp, `1700000000.12345`) in its sysmeta
// `version-id`. An object written while versioning was off or suspended has
// no version id: the "null" version. A delete marker is an empty object of
// content type `application/x-deleted;swift_versions_deleted=1` among the
// versions.
import type { ContainerInfo, ObjectEntry, ObjectInfo } from '../store.ts';
import { ObjectStoreError, swiftTimestamp, timestampDate } from '../store.ts';
import { check } from './access.ts';
import { owner } from './buckets.ts';
import { loadBucket, versionsContainer, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import { quoteEtag } from './headers.ts';
import { listingParams, type S3Request } from './request.ts';
import { many, node, parseXml, text, xmlDocument, type XmlNode } from './xml.ts';

/** Container sysmeta: versioning on ('true') or suspended ('false'), as Swift's X-Versions-Enabled. */
export const VERSIONS_ENABLED = 'versions-enabled';
/** Object sysmeta: the version an object (or its copy among the versions) is. */
export const VERSION_ID = 'version-id';
export const DELETE_MARKER_CONTENT_TYPE = 'application/x-deleted;swift_versions_deleted=1';
const SEP = '\u0001';

/** Swift's internal form of a timestamp: 10 digits, a dot, 5 digits. */
const internalTs = (ts: string): string => Number(ts).toFixed(5).padStart(16, '0');
const invert = (ts: string): string => (9999999999.99999 - Number(ts)).toFixed(5).padStart(16, '0');
const uninvert = (inv: string): string => internalTs(String(9999999999.99999 - Number(inv)));
const versionName = (key: string, id: string): string => `${key}${SEP}${invert(id)}`;
const isVersionId = (id: string): boolean => /^\d{10}\.\d{5}$/.test(id);

export type VersioningState = 'Enabled' | 'Suspended' | null;
export const stateOf = (b: ContainerInfo): VersioningState => {
  const v = b.sysmeta[VERSIONS_ENABLED];
  if (v === undefined) return null;
  return ['true', '1', 'yes', 'on', 't', 'y'].includes(v.trim().toLowerCase()) ? 'Enabled' : 'Suspended';
};
export const versionOf = (o: { sysmeta: Record<string, string> }): string => o.sysmeta[VERSION_ID] ?? 'null';
const isMarker = (o: { contentType: string }): boolean => o.contentType === DELETE_MARKER_CONTENT_TYPE;

async function versions(ctx: S3Context, b: ContainerInfo, create: boolean): Promise<ContainerInfo | null> {
  const name = versionsContainer(b.name);
  const c = await ctx.store.getContainer(b.project, name, { internal: true });
  if (c || !create) return c;
  return (await ctx.store.createContainer(b.project, name, { internal: true })).container;
}

/** Keeps an object written before versioning (the null version) among the versions, as Swift does before it is replaced. */
async function keepUnversioned(ctx: S3Context, b: ContainerInfo, key: string, cur: ObjectInfo): Promise<void> {
  const v = (await versions(ctx, b, true))!;
  const id = internalTs(cur.timestamp);
  await ctx.store.copyObject({ container: b, name: key }, { container: v, name: versionName(key, id) }, {
    derive: (o) => ({ sysmeta: { ...o.sysmeta, [VERSION_ID]: id }, deleteAt: null }),
  }).catch((e) => { if (!(e instanceof ObjectStoreError && e.reason === 'ObjectNotFound')) throw e; });
}

export interface Write { sysmeta: Record<string, string>; after(o: ObjectInfo): Promise<void> }

/**
 * A write of `key` in the bucket: the sysmeta the new object gets (its
 * version id while versioning is on) and what follows the write (its copy
 * kept among the versions). Suspended or never enabled: a plain write.
 */
export async function versionedWrite(ctx: S3Context, b: ContainerInfo, key: string): Promise<Write> {
  if (stateOf(b) !== 'Enabled') return { sysmeta: {}, after: async () => {} };
  const cur = await ctx.store.headObject(b, key);
  if (cur && !cur.sysmeta[VERSION_ID]) await keepUnversioned(ctx, b, key, cur);
  const id = internalTs(swiftTimestamp());
  return {
    sysmeta: { [VERSION_ID]: id },
    async after() {
      const v = (await versions(ctx, b, true))!;
      await ctx.store.copyObject({ container: b, name: key }, { container: v, name: versionName(key, id) }, { derive: (o) => ({ sysmeta: o.sysmeta, deleteAt: null }) })
        .catch((e) => { if (!(e instanceof ObjectStoreError && e.reason === 'ObjectNotFound')) throw e; });
    },
  };
}

let lastMarker = 0;
/** A timestamp for a delete marker: now, and after the object's own. */
function markerTs(after: string | undefined): string {
  let t = Math.max(Date.now() / 1000, after ? Number(after) + 0.00001 : 0, lastMarker + 0.00001);
  t = Math.round(t * 100000) / 100000;
  lastMarker = t;
  return internalTs(String(t));
}

/** DELETE of a key without a version id while versioning is on: a delete marker becomes the newest version. */
export async function deleteWithMarker(ctx: S3Context, b: ContainerInfo, key: string): Promise<{ versionId: string }> {
  const cur = await ctx.store.headObject(b, key);
  if (cur && !cur.sysmeta[VERSION_ID]) await keepUnversioned(ctx, b, key, cur);
  const v = (await versions(ctx, b, true))!;
  const id = markerTs(cur?.timestamp);
  await ctx.store.putObject(v, versionName(key, id), (async function* () {})(), { size: 0, contentType: DELETE_MARKER_CONTENT_TYPE, sysmeta: { [VERSION_ID]: id } });
  if (cur) await ctx.store.deleteObject(b, key);
  return { versionId: id };
}

export interface FoundVersion { object: ObjectInfo; container: ContainerInfo; current: boolean; deleteMarker: boolean }

/** The version `versionId` of `key` (a delete marker included); null when none. */
export async function findVersion(ctx: S3Context, b: ContainerInfo, key: string, versionId: string): Promise<FoundVersion | null> {
  const cur = await ctx.store.headObject(b, key);
  if (versionId === 'null') return cur && !cur.sysmeta[VERSION_ID] ? { object: cur, container: b, current: true, deleteMarker: false } : null;
  if (!isVersionId(versionId)) return null;
  const v = await versions(ctx, b, false);
  const o = v ? await ctx.store.headObject(v, versionName(key, versionId)) : null;
  if (!o || !v) return null;
  return { object: o, container: v, current: !!cur && cur.sysmeta[VERSION_ID] === versionId, deleteMarker: isMarker(o) };
}

/** The id of the delete marker that is the newest version of `key`, if it is one (a GET of the key then says so). */
export async function latestIsDeleteMarker(ctx: S3Context, b: ContainerInfo, key: string): Promise<string | null> {
  const v = await versions(ctx, b, false);
  if (!v) return null;
  const [first] = await ctx.store.listObjects(v, { prefix: `${key}${SEP}`, limit: 1 });
  return first && first.kind === 'object' && isMarker(first) ? uninvert(first.name.slice(first.name.lastIndexOf(SEP) + 1)) : null;
}

/**
 * Removes one version for good. When it was the newest (the current object,
 * or a delete marker), the version before it becomes current, unless that is
 * a delete marker, as in S3 and Swift.
 */
export async function deleteVersion(ctx: S3Context, b: ContainerInfo, key: string, found: FoundVersion): Promise<void> {
  if (found.container.id === b.id) {
    await ctx.store.deleteObject(b, key);
    return;
  }
  await ctx.store.deleteObject(found.container, found.object.name);
  if (!found.current && !found.deleteMarker) return;
  const cur = await ctx.store.headObject(b, key);
  if (cur && !found.current) return;
  const [latest] = (await ctx.store.listObjects(found.container, { prefix: `${key}${SEP}`, limit: 1 })).filter((e) => e.kind === 'object');
  if (!latest || latest.kind !== 'object' || isMarker(latest)) {
    if (found.current) await ctx.store.deleteObject(b, key);
    return;
  }
  await ctx.store.copyObject({ container: found.container, name: latest.name }, { container: b, name: key });
}

// ---- configuration --------------------------------------------------------------

export async function getBucketVersioning(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const state = stateOf(b);
  return r.xml(xmlDocument('VersioningConfiguration', state ? [['Status', state]] : []));
}

export async function putBucketVersioning(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const doc = node(parseXml(await r.smallBody()).VersioningConfiguration);
  const status = doc && text(doc.Status);
  if (!doc || (status !== 'Enabled' && status !== 'Suspended')) throw s3Error('MalformedXML');
  if (text(doc.MfaDelete) === 'Enabled') throw s3Error('NotImplemented', 'MFA delete is not implemented.');
  if (b.sysmeta['versions-location']) throw s3Error('InvalidBucketState', 'The bucket keeps Swift versions in another container (X-Versions-Location or X-History-Location).');
  await ctx.store.updateContainer(b, { sysmeta: { [VERSIONS_ENABLED]: status === 'Enabled' ? 'true' : 'false' } });
}

// ---- ListObjectVersions -----------------------------------------------------------

export async function listObjectVersions(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'list');
  const { prefix, delimiter, max, enc } = listingParams(r);
  const keyMarker = r.query.get('key-marker') ?? '';
  const versionMarker = r.query.get('version-id-marker') ?? '';
  const v = await versions(ctx, b, false);

  // Resume after all of key-marker's versions, or after one of them (the null version comes before the others: it is the current one).
  let versionsAfter = keyMarker ? `${keyMarker}${SEP}\uffff` : undefined;
  const bucketAfter = keyMarker || undefined;
  if (keyMarker && versionMarker) {
    if (versionMarker === 'null') versionsAfter = `${keyMarker}${SEP}`;
    else if (isVersionId(versionMarker)) versionsAfter = versionName(keyMarker, versionMarker);
  }
  const opts = { prefix: prefix || undefined, delimiter: delimiter || undefined, limit: max + 1 };
  const currents = max === 0 ? [] : await ctx.store.listObjects(b, { ...opts, marker: bucketAfter });
  const older = max === 0 || !v ? [] : await ctx.store.listObjects(v, { ...opts, marker: versionsAfter });

  interface Item { key: string; rank: number; entry: ObjectEntry; id: string; subdir?: boolean }
  const items: Item[] = [];
  // The bucket's objects without a version id are the null versions (the versioned ones are listed from the versions).
  for (const e of currents) {
    if (e.kind === 'subdir') items.push({ key: e.name, rank: 0, entry: e, id: '', subdir: true });
    else if (!e.sysmeta[VERSION_ID]) items.push({ key: e.name, rank: 0, entry: e, id: 'null' });
  }
  for (const e of older) {
    if (e.kind === 'subdir') items.push({ key: e.name, rank: 0, entry: e, id: '', subdir: true });
    else {
      const at = e.name.lastIndexOf(SEP);
      if (at < 0) continue;
      items.push({ key: e.name.slice(0, at), rank: 1, entry: e, id: uninvert(e.name.slice(at + 1)) });
    }
  }
  items.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.rank - y.rank || (x.entry.name < y.entry.name ? -1 : 1)));
  const seenPrefixes = new Set<string>();
  const merged = items.filter((i) => {
    if (!i.subdir) return true;
    if (seenPrefixes.has(i.key) || i.key === keyMarker) return false;
    seenPrefixes.add(i.key);
    return true;
  });
  const pageItems = merged.slice(0, max);
  const truncated = merged.length > max;

  const versionsXml: XmlNode[] = [];
  const markersXml: XmlNode[] = [];
  const prefixes: XmlNode[] = [];
  const seenKeys = new Set<string>();
  for (const i of pageItems) {
    if (i.subdir) {
      prefixes.push([['Prefix', enc(i.key)]]);
      continue;
    }
    const e = i.entry as Extract<ObjectEntry, { kind: 'object' }>;
    // The newest version of a key is the first listed, unless the page resumed inside the key.
    const latest = !seenKeys.has(i.key) && !(keyMarker === i.key && versionMarker !== '');
    seenKeys.add(i.key);
    const modified = i.id === 'null' ? timestampDate(e.timestamp) : timestampDate(i.id);
    const common: XmlNode = [['Key', enc(i.key)], ['VersionId', i.id], ['IsLatest', latest], ['LastModified', modified.toISOString()]];
    if (isMarker(e)) markersXml.push([...common, ['Owner', owner(b.project)]]);
    else versionsXml.push([...common, ['ETag', quoteEtag(e.etag)], ['Size', e.size], ['StorageClass', 'STANDARD'], ['Owner', owner(b.project)]]);
  }
  const last = pageItems[pageItems.length - 1];
  return r.xml(xmlDocument('ListVersionsResult', [
    ['Name', b.name], ['Prefix', enc(prefix)], ['KeyMarker', enc(keyMarker)], ['VersionIdMarker', versionMarker],
    ['NextKeyMarker', truncated && last ? enc(last.key) : null], ['NextVersionIdMarker', truncated && last && !last.subdir ? last.id : null],
    ['MaxKeys', max], ['Delimiter', delimiter ? enc(delimiter) : null], ['IsTruncated', truncated],
    ...(r.query.get('encoding-type') === 'url' ? [['EncodingType', 'url'] as const] : []),
    ['Version', many(versionsXml)], ['DeleteMarker', many(markersXml)], ['CommonPrefixes', many(prefixes)],
  ]));
}
