// FormPost, as Swift's formpost middleware: a browser form (multipart/
// form-data) POSTed to a container or object-prefix path uploads its files
// as objects `<path>/<filename>` (or `<path><filename>` under an object
// prefix) without a token. The form carries `expires`, `max_file_size`,
// `max_file_count`, `redirect` and `signature`: an HMAC, with a TempURL key
// of the account or container, over "path\nredirect\nmax_file_size\n
// max_file_count\nexpires". As for TempURL, the path may be signed from `/v1`
// or with Stratus's `/object` prefix.
//
// The form is read as it arrives (`readMultipart`): attributes (at most
// 4 KiB each, as Swift) are kept, each file part is handed to the store as a
// stream, capped at max_file_size, before the next part is read.
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { ApiError } from '../../common/errors.ts';
import { loadContainer } from './container.ts';
import { swiftError } from './errors.ts';
import { decodePath, type SwiftMiddleware, type SwiftRequest } from './request.ts';
import { bodyText, isSuccess, type Subrequests } from './subrequest.ts';
import { ALLOWED_DIGESTS, DEPRECATED_DIGESTS, extractDigest, sameHex, SIGNED_PREFIXES, tempUrlKeys } from './tempurl.ts';

export const MAX_VALUE_LENGTH = 4096;

export function formpostInfo(): Record<string, unknown> {
  return { allowed_digests: [...ALLOWED_DIGESTS], deprecated_digests: [...DEPRECATED_DIGESTS] };
}

/** A form Swift refuses as malformed: 400 `FormPost: <message>`. */
export class FormInvalid extends Error {}
/** A form whose signature or expiry does not hold: 401 `FormPost: <Message Title-Cased>`. */
export class FormUnauthorized extends Error {}
/** The starting boundary is missing: 400 `FormPost: invalid starting boundary`. */
export class MimeInvalid extends Error {}

/** Python's str.title(): each run of letters starts upper-case, the rest lower. */
export function titleCase(s: string): string {
  return s.replace(/[A-Za-z]+/g, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase());
}

