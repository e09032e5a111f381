// What every S3 operation shares: the store, the region it reports, and the
// way from a bucket name to the container (the caller's project's container
// of that name first, else the one of that name in another project, which
// only its ACLs open), and the store's refusals in S3's words.
import type { Ec2Keys } from '../../identity/ec2.ts';
import type { Logger } from 'pino';
import { ObjectStoreError, type ContainerInfo, type ObjectStore } from '../store.ts';
import type { Credentials } from '../../http/auth.ts';
import { ACCOUNT_QUOTA_BYTES, ACCOUNT_QUOTA_COUNT, checkAccountQuota, checkContainerQuota, isResellerAdmin } from '../swift/quotas.ts';
import { s3Error, S3Error } from './errors.ts';
import type { S3Request } from './request.ts';

export interface S3Context {
  store: ObjectStore;
  log: Logger;
  /** The region S3 reports (GetBucketLocation, x-amz-bucket-region); any region signed is accepted. */
  region: string;
  /** The smallest part but the last of a multipart upload (S3: 5 MiB). */
  minPartSize: number;
  /** EC2 keys, for what a request body signs (POST form uploads). */
  keys: Ec2Keys;
}

/** Internal containers S3 keeps beside a bucket (hidden from Swift's and S3's listings). */
export const multipartContainer = (bucket: string): string => `s3-multipart+${bucket}`;

/** A Swift container name the S3 API can address (no '/', at most 256 bytes, not empty). */
export const addressable = (name: string): boolean => name !== '' && !name.includes('/') && Buffer.byteLength(name) <= 256;

/** S3's rules for a new bucket's name (DNS-compatible, 3-63 characters). */
export function checkNewBucketName(name: string): void {
  const ok = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name)
    && !name.includes('.-') && !name.includes('-.') && !name.startsWith('xn--') && !name.endsWith('-s3alias');
  if (!ok) throw s3Error('InvalidBucketName', undefined, [['BucketName', name]]);
}

export const noSuchBucket = (name: string) => s3Error('NoSuchBucket', undefined, [['BucketName', name]]);

/** The bucket a request names; NoSuchBucket when no project has it. */
export async function loadBucket(ctx: S3Context, r: S3Request, name = r.bucket): Promise<ContainerInfo> {
  if (!addressable(name)) throw noSuchBucket(name);
  if (r.cred?.projectId) {
    const own = await ctx.store.getContainer(r.cred.projectId, name);
    if (own) return own;
  }
  const other = await ctx.store.findContainer(name);
  if (!other) throw noSuchBucket(name);
  return other;
}

/** The store's refusals as S3 errors (anything else is rethrown). */
export function storeError(err: unknown, r: S3Request): unknown {
  if (!(err instanceof ObjectStoreError)) return err;
  switch (err.reason) {
    case 'ContainerNotFound': return noSuchBucket(r.bucket);
    case 'ObjectNotFound': return s3Error('NoSuchKey', undefined, [['Key', r.key]]);
    case 'ContainerNotEmpty': return s3Error('BucketNotEmpty', undefined, [['BucketName', r.bucket]]);
    case 'ContainerExists': return s3Error('BucketAlreadyExists', undefined, [['BucketName', r.bucket]]);
    case 'PreconditionFailed': return s3Error('PreconditionFailed');
    case 'EtagMismatch': return s3Error('BadDigest');
    case 'ShortBody': return s3Error('IncompleteBody');
    case 'TooLarge': return s3Error('EntityTooLarge');
    case 'PartNotFound': return s3Error('InvalidPart');
    default: return err;
  }
}

export const isS3Error = (e: unknown): e is S3Error => e instanceof S3Error;

/** Which projects' accounts had no quota when last read (an upload then skips reading the account for a few seconds, as Swift's quota middleware does). */
const noQuota = new Map<string, number>();
const QUOTA_RECHECK_MS = 10_000;

/**
 * Swift's container and account quotas (swift/quotas.ts) hold for S3 writes
 * too: an object of `addBytes` past either is refused before a byte is
 * stored (Swift's 413, S3's EntityTooLarge).
 */
export async function checkQuotas(ctx: S3Context, cred: Credentials | null, b: ContainerInfo, addBytes: number): Promise<void> {
  checkContainerQuota(b.metadata, { bytes: b.bytesUsed, count: b.objectCount }, addBytes);
  if (cred && isResellerAdmin([...cred.roles], cred.roles.has('admin'))) return;
  const seen = noQuota.get(b.project);
  if (seen !== undefined && Date.now() - seen < QUOTA_RECHECK_MS) return;
  const account = await ctx.store.getAccount(b.project);
  const has = [ACCOUNT_QUOTA_BYTES, ACCOUNT_QUOTA_COUNT].some((k) => account.sysmeta[k] !== undefined) || Object.keys(account.metadata).some((k) => k.toLowerCase() === 'quota-bytes');
  if (!has) {
    if (noQuota.size > 100_000) noQuota.clear();
    noQuota.set(b.project, Date.now());
    return;
  }
  noQuota.delete(b.project);
  checkAccountQuota(account.sysmeta, account.metadata, { bytes: account.bytesUsed, count: account.objectCount }, addBytes);
}

/** A bucket's JSON sysmeta entry (its CORS or lifecycle rules); null when absent or unreadable. */
export function sysmetaJson<T>(b: ContainerInfo, key: string): T | null {
  const raw = b.sysmeta[key];
  if (!raw) return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}
