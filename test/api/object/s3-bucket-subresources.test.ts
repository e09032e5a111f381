// S3 object tagging (Put/Get/DeleteObjectTagging, x-amz-tagging on PUT,
// multipart and copy, x-amz-tagging-count), bucket CORS (Put/Get/
// DeleteBucketCors, preflight OPTIONS answered from the rules, the
// Access-Control headers of actual requests) and bucket lifecycle
// (expiration through the store's delete-at, abort of multipart uploads);
// POST object (browser form uploads with a V4-signed policy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, until, useCloud, type Tenant } from '../../harness.ts';
import { createHmac } from 'node:crypto';
import { amzDate, assertS3Error, ec2Keys, s3Client, signingKey, xmlAll, xmlText, type Keys, type S3Client } from './s3-lib.ts';

let s3: S3Client;
let alice: Tenant;
let keys: Keys;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  keys = await ec2Keys(c, alice);
  s3 = s3Client(c, keys);
  assert.equal((await s3.call('PUT', '/s3/tag-bucket')).status, 200);
});

const tagging = (tags: Array<[string, string]>) => `<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>${tags.map(([k, v]) => `<Tag><Key>${k}</Key><Value>${v}</Value></Tag>`).join('')}</TagSet></Tagging>`;

test('object tagging: put, get, delete; x-amz-tagging on PUT; the count on HEAD; limits', async () => {
  const put = await s3.call('PUT', '/s3/tag-bucket/k', { body: 'data', headers: { 'x-amz-tagging': 'color=blue&size=' } });
  assert.equal(put.status, 200, put.text);
  const head = await s3.call('HEAD', '/s3/tag-bucket/k');
  assert.equal(head.headers.get('x-amz-tagging-count'), '2');
  const got = await s3.call('GET', '/s3/tag-bucket/k', { query: 'tagging' });
  assert.equal(got.status, 200, got.text);
  assert.deepEqual(xmlAll(got.text, 'Key'), ['color', 'size']);
  assert.deepEqual(xmlAll(got.text, 'Value'), ['blue', '']);
  const set = await s3.call('PUT', '/s3/tag-bucket/k', { query: 'tagging', body: tagging([['team', 'a&amp;b'], ['env', 'prod']]) });
  assert.equal(set.status, 200, set.text);
  const again = await s3.call('GET', '/s3/tag-bucket/k', { query: 'tagging' });
  assert.deepEqual(xmlAll(again.text, 'Key'), ['team', 'env']);
  assert.deepEqual(xmlAll(again.text, 'Value'), ['a&amp;b', 'prod']);
  // the object's bytes and metadata are untouched
  assert.equal((await s3.call('GET', '/s3/tag-bucket/k')).text, 'data');
  assert.equal((await s3.call('DELETE', '/s3/tag-bucket/k', { query: 'tagging' })).status, 204);
  assert.equal((await s3.call('GET', '/s3/tag-bucket/k', { query: 'tagging' })).text.includes('<Tag>'), false);
  assert.equal((await s3.call('HEAD', '/s3/tag-bucket/k')).headers.get('x-amz-tagging-count'), null);
  // limits and bad input
  const eleven = Array.from({ length: 11 }, (_, i): [string, string] => [`k${i}`, 'v']);
  assertS3Error(await s3.call('PUT', '/s3/tag-bucket/k', { query: 'tagging', body: tagging(eleven) }), 400, 'InvalidTag');
  assertS3Error(await s3.call('PUT', '/s3/tag-bucket/k', { query: 'tagging', body: tagging([['a', '1'], ['a', '2']]) }), 400, 'InvalidTag');
  assertS3Error(await s3.call('PUT', '/s3/tag-bucket/k', { query: 'tagging', body: tagging([['k'.repeat(129), '1']]) }), 400, 'InvalidTag');
  assertS3Error(await s3.call('PUT', '/s3/tag-bucket/k', { query: 'tagging', body: '<Tagging><TagSet><Tag>' }), 400, 'MalformedXML');
  assertS3Error(await s3.call('PUT', '/s3/tag-bucket/k2', { body: 'x', headers: { 'x-amz-tagging': 'a=1&a=2' } }), 400, 'InvalidArgument');
  assertS3Error(await s3.call('GET', '/s3/tag-bucket/none', { query: 'tagging' }), 404, 'NoSuchKey');
  // another caller may not read or set them
  const bob = s3Client(cloud, await ec2Keys(cloud, await tenant(cloud)));
  assertS3Error(await bob.call('GET', '/s3/tag-bucket/k', { query: 'tagging' }), 403, 'AccessDenied');
  assertS3Error(await bob.call('PUT', '/s3/tag-bucket/k', { query: 'tagging', body: tagging([['x', 'y']]) }), 403, 'AccessDenied');
});