/** Swift's parse_content_disposition: `form-data; name="x"; filename="y"` -> ['form-data', {name, filename}]. */
export function parseContentDisposition(header: string): [string, Record<string, string>] {
  const attributes: Record<string, string> = {};
  let value = header;
  let attrs = '';
  const semi = header.indexOf(';');
  if (semi >= 0) {
    value = header.slice(0, semi).trim();
    attrs = header.slice(semi + 1).trim();
  }
  const re = /^(\w+)=(".*?"|[^";]+)(; ?|$)/;
  for (let m = re.exec(attrs); m && m[0].length; m = re.exec(attrs)) {
    attrs = attrs.slice(m[0].length);
    attributes[m[1]!] = m[2]!.replace(/^"+|"+$/g, '');
  }
  return [value, attributes];
}

/** The boundary of a `multipart/form-data` Content-Type, or null when the request is not a form upload. */
export function formBoundary(contentType: string | undefined): string | null {
  if (!contentType) return null;
  const [type, attrs] = parseContentDisposition(contentType);
  return type === 'multipart/form-data' && attrs.boundary !== undefined ? attrs.boundary : null;
}

export interface MimePart {
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** The part's bytes; read to the end or leave it: the next part skips what is left. */
  body: AsyncGenerator<Buffer>;
}

/**
 * Streams the parts of a multipart body (Swift's iter_multipart_mime_documents:
 * blank lines before the first boundary are skipped; anything else there is
 * MimeInvalid; a body that ends without the closing boundary ends the last part).
 */
export async function* readMultipart(src: AsyncIterable<Buffer | Uint8Array | string>, boundary: string): AsyncGenerator<MimePart> {
  const it = src[Symbol.asyncIterator]();
  let buf = Buffer.alloc(0);
  let eof = false;
  const more = async (): Promise<boolean> => {
    if (eof) return false;
    const r = await it.next();
    if (r.done) { eof = true; return false; }
    const c = r.value;
    buf = Buffer.concat([buf, typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength)]);
    return true;
  };
  const readLine = async (max: number): Promise<Buffer> => {
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl >= 0 && nl < max) { const line = buf.subarray(0, nl + 1); buf = buf.subarray(nl + 1); return line; }
      if (buf.length >= max || !(await more())) { const line = buf.subarray(0, Math.min(max, buf.length)); buf = buf.subarray(line.length); return line; }
    }
  };
  const start = Buffer.from(`--${boundary}`);
  let line = await readLine(start.length + 2);
  while (line.equals(Buffer.from('\r\n'))) line = await readLine(start.length + 2);
  if (!line.toString('latin1').trim() || Buffer.from(line.toString('latin1').trim(), 'latin1').compare(start) !== 0) {
    throw new MimeInvalid('invalid starting boundary');
  }
  // The rest of the boundary line (a CRLF) belongs to the first part's headers otherwise.
  if (!line.subarray(line.length - 1).equals(Buffer.from('\n'))) await readLine(2);
  const delim = Buffer.from(`\r\n--${boundary}`);
  let done = false;
  while (!done) {
    // Headers: lines up to a blank one.
    const headers: Record<string, string> = {};
    let last: string | null = null;
    for (;;) {
      const l = (await readLine(8192)).toString('utf8');
      if (!l) { done = true; break; }
      const t = l.replace(/\r?\n$/, '');
      if (t === '') break;
      if (/^[ \t]/.test(t) && last) { headers[last] += ` ${t.trim()}`; continue; }
      const colon = t.indexOf(':');
      if (colon <= 0) continue;
      last = t.slice(0, colon).trim().toLowerCase();
      headers[last] = t.slice(colon + 1).trim();
    }
    let partDone = false;
    const body = async function* (): AsyncGenerator<Buffer> {
      for (;;) {
        const at = buf.indexOf(delim);
        if (at >= 0) {
          if (at > 0) yield buf.subarray(0, at);
          buf = buf.subarray(at + delim.length);
          while (buf.length < 2 && (await more()));
          if (buf.subarray(0, 2).toString('latin1') === '--') done = true;
          // Skip the rest of the boundary line.
          await readLine(1 << 16);
          partDone = true;
          return;
        }
        // Keep what may be the start of a delimiter.
        const keep = Math.min(buf.length, delim.length - 1);
        if (buf.length > keep) {
          const out = buf.subarray(0, buf.length - keep);
          buf = buf.subarray(buf.length - keep);
          yield out;
        }
        if (!(await more())) {
          if (buf.length) yield buf;
          buf = Buffer.alloc(0);
          done = true;
          partDone = true;
          return;
        }
      }
    };
    const gen = body();
    yield { headers, body: gen };
    if (!partDone) for await (const _ of gen) { /* skip the rest of the part */ }
    if (eof && !buf.length) done = true;
  }
}

/** Reads a form attribute's value as Swift does: at most 4 KiB kept, the rest skipped, trailing CR/LF/'-' stripped. */
export async function readAttribute(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    if (n < MAX_VALUE_LENGTH) {
      const take = c.subarray(0, MAX_VALUE_LENGTH - n);
      chunks.push(take);
      n += take.length;
    }
  }
  return Buffer.concat(chunks).toString('utf8').replace(/[\r\n-]+$/, '');
}

export interface FormSignatureCheck {
  /** The paths the form may have been signed for (from /v1, and with the service prefix). */
  paths: string[];
  attributes: Record<string, string>;
  keys: string[];
  now?: number;
}

/**
 * Checks a form's expiry and signature before a file of it is stored
 * (Swift's order: keys, max_file_size, expires, signature).
 */
