// Large objects, as Swift's slo and dlo middleware.
//
// SLO (static): `PUT ?multipart-manifest=put` with a JSON list of segments
// ({path, etag, size_bytes, range} or inline {data}) checks every segment
// (it exists, the caller may read it, its etag and size are the ones given,
// the range fits) and then makes the object whole in one store transaction
// (`composeObject`: the manifest object references the segments' blobs, no
// byte copied; a ranged or inline segment is first written as a blob of its
// own). The object's ETag is Swift's SLO etag, served quoted, with
// `X-Static-Large-Object: True`; its size, ranges and conditional requests
// are then those of any object. The manifest as Swift stores it is kept in
// the object's sysmeta: `?multipart-manifest=get` returns it (`&format=raw`:
// as the client PUT it), `DELETE ?multipart-manifest=delete` removes the
// segments (nested SLOs' too) and the manifest, answering as a bulk delete.
// A segment that is itself an SLO is composed from its own parts (nested
// SLOs). With `?heartbeat=on` the answer is Swift's heartbeat: 202 at once,
// whitespace while the segments are checked, the outcome in the body.
//
// DLO (dynamic): an object with X-Object-Manifest: <container>/<prefix>
// (kept in sysmeta) is, on GET/HEAD, the concatenation of the objects under
// that prefix in listing order, read at request time: length and ETag (md5
// of the segments' etags, quoted) from the listing, Range and conditions
// over the whole; `?multipart-manifest=get` returns the manifest object
// itself.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { parseRanges } from '../../http/range.ts';
import { ApiError } from '../../common/errors.ts';
import { ObjectStoreError, type ContainerInfo, type ObjectInfo } from '../store.ts';
import { checkContainerAccess } from './access.ts';
import { quote, renderBulk, statusLine } from './bulk-format.ts';
import { loadContainer, loadObject } from './container.ts';
import { renderSwiftError, swiftError, swiftStatus } from './errors.ts';
import { bestFormat, conditionalStatus, header, headerValue, httpDate, metaFromHeaders, truthy } from './headers.ts';
import { SLO_LIMITS } from './info.ts';
import { guessType, objectHeaders } from './object.ts';
import type { SwiftMiddleware, SwiftRequest } from './request.ts';
import {
  checkDloManifestHeader, dloEtag, parseSloManifest, planReads, rawManifest, readStoredManifest, resolveRange, sloEtag,
  type ClientSegment, type StoredSegment,
} from './slo-manifest.ts';
import { discard, type Subrequests } from './subrequest.ts';
import { tempUrlGrant } from './tempurl.ts';

/** Object sysmeta keys of large objects. */
export const SLO_MANIFEST = 'slo-manifest';
export const SLO_SIZE = 'slo-size';
export const SLO_ETAG = 'slo-etag';
export const DLO_MANIFEST = 'x-object-manifest';

/** The internal container where ranged and inline SLO segments are written before they are composed. */
const PARTS_CONTAINER = '.slo-parts';

export const isSlo = (o: ObjectInfo | null | undefined): boolean => !!o && o.sysmeta[SLO_MANIFEST] !== undefined;
export const dloManifest = (o: ObjectInfo | null | undefined): string | undefined => o?.sysmeta[DLO_MANIFEST];

