// Swift objects (`/v1/AUTH_<project>/<container>/<object...>`): PUT streams
// the body straight to the store (ETag checked: 422; a body shorter than its
// Content-Length: 499, nothing stored; If-None-Match: * 412), or with
// X-Copy-From copies server-side; COPY with Destination; GET/HEAD with
// ranges (one, or several as multipart/byteranges) and conditions; POST
// replaces the metadata; DELETE.
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { parseRanges } from '../../http/range.ts';
import { MAX_OBJECT_SIZE, ObjectStoreError, type ContainerInfo, type Meta, type ObjectInfo } from '../store.ts';
import { checkContainerAccess } from './access.ts';
import { loadContainer, loadObject } from './container.ts';
import { swiftError, swiftStatus } from './errors.ts';
import {
  conditionalStatus, deleteAtFrom, etagList, header, httpDate, MAX_FILE_SIZE,
  metaFromHeaders, metaHeaders, truthy,
} from './headers.ts';
import { containerObjectPath, decodePath, type SwiftRequest } from './request.ts';
import { isSymlink, SYMLINK_ACCOUNT } from './symlink-meta.ts';
import { followSymlinks } from './symlink.ts';

export async function objectRequest(sr: SwiftRequest): Promise<unknown> {
  switch (sr.method) {
    case 'GET':
    case 'HEAD':
      return getObject(sr);
    case 'PUT':
      return putObject(sr);
    case 'POST':
      return postObject(sr);
    case 'DELETE':
      return deleteObject(sr);
    case 'COPY':
      return copyMethod(sr);
    default:
      throw swiftStatus(405, { Allow: 'GET, HEAD, PUT, POST, DELETE, COPY' });
  }
}

/** The headers every answer about an object carries. */
export function objectHeaders(o: ObjectInfo): Record<string, string> {
  const h: Record<string, string> = {
    'Content-Type': o.contentType,
    ETag: o.etag,
    'Last-Modified': httpDate(o.timestamp),
    'X-Timestamp': o.timestamp,
    'Accept-Ranges': 'bytes',
    ...metaHeaders('object', o.metadata),
  };
  for (const [k, v] of Object.entries(o.sysmeta)) if (k.startsWith(HEADER_KEY)) h[titleCase(k.slice(HEADER_KEY.length))] = v;
  if (o.deleteAt !== null) h['X-Delete-At'] = String(o.deleteAt);
  return h;
}

async function container(sr: SwiftRequest, what: 'read-object' | 'write-object'): Promise<ContainerInfo> {
  const c = await loadContainer(sr);
  await checkContainerAccess(sr, c, what);
  if (!c) throw swiftStatus(404);
  return c;
}

async function getObject(sr: SwiftRequest): Promise<unknown> {
  const c = await container(sr, 'read-object');
  const o = sr.objectInfo !== undefined ? sr.objectInfo : await sr.ctx.store.headObject(c, sr.object!);
  if (!o) throw swiftStatus(404);
  return sendObject(sr, o);
}

/** A body of `o` (or of range `r`): small ones read at once (a corrupt one is a 503 before any header), else a stream. */
async function body(sr: SwiftRequest, o: ObjectInfo, r?: { start: number; end: number }): Promise<unknown> {
  try {
    const buf = await sr.ctx.store.readObjectBuffer(o, r);
    if (buf) return buf;
  } catch (err) {
    if (err instanceof ObjectStoreError && err.reason === 'Corrupt') throw swiftStatus(503);
    throw err;
  }
  return sr.ctx.store.readObject(o, r);
}