export function verifyForm(c: FormSignatureCheck): { maxFileSize: number } {
  const a = c.attributes;
  if (!c.keys.length) throw new FormUnauthorized('invalid signature');
  const maxFileSize = intAttr(a.max_file_size, 'max_file_size not an integer');
  const expires = intAttr(a.expires, 'expired not an integer');
  if (expires < (c.now ?? Date.now() / 1000)) throw new FormUnauthorized('form expired');
  let digest: { algo: string; hex: string };
  try {
    digest = extractDigest(a.signature ?? '');
  } catch {
    throw new FormUnauthorized('invalid signature');
  }
  if (!(ALLOWED_DIGESTS as readonly string[]).includes(digest.algo)) throw new FormUnauthorized('invalid signature');
  for (const path of c.paths) {
    const body = `${path}\n${a.redirect || ''}\n${a.max_file_size || '0'}\n${a.max_file_count || '0'}\n${a.expires || '0'}`;
    for (const key of c.keys) {
      if (sameHex(createHmac(digest.algo, Buffer.from(key, 'utf8')).update(body, 'utf8').digest('hex'), digest.hex)) return { maxFileSize };
    }
  }
  throw new FormUnauthorized('invalid signature');
}

/** Python's int() of an optional attribute ('' or missing is 0); FormInvalid otherwise. */
export function intAttr(v: string | undefined, message: string): number {
  if (!v) return 0;
  if (!/^\s*[+-]?\d+\s*$/.test(v)) throw new FormInvalid(message);
  return Number.parseInt(v, 10);
}

/** Caps a stream at `max` bytes: more is Swift's `FormPost: max_file_size exceeded` (400). */
export async function* capped(src: AsyncIterable<Buffer>, max: number): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of src) {
    n += c.length;
    if (n > max) throw new FormInvalid('max_file_size exceeded');
    yield c;
  }
}

/** The answer to a form: its status line's text body, or a 303 to the form's redirect with status and message. */
export function formResponse(status: number, reason: string, message: string, redirect: string | undefined, errorBody?: Buffer):
  { status: number; headers: Record<string, string>; body: Buffer } {
  if (!redirect) {
    let text = `${status} ${reason}`;
    if (message) text += `\r\nFormPost: ${titleCase(message)}`;
    const body = !(status >= 200 && status < 300) && errorBody?.length ? errorBody : Buffer.from(text);
    return { status, headers: { 'content-type': 'text/plain' }, body };
  }
  const location = `${redirect}${redirect.includes('?') ? '&' : '?'}status=${encodeURIComponent(String(status))}&message=${pyQuote(message)}`;
  const body = Buffer.from(`<html><body><p><a href="${location}">Click to continue...</a></p></body></html>`);
  return { status: 303, headers: { location, 'content-type': 'text/html; charset=UTF-8' }, body };
}

