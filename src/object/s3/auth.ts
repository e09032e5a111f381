// Who signed an S3 request: AWS Signature Version 4 (Authorization header or
// presigned query, with signed, unsigned or streamed aws-chunked payloads) and
// Version 2 (header or presigned query), checked against the secret of a
// Keystone EC2 credential (identity's Ec2Keys) on the method, path, query and
// headers exactly as the client sent them (before any URL rewrite). The
// caller is the credential's user on its project, as Keystone would scope a
// token. A request with no S3 credentials is anonymous (null): what it may
// do is the bucket's ACL's business. Secrets and signing keys never leave
// this module and are never logged.
import type { FastifyRequest } from 'fastify';
import type { Authenticator, Credentials } from '../../http/auth.ts';
import type { Ec2Keys } from '../../identity/ec2.ts';
import { s3Error } from './errors.ts';
import type { PayloadCheck } from './payload.ts';
import {
  amzDate, canonicalRequest, EMPTY_SHA256, headerLines, parseAmzDate, parseCredential, parseV4Authorization, queryPairs,
  safeDecode, sameSignature, signingKey, signV2, signV4, stringToSign, STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER,
  STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD, uriEncode, v2StringToSign, V4_ALGORITHM, type Scope,
} from './sigv4.ts';

/** How far a request's time may be from ours (AWS: 15 minutes). */
export const MAX_SKEW_MS = 15 * 60 * 1000;
/** The longest validity of a V4 presigned URL (AWS: 7 days). */
export const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;

/** What the signature says about how to read the body (payload.ts checks it). */
const payloads = new WeakMap<FastifyRequest, Pick<PayloadCheck, 'sha256' | 'chunked'>>();
export const signedPayloadOf = (req: FastifyRequest): Pick<PayloadCheck, 'sha256' | 'chunked'> => payloads.get(req) ?? {};

/** Whether a request carries S3 credentials (a signature of either version, in a header or the query). */
export function carriesS3Signature(authorization: string | undefined, rawQuery: string): boolean {
  if (authorization && (authorization.startsWith(`${V4_ALGORITHM} `) || authorization.startsWith('AWS '))) return true;
  return /(^|&)(X-Amz-Signature|X-Amz-Credential|AWSAccessKeyId|Signature)=/.test(rawQuery);
}

function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

export interface S3AuthOptions {
  keys: Ec2Keys;
  /** The bucket a virtual-hosted request names in its Host, if any (V2 signs it as part of the resource). */
  virtualBucket(req: FastifyRequest): string | null;
  now?: () => number;
}