/** Answers a GET or HEAD of object `o`: conditions, ranges, the body streamed from the store. */
export async function sendObject(sr: SwiftRequest, o: ObjectInfo): Promise<unknown> {
  const reply = sr.reply;
  reply.headers(objectHeaders(o));
  const cond = conditionalStatus(sr.headers, o.etag, o.timestamp);
  if (cond === 304) {
    reply.code(304).removeHeader('Content-Type');
    return undefined;
  }
  if (cond === 412) throw swiftStatus(412, { ETag: o.etag, 'Last-Modified': httpDate(o.timestamp) });
  const ranges = parseRanges(header(sr.headers, 'range'), o.size);
  if (ranges && ranges.length === 0) {
    throw swiftStatus(416, { 'Content-Range': `bytes */${o.size}` });
  }
  if (!ranges) {
    reply.code(200).header('Content-Length', String(o.size));
    if (sr.method === 'HEAD') return undefined;
    return o.size === 0 ? '' : body(sr, o);
  }
  if (ranges.length === 1) {
    const r = ranges[0]!;
    reply.code(206).header('Content-Length', String(r.end - r.start)).header('Content-Range', `bytes ${r.start}-${r.end - 1}/${o.size}`);
    if (sr.method === 'HEAD') return undefined;
    return body(sr, o, r);
  }
  // several ranges: multipart/byteranges
  const boundary = randomBytes(16).toString('hex');
  const parts = ranges.map((r) => ({
    head: Buffer.from(`--${boundary}\r\nContent-Type: ${o.contentType}\r\nContent-Range: bytes ${r.start}-${r.end - 1}/${o.size}\r\n\r\n`, 'latin1'),
    r,
  }));
  const tail = Buffer.from(`--${boundary}--`);
  const length = parts.reduce((n, p) => n + p.head.length + (p.r.end - p.r.start) + 2, 0) + tail.length;
  reply.code(206).header('Content-Type', `multipart/byteranges;boundary=${boundary}`).header('Content-Length', String(length));
  if (sr.method === 'HEAD') return undefined;
  const out = new PassThrough();
  void (async () => {
    try {
      for (const p of parts) {
        if (!out.write(p.head)) await new Promise((res) => out.once('drain', res));
        for await (const chunk of sr.ctx.store.readObject(o, p.r)) {
          if (!out.write(chunk)) await new Promise((res) => out.once('drain', res));
        }
        out.write('\r\n');
      }
      out.end(tail);
    } catch (err) {
      out.destroy(err as Error);
    }
  })();
  return out;
}

/** Content-Type of a new object: as given, else guessed from the name (Swift guesses by extension). */
function contentTypeFor(sr: SwiftRequest, name: string): string {
  const given = sr.contentType;
  if (given && !/^\s*$/.test(given) && header(sr.headers, 'x-detect-content-type')?.toLowerCase() !== 'true') return given.trim();
  return guessType(name);
}

const TYPES: Record<string, string> = {
  txt: 'text/plain', html: 'text/html', htm: 'text/html', css: 'text/css', js: 'application/javascript', json: 'application/json',
  xml: 'application/xml', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml',
  pdf: 'application/pdf', zip: 'application/zip', gz: 'application/gzip', tar: 'application/x-tar', csv: 'text/csv',
  mp4: 'video/mp4', mp3: 'audio/mpeg', ico: 'image/vnd.microsoft.icon', wasm: 'application/wasm', md: 'text/markdown',
};
export function guessType(name: string): string {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  return (m && TYPES[m[1]!.toLowerCase()]) || 'application/octet-stream';
}

/** User metadata of a PUT/POST: the values set (an empty one included, as Swift keeps it on an object). */
function objectMeta(sr: SwiftRequest): Meta {
  const change = metaFromHeaders(sr.headers, 'object');
  const out: Meta = {};
  for (const [k, v] of Object.entries(change)) if (v !== null) out[k] = v;
  return out;
}

/**
 * The headers Swift keeps with an object besides its metadata (the object
 * server's allowed_headers), kept in the object's sysmeta as `swift.header.<name>`.
 */
const ALLOWED_HEADERS = ['content-disposition', 'content-encoding', 'content-language', 'cache-control', 'expires', 'x-robots-tag', 'x-object-manifest', 'x-static-large-object'];
const HEADER_KEY = 'swift.header.';

/** The allowed headers a request sends, as sysmeta entries. */
function allowedHeaders(sr: SwiftRequest): Meta {
  const out: Meta = {};
  for (const h of ALLOWED_HEADERS) {
    const v = header(sr.headers, h);
    if (v !== undefined && v !== '') out[HEADER_KEY + h] = v;
  }
  return out;
}

/** `sysmeta` with its allowed headers replaced by `headers`. */
function withHeaders(sysmeta: Meta, headers: Meta): Meta {
  const out: Meta = {};
  for (const [k, v] of Object.entries(sysmeta)) if (!k.startsWith(HEADER_KEY)) out[k] = v;
  return { ...out, ...headers };
}

const titleCase = (h: string): string => h.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());

