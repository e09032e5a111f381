// TempURL, as Swift's tempurl middleware: a URL signed with a key kept in
// the account's or the container's metadata (Temp-URL-Key, Temp-URL-Key-2)
// grants one method on one object (or on every object under a prefix) until
// it expires, without a token. The signature is an HMAC (sha1, sha256 or
// sha512; hex, or `<algo>:<base64>`) over "method\nexpires\npath", optionally
// preceded by "ip=<range>\n"; a prefix URL signs "prefix:" + the prefix path.
// Swift signs the path from `/v1`; clients that sign the URL path they call
// (Tempest, python-swiftclient given the full URL) sign it with Stratus's
// `/object` prefix: both are accepted. What does not verify is Swift's 401
// with its plain-text body.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP, BlockList } from 'node:net';
import { ApiError } from '../../common/errors.ts';
import { accountLevel, isSwiftOwner } from './access.ts';
import { loadContainer } from './container.ts';
import { swiftError } from './errors.ts';
import { headerValue } from './headers.ts';
import { tempUrlGrant, tempUrlGrants, type SwiftMiddleware, type SwiftRequest } from './request.ts';
import { discard } from './subrequest.ts';
import type { TempUrlScope } from './request.ts';

/** Swift's defaults (tempurl filter_factory): the methods a signature may grant, the digests it may use. */
export const TEMPURL_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;
export const ALLOWED_DIGESTS = ['sha1', 'sha256', 'sha512'] as const;
export const DEPRECATED_DIGESTS = ['sha1'] as const;
export type Digest = (typeof ALLOWED_DIGESTS)[number];

/** Request headers a signed write may not carry, and the headers dropped on the way in and out (Swift's defaults). */
export const DISALLOWED_INCOMING_HEADERS = ['x-object-manifest', 'x-symlink-target'] as const;
export const INCOMING_REMOVE_HEADERS = ['x-timestamp', 'x-open-expired'] as const;
export const OUTGOING_REMOVE_HEADERS = ['x-object-meta-*'] as const;
export const OUTGOING_ALLOW_HEADERS = ['x-object-meta-public-*'] as const;

/** What /info says of TempURL (Swift's register_swift_info('tempurl', ...)). */
export function tempurlInfo(): Record<string, unknown> {
  return {
    methods: [...TEMPURL_METHODS],
    incoming_remove_headers: [...INCOMING_REMOVE_HEADERS],
    incoming_allow_headers: [],
    outgoing_remove_headers: [...OUTGOING_REMOVE_HEADERS],
    outgoing_allow_headers: [...OUTGOING_ALLOW_HEADERS],
    allowed_digests: [...ALLOWED_DIGESTS],
    deprecated_digests: [...DEPRECATED_DIGESTS],
  };
}

export const TEMPURL_INVALID = '401 Unauthorized: Temp URL invalid\n';

/** The 401 of a URL that does not verify (no body on HEAD, as Swift). */
export const tempUrlInvalid = (): ApiError => swiftError(401, TEMPURL_INVALID);

export interface TempUrlQuery {
  sig: string | undefined;
  expires: string | undefined;
  prefix: string | undefined;
  filename: string | undefined;
  inline: boolean;
  ipRange: string | undefined;
}

type QueryLike = Record<string, string | string[] | undefined>;
const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The TempURL parameters of a query; null when the request carries neither a signature nor an expiry. */
export function tempUrlQuery(query: QueryLike): TempUrlQuery | null {
  const sig = first(query.temp_url_sig);
  const expires = first(query.temp_url_expires);
  if (sig === undefined && expires === undefined) return null;
  return {
    sig, expires,
    prefix: first(query.temp_url_prefix),
    filename: first(query.filename),
    inline: query.inline !== undefined,
    ipRange: first(query.temp_url_ip_range),
  };
}

/**
 * Seconds since the epoch of `temp_url_expires` (an integer, or ISO 8601
 * `YYYY-MM-DDTHH:MM:SSZ`); 0 when it is neither or already past.
 */
export function normalizeExpires(value: string, nowSeconds = Date.now() / 1000): number {
  let t: number;
  if (/^\s*[+-]?\d+\s*$/.test(value)) t = Number.parseInt(value, 10);
  else {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(value);
    if (!m) return 0;
    const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    t = Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
    const back = new Date(t * 1000);
    // strptime refuses 2026-02-30 and hour 24; Date.UTC would roll them over.
    if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi) return 0;
  }
  return !Number.isFinite(t) || t < nowSeconds ? 0 : t;
}

