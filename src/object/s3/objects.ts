// Object operations: GetObject, HeadObject (ranges, conditionals, versions),
// PutObject (streamed into the store, Content-MD5 and signed payload hashes
// checked as the bytes pass), CopyObject (by reference: no byte copied),
// DeleteObject, DeleteObjects, and the object's ACL.
import { Readable } from 'node:stream';
import type { Credentials } from '../../http/auth.ts';
import type { ContainerInfo, ObjectInfo, WriteConditions } from '../store.ts';
import { dloManifest } from '../swift/large-objects.ts';
import { dloEtag } from '../swift/slo-manifest.ts';
import { allowed, check, checkObjectCanned, SYS } from './access.ts';
import { aclDocument, cannedOfDocument } from './buckets.ts';
import { checkQuotas, loadBucket, storeError, type S3Context } from './context.ts';
import { S3Error, s3Error } from './errors.ts';
import {
  byteRange, copySourceConditions, type HeaderSource, isKeptHeader, keptHeaders, lastModified, objectHeaders, parseCopySource, quoteEtag, readConditions,
  responseOverrides, TAGGING, tagSysmeta, unquote, userMetadata, withoutKeptHeaders,
} from './headers.ts';
import type { S3Request } from './request.ts';
import { VERSION_ID } from '../swift/versions-layout.ts';
import { deleteVersion, deleteWithMarker, findVersion, latestIsDeleteMarker, stateOf, versionedWrite, versionOf } from './versioning.ts';
import { applyLifecycle, expirationHeader } from './lifecycle.ts';
import { headerTags, parseTagging, taggingCountHeader } from './tagging.ts';
import { many, node, parseXml, text, xmlDocument, type XmlNode } from './xml.ts';

/** Object sysmeta: the part sizes of a completed multipart upload, comma-separated (GET/HEAD ?partNumber=). */
export const PART_SIZES = 's3-part-sizes';

/** S3's longest key, in bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;
const STORAGE_CLASSES = ['STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'DEEP_ARCHIVE', 'GLACIER_IR', 'OUTPOSTS', 'EXPRESS_ONEZONE', 'SNOW'];

export function checkKey(key: string): void {
  if (key === '') throw s3Error('InvalidRequest', 'A key is required.');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw s3Error('KeyTooLongError', undefined, [['MaxSizeAllowed', String(MAX_KEY_BYTES)], ['Size', String(Buffer.byteLength(key))]]);
}

function checkStorageClass(r: S3Request): void {
  const sc = r.header('x-amz-storage-class');
  if (sc !== undefined && !STORAGE_CLASSES.includes(sc)) throw s3Error('InvalidStorageClass', undefined, [['StorageClassRequested', sc]]);
}

function refuseUnsupported(r: S3Request): void {
  if (r.header('x-amz-server-side-encryption-customer-algorithm') !== undefined) throw s3Error('NotImplemented', 'Server-side encryption with customer keys is not implemented.');
  const sse = r.header('x-amz-server-side-encryption');
  if (sse !== undefined && sse !== 'AES256') throw s3Error('NotImplemented', 'Server-side encryption with KMS is not implemented.');
  if (r.header('x-amz-website-redirect-location') !== undefined) throw s3Error('NotImplemented', 'Website redirects are not implemented.');
  if (r.header('x-amz-object-lock-mode') !== undefined) throw s3Error('NotImplemented', 'Object lock is not implemented.');
}

/** The sysmeta of a new object: its canned ACL (if not private), its content headers, its tags, its version. */
function writeSysmeta(r: HeaderSource, version: Record<string, string>): Record<string, string> {
  const acl = r.header('x-amz-acl');
  return {
    ...keptHeaders(r),
    ...(acl !== undefined && checkObjectCanned(acl) !== 'private' ? { [SYS.objectAcl]: acl } : {}),
    ...tagSysmeta(headerTags(r)),
    ...version,
  };
}

const objectPublic = (o: ObjectInfo | null | undefined) => !!o && ['public-read', 'public-read-write'].includes(o.sysmeta[SYS.objectAcl] ?? '');

