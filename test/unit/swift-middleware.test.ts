// The Swift middleware features' logic that needs no store: TempURL and
// FormPost signatures, the multipart reader, SLO manifests, bulk formats,
// CORS and quotas, checked against what Swift's middleware does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { ApiError } from '../../src/common/errors.ts';
import {
  extractDigest, ipInRange, normalizeExpires, tempUrlDisposition, tempUrlHmac, tempUrlQuery, verifyTempUrl, disallowedHeader, dropOutgoingHeader,
  type TempUrlCheck,
} from '../../src/object/swift/tempurl.ts';
import { formBoundary, formResponse, FormInvalid, FormUnauthorized, MimeInvalid, parseContentDisposition, readAttribute, readMultipart, titleCase, verifyForm, capped } from '../../src/object/swift/formpost.ts';
import { checkDloManifestHeader, dloEtag, parseSloManifest, planReads, sloEtag } from '../../src/object/swift/slo-manifest.ts';
import { readDeleteList, renderBulk } from '../../src/object/swift/bulk-format.ts';
import { bestFormat } from '../../src/object/swift/headers.ts';
import { decodePath, percentDecode } from '../../src/object/swift/request.ts';
import { escapeXml } from '../../src/common/text.ts';
import { corsInfo, corsResponseHeaders, OBJECT_METHODS, preflight } from '../../src/object/swift/cors.ts';
import { accountQuotaChanges, checkAccountQuota, checkContainerQuota, checkContainerQuotaHeaders } from '../../src/object/swift/quotas.ts';
import { swiftInfo } from '../../src/object/swift/info.ts';

const rejects401 = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof ApiError && e.status === 401 && e.message === '401 Unauthorized: Temp URL invalid\n');

test('TempURL: expiry as an integer or ISO 8601, past or malformed is 0', () => {
  assert.equal(normalizeExpires('2000000000', 1e9), 2000000000);
  assert.equal(normalizeExpires('2033-05-18T03:33:20Z', 1e9), 2000000000);
  assert.equal(normalizeExpires('999', 1e9), 0);
  assert.equal(normalizeExpires('2033-02-30T00:00:00Z', 1e9), 0);
  assert.equal(normalizeExpires('soon', 1e9), 0);
});

test('TempURL: digests as hex by length or <algo>:<base64>', () => {
  const mac = createHmac('sha256', 'k').update('x').digest();
  assert.deepEqual(extractDigest(mac.toString('hex')), { algo: 'sha256', hex: mac.toString('hex') });
  assert.deepEqual(extractDigest(`sha256:${mac.toString('base64')}`), { algo: 'sha256', hex: mac.toString('hex') });
  assert.deepEqual(extractDigest(`sha256:${mac.toString('base64url')}`), { algo: 'sha256', hex: mac.toString('hex') });
  assert.throws(() => extractDigest('abc'));
  assert.throws(() => extractDigest('zz'.repeat(20)));
});

