// An object's HTTP attributes in S3's terms and the store's: user metadata
// (x-amz-meta-* is the same map as Swift's X-Object-Meta-*, so each API sees
// what the other wrote), the content headers kept with the object, ETags and
// dates, conditional requests and ranges.
import { singleRange } from '../../http/range.ts';
import type { Meta, ObjectInfo } from '../store.ts';
import { timestampDate } from '../store.ts';
import { s3Error } from './errors.ts';
import type { S3Request } from './request.ts';

/** S3's limit on user metadata: names and values of x-amz-meta-* together. */
export const MAX_META_BYTES = 2048;

/** Content headers kept with an object, in its sysmeta under `swift.header.<name>` as Swift keeps them (swift/object.ts), so each API shows the other's. */
export const KEPT_HEADERS = ['content-encoding', 'content-disposition', 'content-language', 'cache-control', 'expires'] as const;
const KEPT_PREFIX = 'swift.header.';
const keptKey = (h: string) => `${KEPT_PREFIX}${h}`;
export const isKeptHeader = (sysmetaKey: string): boolean => sysmetaKey.startsWith(KEPT_PREFIX);

/** Where a new object's attributes come from: a request's headers, or a POST form's fields (post-object.ts). */
export type HeaderSource = Pick<S3Request, 'header' | 'headers'>;

/** User metadata from the request's x-amz-meta-* headers (names lower-case, without the prefix). */
export function userMetadata(r: HeaderSource): Record<string, string> {
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of Object.entries(r.headers())) {
    if (!k.startsWith('x-amz-meta-')) continue;
    const name = k.slice('x-amz-meta-'.length);
    if (name === '') continue;
    out[name] = v;
    bytes += Buffer.byteLength(name) + Buffer.byteLength(v);
  }
  if (bytes > MAX_META_BYTES) throw s3Error('MetadataTooLarge', undefined, [['Size', String(bytes)], ['MaxSizeAllowed', String(MAX_META_BYTES)]]);
  return out;
}

/** The content headers of the request, as sysmeta entries. */
export function keptHeaders(r: HeaderSource): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of KEPT_HEADERS) {
    const v = r.header(h);
    if (v !== undefined && !(h === 'content-encoding' && /^aws-chunked$/i.test(v.trim()))) {
      // aws-chunked is the request's transfer coding, not the object's
      const coding = h === 'content-encoding' ? v.split(',').map((s) => s.trim()).filter((s) => s.toLowerCase() !== 'aws-chunked').join(', ') : v;
      if (coding !== '') out[keptKey(h)] = coding;
    }
  }
  return out;
}

/** The sysmeta of `sysmeta` without the kept content headers. */
export function withoutKeptHeaders(sysmeta: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(sysmeta)) if (!isKeptHeader(k)) out[k] = v;
  return out;
}

export const quoteEtag = (etag: string): string => `"${etag}"`;
export const unquote = (s: string): string => s.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
export const lastModified = (o: ObjectInfo): Date => timestampDate(o.timestamp);

/** The headers of an object's GET/HEAD answer. */
export function objectHeaders(o: ObjectInfo): Record<string, string> {
  const h: Record<string, string> = {
    'etag': quoteEtag(o.etag),
    'last-modified': lastModified(o).toUTCString(),
    'content-type': o.contentType,
    'accept-ranges': 'bytes',
  };
  for (const [k, v] of Object.entries(o.metadata)) h[`x-amz-meta-${k.toLowerCase()}`] = v;
  for (const name of KEPT_HEADERS) {
    const v = o.sysmeta[keptKey(name)];
    if (v !== undefined) h[name] = v;
  }
  return h;
}

/** The response-* overrides of a signed GET (response-content-type...). */
export function responseOverrides(r: S3Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding']) {
    const v = r.query.get(`response-${name}`);
    if (v !== undefined) out[name] = v;
  }
  if (Object.keys(out).length && !r.cred) throw s3Error('InvalidRequest', 'Request specific response headers cannot be used for anonymous GET requests.');
  return out;
}

const parseHttpDate = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
};

const etagList = (s: string): string[] => s.split(',').map(unquote);

/**
 * GET/HEAD conditions (RFC 7232 as S3 applies them): If-Match and
 * If-Unmodified-Since fail with 412; If-None-Match and If-Modified-Since with
 * 304 (returned as 'not-modified'); If-Match that holds overrides a failing
 * If-Unmodified-Since, a failing If-None-Match overrides a holding If-Modified-Since.
 */