export function largeObjectsMiddleware(sub: Subrequests): SwiftMiddleware {
  const self: SwiftMiddleware = async (sr, next) => {
    if (sr.object === undefined) return next();
    const mm = sr.query['multipart-manifest'];
    if (sr.method === 'PUT' && mm === 'put') return putSlo(sr);
    if (sr.method !== 'GET' && sr.method !== 'HEAD' && header(sr.headers, 'x-static-large-object') !== undefined) {
      throw swiftError(400, 'X-Static-Large-Object is a reserved header. To create a static large object add query param multipart-manifest=put.');
    }
    const dlo = header(sr.headers, 'x-object-manifest');
    switch (sr.method) {
      case 'PUT':
        if (dlo !== undefined) {
          checkDloManifestHeader(dlo);
          sr.sysmeta = { ...sr.sysmeta, [DLO_MANIFEST]: dlo };
        }
        return next();
      case 'POST': {
        if (dlo !== undefined) checkDloManifestHeader(dlo);
        // A POST replaces X-Object-Manifest as Swift's object server does its allowed headers: kept only if sent again.
        const c = await loadContainer(sr);
        const o = c ? await sr.ctx.store.headObject(c, sr.object) : null;
        if (o && (dlo !== undefined || dloManifest(o) !== undefined)) {
          const sysmeta = { ...o.sysmeta, ...sr.sysmeta };
          if (dlo !== undefined) sysmeta[DLO_MANIFEST] = dlo;
          else delete sysmeta[DLO_MANIFEST];
          sr.sysmeta = sysmeta;
        }
        return next();
      }
      case 'GET':
      case 'HEAD':
        return getLarge(sr, next, mm === 'get');
      case 'DELETE':
        if (mm === 'delete') return deleteSlo(sr, next, sub, self);
        return next();
      default:
        return next();
    }
  };
  return self;
}

// ---- GET / HEAD


async function getLarge(sr: SwiftRequest, next: () => Promise<unknown>, manifestGet: boolean): Promise<unknown> {
  const c = await loadContainer(sr);
  const o = await loadObject(sr);
  if (!o || (!isSlo(o) && dloManifest(o) === undefined)) return next();
  if (isSlo(o)) {
    if (manifestGet) {
      await checkContainerAccess(sr, c, 'read-object');
      const stored = readStoredManifest(Buffer.from(o.sysmeta[SLO_MANIFEST]!, 'utf8')) ?? [];
      const raw = sr.query.format === 'raw';
      const text = JSON.stringify(raw ? rawManifest(stored) : stored);
      const etag = createMd5(text);
      sr.reply.code(200).headers({
        ...objectHeaders(o), ETag: etag, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)),
        ...(raw ? {} : { 'X-Static-Large-Object': 'True' }),
      });
      return sr.method === 'HEAD' ? undefined : text;
    }
    const body = await next();
    if (sr.reply.statusCode < 400) {
      sr.reply.header('X-Static-Large-Object', 'True');
      const etag = sr.reply.getHeader('etag');
      if (etag !== undefined && !String(etag).startsWith('"')) sr.reply.header('ETag', `"${String(etag)}"`);
    }
    return body;
  }
  // DLO
  await checkContainerAccess(sr, c, 'read-object');
  if (manifestGet) {
    const body = await next();
    sr.reply.header('X-Object-Manifest', headerValue(dloManifest(o)!));
    return body;
  }
  return sendDlo(sr, o, dloManifest(o)!);
}

const createMd5 = (s: string) => createHash('md5').update(s).digest('hex');

/** The segments of a DLO: every object under the prefix, in order (the listing read page by page). */
async function dloSegments(sr: SwiftRequest, manifest: string): Promise<{ container: ContainerInfo | null; objects: ObjectInfo[] }> {
  const slash = manifest.indexOf('/');
  const containerName = manifest.slice(0, slash);
  const prefix = manifest.slice(slash + 1);
  const segSr: SwiftRequest = { ...sr, container: containerName, containerInfo: undefined };
  const c = await loadContainer(segSr);
  const grant = tempUrlGrant(sr);
  if (grant?.scope === 'container' && grant.container !== containerName) throw swiftStatus(401);
  await checkContainerAccess(segSr, c, 'read-object');
  if (!c) return { container: null, objects: [] };
  const objects: ObjectInfo[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await sr.ctx.store.listObjects(c, { prefix, marker, limit: 1000 });
    for (const e of page) {
      if (e.kind !== 'object') continue;
      const seg = await sr.ctx.store.headObject(c, e.name);
      if (seg) objects.push(seg);
    }
    if (page.length < 1000) break;
    marker = page[page.length - 1]!.name;
  }
  return { container: c, objects };
}