export function s3Authenticator(o: S3AuthOptions): Authenticator {
  const now = o.now ?? Date.now;

  async function keyOf(access: string): Promise<{ secret: string; cred: () => Promise<Credentials | null> }> {
    const key = await o.keys.lookup(access);
    if (!key) throw s3Error('InvalidAccessKeyId');
    return { secret: key.secret, cred: () => key.caller() };
  }

  /** The caller, asked for only once the signature is good (a trust's use is consumed then). */
  const allowed = async (caller: () => Promise<Credentials | null>): Promise<Credentials> => {
    const cred = await caller();
    // A good signature of a user who could not get a token on the project now.
    if (!cred) throw s3Error('AccessDenied');
    return cred;
  };

  /** The canonical URIs to try: the path as sent, then as AWS re-encodes it (for clients that signed the encoded key). */
  const canonicalPaths = (path: string): string[] => {
    const reencoded = uriEncode(safeDecode(path), true);
    return reencoded === path ? [path] : [path, reencoded];
  };

  function unsignedHeadersPresent(headers: Map<string, string[]>, signed: readonly string[]): boolean {
    const set = new Set(signed);
    return [...headers.keys()].some((h) => h.startsWith('x-amz-') && !set.has(h) && h !== 'x-amz-content-sha256' || (h === 'host' && !set.has(h)));
  }

  async function v4Header(req: FastifyRequest, header: string, path: string, query: string, headers: Map<string, string[]>): Promise<Credentials> {
    const a = parseV4Authorization(header);
    if (!a) throw s3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; the Credential, SignedHeaders and Signature are required.');
    if (a.scope.service !== 's3') throw s3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; incorrect service "${a.scope.service}". This endpoint belongs to "s3".`);
    const dateText = headers.get('x-amz-date')?.[0] ?? headers.get('date')?.[0];
    let t = dateText ? parseAmzDate(dateText) : NaN;
    if (dateText && Number.isNaN(t)) t = Date.parse(dateText);
    if (!dateText || Number.isNaN(t)) throw s3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    const signedDate = dateText && !Number.isNaN(parseAmzDate(dateText)) ? dateText : amzDate(t);
    if (Math.abs(now() - t) > MAX_SKEW_MS) throw s3Error('RequestTimeTooSkewed', undefined, [['RequestTime', dateText], ['ServerTime', new Date(now()).toISOString()], ['MaxAllowedSkewMilliseconds', String(MAX_SKEW_MS)]]);
    if (a.scope.date !== signedDate.slice(0, 8)) throw s3Error('AuthorizationHeaderMalformed', `Invalid credential date "${a.scope.date}". This date is not the same as X-Amz-Date: "${signedDate.slice(0, 8)}".`);
    if (unsignedHeadersPresent(headers, a.signedHeaders)) throw s3Error('AccessDenied', 'There were headers present in the request which were not signed');
    const payloadHash = headers.get('x-amz-content-sha256')?.[0];
    if (!payloadHash) throw s3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    const streaming = [STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_TRAILER].includes(payloadHash);
    if (!streaming && payloadHash !== UNSIGNED_PAYLOAD && !/^[0-9a-f]{64}$/.test(payloadHash)) {
      throw s3Error('InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.', [['ArgumentName', 'x-amz-content-sha256'], ['ArgumentValue', payloadHash]]);
    }
    const { secret, cred } = await keyOf(a.access);
    const key = signingKey(secret, a.scope);
    const ok = canonicalPaths(path).some((p) => {
      const canonical = canonicalRequest({ method: req.method, path: p, rawQuery: query, headers, signedHeaders: a.signedHeaders, payloadHash });
      return sameSignature(signV4(key, stringToSign(signedDate, a.scope, canonical)), a.signature);
    });
    if (!ok) throw s3Error('SignatureDoesNotMatch', undefined, [['AWSAccessKeyId', a.access]]);
    if (streaming) {
      const decoded = headers.get('x-amz-decoded-content-length')?.[0];
      const decodedLength = decoded !== undefined && /^\d+$/.test(decoded) ? Number(decoded) : undefined;
      if (decoded !== undefined && decodedLength === undefined) throw s3Error('InvalidArgument', 'x-amz-decoded-content-length is not a number.');
      const signed = payloadHash !== STREAMING_UNSIGNED_TRAILER;
      payloads.set(req, { chunked: { signed, trailer: payloadHash !== STREAMING_PAYLOAD, decodedLength, ...(signed ? { key, scope: a.scope, amzDate: signedDate, seed: a.signature } : {}) } });
    } else if (payloadHash !== UNSIGNED_PAYLOAD && payloadHash !== EMPTY_SHA256) {
      payloads.set(req, { sha256: payloadHash });
    } else if (payloadHash === EMPTY_SHA256) {
      payloads.set(req, { sha256: EMPTY_SHA256 });
    }
    return allowed(cred);
  }

  async function v4Query(req: FastifyRequest, path: string, query: string, headers: Map<string, string[]>): Promise<Credentials> {
    const q = new Map(queryPairs(query));
    const malformed = (m: string) => s3Error('AuthorizationQueryParametersError', m);
    if (q.get('X-Amz-Algorithm') !== V4_ALGORITHM) throw malformed('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
    const credential = q.get('X-Amz-Credential');
    const date = q.get('X-Amz-Date');
    const expires = q.get('X-Amz-Expires');
    const signedHeaders = q.get('X-Amz-SignedHeaders');
    const signature = q.get('X-Amz-Signature');
    if (!credential || !date || !expires || !signedHeaders || !signature) {
      throw malformed('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
    }
    const c = parseCredential(credential);
    if (!c) throw malformed('Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
    if (c.scope.service !== 's3') throw malformed(`Error parsing the X-Amz-Credential parameter; incorrect service "${c.scope.service}". This endpoint belongs to "s3".`);
    const t = parseAmzDate(date);
    if (Number.isNaN(t)) throw malformed('X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
    if (!/^\d+$/.test(expires)) throw malformed('X-Amz-Expires should be a number');
    const seconds = Number(expires);
    if (seconds < 1) throw malformed('X-Amz-Expires must be non-negative');
    if (seconds > MAX_PRESIGNED_SECONDS) throw malformed('X-Amz-Expires must be less than a week (in seconds) that is 604800');
    if (c.scope.date !== date.slice(0, 8)) throw malformed(`Invalid credential date "${c.scope.date}". This date is not the same as X-Amz-Date: "${date.slice(0, 8)}".`);
    if (now() > t + seconds * 1000) throw s3Error('AccessDenied', 'Request has expired', [['X-Amz-Expires', expires], ['Expires', new Date(t + seconds * 1000).toISOString()], ['ServerTime', new Date(now()).toISOString()]]);
    if (t > now() + MAX_SKEW_MS) throw s3Error('AccessDenied', 'Request is not valid yet');
    const signed = signedHeaders.split(';');
    const payloadHash = q.get('X-Amz-Content-Sha256') ?? headers.get('x-amz-content-sha256')?.[0] ?? UNSIGNED_PAYLOAD;
    const { secret, cred } = await keyOf(c.access);
    const key = signingKey(secret, c.scope);
    const ok = canonicalPaths(path).some((p) => {
      const canonical = canonicalRequest({ method: req.method, path: p, rawQuery: query, headers, signedHeaders: signed, payloadHash, omitQuery: 'X-Amz-Signature' });
      return sameSignature(signV4(key, stringToSign(date, c.scope, canonical)), signature);
    });
    if (!ok) throw s3Error('SignatureDoesNotMatch', undefined, [['AWSAccessKeyId', c.access]]);
    if (/^[0-9a-f]{64}$/.test(payloadHash)) payloads.set(req, { sha256: payloadHash });
    return allowed(cred);
  }

  async function v2(req: FastifyRequest, access: string, signature: string, date: string[], path: string, query: string, headers: Map<string, string[]>): Promise<Credentials> {
    const { secret, cred } = await keyOf(access);
    const bucket = o.virtualBucket(req);
    const resources = canonicalPaths(path).map((p) => (bucket ? `/${bucket}${p}` : p));
    const ok = resources.some((resourcePath) => date.some((d) => sameSignature(signV2(secret, v2StringToSign({ method: req.method, resourcePath, rawQuery: query, headers, date: d })), signature)));
    if (!ok) throw s3Error('SignatureDoesNotMatch', undefined, [['AWSAccessKeyId', access]]);
    return allowed(cred);
  }

  async function v2Header(req: FastifyRequest, header: string, path: string, query: string, headers: Map<string, string[]>): Promise<Credentials> {
    const m = /^AWS ([^:\s]+):(\S+)$/.exec(header.trim());
    if (!m) throw s3Error('InvalidArgument', 'AWS authorization header is invalid.  Expected AwsAccessKeyId:signature', [['ArgumentName', 'Authorization'], ['ArgumentValue', header]]);
    const amz = headers.get('x-amz-date')?.[0];
    const plain = headers.get('date')?.[0];
    const when = amz ?? plain;
    const t = when ? Date.parse(when) : NaN;
    if (!when || Number.isNaN(t)) throw s3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    if (Math.abs(now() - t) > MAX_SKEW_MS) throw s3Error('RequestTimeTooSkewed', undefined, [['RequestTime', when], ['ServerTime', new Date(now()).toISOString()], ['MaxAllowedSkewMilliseconds', String(MAX_SKEW_MS)]]);
    // With x-amz-date the Date line is empty (the x-amz-date header is signed among the amz headers); some clients put the Date there anyway.
    const dates = amz !== undefined ? ['', plain ?? ''] : [plain!];
    return v2(req, m[1]!, m[2]!, dates, path, query, headers);
  }

  async function v2Query(req: FastifyRequest, path: string, query: string, headers: Map<string, string[]>): Promise<Credentials> {
    const q = new Map(queryPairs(query));
    const access = q.get('AWSAccessKeyId');
    const expires = q.get('Expires');
    const signature = q.get('Signature');
    if (!access || !expires || !signature) throw s3Error('AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters');
    if (!/^\d+$/.test(expires)) throw s3Error('AccessDenied', 'Invalid date (should be seconds since epoch): ' + expires);
    if (now() > Number(expires) * 1000) throw s3Error('AccessDenied', 'Request has expired', [['Expires', new Date(Number(expires) * 1000).toISOString()], ['ServerTime', new Date(now()).toISOString()]]);
    const rest = query.split('&').filter((p) => !/^(AWSAccessKeyId|Expires|Signature)=/.test(p)).join('&');
    return v2(req, access, signature, [expires], path, rest, headers);
  }

  return {
    async authenticate(req) {
      const { path, query } = splitUrl(req.originalUrl ?? req.url);
      const header = req.headers.authorization;
      const headers = headerLines(req.raw.rawHeaders);
      if (header?.startsWith(`${V4_ALGORITHM} `)) return v4Header(req, header, path, query, headers);
      if (header?.startsWith('AWS ')) return v2Header(req, header, path, query, headers);
      if (/(^|&)X-Amz-(Algorithm|Credential|Signature)=/.test(query)) return v4Query(req, path, query, headers);
      if (/(^|&)(AWSAccessKeyId|Signature)=/.test(query)) return v2Query(req, path, query, headers);
      if (header) throw s3Error('InvalidArgument', 'Unsupported Authorization Type', [['ArgumentName', 'Authorization'], ['ArgumentValue', header.split(' ')[0] ?? '']]);
      return null;
    },
  };
}

export type { Scope };