/**
 * Read access to an object, or to the version of it named: the bucket's rules, or that
 * object's own public-read ACL (a public current version opens no private older one);
 * AccessDenied otherwise.
 */
async function readable(ctx: S3Context, r: S3Request, b: ContainerInfo, key: string, versionId?: string): Promise<void> {
  if (await allowed(ctx.store, r, b, 'read')) return;
  const o = versionId !== undefined ? (await findVersion(ctx, b, key, versionId))?.object : await ctx.store.headObject(b, key);
  await check(ctx.store, r, b, 'read', objectPublic(o));
}

function versionHeader(r: S3Request, b: ContainerInfo, o: { sysmeta: Record<string, string> }): void {
  if (stateOf(b) || o.sysmeta[VERSION_ID]) r.reply.header('x-amz-version-id', versionOf(o));
}

/** GetObject and HeadObject. */
export async function getObject(ctx: S3Context, r: S3Request, head: boolean): Promise<unknown> {
  const b = await loadBucket(ctx, r);
  checkKey(r.key);
  const versionId = r.query.get('versionId');
  await readable(ctx, r, b, r.key, versionId);
  const overrides = responseOverrides(r);
  let o: ObjectInfo | null;
  if (versionId !== undefined) {
    const found = await findVersion(ctx, b, r.key, versionId);
    if (!found) throw s3Error(head ? 'NoSuchKey' : 'NoSuchVersion', undefined, [['Key', r.key], ['VersionId', versionId]]);
    if (found.deleteMarker) {
      r.reply.header('x-amz-delete-marker', 'true').header('x-amz-version-id', versionId).header('last-modified', lastModified(found.object).toUTCString());
      throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.', [['Method', r.req.method], ['ResourceType', 'DeleteMarker']], { allow: 'DELETE' });
    }
    o = found.object;
  } else {
    o = await ctx.store.headObject(b, r.key);
    if (!o) {
      if (stateOf(b)) {
        const marker = await latestIsDeleteMarker(ctx, b, r.key);
        if (marker) r.reply.header('x-amz-delete-marker', 'true').header('x-amz-version-id', marker);
      }
      throw s3Error('NoSuchKey', undefined, [['Key', r.key]]);
    }
  }
  versionHeader(r, b, o);
  // A Swift dynamic large object (X-Object-Manifest) reads as its segments, in order, as Swift serves it.
  let segments: ObjectInfo[] | null = null;
  const manifest = dloManifest(o);
  if (manifest !== undefined) {
    segments = await dloSegments(ctx, r, b, manifest);
    o = { ...o, size: segments.reduce((n, x) => n + x.size, 0), etag: dloEtag(segments.map((x) => x.etag)) };
  }
  const headers = objectHeaders(o);
  if (readConditions(r, o) === 'not-modified') {
    r.reply.code(304).headers({ etag: headers.etag!, 'last-modified': headers['last-modified']! });
    return r.reply.send();
  }
  const partNumber = r.query.get('partNumber');
  let range = byteRange(r.header('range'), o.size);
  if (partNumber !== undefined) {
    // A part of a completed multipart upload (its sizes kept at completion); part 1 of a simple object is the object.
    if (r.header('range') !== undefined) throw s3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
    const sizes = (o.sysmeta[PART_SIZES] ?? '').split(',').filter((x) => x !== '').map(Number);
    const n = /^\d{1,5}$/.test(partNumber) ? Number(partNumber) : 0;
    const count = sizes.length || 1;
    if (n < 1 || n > count) throw s3Error('InvalidPartNumber', undefined, [['PartNumberRequested', partNumber], ['ActualPartCount', String(count)]]);
    if (sizes.length) {
      const start = sizes.slice(0, n - 1).reduce((a, x) => a + x, 0);
      range = { start, end: start + sizes[n - 1]! };
      r.reply.header('x-amz-mp-parts-count', String(sizes.length));
    } else range = null;
  }
  r.reply.headers({ ...headers, ...taggingCountHeader(o), ...expirationHeader(o), ...overrides });
  if (range) {
    r.reply.code(206).header('content-range', `bytes ${range.start}-${range.end - 1}/${o.size}`).header('content-length', String(range.end - range.start));
  } else {
    r.reply.header('content-length', String(o.size));
  }
  if (head) return r.reply.send();
  if (segments) return r.reply.send(Readable.from(readSegments(ctx, segments, range ?? { start: 0, end: o.size })));
  return r.reply.send(ctx.store.readObject(o, range ?? undefined));
}

