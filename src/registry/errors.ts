// The registry's errors: the OCI distribution spec's codes, each with its
// status, rendered as `{"errors":[{"code","message","detail"}]}`. Any other
// ApiError (a 401 of the server's authentication, a 403 of a policy rule, a
// malformed request) is given the spec's code for its status.
import { ApiError, type ErrorCodeName } from '../common/errors.ts';

export const RegistryCode = {
  BLOB_UNKNOWN: { status: 'NotFound', message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 'BadRequest', message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 'NotFound', message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 'BadRequest', message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 'BadRequest', message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 'BadRequest', message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 'NotFound', message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 'BadRequest', message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 'NotFound', message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 'BadRequest', message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 'Unauthorized', message: 'authentication required' },
  DENIED: { status: 'Forbidden', message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 'MethodNotAllowed', message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 'TooManyRequests', message: 'too many requests' },
} as const satisfies Record<string, { status: ErrorCodeName; message: string }>;
export type RegistryCodeName = keyof typeof RegistryCode;

export class RegistryError extends ApiError {
  readonly registryCode: RegistryCodeName;
  readonly detail: unknown;
  /** `status` overrides the code's usual one where the spec says so (416 for an out-of-order chunk, 413 for a manifest too large). */
  constructor(code: RegistryCodeName, message?: string, opts: { detail?: unknown; status?: ErrorCodeName; headers?: Record<string, string> } = {}) {
    super(opts.status ?? RegistryCode[code].status, message ?? RegistryCode[code].message, opts.headers);
    this.registryCode = code;
    this.detail = opts.detail;
  }
}

export const regError = (code: RegistryCodeName, message?: string, detail?: unknown) => new RegistryError(code, message, { detail });

/** The kind of endpoint a request addressed (names.ts: RegistryPath's kinds), which picks the code of a plain error. */
export type EndpointKind = 'manifest' | 'blob' | 'uploads' | 'upload' | 'tags' | 'referrers';

/**
 * The spec's code for an error raised outside the registry's own code
 * (authentication, policy, the object store, a malformed request), by its
 * status and the endpoint addressed: a 404 is the unknown thing the endpoint
 * names, a 400 the invalid thing it takes; where the spec has no closer
 * code, UNSUPPORTED ("a missing implementation or invalid set of parameters").
 */
function codeOf(err: ApiError, kind: EndpointKind | null): RegistryCodeName {
  if (err instanceof RegistryError) return err.registryCode;
  switch (err.status) {
    case 401: return 'UNAUTHORIZED';
    case 403: return 'DENIED';
    case 404:
      return kind === 'manifest' ? 'MANIFEST_UNKNOWN' : kind === 'blob' ? 'BLOB_UNKNOWN' : kind === 'upload' || kind === 'uploads' ? 'BLOB_UPLOAD_UNKNOWN' : 'NAME_UNKNOWN';
    case 400:
      return kind === 'manifest' ? 'MANIFEST_INVALID' : kind === 'blob' || kind === 'referrers' ? 'DIGEST_INVALID' : kind === 'upload' || kind === 'uploads' ? 'BLOB_UPLOAD_INVALID' : 'UNSUPPORTED';
    case 405: return 'UNSUPPORTED';
    case 413: return 'SIZE_INVALID';
    case 429: return 'TOOMANYREQUESTS';
    default: return 'UNSUPPORTED';
  }
}

export function renderRegistryError(err: ApiError, kind: EndpointKind | null = null): unknown {
  const code = codeOf(err, kind);
  const entry: Record<string, unknown> = { code, message: err.message };
  if (err instanceof RegistryError && err.detail !== undefined) entry.detail = err.detail;
  return { errors: [entry] };
}