async function sendDlo(sr: SwiftRequest, manifest: ObjectInfo, value: string): Promise<unknown> {
  const { objects } = await dloSegments(sr, value);
  const size = objects.reduce((n, o) => n + o.size, 0);
  const etag = dloEtag(objects.map((o) => o.etag));
  const parts = objects.map((o) => ({ segment: o, length: o.size }));
  return sendComposite(sr, manifest, { size, etag: `"${etag}"`, rawEtag: etag, extra: { 'X-Object-Manifest': headerValue(value) } }, (first, end) => {
    const reads = planReads(parts, first, end);
    return (async function* () {
      for (const r of reads) yield* sr.ctx.store.readObject(r.segment, { start: r.offset, end: r.offset + r.length });
    })();
  });
}

/** Answers a GET/HEAD of bytes made of parts: conditions against its own ETag, one or several ranges. */
function sendComposite(sr: SwiftRequest, o: ObjectInfo, v: { size: number; etag: string; rawEtag: string; extra: Record<string, string> },
  read: (first: number, end: number) => AsyncIterable<Buffer>): unknown {
  const reply = sr.reply;
  reply.headers({ ...objectHeaders(o), ...v.extra, ETag: v.etag });
  const cond = conditionalStatus(sr.headers, v.rawEtag, o.timestamp);
  if (cond === 304) {
    reply.code(304).removeHeader('Content-Type');
    return undefined;
  }
  if (cond === 412) throw swiftStatus(412, { ETag: v.etag, 'Last-Modified': httpDate(o.timestamp) });
  const ranges = parseRanges(header(sr.headers, 'range'), v.size);
  if (ranges && ranges.length === 0) throw swiftStatus(416, { 'Content-Range': `bytes */${v.size}` });
  if (!ranges) {
    reply.code(200).header('Content-Length', String(v.size));
    return sr.method === 'HEAD' || v.size === 0 ? (sr.method === 'HEAD' ? undefined : '') : streamOf(read(0, v.size));
  }
  if (ranges.length === 1) {
    const r = ranges[0]!;
    reply.code(206).header('Content-Length', String(r.end - r.start)).header('Content-Range', `bytes ${r.start}-${r.end - 1}/${v.size}`);
    return sr.method === 'HEAD' ? undefined : streamOf(read(r.start, r.end));
  }
  const boundary = randomBytes(16).toString('hex');
  const parts = ranges.map((r) => ({
    head: Buffer.from(`--${boundary}\r\nContent-Type: ${headerValue(o.contentType)}\r\nContent-Range: bytes ${r.start}-${r.end - 1}/${v.size}\r\n\r\n`, 'latin1'),
    r,
  }));
  const tail = Buffer.from(`--${boundary}--`);
  const length = parts.reduce((n, p) => n + p.head.length + (p.r.end - p.r.start) + 2, 0) + tail.length;
  reply.code(206).header('Content-Type', `multipart/byteranges;boundary=${boundary}`).header('Content-Length', String(length));
  if (sr.method === 'HEAD') return undefined;
  return streamOf((async function* () {
    for (const p of parts) {
      yield p.head;
      yield* read(p.r.start, p.r.end);
      yield Buffer.from('\r\n');
    }
    yield tail;
  })());
}

function streamOf(src: AsyncIterable<Buffer>): Readable {
  const out = new PassThrough();
  void (async () => {
    try {
      for await (const chunk of src) if (!out.write(chunk)) await new Promise((res) => out.once('drain', res));
      out.end();
    } catch (err) {
      out.destroy(err as Error);
    }
  })();
  return out;
}

// ---- PUT ?multipart-manifest=put