/**
 * A client's signature as (algorithm, hex digest): hex of 40/64/128
 * characters is sha1/sha256/sha512; `<algo>:<base64>` (standard or URL-safe)
 * names its algorithm. Throws on anything else.
 */
export function extractDigest(value: string): { algo: string; hex: string } {
  const colon = value.indexOf(':');
  if (colon >= 0) {
    const algo = value.slice(0, colon);
    let b64 = value.slice(colon + 1);
    if (/[-_]/.test(b64) && !/[+/]/.test(b64)) b64 = b64.replace(/-/g, '+').replace(/_/g, '/');
    b64 = b64.replace(/=+$/, '');
    if (!/^[A-Za-z0-9+/]*$/.test(b64) || b64.length % 4 === 1) throw new Error('bad base64');
    return { algo, hex: Buffer.from(b64, 'base64').toString('hex') };
  }
  if (!/^[0-9a-fA-F]*$/.test(value) || value.length % 2) throw new Error('bad hex');
  const algo = ({ 40: 'sha1', 64: 'sha256', 128: 'sha512' } as Record<number, string>)[value.length];
  if (!algo) throw new Error('bad digest length');
  return { algo, hex: value.toLowerCase() };
}

/** Swift's get_hmac: hex HMAC of "[ip=<range>\n]method\nexpires\npath". */
export function tempUrlHmac(method: string, expires: number | string, path: string, key: string, algo: string, ipRange?: string): string {
  const parts = [method, String(expires), path];
  if (ipRange) parts.unshift(`ip=${ipRange}`);
  return createHmac(algo, Buffer.from(key, 'utf8')).update(parts.join('\n'), 'utf8').digest('hex');
}

/** Constant-time comparison of two hex strings. */
export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether `ip` is inside `range` (an address or CIDR, v4 or v6); throws on a malformed range. */
export function ipInRange(ip: string, range: string): boolean {
  const [addr, bits, more] = range.split('/');
  if (more !== undefined || !addr) throw new Error('bad range');
  const family = isIP(addr);
  if (!family) throw new Error('bad range');
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d+$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) throw new Error('bad range');
  // Python's ip_network is strict: host bits set in the range is a ValueError.
  const list = new BlockList();
  list.addSubnet(addr, prefix, type);
  const network = networkAddress(addr, prefix, family);
  if (network !== null && network !== canonical(addr, family)) throw new Error('bad range');
  let client = ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(client);
  if (mapped && family === 4) client = mapped[1]!;
  const cf = isIP(client);
  if (cf !== family) return false;
  return list.check(client, type);
}

function canonical(addr: string, family: number): string {
  return bytesOf(addr, family).join('.');
}

function networkAddress(addr: string, prefix: number, family: number): string | null {
  const b = bytesOf(addr, family);
  const out = b.map((byte, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return byte & (keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff);
  });
  return out.join('.');
}

function bytesOf(addr: string, family: number): number[] {
  if (family === 4) return addr.split('.').map(Number);
  let [head, tail] = addr.includes('::') ? addr.split('::') as [string, string] : [addr, undefined];
  let v4: number[] = [];
  const groupsOf = (s: string | undefined) => (s ? s.split(':') : []);
  let h = groupsOf(head);
  let t = groupsOf(tail);
  const last = (tail === undefined ? h : t);
  if (last.length && last[last.length - 1]!.includes('.')) {
    v4 = last.pop()!.split('.').map(Number);
  }
  const fill = 8 - h.length - t.length - v4.length / 2;
  const groups = tail === undefined ? h : [...h, ...Array(fill).fill('0'), ...t];
  const bytes: number[] = [];
  for (const g of groups) { const n = Number.parseInt(g, 16); bytes.push(n >> 8, n & 0xff); }
  return [...bytes, ...v4];
}

export type { TempUrlScope };

export interface TempUrlCheck {
  method: string;
  /** Account (AUTH_...), container and object of the request; object '' for a container root. */
  account: string;
  container: string;
  object: string;
  query: TempUrlQuery;
  /** The client's address, for temp_url_ip_range. */
  clientIp: string | undefined;
  accountKeys: string[];
  containerKeys: string[];
  /** The path prefixes before `/v1` a client may have signed with ('' and '/object'). */
  signedPrefixes: string[];
  now?: number;
}