test('TempURL: signatures verify as Swift signs them, from /v1 or with the /object prefix', () => {
  const now = 1_700_000_000;
  const expires = String(now + 100);
  const base: Omit<TempUrlCheck, 'query'> = {
    method: 'GET', account: 'AUTH_p', container: 'c', object: 'dir/o', clientIp: '10.0.0.5',
    accountKeys: ['akey'], containerKeys: ['ckey'], signedPrefixes: ['', '/object'], now,
  };
  const q = (sig: string, extra: Record<string, string> = {}) => tempUrlQuery({ temp_url_sig: sig, temp_url_expires: expires, ...extra })!;
  for (const algo of ['sha1', 'sha256', 'sha512']) {
    const sig = tempUrlHmac('GET', expires, '/v1/AUTH_p/c/dir/o', 'akey', algo);
    assert.equal(verifyTempUrl({ ...base, query: q(sig) }).scope, 'account');
  }
  const cs = tempUrlHmac('GET', expires, '/object/v1/AUTH_p/c/dir/o', 'ckey', 'sha256');
  assert.equal(verifyTempUrl({ ...base, query: q(cs) }).scope, 'container');
  // A HEAD may use a GET, PUT or POST signature; a GET may not use a PUT one.
  const put = tempUrlHmac('PUT', expires, '/v1/AUTH_p/c/dir/o', 'akey', 'sha256');
  assert.ok(verifyTempUrl({ ...base, method: 'HEAD', query: q(put) }));
  rejects401(() => verifyTempUrl({ ...base, query: q(put) }));
  // Another key, another object, an expired URL, no keys.
  rejects401(() => verifyTempUrl({ ...base, query: q(tempUrlHmac('GET', expires, '/v1/AUTH_p/c/dir/o', 'other', 'sha256')) }));
  rejects401(() => verifyTempUrl({ ...base, object: 'dir/p', query: q(cs) }));
  rejects401(() => verifyTempUrl({ ...base, now: now + 1000, query: q(cs) }));
  rejects401(() => verifyTempUrl({ ...base, accountKeys: [], containerKeys: [], query: q(cs) }));
  rejects401(() => verifyTempUrl({ ...base, method: 'COPY', query: q(cs) }));
  // A prefix URL: "prefix:" + the prefix path; the object must be under it.
  const ps = tempUrlHmac('GET', expires, 'prefix:/v1/AUTH_p/c/dir/', 'akey', 'sha256');
  assert.ok(verifyTempUrl({ ...base, query: q(ps, { temp_url_prefix: 'dir/' }) }));
  rejects401(() => verifyTempUrl({ ...base, object: 'other', query: q(ps, { temp_url_prefix: 'dir/' }) }));
  // A container root only with GET/HEAD and an empty prefix.
  const root = tempUrlHmac('GET', expires, 'prefix:/v1/AUTH_p/c/', 'akey', 'sha256');
  assert.ok(verifyTempUrl({ ...base, object: '', query: q(root, { temp_url_prefix: '' }) }));
  rejects401(() => verifyTempUrl({ ...base, object: '', query: q(root) }));
  // IP ranges go first in the signed text.
  const ip = tempUrlHmac('GET', expires, '/v1/AUTH_p/c/dir/o', 'akey', 'sha256', '10.0.0.0/24');
  assert.ok(verifyTempUrl({ ...base, query: q(ip, { temp_url_ip_range: '10.0.0.0/24' }) }));
  rejects401(() => verifyTempUrl({ ...base, clientIp: '10.0.1.5', query: q(ip, { temp_url_ip_range: '10.0.0.0/24' }) }));
  rejects401(() => verifyTempUrl({ ...base, query: q(ip) }));
  // Neither sig nor expires: not a TempURL at all.
  assert.equal(tempUrlQuery({ format: 'json' }), null);
  rejects401(() => verifyTempUrl({ ...base, query: tempUrlQuery({ temp_url_expires: expires })! }));
});

test('TempURL: IP ranges as Python ip_network reads them', () => {
  assert.ok(ipInRange('192.168.1.7', '192.168.1.7'));
  assert.ok(ipInRange('::ffff:192.168.1.7', '192.168.1.0/24'));
  assert.ok(ipInRange('2001:db8::1', '2001:db8::/32'));
  assert.ok(!ipInRange('2001:db9::1', '2001:db8::/32'));
  assert.ok(!ipInRange('10.0.0.1', '2001:db8::/32'));
  assert.throws(() => ipInRange('10.0.0.1', '10.0.0.1/24'), 'host bits set');
  assert.throws(() => ipInRange('10.0.0.1', 'nonsense'));
});

