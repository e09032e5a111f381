// Symlinks' records (symlink.ts is the middleware): the object sysmeta a
// link keeps, the paths and headers made of it, and the fields a JSON
// container listing shows for a link.
import type { Meta } from '../store.ts';

/** Swift's default chain limit. */
export const SYMLOOP_MAX = 2;

/** Object sysmeta keys of a symlink (values kept percent-encoded, as Swift keeps them). */
export const SYMLINK_TARGET = 'symlink-target';
export const SYMLINK_ACCOUNT = 'symlink-target-account';
export const SYMLINK_ETAG = 'symlink-target-etag';
export const SYMLINK_BYTES = 'symlink-target-bytes';

export const symlinkInfo = () => ({ symloop_max: SYMLOOP_MAX, static_links: true });

/** Percent-encodes a path as Python's quote(safe='/') does. */
export const quotePath = (p: string): string => p.split('/').map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/');

export const unquoteEtag = (e: string | undefined): string | undefined => (e === undefined ? undefined : e.replace(/^"(.*)"$/, '$1'));

/** The `/object/v1/<account>/<container>/<object>` a link's sysmeta names (its account by default the link's). */
export function targetPath(account: string, sysmeta: Meta): string {
  return `/object/v1/${sysmeta[SYMLINK_ACCOUNT] ?? quotePath(account)}/${sysmeta[SYMLINK_TARGET]}`;
}

/** The headers `?symlink=get` shows. */
export function symlinkHeaders(sysmeta: Meta): Record<string, string> {
  const h: Record<string, string> = {};
  if (sysmeta[SYMLINK_TARGET] !== undefined) h['X-Symlink-Target'] = sysmeta[SYMLINK_TARGET];
  if (sysmeta[SYMLINK_ACCOUNT] !== undefined) h['X-Symlink-Target-Account'] = sysmeta[SYMLINK_ACCOUNT];
  if (sysmeta[SYMLINK_ETAG] !== undefined) h['X-Symlink-Target-Etag'] = sysmeta[SYMLINK_ETAG];
  if (sysmeta[SYMLINK_BYTES] !== undefined) h['X-Symlink-Target-Bytes'] = sysmeta[SYMLINK_BYTES];
  return h;
}

export const isSymlink = (o: { sysmeta: Meta } | null | undefined): boolean => !!o && o.sysmeta[SYMLINK_TARGET] !== undefined;

/** The fields Swift's JSON listing adds for a link (`symlink_path`, static links' `symlink_etag` and `symlink_bytes`). */
export function symlinkListingFields(account: string, sysmeta: Meta): Record<string, string | number> {
  if (sysmeta[SYMLINK_TARGET] === undefined) return {};
  const out: Record<string, string | number> = { symlink_path: targetPath(account, sysmeta) };
  if (sysmeta[SYMLINK_ETAG] !== undefined) out.symlink_etag = sysmeta[SYMLINK_ETAG];
  if (sysmeta[SYMLINK_BYTES] !== undefined) out.symlink_bytes = Number(sysmeta[SYMLINK_BYTES]);
  return out;
}
