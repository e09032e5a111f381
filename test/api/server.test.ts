// The server shell: TLS, request ids in JSON logs, no secrets in logs, lockout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import https from 'node:https';
import { pino } from 'pino';
import { startCloud } from '../harness.ts';

test('serves HTTPS when given a certificate and key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  // The harness's own calls (fetch) must accept the self-signed certificate.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const cloud = await startCloud({ tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') } });
  t.after(() => cloud.close());
  assert.match(cloud.url, /^https:/);
  const body = await new Promise<string>((resolve, reject) => {
    https.get(`${cloud.url}/identity/v3`, { rejectUnauthorized: false }, (res) => {
      let s = '';
      res.on('data', (c) => (s += c));
      res.on('end', () => resolve(s));
    }).on('error', reject);
  });
  assert.equal(JSON.parse(body).version.id, 'v3.14');
});

test('logs are JSON with the request id, and carry no password or token', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  const cloud = await startCloud({ logger: pino({ level: 'debug' }, sink) });
  t.after(() => cloud.close());
  const r = await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: 'a-wrong-password-xyz' } } } } },
  });
  assert.equal(r.status, 401);
  await cloud.call('GET', '/identity/v3/domains', { token: cloud.adminToken });
  const requestId = r.headers.get('x-openstack-request-id')!;
  const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(entries.some((e) => e.request_id === requestId && e.status === 401), 'the failed request is logged with its request id');
  const all = lines.join('\n');
  assert.ok(!all.includes('a-wrong-password-xyz'), 'no password in the logs');
  assert.ok(!all.includes(cloud.adminToken), 'no token in the logs');
  assert.ok(!all.includes(cloud.adminPassword), 'no admin password in the logs');
});

test('lockout after N failed attempts, when turned on; the error does not reveal the user exists', async (t) => {
  const cloud = await startCloud({ identity: { lockoutFailureAttempts: 2, lockoutDuration: 600 } });
  t.after(() => cloud.close());
  const attempt = (password: string) => cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } } } },
  });
  assert.equal((await attempt('bad-1')).status, 401);
  assert.equal((await attempt('bad-2')).status, 401);
  const locked = await attempt(cloud.adminPassword);
  assert.equal(locked.status, 401, 'locked out even with the right password');
});