function storeError(err: unknown): never {
  if (err instanceof ObjectStoreError) {
    switch (err.reason) {
      case 'PreconditionFailed': throw swiftStatus(412);
      case 'EtagMismatch': throw swiftStatus(422);
      case 'ShortBody': throw swiftStatus(499);
      case 'TooLarge': throw swiftError(413, 'Your request is too large.');
      case 'ContainerNotFound':
      case 'ObjectNotFound': throw swiftStatus(404);
      default: break;
    }
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error)?.message === 'aborted') throw swiftStatus(499);
  throw err;
}

async function putObject(sr: SwiftRequest): Promise<unknown> {
  const c = await container(sr, 'write-object');
  const copyFrom = header(sr.headers, 'x-copy-from');
  if (copyFrom !== undefined) {
    const len = header(sr.headers, 'content-length');
    if (len !== undefined && len !== '0') throw swiftError(400, 'Copy requests require a zero byte body');
    const src = containerObjectPath(copyFrom, 'X-Copy-From');
    return copy(sr, { account: header(sr.headers, 'x-copy-from-account'), ...src }, { container: c, object: sr.object! });
  }
  const lenHeader = header(sr.headers, 'content-length');
  const chunked = /chunked/i.test(header(sr.headers, 'transfer-encoding') ?? '');
  let size: number | undefined;
  if (lenHeader !== undefined && !chunked) {
    if (!/^\d+$/.test(lenHeader)) throw swiftError(400, 'Invalid Content-Length');
    size = Number(lenHeader);
    if (size > MAX_FILE_SIZE) throw swiftError(413, 'Your request is too large.');
  } else if (!chunked) {
    throw swiftStatus(411);
  }
  const etagHeader = header(sr.headers, 'etag');
  const md5 = etagHeader === undefined ? undefined : etagHeader.replace(/^"(.*)"$/, '$1').trim().toLowerCase();
  const ifNoneMatch = header(sr.headers, 'if-none-match');
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw swiftError(400, 'If-None-Match only supports *');
  const deleteAt = deleteAtFrom(sr.headers);
  const metadata = objectMeta(sr);
  const body = sr.req.body as Readable | undefined;
  let o: ObjectInfo;
  try {
    o = await sr.ctx.store.putObject(c, sr.object!, body ?? emptyBody(), {
      size: size ?? (body ? undefined : 0), md5, contentType: contentTypeFor(sr, sr.object!), metadata, deleteAt, sysmeta: { ...allowedHeaders(sr), ...sr.sysmeta },
      ifNoneMatch: ifNoneMatch !== undefined ? '*' : undefined, maxSize: MAX_OBJECT_SIZE,
    });
  } catch (err) {
    storeError(err);
  }
  sr.reply.code(201).headers({ ETag: o.etag, 'Last-Modified': httpDate(o.timestamp), 'Content-Type': 'text/html; charset=UTF-8' });
  return '';
}

async function* emptyBody(): AsyncGenerator<Buffer> {}

/** A server-side copy into `dst` (PUT with X-Copy-From, or COPY): the blobs shared, metadata merged unless X-Fresh-Metadata. */
async function copy(sr: SwiftRequest, src: { account?: string; container: string; object: string }, dst: { container: ContainerInfo; object: string }): Promise<unknown> {
  const store = sr.ctx.store;
  let srcProject = sr.project;
  if (src.account !== undefined) {
    const acct = decodePath(src.account);
    if (!acct.startsWith('AUTH_') || acct.length <= 5) throw swiftStatus(412);
    srcProject = acct.slice(5);
  }
  // read access to the source, as if the caller GETs it
  const srcSr: SwiftRequest = { ...sr, method: 'GET', project: srcProject, account: `AUTH_${srcProject}`, container: src.container, object: src.object, containerInfo: undefined, objectInfo: undefined, level: srcProject === sr.project ? sr.level : undefined };
  // a symlink copies its target, or with ?symlink=get itself (Swift's symlink middleware)
  const linkItself = sr.query.symlink === 'get';
  if (linkItself) {
    await checkContainerAccess(srcSr, await loadContainer(srcSr), 'read-object');
    await loadObject(srcSr);
  } else {
    await followSymlinks(srcSr);
  }
  const sc = srcSr.containerInfo;
  if (!sc) throw swiftStatus(404);
  const fresh = truthy(header(sr.headers, 'x-fresh-metadata'));
  const newMeta = objectMeta(sr);
  const given = sr.contentType && sr.method === 'PUT' ? sr.contentType : sr.method === 'COPY' ? sr.contentType : undefined;
  const deleteAt = deleteAtFrom(sr.headers);
  let o: ObjectInfo;
  try {
    const srcObj = srcSr.objectInfo;
    if (!srcObj) throw swiftStatus(404);
    o = await store.copyObject({ container: sc, name: srcSr.object! }, { container: dst.container, name: dst.object }, {
      ifNoneMatch: header(sr.headers, 'if-none-match')?.trim() === '*' ? '*' : undefined,
      derive: (s) => ({
        metadata: fresh ? newMeta : { ...s.metadata, ...newMeta },
        sysmeta: linkTargetAccount(fresh ? withHeaders(s.sysmeta, allowedHeaders(sr)) : { ...s.sysmeta, ...allowedHeaders(sr) }, sc.project, dst.container.project),
        contentType: given?.trim() || s.contentType,
        deleteAt: deleteAt === undefined ? null : deleteAt,
      }),
    });
    sr.reply.code(201).headers({
      ETag: o.etag, 'Last-Modified': httpDate(o.timestamp), 'Content-Type': 'text/html; charset=UTF-8',
      'X-Copied-From': encodeURI(`${src.container}/${src.object}`), 'X-Copied-From-Last-Modified': httpDate(srcObj.timestamp),
      ...(src.account !== undefined ? { 'X-Copied-From-Account': `AUTH_${srcProject}` } : {}),
      // the new object's metadata, as Swift's copy middleware answers (the source's merged with the request's)
      ...metaHeaders('object', o.metadata),
    });
  } catch (err) {
    storeError(err);
  }
  return '';
}

