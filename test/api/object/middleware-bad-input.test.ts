// Bad input to the Swift middleware features (TempURL, FormPost, SLO/DLO,
// bulk, versioning, quotas, CORS, static web): odd parameter, header and body
// values each get Swift's own refusal or a normal answer, never a 5xx.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { swiftTenant, raw } from './middleware-lib.ts';
const cloud = useCloud();
test('odd values in every middleware feature\'s parameters, headers and bodies: a Swift refusal, never a 500', async () => {
  const t = await swiftTenant(cloud);
  await t.call('PUT', 'fz', { headers: { 'X-Versions-Enabled': 'true', 'X-Container-Meta-Web-Listings': 'true', 'X-Container-Read': '.r:*,.rlistings', 'X-Container-Meta-Access-Control-Allow-Origin': '*' } });
  await t.call('PUT', 'fz/o', { body: 'x' });
  const odd = ['', '%', '%ff', '\u00e9', '..', 'a'.repeat(2000), '-1', '1e99', 'null', '0', '[]', '{}', '"', "'", '%00', 'x&y=z', ' '];
  const bad: string[] = [];
  const check = async (method: string, path: string, o: { anon?: boolean; body?: string; headers?: Record<string, string>; token?: string } = {}) => {
    const r = await (o.anon ? raw(cloud, method, path.startsWith('/') ? path : `${t.account}/${path}`, o) : t.call(method, path, o));
    if (r.status >= 500) bad.push(`${method} ${path} ${JSON.stringify(o.headers ?? {})} -> ${r.status} ${r.text.slice(0, 200)}`);
  };
  for (const v of odd) {
    const e = encodeURIComponent(v);
    await check('GET', `fz/o?temp_url_sig=${e}&temp_url_expires=${e}`, { anon: true });
    await check('GET', `fz/o?temp_url_sig=${'a'.repeat(64)}&temp_url_expires=9999999999&temp_url_ip_range=${e}`, { anon: true });
    await check('GET', `fz/o?temp_url_sig=${'a'.repeat(64)}&temp_url_expires=9999999999&temp_url_prefix=${e}`, { anon: true });
    await check('GET', `fz/o?version-id=${e}`);
    await check('DELETE', `fz/o2?version-id=${e}`);
    await check('GET', `fz?versions&limit=${e}&marker=${e}&version_marker=${e}`);
    await check('PUT', `fz/slo?multipart-manifest=put`, { body: v });
    await check('PUT', `fz/slo?multipart-manifest=put`, { body: JSON.stringify([{ path: v, range: v, size_bytes: v, etag: v }]) });
    await check('PUT', `fz/slo?multipart-manifest=put`, { body: JSON.stringify([{ data: v }]) });
    await check('PUT', `fz/dlo`, { body: '', headers: { 'X-Object-Manifest': v || 'x' } });
    await check('POST', `${t.account}?bulk-delete`, { body: `${v}\n${v}/${v}\n` });
    await check('PUT', `${t.account}?extract-archive=${e}`, { body: v });
    await check('PUT', `${t.account}?extract-archive=tar.gz`, { body: v });
    await check('PUT', `${t.account}?extract-archive=tar.bz2`, { body: v });
    await check('POST', `fz/form`, { body: v, headers: { 'Content-Type': `multipart/form-data; boundary=${v || 'b'}` } });
    await check('POST', `fz/form`, { anon: true, body: `--b\r\nContent-Disposition: form-data; name="${v}"; filename="${v}"\r\n\r\n${v}\r\n--b--`, headers: { 'Content-Type': 'multipart/form-data; boundary=b' } });
    await check('OPTIONS', `fz/o`, { headers: { Origin: v || 'x', 'Access-Control-Request-Method': v || 'GET', 'Access-Control-Request-Headers': v } });
    await check('GET', `fz/o`, { anon: true, headers: { Origin: v || 'x', Range: `bytes=${v}` } });
    await check('POST', `fz`, { headers: { 'X-Container-Meta-Quota-Bytes': v, 'X-Versions-Location': v, 'X-Versions-Enabled': v } });
    await check('POST', t.account, { token: cloud.adminToken, headers: { 'X-Account-Quota-Bytes': v, 'X-Account-Quota-Count': v } });
    await check('GET', `fz/${e}/`, { anon: true });
    await check('GET', `fz/${e}`, { anon: true, headers: { 'X-Web-Mode': 'true' } });
    await check('DELETE', `fz/${e}?multipart-manifest=delete`);
    await check('GET', `fz/${e}?multipart-manifest=get&format=raw`);
  }
  assert.deepEqual(bad, []);
});
