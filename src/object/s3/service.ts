// The S3 API as a Stratus service under /s3 (path style: /s3/<bucket>/<key>),
// also reached at the server's root by requests that carry S3 credentials on
// a path no other service owns (and anonymous reads of `/<bucket>/<key>`
// there, a public object's plain URL), and by virtual-hosted requests
// (Host: <bucket>.<s3 domain>): the server's rerouting sends those here and
// keeps the URL the client signed. S3 tells operations apart by method,
// bucket/key and query sub-resource; the table below is that dispatch, one
// line per operation of the S3 API reference. Every route is public to the
// HTTP layer: the caller (a signature, or anonymous) is checked against the
// bucket's owner and ACLs by each operation (access.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Ec2Keys } from '../../identity/ec2.ts';
import { PUBLIC } from '../../http/policy.ts';
import type { Route, Service } from '../../http/service.ts';
import type { ObjectStore } from '../store.ts';
import { carriesS3Signature, s3Authenticator } from './auth.ts';
import * as buckets from './buckets.ts';
import * as cors from './cors.ts';
import { storeError, type S3Context } from './context.ts';
import { renderS3Error, s3Error } from './errors.ts';
import * as lifecycle from './lifecycle.ts';
import * as multipart from './multipart.ts';
import * as objects from './objects.ts';
import * as postObject from './post-object.ts';
import { PREFIX, S3Request, stashContentType } from './request.ts';
import * as tagging from './tagging.ts';
import * as versioning from './versioning.ts';

export interface S3Config {
  /** Virtual-hosted buckets: Host `<bucket>.<domain>` (none: path style only). */
  domain?: string | null;
  /** The region reported (default us-east-1, what clients assume). */
  region?: string;
  /** The smallest multipart part but the last (default 5 MiB, as S3). */
  minPartSize?: number;
}

export interface S3Options extends S3Config {
  store: ObjectStore;
  keys: Ec2Keys;
  log: Logger;
}

type Level = 'service' | 'bucket' | 'object';
type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'OPTIONS';

interface Operation {
  name: string;
  level: Level;
  method: Method;
  /** Whether the request is this operation (sub-resources, headers); first match wins. */
  when?: (r: S3Request) => boolean;
  run(ctx: S3Context, r: S3Request): Promise<unknown>;
}

const sub = (name: string) => (r: S3Request) => r.has(name);
const copying = (r: S3Request) => r.header('x-amz-copy-source') !== undefined;

/** Bucket sub-resources S3 has and Stratus does not serve: NotImplemented. */
const UNSUPPORTED_BUCKET = [
  'accelerate', 'analytics', 'encryption', 'intelligent-tiering', 'inventory', 'logging', 'metrics',
  'notification', 'object-lock', 'ownershipControls', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment',
  'tagging', 'website', 'torrent', 'restore', 'select', 'retention', 'legal-hold', 'attributes',
];
const unsupported = (r: S3Request) => UNSUPPORTED_BUCKET.some((s) => r.has(s));
const notImplemented = async (_ctx: S3Context, r: S3Request) => {
  throw s3Error('NotImplemented', `This operation is not implemented: ${[...r.query.keys()].find((k) => UNSUPPORTED_BUCKET.includes(k)) ?? r.req.method}.`);
};

