// Multipart uploads: initiate, upload part (and UploadPartCopy), list parts,
// list uploads, complete, abort. Each bucket's uploads live in the internal
// container `s3-multipart+<bucket>` of its project: an upload is a record
// `u\u0001<key>\u0001<upload id>` (the new object's content type, metadata
// and ACL), each part an object `p\u0001<upload id>\u0001<part number>`.
// Completion composes the object from the parts' blobs (the store's compose:
// the parts' bytes are referenced, never copied) and removes the parts in the
// same transaction, so a crash leaves the upload or the object, whole.
import { createHash, randomBytes } from 'node:crypto';
import type { ContainerInfo, ObjectInfo } from '../store.ts';
import { timestampDate } from '../store.ts';
import { VERSION_ID } from '../swift/versions-layout.ts';
import { allowed, check, checkObjectCanned, SYS } from './access.ts';
import { emptyAndDelete, owner } from './buckets.ts';
import { checkQuotas, loadBucket, multipartContainer, storeError, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import { byteRange, keptHeaders, lastModified, parseCopySource, quoteEtag, tagSysmeta, unquote, userMetadata } from './headers.ts';
import { checkKey, PART_SIZES } from './objects.ts';
import { listingParams, type S3Request } from './request.ts';
import { abortDeadline, applyLifecycle, expirationHeader } from './lifecycle.ts';
import { headerTags } from './tagging.ts';
import { uriEncode } from './sigv4.ts';
import { findVersion, stateOf, versionedWrite, versionOf } from './versioning.ts';
import { many, node, parseXml, text, xmlDocument, type XmlNode } from './xml.ts';

const SEP = '\u0001';
export const MAX_PARTS = 10000;
const recordName = (key: string, uploadId: string) => `u${SEP}${key}${SEP}${uploadId}`;
const partPrefix = (uploadId: string) => `p${SEP}${uploadId}${SEP}`;
const partName = (uploadId: string, n: number) => `${partPrefix(uploadId)}${String(n).padStart(5, '0')}`;
/** Upload ids sort by time of initiation (S3 lists a key's uploads oldest first). */
const newUploadId = () => `${Date.now().toString(16).padStart(12, '0')}${randomBytes(12).toString('hex')}`;

async function uploadsOf(ctx: S3Context, b: ContainerInfo, create: boolean): Promise<ContainerInfo | null> {
  const name = multipartContainer(b.name);
  const c = await ctx.store.getContainer(b.project, name, { internal: true });
  if (c || !create) return c;
  return (await ctx.store.createContainer(b.project, name, { internal: true })).container;
}

/** The upload a request names (its uploadId on its key); NoSuchUpload when none. */
async function loadUpload(ctx: S3Context, r: S3Request, b: ContainerInfo): Promise<{ mp: ContainerInfo; record: ObjectInfo; uploadId: string }> {
  const uploadId = r.query.get('uploadId') ?? '';
  const mp = await uploadsOf(ctx, b, false);
  const record = mp && /^[0-9a-f]{36}$/.test(uploadId) ? await ctx.store.headObject(mp, recordName(r.key, uploadId)) : null;
  if (!mp || !record) throw s3Error('NoSuchUpload', undefined, [['UploadId', uploadId]]);
  return { mp, record, uploadId };
}

export async function createMultipartUpload(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  checkKey(r.key);
  await check(ctx.store, r, b, 'write');
  const acl = r.header('x-amz-acl');
  const sysmeta: Record<string, string> = { ...keptHeaders(r), initiator: r.cred?.userId ?? '' };
  if (acl !== undefined && checkObjectCanned(acl) !== 'private') sysmeta[SYS.objectAcl] = acl;
  Object.assign(sysmeta, tagSysmeta(headerTags(r)));
  const mp = (await uploadsOf(ctx, b, true))!;
  const uploadId = newUploadId();
  // an AbortIncompleteMultipartUpload rule: the upload (its parts too) expires at its deadline
  const abort = abortDeadline(b, r.key);
  await ctx.store.putObject(mp, recordName(r.key, uploadId), (async function* () {})(), {
    size: 0, contentType: r.header('content-type') ?? 'binary/octet-stream', metadata: userMetadata(r), sysmeta, deleteAt: abort?.at ?? null,
  });
  if (abort) r.reply.headers({ 'x-amz-abort-date': new Date(abort.at * 1000).toUTCString(), 'x-amz-abort-rule-id': abort.rule });
  return r.xml(xmlDocument('InitiateMultipartUploadResult', [['Bucket', b.name], ['Key', r.key], ['UploadId', uploadId]]));
}

function partNumberOf(r: S3Request): number {
  const v = r.query.get('partNumber') ?? '';
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > MAX_PARTS) {
    throw s3Error('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`, [['ArgumentName', 'partNumber'], ['ArgumentValue', v]]);
  }
  return Number(v);
}

export async function uploadPart(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'write');
  const n = partNumberOf(r);
  const { mp, record, uploadId } = await loadUpload(ctx, r, b);
  const size = r.declaredLength();
  const md5 = r.contentMd5();
  const part = await ctx.store.putObject(mp, partName(uploadId, n), r.body(), { size, md5, deleteAt: record.deleteAt }).catch((e) => { throw storeError(e, r); });
  r.reply.header('etag', quoteEtag(part.etag));
}

