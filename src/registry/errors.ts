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

/** The spec's code for an error raised outside the registry's own code (authentication, policy, a malformed request). */
function codeOf(err: ApiError): RegistryCodeName {
  if (err instanceof RegistryError) return err.registryCode;
  switch (err.status) {
    case 401: return 'UNAUTHORIZED';
    case 403: return 'DENIED';
    case 404: return 'NAME_UNKNOWN';
    case 405: return 'UNSUPPORTED';
    case 413: return 'SIZE_INVALID';
    case 429: return 'TOOMANYREQUESTS';
    // a malformed request, a server fault: the spec has no closer code
    default: return 'UNSUPPORTED';
  }
}

export function renderRegistryError(err: ApiError): unknown {
  const code = codeOf(err);
  const entry: Record<string, unknown> = { code, message: err.message };
  if (err instanceof RegistryError && err.detail !== undefined) entry.detail = err.detail;
  return { errors: [entry] };
}
