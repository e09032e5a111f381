// S3's error catalogue: its codes, their statuses and default messages, and
// the XML error body (<Error><Code/><Message/><Resource/><RequestId/></Error>).
// Every failure of the S3 service is rendered here; a plain ApiError (from
// the HTTP layer or the object store) is mapped to the nearest S3 code.
import type { FastifyRequest } from 'fastify';
import { ApiError, type ErrorCodeName } from '../../common/errors.ts';
import { escapeXml } from '../../common/text.ts';


const CODES = {
  AccessDenied: [403, 'Access Denied'],
  AccessForbidden: [403, 'CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource\'s CORS spec.'],
  AuthorizationHeaderMalformed: [400, 'The authorization header is malformed.'],
  AuthorizationQueryParametersError: [400, 'The query parameters that provide authentication are malformed.'],
  BadRequest: [400, 'Bad Request'],
  BadDigest: [400, 'The Content-MD5 you specified did not match what we received.'],
  BucketAlreadyExists: [409, 'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.'],
  BucketAlreadyOwnedByYou: [409, 'Your previous request to create the named bucket succeeded and you already own it.'],
  BucketNotEmpty: [409, 'The bucket you tried to delete is not empty'],
  EntityTooLarge: [400, 'Your proposed upload exceeds the maximum allowed object size.'],
  EntityTooSmall: [400, 'Your proposed upload is smaller than the minimum allowed object size.'],
  IncompleteBody: [400, 'You did not provide the number of bytes specified by the Content-Length HTTP header.'],
  InternalError: [500, 'We encountered an internal error. Please try again.'],
  InvalidAccessKeyId: [403, 'The AWS Access Key Id you provided does not exist in our records.'],
  InvalidArgument: [400, 'Invalid Argument'],
  InvalidBucketName: [400, 'The specified bucket is not valid.'],
  InvalidBucketState: [409, 'The request is not valid with the current state of the bucket.'],
  InvalidDigest: [400, 'The Content-MD5 you specified is not valid.'],
  InvalidPart: [400, 'One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part\'s entity tag.'],
  InvalidPartOrder: [400, 'The list of parts was not in ascending order. The parts list must be specified in order by part number.'],
  InvalidPartNumber: [416, 'The requested partnumber is not satisfiable'],
  InvalidRange: [416, 'The requested range is not satisfiable'],
  InvalidRequest: [400, 'Invalid Request'],
  InvalidPolicyDocument: [400, 'The content of the form does not meet the conditions specified in the policy document.'],
  InvalidTag: [400, 'The tag provided was not a valid tag.'],
  IncorrectNumberOfFilesInPostRequest: [400, 'POST requires exactly one file upload per request.'],
  InvalidStorageClass: [400, 'The storage class you specified is not valid'],
  KeyTooLongError: [400, 'Your key is too long'],
  MalformedACLError: [400, 'The XML you provided was not well-formed or did not validate against our published schema'],
  MalformedPolicy: [400, 'Policies must be valid JSON and the first byte must be \'{\''],
  MalformedXML: [400, 'The XML you provided was not well-formed or did not validate against our published schema'],
  MaxMessageLengthExceeded: [400, 'Your request was too big.'],
  MetadataTooLarge: [400, 'Your metadata headers exceed the maximum allowed metadata size.'],
  MethodNotAllowed: [405, 'The specified method is not allowed against this resource.'],
  MissingContentLength: [411, 'You must provide the Content-Length HTTP header.'],
  MissingSecurityHeader: [400, 'Your request was missing a required header'],
  NoSuchBucket: [404, 'The specified bucket does not exist'],
  NoSuchCORSConfiguration: [404, 'The CORS configuration does not exist'],
  NoSuchLifecycleConfiguration: [404, 'The lifecycle configuration does not exist'],
  NoSuchBucketPolicy: [404, 'The bucket policy does not exist'],
  NoSuchKey: [404, 'The specified key does not exist.'],
  NoSuchUpload: [404, 'The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.'],
  NoSuchVersion: [404, 'The specified version does not exist.'],
  NotImplemented: [501, 'A header you provided implies functionality that is not implemented.'],
  PreconditionFailed: [412, 'At least one of the preconditions you specified did not hold.'],
  RequestTimeTooSkewed: [403, 'The difference between the request time and the current time is too large.'],
  ServiceUnavailable: [503, 'Please reduce your request rate.'],
  SignatureDoesNotMatch: [403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'],
  XAmzContentSHA256Mismatch: [400, 'The provided \'x-amz-content-sha256\' header does not match what was computed.'],
} as const satisfies Record<string, readonly [number, string]>;

export type S3Code = keyof typeof CODES;

const BASE: Record<number, ErrorCodeName> = {
  400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'Conflict', 411: 'LengthRequired',
  412: 'PreconditionFailed', 416: 'RangeNotSatisfiable', 500: 'Internal', 501: 'NotImplemented', 503: 'Unavailable',
};

export class S3Error extends ApiError {
  readonly s3Code: S3Code;
  /** Further elements of the error body (e.g. ArgumentName, BucketName), in order. */
  readonly extra: ReadonlyArray<readonly [string, string]>;
  constructor(code: S3Code, message?: string, extra: ReadonlyArray<readonly [string, string]> = [], headers: Record<string, string> = {}) {
    super(BASE[CODES[code][0]] ?? 'BadRequest', message ?? CODES[code][1], headers);
    this.s3Code = code;
    this.extra = extra;
  }
}

export const s3Error = (code: S3Code, message?: string, extra: ReadonlyArray<readonly [string, string]> = []) => new S3Error(code, message, extra);

/** An ApiError that is not an S3Error, in S3's words. */
function s3CodeOf(err: ApiError): S3Code {
  switch (err.code) {
    case 'Unauthorized':
    case 'Forbidden': return 'AccessDenied';
    case 'NotFound': return 'NoSuchKey';
    case 'MethodNotAllowed': return 'MethodNotAllowed';
    case 'PreconditionFailed': return 'PreconditionFailed';
    case 'PayloadTooLarge': return 'EntityTooLarge';
    case 'LengthRequired': return 'MissingContentLength';
    case 'RangeNotSatisfiable': return 'InvalidRange';
    case 'NotImplemented': return 'NotImplemented';
    case 'Unavailable': return 'ServiceUnavailable';
    case 'Internal': return 'InternalError';
    default: return 'InvalidRequest';
  }
}

/** The path S3 names as an error's Resource: the path the client asked for, before any rewrite. */
const resourceOf = (req: FastifyRequest | undefined): string => {
  const url = req ? req.originalUrl : '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

export function renderS3Error(err: ApiError, req?: FastifyRequest): string {
  const code = err instanceof S3Error ? err.s3Code : s3CodeOf(err);
  const message = err instanceof S3Error || err.code !== 'Internal' ? err.message : CODES.InternalError[1];
  const extra = err instanceof S3Error ? err.extra.map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`).join('') : '';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message>${extra}`
    + `<Resource>${escapeXml(resourceOf(req))}</Resource><RequestId>${escapeXml(req?.id ?? '')}</RequestId></Error>`;
}