/** UploadPartCopy: a part from an existing object, or a range of it. */
export async function uploadPartCopy(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'write');
  const n = partNumberOf(r);
  const { mp, record, uploadId } = await loadUpload(ctx, r, b);
  const src = parseCopySource(r.header('x-amz-copy-source')!);
  const sb = await loadBucket(ctx, r, src.bucket);
  let source: ObjectInfo | null = null;
  let sourceContainer = sb;
  if (src.versionId !== undefined) {
    const found = await findVersion(ctx, sb, src.key, src.versionId);
    if (found && !found.deleteMarker) {
      source = found.object;
      sourceContainer = found.container;
    }
  } else source = await ctx.store.headObject(sb, src.key);
  const publicObject = !!source && ['public-read', 'public-read-write'].includes(source.sysmeta[SYS.objectAcl] ?? '');
  if (!await allowed(ctx.store, r, sb, 'read', publicObject)) throw s3Error('AccessDenied');
  if (!source) throw s3Error(src.versionId !== undefined ? 'NoSuchVersion' : 'NoSuchKey', undefined, [['Key', src.key]]);
  const rangeHeader = r.header('x-amz-copy-source-range');
  const range = rangeHeader !== undefined ? byteRange(rangeHeader, source.size) : null;
  if (rangeHeader !== undefined && !range) throw s3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', [['ArgumentName', 'x-amz-copy-source-range'], ['ArgumentValue', rangeHeader]]);
  let part: ObjectInfo;
  if (!range && /^[0-9a-f]{32}$/.test(source.etag)) {
    // the whole of a simple object: its blobs referenced, no byte copied
    part = await ctx.store.copyObject({ container: sourceContainer, name: source.name }, { container: mp, name: partName(uploadId, n) }, {
      derive: () => ({ metadata: {}, sysmeta: {}, contentType: 'application/octet-stream', deleteAt: record.deleteAt }),
    }).catch((e) => { throw storeError(e, r); });
  } else {
    const from = range ?? { start: 0, end: source.size };
    part = await ctx.store.putObject(mp, partName(uploadId, n), ctx.store.readObject(source, from), { size: from.end - from.start, deleteAt: record.deleteAt })
      .catch((e) => { throw storeError(e, r); });
  }
  return r.xml(xmlDocument('CopyPartResult', [['LastModified', lastModified(part).toISOString()], ['ETag', quoteEtag(part.etag)]]));
}