export function readConditions(r: S3Request, o: ObjectInfo): 'ok' | 'not-modified' {
  const modified = Math.floor(lastModified(o).getTime() / 1000) * 1000;
  const ifMatch = r.header('if-match');
  const ifNoneMatch = r.header('if-none-match');
  const ifUnmodified = parseHttpDate(r.header('if-unmodified-since'));
  const ifModified = parseHttpDate(r.header('if-modified-since'));
  if (ifMatch !== undefined) {
    const list = etagList(ifMatch);
    if (!list.includes('*') && !list.includes(o.etag)) throw s3Error('PreconditionFailed', undefined, [['Condition', 'If-Match']]);
  } else if (ifUnmodified !== undefined && modified > ifUnmodified) {
    throw s3Error('PreconditionFailed', undefined, [['Condition', 'If-Unmodified-Since']]);
  }
  if (ifNoneMatch !== undefined) {
    const list = etagList(ifNoneMatch);
    if (list.includes('*') || list.includes(o.etag)) return 'not-modified';
  } else if (ifModified !== undefined && modified <= ifModified) {
    return 'not-modified';
  }
  return 'ok';
}

/** x-amz-copy-source-if-* against the copy's source: 412 when one fails. */
export function copySourceConditions(r: S3Request, o: ObjectInfo): void {
  const modified = Math.floor(lastModified(o).getTime() / 1000) * 1000;
  const ifMatch = r.header('x-amz-copy-source-if-match');
  const ifNoneMatch = r.header('x-amz-copy-source-if-none-match');
  const ifUnmodified = parseHttpDate(r.header('x-amz-copy-source-if-unmodified-since'));
  const ifModified = parseHttpDate(r.header('x-amz-copy-source-if-modified-since'));
  const fail = () => { throw s3Error('PreconditionFailed'); };
  if (ifMatch !== undefined) {
    const list = etagList(ifMatch);
    if (!list.includes('*') && !list.includes(o.etag)) fail();
  } else if (ifUnmodified !== undefined && modified > ifUnmodified) fail();
  if (ifNoneMatch !== undefined) {
    const list = etagList(ifNoneMatch);
    if (list.includes('*') || list.includes(o.etag)) fail();
  } else if (ifModified !== undefined && modified <= ifModified) fail();
}

/**
 * The byte range a Range header asks of an object of `size` bytes, [start,
 * end), or null for the whole object (no header, a malformed one, or several
 * ranges, which S3 answers whole); InvalidRange when it is not satisfiable.
 * Read by the one range parser (http/range.ts).
 */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | null {
  const range = singleRange(header, size);
  if (range === 'unsatisfiable') throw s3Error('InvalidRange', undefined, [['RangeRequested', header!.trim()], ['ActualObjectSize', String(size)]]);
  return range;
}

/** The copy source header `bucket/key[?versionId=v]`, decoded. */
export function parseCopySource(v: string): { bucket: string; key: string; versionId?: string } {
  let s = v.trim();
  let versionId: string | undefined;
  const q = s.indexOf('?');
  if (q >= 0) {
    const m = /(?:^|&)versionId=([^&]*)/.exec(s.slice(q + 1));
    versionId = m ? m[1]! : undefined;
    s = s.slice(0, q);
  }
  let decoded: string;
  try {
    if (versionId !== undefined) versionId = decodeURIComponent(versionId);
    decoded = decodeURIComponent(s);
  } catch {
    throw s3Error('InvalidArgument', 'Invalid copy source encoding', [['ArgumentName', 'x-amz-copy-source']]);
  }
  if (decoded.startsWith('/')) decoded = decoded.slice(1);
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw s3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', [['ArgumentName', 'x-amz-copy-source'], ['ArgumentValue', v]]);
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1), ...(versionId !== undefined ? { versionId } : {}) };
}

// ---- tags (tagging.ts serves them; lifecycle rules filter by them)

/** The object sysmeta holding its tags. */
export const TAGGING = 's3-tagging';

export type Tags = Array<[string, string]>;

/** The sysmeta entry for a tag set (none when empty). */
export const tagSysmeta = (tags: Tags | undefined): Meta => (tags && tags.length ? { [TAGGING]: new URLSearchParams(tags).toString() } : {});

/** An object's tags. */
export const tagsOf = (o: { sysmeta: Meta }): Tags => (o.sysmeta[TAGGING] ? [...new URLSearchParams(o.sysmeta[TAGGING])] : []);
