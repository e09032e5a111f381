// S3 bucket versioning (versions, delete markers, versionId on GET and
// DELETE, ListObjectVersions) and public reads (canned ACLs on buckets and
// objects, the bucket policy's public-read statement, Swift's .r:* ACL), over HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { assertS3Error, ec2Keys, s3Client, xmlAll, xmlText, type S3Client } from './s3-lib.ts';

let alice: Tenant;
let s3: S3Client;
let bobS3: S3Client;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  s3 = s3Client(c, await ec2Keys(c, alice));
  bobS3 = s3Client(c, await ec2Keys(c, await tenant(c)));
});

test('versioning: versions kept, delete markers, GET and DELETE by version id, ListObjectVersions', async () => {
  assert.equal((await s3.call('PUT', '/s3/ver')).status, 200);
  assert.equal(xmlText((await s3.call('GET', '/s3/ver', { query: 'versioning' })).text, 'Status'), undefined);
  const before = await s3.call('PUT', '/s3/ver/doc', { body: 'v0' });
  assert.equal(before.headers.get('x-amz-version-id'), null);
  assertS3Error(await s3.call('PUT', '/s3/ver', { query: 'versioning', body: '<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>' }), 400, 'MalformedXML');
  const on = await s3.call('PUT', '/s3/ver', { query: 'versioning', body: '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' });
  assert.equal(on.status, 200, on.text);
  assert.equal(xmlText((await s3.call('GET', '/s3/ver', { query: 'versioning' })).text, 'Status'), 'Enabled');
  // the object from before versioning is the null version until a write keeps it among the versions
  assert.equal((await s3.call('GET', '/s3/ver/doc', { query: 'versionId=null' })).text, 'v0');
  const v1 = (await s3.call('PUT', '/s3/ver/doc', { body: 'v1' })).headers.get('x-amz-version-id')!;
  const v2 = (await s3.call('PUT', '/s3/ver/doc', { body: 'v2' })).headers.get('x-amz-version-id')!;
  assert.match(v1, /^\d{10}\.\d{5}$/);
  assert.ok(v2 > v1);
  assert.equal((await s3.call('GET', '/s3/ver/doc')).text, 'v2');
  assert.equal((await s3.call('GET', '/s3/ver/doc')).headers.get('x-amz-version-id'), v2);
  assert.equal((await s3.call('GET', '/s3/ver/doc', { query: `versionId=${v1}` })).text, 'v1');
  assertS3Error(await s3.call('GET', '/s3/ver/doc', { query: 'versionId=0000000000.00000' }), 404, 'NoSuchVersion');
  const versions = await s3.call('GET', '/s3/ver', { query: 'versions' });
  assert.equal(versions.status, 200, versions.text);
  const ids = xmlAll(versions.text, 'VersionId');
  assert.equal(ids.length, 3);
  assert.deepEqual(ids.slice(0, 2), [v2, v1]);
  const v0 = ids[2]!;
  assert.equal((await s3.call('GET', '/s3/ver/doc', { query: `versionId=${v0}` })).text, 'v0');
  assert.deepEqual(xmlAll(versions.text, 'IsLatest'), ['true', 'false', 'false']);
  // a plain listing shows the current version only
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/ver')).text, 'Key'), ['doc']);
  // DELETE without a version: a delete marker
  const del = await s3.call('DELETE', '/s3/ver/doc');
  assert.equal(del.status, 204);
  assert.equal(del.headers.get('x-amz-delete-marker'), 'true');
  const marker = del.headers.get('x-amz-version-id')!;
  const gone = await s3.call('GET', '/s3/ver/doc');
  assertS3Error(gone, 404, 'NoSuchKey');
  assert.equal(gone.headers.get('x-amz-delete-marker'), 'true');
  assert.equal(gone.headers.get('x-amz-version-id'), marker);
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/ver')).text, 'Key'), []);
  const withMarker = await s3.call('GET', '/s3/ver', { query: 'versions' });
  assert.ok(withMarker.text.includes('<DeleteMarker>'), withMarker.text);
  assert.equal(xmlText(withMarker.text.slice(withMarker.text.indexOf('<DeleteMarker>')), 'VersionId'), marker);
  assert.equal(xmlText(withMarker.text.slice(withMarker.text.indexOf('<DeleteMarker>')), 'IsLatest'), 'true');
  assertS3Error(await s3.call('DELETE', '/s3/ver'), 409, 'BucketNotEmpty');
  // removing the marker brings v2 back
  const undo = await s3.call('DELETE', '/s3/ver/doc', { query: `versionId=${marker}` });
  assert.equal(undo.status, 204);
  assert.equal(undo.headers.get('x-amz-delete-marker'), 'true');
  assert.equal((await s3.call('GET', '/s3/ver/doc')).text, 'v2');
  // deleting the current version makes the previous one current
  assert.equal((await s3.call('DELETE', '/s3/ver/doc', { query: `versionId=${v2}` })).status, 204);
  assert.equal((await s3.call('GET', '/s3/ver/doc')).text, 'v1');
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/ver', { query: 'versions' })).text, 'VersionId'), [v1, v0]);
  // suspended: new writes are the null version; the older versions stay
  await s3.call('PUT', '/s3/ver', { query: 'versioning', body: '<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>' });
  assert.equal((await s3.call('PUT', '/s3/ver/doc', { body: 'v3' })).headers.get('x-amz-version-id'), 'null');
  assert.equal((await s3.call('GET', '/s3/ver/doc')).text, 'v3');
  assert.equal((await s3.call('GET', '/s3/ver/doc', { query: `versionId=${v1}` })).text, 'v1');
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/ver', { query: 'versions' })).text, 'VersionId'), ['null', v1, v0]);
  // emptied of every version, the bucket goes
  for (const v of xmlAll((await s3.call('GET', '/s3/ver', { query: 'versions' })).text, 'VersionId')) {
    const d = await s3.call('DELETE', '/s3/ver/doc', { query: `versionId=${v}` });
    assert.equal(d.status, 204, `${v}: ${d.text}`);
  }
  assert.deepEqual(xmlAll((await s3.call('GET', '/s3/ver', { query: 'versions' })).text, 'VersionId'), []);
  assert.equal((await s3.call('DELETE', '/s3/ver')).status, 204);
});