/** A link copied to another account keeps naming its target's account (Swift's copy of a symlink). */
function linkTargetAccount(sysmeta: Meta, from: string, to: string): Meta {
  return isSymlink({ sysmeta }) && from !== to && sysmeta[SYMLINK_ACCOUNT] === undefined ? { ...sysmeta, [SYMLINK_ACCOUNT]: `AUTH_${from}` } : sysmeta;
}

async function copyMethod(sr: SwiftRequest): Promise<unknown> {
  const dest = header(sr.headers, 'destination');
  if (dest === undefined) throw swiftError(412, 'Destination header required');
  const d = containerObjectPath(dest, 'Destination');
  const destAccount = header(sr.headers, 'destination-account');
  let dstProject = sr.project;
  if (destAccount !== undefined) {
    const acct = decodePath(destAccount);
    if (!acct.startsWith('AUTH_') || acct.length <= 5) throw swiftStatus(412);
    dstProject = acct.slice(5);
  }
  const dstSr: SwiftRequest = { ...sr, method: 'PUT', project: dstProject, account: `AUTH_${dstProject}`, container: d.container, object: d.object, containerInfo: undefined, level: dstProject === sr.project ? sr.level : undefined };
  const dc = await container(dstSr, 'write-object');
  return copy(sr, { account: destAccount !== undefined ? sr.account : undefined, container: sr.container!, object: sr.object! }, { container: dc, object: d.object });
}

async function postObject(sr: SwiftRequest): Promise<unknown> {
  const c = await container(sr, 'write-object');
  const deleteAt = header(sr.headers, 'x-remove-delete-at') !== undefined ? null : deleteAtFrom(sr.headers);
  const metadata = objectMeta(sr);
  const ct = sr.contentType?.trim();
  try {
    const cur = await sr.ctx.store.headObject(c, sr.object!);
    if (!cur) throw swiftStatus(404);
    // a POST replaces the metadata and the allowed headers, as Swift's (a middleware's sysmeta replaces the object's)
    await sr.ctx.store.updateObject(c, sr.object!, {
      metadata, sysmeta: withHeaders(sr.sysmeta ?? cur.sysmeta, allowedHeaders(sr)), ...(ct ? { contentType: ct } : {}), ...(deleteAt !== undefined ? { deleteAt } : {}),
    });
  } catch (err) {
    storeError(err);
  }
  sr.reply.code(202).header('Content-Type', 'text/html; charset=UTF-8');
  return '';
}

async function deleteObject(sr: SwiftRequest): Promise<unknown> {
  const c = await container(sr, 'write-object');
  const ifMatch = etagList(header(sr.headers, 'if-match'));
  let gone: ObjectInfo | null;
  try {
    gone = await sr.ctx.store.deleteObject(c, sr.object!, ifMatch !== undefined ? { ifMatch } : {});
  } catch (err) {
    storeError(err);
  }
  if (!gone) throw swiftStatus(404);
  sr.reply.code(204);
  return undefined;
}