/** The segments of a dynamic large object: the objects under `<container>/<prefix>` of the bucket's project, in listing order; the caller must be able to read them. */
async function dloSegments(ctx: S3Context, r: S3Request, b: ContainerInfo, manifest: string): Promise<ObjectInfo[]> {
  const slash = manifest.indexOf('/');
  const c = slash > 0 ? await ctx.store.getContainer(b.project, manifest.slice(0, slash)) : null;
  if (!c) return [];
  if (c.id !== b.id) await check(ctx.store, r, c, 'read');
  const out: ObjectInfo[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await ctx.store.listObjects(c, { prefix: manifest.slice(slash + 1), marker, limit: 1000 });
    for (const e of page) {
      const seg = e.kind === 'object' ? await ctx.store.headObject(c, e.name) : null;
      if (seg) out.push(seg);
    }
    if (page.length < 1000) break;
    marker = page[page.length - 1]!.name;
  }
  return out;
}

async function* readSegments(ctx: S3Context, segments: ObjectInfo[], range: { start: number; end: number }): AsyncGenerator<Buffer> {
  let offset = 0;
  for (const seg of segments) {
    const from = Math.max(range.start - offset, 0);
    const to = Math.min(range.end - offset, seg.size);
    offset += seg.size;
    if (to <= from) continue;
    for await (const chunk of ctx.store.readObject(seg, { start: from, end: to })) yield chunk as Buffer;
  }
}

export async function putObject(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  checkKey(r.key);
  await check(ctx.store, r, b, 'write');
  refuseUnsupported(r);
  checkStorageClass(r);
  const size = r.declaredLength();
  const ifNoneMatch = r.header('if-none-match');
  const ifMatch = r.header('if-match');
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw s3Error('NotImplemented', 'If-None-Match on PUT takes only "*".');
  const o = await writeObject(ctx, r, b, r.key, r.body(), {
    size, md5: r.contentMd5(),
    ...(ifNoneMatch !== undefined ? { ifNoneMatch: '*' as const } : {}),
    ...(ifMatch !== undefined ? { ifMatch: ifMatch.trim() === '*' ? '*' as const : ifMatch.split(',').map(unquote) } : {}),
  }).catch((e) => { throw storeError(e, r); });
  r.reply.headers({ etag: quoteEtag(o.etag), ...expirationHeader(o) });
  versionHeader(r, b, o);
  echoChecksum(r);
}

/**
 * Writes a new object from `src`'s headers (or a form's fields): quotas
 * checked first, the version kept in a versioned bucket, the bucket's
 * lifecycle rules applied. `tagging`: a Tagging document (a POST form's).
 */
export async function writeObject(ctx: S3Context, src: HeaderSource & { cred: Credentials | null }, b: ContainerInfo, key: string, body: AsyncIterable<Buffer>,
  o: WriteConditions & { size?: number; md5?: string; tagging?: string } = {}): Promise<ObjectInfo> {
  const metadata = userMetadata(src);
  const tags = o.tagging !== undefined ? tagSysmeta(parseTagging(o.tagging)) : {};
  await checkQuotas(ctx, src.cred, b, o.size ?? 0);
  const write = await versionedWrite(ctx, b, key);
  const sysmeta = { ...writeSysmeta(src, write.sysmeta), ...tags };
  const made = await ctx.store.putObject(b, key, body, {
    size: o.size, md5: o.md5, contentType: src.header('content-type') ?? 'binary/octet-stream', metadata, sysmeta, ifNoneMatch: o.ifNoneMatch, ifMatch: o.ifMatch,
  });
  const done = await applyLifecycle(ctx.store, b, made);
  await write.after(done);
  return done;
}

