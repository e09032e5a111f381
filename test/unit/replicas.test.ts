// Several control-plane replicas as the agent and the fleet see them: the
// agent's failover between server URLs (real HTTP servers on loopback), and
// the agent token created once in the shared database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Kysely } from 'kysely';
import { AgentClient, HttpError, ServerList, serverUrls } from '../../src/agent/client.ts';
import { migrate, type Db } from '../../src/db/database.ts';
import { sqliteDialect } from '../../src/db/sqlite.ts';
import { agentTokenFor } from '../../src/fleet/token.ts';
import { PROTOCOL_VERSION } from '../../src/fleet/protocol.ts';

/** A loopback server whose answer the test sets; it counts the calls it got. */
async function replica(name: string) {
  const r = {
    name, calls: 0, status: 200,
    body: (): unknown => ({ served_by: name }),
    server: http.createServer((req, res) => {
      r.calls++;
      req.resume();
      req.on('end', () => {
        if (req.url?.endsWith('/file') && r.status === 200) {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          return res.end(`bytes from ${name}`);
        }
        res.writeHead(r.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(r.status === 200 ? r.body() : { error: name }));
      });
    }),
    url: '',
  };
  await new Promise<void>((ok) => r.server.listen(0, '127.0.0.1', ok));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
  return r;
}

/** A URL nothing listens on (a replica that is down). */
async function deadUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise((ok) => s.close(ok));
  return url;
}

const WATCH = { known: {}, wait: 0 };
const INFO = { protocol: PROTOCOL_VERSION, kinds: { server: ['container'] }, vcpus: 1, memory_mb: 1, disk_gb: 1, version: 't' };

test('--server takes one URL, repeated URLs and comma-separated ones; refuses what is not an http(s) URL', () => {
  assert.deepEqual(serverUrls('http://a:1/'), ['http://a:1']);
  assert.deepEqual(serverUrls(['http://a:1,http://b:2', 'https://c:3', 'http://a:1']), ['http://a:1', 'http://b:2', 'https://c:3']);
  assert.throws(() => serverUrls(['ftp://a']), /not an http\(s\) URL/);
  assert.throws(() => serverUrls('nonsense'), /not a URL/);
  assert.throws(() => serverUrls([' , ']), /at least one/);
});

test('a call moves to the next replica on a connection error or a 5xx, stays there, and goes round the list', async () => {
  const a = await replica('a');
  const b = await replica('b');
  const dead = await deadUrl();
  const client = new AgentClient([dead, a.url, b.url], 'x'.repeat(43), 'host-1');
  try {
    // the first is down: registration goes to whichever answers
    assert.deepEqual(await client.register(INFO), { served_by: 'a' });
    assert.equal(client.servers.current, a.url);
    a.status = 503;
    assert.deepEqual(await client.watch(WATCH), { served_by: 'b' }, 'a 5xx moves the watch on');
    assert.equal(a.calls, 2);
    await client.report({});
    assert.equal(b.calls, 2, 'later calls stay on the replica that answered');
    assert.equal(a.calls, 2);
    b.status = 502;
    a.status = 200;
    // b fails; the dead one is tried next (round the list), then a answers
    assert.deepEqual(await client.watch(WATCH), { served_by: 'a' });
    assert.equal(client.servers.current, a.url);
  } finally {
    client.close();
    a.server.close();
    b.server.close();
  }
});

test('a refusal (4xx) is the answer: no other replica is asked', async () => {
  const a = await replica('a');
  const b = await replica('b');
  const client = new AgentClient([a.url, b.url], 'x'.repeat(43), 'host-1');
  try {
    a.status = 409;
    await assert.rejects(client.report({}), (e: unknown) => e instanceof HttpError && e.status === 409);
    assert.equal(b.calls, 0);
    assert.equal(client.servers.current, a.url);
  } finally {
    client.close();
    a.server.close();
    b.server.close();
  }
});

test('every replica failing: the last failure is thrown; an aborted watch is not retried elsewhere', async () => {
  const a = await replica('a');
  const b = await replica('b');
  a.status = 500;
  b.status = 503;
  const client = new AgentClient([a.url, b.url], 'x'.repeat(43), 'host-1');
  try {
    await assert.rejects(client.watch(WATCH), (e: unknown) => e instanceof HttpError && e.status >= 500);
    assert.equal(a.calls + b.calls, 2, 'each replica tried once');
    const list = new ServerList([a.url, b.url]);
    const ac = new AbortController();
    let calls = 0;
    await assert.rejects(list.attempt(async () => {
      calls++;
      ac.abort();
      throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    }, ac.signal));
    assert.equal(calls, 1);
  } finally {
    client.close();
    a.server.close();
    b.server.close();
  }
});

test('an image download answered 503 by one replica (its store lacks the data) comes from the next', async () => {
  const a = await replica('a');
  const b = await replica('b');
  const dir = mkdtempSync(join(tmpdir(), 'stratus-failover-'));
  const client = new AgentClient([a.url, b.url], 'x'.repeat(43), 'host-1');
  try {
    a.status = 503;
    await client.downloadImage('img-1', join(dir, 'img'));
    assert.equal(readFileSync(join(dir, 'img'), 'utf8'), 'bytes from b');
  } finally {
    client.close();
    a.server.close();
    b.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent token: replicas starting together all keep the one stored first, and each writes it to its agent-token file', async () => {
  const db = new Kysely<any>({ dialect: sqliteDialect(':memory:') }) as Db;
  await migrate(db);
  const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'stratus-token-')));
  try {
    const tokens = await Promise.all(dirs.map((d) => agentTokenFor(db, d)));
    assert.equal(new Set(tokens).size, 1);
    assert.ok(tokens[0]!.length >= 32);
    for (const d of dirs) {
      assert.equal(readFileSync(join(d, 'agent-token'), 'utf8').trim(), tokens[0]);
      assert.equal(statSync(join(d, 'agent-token')).mode & 0o777, 0o600);
    }
    const rows = await db.selectFrom('fleet_secrets').selectAll().execute();
    assert.equal(rows.length, 1);
    // a later start reads it again; a stale file is rewritten
    writeFileSync(join(dirs[1]!, 'agent-token'), 'y'.repeat(43));
    assert.equal(await agentTokenFor(db, dirs[1]!), tokens[0]);
    assert.equal(readFileSync(join(dirs[1]!, 'agent-token'), 'utf8').trim(), tokens[0]);
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await db.destroy();
  }
});

test('upgrading a single server: the token its agents hold (its agent-token file) becomes the shared one', async () => {
  const db = new Kysely<any>({ dialect: sqliteDialect(':memory:') }) as Db;
  await migrate(db);
  const dir = mkdtempSync(join(tmpdir(), 'stratus-token-'));
  try {
    const old = 'z'.repeat(43);
    writeFileSync(join(dir, 'agent-token'), `${old}\n`, { mode: 0o600 });
    assert.equal(await agentTokenFor(db, dir), old);
    const row = await db.selectFrom('fleet_secrets').select('secret').executeTakeFirstOrThrow();
    assert.equal(row.secret, old);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await db.destroy();
  }
});
