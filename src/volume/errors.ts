// Cinder's errors: the fault envelope of cinder/api/openstack/wsgi.py,
// `{"<faultName>": {"code": <status>, "message": "..."}}`, the name chosen by
// the status (badRequest, itemNotFound, overLimit...; any other status is a
// computeFault, a 406 included, as in Cinder). Messages are Cinder's
// (cinder/exception.py), so clients and Tempest matching on them keep working.
import { ApiError, ErrorCode, type ErrorCodeName } from '../common/errors.ts';

const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod',
  409: 'conflictingRequest', 413: 'overLimit', 415: 'badMediaType', 501: 'notImplemented', 503: 'serviceUnavailable',
};

export function renderCinderError(err: ApiError): unknown {
  const name = FAULT_NAMES[err.status] ?? 'computeFault';
  return { [name]: { code: err.status, message: err.message } };
}

const make = (code: ErrorCodeName) => (message: string) => new ApiError(code, message);
export const badRequest = make('BadRequest');
export const conflict = make('Conflict');
/** Cinder's InvalidInput. */
export const invalidInput = (reason: string) => badRequest(`Invalid input received: ${reason}`);
/** Cinder's InvalidSnapshot. */
export const invalidSnapshot = (reason: string) => badRequest(`Invalid snapshot: ${reason}`);
/** Cinder's InvalidVolume. */
export const invalidVolume = (reason: string) => badRequest(`Invalid volume: ${reason}`);
export const policyDenied = (action: string) => new ApiError('Forbidden', `Policy doesn't allow ${action} to be performed.`);

export const notFound = {
  volume: (id: string) => new ApiError('NotFound', `Volume ${id} could not be found.`),
  type: (id: string) => new ApiError('NotFound', `Volume type ${id} could not be found.`),
  typeByName: (name: string) => new ApiError('NotFound', `Volume type with name ${name} could not be found.`),
  extraSpec: (typeId: string, key: string) => new ApiError('NotFound', `Volume Type ${typeId} has no extra specs with key ${key}.`),
  metadata: (volumeId: string, key: string) => new ApiError('NotFound', `Volume ${volumeId} has no metadata with key ${key}.`),
  snapshot: (id: string) => new ApiError('NotFound', `Snapshot ${id} could not be found.`),
  snapshotMetadata: (snapshotId: string, key: string) => new ApiError('NotFound', `Snapshot ${snapshotId} has no metadata with key ${key}.`),
  imageMetadata: (id: string) => new ApiError('NotFound', `Glance metadata for volume/snapshot ${id} cannot be found.`),
  message: (id: string) => new ApiError('NotFound', `Message ${id} could not be found.`),
  qos: (id: string) => new ApiError('NotFound', `No such QoS spec ${id}.`),
  qosKey: (id: string, key: string) => new ApiError('NotFound', `QoS spec ${id} has no spec with key ${key}.`),
  transfer: (id: string) => new ApiError('NotFound', `Transfer ${id} could not be found.`),
  defaultType: (projectId: string) => new ApiError('NotFound', `Default type for project ${projectId} could not be found.`),
} as const;

/** Cinder's QuotaError family: 413 overLimit with `Retry-After: 0`. */
const overLimit = (message: string) => new ApiError('PayloadTooLarge', message, { 'Retry-After': '0' });
export const volumeLimitExceeded = (allowed: number, name: string) =>
  overLimit(`Maximum number of volumes allowed (${allowed}) exceeded for quota '${name}'.`);
export const sizeExceedsQuota = (name: string, requested: number, quota: number, consumed: number) =>
  overLimit(`Requested volume or snapshot exceeds allowed ${name} quota. Requested ${requested}G, quota is ${quota}G and ${consumed}G has been consumed.`);
export const snapshotLimitExceeded = (allowed: number) => overLimit(`Maximum number of snapshots allowed (${allowed}) exceeded`);
export const backupLimitExceeded = (allowed: number) => overLimit(`Maximum number of backups allowed (${allowed}) exceeded`);
export const backupSizeExceedsQuota = (requested: number, quota: number, consumed: number) =>
  overLimit(`Requested backup exceeds allowed Backup gigabytes quota. Requested ${requested}G, quota is ${quota}G and ${consumed}G has been consumed.`);
export const sizeExceedsLimit = (size: number, limit: number) =>
  overLimit(`Requested volume size ${size}G is larger than maximum allowed limit ${limit}G.`);

export { ErrorCode };