test('TempURL: headers in and out, and Content-Disposition', () => {
  assert.equal(disallowedHeader('PUT', { 'x-object-manifest': 'c/p' })?.message, "The header 'X-Object-Manifest' is not allowed in this tempurl");
  assert.equal(disallowedHeader('GET', { 'x-object-manifest': 'c/p' }), null);
  assert.ok(dropOutgoingHeader('X-Object-Meta-Secret'));
  assert.ok(!dropOutgoingHeader('X-Object-Meta-Public-Color'));
  const q = tempUrlQuery({ temp_url_sig: 'x', temp_url_expires: '1' })!;
  assert.equal(tempUrlDisposition(q, 'dir/my file.txt', undefined), `attachment; filename="my file.txt"; filename*=UTF-8''my%20file.txt`);
  assert.equal(tempUrlDisposition({ ...q, inline: true }, 'o', undefined), 'inline');
  assert.equal(tempUrlDisposition({ ...q, filename: 'é.txt' }, 'o', undefined), `attachment; filename="%C3%A9.txt"; filename*=UTF-8''%C3%A9.txt`);
  assert.equal(tempUrlDisposition(q, 'o', 'attachment; filename=x'), 'attachment; filename=x');
});

async function* chunks(s: string, size: number) {
  const b = Buffer.from(s);
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

test("FormPost: multipart parts read as they arrive, whatever the chunking (Tempest's form)", async () => {
  const boundary = '--boundary--';
  const form = [
    `--${boundary}`, 'Content-Disposition: form-data; name="redirect"', '', '',
    `--${boundary}`, 'Content-Disposition: form-data; name="max_file_size"', '', '104857600',
    `--${boundary}`, 'Content-Disposition: form-data; name="file1"; filename="testfile"', 'Content-Type: application/octet-stream', '', 'hello world',
    `--${boundary}`, 'Content-Disposition: form-data; name="file2"; filename="second"', '', '\r\n--bound not yet\r\n',
    `--${boundary}--`, '',
  ].join('\r\n');
  for (const size of [1, 3, 7, 64, 100000]) {
    const parts: Array<[Record<string, string>, string]> = [];
    for await (const p of readMultipart(chunks(form, size), boundary)) {
      const body: Buffer[] = [];
      for await (const c of p.body) body.push(c);
      parts.push([p.headers, Buffer.concat(body).toString()]);
    }
    assert.equal(parts.length, 4, `chunk size ${size}`);
    assert.equal(parts[0]![1], '');
    assert.equal(parts[1]![1], '104857600');
    assert.equal(parts[2]![0]['content-type'], 'application/octet-stream');
    assert.equal(parts[2]![1], 'hello world');
    assert.equal(parts[3]![1], '\r\n--bound not yet\r\n');
    assert.deepEqual(parseContentDisposition(parts[2]![0]['content-disposition']!), ['form-data', { name: 'file1', filename: 'testfile' }]);
  }
  // A part left unread is skipped.
  let n = 0;
  for await (const _ of readMultipart(chunks(form, 5), boundary)) n++;
  assert.equal(n, 4);
  await assert.rejects(async () => { for await (const _ of readMultipart(chunks('garbage\r\n', 4), boundary)); }, MimeInvalid);
  assert.equal(formBoundary('multipart/form-data; boundary=--boundary--'), '--boundary--');
  assert.equal(formBoundary('application/json'), null);
  assert.equal(await readAttribute(chunks('value\r\n--', 2)), 'value');
});

test('FormPost: signature, expiry and limits as Swift checks them', async () => {
  const now = 1_700_000_000;
  const attrs = { redirect: '', max_file_size: '1024', max_file_count: '10', expires: String(now + 60) };
  const body = `/v1/AUTH_p/c/o\n\n1024\n10\n${now + 60}`;
  const signature = createHmac('sha1', 'key').update(body).digest('hex');
  assert.deepEqual(verifyForm({ paths: ['/v1/AUTH_p/c/o'], attributes: { ...attrs, signature }, keys: ['key'], now }), { maxFileSize: 1024 });
  assert.throws(() => verifyForm({ paths: ['/v1/AUTH_p/c/o'], attributes: { ...attrs, signature }, keys: ['wrong'], now }), FormUnauthorized);
  assert.throws(() => verifyForm({ paths: ['/v1/AUTH_p/c/o'], attributes: { ...attrs, signature }, keys: ['key'], now: now + 61 }), /form expired/);
  assert.throws(() => verifyForm({ paths: ['/v1/AUTH_p/c/o'], attributes: { ...attrs, expires: 'x', signature }, keys: ['key'], now }), FormInvalid);
  assert.equal(titleCase('invalid signature'), 'Invalid Signature');
  await assert.rejects(async () => { for await (const _ of capped(chunks('x'.repeat(10), 3), 5)); }, /max_file_size exceeded/);
  const ok = formResponse(201, 'Created', '', undefined);
  assert.equal(ok.body.toString(), '201 Created');
  const redirect = formResponse(400, 'Bad Request', 'max file count exceeded', 'https://x/?a=1');
  assert.equal(redirect.status, 303);
  assert.equal(redirect.headers.location, 'https://x/?a=1&status=400&message=max%20file%20count%20exceeded');
});

test("SLO: manifests checked as Swift's parse_and_validate_input", () => {
  const good = parseSloManifest(Buffer.from(JSON.stringify([
    { path: '/c/a', etag: 'e', size_bytes: '5' }, { path: 'c/b', etag: null, size_bytes: null, range: '1-2' }, { data: Buffer.from('hi').toString('base64') },
  ])), 'c/m');
  assert.equal(good.length, 3);
  assert.deepEqual(good[0], { kind: 'path', path: '/c/a', etag: 'e', sizeBytes: 5, range: null });
  const err = (body: unknown) => {
    try {
      parseSloManifest(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), 'c/m');
    } catch (e) {
      assert.ok(e instanceof ApiError);
      return `${e.status} ${e.message}`;
    }
    return 'accepted';
  };
  assert.equal(err('{not json'), '400 Manifest must be valid JSON.\n');
  assert.equal(err({}), '400 Manifest must be a list.\n');
  assert.equal(err([1, { x: 1 }, { path: 'c/a', foo: 1 }, { path: 'nocontainer' }, { path: 'c/a', size_bytes: 'x' }, { path: '/c/m' }, { path: 'c/a', range: 'x' }, { path: 'c/a', size_bytes: 0 }, { path: 'c/z' }]),
    '400 Index 0: not a JSON object\nIndex 1: expected keys to include one of \'data\' or \'path\'\nIndex 2: extraneous keys "foo"\n'
    + 'Index 3: path does not refer to an object. Path must be of the form /container/object.\nIndex 4: invalid size_bytes\n'
    + 'Index 5: manifest must not include itself as a segment\nIndex 6: invalid range\nIndex 7: too small; each segment must be at least 1 byte.\n');
  assert.equal(err([{ data: 'aGk=' }]), '400 Inline data segments require at least one object-backed segment.\n');
  assert.equal(err([{ path: 'c/a', range: '0-1,3-4' }]), '400 Index 0: multiple ranges (only one allowed)\n');
  assert.equal(err(Array.from({ length: 1001 }, (_, i) => ({ path: `c/${i}` }))), '413 Number of object-backed segments must be <= 1000');
});

