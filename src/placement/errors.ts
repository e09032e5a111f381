// Placement's errors: an ApiError that also carries Placement's error code
// (`placement.concurrent_update`...), rendered in the `errors` envelope.
import { ApiError, type ErrorCodeName } from '../common/errors.ts';

export const PlacementCode = {
  undefined: 'placement.undefined_code',
  concurrentUpdate: 'placement.concurrent_update',
  duplicateName: 'placement.duplicate_name',
  inventoryInUse: 'placement.inventory.inuse',
  providerInUse: 'placement.resource_provider.inuse',
  cannotDeleteParent: 'placement.resource_provider.cannot_delete_parent',
  providerNotFound: 'placement.resource_provider.not_found',
  queryBadValue: 'placement.query.bad_value',
  queryMissingValue: 'placement.query.missing_value',
} as const;
export type PlacementCodeName = (typeof PlacementCode)[keyof typeof PlacementCode];

export class PlacementError extends ApiError {
  readonly placementCode: PlacementCodeName;
  constructor(code: ErrorCodeName, message: string, placementCode: PlacementCodeName = PlacementCode.undefined) {
    super(code, message);
    this.placementCode = placementCode;
  }
}

export const badRequest = (m: string, code: PlacementCodeName = PlacementCode.undefined) => new PlacementError('BadRequest', m, code);
export const notFound = (m: string, code: PlacementCodeName = PlacementCode.undefined) => new PlacementError('NotFound', m, code);
export const conflict = (m: string, code: PlacementCodeName = PlacementCode.undefined) => new PlacementError('Conflict', m, code);

export const providerNotFound = (uuid: string) => notFound(`No resource provider with uuid ${uuid} found`, PlacementCode.providerNotFound);
export const generationConflict = (what = 'resource provider') =>
  conflict(`${what} generation conflict: the ${what} was changed by another request; fetch it again and retry.`, PlacementCode.concurrentUpdate);

/** Placement's error envelope; `code` exists from microversion 1.23, request_id is filled in per request (http.ts). */
export function renderPlacementError(err: ApiError): unknown {
  const code = err instanceof PlacementError ? err.placementCode : PlacementCode.undefined;
  return { errors: [{ status: err.status, title: err.title, detail: err.message, code, request_id: null }] };
}
