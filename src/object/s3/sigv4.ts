// AWS Signature Version 4 and Version 2, as S3 documents them: the
// canonical forms, the strings to sign and the signatures. Pure functions of
// the request as the client sent it (method, raw path and query, raw header
// lines); auth.ts reads the request and decides, chunked.ts checks streamed
// chunks. Nothing here logs, and no secret or signing key leaves a function.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const V4_ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const STREAMING_PAYLOAD = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_PAYLOAD_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** Compares two signatures in constant time. */
export function sameSignature(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** RFC 3986 encoding as AWS's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ as %XX (upper case); '/' kept when `slash`. */
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if ((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || c === '-' || c === '.' || c === '_' || c === '~' || (keepSlash && c === '/')) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Percent-decoding that keeps a malformed escape as it is (the client signed what it sent). */
export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The query pairs of a raw query string, decoded ('+' is a space, as form encoding has it). */
export function queryPairs(rawQuery: string): Array<[string, string]> {
  if (rawQuery === '') return [];
  return rawQuery.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    const name = i < 0 ? p : p.slice(0, i);
    const value = i < 0 ? '' : p.slice(i + 1);
    return [safeDecode(name.replace(/\+/g, ' ')), safeDecode(value.replace(/\+/g, ' '))];
  });
}

/** The canonical query string: each name and value UriEncoded, sorted by name then value; `omit` left out (the presigned signature). */
export function canonicalQuery(rawQuery: string, omit?: string): string {
  const pairs = queryPairs(rawQuery).filter(([n]) => n !== omit).map(([n, v]) => [uriEncode(n), uriEncode(v)] as const);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** Header values by lower-case name from Node's raw header list, in order received. */
export function headerLines(rawHeaders: readonly string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const list = m.get(name);
    if (list) list.push(rawHeaders[i + 1]!);
    else m.set(name, [rawHeaders[i + 1]!]);
  }
  return m;
}

/** A header's canonical value: each value trimmed with inner runs of spaces folded to one, several joined by ','. */
export const foldHeader = (values: readonly string[]): string => values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');

export interface CanonicalInput {
  method: string;
  /** The canonical URI (the path as the client encoded it, for S3). */
  path: string;
  rawQuery: string;
  headers: Map<string, string[]>;
  signedHeaders: readonly string[];
  payloadHash: string;
  /** A query parameter left out of the canonical query (X-Amz-Signature of a presigned URL). */
  omitQuery?: string;
}

export function canonicalRequest(c: CanonicalInput): string {
  const headers = c.signedHeaders.map((h) => `${h}:${foldHeader(c.headers.get(h) ?? [])}\n`).join('');
  return [c.method, c.path, canonicalQuery(c.rawQuery, c.omitQuery), headers, c.signedHeaders.join(';'), c.payloadHash].join('\n');
}

/** `<date>/<region>/<service>/aws4_request`. */
export interface Scope { date: string; region: string; service: string }
export const scopeString = (s: Scope): string => `${s.date}/${s.region}/${s.service}/aws4_request`;

export function stringToSign(amzDate: string, scope: Scope, canonical: string): string {
  return `${V4_ALGORITHM}\n${amzDate}\n${scopeString(scope)}\n${sha256Hex(canonical)}`;
}

/** The signing key of a secret for a scope (kDate, kRegion, kService, kSigning). */
export function signingKey(secret: string, scope: Scope): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, scope.date), scope.region), scope.service), 'aws4_request');
}

export const signV4 = (key: Buffer, toSign: string): string => createHmac('sha256', key).update(toSign, 'utf8').digest('hex');

/** The string a streamed chunk's signature signs (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). */
export function chunkStringToSign(amzDate: string, scope: Scope, previous: string, chunkHash: string): string {
  return `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scopeString(scope)}\n${previous}\n${EMPTY_SHA256}\n${chunkHash}`;
}

/** The string a streamed upload's trailer signature signs. */
export function trailerStringToSign(amzDate: string, scope: Scope, previous: string, trailerHash: string): string {
  return `AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scopeString(scope)}\n${previous}\n${trailerHash}`;
}

export interface V4Authorization { access: string; scope: Scope; signedHeaders: string[]; signature: string }

/**
 * `AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex`;
 * null when malformed.
 */
export function parseV4Authorization(header: string): V4Authorization | null {
  if (!header.startsWith(`${V4_ALGORITHM} `)) return null;
  const fields = new Map<string, string>();
  for (const part of header.slice(V4_ALGORITHM.length + 1).split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const credential = fields.get('Credential');
  const signed = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signed || !signature) return null;
  const scope = parseCredential(credential);
  if (!scope) return null;
  return { access: scope.access, scope: scope.scope, signedHeaders: signed.split(';'), signature };
}

/** `AK/20130524/us-east-1/s3/aws4_request` (an access key may not hold '/'). */
export function parseCredential(credential: string): { access: string; scope: Scope } | null {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]!)) return null;
  return { access: parts[0]!, scope: { date: parts[1]!, region: parts[2]!, service: parts[3]! } };
}

/** `20130524T000000Z` as milliseconds since the epoch; NaN when malformed. */
export function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return NaN;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

export const amzDate = (ms: number): string => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

// ---- Signature Version 2 --------------------------------------------------------

/** The sub-resources that are part of V2's canonicalized resource (with their values). */
const V2_SUBRESOURCES = new Set([
  'acl', 'cors', 'delete', 'lifecycle', 'location', 'logging', 'notification', 'partNumber', 'policy', 'requestPayment',
  'response-cache-control', 'response-content-disposition', 'response-content-encoding', 'response-content-language',
  'response-content-type', 'response-expires', 'restore', 'tagging', 'torrent', 'uploadId', 'uploads', 'versionId',
  'versioning', 'versions', 'website', 'object-lock', 'retention', 'legal-hold', 'encryption', 'replication',
]);

export interface V2Input {
  method: string;
  /** `/bucket/key` as the client encoded it (a virtual-hosted bucket put in front). */
  resourcePath: string;
  rawQuery: string;
  headers: Map<string, string[]>;
  /** The Date line: the Date header, '' when x-amz-date is sent, the Expires value of a presigned URL. */
  date: string;
}

export function v2StringToSign(i: V2Input): string {
  const one = (n: string) => foldHeader(i.headers.get(n) ?? []);
  const amz = [...i.headers.keys()].filter((n) => n.startsWith('x-amz-')).sort()
    .map((n) => `${n}:${(i.headers.get(n) ?? []).map((v) => v.trim()).join(',')}\n`).join('');
  const subs = queryPairs(i.rawQuery).filter(([n]) => V2_SUBRESOURCES.has(n))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([n, v]) => (v === '' && !new RegExp(`(^|&)${n}=`).test(i.rawQuery) ? n : `${n}=${v}`));
  const resource = i.resourcePath + (subs.length ? `?${subs.join('&')}` : '');
  return `${i.method}\n${one('content-md5')}\n${one('content-type')}\n${i.date}\n${amz}${resource}`;
}

export const signV2 = (secret: string, toSign: string): string => createHmac('sha1', secret).update(toSign, 'utf8').digest('base64');
