// Swift's listings: the parameters (prefix, delimiter, marker, end_marker,
// limit up to 10000, reverse) and the three formats (plain text, JSON, XML),
// chosen by `format=` or else by the Accept header.
import { escapeXml } from '../../common/text.ts';
import type { ContainerEntry, ListOptions, ObjectEntry } from '../store.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { bestFormat, LISTING_LIMIT, listingDate, truthy } from './headers.ts';
import { symlinkListingFields } from './symlink-meta.ts';

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
  const best = bestFormat(accept);
  if (!best) throw swiftStatus(406);
  return best === 'text/plain' ? 'plain' : best === 'application/json' ? 'json' : 'xml';
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
  const reverse = truthy(query.reverse);
  return {
    prefix: query.prefix || undefined, delimiter: delimiter || undefined,
    marker: query.marker || undefined, endMarker: query.end_marker || undefined, limit, reverse,
  };
}


/** A container listing of `account` in `format`: [content type, body]; null body: 204 (an empty plain listing). Links show their targets in JSON, as Swift's. */
export function renderObjects(format: ListingFormat, account: string, container: string, entries: ObjectEntry[]): [string, string | null] {
  if (format === 'json') {
    return [FORMAT_TYPES.json, JSON.stringify(entries.map((e) => e.kind === 'subdir'
      ? { subdir: e.name }
      : { hash: e.etag, last_modified: listingDate(e.timestamp), bytes: e.size, name: e.name, content_type: e.contentType, ...symlinkListingFields(account, e.sysmeta) }))];
  }
  if (format === 'xml') {
    const items = entries.map((e) => e.kind === 'subdir'
      ? `<subdir name="${escapeXml(e.name)}"><name>${escapeXml(e.name)}</name></subdir>`
      : `<object><name>${escapeXml(e.name)}</name><hash>${e.etag}</hash><bytes>${e.size}</bytes><content_type>${escapeXml(e.contentType)}</content_type><last_modified>${listingDate(e.timestamp)}</last_modified></object>`);
    return [FORMAT_TYPES.xml, `<?xml version="1.0" encoding="UTF-8"?>\n<container name="${escapeXml(container)}">${items.join('')}</container>`];
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
      ? `<subdir name="${escapeXml(e.name)}"><name>${escapeXml(e.name)}</name></subdir>`
      : `<container><name>${escapeXml(e.name)}</name><count>${e.objectCount}</count><bytes>${e.bytesUsed}</bytes><last_modified>${listingDate(e.timestamp)}</last_modified></container>`);
    return [FORMAT_TYPES.xml, `<?xml version="1.0" encoding="UTF-8"?>\n<account name="${escapeXml(account)}">${items.join('')}</account>`];
  }
  return [FORMAT_TYPES.plain, entries.length ? entries.map((e) => e.name).join('\n') + '\n' : null];
}
