// The parts of Swift's large objects that need no store: an SLO manifest as
// a client PUTs it (?multipart-manifest=put) parsed and checked as Swift's
// slo.parse_and_validate_input does (one line per problem, all at once),
// the manifest as stored (Swift's JSON list of {name, bytes, hash,
// content_type, last_modified[, range][, sub_slo]}), the SLO's ETag, the
// X-Object-Manifest header's check, and byte ranges mapped onto segments.
import { createHash } from 'node:crypto';
import { swiftError } from './errors.ts';
import { SLO_LIMITS } from './info.ts';

/** One entry of a manifest as the client sent it. */
export type ClientSegment =
  | { kind: 'path'; path: string; etag: string | null; sizeBytes: number | null; range: [number | null, number | null] | null }
  | { kind: 'data'; data: Buffer };

/** One entry of a manifest as stored (Swift's shape, read back by ?multipart-manifest=get). */
export interface StoredSegment {
  name?: string;
  bytes?: number;
  hash?: string;
  content_type?: string;
  last_modified?: string;
  /** "first-last", inclusive, when the segment is a part of its object. */
  range?: string;
  sub_slo?: boolean;
  /** Inline bytes, base64. */
  data?: string;
}

const badManifest = (msg: string) => swiftError(400, msg);

/** `M-N`, `M-` or `-N` (one range only, as swob.Range of `bytes=<spec>`); null when malformed. */
export function parseRangeSpec(spec: string): Array<[number | null, number | null]> | null {
  const out: Array<[number | null, number | null]> = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(part);
    if (!m || (m[1] === '' && m[2] === '')) return null;
    const a = m[1] === '' ? null : Number(m[1]);
    const b = m[2] === '' ? null : Number(m[2]);
    if (a !== null && b !== null && b < a) return null;
    out.push([a, b]);
  }
  return out.length ? out : null;
}

/** A range (start, end inclusive or suffix) resolved against a length, as [first, lastExclusive]; null if unsatisfiable. */
export function resolveRange(r: [number | null, number | null], length: number): [number, number] | null {
  const [a, b] = r;
  if (a === null) {
    if (!b) return null;
    return length ? [Math.max(0, length - b), length] : null;
  }
  if (a >= length) return null;
  return [a, b === null ? length : Math.min(b + 1, length)];
}

const strictBase64 = (s: string): Buffer | null => {
  const t = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 === 1) return null;
  return Buffer.from(t, 'base64');
};

/**
 * Parses and checks a manifest PUT body; `selfPath` is the manifest's own
 * `container/object` (a manifest may not name itself). Throws Swift's 400
 * with every problem, one per line.
 */
