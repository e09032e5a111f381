// Byte ranges of a Range header (RFC 9110 section 14.1.2), read as Swift's
// swob reads them, the one parser of every API that serves ranges: Swift
// (several ranges, multipart/byteranges), S3 and the registry (one range; a
// header asking for several is answered whole), Glance's image data.

export type Ranges = Array<{ start: number; end: number }>;

/** The most ranges one Range header may ask for (swob's MAX_RANGES). */
const MAX_RANGES = 50;

/**
 * A Range header against a size (swob's Range): null when absent or not
 * valid (the whole object is sent); [] when valid but unsatisfiable (416);
 * else the ranges, end exclusive.
 */
export function parseRanges(v: string | undefined, size: number): Ranges | null {
  if (!v) return null;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(v);
  if (!m) return null;
  const specs = m[1]!.split(',').map((s) => s.trim());
  // as swob: a header asking for more ranges than this is ignored (each part re-reads the blob)
  if (specs.length > MAX_RANGES) return null;
  const out: Ranges = [];
  let any = false;
  for (const spec of specs) {
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (!r || (r[1] === '' && r[2] === '')) return null;
    if (r[1] === '') {
      // the last N bytes
      const n = Number(r[2]);
      if (n === 0) continue;
      any = true;
      out.push({ start: Math.max(0, size - n), end: size });
      continue;
    }
    const start = Number(r[1]);
    const end = r[2] === '' ? size - 1 : Number(r[2]);
    if (r[2] !== '' && end < start) return null;
    if (start >= size) continue;
    any = true;
    out.push({ start, end: Math.min(end, size - 1) + 1 });
  }
  if (!any) return [];
  if (size === 0) return [];
  return out;
}

/**
 * The one range of a Range header that asks for one, for APIs that serve a
 * single range: null when absent, not valid or asking for several (the whole
 * is sent); 'unsatisfiable' when it is valid but out of the size (416); else
 * the range, end exclusive.
 */
export function singleRange(v: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (!v || v.includes(',')) return null;
  const ranges = parseRanges(v, size);
  if (!ranges) return null;
  return ranges.length ? ranges[0]! : 'unsatisfiable';
}
