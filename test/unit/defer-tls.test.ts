// src/http/defer-tls.ts: Fastify loads without node:tls, and a server started
// with a certificate still serves HTTPS through the stand-ins. Each case runs
// in a fresh Node process, since this one may have loaded node:tls already.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '../..');
const deferTls = pathToFileURL(join(root, 'src/http/defer-tls.ts')).href;

/** Runs an ES module body in a new Node process at the checkout's root; returns what it printed as JSON. */
function runModule(body: string): any {
  const out = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', body], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out);
}

const tlsModules = `() => process.moduleLoadList.filter((m) => /^NativeModule (tls|https|http2)$/.test(m)).map((m) => m.slice(13)).sort()`;

test('defer-tls: Fastify loads and serves plain HTTP without loading node:tls, https or http2', () => {
  const r = runModule(`
    const loaded = ${tlsModules};
    await import(${JSON.stringify(deferTls)});
    const { default: Fastify } = await import('fastify');
    const app = Fastify();
    app.get('/', async () => ({ ok: true }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await app.inject({ url: '/' });
    await app.close();
    console.log(JSON.stringify({ status: res.statusCode, loaded: loaded() }));
  `);
  assert.deepEqual(r, { status: 200, loaded: [] });
});

test('defer-tls: without it, Fastify loads them (the case this module is for)', () => {
  const r = runModule(`
    await import('fastify');
    console.log(JSON.stringify((${tlsModules})()));
  `);
  assert.deepEqual(r, ['http2', 'https', 'tls']);
});

test('defer-tls: a server given a certificate loads the real https and serves TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-defer-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore', timeout: 60_000 });
    const r = runModule(`
      const loaded = ${tlsModules};
      await import(${JSON.stringify(deferTls)});
      const { readFileSync } = await import('node:fs');
      const { default: Fastify } = await import('fastify');
      const before = loaded();
      const app = Fastify({ https: { key: readFileSync(${JSON.stringify(join(dir, 'key.pem'))}), cert: readFileSync(${JSON.stringify(join(dir, 'cert.pem'))}) } });
      app.get('/', async () => ({ ok: true }));
      await app.listen({ host: '127.0.0.1', port: 0 });
      const https = process.getBuiltinModule('node:https');
      const status = await new Promise((resolve, reject) => {
        https.get('https://127.0.0.1:' + app.server.address().port + '/', { rejectUnauthorized: false }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
      });
      const isTls = app.server instanceof https.Server;
      await app.close();
      console.log(JSON.stringify({ before, status, isTls }));
    `);
    assert.deepEqual(r, { before: [], status: 200, isTls: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('defer-tls: the stand-in answers like the module once looked at, and loads it then', () => {
  const r = runModule(`
    const loaded = ${tlsModules};
    await import(${JSON.stringify(deferTls)});
    const { createRequire } = await import('node:module');
    // A require from Fastify's server module gets the stand-in.
    const https = createRequire(${JSON.stringify(join(root, 'node_modules/fastify/lib/server.js'))})('node:https');
    const before = loaded();
    const real = process.getBuiltinModule('node:https');
    console.log(JSON.stringify({
      before, has: 'createServer' in https, keys: Object.keys(https).includes('Agent'),
      same: https.createServer === real.createServer, after: loaded(),
    }));
  `);
  assert.deepEqual(r, { before: [], has: true, keys: true, same: true, after: ['https', 'tls'] });
});

test('defer-tls: the stratus command imports it before Fastify loads', () => {
  const report = `process.on('exit', () => console.log(JSON.stringify({
    tls: (${tlsModules})(),
    fastify: Object.keys(process.getBuiltinModule('node:module').createRequire('/').cache).some((k) => k.endsWith('/fastify/lib/server.js')),
  })))`;
  const out = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', `data:text/javascript,${encodeURIComponent(report)}`,
    join(root, 'src/cli/main.ts'), '--help'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  // Fastify did load (for --help too: the CLI imports the server), without TLS.
  assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), { tls: [], fastify: true });
});