export function parseSloManifest(body: Buffer, selfPath: string): ClientSegment[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw badManifest('Manifest must be valid JSON.\n');
  }
  if (!Array.isArray(parsed)) throw badManifest('Manifest must be a list.\n');
  const errors: string[] = [];
  const out: ClientSegment[] = [];
  parsed.forEach((seg: unknown, i: number) => {
    if (typeof seg !== 'object' || seg === null || Array.isArray(seg)) {
      errors.push(`Index ${i}: not a JSON object`);
      return;
    }
    const d = seg as Record<string, unknown>;
    const type = 'path' in d ? 'path' : 'data' in d ? 'data' : null;
    if (!type) {
      errors.push(`Index ${i}: expected keys to include one of 'data' or 'path'`);
      return;
    }
    const allowed = type === 'path' ? ['path', 'range', 'etag', 'size_bytes'] : ['data'];
    const extra = Object.keys(d).filter((k) => !allowed.includes(k)).sort();
    if (extra.length) {
      errors.push(`Index ${i}: extraneous keys ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
      return;
    }
    if (type === 'data') {
      const data = typeof d.data === 'string' ? strictBase64(d.data) : null;
      if (!data) { errors.push(`Index ${i}: data must be valid base64`); return; }
      if (data.length < 1) { errors.push(`Index ${i}: too small; each segment must be at least 1 byte.`); return; }
      out.push({ kind: 'data', data });
      return;
    }
    if (typeof d.path !== 'string') { errors.push(`Index ${i}: "path" must be a string`); return; }
    if (!(d.etag === undefined || d.etag === null || typeof d.etag === 'string')) {
      errors.push(`Index ${i}: "etag" must be a string or null (if provided)`);
      return;
    }
    if (!d.path.replace(/^\/+|\/+$/g, '').includes('/')) {
      errors.push(`Index ${i}: path does not refer to an object. Path must be of the form /container/object.`);
      return;
    }
    let size: number | null = null;
    if (d.size_bytes !== undefined && d.size_bytes !== null) {
      const v = d.size_bytes;
      const n = typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v) ? Number.parseInt(v, 10) : NaN;
      if (Number.isNaN(n)) { errors.push(`Index ${i}: invalid size_bytes`); return; }
      if (n < 1 && i !== parsed.length - 1) { errors.push(`Index ${i}: too small; each segment must be at least 1 byte.`); return; }
      size = n;
    }
    if (d.path.replace(/^\/+/, '') === selfPath) {
      errors.push(`Index ${i}: manifest must not include itself as a segment`);
      return;
    }
    let range: [number | null, number | null] | null = null;
    if (d.range) {
      const ranges = typeof d.range === 'string' ? parseRangeSpec(d.range) : null;
      if (!ranges) { errors.push(`Index ${i}: invalid range`); return; }
      if (ranges.length > 1) { errors.push(`Index ${i}: multiple ranges (only one allowed)`); return; }
      range = ranges[0]!;
      if (size !== null && !resolveRange(range, size)) { errors.push(`Index ${i}: unsatisfiable range`); return; }
    }
    out.push({ kind: 'path', path: d.path, etag: (d.etag as string | null | undefined) ?? null, sizeBytes: size, range });
  });
  if (out.length && out.every((s) => s.kind === 'data') && !errors.length) {
    errors.push('Inline data segments require at least one object-backed segment.');
  }
  if (errors.length) throw badManifest(errors.map((e) => `${e}\n`).join(''));
  const objects = out.filter((s) => s.kind === 'path').length;
  if (objects > SLO_LIMITS.max_manifest_segments) {
    throw swiftError(413, `Number of object-backed segments must be <= ${SLO_LIMITS.max_manifest_segments}`);
  }
  return out;
}

/** The SLO's ETag: md5 over each segment's etag (with `:range;` for a part) or an inline segment's md5. */
export function sloEtag(segments: StoredSegment[]): string {
  const h = createHash('md5');
  for (const s of segments) {
    if (s.data !== undefined) h.update(createHash('md5').update(Buffer.from(s.data, 'base64')).digest('hex'));
    else if (s.range) h.update(`${s.hash}:${s.range};`);
    else h.update(s.hash ?? '');
  }
  return h.digest('hex');
}

/** Reads a stored manifest back; null when the bytes are not one (a damaged manifest). */
export function readStoredManifest(body: Buffer): StoredSegment[] | null {
  try {
    const v = JSON.parse(body.toString('utf8'));
    return Array.isArray(v) ? v as StoredSegment[] : null;
  } catch {
    return null;
  }
}

/**
 * The manifest as `?multipart-manifest=get&format=raw` returns it: what a
 * client PUTs to make the same SLO again ({path, etag, size_bytes[, range]}
 * or {data}).
 */
export function rawManifest(segments: StoredSegment[]): unknown[] {
  return segments.map((s) => (s.data !== undefined
    ? { data: s.data }
    : { path: s.name, etag: s.hash, size_bytes: s.bytes, ...(s.range ? { range: s.range } : {}) }));
}

/** Checks an X-Object-Manifest value: `container/prefix`, no query characters, the prefix not starting with '/'. */
export function checkDloManifestHeader(value: string): void {
  const slash = value.indexOf('/');
  const container = slash < 0 ? '' : value.slice(0, slash);
  const prefix = slash < 0 ? '' : value.slice(slash + 1);
  if (!container || !prefix || value.includes('?') || value.includes('&') || prefix.startsWith('/')) {
    throw swiftError(400, 'X-Object-Manifest must be in the format container/prefix');
  }
}

/** The DLO's ETag: md5 over its segments' etags, quoted. */
export function dloEtag(etags: string[]): string {
  const h = createHash('md5');
  for (const e of etags) h.update(e.replace(/^"|"$/g, ''));
  return h.digest('hex');
}

/** One read of a segment for a byte range of the whole: which segment, and the part of it. */
export interface SegmentRead<T> {
  segment: T;
  /** Offset in the segment's own bytes (after its range) and length. */
  offset: number;
  length: number;
}

/** Maps [first, lastExclusive) of the concatenation onto the segments (each with its length). */
export function planReads<T>(segments: Array<{ segment: T; length: number }>, first: number, end: number): Array<SegmentRead<T>> {
  const out: Array<SegmentRead<T>> = [];
  let pos = 0;
  for (const { segment, length } of segments) {
    const s = pos;
    const e = pos + length;
    pos = e;
    if (e <= first || s >= end || length === 0) continue;
    const from = Math.max(first, s) - s;
    const to = Math.min(end, e) - s;
    out.push({ segment, offset: from, length: to - from });
  }
  return out;
}
