// The error catalogue: every client-visible failure is an ApiError with a stable
// code and an HTTP status. Each service renders it in its own OpenStack envelope
// (see http/service.ts); the message never carries a secret.

export const ErrorCode = {
  BadRequest: { status: 400, title: 'Bad Request' },
  Unauthorized: { status: 401, title: 'Unauthorized' },
  Forbidden: { status: 403, title: 'Forbidden' },
  NotFound: { status: 404, title: 'Not Found' },
  MethodNotAllowed: { status: 405, title: 'Method Not Allowed' },
  NotAcceptable: { status: 406, title: 'Not Acceptable' },
  Conflict: { status: 409, title: 'Conflict' },
  Gone: { status: 410, title: 'Gone' },
  PreconditionFailed: { status: 412, title: 'Precondition Failed' },
  LengthRequired: { status: 411, title: 'Length Required' },
  PayloadTooLarge: { status: 413, title: 'Request Entity Too Large' },
  UnsupportedMediaType: { status: 415, title: 'Unsupported Media Type' },
  RangeNotSatisfiable: { status: 416, title: 'Requested Range Not Satisfiable' },
  UnprocessableEntity: { status: 422, title: 'Unprocessable Entity' },
  TooManyRequests: { status: 429, title: 'Too Many Requests' },
  /** Swift's answer to a body that ended before its declared length. */
  ClientDisconnect: { status: 499, title: 'Client Disconnect' },
  Internal: { status: 500, title: 'Internal Server Error' },
  NotImplemented: { status: 501, title: 'Not Implemented' },
  Unavailable: { status: 503, title: 'Service Unavailable' },
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

export class ApiError extends Error {
  readonly code: ErrorCodeName;
  readonly status: number;
  readonly title: string;
  readonly headers: Record<string, string>;
  constructor(code: ErrorCodeName, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.status = ErrorCode[code].status;
    this.title = ErrorCode[code].title;
    this.headers = headers;
  }
}

export const badRequest = (message: string) => new ApiError('BadRequest', message);
export const unauthorized = (message = 'The request you have made requires authentication.') =>
  new ApiError('Unauthorized', message);
export const forbidden = (message = 'You are not authorized to perform the requested action.') =>
  new ApiError('Forbidden', message);
export const notFound = (message: string) => new ApiError('NotFound', message);
export const conflict = (message: string) => new ApiError('Conflict', message);
