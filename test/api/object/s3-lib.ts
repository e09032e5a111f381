// A small S3 client for the API tests: AWS Signature V4 (header, presigned,
// aws-chunked) and V2, written here from AWS's documentation independently of
// src/object/s3/sigv4.ts, over fetch to the in-process server.
import { createHash, createHmac } from 'node:crypto';
import assert from 'node:assert/strict';
import type { Cloud, Tenant } from '../../harness.ts';

export interface Keys { access: string; secret: string }
export interface S3Reply { status: number; headers: Headers; text: string; body: Buffer }

const sha256 = (d: string | Buffer) => createHash('sha256').update(d).digest('hex');
const hmac = (k: string | Buffer, d: string) => createHmac('sha256', k).update(d, 'utf8').digest();
const enc = (s: string, slash = false) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%2F/g, slash ? '/' : '%2F');

/** A new EC2 credential of the tenant's user on its project. */
export async function ec2Keys(cloud: Cloud, t: Tenant): Promise<Keys> {
  const r = await cloud.call('POST', `/identity/v3/users/${t.userId}/credentials/OS-EC2`, { token: t.token, body: { tenant_id: t.projectId } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { access: r.body.credential.access, secret: r.body.credential.secret };
}

export const amzDate = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

function canonicalQuery(query: string): string {
  if (!query) return '';
  return query.split('&').map((p) => {
    const [k, v = ''] = p.split('=');
    return [enc(decodeURIComponent(k!)), enc(decodeURIComponent(v))];
  }).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
}

export function signingKey(secret: string, date: string, region: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
}

export interface SignOptions {
  method: string;
  /** The path as sent (already encoded), e.g. /s3/bucket/key. */
  path: string;
  query?: string;
  headers?: Record<string, string>;
  /** The payload hash to sign (default: the body's SHA-256). */
  payloadHash?: string;
  body?: Buffer | string;
  date?: Date;
  region?: string;
  host: string;
}

/** The headers of a V4-signed request (Authorization, x-amz-date, x-amz-content-sha256) and its signature. */
export function signV4(keys: Keys, o: SignOptions): { headers: Record<string, string>; signature: string; key: Buffer; date: string; scope: string } {
  const date = amzDate(o.date ?? new Date());
  const region = o.region ?? 'us-east-1';
  const payloadHash = o.payloadHash ?? sha256(o.body ?? '');
  const headers: Record<string, string> = { ...(o.headers ?? {}), host: o.host, 'x-amz-date': date, 'x-amz-content-sha256': payloadHash };
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v.trim().replace(/\s+/g, ' ')]));
  const names = Object.keys(lower).sort();
  const canonical = [o.method, o.path, canonicalQuery(o.query ?? ''), names.map((n) => `${n}:${lower[n]}\n`).join(''), names.join(';'), payloadHash].join('\n');
  const scope = `${date.slice(0, 8)}/${region}/s3/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256(canonical)}`;
  const key = signingKey(keys.secret, date.slice(0, 8), region);
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${keys.access}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  delete headers.host;
  return { headers, signature, key, date, scope };
}