/** A checksum the client sent is echoed (it was checked as the body passed). */
function echoChecksum(r: S3Request): void {
  for (const a of ['crc32', 'crc32c', 'sha1', 'sha256', 'crc64nvme']) {
    const v = r.header(`x-amz-checksum-${a}`);
    if (v !== undefined) r.reply.header(`x-amz-checksum-${a}`, v);
  }
}

export async function copyObject(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  checkKey(r.key);
  await check(ctx.store, r, b, 'write');
  refuseUnsupported(r);
  checkStorageClass(r);
  const src = parseCopySource(r.header('x-amz-copy-source')!);
  const sb = await loadBucket(ctx, r, src.bucket);
  let source: ObjectInfo | null;
  let sourceName = src.key;
  let sourceContainer = sb;
  await readable(ctx, r, sb, src.key, src.versionId);
  if (src.versionId !== undefined) {
    const found = await findVersion(ctx, sb, src.key, src.versionId);
    if (!found) throw s3Error('NoSuchVersion', undefined, [['Key', src.key], ['VersionId', src.versionId]]);
    if (found.deleteMarker) throw s3Error('InvalidRequest', 'The source of a copy request may not specifically refer to a delete marker by version id.');
    source = found.object;
    sourceName = found.object.name;
    sourceContainer = found.container;
  } else {
    source = await ctx.store.headObject(sb, src.key);
  }
  if (!source) throw s3Error('NoSuchKey', undefined, [['Key', src.key]]);
  copySourceConditions(r, source);
  const directive = r.header('x-amz-metadata-directive') ?? 'COPY';
  if (directive !== 'COPY' && directive !== 'REPLACE') throw s3Error('InvalidArgument', 'Unknown metadata directive.', [['ArgumentName', 'x-amz-metadata-directive'], ['ArgumentValue', directive]]);
  const same = sb.id === b.id && src.key === r.key && src.versionId === undefined;
  if (same && directive === 'COPY' && r.header('x-amz-storage-class') === undefined && r.header('x-amz-acl') === undefined && !stateOf(b)) {
    throw s3Error('InvalidRequest', 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata, storage class, website redirect location or encryption attributes.');
  }
  const metadata = directive === 'REPLACE' ? userMetadata(r) : undefined;
  await checkQuotas(ctx, r.cred, b, source.size);
  const write = await versionedWrite(ctx, b, r.key);
  const acl = r.header('x-amz-acl');
  if (acl !== undefined) checkObjectCanned(acl);
  const tagging = r.header('x-amz-tagging-directive') ?? 'COPY';
  if (tagging !== 'COPY' && tagging !== 'REPLACE') throw s3Error('InvalidArgument', 'Unknown tagging directive.', [['ArgumentName', 'x-amz-tagging-directive'], ['ArgumentValue', tagging]]);
  const newTags = tagging === 'REPLACE' ? tagSysmeta(headerTags(r)) : undefined;
  const o = await ctx.store.copyObject({ container: sourceContainer, name: sourceName }, { container: b, name: r.key }, {
    derive: (s) => {
      const kept = withoutKeptHeaders(s.sysmeta);
      delete kept[VERSION_ID];
      if (acl !== undefined) delete kept[SYS.objectAcl];
      if (newTags) delete kept[TAGGING];
      return {
        contentType: directive === 'REPLACE' ? r.header('content-type') ?? 'binary/octet-stream' : s.contentType,
        metadata: metadata ?? s.metadata,
        sysmeta: {
          ...kept,
          ...(directive === 'REPLACE' ? keptHeaders(r) : Object.fromEntries(Object.entries(s.sysmeta).filter(([k]) => isKeptHeader(k)))),
          ...(acl !== undefined && acl !== 'private' ? { [SYS.objectAcl]: acl } : {}),
          ...newTags,
          ...write.sysmeta,
        },
        deleteAt: null,
      };
    },
  }).then((made) => applyLifecycle(ctx.store, b, made)).catch((e) => { throw storeError(e, r); });
  await write.after(o);
  versionHeader(r, b, o);
  r.reply.headers(expirationHeader(o));
  if (source.sysmeta[VERSION_ID]) r.reply.header('x-amz-copy-source-version-id', versionOf(source));
  return r.xml(xmlDocument('CopyObjectResult', [['LastModified', lastModified(o).toISOString()], ['ETag', quoteEtag(o.etag)]]));
}

/** Deletes one key (or one version of it); what S3 reports about it. */
async function deleteOne(ctx: S3Context, b: ContainerInfo, key: string, versionId: string | undefined): Promise<{ versionId?: string; deleteMarker?: boolean }> {
  if (versionId !== undefined) {
    const found = await findVersion(ctx, b, key, versionId);
    if (found) await deleteVersion(ctx, b, key, found);
    return { versionId, ...(found?.deleteMarker ? { deleteMarker: true } : {}) };
  }
  if (stateOf(b) === 'Enabled') {
    const { versionId: id } = await deleteWithMarker(ctx, b, key);
    return { versionId: id, deleteMarker: true };
  }
  await ctx.store.deleteObject(b, key);
  return {};
}

export async function deleteObject(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  checkKey(r.key);
  await check(ctx.store, r, b, 'write');
  const done = await deleteOne(ctx, b, r.key, r.query.get('versionId')).catch((e) => { throw storeError(e, r); });
  if (done.deleteMarker) r.reply.header('x-amz-delete-marker', 'true');
  if (done.versionId !== undefined) r.reply.header('x-amz-version-id', done.versionId);
  r.reply.code(204);
}

/** DeleteObjects: up to 1,000 keys; each result reported (only the errors when Quiet). */
export async function deleteObjects(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'write');
  const doc = node(parseXml(await r.smallBody()).Delete);
  if (!doc) throw s3Error('MalformedXML');
  const quiet = text(doc.Quiet) === 'true';
  const objects = (doc.Object as unknown[] | undefined) ?? [];
  if (objects.length === 0 || objects.length > 1000) throw s3Error('MalformedXML');
  const deleted: XmlNode[] = [];
  const errors: XmlNode[] = [];
  for (const item of objects) {
    const o = node(item);
    const key = o && text(o.Key);
    if (!o || key === undefined) throw s3Error('MalformedXML');
    const versionId = text(o.VersionId);
    try {
      checkKey(key);
      const done = await deleteOne(ctx, b, key, versionId);
      if (!quiet) {
        deleted.push([['Key', key], ['VersionId', versionId ?? null],
          ['DeleteMarker', done.deleteMarker ? true : null], ['DeleteMarkerVersionId', done.deleteMarker && versionId === undefined ? done.versionId ?? null : null]]);
      }
    } catch (e) {
      const err = storeError(e, r);
      if (!(err instanceof S3Error)) throw err;
      errors.push([['Key', key], ['VersionId', versionId ?? null], ['Code', err.s3Code], ['Message', err.message]]);
    }
  }
  return r.xml(xmlDocument('DeleteResult', [['Deleted', many(deleted)], ['Error', many(errors)]]));
}

