// Swift's request and response headers: user metadata (X-<Type>-Meta-*,
// removal with X-Remove-<Type>-Meta-*, Swift's limits), header text encoding
// (HTTP headers carry bytes; metadata is kept as UTF-8 text), timestamps,
// expiry headers, ETags and conditional requests.
import type { IncomingHttpHeaders } from 'node:http';
import type { Meta, MetaChange } from '../store.ts';
import { timestampDate } from '../store.ts';
import { swiftError } from './errors.ts';

export const MAX_META_NAME_LENGTH = 128;
export const MAX_META_VALUE_LENGTH = 256;
export const MAX_META_COUNT = 90;
export const MAX_META_OVERALL_SIZE = 4096;
export const MAX_OBJECT_NAME_LENGTH = 1024;
export const MAX_CONTAINER_NAME_LENGTH = 256;
export const MAX_ACCOUNT_NAME_LENGTH = 256;
export const LISTING_LIMIT = 10000;
/** Swift's max_file_size plus the 2 bytes its constraint allows. */
export const MAX_FILE_SIZE = 5 * 1024 * 1024 * 1024 + 2;

/** Swift's largest timestamp (its Timestamp's ten digits of seconds). */
const MAX_TIMESTAMP = 9999999999;

export type MetaTarget = 'account' | 'container' | 'object';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A header value as text: Node reads header bytes as latin1; Swift's are UTF-8. Null when not UTF-8. */
export function headerText(v: string): string | null {
  // pure ASCII needs no decoding
  if (!/[^\x00-\x7f]/.test(v)) return v;
  if (/[^\x00-\xff]/.test(v)) return v;
  try {
    return utf8.decode(Buffer.from(v, 'latin1'));
  } catch {
    return null;
  }
}

