// Bucket versioning, kept as Swift's object versioning keeps it (one layout
// for both APIs): the bucket's sysmeta `versioning` is Enabled or Suspended;
// the current version of a key is the object in the bucket, with its version
// id in the object's sysmeta (`version-id`; none: the "null" version written
// before versioning); older versions and delete markers are objects of the
// internal container `versions+<bucket>` named `<key>\u0001<version sort id>`,
// newest first (the sort id falls as time passes), sharing the blobs of what
// they archive (a copy by reference, no byte copied). A delete marker is an
// empty object there with sysmeta `delete-marker`.
import type { ContainerInfo, ObjectEntry, ObjectInfo } from '../store.ts';
import { swiftTimestamp, timestampDate } from '../store.ts';
import { check, SYS } from './access.ts';
import { owner } from './buckets.ts';
import { loadBucket, versionsContainer, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import { quoteEtag } from './headers.ts';
import type { S3Request } from './request.ts';
import { uriEncode } from './sigv4.ts';
import { many, node, parseXml, text, xmlDocument, type XmlNode } from './xml.ts';

export const VERSION_ID = 'version-id';
export const DELETE_MARKER = 'delete-marker';
const SEP = '\u0001';

export type VersioningState = 'Enabled' | 'Suspended' | null;
export const stateOf = (b: ContainerInfo): VersioningState => {
  const v = b.sysmeta[SYS.versioning];
  return v === 'Enabled' || v === 'Suspended' ? v : null;
};

/** A new version id: falls as time passes, so a key's versions list newest first. */
function sortIdOf(ts: string): string {
  return String(1e15 - Math.round(Number(ts) * 1e5)).padStart(16, '0');
}
export const newVersionId = (): string => sortIdOf(swiftTimestamp());
const versionName = (key: string, sortId: string) => `${key}${SEP}${sortId}`;
export const versionOf = (o: { sysmeta: Record<string, string> }): string => o.sysmeta[VERSION_ID] ?? 'null';
const sortIdOfObject = (o: { sysmeta: Record<string, string>; timestamp: string }): string => {
  const v = o.sysmeta[VERSION_ID];
  return v && v !== 'null' ? v : sortIdOf(o.timestamp);
};

async function versions(ctx: S3Context, b: ContainerInfo, create: boolean): Promise<ContainerInfo | null> {
  const name = versionsContainer(b.name);
  const c = await ctx.store.getContainer(b.project, name, { internal: true });
  if (c || !create) return c;
  return (await ctx.store.createContainer(b.project, name, { internal: true })).container;
}

/**
 * Before a write replaces `key` in a versioned bucket: keeps the current
 * object as an older version (unless it is the null version of a suspended
 * bucket, which the write replaces), and returns the sysmeta the new object
 * gets (its version id; none when the bucket never had versioning).
 */
export async function beforeWrite(ctx: S3Context, b: ContainerInfo, key: string): Promise<Record<string, string>> {
  const state = stateOf(b);
  if (!state) return {};
  const current = await ctx.store.headObject(b, key);
  if (current && !(state === 'Suspended' && versionOf(current) === 'null')) await archive(ctx, b, key, current);
  return { [VERSION_ID]: state === 'Enabled' ? newVersionId() : 'null' };
}

async function archive(ctx: S3Context, b: ContainerInfo, key: string, current: ObjectInfo): Promise<void> {
  const v = (await versions(ctx, b, true))!;
  await ctx.store.copyObject({ container: b, name: key }, { container: v, name: versionName(key, sortIdOfObject(current)) }, {
    derive: (src) => ({ sysmeta: { ...src.sysmeta, [VERSION_ID]: versionOf(src) }, deleteAt: null }),
  });
}

/** DELETE of a key without a version id in a versioned bucket: the current object archived, a delete marker made newest. */
export async function deleteWithMarker(ctx: S3Context, b: ContainerInfo, key: string): Promise<{ versionId: string }> {
  const state = stateOf(b)!;
  const current = await ctx.store.headObject(b, key);
  if (current && !(state === 'Suspended' && versionOf(current) === 'null')) await archive(ctx, b, key, current);
  const id = state === 'Enabled' ? newVersionId() : 'null';
  const v = (await versions(ctx, b, true))!;
  await ctx.store.putObject(v, versionName(key, id === 'null' ? sortIdOf(swiftTimestamp()) : id), (async function* () {})(), {
    size: 0, contentType: 'application/x-deleted;swift_versions_deleted=1', sysmeta: { [VERSION_ID]: id, [DELETE_MARKER]: '1' },
  });
  if (current) await ctx.store.deleteObject(b, key);
  return { versionId: id };
}

export interface FoundVersion { object: ObjectInfo; current: boolean; deleteMarker: boolean }

/** The version `versionId` of `key`: the current object or an archived one (a delete marker included); null when none. */
export async function findVersion(ctx: S3Context, b: ContainerInfo, key: string, versionId: string): Promise<FoundVersion | null> {
  const current = await ctx.store.headObject(b, key);
  if (current && versionOf(current) === versionId) return { object: current, current: true, deleteMarker: false };
  const v = await versions(ctx, b, false);
  if (!v) return null;
  if (versionId !== 'null') {
    if (!/^\d{16}$/.test(versionId)) return null;
    const o = await ctx.store.headObject(v, versionName(key, versionId));
    return o ? { object: o, current: false, deleteMarker: o.sysmeta[DELETE_MARKER] === '1' } : null;
  }
  const all = await ctx.store.listObjects(v, { prefix: `${key}${SEP}`, limit: 1000 });
  for (const e of all) {
    if (e.kind === 'object' && versionOf(e) === 'null' && e.name.lastIndexOf(SEP) === key.length) {
      const o = await ctx.store.headObject(v, e.name);
      if (o) return { object: o, current: false, deleteMarker: o.sysmeta[DELETE_MARKER] === '1' };
    }
  }
  return null;
}

/** Whether the newest version of `key` is a delete marker (a GET of the key then says so). */
export async function latestIsDeleteMarker(ctx: S3Context, b: ContainerInfo, key: string): Promise<string | null> {
  const v = await versions(ctx, b, false);
  if (!v) return null;
  const [first] = await ctx.store.listObjects(v, { prefix: `${key}${SEP}`, limit: 1 });
  return first && first.kind === 'object' && first.sysmeta[DELETE_MARKER] === '1' ? versionOf(first) : null;
}

/**
 * Removes one version for good. When it was the current object, the newest
 * older version (if it is not a delete marker) becomes current again, as in S3.
 */
export async function deleteVersion(ctx: S3Context, b: ContainerInfo, key: string, found: FoundVersion): Promise<void> {
  const v = await versions(ctx, b, false);
  if (found.current) await ctx.store.deleteObject(b, key);
  else if (v) await ctx.store.deleteObject(v, found.object.name);
  if (!v) return;
  if (await ctx.store.headObject(b, key)) return;
  const [first] = await ctx.store.listObjects(v, { prefix: `${key}${SEP}`, limit: 1 });
  if (!first || first.kind !== 'object' || first.sysmeta[DELETE_MARKER] === '1') return;
  // the newest older version becomes current (by reference), then leaves the versions container
  await ctx.store.copyObject({ container: v, name: first.name }, { container: b, name: key }, { derive: (src) => ({ sysmeta: src.sysmeta }) });
  await ctx.store.deleteObject(v, first.name);
}

// ---- configuration --------------------------------------------------------------

export async function getBucketVersioning(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r.cred, b, 'owner');
  const state = stateOf(b);
  return r.xml(xmlDocument('VersioningConfiguration', state ? [['Status', state]] : []));
}