test('canned ACLs: a public-read bucket and a public-read object are readable anonymously', async () => {
  assert.equal((await s3.call('PUT', '/s3/pub', { headers: { 'x-amz-acl': 'public-read' } })).status, 200);
  await s3.call('PUT', '/s3/pub/open', { body: 'for all' });
  assert.equal((await s3.raw('GET', '/s3/pub/open')).text, 'for all');
  // its plain URL at the server's root too
  assert.equal((await s3.raw('GET', '/pub/open')).text, 'for all');
  assert.equal((await s3.raw('HEAD', '/pub/open')).status, 200);
  assert.deepEqual(xmlAll((await s3.raw('GET', '/s3/pub')).text, 'Key'), ['open']);
  assertS3Error(await s3.raw('PUT', '/s3/pub/nope', { body: 'x' }), 403, 'AccessDenied');
  assertS3Error(await s3.raw('DELETE', '/s3/pub/open'), 403, 'AccessDenied');
  const acl = await s3.call('GET', '/s3/pub', { query: 'acl' });
  assert.ok(acl.text.includes('http://acs.amazonaws.com/groups/global/AllUsers'), acl.text);
  assertS3Error(await bobS3.call('GET', '/s3/pub', { query: 'acl' }), 403, 'AccessDenied');
  // back to private
  assert.equal((await s3.call('PUT', '/s3/pub', { query: 'acl', headers: { 'x-amz-acl': 'private' } })).status, 200);
  assertS3Error(await s3.raw('GET', '/s3/pub/open'), 403, 'AccessDenied');
  // an object's own ACL
  await s3.call('PUT', '/s3/pub/shared', { body: 'one object', headers: { 'x-amz-acl': 'public-read' } });
  assert.equal((await s3.raw('GET', '/s3/pub/shared')).text, 'one object');
  assert.equal((await bobS3.call('GET', '/s3/pub/shared')).text, 'one object');
  assert.ok((await s3.call('GET', '/s3/pub/shared', { query: 'acl' })).text.includes('AllUsers'));
  assertS3Error(await s3.raw('GET', '/s3/pub'), 403, 'AccessDenied');
  assert.equal((await s3.call('PUT', '/s3/pub/shared', { query: 'acl', headers: { 'x-amz-acl': 'private' } })).status, 200);
  assertS3Error(await s3.raw('GET', '/s3/pub/shared'), 403, 'AccessDenied');
  // an AccessControlPolicy body granting AllUsers READ
  const doc = `<AccessControlPolicy><Owner><ID>${alice.projectId}</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>`;
  assert.equal((await s3.call('PUT', '/s3/pub', { query: 'acl', body: doc })).status, 200);
  assert.equal((await s3.raw('GET', '/s3/pub/open')).text, 'for all');
  // its plain URL at the server's root too
  assert.equal((await s3.raw('GET', '/pub/open')).text, 'for all');
  assert.equal((await s3.raw('HEAD', '/pub/open')).status, 200);
  assertS3Error(await s3.call('PUT', '/s3/pub', { query: 'acl', body: '<AccessControlPolicy><oops' }), 400, 'MalformedACLError');
});

