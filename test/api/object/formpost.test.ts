// FormPost over HTTP: Tempest's form (signed with the /object path, or
// Swift's /v1 path), several files, redirect, limits, expiry and a forged
// signature (Swift's 401 texts), and nothing stored from a refused form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { expectStatus, hmacHex, raw, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
const cloud = useCloud(async (c) => {
  s = await swiftTenant(c);
  expectStatus(await s.call('POST', s.account, { headers: { 'X-Account-Meta-Temp-URL-Key': 'Meta' } }), 204);
  expectStatus(await s.call('PUT', 'fc'), 201);
});

function form(path: string, o: { key?: string; expires?: number; redirect?: string; maxSize?: number; maxCount?: number; files?: Array<[string, string]>; signPath?: string } = {}) {
  const expires = o.expires ?? Math.floor(Date.now() / 1000) + 600;
  const maxSize = o.maxSize ?? 104857600;
  const maxCount = o.maxCount ?? 10;
  const redirect = o.redirect ?? '';
  const signature = hmacHex('sha1', o.key ?? 'Meta', `${o.signPath ?? path}\n${redirect}\n${maxSize}\n${maxCount}\n${expires}`);
  const boundary = '--boundary--';
  const lines: string[] = [];
  for (const [k, v] of Object.entries({ redirect, max_file_size: String(maxSize), max_file_count: String(maxCount), expires: String(expires), signature })) {
    lines.push(`--${boundary}`, `Content-Disposition: form-data; name="${k}"`, '', v);
  }
  for (const [name, data] of o.files ?? [['testfile', 'hello world']]) {
    lines.push(`--${boundary}`, `Content-Disposition: form-data; name="file1"; filename="${name}"`, 'Content-Type: application/octet-stream', '', data);
  }
  lines.push(`--${boundary}--`, '');
  return { body: lines.join('\r\n'), headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } };
}

test("Tempest's form: POSTed to an object path with a token, the file lands at <object><filename>", async () => {
  const path = `${s.account}/fc/obj`;
  const r = await s.call('POST', path, form(path));
  expectStatus(r, 201);
  assert.equal(r.text, '201 Created');
  assert.ok(r.headers.get('x-trans-id'));
  assert.equal((await s.call('GET', 'fc/objtestfile')).text, 'hello world');
});

test('anonymous, to a container, several files, Swift\'s /v1 path signed, redirect with status', async () => {
  const path = `${s.account}/fc`;
  const f = form(path, { signPath: `/v1/AUTH_${s.t.projectId}/fc`, files: [['a.txt', 'A'], ['b.txt', 'BB']], redirect: 'https://example.com/done' });
  const r = await raw(cloud, 'POST', path, f);
  expectStatus(r, 303);
  assert.equal(r.headers.get('location'), 'https://example.com/done?status=201&message=');
  assert.equal((await s.call('GET', 'fc/a.txt')).text, 'A');
  assert.equal((await s.call('GET', 'fc/b.txt')).text, 'BB');
});

test('expired, forged, too big, too many: the form is refused and nothing more is stored', async () => {
  const path = `${s.account}/fc/neg`;
  let r = await raw(cloud, 'POST', path, form(path, { expires: Math.floor(Date.now() / 1000) - 5 }));
  expectStatus(r, 401);
  assert.match(r.text, /FormPost: Form Expired/);
  r = await raw(cloud, 'POST', path, form(path, { key: 'Wrong' }));
  expectStatus(r, 401);
  assert.match(r.text, /FormPost: Invalid Signature/);
  r = await raw(cloud, 'POST', path, form(path, { maxSize: 3 }));
  expectStatus(r, 400);
  assert.match(r.text, /FormPost: max_file_size exceeded/);
  expectStatus(await s.call('HEAD', 'fc/negtestfile'), 404);
  r = await raw(cloud, 'POST', path, form(path, { maxCount: 1, files: [['one', '1'], ['two', '2']] }));
  expectStatus(r, 400);
  assert.match(r.text, /FormPost: Max File Count Exceeded/);
  expectStatus(await s.call('HEAD', 'fc/negone'), 200);
  expectStatus(await s.call('HEAD', 'fc/negtwo'), 404);
  r = await raw(cloud, 'POST', path, { body: 'not a form', headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' } });
  expectStatus(r, 400);
  assert.match(r.text, /FormPost: invalid starting boundary/);
  r = await raw(cloud, 'POST', path, { body: '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--\r\n', headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' } });
  expectStatus(r, 400);
  assert.match(r.text, /FormPost: No Files To Process/);
});