// ---- object ACL -----------------------------------------------------------------

export async function getObjectAcl(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  checkKey(r.key);
  await check(ctx.store, r, b, 'read');
  const o = await ctx.store.headObject(b, r.key);
  if (!o) throw s3Error('NoSuchKey', undefined, [['Key', r.key]]);
  return r.xml(aclDocument(b.project, o.sysmeta[SYS.objectAcl] ?? 'private'));
}

export async function putObjectAcl(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  checkKey(r.key);
  await check(ctx.store, r, b, 'write');
  const o = await ctx.store.headObject(b, r.key);
  if (!o) throw s3Error('NoSuchKey', undefined, [['Key', r.key]]);
  const header = r.header('x-amz-acl');
  const body = await r.smallBody();
  const canned = header !== undefined ? checkObjectCanned(header) : body.trim() ? cannedOfDocument(body) : undefined;
  if (canned === undefined) throw s3Error('MissingSecurityHeader', 'Your request was missing a required header', [['MissingHeaderName', 'x-amz-acl']]);
  const sysmeta = { ...o.sysmeta };
  if (canned === 'private') delete sysmeta[SYS.objectAcl];
  else sysmeta[SYS.objectAcl] = canned;
  await ctx.store.updateObject(b, r.key, { sysmeta }).catch((e) => { throw storeError(e, r); });
}