test('a bucket policy granting s3:GetObject to everyone opens reads; Swift\'s .r:* ACL is honoured', async () => {
  await s3.call('PUT', '/s3/pol');
  await s3.call('PUT', '/s3/pol/o', { body: 'by policy' });
  assertS3Error(await s3.call('GET', '/s3/pol', { query: 'policy' }), 404, 'NoSuchBucketPolicy');
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::pol/*'] }] });
  assertS3Error(await s3.call('PUT', '/s3/pol', { query: 'policy', body: 'not json' }), 400, 'MalformedPolicy');
  assertS3Error(await s3.call('PUT', '/s3/pol', { query: 'policy', body: policy.replace('pol/*', 'other/*') }), 400, 'MalformedPolicy');
  assert.equal((await s3.call('PUT', '/s3/pol', { query: 'policy', body: policy })).status, 204);
  assert.equal(JSON.parse((await s3.call('GET', '/s3/pol', { query: 'policy' })).text).Statement[0].Sid, 'PublicRead');
  assert.equal((await s3.raw('GET', '/s3/pol/o')).text, 'by policy');
  assertS3Error(await s3.raw('GET', '/s3/pol'), 403, 'AccessDenied');
  // a grant on part of the bucket, or one beside a Deny, opens nothing (rather than the whole bucket)
  const narrow = JSON.parse(policy);
  narrow.Statement[0].Resource = ['arn:aws:s3:::pol/public/*'];
  assert.equal((await s3.call('PUT', '/s3/pol', { query: 'policy', body: JSON.stringify(narrow) })).status, 204);
  assertS3Error(await s3.raw('GET', '/s3/pol/o'), 403, 'AccessDenied');
  const denying = JSON.parse(policy);
  denying.Statement.push({ Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::pol/o' });
  assert.equal((await s3.call('PUT', '/s3/pol', { query: 'policy', body: JSON.stringify(denying) })).status, 204);
  assertS3Error(await s3.raw('GET', '/s3/pol/o'), 403, 'AccessDenied');
  assert.equal((await s3.call('DELETE', '/s3/pol', { query: 'policy' })).status, 204);
  assertS3Error(await s3.raw('GET', '/s3/pol/o'), 403, 'AccessDenied');
  // Swift's public container
  const swift = (method: string, path: string, headers: Record<string, string> = {}) =>
    cloud.call(method, `/object/v1/AUTH_${alice.projectId}${path}`, { token: alice.token, headers });
  assert.equal((await swift('PUT', '/swift-pub', { 'x-container-read': '.r:*' })).status, 201);
  assert.equal((await swift('PUT', '/swift-pub/o', {})).status, 201);
  assert.equal((await s3.raw('GET', '/s3/swift-pub/o')).status, 200);
  assertS3Error(await s3.raw('GET', '/s3/swift-pub'), 403, 'AccessDenied');
  // and S3's public-read is Swift's .r:*
  await s3.call('PUT', '/s3/s3-pub', { headers: { 'x-amz-acl': 'public-read' } });
  const head = await swift('HEAD', '/s3-pub');
  assert.match(head.headers.get('x-container-read') ?? '', /\.r:\*/);
  await s3.call('PUT', '/s3/s3-pub/o', { body: 'public via s3' });
  const anon = await cloud.call('GET', `/object/v1/AUTH_${alice.projectId}/s3-pub/o`);
  assert.equal(anon.status, 200);
  assert.equal(anon.body, 'public via s3');
});

/** A GET with headers fetch() would drop (Referer), over node:http: the status. */
const getStatus = (path: string, headers: Record<string, string> = {}) => new Promise<number>((resolve, reject) => {
  const req = request(`${cloud.url}${path}`, { headers }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode!));
  });
  req.on('error', reject);
  req.end();
});

