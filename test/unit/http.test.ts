import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { Policy, PUBLIC } from '../../src/http/policy.ts';
import { Metrics } from '../../src/http/metrics.ts';
import type { Credentials } from '../../src/http/auth.ts';
import { identityRules } from '../../src/identity/policy.ts';
import { pino } from 'pino';
import { buildServer } from '../../src/http/server.ts';
import type { IdleMemory } from '../../src/http/idle-memory.ts';
import type { Service } from '../../src/http/service.ts';

const cred = (roles: string[], over: Partial<Credentials> = {}): Credentials => ({
  userId: 'u', userName: 'u', userDomainId: 'default', projectId: 'p', projectDomainId: 'default', domainId: null,
  system: false, roles: new Set(roles), roleIds: [], token: null, ...over,
});

test('policy: unknown rules and missing credentials deny; public allows', () => {
  const p = new Policy({ 'x:ok': () => true });
  assert.equal(p.allows('x:ok', cred([]), {}), true);
  assert.equal(p.allows('x:missing', cred(['admin']), {}), false);
  assert.equal(p.allows('x:ok', null, {}), false);
  assert.equal(p.allows(PUBLIC, null, {}), true);
});

test('identity personas: admin, domain reader, owner', () => {
  const p = new Policy(identityRules);
  assert.equal(p.allows('identity:create_user', cred(['member', 'reader']), { domain_id: 'default' }), false);
  assert.equal(p.allows('identity:create_user', cred(['admin']), { domain_id: 'default' }), true);
  const domainReader = cred(['reader'], { projectId: null, projectDomainId: null, domainId: 'd1' });
  assert.equal(p.allows('identity:list_users', domainReader, { domain_id: 'd1' }), true);
  assert.equal(p.allows('identity:list_users', domainReader, { domain_id: 'd2' }), false);
  assert.equal(p.allows('identity:get_user', cred(['member']), { user_id: 'u' }), true);
  assert.equal(p.allows('identity:get_user', cred(['member']), { user_id: 'someone-else' }), false);
  assert.equal(p.allows('identity:change_password', cred([]), { user_id: 'u' }), true);
});

test('metrics render counters and cumulative histogram buckets', () => {
  const m = new Metrics();
  m.observe('GET', '/a', 200, 0.003);
  m.observe('GET', '/a', 200, 0.2);
  const text = m.render();
  assert.match(text, /stratus_http_requests_total\{method="GET",route="\/a",status="200"\} 2/);
  assert.match(text, /le="0.005"\} 1\n/);
  assert.match(text, /le="0.25"\} 2\n/);
  assert.match(text, /le="\+Inf"\} 2\n/);
});

test('metrics keep series apart by method and status, and escape label values', () => {
  const m = new Metrics();
  m.observe('GET', '/a', 200, 0.001);
  m.observe('POST', '/a', 201, 0.001);
  m.observe('GET', '/a', 404, 0.001);
  m.observe('GET', '/b"\\\n', 200, 0.001);
  const text = m.render();
  assert.match(text, /stratus_http_requests_total\{method="POST",route="\/a",status="201"\} 1/);
  assert.match(text, /stratus_http_requests_total\{method="GET",route="\/a",status="404"\} 1/);
  assert.ok(text.includes('route="/b\\"\\\\\\n"'), 'quote, backslash and newline escaped');
  assert.equal(text.split('\n').filter((l) => l.startsWith('stratus_http_requests_total{')).length, 4);
});