async function readManifestBody(sr: SwiftRequest): Promise<Buffer> {
  if (header(sr.headers, 'x-copy-from') !== undefined) throw swiftError(405, 'Multipart Manifest PUTs cannot be COPY requests');
  const len = header(sr.headers, 'content-length');
  const chunked = /chunked/i.test(header(sr.headers, 'transfer-encoding') ?? '');
  if (len === undefined && !chunked) throw swiftStatus(411);
  const max = SLO_LIMITS.max_manifest_size;
  const tooBig = () => swiftError(413, `Manifest File > ${max} bytes`);
  if (len !== undefined && Number(len) > max) throw tooBig();
  const chunks: Buffer[] = [];
  let n = 0;
  const body = sr.req.body as AsyncIterable<Buffer> | undefined;
  try {
    if (body) {
      for await (const c of body) {
        n += c.length;
        if (n > max) throw tooBig();
        chunks.push(c);
      }
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    // the client went away mid-body (Swift's 499)
    throw swiftStatus(499);
  }
  return Buffer.concat(chunks);
}

interface Resolved {
  stored: StoredSegment;
  /** The object to compose (a whole segment), or the bytes to write first (a range or inline data). */
  part: { container: ContainerInfo; name: string } | { container: ContainerInfo; object: ObjectInfo; range: [number, number] } | { data: Buffer };
  length: number;
}

/** What storing a manifest came to: the segments' problems (a 400), or the object made. */
type SloOutcome = { problems: Array<[string, string]> } | { etag: string; lastModified: string };

async function putSlo(sr: SwiftRequest): Promise<unknown> {
  const c = await loadContainer(sr);
  await checkContainerAccess(sr, c, 'write-object');
  if (!c) throw swiftStatus(404);
  const body = await readManifestBody(sr);
  const segments = parseSloManifest(body, `${sr.container}/${sr.object}`);
  const format = bestFormat(header(sr.headers, 'accept')) ?? 'text/plain';
  if (truthy(sr.query.heartbeat)) return heartbeatAnswer(sr, format, storeSlo(sr, c, segments));
  const outcome = await storeSlo(sr, c, segments);
  if ('problems' in outcome) {
    sr.reply.code(400).header('Content-Type', format);
    return renderBulk(format, {}, outcome.problems, 'upload');
  }
  sr.reply.code(201).headers({ ETag: `"${outcome.etag}"`, 'Last-Modified': outcome.lastModified, 'Content-Type': 'text/html; charset=UTF-8' });
  return '';
}

/**
 * `heartbeat=on`, as Swift's: 202 at once, a space every yield_frequency
 * seconds while the segments are checked and the object composed, then,
 * after a blank line, the outcome in the bulk answer's format (Response
 * Status, Response Body, Etag and Last Modified, Errors).
 */
function heartbeatAnswer(sr: SwiftRequest, format: string, work: Promise<SloOutcome>): PassThrough {
  sr.reply.code(202).header('Content-Type', format);
  const out = new PassThrough();
  out.write(' ');
  const beat = setInterval(() => out.write(' '), SLO_LIMITS.yield_frequency * 1000);
  const text = work.then((o) => ('problems' in o
    ? renderBulk(format, { 'Response Status': statusLine(400), 'Response Body': 'The server could not comply with the request since it is either malformed or otherwise incorrect.' }, o.problems, 'upload')
    : renderBulk(format, { 'Response Status': statusLine(201), 'Response Body': '', Etag: `"${o.etag}"`, 'Last Modified': o.lastModified }, [], 'upload')), (e: unknown) => {
    if (!(e instanceof ApiError)) sr.ctx.log.error({ err: e, container: sr.container, object: sr.object }, 'swift: storing an SLO manifest failed');
    const status = e instanceof ApiError ? e.status : 500;
    return renderBulk(format, { 'Response Status': statusLine(status), 'Response Body': e instanceof ApiError ? renderSwiftError(e) : '' }, [], 'upload');
  });
  void text.then((t) => {
    clearInterval(beat);
    out.end(`\r\n\r\n${t}`);
  });
  return out;
}

/** Checks a manifest's segments and, when they hold, composes the object (segments' problems returned, other refusals thrown). */
async function storeSlo(sr: SwiftRequest, c: ContainerInfo, segments: ClientSegment[]): Promise<SloOutcome> {
  const problems: Array<[string, string]> = [];
  const resolved: Resolved[] = [];
  const heads = new Map<string, { c: ContainerInfo | null; o: ObjectInfo | null; status: number }>();
  const grant = tempUrlGrant(sr);
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.kind === 'data') {
      resolved.push({ stored: { data: seg.data.toString('base64') }, part: { data: seg.data }, length: seg.data.length });
      continue;
    }
    const path = seg.path.replace(/^\/+/, '');
    const slash = path.indexOf('/');
    const cname = path.slice(0, slash);
    const oname = path.slice(slash + 1);
    let h = heads.get(path);
    if (!h) {
      h = await headSegment(sr, cname, oname, grant);
      heads.set(path, h);
    }
    if (!h.o || !h.c) {
      problems.push([quote(seg.path), statusLine(h.status)]);
      continue;
    }
    const r = checkSegment(seg, h.o, i === segments.length - 1, problems);
    if (!r) continue;
    const stored: StoredSegment = {
      name: `/${path}`, bytes: h.o.size, hash: h.o.etag, content_type: h.o.contentType,
      last_modified: new Date(Number(h.o.timestamp) * 1000).toISOString().slice(0, 23) + '000',
    };
    if (r.range) stored.range = `${r.range[0]}-${r.range[1] - 1}`;
    if (isSlo(h.o)) stored.sub_slo = true;
    resolved.push({
      stored,
      part: r.range ? { container: h.c, object: h.o, range: r.range } : { container: h.c, name: oname },
      length: r.length,
    });
  }
  if (problems.length) return { problems };
  const stored = resolved.map((r) => r.stored);
  const etag = sloEtag(stored);
  const clientEtag = header(sr.headers, 'etag')?.replace(/^"(.*)"$/, '$1');
  if (clientEtag && clientEtag !== etag) throw swiftStatus(422);
  const total = resolved.reduce((n, r) => n + r.length, 0);
  const store = sr.ctx.store;
  // Ranged and inline segments become blobs of their own in an internal container, then everything is composed.
  const temps: string[] = [];
  let parts: Array<{ container: ContainerInfo; name: string }> = [];
  let tempContainer: ContainerInfo | undefined;
  try {
    for (const r of resolved) {
      if ('name' in r.part) {
        parts.push(r.part);
        continue;
      }
      if (!tempContainer) {
        tempContainer = (await store.createContainer(sr.project, PARTS_CONTAINER, { internal: true })).container;
        await sweepParts(sr, tempContainer);
      }
      const name = `${sr.container}/${sr.object}/${randomBytes(8).toString('hex')}`;
      const bytes = 'data' in r.part ? [r.part.data] : store.readObject(r.part.object, { start: r.part.range[0], end: r.part.range[1] });
      await store.putObject(tempContainer, name, bytes as AsyncIterable<Buffer>, { size: r.length });
      temps.push(name);
      parts.push({ container: tempContainer, name });
    }
    const contentType = sr.contentType?.trim() || guessType(sr.object!);
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(metaFromHeaders(sr.headers, 'object'))) if (v !== null) metadata[k] = v;
    const o = await store.composeObject({ container: c, name: sr.object! }, parts, {
      etag, contentType, metadata,
      sysmeta: { [SLO_MANIFEST]: JSON.stringify(stored), [SLO_SIZE]: String(total), [SLO_ETAG]: etag },
    });
    return { etag, lastModified: httpDate(o.timestamp) };
  } catch (e) {
    if (e instanceof ObjectStoreError && e.reason === 'PartNotFound') throw swiftError(409, 'A segment of the manifest went away while it was being stored');
    throw e;
  } finally {
    // The composed object references the blobs; the temporary names go.
    if (tempContainer) for (const n of temps) await store.deleteObject(tempContainer, n).catch(() => undefined);
    parts = [];
  }
}