/** urllib's quote (safe '/'). */
function pyQuote(s: string): string {
  return encodeURIComponent(s).replace(/%2F/g, '/').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export const formError = (e: unknown): ApiError | null => {
  if (e instanceof MimeInvalid) return swiftError(400, 'FormPost: invalid starting boundary');
  if (e instanceof FormInvalid) return swiftError(400, `FormPost: ${e.message}`);
  if (e instanceof FormUnauthorized) return swiftError(401, `FormPost: ${titleCase(e.message)}`);
  return null;
};

// ---- the middleware

const REASONS: Record<number, string> = { 201: 'Created', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Request Entity Too Large', 422: 'Unprocessable Entity', 499: 'Client Disconnect', 500: 'Internal Server Error', 503: 'Service Unavailable' };

export function formpostMiddleware(sub: Subrequests): SwiftMiddleware {
  const self: SwiftMiddleware = async (sr, next) => {
    if (sr.method !== 'POST') return next();
    const boundary = formBoundary(sr.contentType);
    if (boundary === null) return next();
    try {
      return await translateForm(sr, boundary, sub, self);
    } catch (e) {
      throw formError(e) ?? e;
    }
  };
  return self;
}

async function formKeys(sr: SwiftRequest): Promise<string[]> {
  if (sr.container === undefined) return [];
  const account = await sr.ctx.store.getAccount(sr.project);
  const container = await loadContainer(sr);
  return [...tempUrlKeys(account.metadata), ...tempUrlKeys(container?.metadata)];
}

async function translateForm(sr: SwiftRequest, boundary: string, sub: Subrequests, self: SwiftMiddleware): Promise<unknown> {
  const keys = await formKeys(sr);
  // The path as the client named it (decoded), for the signature: Swift's PATH_INFO.
  const url = sr.req.url;
  const q = url.indexOf('?');
  const rawPath = decodePath(q < 0 ? url : url.slice(0, q));
  const servicePath = rawPath.replace(/^\/object(?=\/)/, '');
  const paths = [...new Set([servicePath, rawPath, ...SIGNED_PREFIXES.map((p) => `${p}${servicePath}`)])];
  const attributes: Record<string, string> = {};
  let status = 0;
  let message = '';
  let fileCount = 0;
  let subHeaders: Record<string, string> = {};
  let subBody: Buffer | undefined;
  const body = (sr.req.body as Readable | undefined) ?? (async function* () {})();
  for await (const part of readMultipart(body, boundary)) {
    const [disp, attrs] = parseContentDisposition(part.headers['content-disposition'] ?? '');
    if (disp === 'form-data' && attrs.filename) {
      fileCount++;
      if (fileCount > intAttr(attributes.max_file_count, 'max_file_count not an integer')) {
        status = 400;
        message = 'max file count exceeded';
        break;
      }
      const fileAttrs: Record<string, string> = { ...attributes, filename: attrs.filename || 'filename' };
      if (!('content-type' in attributes) && part.headers['content-type'] !== undefined) fileAttrs['content-type'] = part.headers['content-type'] || 'application/octet-stream';
      if (!('content-encoding' in attributes) && part.headers['content-encoding'] !== undefined) fileAttrs['content-encoding'] = part.headers['content-encoding'];
      const answer = await uploadFile(sr, fileAttrs, part.body, keys, paths, sub, self);
      status = answer.status;
      subHeaders = answer.headers;
      subBody = await bodyText(answer.body);
      if (!isSuccess(status)) break;
    } else {
      const value = await readAttribute(part.body);
      if (attrs.name !== undefined) attributes[attrs.name.toLowerCase()] = value;
    }
  }
  if (!status) {
    status = 400;
    message = 'no files to process';
  }
  const out = formResponse(status, REASONS[status] ?? 'Unknown', message, attributes.redirect || undefined, subBody);
  const reply = sr.reply.code(out.status);
  for (const [k, v] of Object.entries(subHeaders)) if (k.startsWith('access-control')) reply.header(k, v);
  reply.headers(out.headers);
  return out.body;
}

async function uploadFile(sr: SwiftRequest, a: Record<string, string>, data: AsyncIterable<Buffer>, keys: string[], paths: string[], sub: Subrequests, self: SwiftMiddleware) {
  if (!keys.length) throw new FormUnauthorized('invalid signature');
  // Swift's order: max_file_size, delete headers, expiry, signature.
  const maxFileSize = intAttr(a.max_file_size, 'max_file_size not an integer');
  const headers: IncomingHttpHeaders = { 'transfer-encoding': 'chunked' };
  if ('x_delete_at' in a) headers['x-delete-at'] = String(intAttr(a.x_delete_at, 'x_delete_at not an integer: Unix timestamp required.'));
  if ('x_delete_after' in a) headers['x-delete-after'] = String(intAttr(a.x_delete_after, 'x_delete_after not an integer: Number of seconds required.'));
  if ('content-encoding' in a) headers['content-encoding'] = a['content-encoding'];
  verifyForm({ paths, attributes: a, keys });
  let capExceeded = false;
  const body = (async function* () {
    try {
      yield* capped(data, maxFileSize);
    } catch (e) {
      if (e instanceof FormInvalid) capExceeded = true;
      throw e;
    }
  })();
  const object = `${sr.object ?? ''}${a.filename}`;
  const answer = await sub.run(self, { ...sr, authorized: true, level: undefined }, {
    method: 'PUT', container: sr.container, object, headers, body: Readable.from(body, { objectMode: false }),
    contentType: 'content-type' in a ? a['content-type'] || 'application/octet-stream' : undefined,
  }).catch((e: unknown) => {
    if (capExceeded) throw new FormInvalid('max_file_size exceeded');
    throw e;
  });
  if (capExceeded) throw new FormInvalid('max_file_size exceeded');
  return answer;
}