test('SLO and DLO: etags, the manifest header, ranges over segments', () => {
  // Swift: md5 of the concatenated segment etags (a range adds ":<range>;").
  assert.equal(sloEtag([{ hash: 'a' }, { hash: 'b', range: '0-1' }]), md5hex('ab:0-1;'));
  assert.equal(dloEtag(['"x"', 'y']), md5hex('xy'));
  checkDloManifestHeader('c/prefix');
  for (const bad of ['c', '/p', 'c/', 'c//p', 'c/p?x', 'c/p&x']) assert.throws(() => checkDloManifestHeader(bad), /container\/prefix/);
  const segs = [{ segment: 'a', length: 3 }, { segment: 'b', length: 0 }, { segment: 'c', length: 4 }];
  assert.deepEqual(planReads(segs, 0, 7), [{ segment: 'a', offset: 0, length: 3 }, { segment: 'c', offset: 0, length: 4 }]);
  assert.deepEqual(planReads(segs, 2, 5), [{ segment: 'a', offset: 2, length: 1 }, { segment: 'c', offset: 0, length: 2 }]);
  assert.deepEqual(planReads(segs, 5, 7), [{ segment: 'c', offset: 2, length: 2 }]);
});

function md5hex(s: string): string {
  return createHash('md5').update(s).digest('hex');
}
test('bulk: the delete list, the answer format, its bodies', async () => {
  assert.deepEqual(await readDeleteList(chunks('c/o%20x\n\n  c2 \nc3', 3)), ['c/o x', 'c2', 'c3']);
  assert.equal(bestFormat(undefined), 'text/plain');
  assert.equal(bestFormat('application/json'), 'application/json');
  assert.equal(bestFormat('text/xml;q=0.5, application/json;q=0.9'), 'application/json');
  assert.equal(bestFormat('*/*'), 'text/plain');
  assert.equal(bestFormat('image/png'), null);
  // as swob's best_match, the one negotiation of listings and bulk answers: the best quality of any matching range, ties to the earlier format
  assert.equal(bestFormat('text/plain;q=0.1, */*'), 'text/plain');
  assert.equal(bestFormat('application/json;q=0, text/*;q=0.3'), 'text/plain');
  assert.equal(bestFormat('application/*;q=0.8, text/xml'), 'text/xml');
  const r = { 'Number Deleted': 2, 'Number Not Found': 0, 'Response Body': '', 'Response Status': '200 OK' };
  assert.deepEqual(JSON.parse(renderBulk('application/json', r, [['c/x', '409 Conflict']], 'delete')), { ...r, Errors: [['c/x', '409 Conflict']] });
  assert.equal(renderBulk('text/plain', r, [], 'delete'), 'Number Deleted: 2\nNumber Not Found: 0\nResponse Body: \nResponse Status: 200 OK\nErrors:\n');
  // the one XML escaping (common/text.ts): the five characters as references, what XML cannot hold dropped
  assert.equal(escapeXml(`a&b<c>"d'\u0001`), 'a&amp;b&lt;c&gt;&quot;d&#x27;');
  assert.match(renderBulk('application/xml', r, [['a&b', '409 Conflict']], 'delete'), /^<delete>\n<number_deleted>2<\/number_deleted>\n[\s\S]*<object><name>a&amp;b<\/name><status>409 Conflict<\/status><\/object>\n<\/errors>\n<\/delete>\n$/);
});