export async function completeMultipartUpload(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'write');
  const { mp, record, uploadId } = await loadUpload(ctx, r, b);
  const doc = node(parseXml(await r.smallBody()).CompleteMultipartUpload);
  if (!doc) throw s3Error('MalformedXML');
  const wanted = ((doc.Part as unknown[] | undefined) ?? []).map((p) => {
    const part = node(p);
    const n = text(part?.PartNumber);
    const etag = text(part?.ETag);
    if (!part || n === undefined || !/^\d+$/.test(n) || etag === undefined) throw s3Error('MalformedXML');
    return { n: Number(n), etag: unquote(etag) };
  });
  if (wanted.length === 0) throw s3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
  if (wanted.length > MAX_PARTS) throw s3Error('MalformedXML');
  for (let i = 1; i < wanted.length; i++) if (wanted[i]!.n <= wanted[i - 1]!.n) throw s3Error('InvalidPartOrder');
  const parts: ObjectInfo[] = [];
  for (const w of wanted) {
    const p = w.n >= 1 && w.n <= MAX_PARTS ? await ctx.store.headObject(mp, partName(uploadId, w.n)) : null;
    if (!p || p.etag !== w.etag) throw s3Error('InvalidPart', undefined, [['UploadId', uploadId], ['PartNumber', String(w.n)], ['ETag', w.etag]]);
    parts.push(p);
  }
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i]!.size < ctx.minPartSize) {
      throw s3Error('EntityTooSmall', undefined, [['ProposedSize', String(parts[i]!.size)], ['MinSizeAllowed', String(ctx.minPartSize)], ['PartNumber', String(wanted[i]!.n)], ['ETag', wanted[i]!.etag]]);
    }
  }
  const md5s = createHash('md5');
  for (const p of parts) md5s.update(Buffer.from(p.etag, 'hex'));
  const etag = `${md5s.digest('hex')}-${parts.length}`;
  await checkQuotas(ctx, r.cred, b, parts.reduce((n, p) => n + p.size, 0));
  const write = await versionedWrite(ctx, b, r.key);
  const o = await ctx.store.composeObject({ container: b, name: r.key }, parts.map((p) => ({ container: mp, name: p.name })), {
    etag, contentType: record.contentType, metadata: record.metadata,
    sysmeta: { ...Object.fromEntries(Object.entries(record.sysmeta).filter(([k]) => k !== 'initiator')), [PART_SIZES]: parts.map((p) => p.size).join(','), ...write.sysmeta },
    removeParts: true, deleteAt: null,
  }).then((made) => applyLifecycle(ctx.store, b, made)).catch((e) => { throw storeError(e, r); });
  await write.after(o);
  r.reply.headers(expirationHeader(o));
  await dropUpload(ctx, mp, r.key, uploadId);
  if (stateOf(b) || o.sysmeta[VERSION_ID]) r.reply.header('x-amz-version-id', versionOf(o));
  const location = `${r.req.protocol}://${r.req.headers.host ?? 'localhost'}/${uriEncode(b.name)}/${uriEncode(r.key, true)}`;
  return r.xml(xmlDocument('CompleteMultipartUploadResult', [['Location', location], ['Bucket', b.name], ['Key', r.key], ['ETag', quoteEtag(etag)]]));
}

/** Removes an upload's record and whatever parts are left. */
async function dropUpload(ctx: S3Context, mp: ContainerInfo, key: string, uploadId: string): Promise<void> {
  await ctx.store.deleteObject(mp, recordName(key, uploadId));
  for (;;) {
    const left = await ctx.store.listObjects(mp, { prefix: partPrefix(uploadId), limit: 1000 });
    for (const e of left) if (e.kind === 'object') await ctx.store.deleteObject(mp, e.name);
    if (left.length < 1000) break;
  }
}

export async function abortMultipartUpload(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'write');
  const { mp, uploadId } = await loadUpload(ctx, r, b);
  await dropUpload(ctx, mp, r.key, uploadId);
  r.reply.code(204);
}

