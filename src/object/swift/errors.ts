// Swift's error answers, as its proxy gives them: a status's standard body is
// swob's small HTML page (`<html><h1>Not Found</h1><p>The resource could not
// be found.</p></html>`, text/html); an explained refusal is plain text
// (`Metadata value too long; max 256`, text/plain). A HEAD answer has no body.
import { ApiError, ErrorCode, type ErrorCodeName } from '../../common/errors.ts';

/** swob's explanation of each status (its RESPONSE_REASONS). */
const EXPLANATIONS: Record<number, string> = {
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.',
  401: 'This server could not verify that you are authorized to access the document you requested.',
  403: 'Access was denied to this resource.',
  404: 'The resource could not be found.',
  405: 'The method is not allowed for this resource.',
  406: 'The resource is not available in a format acceptable to your browser.',
  408: 'The server has waited too long for the request to be sent by the client.',
  409: 'There was a conflict when trying to complete your request.',
  411: 'Length Required',
  412: 'A precondition for this request was not met.',
  413: 'The body of your request was too large for this server.',
  415: 'The request media type is not supported by this server.',
  416: 'The Range requested is not available.',
  422: 'Unable to process the contained instructions',
  499: 'The client was disconnected during request.',
  500: 'The server has either erred or is incapable of performing the requested operation.',
  501: 'The server is either unable or unwilling to fulfill the request.',
  503: 'The server is currently unavailable. Please try again at a later time.',
};

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8' } as const;
const HTML = { 'Content-Type': 'text/html; charset=UTF-8' } as const;

function codeOf(status: number): ErrorCodeName {
  const found = (Object.keys(ErrorCode) as ErrorCodeName[]).find((k) => ErrorCode[k].status === status);
  if (!found) throw new Error(`no error code for status ${status}`);
  return found;
}

/** The standard answer of a status (swob's HTML page). */
export function swiftStatus(status: number, headers: Record<string, string> = {}): ApiError {
  const code = codeOf(status);
  return new ApiError(code, htmlBody(status), { ...HTML, ...headers });
}

/** An explained refusal: `message` as the plain-text body. */
export function swiftError(status: number, message: string, headers: Record<string, string> = {}): ApiError {
  return new ApiError(codeOf(status), message, { ...TEXT, ...headers });
}

function htmlBody(status: number): string {
  const title = Object.values(ErrorCode).find((c) => c.status === status)?.title ?? 'Error';
  return `<html><h1>${title}</h1><p>${EXPLANATIONS[status] ?? ''}</p></html>`;
}

/**
 * The body of any error in the Swift service: ours carry their body as the
 * message; the shared server's own (401 without a token, the NUL 400, a
 * route not found) get swob's page of their status.
 */
export function renderSwiftError(err: ApiError): string {
  if (err.headers['Content-Type']) return err.message;
  if (err.status === 400 && err.message) return err.message;
  return htmlBody(err.status);
}
