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
import type { ApiError } from '../../common/errors.ts';
import { checkContainerAccess } from './access.ts';
import { loadContainer } from './container.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { header as firstHeader } from './headers.ts';
import type { SwiftMiddleware, SwiftRequest } from './request.ts';

type Headers = Record<string, string | string[] | undefined>;
const header = (h: Headers, name: string): string | undefined => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};
const digits = (v: string) => /^[0-9]+$/.test(v);

export const overQuota = (): ApiError => swiftError(413, 'Upload exceeds quota.');

/** A container PUT/POST's quota metadata: digits or empty (removal), else Swift's 400. */
export function checkContainerQuotaHeaders(h: Headers): void {
  const bytes = header(h, 'x-container-meta-quota-bytes');
  if (bytes && !digits(bytes)) throw swiftError(400, 'Invalid bytes quota.');
  const count = header(h, 'x-container-meta-quota-count');
  if (count && !digits(count)) throw swiftError(400, 'Invalid count quota.');
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
      if (v && !digits(v)) throw swiftStatus(400);
      out[key] = v;
    }
  }
  if (named && !resellerAdmin) throw swiftStatus(403);
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

// ---- the middleware

/**
 * Which accounts have no quota, as this replica last read them: an upload to
 * one of them skips reading the account (and summing its containers) for a
 * few seconds, as Swift's proxy caches account info. A quota set through this
 * replica counts at once; one set through another replica within that time.
 */
const quotaKnown = new Map<string, { at: number; has: boolean }>();
const QUOTA_RECHECK_MS = 10_000;

const isReseller = (sr: SwiftRequest): boolean => !!sr.cred && isResellerAdmin([...sr.cred.roles], sr.cred.roles.has('admin'));

export function quotasMiddleware(): SwiftMiddleware {
  return async (sr, next) => {
    if (sr.container === undefined) return accountStep(sr, next);
    if (sr.object === undefined) {
      if (sr.method === 'PUT' || sr.method === 'POST') checkContainerQuotaHeaders(sr.headers);
      return next();
    }
    if (sr.method === 'PUT' && sr.query['multipart-manifest'] !== 'put') await checkUpload(sr);
    return next();
  };
}

async function accountStep(sr: SwiftRequest, next: () => Promise<unknown>): Promise<unknown> {
  if (sr.method === 'PUT' || sr.method === 'POST') {
    const changes = accountQuotaChanges(sr.headers, isReseller(sr));
    quotaKnown.delete(sr.project);
    const body = await next();
    if (Object.keys(changes).length && sr.reply.statusCode < 300) {
      const sysmeta: Record<string, string | null> = {};
      for (const [k, v] of Object.entries(changes)) sysmeta[k] = v === '' ? null : v;
      await sr.ctx.store.updateAccount(sr.project, { sysmeta });
    }
    if (sr.reply.statusCode < 300) sr.reply.headers(accountQuotaHeaders((await sr.ctx.store.getAccount(sr.project)).sysmeta));
    return body;
  }
  const body = await next();
  if ((sr.method === 'GET' || sr.method === 'HEAD') && sr.reply.statusCode < 300) {
    sr.reply.headers(accountQuotaHeaders((await sr.ctx.store.getAccount(sr.project)).sysmeta));
  }
  return body;
}

/** Refuses an upload past the container's or the account's quota (413), once the caller is known to be allowed to write. */
async function checkUpload(sr: SwiftRequest): Promise<void> {
  const c = await loadContainer(sr);
  if (!c) return;
  const hasContainerQuota = metaValue(c.metadata, 'quota-bytes') !== undefined || metaValue(c.metadata, 'quota-count') !== undefined;
  const len = firstHeader(sr.headers, 'content-length');
  const size = len !== undefined && /^\d+$/.test(len) ? Number(len) : 0;
  if (hasContainerQuota) {
    await checkContainerAccess(sr, c, 'write-object');
    checkContainerQuota(c.metadata, { bytes: c.bytesUsed, count: c.objectCount }, size);
  }
  if (isReseller(sr)) return;
  const known = quotaKnown.get(sr.project);
  if (known && Date.now() - known.at < QUOTA_RECHECK_MS && !known.has) return;
  const account = await sr.ctx.store.getAccount(sr.project);
  const has = metaValue(account.sysmeta, ACCOUNT_QUOTA_BYTES) !== undefined || metaValue(account.sysmeta, ACCOUNT_QUOTA_COUNT) !== undefined
    || metaValue(account.metadata, 'quota-bytes') !== undefined;
  if (quotaKnown.size > 100000) quotaKnown.clear();
  quotaKnown.set(sr.project, { at: Date.now(), has });
  if (!has) return;
  await checkContainerAccess(sr, c, 'write-object');
  checkAccountQuota(account.sysmeta, account.metadata, { bytes: account.bytesUsed, count: account.objectCount }, size);
}
