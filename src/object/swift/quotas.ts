// Container and account quotas, as Swift's container_quotas and
// account_quotas middleware. A container's quota is its own metadata
// (X-Container-Meta-Quota-Bytes / -Count, digits only, set by whoever may
// write the container's metadata). An account's quota (X-Account-Quota-Bytes,
// -Count, and the legacy X-Account-Meta-Quota-Bytes) is set only by a reseller
// admin (Keystone role ResellerAdmin, Tempest's reseller_admin_role; Stratus's
// cloud admin too) and kept as account sysmeta, shown back as
// X-Account-Quota-Bytes/-Count; anyone else naming it is a 403. An upload
// that would take the container or the account past a quota is a 413
// "Upload exceeds quota." before any byte is stored; reseller admins' own
// uploads are not held to account quotas (Swift).
import { ApiError } from '../../common/errors.ts';

type Headers = Record<string, string | string[] | undefined>;
const header = (h: Headers, name: string): string | undefined => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};
const digits = (v: string) => /^[0-9]+$/.test(v);

export const overQuota = () => new ApiError('PayloadTooLarge', 'Upload exceeds quota.');

/** A container PUT/POST's quota metadata: digits or empty (removal), else Swift's 400. */
export function checkContainerQuotaHeaders(h: Headers): void {
  const bytes = header(h, 'x-container-meta-quota-bytes');
  if (bytes && !digits(bytes)) throw new ApiError('BadRequest', 'Invalid bytes quota.');
  const count = header(h, 'x-container-meta-quota-count');
  if (count && !digits(count)) throw new ApiError('BadRequest', 'Invalid count quota.');
}

export interface Usage { bytes: number; count: number }

/** Whether adding one object of `addBytes` fits the container's quota metadata (keys lower-cased, without the prefix). */
export function checkContainerQuota(meta: Record<string, string> | undefined, used: Usage, addBytes: number, addCount = 1): void {
  const qb = metaValue(meta, 'quota-bytes');
  if (qb !== undefined && digits(qb) && Number(qb) < used.bytes + addBytes) throw overQuota();
  const qc = metaValue(meta, 'quota-count');
  if (qc !== undefined && digits(qc) && Number(qc) < used.count + addCount) throw overQuota();
}

function metaValue(meta: Record<string, string> | undefined, key: string): string | undefined {
  if (!meta) return undefined;
  for (const [k, v] of Object.entries(meta)) if (k.toLowerCase() === key) return v;
  return undefined;
}

/** The account sysmeta keys the quotas are kept under. */
export const ACCOUNT_QUOTA_BYTES = 'quota-bytes';
export const ACCOUNT_QUOTA_COUNT = 'quota-count';

/**
 * The account quota changes of an account PUT/POST: sysmeta to set ('' removes)
 * for a reseller admin; a 403 for anyone else naming one; a 400 for a value
 * that is not digits. Returns {} when the request names no quota.
 */
export function accountQuotaChanges(h: Headers, resellerAdmin: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  let named = false;
  for (const [type, key] of [['Quota-Bytes', ACCOUNT_QUOTA_BYTES], ['Quota-Count', ACCOUNT_QUOTA_COUNT]] as const) {
    let v = header(h, `x-account-${type}`);
    // The legacy X-Account-Meta-Quota-Bytes stands for X-Account-Quota-Bytes when that is not given.
    if (type === 'Quota-Bytes' && !v) v = header(h, 'x-account-meta-quota-bytes') ?? v;
    let remove = header(h, `x-remove-account-${type}`);
    if (type === 'Quota-Bytes' && !remove) remove = header(h, 'x-remove-account-meta-quota-bytes');
    if (remove) v = '';
    if (v === undefined) continue;
    named = true;
    if (resellerAdmin) {
      if (v && !digits(v)) throw new ApiError('BadRequest', 'Bad Request');
      out[key] = v;
    }
  }
  if (named && !resellerAdmin) throw new ApiError('Forbidden', 'Forbidden');
  return out;
}

/**
 * Whether adding `addBytes` (one object) fits the account's quotas: sysmeta
 * quota-bytes (else the legacy meta Quota-Bytes) and quota-count; a value
 * that is not a number is no quota.
 */
export function checkAccountQuota(sysmeta: Record<string, string> | undefined, meta: Record<string, string> | undefined, used: Usage, addBytes: number, addCount = 1): void {
  const bytes = metaValue(sysmeta, ACCOUNT_QUOTA_BYTES) ?? metaValue(meta, 'quota-bytes');
  if (bytes !== undefined && /^\s*[+-]?\d+\s*$/.test(bytes)) {
    const q = Number.parseInt(bytes, 10);
    if (q >= 0 && q < used.bytes + addBytes) throw overQuota();
  }
  const count = metaValue(sysmeta, ACCOUNT_QUOTA_COUNT);
  if (count !== undefined && /^\s*[+-]?\d+\s*$/.test(count)) {
    const q = Number.parseInt(count, 10);
    if (q >= 0 && q < used.count + addCount) throw overQuota();
  }
}

/** The headers an account's GET/HEAD shows for its quotas (from sysmeta). */
export function accountQuotaHeaders(sysmeta: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const b = metaValue(sysmeta, ACCOUNT_QUOTA_BYTES);
  if (b) out['x-account-quota-bytes'] = b;
  const c = metaValue(sysmeta, ACCOUNT_QUOTA_COUNT);
  if (c) out['x-account-quota-count'] = c;
  return out;
}

/** Reseller admin: Swift keystoneauth's reseller_admin_role (ResellerAdmin, any case) or Stratus's cloud admin. */
export function isResellerAdmin(roles: string[], cloudAdmin: boolean): boolean {
  return cloudAdmin || roles.some((r) => r.toLowerCase() === 'reselleradmin');
}