/**
 * Removes part blobs an earlier manifest PUT of this object left behind (a
 * crash between writing them and composing): older than an hour, they belong
 * to no PUT in flight.
 */
async function sweepParts(sr: SwiftRequest, parts: ContainerInfo): Promise<void> {
  const prefix = `${sr.container}/${sr.object}/`;
  const old = Date.now() / 1000 - 3600;
  const stale = (await sr.ctx.store.listObjects(parts, { prefix, limit: 1000 })).filter((e) => e.kind === 'object' && Number(e.timestamp) < old);
  for (const e of stale) await sr.ctx.store.deleteObject(parts, e.name).catch(() => undefined);
}

async function headSegment(sr: SwiftRequest, cname: string, oname: string, grant: ReturnType<typeof tempUrlGrant>) {
  if (grant?.scope === 'container' && grant.container !== cname) return { c: null, o: null, status: 401 };
  const segSr: SwiftRequest = { ...sr, method: 'HEAD', container: cname, object: oname, containerInfo: undefined };
  const c = await loadContainer(segSr);
  try {
    await checkContainerAccess(segSr, c, 'read-object');
  } catch (e) {
    return { c: null, o: null, status: (e as { status?: number }).status ?? 403 };
  }
  if (!c) return { c: null, o: null, status: 404 };
  const o = await sr.ctx.store.headObject(c, oname);
  return { c, o, status: o ? 200 : 404 };
}

