// Swift's listings: the parameters (prefix, delimiter, marker, end_marker,
// limit up to 10000, reverse) and the three formats (plain text, JSON, XML),
// chosen by `format=` or else by the Accept header.
import type { ContainerEntry, ListOptions, ObjectEntry } from '../store.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { LISTING_LIMIT, listingDate } from './headers.ts';

export type ListingFormat = 'plain' | 'json' | 'xml';

const FORMAT_TYPES: Record<ListingFormat, string> = {
  plain: 'text/plain; charset=utf-8',
  json: 'application/json; charset=utf-8',
  xml: 'application/xml; charset=utf-8',
};

/** The listing's format (Swift's get_listing_content_type): `format=` first, then Accept; 406 when Accept allows none. */
export function listingFormat(query: Record<string, string>, accept: string | undefined): ListingFormat {
  const f = query.format?.toLowerCase();
  if (f === 'json') return 'json';
  if (f === 'xml') return 'xml';
  if (f === 'plain' || f === 'txt' || f === 'text') return 'plain';
  if (!accept) return 'plain';
  // the best match among text/plain, application/json, application/xml, text/xml (first listed wins ties)
  let best: { format: ListingFormat; q: number; order: number } | null = null;
  const candidates: Array<[string, ListingFormat]> = [['text/plain', 'plain'], ['application/json', 'json'], ['application/xml', 'xml'], ['text/xml', 'xml']];
  for (const part of accept.split(',')) {
    const [typeRaw, ...params] = part.trim().split(';');
    const type = (typeRaw ?? '').trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!(q > 0)) continue;
    candidates.forEach(([ct, format], order) => {
      const [a, b] = ct.split('/');
      const matches = type === '*/*' || type === ct || type === `${a}/*`;
      void b;
      if (matches && (!best || q > best.q || (q === best.q && order < best.order))) best = { format, q, order };
    });
  }
  if (!best) throw swiftStatus(406);
  return (best as { format: ListingFormat }).format;
}

/** The listing parameters of a request; Swift's 412s for a limit over 10000 and a bad delimiter. */
export function listOptions(query: Record<string, string>): ListOptions {
  let limit = LISTING_LIMIT;
  if (query.limit !== undefined) {
    if (!/^\d+$/.test(query.limit.trim())) throw swiftError(400, 'Value of limit must be a positive integer');
    limit = Number(query.limit);
    if (limit > LISTING_LIMIT) throw swiftError(412, `Maximum limit is ${LISTING_LIMIT}`);
  }
  const delimiter = query.delimiter;
  if (delimiter !== undefined && delimiter !== '' && (delimiter.length > 1 || delimiter.charCodeAt(0) > 254)) throw swiftError(412, 'Bad delimiter');
  const reverse = ['true', '1', 'yes', 'on', 't', 'y'].includes((query.reverse ?? '').toLowerCase());
  return {
    prefix: query.prefix || undefined, delimiter: delimiter || undefined,
    marker: query.marker || undefined, endMarker: query.end_marker || undefined, limit, reverse,
  };
}

/** Text for XML content and attribute values. */
export const xmlEscape = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

/** A container listing in `format`: [content type, body]; null body: 204 (an empty plain listing). */
export function renderObjects(format: ListingFormat, container: string, entries: ObjectEntry[]): [string, string | null] {
  if (format === 'json') {
    return [FORMAT_TYPES.json, JSON.stringify(entries.map((e) => e.kind === 'subdir'
      ? { subdir: e.name }
      : { hash: e.etag, last_modified: listingDate(e.timestamp), bytes: e.size, name: e.name, content_type: e.contentType }))];
  }
  if (format === 'xml') {
    const items = entries.map((e) => e.kind === 'subdir'
      ? `<subdir name="${xmlEscape(e.name)}"><name>${xmlEscape(e.name)}</name></subdir>`
      : `<object><name>${xmlEscape(e.name)}</name><hash>${e.etag}</hash><bytes>${e.size}</bytes><content_type>${xmlEscape(e.contentType)}</content_type><last_modified>${listingDate(e.timestamp)}</last_modified></object>`);
    return [FORMAT_TYPES.xml, `<?xml version="1.0" encoding="UTF-8"?>\n<container name="${xmlEscape(container)}">${items.join('')}</container>`];
  }
  return [FORMAT_TYPES.plain, entries.length ? entries.map((e) => e.name).join('\n') + '\n' : null];
}

/** An account listing in `format`. */
export function renderContainers(format: ListingFormat, account: string, entries: ContainerEntry[]): [string, string | null] {
  if (format === 'json') {
    return [FORMAT_TYPES.json, JSON.stringify(entries.map((e) => e.kind === 'subdir'
      ? { subdir: e.name }
      : { name: e.name, count: e.objectCount, bytes: e.bytesUsed, last_modified: listingDate(e.timestamp) }))];
  }
  if (format === 'xml') {
    const items = entries.map((e) => e.kind === 'subdir'
      ? `<subdir name="${xmlEscape(e.name)}"><name>${xmlEscape(e.name)}</name></subdir>`
      : `<container><name>${xmlEscape(e.name)}</name><count>${e.objectCount}</count><bytes>${e.bytesUsed}</bytes><last_modified>${listingDate(e.timestamp)}</last_modified></container>`);
    return [FORMAT_TYPES.xml, `<?xml version="1.0" encoding="UTF-8"?>\n<account name="${xmlEscape(account)}">${items.join('')}</account>`];
  }
  return [FORMAT_TYPES.plain, entries.length ? entries.map((e) => e.name).join('\n') + '\n' : null];
}