/** A presigned URL's query (V4) for `path`, valid `expires` seconds from `date`. */
export function presignV4(keys: Keys, o: { method: string; path: string; host: string; expires: number; date?: Date; query?: string }): string {
  const date = amzDate(o.date ?? new Date());
  const scope = `${date.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const q = [o.query, `X-Amz-Algorithm=AWS4-HMAC-SHA256`, `X-Amz-Credential=${enc(`${keys.access}/${scope}`)}`, `X-Amz-Date=${date}`, `X-Amz-Expires=${o.expires}`, `X-Amz-SignedHeaders=host`].filter(Boolean).join('&');
  const canonical = [o.method, o.path, canonicalQuery(q), `host:${o.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256(canonical)}`;
  const signature = createHmac('sha256', signingKey(keys.secret, date.slice(0, 8), 'us-east-1')).update(toSign).digest('hex');
  return `${q}&X-Amz-Signature=${signature}`;
}

/** An aws-chunked body of `data` in chunks of `chunk` bytes, each signed after the seed signature. */
export function chunkedBody(data: Buffer, chunk: number, seed: { signature: string; key: Buffer; date: string; scope: string }, tamper?: number): Buffer {
  const parts: Buffer[] = [];
  let previous = seed.signature;
  const emptyHash = sha256('');
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) pieces.push(data.subarray(i, i + chunk));
  pieces.push(Buffer.alloc(0));
  pieces.forEach((p, i) => {
    const toSign = `AWS4-HMAC-SHA256-PAYLOAD\n${seed.date}\n${seed.scope}\n${previous}\n${emptyHash}\n${sha256(p)}`;
    const sig = createHmac('sha256', seed.key).update(toSign).digest('hex');
    previous = sig;
    const body = tamper === i && p.length ? Buffer.concat([p.subarray(0, p.length - 1), Buffer.from('X')]) : p;
    parts.push(Buffer.from(`${p.length.toString(16)};chunk-signature=${sig}\r\n`), body, Buffer.from('\r\n'));
  });
  return Buffer.concat(parts);
}

/** The V2 signature of a request (header or presigned: `date` is the Date header or the Expires value). */
export function signV2(keys: Keys, method: string, resource: string, date: string, headers: Record<string, string> = {}): string {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const amz = Object.keys(lower).filter((k) => k.startsWith('x-amz-')).sort().map((k) => `${k}:${lower[k]!.trim()}\n`).join('');
  const toSign = `${method}\n${lower['content-md5'] ?? ''}\n${lower['content-type'] ?? ''}\n${date}\n${amz}${resource}`;
  return createHmac('sha1', keys.secret).update(toSign).digest('base64');
}

export interface S3Client {
  /** A V4-signed request (body hashed and signed) to `path` under the server (e.g. `/s3/bucket/key`, or `/bucket/key` at the root). */
  call(method: string, path: string, o?: { query?: string; headers?: Record<string, string>; body?: Buffer | string; unsigned?: boolean; keys?: Keys | null; date?: Date }): Promise<S3Reply>;
  /** An unsigned request (anonymous). */
  raw(method: string, pathAndQuery: string, o?: { headers?: Record<string, string>; body?: Buffer | string }): Promise<S3Reply>;
  host: string;
}

export function s3Client(cloud: Cloud, keys: Keys): S3Client {
  const host = () => new URL(cloud.url).host;
  const send = async (method: string, url: string, headers: Record<string, string>, body?: Buffer | string): Promise<S3Reply> => {
    const r = await fetch(`${cloud.url}${url}`, { method, headers, body: body as BodyInit | undefined, redirect: 'manual' });
    const buf = Buffer.from(await r.arrayBuffer());
    return { status: r.status, headers: r.headers, text: buf.toString('utf8'), body: buf };
  };
  return {
    get host() { return host(); },
    async call(method, path, o = {}) {
      const k = o.keys === undefined ? keys : o.keys;
      const headers = { ...(o.headers ?? {}) };
      if (!k) return send(method, path + (o.query ? `?${o.query}` : ''), headers, o.body);
      const s = signV4(k, { method, path, query: o.query, headers, body: o.body, payloadHash: o.unsigned ? 'UNSIGNED-PAYLOAD' : undefined, host: host(), date: o.date });
      return send(method, path + (o.query ? `?${o.query}` : ''), s.headers, o.body);
    },
    raw: (method, url, o = {}) => send(method, url, o.headers ?? {}, o.body),
  };
}

/** The text of the first `<tag>` of an XML document. */
export const xmlText = (xml: string, tag: string): string | undefined => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
/** Every `<tag>` text of an XML document, in order. */
export const xmlAll = (xml: string, tag: string): string[] => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]!);

/** Asserts an S3 error answer: status and <Code>. */
export function assertS3Error(r: S3Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  if (r.text) {
    assert.match(r.headers.get('content-type') ?? '', /xml/);
    assert.equal(xmlText(r.text, 'Code'), code, r.text);
    assert.ok(xmlText(r.text, 'RequestId'), 'a RequestId');
  }
}