test("Swift's referrer ACLs decide anonymous S3 reads and listings as they decide Swift's", async () => {
  const swift = (method: string, path: string, headers: Record<string, string> = {}) =>
    cloud.call(method, `/object/v1/AUTH_${alice.projectId}${path}`, { token: alice.token, headers });
  const account = `/object/v1/AUTH_${alice.projectId}`;
  // everyone but one site
  assert.equal((await swift('PUT', '/ref-deny', { 'x-container-read': '.r:*,.r:-evil.example,.rlistings' })).status, 201);
  assert.equal((await swift('PUT', '/ref-deny/o')).status, 201);
  const evil = { referer: 'http://evil.example/page' };
  for (const path of ['/ref-deny/o', '/ref-deny']) {
    assert.equal(await getStatus(`${account}${path}`, evil), 401, `Swift refuses ${path} from the denied site`);
    assert.equal(await getStatus(`/s3${path}`, evil), 403, `S3 refuses ${path} from the denied site`);
    assert.equal(await getStatus(`/s3${path}`), 200);
  }
  // only one domain's pages, listings too
  assert.equal((await swift('PUT', '/ref-allow', { 'x-container-read': '.r:.example.com,.rlistings' })).status, 201);
  assert.equal((await swift('PUT', '/ref-allow/o')).status, 201);
  const site = { referer: 'https://www.example.com/index.html' };
  for (const path of ['/ref-allow/o', '/ref-allow']) {
    assert.equal(await getStatus(`${account}${path}`, site), 200);
    assert.equal(await getStatus(`/s3${path}`, site), 200, `S3 lets ${path} in from the allowed site`);
    assert.equal(await getStatus(`/s3${path}`), 403);
  }
});

test('versions are shared with Swift: S3 versioning is X-Versions-Enabled, and each API lists the other\'s versions', async () => {
  const swift = (method: string, path: string, o: { headers?: Record<string, string>; raw?: string } = {}) =>
    cloud.call(method, `/object/v1/AUTH_${alice.projectId}${path}`, { token: alice.token, ...o });
  assert.equal((await s3.call('PUT', '/s3/ver-shared')).status, 200);
  assert.equal((await s3.call('PUT', '/s3/ver-shared', { query: 'versioning', body: '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>' })).status, 200);
  const head = await swift('HEAD', '/ver-shared');
  assert.equal(head.headers.get('x-versions-enabled'), 'True');
  const a = (await s3.call('PUT', '/s3/ver-shared/k', { body: 'from s3' })).headers.get('x-amz-version-id')!;
  const put = await swift('PUT', '/ver-shared/k', { raw: 'from swift' });
  assert.equal(put.status, 201);
  const b = put.headers.get('x-object-version-id')!;
  assert.ok(b > a);
  const listed = await s3.call('GET', '/s3/ver-shared', { query: 'versions' });
  assert.deepEqual(xmlAll(listed.text, 'VersionId'), [b, a]);
  assert.equal((await s3.call('GET', '/s3/ver-shared/k', { query: `versionId=${a}` })).text, 'from s3');
  const sv = await swift('GET', '/ver-shared?versions&format=json');
  assert.deepEqual((sv.body as Array<{ version_id: string }>).map((v) => v.version_id), [b, a]);
  assert.equal((await swift('GET', `/ver-shared/k?version-id=${a}`)).body, 'from s3');
  // an S3 delete marker is Swift's
  const del = await s3.call('DELETE', '/s3/ver-shared/k');
  assert.equal((await swift('GET', '/ver-shared/k')).status, 404);
  assert.equal((await swift('DELETE', `/ver-shared/k?version-id=${del.headers.get('x-amz-version-id')}`)).status, 204);
  assert.equal((await s3.call('GET', '/s3/ver-shared/k')).text, 'from swift');
});

