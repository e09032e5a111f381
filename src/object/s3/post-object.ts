// PostObject: a browser form (multipart/form-data) POSTed to a bucket
// uploads one file, authorized by the form itself: a policy document
// (base64 JSON: an expiration and conditions) signed with AWS Signature V4
// (x-amz-algorithm, x-amz-credential, x-amz-date, x-amz-signature: the
// policy's base64 text signed with the credential's signing key) or V2
// (AWSAccessKeyId, signature: HMAC-SHA1). Every field but the signature,
// the policy, the file and `x-ignore-*` ones must meet a condition
// (`{"field": "value"}`, `["eq", "$field", v]`, `["starts-with", "$field",
// prefix]`), and `content-length-range` bounds the file; a form without a
// policy is anonymous (a public-write bucket). The fields stand for the
// headers of a PutObject (Content-Type, x-amz-meta-*, Cache-Control...,
// acl, tagging as XML); `${filename}` in the key is the file's name. The
// file streams to the store (nothing is kept when it breaks a bound), and
// the answer is `success_action_redirect` (303), or `success_action_status`
// 200, 201 (PostResponse XML) or 204 (the default).
import { createHmac } from 'node:crypto';
import type { Credentials } from '../../http/auth.ts';
import { formBoundary, parseContentDisposition, readMultipart } from '../swift/formpost.ts';
import { check } from './access.ts';
import { loadBucket, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import { quoteEtag } from './headers.ts';
import { writeObject } from './objects.ts';
import type { S3Request } from './request.ts';
import { parseCredential, sameSignature, signingKey, signV4, uriEncode, V4_ALGORITHM } from './sigv4.ts';
import { xmlDocument } from './xml.ts';

/** The most form text before the file (AWS: MaxPostPreDataLengthExceeded past 20 KiB). */
const MAX_FIELDS_BYTES = 20 * 1024;
/** Fields no condition needs to name. */
const EXEMPT = new Set(['x-amz-signature', 'signature', 'file', 'policy', 'awsaccesskeyid']);

export const isFormUpload = (r: S3Request): boolean => formBoundary(r.header('content-type')) !== null;

const policyFailed = (what: string) => s3Error('AccessDenied', `Invalid according to Policy: ${what}`);

/** The caller a signed form names; null for an unsigned one. */
async function formCaller(ctx: S3Context, fields: Map<string, string>): Promise<Credentials | null> {
  const policy = fields.get('policy');
  if (policy === undefined) {
    if (fields.has('x-amz-signature') || fields.has('signature')) throw s3Error('InvalidArgument', 'Bucket POST must contain a field named \'policy\'.  If it is specified, please check the order of the fields.', [['ArgumentName', 'policy'], ['ArgumentValue', '']]);
    return null;
  }
  let access: string;
  let good: (secret: string) => boolean;
  if (fields.has('x-amz-signature') || fields.has('x-amz-credential') || fields.has('x-amz-algorithm')) {
    if (fields.get('x-amz-algorithm') !== V4_ALGORITHM) throw s3Error('InvalidArgument', 'Only AWS4-HMAC-SHA256 is supported as x-amz-algorithm.', [['ArgumentName', 'x-amz-algorithm'], ['ArgumentValue', fields.get('x-amz-algorithm') ?? '']]);
    const c = parseCredential(fields.get('x-amz-credential') ?? '');
    if (!c || c.scope.service !== 's3') throw s3Error('InvalidArgument', 'Invalid x-amz-credential.', [['ArgumentName', 'x-amz-credential'], ['ArgumentValue', fields.get('x-amz-credential') ?? '']]);
    const signature = fields.get('x-amz-signature');
    if (!signature) throw s3Error('InvalidArgument', 'Bucket POST must contain a field named \'x-amz-signature\'.', [['ArgumentName', 'x-amz-signature'], ['ArgumentValue', '']]);
    access = c.access;
    good = (secret) => sameSignature(signV4(signingKey(secret, c.scope), policy), signature);
  } else {
    const signature = fields.get('signature');
    access = fields.get('awsaccesskeyid') ?? '';
    if (!access || !signature) throw s3Error('InvalidArgument', 'Bucket POST must contain a field named \'AWSAccessKeyId\' and \'signature\'.', [['ArgumentName', 'AWSAccessKeyId'], ['ArgumentValue', access]]);
    good = (secret) => sameSignature(createHmac('sha1', secret).update(policy, 'utf8').digest('base64'), signature);
  }
  const key = await ctx.keys.lookup(access);
  if (!key) throw s3Error('InvalidAccessKeyId', undefined, [['AWSAccessKeyId', access]]);
  if (!good(key.secret)) throw s3Error('SignatureDoesNotMatch', undefined, [['AWSAccessKeyId', access]]);
  const cred = await key.caller();
  if (!cred) throw s3Error('AccessDenied');
  return cred;
}

/** Checks the policy's expiration and conditions against the form; the file's size bounds. */
function checkPolicy(policyText: string, fields: Map<string, string>, now = Date.now()): { min: number; max: number } {
  let doc: { expiration?: unknown; conditions?: unknown };
  try {
    doc = JSON.parse(Buffer.from(policyText, 'base64').toString('utf8')) as typeof doc;
  } catch {
    throw s3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid JSON.');
  }
  if (!doc || typeof doc !== 'object') throw s3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid JSON.');
  const expires = typeof doc.expiration === 'string' ? Date.parse(doc.expiration) : NaN;
  if (Number.isNaN(expires)) throw s3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid \'expiration\' value.');
  if (expires < now) throw policyFailed('Policy expired.');
  if (!Array.isArray(doc.conditions)) throw s3Error('InvalidPolicyDocument', 'Invalid Policy: Policy missing conditions.');
  const named = new Set<string>();
  let bounds = { min: 0, max: Number.MAX_SAFE_INTEGER };
  const value = (name: string) => fields.get(name) ?? '';
  for (const c of doc.conditions as unknown[]) {
    if (Array.isArray(c)) {
      const [op, a, b] = c as unknown[];
      if (op === 'content-length-range') {
        if (typeof a !== 'number' || typeof b !== 'number' || a < 0 || b < a) throw s3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid content-length-range.');
        bounds = { min: a, max: b };
        continue;
      }
      if ((op !== 'eq' && op !== 'starts-with') || typeof a !== 'string' || !a.startsWith('$') || typeof b !== 'string') {
        throw s3Error('InvalidPolicyDocument', `Invalid Policy: Invalid condition: ${JSON.stringify(c)}`);
      }
      const name = a.slice(1).toLowerCase();
      named.add(name);
      const ok = op === 'eq' ? value(name) === b : value(name).startsWith(b);
      if (!ok) throw policyFailed(`Policy Condition failed: ["${op}", "${a}", "${b}"]`);
    } else if (c && typeof c === 'object') {
      for (const [k, v] of Object.entries(c as Record<string, unknown>)) {
        if (typeof v !== 'string') throw s3Error('InvalidPolicyDocument', `Invalid Policy: Invalid condition: ${JSON.stringify(c)}`);
        const name = k.toLowerCase();
        named.add(name);
        if (value(name) !== v) throw policyFailed(`Policy Condition failed: ["eq", "$${k}", "${v}"]`);
      }
    } else {
      throw s3Error('InvalidPolicyDocument', `Invalid Policy: Invalid condition: ${JSON.stringify(c)}`);
    }
  }
  for (const name of fields.keys()) {
    if (!EXEMPT.has(name) && !name.startsWith('x-ignore-') && name !== 'bucket' && !named.has(name)) throw policyFailed(`Extra input fields: ${name}`);
  }
  return bounds;
}