test('tags follow copies (COPY) or are replaced (REPLACE), and multipart uploads keep them', async () => {
  assert.equal((await s3.call('PUT', '/s3/tag-bucket/src', { body: 'src', headers: { 'x-amz-tagging': 'a=1' } })).status, 200);
  assert.equal((await s3.call('PUT', '/s3/tag-bucket/c1', { headers: { 'x-amz-copy-source': '/tag-bucket/src' } })).status, 200);
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/tag-bucket/c1', { query: 'tagging' })).text, 'Key'), ['a']);
  assert.equal((await s3.call('PUT', '/s3/tag-bucket/c2', { headers: { 'x-amz-copy-source': '/tag-bucket/src', 'x-amz-tagging-directive': 'REPLACE', 'x-amz-tagging': 'b=2' } })).status, 200);
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/tag-bucket/c2', { query: 'tagging' })).text, 'Key'), ['b']);
  const init = await s3.call('POST', '/s3/tag-bucket/mp', { query: 'uploads', headers: { 'x-amz-tagging': 'm=1' } });
  const uploadId = xmlText(init.text, 'UploadId')!;
  const part = await s3.call('PUT', '/s3/tag-bucket/mp', { query: `partNumber=1&uploadId=${uploadId}`, body: 'part' });
  const done = await s3.call('POST', '/s3/tag-bucket/mp', { query: `uploadId=${uploadId}`, body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${part.headers.get('etag')}</ETag></Part></CompleteMultipartUpload>` });
  assert.equal(done.status, 200, done.text);
  assert.equal((await s3.call('HEAD', '/s3/tag-bucket/mp')).headers.get('x-amz-tagging-count'), '1');
});

const corsConfig = `<CORSConfiguration>
  <CORSRule><ID>web</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
    <AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>content-type</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>300</MaxAgeSeconds></CORSRule>
  <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
</CORSConfiguration>`;

test('bucket CORS: put, get, delete; preflight answered from the rules; actual requests', async () => {
  assert.equal((await s3.call('PUT', '/s3/cors-bucket')).status, 200);
  assert.equal((await s3.call('PUT', '/s3/cors-bucket/o', { body: 'o' })).status, 200);
  assertS3Error(await s3.call('GET', '/s3/cors-bucket', { query: 'cors' }), 404, 'NoSuchCORSConfiguration');
  const none = await s3.raw('OPTIONS', '/s3/cors-bucket/o', { headers: { Origin: 'https://a.example.com', 'Access-Control-Request-Method': 'GET' } });
  assertS3Error(none, 403, 'AccessForbidden');
  assertS3Error(await s3.call('PUT', '/s3/cors-bucket', { query: 'cors', body: '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>' }), 400, 'InvalidRequest');
  assertS3Error(await s3.call('PUT', '/s3/cors-bucket', { query: 'cors', body: '<CORSConfiguration></CORSConfiguration>' }), 400, 'MalformedXML');
  const put = await s3.call('PUT', '/s3/cors-bucket', { query: 'cors', body: corsConfig });
  assert.equal(put.status, 200, put.text);
  const got = await s3.call('GET', '/s3/cors-bucket', { query: 'cors' });
  assert.deepEqual(xmlAll(got.text, 'AllowedOrigin'), ['https://*.example.com', '*']);
  assert.equal(xmlText(got.text, 'MaxAgeSeconds'), '300');

  const pre = await s3.raw('OPTIONS', '/s3/cors-bucket/o', { headers: { Origin: 'https://a.example.com', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'X-Amz-Date, Content-Type' } });
  assert.equal(pre.status, 200, pre.text);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://a.example.com');
  assert.equal(pre.headers.get('access-control-allow-methods'), 'GET, PUT');
  assert.equal(pre.headers.get('access-control-allow-headers'), 'x-amz-date, content-type');
  assert.equal(pre.headers.get('access-control-max-age'), '300');
  assert.equal(pre.headers.get('access-control-expose-headers'), 'ETag');
  // at the server's root too (path style, no /s3 prefix: the preflight carries no signature)
  const atRoot = await s3.raw('OPTIONS', '/cors-bucket/o', { headers: { Origin: 'https://a.example.com', 'Access-Control-Request-Method': 'GET' } });
  assert.equal(atRoot.status, 200, atRoot.text);
  assert.equal(atRoot.headers.get('access-control-allow-origin'), 'https://a.example.com');
  const anyOrigin = await s3.raw('OPTIONS', '/s3/cors-bucket', { headers: { Origin: 'http://other.test', 'Access-Control-Request-Method': 'HEAD' } });
  assert.equal(anyOrigin.status, 200);
  assert.equal(anyOrigin.headers.get('access-control-allow-origin'), '*');
  assertS3Error(await s3.raw('OPTIONS', '/s3/cors-bucket/o', { headers: { Origin: 'http://other.test', 'Access-Control-Request-Method': 'PUT' } }), 403, 'AccessForbidden');
  assertS3Error(await s3.raw('OPTIONS', '/s3/cors-bucket/o', { headers: { Origin: 'https://a.example.com', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'authorization' } }), 403, 'AccessForbidden');
  assertS3Error(await s3.raw('OPTIONS', '/s3/cors-bucket/o', { headers: { 'Access-Control-Request-Method': 'GET' } }), 400, 'BadRequest');
  assertS3Error(await s3.raw('OPTIONS', '/s3/no-such-cors-bucket/o', { headers: { Origin: 'https://a.example.com', 'Access-Control-Request-Method': 'GET' } }), 403, 'AccessForbidden');

  const actual = await s3.call('GET', '/s3/cors-bucket/o', { headers: { Origin: 'https://b.example.com' } });
  assert.equal(actual.status, 200);
  assert.equal(actual.headers.get('access-control-allow-origin'), 'https://b.example.com');
  assert.equal(actual.headers.get('access-control-expose-headers'), 'ETag');
  const other = await s3.call('GET', '/s3/cors-bucket/o', { headers: { Origin: 'http://evil.test' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);

  // only the owner configures CORS
  const bob = s3Client(cloud, await ec2Keys(cloud, await tenant(cloud)));
  assertS3Error(await bob.call('GET', '/s3/cors-bucket', { query: 'cors' }), 403, 'AccessDenied');
  assertS3Error(await bob.call('PUT', '/s3/cors-bucket', { query: 'cors', body: corsConfig }), 403, 'AccessDenied');
  assert.equal((await s3.call('DELETE', '/s3/cors-bucket', { query: 'cors' })).status, 204);
  assertS3Error(await s3.call('GET', '/s3/cors-bucket', { query: 'cors' }), 404, 'NoSuchCORSConfiguration');
});

const lifecycle = (rules: string) => `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rules}</LifecycleConfiguration>`;
const rule = (id: string, filter: string, action: string, status = 'Enabled') => `<Rule><ID>${id}</ID>${filter}<Status>${status}</Status>${action}</Rule>`;
const DAY = 86400;

test('bucket lifecycle: expiration through the delete-at, applied to new and existing objects, taken back on delete; aborted uploads', async () => {
  assert.equal((await s3.call('PUT', '/s3/lc-bucket')).status, 200);
  assertS3Error(await s3.call('GET', '/s3/lc-bucket', { query: 'lifecycle' }), 404, 'NoSuchLifecycleConfiguration');
  assert.equal((await s3.call('PUT', '/s3/lc-bucket/old/a', { body: 'a' })).status, 200);
  assert.equal((await s3.call('PUT', '/s3/lc-bucket/keep/c', { body: 'c' })).status, 200);
  // an X-Delete-At the owner set through Swift is left alone
  const swiftUrl = `${cloud.url}/object/v1/AUTH_${alice.projectId}/lc-bucket/keep/c`;
  const own = String(Math.floor(Date.now() / 1000) + 1000 * DAY);
  assert.equal((await fetch(swiftUrl, { method: 'POST', headers: { 'X-Auth-Token': alice.token, 'X-Delete-At': own } })).status, 202);

  // refusals
  const expire = (days: string) => `<Expiration><Days>${days}</Days></Expiration>`;
  assertS3Error(await s3.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: lifecycle(rule('t', '<Filter/>', '<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>')) }), 501, 'NotImplemented');
  assertS3Error(await s3.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: lifecycle(rule('z', '<Filter/>', expire('0'))) }), 400, 'InvalidArgument');
  assertS3Error(await s3.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: lifecycle(rule('d', '<Filter/>', '<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>')) }), 400, 'InvalidArgument');
  assertS3Error(await s3.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: lifecycle(rule('x', '<Filter/>', expire('1')) + rule('x', '<Filter/>', expire('2'))) }), 400, 'InvalidArgument');
  assertS3Error(await s3.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: lifecycle(rule('n', '<Filter/>', '')) }), 400, 'InvalidRequest');
  assertS3Error(await s3.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: lifecycle(rule('s', '<Filter/>', expire('1'), 'On')) }), 400, 'MalformedXML');
  const bob = s3Client(cloud, await ec2Keys(cloud, await tenant(cloud)));
  assertS3Error(await bob.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: lifecycle(rule('b', '<Filter/>', expire('1'))) }), 403, 'AccessDenied');

  const config = lifecycle(
    rule('old', '<Filter><Prefix>old/</Prefix></Filter>', '<Expiration><Date>2020-01-01T00:00:00.000Z</Date></Expiration>')
    + rule('tmp', '<Filter><And><Prefix>tmp/</Prefix><Tag><Key>keep</Key><Value>no</Value></Tag></And></Filter>', expire('1'))
    + rule('keep', '<Filter><Prefix>keep/</Prefix></Filter>', expire('30'))
    + rule('off', '<Filter><Prefix>keep/</Prefix></Filter>', expire('1'), 'Disabled')
    + rule('mp', '<Filter><Prefix>up/</Prefix></Filter>', '<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload>'));
  const put = await s3.call('PUT', '/s3/lc-bucket', { query: 'lifecycle', body: config });
  assert.equal(put.status, 200, put.text);
  const got = await s3.call('GET', '/s3/lc-bucket', { query: 'lifecycle' });
  assert.deepEqual(xmlAll(got.text, 'ID'), ['old', 'tmp', 'keep', 'off', 'mp']);
  assert.match(got.text, /<And><Prefix>tmp\/<\/Prefix><Tag><Key>keep<\/Key><Value>no<\/Value><\/Tag><\/And>/);

  // existing objects: the walk expires old/a (its date is past) and keeps the Swift-set delete-at
  await until('old/a expired by its rule', async () => (await s3.call('HEAD', '/s3/lc-bucket/old/a')).status === 404);
  const kept = await fetch(swiftUrl, { method: 'HEAD', headers: { 'X-Auth-Token': alice.token } });
  assert.equal(kept.headers.get('x-delete-at'), own);

  // new objects: a matching tag gets the expiration, rounded up to midnight UTC; Swift sees it as X-Delete-At
  const before = Math.floor(Date.now() / 1000);
  const tmp = await s3.call('PUT', '/s3/lc-bucket/tmp/x', { body: 'x', headers: { 'x-amz-tagging': 'keep=no' } });
  const m = /^expiry-date="([^"]+)", rule-id="tmp"$/.exec(tmp.headers.get('x-amz-expiration') ?? '');
  assert.ok(m, tmp.headers.get('x-amz-expiration') ?? 'no x-amz-expiration');
  const at = Date.parse(m[1]!) / 1000;
  assert.equal(at % DAY, 0);
  assert.ok(at >= before + DAY && at <= before + 2 * DAY + 60);
  const swiftHead = await fetch(`${cloud.url}/object/v1/AUTH_${alice.projectId}/lc-bucket/tmp/x`, { method: 'HEAD', headers: { 'X-Auth-Token': alice.token } });
  assert.equal(swiftHead.headers.get('x-delete-at'), String(at));
  assert.equal((await s3.call('HEAD', '/s3/lc-bucket/tmp/x')).headers.get('x-amz-expiration'), tmp.headers.get('x-amz-expiration'));
  // no tag: no expiration, until the tag is set
  const plain = await s3.call('PUT', '/s3/lc-bucket/tmp/y', { body: 'y' });
  assert.equal(plain.headers.get('x-amz-expiration'), null);
  assert.equal((await s3.call('PUT', '/s3/lc-bucket/tmp/y', { query: 'tagging', body: tagging([['keep', 'no']]) })).status, 200);
  assert.match((await s3.call('HEAD', '/s3/lc-bucket/tmp/y')).headers.get('x-amz-expiration') ?? '', /rule-id="tmp"/);

  // an upload under up/ is aborted after 3 days
  const init = await s3.call('POST', '/s3/lc-bucket/up/z', { query: 'uploads' });
  assert.equal(init.headers.get('x-amz-abort-rule-id'), 'mp');
  const abortAt = Date.parse(init.headers.get('x-amz-abort-date')!) / 1000;
  assert.ok(abortAt >= before + 3 * DAY && abortAt % DAY === 0);

  // the configuration deleted: what a rule set is taken back
  assert.equal((await s3.call('DELETE', '/s3/lc-bucket', { query: 'lifecycle' })).status, 204);
  await until('the expiration of tmp/x taken back', async () => (await s3.call('HEAD', '/s3/lc-bucket/tmp/x')).headers.get('x-amz-expiration') === null);
  const after = await fetch(swiftUrl, { method: 'HEAD', headers: { 'X-Auth-Token': alice.token } });
  assert.equal(after.headers.get('x-delete-at'), own);
  assertS3Error(await s3.call('GET', '/s3/lc-bucket', { query: 'lifecycle' }), 404, 'NoSuchLifecycleConfiguration');
});

// ---- POST object (browser form uploads)

function signedForm(k: Keys, fields: Record<string, string>, conditions: unknown[], o: { expires?: Date; file?: Buffer; filename?: string; sign?: (policy: string) => string } = {}): FormData {
  const date = amzDate(new Date());
  const credential = `${k.access}/${date.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const policy = Buffer.from(JSON.stringify({
    expiration: (o.expires ?? new Date(Date.now() + 3600_000)).toISOString(),
    conditions: [...conditions, { 'x-amz-algorithm': 'AWS4-HMAC-SHA256' }, { 'x-amz-credential': credential }, { 'x-amz-date': date }],
  })).toString('base64');
  const signature = o.sign ? o.sign(policy) : createHmac('sha256', signingKey(k.secret, date.slice(0, 8), 'us-east-1')).update(policy).digest('hex');
  const form = new FormData();
  for (const [name, v] of Object.entries({ ...fields, 'x-amz-algorithm': 'AWS4-HMAC-SHA256', 'x-amz-credential': credential, 'x-amz-date': date, policy, 'x-amz-signature': signature })) form.append(name, v);
  form.append('file', new Blob([new Uint8Array(o.file ?? Buffer.from('hello form'))]), o.filename ?? 'hello.txt');
  return form;
}

test('POST object: a V4-signed policy form uploads one file; its conditions, bounds, expiry and signature hold', async () => {
  assert.equal((await s3.call('PUT', '/s3/form-bucket')).status, 200);
  const post = (form: FormData) => fetch(`${cloud.url}/s3/form-bucket`, { method: 'POST', body: form, redirect: 'manual' });
  const conditions = [{ bucket: 'form-bucket' }, ['starts-with', '$key', 'uploads/'], ['content-length-range', 1, 100], ['starts-with', '$Content-Type', 'text/'],
    { success_action_status: '201' }, ['starts-with', '$x-amz-meta-note', ''], ['eq', '$tagging', '<Tagging><TagSet><Tag><Key>via</Key><Value>form</Value></Tag></TagSet></Tagging>']];
  const fields = { key: 'uploads/${filename}', 'Content-Type': 'text/plain', success_action_status: '201', 'x-amz-meta-note': 'from a form', tagging: '<Tagging><TagSet><Tag><Key>via</Key><Value>form</Value></Tag></TagSet></Tagging>' };
  const ok = await post(signedForm(keys, fields, conditions));
  const body = await ok.text();
  assert.equal(ok.status, 201, body);
  assert.equal(xmlText(body, 'Key'), 'uploads/hello.txt');
  assert.equal(xmlText(body, 'Bucket'), 'form-bucket');
  const got = await s3.call('GET', '/s3/form-bucket/uploads/hello.txt');
  assert.equal(got.text, 'hello form');
  assert.equal(got.headers.get('content-type'), 'text/plain');
  assert.equal(got.headers.get('x-amz-meta-note'), 'from a form');
  assert.equal(got.headers.get('x-amz-tagging-count'), '1');
  assert.equal(got.headers.get('etag'), ok.headers.get('etag'));

  const refused = async (form: FormData, status: number, code: string) => {
    const r = await post(form);
    const text = await r.text();
    assert.equal(r.status, status, text);
    assert.equal(xmlText(text, 'Code'), code, text);
  };
  await refused(signedForm(keys, fields, conditions, { sign: () => '0'.repeat(64) }), 403, 'SignatureDoesNotMatch');
  await refused(signedForm(keys, { ...fields, key: 'elsewhere/x' }, conditions), 403, 'AccessDenied');
  await refused(signedForm(keys, fields, conditions, { expires: new Date(Date.now() - 1000) }), 403, 'AccessDenied');
  await refused(signedForm(keys, { ...fields, 'x-amz-meta-other': 'x' }, conditions), 403, 'AccessDenied');
  await refused(signedForm(keys, { ...fields, key: 'uploads/big' }, conditions, { file: Buffer.alloc(101) }), 400, 'EntityTooLarge');
  assert.equal((await s3.call('HEAD', '/s3/form-bucket/uploads/big')).status, 404);
  await refused(signedForm(keys, { ...fields, key: 'uploads/empty' }, conditions, { file: Buffer.alloc(0) }), 400, 'EntityTooSmall');
  assert.equal((await s3.call('HEAD', '/s3/form-bucket/uploads/empty')).status, 404);
  // another project's key: signed, but no write access to the bucket
  const bobKeys = await ec2Keys(cloud, await tenant(cloud));
  await refused(signedForm(bobKeys, fields, conditions), 403, 'AccessDenied');
  // unsigned: only where anyone may write
  const anon = new FormData();
  anon.append('key', 'uploads/anon');
  anon.append('file', new Blob(['x']), 'x');
  await refused(anon, 403, 'AccessDenied');
  const noFile = new FormData();
  noFile.append('key', 'uploads/none');
  await refused(noFile, 400, 'IncorrectNumberOfFilesInPostRequest');

  // a form posted to the bucket at the server's root (as boto3's generate_presigned_post addresses it)
  const root = await fetch(`${cloud.url}/form-bucket`, { method: 'POST', body: signedForm(keys, { ...fields, key: 'uploads/root.txt' }, conditions), redirect: 'manual' });
  assert.equal(root.status, 201, await root.text());
  assert.equal((await s3.call('GET', '/s3/form-bucket/uploads/root.txt')).text, 'hello form');

  // a redirect after success
  const redirected = await post(signedForm(keys, { key: 'uploads/r.txt', success_action_redirect: 'https://app.example/done' },
    [{ bucket: 'form-bucket' }, ['starts-with', '$key', 'uploads/'], { success_action_redirect: 'https://app.example/done' }]));
  assert.equal(redirected.status, 303);
  const to = new URL(redirected.headers.get('location')!);
  assert.equal(to.origin + to.pathname, 'https://app.example/done');
  assert.equal(to.searchParams.get('key'), 'uploads/r.txt');
  assert.equal(to.searchParams.get('bucket'), 'form-bucket');
  assert.match(to.searchParams.get('etag')!, /^"[0-9a-f]{32}"$/);
});