function checkSegment(seg: Extract<ClientSegment, { kind: 'path' }>, o: ObjectInfo, last: boolean, problems: Array<[string, string]>):
  { range: [number, number] | null; length: number } | null {
  const name = quote(seg.path);
  let length = o.size;
  let range: [number, number] | null = null;
  const before = problems.length;
  if (seg.range) {
    const r = resolveRange(seg.range, o.size);
    if (!r) problems.push([name, 'Unsatisfiable Range']);
    else if (!(r[0] === 0 && r[1] === o.size)) {
      range = r;
      length = r[1] - r[0];
    }
  }
  if (length < 1 && !last) problems.push([name, 'Too small; each segment must be at least 1 byte.']);
  if (seg.sizeBytes !== null && seg.sizeBytes !== o.size) problems.push([name, 'Size Mismatch']);
  if (seg.etag !== null && seg.etag !== o.etag) problems.push([name, 'Etag Mismatch']);
  return problems.length > before ? null : { range, length };
}

// ---- DELETE ?multipart-manifest=delete

async function deleteSlo(sr: SwiftRequest, next: () => Promise<unknown>, sub: Subrequests, self: SwiftMiddleware): Promise<unknown> {
  const c = await loadContainer(sr);
  const o = c ? await sr.ctx.store.headObject(c, sr.object!) : null;
  if (!isSlo(o)) return next();
  await checkContainerAccess(sr, c, 'write-object');
  const format = bestFormat(header(sr.headers, 'accept'));
  if (!format) throw swiftStatus(406);
  // Segments first (nested manifests' segments before them), the manifest last.
  const names: string[] = [];
  const seen = new Set<string>();
  const expand = async (manifest: StoredSegment[], depth: number) => {
    for (const s of manifest) {
      if (!s.name) continue;
      const path = s.name.replace(/^\/+/, '');
      if (seen.has(path)) continue;
      seen.add(path);
      if (s.sub_slo && depth < 10) {
        const slash = path.indexOf('/');
        const h = await headSegment(sr, path.slice(0, slash), path.slice(slash + 1), tempUrlGrant(sr));
        if (h.o && isSlo(h.o)) await expand(readStoredManifest(Buffer.from(h.o.sysmeta[SLO_MANIFEST]!, 'utf8')) ?? [], depth + 1);
      }
      names.push(path);
    }
  };
  await expand(readStoredManifest(Buffer.from(o!.sysmeta[SLO_MANIFEST]!, 'utf8')) ?? [], 0);
  names.push(`${sr.container}/${sr.object}`);
  let deleted = 0;
  let notFound = 0;
  const errors: Array<[string, string]> = [];
  for (const path of names) {
    const slash = path.indexOf('/');
    const answer = await sub.run(self, sr, { method: 'DELETE', container: path.slice(0, slash), object: path.slice(slash + 1), headers: {} });
    discard(answer.body);
    if (answer.status >= 200 && answer.status < 300) deleted++;
    else if (answer.status === 404) notFound++;
    else errors.push([quote(`/${path}`), statusLine(answer.status)]);
  }
  const result = {
    'Number Deleted': deleted, 'Number Not Found': notFound,
    'Response Body': '', 'Response Status': errors.length ? '400 Bad Request' : '200 OK',
  };
  sr.reply.code(200).header('Content-Type', format);
  return renderBulk(format, result, errors, 'delete');
}
