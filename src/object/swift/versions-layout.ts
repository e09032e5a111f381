// The layout of object versions (X-Versions-Enabled) that Swift's versioning
// and S3's bucket versioning share, so each API sees the other's versions:
// the container's sysmeta `versions-enabled` ('true'/'false'), the versions
// in the internal container `versions/<container>` of the account, each named
// `<name>\u0001<inverted timestamp>` (newest first in a listing), its version
// id in the sysmeta `version-id`, delete markers of their own content type.

/** Container sysmeta: versioning on ('true') or suspended ('false'), as Swift's X-Versions-Enabled. */
export const VERSIONS_ENABLED = 'versions-enabled';
/** Object sysmeta: the version an object (or its copy among the versions) is. */
export const VERSION_ID = 'version-id';
/** Swift's config_true_value (the versions' sysmeta flags are read with it). */
export { truthy } from './headers.ts';

export const DELETE_MARKER_CONTENT_TYPE = 'application/x-deleted;swift_versions_deleted=1';
/** Between an object's name and its version in a version's name. */
export const SEP = '\u0001';


/** The internal container of a container's versions. */
export const versionsContainerName = (container: string): string => `versions/${container}`;

/** Swift's internal form of a timestamp: 10 digits, a dot, 5 digits (a version id). */
export const internalTs = (ts: string): string => Number(ts).toFixed(5).padStart(16, '0');
export const isVersionId = (id: string): boolean => /^\d{10}\.\d{5}$/.test(id);
/** Inverted timestamps sort newest first. */
const invert = (ts: string): string => (9999999999.99999 - Number(ts)).toFixed(5).padStart(16, '0');
export const uninvert = (inv: string): string => internalTs(String(9999999999.99999 - Number(inv)));

/** The name of a version of `name` among the versions. */
export const versionName = (name: string, id: string): string => `${name}${SEP}${invert(id)}`;
/** The object's name and version id of a name among the versions; null when it is none. */
export function splitVersionName(n: string): { name: string; id: string } | null {
  const at = n.lastIndexOf(SEP);
  if (at < 0) return null;
  return { name: n.slice(0, at), id: uninvert(n.slice(at + 1)) };
}