/** Text as a header value (its UTF-8 bytes, which Node writes as latin1). */
export function headerValue(s: string): string {
  return /[^\x00-\x7f]/.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

/** X-Object-Meta-Foo-Bar for the key `foo-bar`. */
export function metaHeaderName(target: MetaTarget, key: string): string {
  return `X-${target[0]!.toUpperCase()}${target.slice(1)}-Meta-${key.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())}`;
}

/**
 * The metadata a request sets (`X-<Type>-Meta-Name: value`; on an account or
 * a container an empty value removes, as does `X-Remove-<Type>-Meta-Name`; an
 * object keeps an empty value, as Swift's object server does), checked against
 * Swift's limits (check_metadata) — 400 with Swift's words. An underscore in a
 * header's name is a hyphen, as under Swift's WSGI server (`X-Container-Meta-a_b`
 * sets `a-b`).
 */
export function metaFromHeaders(headers: IncomingHttpHeaders, target: MetaTarget): MetaChange {
  const prefix = `x-${target}-meta-`;
  const removePrefix = `x-remove-${target}-meta-`;
  const change: MetaChange = {};
  let count = 0;
  let size = 0;
  for (const [given, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const name = given.includes('_') ? given.replace(/_/g, '-') : given;
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (name.startsWith(prefix)) {
      const key = name.slice(prefix.length);
      if (!key) throw swiftError(400, 'Metadata name cannot be empty');
      // kept as the header's bytes (latin1 text), as Swift keeps them; accounts and containers must hold UTF-8
      const text = value.trim();
      if (target !== 'object' && (headerText(text) === null || headerText(key) === null)) throw swiftError(400, 'Metadata must be valid UTF-8');
      count++;
      size += key.length + Buffer.byteLength(value.trim(), 'latin1');
      if (key.length > MAX_META_NAME_LENGTH) throw swiftError(400, `Metadata name too long: ${metaHeaderName(target, key)}`);
      if (Buffer.byteLength(value.trim(), 'latin1') > MAX_META_VALUE_LENGTH) throw swiftError(400, `Metadata value longer than ${MAX_META_VALUE_LENGTH}: ${metaHeaderName(target, key)}`);
      if (count > MAX_META_COUNT) throw swiftError(400, `Too many metadata items; max ${MAX_META_COUNT}`);
      if (size > MAX_META_OVERALL_SIZE) throw swiftError(400, `Total metadata too large; max ${MAX_META_OVERALL_SIZE}`);
      change[key] = text === '' && target !== 'object' ? null : text;
    } else if (name.startsWith(removePrefix)) {
      const key = name.slice(removePrefix.length);
      if (key && !(key in change && change[key] !== null)) change[key] = null;
    }
  }
  return change;
}

/** Swift's limits on the metadata an account or container holds after a change (400 over them). */
export function checkMetaTotal(meta: Meta): void {
  const keys = Object.keys(meta);
  if (keys.length > MAX_META_COUNT) throw swiftError(400, `Too many metadata items; max ${MAX_META_COUNT}`);
  let size = 0;
  for (const k of keys) size += k.length + meta[k]!.length;
  if (size > MAX_META_OVERALL_SIZE) throw swiftError(400, `Total metadata too large; max ${MAX_META_OVERALL_SIZE}`);
}

export function applyMeta(current: Meta, change: MetaChange): Meta {
  const out: Meta = { ...current };
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Response headers of metadata (values are kept as the bytes they came as). */
export function metaHeaders(target: MetaTarget, meta: Meta): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) h[metaHeaderName(target, k)] = v;
  return h;
}

/** A header as one string (the first when repeated). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** HTTP-date of a Swift timestamp (Last-Modified rounds up to the next second, as Swift does). */
export function httpDate(ts: string): string {
  return new Date(Math.ceil(Number(ts)) * 1000).toUTCString();
}

/** Listing form of a timestamp: 2024-05-01T12:34:56.123450 (UTC, no zone). */
export function listingDate(ts: string): string {
  const d = timestampDate(ts);
  const micro = Math.round((Number(ts) % 1) * 1e6).toString().padStart(6, '0');
  return `${d.toISOString().slice(0, 19)}.${micro === '1000000' ? '999999' : micro}`;
}

/**
 * X-Delete-At / X-Delete-After to a delete-at second (undefined: neither sent);
 * Swift's 400s for non-integers and times past.
 */
export function deleteAtFrom(headers: IncomingHttpHeaders, now = Date.now() / 1000): number | undefined {
  const after = header(headers, 'x-delete-after');
  const at = header(headers, 'x-delete-at');
  if (after !== undefined) {
    if (!/^\s*-?\d+\s*$/.test(after)) throw swiftError(400, 'Non-integer X-Delete-After');
    const n = Number(after);
    if (n <= 0) throw swiftError(400, 'X-Delete-After in past');
    if (n > MAX_TIMESTAMP) throw swiftError(400, 'Non-integer X-Delete-After');
    return Math.floor(now) + n;
  }
  if (at !== undefined) {
    if (!/^\s*-?\d+(\.\d+)?\s*$/.test(at)) throw swiftError(400, 'Non-integer X-Delete-At');
    const n = Math.floor(Number(at));
    if (n <= now) throw swiftError(400, 'X-Delete-At in past');
    if (n > MAX_TIMESTAMP) throw swiftError(400, 'Non-integer X-Delete-At');
    return n;
  }
  return undefined;
}

/** ETags of an If-Match / If-None-Match header, unquoted; '*' for any. */
export function etagList(v: string | undefined): '*' | string[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.includes('*')) return '*';
  return parts.map((p) => p.replace(/^W\//, '').replace(/^"(.*)"$/, '$1'));
}

function parseHttpDate(v: string | undefined): number | null {
  if (!v) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

/**
 * The conditional answer of a GET/HEAD (swob's conditional_response): 412 for
 * If-Match or If-Unmodified-Since failing, 304 for If-None-Match or
 * If-Modified-Since; null: answer normally. `etag` is the object's.
 */
export function conditionalStatus(headers: IncomingHttpHeaders, etag: string, ts: string): 304 | 412 | null {
  const lastModified = Math.ceil(Number(ts));
  const ifMatch = etagList(header(headers, 'if-match'));
  if (ifMatch !== undefined && ifMatch !== '*' && !ifMatch.includes(etag)) return 412;
  const ifNone = etagList(header(headers, 'if-none-match'));
  if (ifNone !== undefined && (ifNone === '*' || ifNone.includes(etag))) return 304;
  const unmodified = parseHttpDate(header(headers, 'if-unmodified-since'));
  if (unmodified !== null && lastModified > unmodified) return 412;
  const modified = parseHttpDate(header(headers, 'if-modified-since'));
  if (ifNone === undefined && modified !== null && lastModified <= modified) return 304;
  return null;
}

/** The media types Swift answers listings and bulk operations in, in its order of preference. */
export const ACCEPTABLE_FORMATS = ['text/plain', 'application/json', 'application/xml', 'text/xml'] as const;
export type AcceptableFormat = (typeof ACCEPTABLE_FORMATS)[number];

/**
 * The best of ACCEPTABLE_FORMATS for an Accept header, as swob's
 * Accept.best_match picks it: the highest quality of any range matching a
 * format (`type/subtype`, `type/*`, `*\/*`; q=0 excludes), ties to the
 * earlier format; text/plain when no Accept is given; null when it allows none.
 */
export function bestFormat(accept: string | undefined): AcceptableFormat | null {
  if (!accept || !accept.trim()) return 'text/plain';
  let best: { format: AcceptableFormat; q: number; order: number } | null = null;
  for (const part of accept.split(',')) {
    const [typeRaw, ...params] = part.trim().split(';');
    const type = (typeRaw ?? '').trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([\d.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!type || !(q > 0)) continue;
    ACCEPTABLE_FORMATS.forEach((format, order) => {
      const matches = type === '*/*' || type === format || type === `${format.split('/')[0]}/*`;
      if (matches && (!best || q > best.q || (q === best.q && order < best.order))) best = { format, q, order };
    });
  }
  return (best as { format: AcceptableFormat } | null)?.format ?? null;
}

const TRUE = new Set(['true', '1', 'yes', 'on', 't', 'y']);
/** Swift's config_true_value. */
export const truthy = (v: string | undefined): boolean => !!v && TRUE.has(v.trim().toLowerCase());