export const OPERATIONS: Operation[] = [
  { name: 'ListBuckets', level: 'service', method: 'GET', run: buckets.listBuckets },

  { name: 'GetBucketLocation', level: 'bucket', method: 'GET', when: sub('location'), run: buckets.getBucketLocation },
  { name: 'GetBucketVersioning', level: 'bucket', method: 'GET', when: sub('versioning'), run: versioning.getBucketVersioning },
  { name: 'GetBucketAcl', level: 'bucket', method: 'GET', when: sub('acl'), run: buckets.getBucketAcl },
  { name: 'GetBucketPolicy', level: 'bucket', method: 'GET', when: sub('policy'), run: buckets.getBucketPolicy },
  { name: 'GetBucketCors', level: 'bucket', method: 'GET', when: sub('cors'), run: cors.getBucketCors },
  { name: 'GetBucketLifecycleConfiguration', level: 'bucket', method: 'GET', when: sub('lifecycle'), run: lifecycle.getBucketLifecycle },
  { name: 'ListMultipartUploads', level: 'bucket', method: 'GET', when: sub('uploads'), run: multipart.listMultipartUploads },
  { name: 'ListObjectVersions', level: 'bucket', method: 'GET', when: sub('versions'), run: versioning.listObjectVersions },
  { name: '(unsupported)', level: 'bucket', method: 'GET', when: unsupported, run: notImplemented },
  { name: 'ListObjectsV2', level: 'bucket', method: 'GET', when: (r) => r.query.get('list-type') === '2', run: buckets.listObjectsV2 },
  { name: 'ListObjects', level: 'bucket', method: 'GET', run: buckets.listObjectsV1 },
  { name: 'HeadBucket', level: 'bucket', method: 'HEAD', run: buckets.headBucket },
  { name: 'PutBucketVersioning', level: 'bucket', method: 'PUT', when: sub('versioning'), run: versioning.putBucketVersioning },
  { name: 'PutBucketAcl', level: 'bucket', method: 'PUT', when: sub('acl'), run: buckets.putBucketAcl },
  { name: 'PutBucketPolicy', level: 'bucket', method: 'PUT', when: sub('policy'), run: buckets.putBucketPolicy },
  { name: 'PutBucketCors', level: 'bucket', method: 'PUT', when: sub('cors'), run: cors.putBucketCors },
  { name: 'PutBucketLifecycleConfiguration', level: 'bucket', method: 'PUT', when: sub('lifecycle'), run: lifecycle.putBucketLifecycle },
  { name: '(unsupported)', level: 'bucket', method: 'PUT', when: unsupported, run: notImplemented },
  { name: 'CreateBucket', level: 'bucket', method: 'PUT', run: buckets.createBucket },
  { name: 'DeleteBucketPolicy', level: 'bucket', method: 'DELETE', when: sub('policy'), run: buckets.deleteBucketPolicy },
  { name: 'DeleteBucketCors', level: 'bucket', method: 'DELETE', when: sub('cors'), run: cors.deleteBucketCors },
  { name: 'DeleteBucketLifecycle', level: 'bucket', method: 'DELETE', when: sub('lifecycle'), run: lifecycle.deleteBucketLifecycle },
  { name: '(unsupported)', level: 'bucket', method: 'DELETE', when: unsupported, run: notImplemented },
  { name: 'DeleteBucket', level: 'bucket', method: 'DELETE', run: buckets.deleteBucket },
  { name: 'DeleteObjects', level: 'bucket', method: 'POST', when: sub('delete'), run: objects.deleteObjects },
  { name: 'PostObject', level: 'bucket', method: 'POST', when: postObject.isFormUpload, run: postObject.postObject },
  { name: 'PreflightRequest', level: 'bucket', method: 'OPTIONS', run: cors.preflight },
  { name: 'PreflightRequest', level: 'object', method: 'OPTIONS', run: cors.preflight },

  { name: 'GetObjectAcl', level: 'object', method: 'GET', when: sub('acl'), run: objects.getObjectAcl },
  { name: 'ListParts', level: 'object', method: 'GET', when: sub('uploadId'), run: multipart.listParts },
  { name: 'GetObjectTagging', level: 'object', method: 'GET', when: sub('tagging'), run: tagging.getObjectTagging },
  { name: '(unsupported)', level: 'object', method: 'GET', when: unsupported, run: notImplemented },
  { name: 'GetObject', level: 'object', method: 'GET', run: (ctx, r) => objects.getObject(ctx, r, false) },
  { name: 'HeadObject', level: 'object', method: 'HEAD', run: (ctx, r) => objects.getObject(ctx, r, true) },
  { name: 'UploadPartCopy', level: 'object', method: 'PUT', when: (r) => r.has('uploadId') && copying(r), run: multipart.uploadPartCopy },
  { name: 'UploadPart', level: 'object', method: 'PUT', when: sub('uploadId'), run: multipart.uploadPart },
  { name: 'PutObjectAcl', level: 'object', method: 'PUT', when: sub('acl'), run: objects.putObjectAcl },
  { name: 'PutObjectTagging', level: 'object', method: 'PUT', when: sub('tagging'), run: tagging.putObjectTagging },
  { name: '(unsupported)', level: 'object', method: 'PUT', when: unsupported, run: notImplemented },
  { name: 'CopyObject', level: 'object', method: 'PUT', when: copying, run: objects.copyObject },
  { name: 'PutObject', level: 'object', method: 'PUT', run: objects.putObject },
  { name: 'CreateMultipartUpload', level: 'object', method: 'POST', when: sub('uploads'), run: multipart.createMultipartUpload },
  { name: 'CompleteMultipartUpload', level: 'object', method: 'POST', when: sub('uploadId'), run: multipart.completeMultipartUpload },
  { name: 'AbortMultipartUpload', level: 'object', method: 'DELETE', when: sub('uploadId'), run: multipart.abortMultipartUpload },
  { name: 'DeleteObjectTagging', level: 'object', method: 'DELETE', when: sub('tagging'), run: tagging.deleteObjectTagging },
  { name: 'DeleteObject', level: 'object', method: 'DELETE', run: objects.deleteObject },
];

