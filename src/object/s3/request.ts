// An S3 request as the operations see it: bucket and key from the path (the
// key as the client encoded it, decoded once; a trailing '/' kept), the
// query's sub-resources, headers, the caller, the body as a checked stream or
// as small XML, and the helpers every answer uses.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Credentials } from '../../http/auth.ts';
import { signedPayloadOf } from './auth.ts';
import { s3Error } from './errors.ts';
import { checkedBody, type PayloadCheck } from './payload.ts';
import { queryPairs, safeDecode, uriEncode } from './sigv4.ts';

export const PREFIX = '/s3';
/** The largest XML body a request may carry (DeleteObjects of 1,000 long keys fits). */
export const MAX_XML_BODY = 2 * 1024 * 1024;

/** Content-Type of the request as sent (the service hides it from Fastify's body parsers). */
const contentTypes = new WeakMap<object, string>();
export function stashContentType(req: FastifyRequest): void {
  const ct = req.headers['content-type'];
  if (ct !== undefined) {
    contentTypes.set(req.raw, ct);
    delete req.headers['content-type'];
  }
}

export class S3Request {
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
  readonly cred: Credentials | null;
  readonly bucket: string;
  readonly key: string;
  readonly query: Map<string, string>;

  constructor(req: FastifyRequest, reply: FastifyReply, cred: Credentials | null) {
    this.req = req;
    this.reply = reply;
    this.cred = cred;
    const url = req.url;
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    if (path.startsWith(PREFIX)) path = path.slice(PREFIX.length);
    if (path.startsWith('/')) path = path.slice(1);
    const slash = path.indexOf('/');
    const rawBucket = slash < 0 ? path : path.slice(0, slash);
    const rawKey = slash < 0 ? '' : path.slice(slash + 1);
    this.bucket = strictDecode(rawBucket);
    this.key = strictDecode(rawKey);
    this.query = new Map();
    for (const [n, v] of queryPairs(q < 0 ? '' : url.slice(q + 1))) if (!this.query.has(n)) this.query.set(n, v);
  }

  has(name: string): boolean {
    return this.query.has(name);
  }

  header(name: string): string | undefined {
    if (name === 'content-type') return contentTypes.get(this.req.raw);
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  }

  /** The request's headers (lower-case names; the content type as sent). */
  headers(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
    const ct = contentTypes.get(this.req.raw);
    if (ct !== undefined) out['content-type'] = ct;
    return out;
  }

  /** The body's length as the client declared it (decoded length of an aws-chunked body); MissingContentLength when it declared none. */
  declaredLength(required = true): number | undefined {
    const decoded = this.header('x-amz-decoded-content-length');
    const chunked = signedPayloadOf(this.req).chunked;
    const raw = chunked ? decoded : this.header('content-length');
    if (raw === undefined) {
      if (required && !(chunked && this.header('transfer-encoding'))) throw s3Error('MissingContentLength');
      return undefined;
    }
    if (!/^\d+$/.test(raw)) throw s3Error('InvalidArgument', 'Content-Length is not a number.', [['ArgumentName', 'Content-Length'], ['ArgumentValue', raw]]);
    return Number(raw);
  }

  /** The MD5 (hex) of Content-MD5, if sent; InvalidDigest when it is not 16 bytes of base64. */
  contentMd5(): string | undefined {
    const v = this.header('content-md5');
    if (v === undefined) return undefined;
    const b = Buffer.from(v.trim(), 'base64');
    if (b.length !== 16 || b.toString('base64') !== v.trim()) throw s3Error('InvalidDigest');
    return b.toString('hex');
  }

  /** The body, decoded and checked as it streams (payload.ts); the store reads it. */
  body(): Readable {
    const raw = (this.req.body ?? this.req.raw) as Readable;
    const check: PayloadCheck = { ...signedPayloadOf(this.req) };
    const checksumHeader = Object.keys(this.req.headers).find((h) => /^x-amz-checksum-(crc32|crc32c|sha1|sha256|crc64nvme)$/.test(h));
    const trailer = this.header('x-amz-trailer')?.trim().toLowerCase();
    if (checksumHeader) check.checksum = { algorithm: checksumHeader.slice('x-amz-checksum-'.length), value: this.header(checksumHeader) };
    else if (trailer && /^x-amz-checksum-/.test(trailer)) check.checksum = { algorithm: trailer.slice('x-amz-checksum-'.length) };
    return checkedBody(raw, check);
  }

  /** A small body read whole (XML, a policy), at most `limit` bytes; `tooLarge` when longer. */
  async smallBody(limit = MAX_XML_BODY): Promise<string> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of this.body()) {
      n += (c as Buffer).length;
      if (n > limit) throw s3Error('MaxMessageLengthExceeded');
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Sends `xml` with the status. */
  xml(text: string, status = 200): string {
    this.reply.code(status).header('content-type', 'application/xml');
    return text;
  }
}

/** Percent-decoding of a path part; InvalidURI when malformed. */
function strictDecode(s: string): string {
  if (!s.includes('%')) return s;
  const d = safeDecode(s);
  if (d === s && /%/.test(s)) {
    try {
      return decodeURIComponent(s);
    } catch {
      throw s3Error('InvalidArgument', 'Couldn\'t parse the specified URI.');
    }
  }
  return d;
}

/** S3's ISO time in listings: 2009-10-12T17:50:30.000Z. */
export const isoTime = (d: Date): string => d.toISOString();
/** HTTP date for Last-Modified. */
export const httpDate = (d: Date): string => d.toUTCString();

/** The parameters every S3 listing takes: prefix, delimiter, its page size, and how names are written. */
export interface ListingParams {
  prefix: string;
  delimiter: string;
  /** At most 1000; 1000 when absent. */
  max: number;
  /** `encoding-type=url` writes names URL-encoded. */
  enc: (s: string) => string;
}

/**
 * A listing's parameters (ListObjects V1/V2, ListObjectVersions,
 * ListMultipartUploads, ListParts: `maxName` names its page size);
 * InvalidArgument for a page size that is not a number or an unknown
 * encoding-type, as S3 answers.
 */
export function listingParams(r: S3Request, maxName = 'max-keys'): ListingParams {
  const v = r.query.get(maxName);
  if (v !== undefined && v !== '' && !/^\d+$/.test(v)) {
    throw s3Error('InvalidArgument', `Provided ${maxName} not an integer or within integer range`, [['ArgumentName', maxName], ['ArgumentValue', v]]);
  }
  const e = r.query.get('encoding-type');
  if (e !== undefined && e !== 'url') throw s3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', [['ArgumentName', 'encoding-type'], ['ArgumentValue', e]]);
  return {
    prefix: r.query.get('prefix') ?? '',
    delimiter: r.query.get('delimiter') ?? '',
    max: v === undefined || v === '' ? 1000 : Math.min(1000, Number(v)),
    enc: e === 'url' ? (s) => uriEncode(s, true) : (s) => s,
  };
}