export async function listParts(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'list');
  const { mp, record, uploadId } = await loadUpload(ctx, r, b);
  const { max } = listingParams(r, 'max-parts');
  const markerText = r.query.get('part-number-marker') ?? '0';
  if (!/^\d+$/.test(markerText)) throw s3Error('InvalidArgument', 'Provided part-number-marker not an integer', [['ArgumentName', 'part-number-marker'], ['ArgumentValue', markerText]]);
  const marker = Math.min(Number(markerText), MAX_PARTS);
  const entries = max === 0 ? [] : await ctx.store.listObjects(mp, { prefix: partPrefix(uploadId), marker: marker > 0 ? partName(uploadId, marker) : undefined, limit: max + 1 });
  const page = entries.filter((e) => e.kind === 'object').slice(0, max);
  const truncated = entries.length > max;
  const numberOf = (name: string) => Number(name.slice(name.lastIndexOf(SEP) + 1));
  const parts: XmlNode[] = page.map((e) => e.kind === 'object' ? [
    ['PartNumber', numberOf(e.name)], ['LastModified', timestampDate(e.timestamp).toISOString()], ['ETag', quoteEtag(e.etag)], ['Size', e.size],
  ] : []);
  const initiator = record.sysmeta.initiator ?? b.project;
  const last = page[page.length - 1];
  return r.xml(xmlDocument('ListPartsResult', [
    ['Bucket', b.name], ['Key', r.key], ['UploadId', uploadId],
    ['Initiator', [['ID', initiator], ['DisplayName', initiator]]], ['Owner', owner(b.project)], ['StorageClass', 'STANDARD'],
    ['PartNumberMarker', marker], ['NextPartNumberMarker', last ? numberOf(last.name) : marker], ['MaxParts', max], ['IsTruncated', truncated],
    ['Part', many(parts)],
  ]));
}

export async function listMultipartUploads(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'list');
  const { prefix, delimiter, max, enc } = listingParams(r, 'max-uploads');
  const keyMarker = r.query.get('key-marker') ?? '';
  const uploadIdMarker = r.query.get('upload-id-marker') ?? '';
  const mp = await uploadsOf(ctx, b, false);
  const marker = keyMarker ? (uploadIdMarker ? recordName(keyMarker, uploadIdMarker) : `u${SEP}${keyMarker}${SEP}\uffff`) : undefined;
  const entries = !mp || max === 0 ? [] : await ctx.store.listObjects(mp, { prefix: `u${SEP}${prefix}`, delimiter: delimiter || undefined, marker, limit: max + 1 });
  const page = entries.slice(0, max);
  const truncated = entries.length > max;
  const uploads: XmlNode[] = [];
  const prefixes: XmlNode[] = [];
  let nextKey = '';
  let nextId = '';
  for (const e of page) {
    const name = e.name.slice(2);
    if (e.kind === 'subdir') {
      prefixes.push([['Prefix', enc(name)]]);
      nextKey = name;
      continue;
    }
    const at = name.lastIndexOf(SEP);
    const key = name.slice(0, at);
    const uploadId = name.slice(at + 1);
    nextKey = key;
    nextId = uploadId;
    uploads.push([
      ['Key', enc(key)], ['UploadId', uploadId], ['Initiator', owner(b.project)], ['Owner', owner(b.project)],
      ['StorageClass', 'STANDARD'], ['Initiated', timestampDate(e.timestamp).toISOString()],
    ]);
  }
  return r.xml(xmlDocument('ListMultipartUploadsResult', [
    ['Bucket', b.name], ['KeyMarker', enc(keyMarker)], ['UploadIdMarker', uploadIdMarker],
    ['NextKeyMarker', truncated ? enc(nextKey) : null], ['NextUploadIdMarker', truncated ? nextId : null],
    ['Prefix', enc(prefix)], ['Delimiter', delimiter ? enc(delimiter) : null], ['MaxUploads', max], ['IsTruncated', truncated],
    ...(r.query.get('encoding-type') === 'url' ? [['EncodingType', 'url'] as const] : []),
    ['Upload', many(uploads)], ['CommonPrefixes', many(prefixes)],
  ]));
}

export { emptyAndDelete };