export function findOperation(level: Level, method: string, r: S3Request): Operation | undefined {
  return OPERATIONS.find((op) => op.level === level && op.method === method && (!op.when || op.when(r)));
}

const hostName = (host: string | undefined): string => (host ?? '').replace(/:\d+$/, '').toLowerCase();

export function createS3Service(o: S3Options): Service {
  const domain = o.domain ? o.domain.toLowerCase().replace(/^\.+|\.+$/g, '') : null;
  const ctx: S3Context = { store: o.store, log: o.log, region: o.region ?? 'us-east-1', minPartSize: o.minPartSize ?? 5 * 1024 * 1024, keys: o.keys };
  /** The bucket a virtual-hosted request names in its Host. */
  const virtualBucket = (host: string | undefined): string | null => {
    if (!domain) return null;
    const h = hostName(host);
    return h.endsWith(`.${domain}`) && h.length > domain.length + 1 ? h.slice(0, -(domain.length + 1)) : null;
  };

  const handle = async (req: FastifyRequest, reply: Parameters<Route['handler']>[0]['reply'], cred: Parameters<Route['handler']>[0]['cred']) => {
    const r = new S3Request(req, reply, cred);
    const level: Level = r.bucket === '' ? 'service' : r.key === '' ? 'bucket' : 'object';
    const op = findOperation(level, req.method, r);
    if (!op) throw s3Error('MethodNotAllowed', undefined, [['Method', req.method], ['ResourceType', level === 'service' ? 'SERVICE' : level === 'bucket' ? 'BUCKET' : 'OBJECT']]);
    try {
      if (req.method !== 'OPTIONS') await cors.actualRequestHeaders(ctx, r);
      const result = await op.run(ctx, r);
      if (reply.sent) return reply;
      return result;
    } catch (err) {
      throw storeError(err, r);
    }
  };

  const routes: Route[] = [
    // PATCH too: S3 answers it MethodNotAllowed; OPTIONS is the CORS preflight.
    { method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'], path: '/', rule: PUBLIC, handler: (rc) => handle(rc.req, rc.reply, rc.cred) },
    { method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'], path: '/*', rule: PUBLIC, handler: (rc) => handle(rc.req, rc.reply, rc.cred) },
  ];

  return {
    name: 's3',
    prefix: PREFIX,
    routes,
    rules: {},
    renderError: renderS3Error,
    authenticators: [s3Authenticator({ keys: o.keys, virtualBucket: (req) => virtualBucket(req.headers.host) })],
    reroute(req: IncomingMessage, owned: boolean): string | null {
      const url = req.url ?? '/';
      const bucket = virtualBucket(req.headers.host);
      if (bucket !== null) return `${PREFIX}/${encodeURIComponent(bucket)}${url.startsWith('/') ? url : `/${url}`}`;
      if (owned) return null;
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (path === PREFIX || path.startsWith(`${PREFIX}/`)) return null;
      const auth = req.headers.authorization;
      if (carriesS3Signature(typeof auth === 'string' ? auth : undefined, q < 0 ? '' : url.slice(q + 1))) return `${PREFIX}${url}`;
      // An anonymous read of `/<bucket>/<key>` (a public object's plain URL, as S3 serves it)
      if ((req.method === 'GET' || req.method === 'HEAD') && /^\/[^/]+\/./.test(path)) return `${PREFIX}${url}`;
      // A CORS preflight of a bucket or object, and a browser form's POST to a bucket (they carry no signature)
      if (req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined && /^\/[^/]+/.test(path)) return `${PREFIX}${url}`;
      if (req.method === 'POST' && /^multipart\/form-data/i.test(String(req.headers['content-type'] ?? '')) && /^\/[^/]+\/?$/.test(path)) return `${PREFIX}${url}`;
      return null;
    },
    setup(app: FastifyInstance) {
      // Every body is the operation's to read, as a stream (objects) or small XML; no parser reads it first.
      app.removeAllContentTypeParsers();
      app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
      app.addHook('onRequest', async (req) => stashContentType(req));
      app.addHook('onSend', async (req, reply, payload) => {
        reply.header('x-amz-request-id', req.id);
        if (typeof payload === 'string' && payload.startsWith('<?xml') && !reply.hasHeader('content-type')) reply.header('content-type', 'application/xml');
        if (reply.statusCode >= 400 && typeof payload === 'string' && payload.startsWith('<?xml')) reply.header('content-type', 'application/xml');
        return payload;
      });
    },
  };
}