export interface TempUrlGrant {
  scope: TempUrlScope;
  expires: number;
  algo: string;
}

/**
 * Verifies a TempURL; throws Swift's 401 when anything is off (no key, bad
 * or expired signature, a method Swift does not grant, a prefix the object
 * is not under, a client outside the signed IP range).
 */
export function verifyTempUrl(c: TempUrlCheck): TempUrlGrant {
  const q = c.query;
  const expires = q.expires === undefined ? 0 : normalizeExpires(q.expires, c.now);
  if (!q.sig || !expires) throw tempUrlInvalid();
  let digest: { algo: string; hex: string };
  try {
    digest = extractDigest(q.sig);
  } catch {
    throw tempUrlInvalid();
  }
  if (!(ALLOWED_DIGESTS as readonly string[]).includes(digest.algo)) throw tempUrlInvalid();
  if (!(TEMPURL_METHODS as readonly string[]).includes(c.method)) throw tempUrlInvalid();
  const containerRoot = c.object === '';
  if (containerRoot && !((c.method === 'GET' || c.method === 'HEAD') && q.prefix === '')) throw tempUrlInvalid();
  if (!containerRoot && !c.object.replace(/\//g, '')) throw tempUrlInvalid();
  if (q.ipRange) {
    if (!c.clientIp) throw tempUrlInvalid();
    try {
      if (!ipInRange(c.clientIp, q.ipRange)) throw tempUrlInvalid();
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw tempUrlInvalid();
    }
  }
  const keys: Array<[string, TempUrlScope]> = [
    ...c.accountKeys.map((k): [string, TempUrlScope] => [k, 'account']),
    ...c.containerKeys.map((k): [string, TempUrlScope] => [k, 'container']),
  ];
  if (!keys.length) throw tempUrlInvalid();
  if (q.prefix !== undefined && !c.object.startsWith(q.prefix)) throw tempUrlInvalid();
  const tail = q.prefix === undefined ? `${c.account}/${c.container}/${c.object}` : `${c.account}/${c.container}/${q.prefix}`;
  const paths = c.signedPrefixes.map((p) => `${q.prefix === undefined ? '' : 'prefix:'}${p}/v1/${tail}`);
  // A HEAD may use a signature for HEAD, GET, POST or PUT (Swift).
  const methods = c.method === 'HEAD' ? ['HEAD', 'GET', 'POST', 'PUT'] : [c.method];
  for (const method of methods) {
    for (const path of paths) {
      for (const [key, scope] of keys) {
        const mac = tempUrlHmac(method, expires, path, key, digest.algo, q.ipRange);
        if (sameHex(mac, digest.hex)) return { scope, expires, algo: digest.algo };
      }
    }
  }
  throw tempUrlInvalid();
}

/** A signed write's request headers Swift refuses (400), or null. */
export function disallowedHeader(method: string, headers: Record<string, unknown>): ApiError | null {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return null;
  for (const h of DISALLOWED_INCOMING_HEADERS) {
    if (headers[h] !== undefined) {
      const title = h.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('-');
      return swiftError(400, `The header '${title}' is not allowed in this tempurl`);
    }
  }
  return null;
}

/** Whether a response header is dropped from a TempURL's answer (x-object-meta-* except x-object-meta-public-*). */
export function dropOutgoingHeader(name: string): boolean {
  const h = name.toLowerCase();
  return h.startsWith('x-object-meta-') && !h.startsWith('x-object-meta-public-');
}

function quote(s: string, safe: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.\-~]/.test(ch) || (byte < 0x80 && safe.includes(ch))) out += ch;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const dispositionFormat = (type: string, filename: string) =>
  `${type}; filename="${quote(filename, ' /')}"; filename*=UTF-8''${quote(filename, '/')}`;

/**
 * The Content-Disposition of a TempURL GET/HEAD answer: `inline` (with the
 * filename if given), an attachment named by `filename`, the object's own
 * disposition, or an attachment named after the object's last path part.
 */
export function tempUrlDisposition(q: TempUrlQuery, objectName: string, existing: string | undefined, staticweb = false): string {
  let v: string;
  if (q.inline || staticweb) v = q.filename ? dispositionFormat('inline', q.filename) : 'inline';
  else if (q.filename) v = dispositionFormat('attachment', q.filename);
  else if (existing) v = existing;
  else {
    const trimmed = objectName.replace(/\/+$/, '');
    v = dispositionFormat('attachment', trimmed.slice(trimmed.lastIndexOf('/') + 1));
  }
  return v.replace(/\n/g, '%0A');
}

/** The account's or container's TempURL keys from its metadata (keys lower-cased, without the X-*-Meta- prefix). */
export function tempUrlKeys(meta: Record<string, string> | undefined): string[] {
  if (!meta) return [];
  return Object.entries(meta)
    .filter(([k]) => k.toLowerCase() === 'temp-url-key' || k.toLowerCase() === 'temp-url-key-2')
    .map(([, v]) => v);
}

// ---- the middleware

export { tempUrlGrant };

/** Answers a static-web listing made for a TempURL (inline, never refused for being a container). */
export const staticwebAnswers = new WeakSet<SwiftRequest>();

const KEY_HEADERS = ['x-account-meta-temp-url-key', 'x-account-meta-temp-url-key-2', 'x-container-meta-temp-url-key', 'x-container-meta-temp-url-key-2'];

/** The service prefix a client may have signed the path with. */
export const SIGNED_PREFIXES = ['', '/object'];

export function tempurlMiddleware(): SwiftMiddleware {
  return async (sr, next) => {
    if (sr.method === 'OPTIONS') return next();
    const q = tempUrlQuery(sr.query);
    if (!q) {
      if (sr.object !== undefined || (sr.method !== 'GET' && sr.method !== 'HEAD')) return next();
      // The keys are the owner's secret (Swift's swift_owner_headers): a reader of the account or container does not see them.
      const body = await next();
      if (!isSwiftOwner(await accountLevel(sr))) for (const h of KEY_HEADERS) sr.reply.removeHeader(h);
      return body;
    }
    if (sr.container === undefined) throw tempUrlInvalid();
    const account = await sr.ctx.store.getAccount(sr.project);
    const container = await loadContainer(sr);
    const grant = verifyTempUrl({
      method: sr.method, account: sr.account, container: sr.container, object: sr.object ?? '', query: q,
      clientIp: sr.req.ip, accountKeys: tempUrlKeys(account.metadata), containerKeys: tempUrlKeys(container?.metadata),
      signedPrefixes: SIGNED_PREFIXES,
    });
    const refused = disallowedHeader(sr.method, sr.headers as Record<string, unknown>);
    if (refused) throw refused;
    for (const h of INCOMING_REMOVE_HEADERS) delete sr.headers[h];
    // The signature grants its account or its container and nothing else: a copy may not read from elsewhere.
    const copyFrom = sr.method === 'PUT' ? sr.headers['x-copy-from'] : undefined;
    if (copyFrom !== undefined || (sr.method === 'PUT' && sr.headers['x-copy-from-account'] !== undefined)) {
      const from = String(copyFrom ?? '').replace(/^\/+/, '');
      const slash = from.indexOf('/');
      let fromContainer = slash < 0 ? from : from.slice(0, slash);
      try { fromContainer = decodeURIComponent(fromContainer); } catch { /* the core refuses it */ }
      if (sr.headers['x-copy-from-account'] !== undefined || (grant.scope === 'container' && fromContainer !== sr.container)) throw tempUrlInvalid();
    }
    sr.authorized = true;
    tempUrlGrants.set(sr, { scope: grant.scope, container: sr.container });
    // Only the TempURL's own parameters go on (Swift rewrites the query string so).
    const query: Record<string, string> = { temp_url_sig: q.sig!, temp_url_expires: q.expires! };
    if (q.prefix !== undefined) query.temp_url_prefix = q.prefix;
    if (q.filename) query.filename = q.filename;
    if (q.inline) query.inline = '';
    sr.query = query;
    const body = await next();
    const reply = sr.reply;
    for (const name of Object.keys(reply.getHeaders())) if (dropOutgoingHeader(name)) reply.removeHeader(name);
    if ((sr.method === 'GET' || sr.method === 'HEAD') && reply.statusCode >= 200 && reply.statusCode < 300) {
      const staticweb = staticwebAnswers.has(sr);
      if (!staticweb && (sr.object ?? '') === '') {
        discard(body);
        throw tempUrlInvalid();
      }
      const existing = reply.getHeader('content-disposition');
      reply.header('Content-Disposition', headerValue(tempUrlDisposition(q, sr.object ?? '', existing === undefined ? undefined : String(existing), staticweb)));
      reply.header('Expires', new Date(grant.expires * 1000).toUTCString());
    }
    return body;
  };
}