test('Swift ACLs naming another project, and a reader\'s role, decide S3 access alike', async () => {
  const carol = await tenant(cloud);
  const carolS3 = s3Client(cloud, await ec2Keys(cloud, carol));
  const swift = (method: string, path: string, headers: Record<string, string> = {}) =>
    cloud.call(method, `/object/v1/AUTH_${alice.projectId}${path}`, { token: alice.token, headers });
  assert.equal((await s3.call('PUT', '/s3/acl-shared')).status, 200);
  await s3.call('PUT', '/s3/acl-shared/o', { body: 'shared' });
  assertS3Error(await carolS3.call('GET', '/s3/acl-shared/o'), 403, 'AccessDenied');
  assert.equal((await swift('POST', '/acl-shared', { 'x-container-read': `${carol.projectId}:*`, 'x-container-write': `${carol.projectId}:*` })).status, 204);
  assert.equal((await carolS3.call('GET', '/s3/acl-shared/o')).text, 'shared');
  assert.deepEqual(xmlAll((await carolS3.call('GET', '/s3/acl-shared')).text, 'Key'), ['o']);
  assert.equal((await carolS3.call('PUT', '/s3/acl-shared/by-carol', { body: 'c' })).status, 200);
  // but the bucket's configuration stays its owner's
  assertS3Error(await carolS3.call('GET', '/s3/acl-shared', { query: 'acl' }), 403, 'AccessDenied');
  assertS3Error(await carolS3.call('DELETE', '/s3/acl-shared'), 403, 'AccessDenied');
  // a reader of the bucket's project reads and does not write
  const admin = (method: string, path: string, body?: unknown) => cloud.call(method, `/identity/v3${path}`, { token: cloud.adminToken, body });
  const u = await admin('POST', '/users', { user: { name: `reader-${process.pid}`, domain_id: 'default', password: 'reader-pw-1' } });
  const readerRole = ((await admin('GET', '/roles')).body.roles as Array<{ id: string; name: string }>).find((r) => r.name === 'reader')!;
  assert.equal((await admin('PUT', `/projects/${alice.projectId}/users/${u.body.user.id}/roles/${readerRole.id}`)).status, 204);
  const readerToken = await cloud.login(`reader-${process.pid}`, 'reader-pw-1', alice.projectId);
  const readerS3 = s3Client(cloud, await ec2Keys(cloud, { projectId: alice.projectId, userId: u.body.user.id, token: readerToken }));
  assert.equal((await readerS3.call('GET', '/s3/acl-shared/o')).text, 'shared');
  assert.equal((await readerS3.call('GET', '/s3/acl-shared')).status, 200);
  assertS3Error(await readerS3.call('PUT', '/s3/acl-shared/by-reader', { body: 'r' }), 403, 'AccessDenied');
  assertS3Error(await readerS3.call('PUT', '/s3/reader-made'), 403, 'AccessDenied');
  assertS3Error(await readerS3.call('DELETE', '/s3/acl-shared/o'), 403, 'AccessDenied');
});

test('a public current version opens no private older one: GET and copy by versionId are checked against the version served', async () => {
  assert.equal((await s3.call('PUT', '/s3/ver-pub')).status, 200);
  assert.equal((await s3.call('PUT', '/s3/ver-pub', { query: 'versioning', body: '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>' })).status, 200);
  const old = (await s3.call('PUT', '/s3/ver-pub/k', { body: 'private draft' })).headers.get('x-amz-version-id')!;
  assert.ok(old);
  assert.equal((await s3.call('PUT', '/s3/ver-pub/k', { body: 'published', headers: { 'x-amz-acl': 'public-read' } })).status, 200);
  assert.equal((await s3.raw('GET', '/s3/ver-pub/k')).text, 'published');
  assertS3Error(await s3.raw('GET', `/s3/ver-pub/k?versionId=${encodeURIComponent(old)}`), 403, 'AccessDenied');
  // bob copies into his own bucket: the public current version yes, the private old one no
  assert.equal((await bobS3.call('PUT', '/s3/bob-copies')).status, 200);
  assert.equal((await bobS3.call('PUT', '/s3/bob-copies/a', { headers: { 'x-amz-copy-source': '/ver-pub/k' } })).status, 200);
  assertS3Error(await bobS3.call('PUT', '/s3/bob-copies/b', { headers: { 'x-amz-copy-source': `/ver-pub/k?versionId=${encodeURIComponent(old)}` } }), 403, 'AccessDenied');
  // a version id that is not percent-encoding is the client's mistake
  assertS3Error(await s3.call('PUT', '/s3/ver-pub/c', { headers: { 'x-amz-copy-source': '/ver-pub/k?versionId=%ZZ' } }), 400, 'InvalidArgument');
});

test('every listing reads its parameters alike: a bad encoding-type or page size is InvalidArgument, an empty page size the default', async () => {
  assert.equal((await s3.call('PUT', '/s3/list-params')).status, 200);
  for (const query of ['', 'versions', 'uploads', 'list-type=2']) {
    const q = (extra: string) => [query, extra].filter(Boolean).join('&');
    const max = query === 'uploads' ? 'max-uploads' : 'max-keys';
    assertS3Error(await s3.call('GET', '/s3/list-params', { query: q('encoding-type=bogus') }), 400, 'InvalidArgument');
    assertS3Error(await s3.call('GET', '/s3/list-params', { query: q(`${max}=x`) }), 400, 'InvalidArgument');
    const empty = await s3.call('GET', '/s3/list-params', { query: q(`${max}=`) });
    assert.equal(empty.status, 200, `${query}: ${empty.text}`);
    assert.equal(xmlText(empty.text, query === 'uploads' ? 'MaxUploads' : 'MaxKeys'), '1000');
  }
});