test('CORS: preflight and actual answers in strict mode', () => {
  const cors = corsInfo({ 'Access-Control-Allow-Origin': 'http://a.example http://b.example', 'access-control-max-age': '60', 'access-control-expose-headers': 'X-Foo' });
  const ok = preflight(OBJECT_METHODS, cors, { origin: 'http://a.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-auth-token, content-type' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['access-control-allow-origin'], 'http://a.example');
  assert.equal(ok.headers['access-control-max-age'], '60');
  assert.equal(ok.headers['access-control-allow-headers'], 'x-auth-token, content-type');
  assert.equal(ok.headers.vary, 'Origin, Access-Control-Request-Headers');
  assert.equal(preflight(OBJECT_METHODS, cors, { origin: 'http://c.example', 'access-control-request-method': 'PUT' }).status, 401);
  assert.equal(preflight(OBJECT_METHODS, cors, { origin: 'http://a.example', 'access-control-request-method': 'TRACE' }).status, 401);
  assert.deepEqual(preflight(OBJECT_METHODS, null, { origin: 'http://a.example' }), { status: 200, headers: { allow: OBJECT_METHODS.join(', ') } });
  const h = corsResponseHeaders('http://b.example', cors, { 'X-Object-Meta-Color': 'red' });
  assert.equal(h['access-control-allow-origin'], 'http://b.example');
  assert.match(h['access-control-expose-headers']!, /x-object-meta-color/);
  assert.match(h['access-control-expose-headers']!, /x-foo/);
  assert.deepEqual(corsResponseHeaders('http://c.example', cors, {}), {});
  assert.equal(corsResponseHeaders('http://z', corsInfo({ 'access-control-allow-origin': '*' }), {})['access-control-allow-origin'], '*');
});

test('quotas: container metadata, account sysmeta by reseller admins only', () => {
  assert.throws(() => checkContainerQuotaHeaders({ 'x-container-meta-quota-bytes': '-1' }), /Invalid bytes quota/);
  assert.throws(() => checkContainerQuotaHeaders({ 'x-container-meta-quota-count': 'x' }), /Invalid count quota/);
  checkContainerQuotaHeaders({ 'x-container-meta-quota-bytes': '' });
  checkContainerQuota({ 'quota-bytes': '10' }, { bytes: 5, count: 0 }, 5);
  assert.throws(() => checkContainerQuota({ 'Quota-Bytes': '10' }, { bytes: 5, count: 0 }, 6), (e: unknown) => e instanceof ApiError && e.status === 413 && e.message === 'Upload exceeds quota.');
  assert.throws(() => checkContainerQuota({ 'quota-count': '1' }, { bytes: 0, count: 1 }, 0), /exceeds/);
  assert.deepEqual(accountQuotaChanges({ 'x-account-meta-quota-bytes': '20', 'x-account-quota-count': '5' }, true), { 'quota-bytes': '20', 'quota-count': '5' });
  assert.deepEqual(accountQuotaChanges({ 'x-remove-account-meta-quota-bytes': 'x' }, true), { 'quota-bytes': '' });
  assert.deepEqual(accountQuotaChanges({ 'x-account-meta-color': 'x' }, false), {});
  assert.throws(() => accountQuotaChanges({ 'x-account-meta-quota-bytes': '100' }, false), (e: unknown) => e instanceof ApiError && e.status === 403);
  assert.throws(() => accountQuotaChanges({ 'x-account-quota-bytes': 'x' }, true), (e: unknown) => e instanceof ApiError && e.status === 400);
  checkAccountQuota({ 'quota-bytes': '20' }, {}, { bytes: 0, count: 0 }, 20);
  assert.throws(() => checkAccountQuota({ 'quota-bytes': '20' }, {}, { bytes: 0, count: 0 }, 21), /exceeds/);
  assert.throws(() => checkAccountQuota({}, { 'quota-bytes': '20' }, { bytes: 20, count: 0 }, 1), /exceeds/, 'the legacy meta quota');
  assert.throws(() => checkAccountQuota({ 'quota-count': '0' }, {}, { bytes: 0, count: 0 }, 0), /exceeds/);
});

test('/info: the swift section and one per feature', () => {
  const info = swiftInfo() as Record<string, Record<string, unknown>>;
  assert.equal(info.swift!.max_file_size, 5368709122);
  assert.equal(info.swift!.container_listing_limit, 10000);
  assert.deepEqual(info.tempurl!.methods, ['GET', 'HEAD', 'PUT', 'POST', 'DELETE']);
  for (const s of ['formpost', 'slo', 'bulk_delete', 'bulk_upload', 'versioned_writes', 'container_quotas', 'account_quotas', 'staticweb']) assert.ok(info[s], s);
});

test('the one percent-decoding of object paths: escapes and raw bytes read as UTF-8; Swift 412s and S3 refuses what is not UTF-8', () => {
  assert.equal(percentDecode('a%20b%2Fc'), 'a b/c');
  assert.equal(percentDecode('caf%C3%A9'), 'café');
  assert.equal(percentDecode(Buffer.from('café').toString('latin1')), 'café', 'raw bytes of the request line');
  assert.equal(percentDecode('100%zz'), '100%zz', 'an escape that is not two hex digits stays');
  assert.equal(percentDecode('%FF'), null);
  assert.equal(decodePath('a%2Fb'), 'a/b');
  assert.throws(() => decodePath('%C3'), (e: unknown) => e instanceof ApiError && e.status === 412);
});