export async function putBucketVersioning(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r.cred, b, 'owner');
  const doc = node(parseXml(await r.smallBody()).VersioningConfiguration);
  const status = doc && text(doc.Status);
  if (!doc || (status !== 'Enabled' && status !== 'Suspended')) throw s3Error('MalformedXML');
  if (text(doc.MfaDelete) === 'Enabled') throw s3Error('NotImplemented', 'MFA delete is not implemented.');
  await ctx.store.updateContainer(b, { sysmeta: { [SYS.versioning]: status } });
}

// ---- ListObjectVersions -----------------------------------------------------------

export async function listObjectVersions(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r.cred, b, 'list');
  const prefix = r.query.get('prefix') ?? '';
  const delimiter = r.query.get('delimiter') ?? '';
  const keyMarker = r.query.get('key-marker') ?? '';
  const versionMarker = r.query.get('version-id-marker') ?? '';
  const maxRaw = r.query.get('max-keys');
  if (maxRaw !== undefined && !/^\d+$/.test(maxRaw)) throw s3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', [['ArgumentName', 'max-keys'], ['ArgumentValue', maxRaw]]);
  const max = Math.min(1000, maxRaw === undefined ? 1000 : Number(maxRaw));
  const enc = r.query.get('encoding-type') === 'url' ? (s: string) => uriEncode(s, true) : (s: string) => s;
  const v = await versions(ctx, b, false);

  // Where to resume: after all of key-marker's versions, or after one of them.
  let currentOfMarker = false;
  let versionsAfter = keyMarker ? `${keyMarker}${SEP}\uffff` : undefined;
  if (keyMarker && versionMarker) {
    const cur = await ctx.store.headObject(b, keyMarker);
    if (cur && versionOf(cur) === versionMarker) versionsAfter = `${keyMarker}${SEP}`;
    else if (/^\d{16}$/.test(versionMarker)) versionsAfter = versionName(keyMarker, versionMarker);
    currentOfMarker = true;
  }
  void currentOfMarker;
  const opts = { prefix: prefix || undefined, delimiter: delimiter || undefined, limit: max + 1 };
  const currents = max === 0 ? [] : await ctx.store.listObjects(b, { ...opts, marker: keyMarker || undefined });
  const older = max === 0 || !v ? [] : await ctx.store.listObjects(v, { ...opts, marker: versionsAfter });

  type Item = { key: string; rank: number; entry: ObjectEntry; subdir?: boolean };
  const items: Item[] = [];
  for (const e of currents) items.push({ key: e.name, rank: 0, entry: e, subdir: e.kind === 'subdir' });
  for (const e of older) {
    if (e.kind === 'subdir') items.push({ key: e.name, rank: 0, entry: e, subdir: true });
    else {
      const at = e.name.lastIndexOf(SEP);
      if (at < 0) continue;
      items.push({ key: e.name.slice(0, at), rank: 1, entry: e });
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

  const hasCurrent = new Set(currents.filter((e) => e.kind === 'object').map((e) => e.name));
  const firstSeen = new Set<string>();
  const versionsXml: XmlNode[] = [];
  const markersXml: XmlNode[] = [];
  const prefixes: XmlNode[] = [];
  // Which is the newest (IsLatest) archived entry of a key with no current object.
  for (const i of pageItems) {
    if (i.subdir) {
      prefixes.push([['Prefix', enc(i.key)]]);
      continue;
    }
    const e = i.entry as Extract<ObjectEntry, { kind: 'object' }>;
    let latest = false;
    if (i.rank === 0) latest = true;
    else if (!firstSeen.has(i.key)) {
      firstSeen.add(i.key);
      const resumedInside = keyMarker === i.key && versionMarker !== '';
      latest = !resumedInside && !hasCurrent.has(i.key) && !(await ctx.store.headObject(b, i.key));
    }
    if (i.rank === 0) firstSeen.add(i.key);
    const common: XmlNode = [['Key', enc(i.key)], ['VersionId', versionOf(e)], ['IsLatest', latest], ['LastModified', timestampDate(e.timestamp).toISOString()]];
    if (e.sysmeta[DELETE_MARKER] === '1') markersXml.push([...common, ['Owner', owner(b.project)]]);
    else versionsXml.push([...common, ['ETag', quoteEtag(e.etag)], ['Size', e.size], ['StorageClass', 'STANDARD'], ['Owner', owner(b.project)]]);
  }
  const last = pageItems[pageItems.length - 1];
  const lastVersion = last && !last.subdir ? versionOf(last.entry as { sysmeta: Record<string, string> }) : '';
  return r.xml(xmlDocument('ListVersionsResult', [
    ['Name', b.name], ['Prefix', enc(prefix)], ['KeyMarker', enc(keyMarker)], ['VersionIdMarker', versionMarker],
    ['NextKeyMarker', truncated && last ? enc(last.key) : null], ['NextVersionIdMarker', truncated && last && !last.subdir ? lastVersion : null],
    ['MaxKeys', max], ['Delimiter', delimiter ? enc(delimiter) : null], ['IsTruncated', truncated],
    ...(r.query.get('encoding-type') === 'url' ? [['EncodingType', 'url'] as const] : []),
    ['Version', many(versionsXml)], ['DeleteMarker', many(markersXml)], ['CommonPrefixes', many(prefixes)],
  ]));
}