/** The file's bytes within the policy's bounds: past the maximum EntityTooLarge, short of the minimum EntityTooSmall (nothing stored either way). */
async function* bounded(src: AsyncIterable<Buffer>, b: { min: number; max: number }): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of src) {
    n += c.length;
    if (n > b.max) throw s3Error('EntityTooLarge', undefined, [['ProposedSize', String(n)], ['MaxSizeAllowed', String(b.max)]]);
    yield c;
  }
  if (n < b.min) throw s3Error('EntityTooSmall', undefined, [['ProposedSize', String(n)], ['MinSizeAllowed', String(b.min)]]);
}

async function text(body: AsyncIterable<Buffer>, room: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > room) throw s3Error('MaxMessageLengthExceeded', 'Your POST request fields preceeding the upload file was too large.');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function postObject(ctx: S3Context, r: S3Request): Promise<unknown> {
  const b = await loadBucket(ctx, r);
  const boundary = formBoundary(r.header('content-type'))!;
  const fields = new Map<string, string>([['bucket', b.name]]);
  let used = 0;
  for await (const part of readMultipart(r.body(), boundary)) {
    const [, attrs] = parseContentDisposition(part.headers['content-disposition'] ?? '');
    const name = (attrs.name ?? '').toLowerCase();
    if (name !== 'file') {
      const v = await text(part.body, MAX_FIELDS_BYTES - used);
      used += Buffer.byteLength(v);
      if (name && !fields.has(name)) fields.set(name, v);
      continue;
    }
    // the file: everything the upload needs is known now; fields after it are not read
    const keyField = fields.get('key');
    if (keyField === undefined || keyField === '') throw s3Error('InvalidArgument', 'Bucket POST must contain a field named \'key\'.  If it is specified, please check the order of the fields.', [['ArgumentName', 'key'], ['ArgumentValue', '']]);
    const key = keyField.replaceAll('${filename}', attrs.filename ?? '');
    fields.set('key', key);
    const cred = await formCaller(ctx, fields);
    const policy = fields.get('policy');
    const bounds = policy !== undefined ? checkPolicy(policy, fields) : { min: 0, max: Number.MAX_SAFE_INTEGER };
    const form = {
      cred,
      header: (h: string) => (h === 'content-type' ? fields.get('content-type') ?? part.headers['content-type'] : h === 'x-amz-acl' ? fields.get('acl') : fields.get(h)),
      headers: () => Object.fromEntries(fields),
    };
    await check(ctx.store, form, b, 'write');
    const o = await writeObject(ctx, form, b, key, bounded(part.body, bounds), { tagging: fields.get('tagging') });
    const location = `${r.req.protocol}://${r.req.headers.host ?? 'localhost'}/${uriEncode(b.name)}/${uriEncode(key, true)}`;
    r.reply.headers({ etag: quoteEtag(o.etag), location });
    const redirect = fields.get('success_action_redirect') ?? fields.get('redirect');
    if (redirect) {
      let url: URL | null = null;
      try { url = new URL(redirect); } catch { /* not a URL: S3 answers as if none were given */ }
      if (url) {
        url.searchParams.set('bucket', b.name);
        url.searchParams.set('key', key);
        url.searchParams.set('etag', quoteEtag(o.etag));
        r.reply.code(303).header('location', url.toString());
        return '';
      }
    }
    const status = fields.get('success_action_status');
    if (status === '201') {
      return r.xml(xmlDocument('PostResponse', [['Location', location], ['Bucket', b.name], ['Key', key], ['ETag', quoteEtag(o.etag)]], null), 201);
    }
    r.reply.code(status === '200' ? 200 : 204);
    return '';
  }
  throw s3Error('IncorrectNumberOfFilesInPostRequest');
}
