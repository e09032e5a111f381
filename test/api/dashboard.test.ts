// The dashboard's files as the server hands them out (src/dashboard/service.ts),
// from a build directory of the test's own: the page at / and /dashboard/,
// hashed assets cached for a year, the page revalidated (ETag, 304), the
// precompressed variants by Accept-Encoding, the security headers on every
// answer, nothing outside assets/ reachable, and other unknown paths as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { after } from 'node:test';
import { useCloud } from '../harness.ts';

const dist = mkdtempSync(join(tmpdir(), 'stratus-ui-dist-'));
mkdirSync(join(dist, 'assets'));
const html = '<!doctype html><title>t</title><script type="module" src="/dashboard/assets/main-AAAA.js"></script>';
const js = 'console.log("dashboard");'.repeat(20);
writeFileSync(join(dist, 'index.html'), html);
writeFileSync(join(dist, 'assets', 'main-AAAA.js'), js);
writeFileSync(join(dist, 'assets', 'main-AAAA.js.br'), brotliCompressSync(js));
writeFileSync(join(dist, 'assets', 'main-AAAA.js.gz'), gzipSync(js));
writeFileSync(join(dist, 'secret.txt'), 'not an asset');
process.env.STRATUS_UI_DIST = dist;
after(() => rmSync(dist, { recursive: true, force: true }));

const cloud = useCloud();

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${cloud.url}${path}`, { headers });

test('the page at / and /dashboard/: no-cache with an ETag, 304 when unchanged, the security headers', async () => {
  for (const path of ['/', '/dashboard/', '/dashboard']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.equal(await r.text(), html);
    assert.match(r.headers.get('content-type')!, /^text\/html/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const csp = r.headers.get('content-security-policy')!;
    for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    const again = await get(path, { 'if-none-match': r.headers.get('etag')! });
    assert.equal(again.status, 304);
  }
  const head = await fetch(`${cloud.url}/`, { method: 'HEAD' });
  assert.equal(head.status, 200);
});

test('an asset: immutable for a year, brotli or gzip as accepted, plain otherwise', async () => {
  const br = await get('/dashboard/assets/main-AAAA.js', { 'accept-encoding': 'gzip, br' });
  assert.equal(br.status, 200);
  assert.equal(br.headers.get('content-encoding'), 'br');
  assert.equal(await br.text(), js);
  assert.equal(br.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.match(br.headers.get('content-type')!, /^text\/javascript/);
  assert.equal(br.headers.get('vary'), 'accept-encoding');
  const gz = await get('/dashboard/assets/main-AAAA.js', { 'accept-encoding': 'gzip' });
  assert.equal(gz.headers.get('content-encoding'), 'gzip');
  assert.equal(await gz.text(), js);
  const plain = await get('/dashboard/assets/main-AAAA.js', { 'accept-encoding': 'identity' });
  assert.equal(plain.headers.get('content-encoding'), null);
  assert.equal(await plain.text(), js);
});

test('nothing but the build\'s assets: no traversal, no compressed file by its own name; other paths answer as before', async () => {
  for (const path of ['/dashboard/assets/..%2fsecret.txt', '/dashboard/assets/%2e%2e%2fsecret.txt', '/dashboard/assets/main-AAAA.js.br', '/dashboard/assets/nope.js', '/dashboard/secret.txt', '/dashboard/assets/.hidden']) {
    const r = await get(path);
    assert.equal(r.status, 404, path);
    assert.doesNotMatch(await r.text(), /not an asset/);
  }
  const other = await get('/no-such-thing');
  assert.equal(other.status, 404);
  assert.match(await other.text(), /Route GET:\/no-such-thing not found/);
});