test('the server tells the idle-memory clock of API responses, not of the /healthz and /metrics probes', async () => {
  const seen: string[] = [];
  const idleMemory = { noteActivity: () => seen.push('api') } as unknown as IdleMemory;
  const service: Service = {
    name: 'demo', prefix: '/demo', rules: {}, renderError: (e) => ({ error: e.message }),
    routes: [{ method: 'GET', path: '/thing', rule: PUBLIC, handler: async () => ({ ok: true }) }],
  };
  const app = buildServer({ logger: pino({ level: 'silent' }), authenticate: () => { throw new Error('no tokens here'); }, services: [service], idleMemory });
  try {
    for (const url of ['/healthz', '/metrics', '/healthz']) assert.equal((await app.inject({ url })).statusCode, 200);
    assert.deepEqual(seen, []);
    assert.equal((await app.inject({ url: '/demo/thing' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/demo/nothing' })).statusCode, 404);
    assert.deepEqual(seen, ['api', 'api']);
  } finally {
    await app.close();
  }
});

test('every GET route answers HEAD with its headers and no body, unless the service declares its own HEAD there', { timeout: 20_000 }, async () => {
  let stream: Readable | undefined;
  const service: Service = {
    name: 'demo', prefix: '/demo', rules: {}, renderError: (e) => ({ error: e.message }),
    routes: [
      { method: 'GET', path: '/thing', rule: PUBLIC, handler: async () => ({ name: 'thing' }) },
      { method: 'GET', path: '/check', rule: PUBLIC, handler: async () => ({ long: 'answer' }) },
      { method: 'HEAD', path: '/check', rule: PUBLIC, status: 204, handler: async () => undefined },
      { method: 'POST', path: '/only-post', rule: PUBLIC, handler: async () => ({}) },
      { method: 'GET', path: '/empty', rule: PUBLIC, handler: async () => undefined },
      {
        method: 'GET', path: '/file', rule: PUBLIC,
        handler: async (rc) => {
          // An endless download: a HEAD that read it through would never answer.
          stream = new Readable({ read() { this.push(Buffer.alloc(64 * 1024)); } });
          rc.reply.header('content-type', 'application/octet-stream').header('content-length', '1073741824');
          return rc.reply.send(stream);
        },
      },
    ],
  };
  const app = buildServer({ logger: pino({ level: 'silent' }), authenticate: () => { throw new Error('no tokens here'); }, services: [service] });
  try {
    const get = await app.inject({ url: '/demo/thing' });
    const head = await app.inject({ method: 'HEAD', url: '/demo/thing' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String(Buffer.byteLength(get.body)));
    assert.equal(head.headers['content-type'], get.headers['content-type']);
    assert.equal((await app.inject({ method: 'HEAD', url: '/demo/check' })).statusCode, 204);
    assert.equal((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'HEAD', url: '/demo/only-post' })).statusCode, 404);
    assert.equal((await app.inject({ method: 'HEAD', url: '/demo/empty' })).headers['content-length'], '0');
    const file = await app.inject({ method: 'HEAD', url: '/demo/file' });
    assert.equal(file.statusCode, 200);
    assert.equal(file.headers['content-length'], '1073741824');
    assert.equal(file.body, '');
    assert.equal(stream?.destroyed, true, 'the download stream is closed, not read');
  } finally {
    await app.close();
  }
});

test('the server loads neither Fastify\'s default validator nor its serializer compiler', async () => {
  const service: Service = {
    name: 'demo', prefix: '/demo', rules: {}, renderError: (e) => ({ error: e.message }),
    routes: [{ method: 'POST', path: '/thing', rule: PUBLIC, schema: { body: Type.Object({ name: Type.String() }) }, handler: async (rc) => rc.body }],
  };
  const app = buildServer({ logger: pino({ level: 'silent' }), authenticate: () => { throw new Error('no tokens here'); }, services: [service] });
  try {
    assert.equal((await app.inject({ method: 'POST', url: '/demo/thing', payload: { name: 'x' } })).statusCode, 200);
    const bad = await app.inject({ method: 'POST', url: '/demo/thing', payload: { name: 1 } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /Invalid input for request body: .*name must be string/);
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    assert.deepEqual(loaded.filter((k) => /@fastify\/(ajv-compiler|fast-json-stringify-compiler)\//.test(k)), []);
    assert.ok(loaded.some((k) => k.includes('/fastify/lib/')), 'the check looks where Fastify\'s modules are');
  } finally {
    await app.close();
  }
});
