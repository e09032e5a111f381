// Serial consoles through the API, end to end but for the host: console URLs
// and tokens (os-getSerialConsole, remote-consoles, os-console-auth-tokens),
// the console WebSocket on the server's public port, and the agent's stream
// channel that carries it. The host side is a real StreamChannel (the agent's
// module) whose serial-console provider is a test double: it greets, and
// answers every write with "echo:" + what it got.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { useCloud } from '../../harness.ts';
import { StreamChannel } from '../../../src/agent/stream.ts';
import { adminNova, projectUser, type Nova } from './lib.ts';

const HOST = 'console-host';
let admin: Nova;
let alice: Nova;
let bob: Nova;
let imageId: string;
let channel: StreamChannel;
/** The provider's sessions, by server id: what each received, and whether it is closed. */
const sessions: Array<{ serverId: string; got: Buffer[]; closed: boolean }> = [];

const cloud = useCloud(async (cloud) => {
  admin = await adminNova(cloud);
  alice = await projectUser(cloud, ['member']);
  bob = await projectUser(cloud, ['member']);
  const c = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'img', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
  imageId = c.body.id;
  await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(512) });
  const now = new Date().toISOString();
  await db().insertInto('compute_hosts').values({
    id: crypto.randomUUID(), hostname: HOST, service_id: crypto.randomUUID(), kinds: '["container"]', vcpus: 64, memory_mb: 262144, disk_gb: 2000,
    cpu_allocation_ratio: 16, ram_allocation_ratio: 1.5, disk_allocation_ratio: 1, availability_zone: 'nova', status: 'enabled',
    disabled_reason: null, forced_down: 0, host_ip: '127.0.0.1', agent_version: 'test', last_seen_at: new Date(Date.now() + 3600_000).toISOString(), created_at: now,
  }).execute();
  channel = new StreamChannel({
    server: cloud.url, token: readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim(), hostname: HOST, log: pino({ level: 'silent' }),
    providers: {
      'serial-console': async (args) => {
        const session = { serverId: String(args.server_id), got: [] as Buffer[], closed: false };
        sessions.push(session);
        const d: Duplex = new Duplex({
          read() {},
          write(chunk: Buffer, _enc, cb) {
            session.got.push(chunk);
            d.push(Buffer.concat([Buffer.from('echo:'), chunk]));
            cb();
          },
          destroy(err, cb) {
            session.closed = true;
            cb(err);
          },
        });
        d.push(`console of ${session.serverId}\r\n`);
        return d;
      },
    },
  });
  channel.start();
  await channel.waitOpen();
});
after(() => channel?.stop());

const db = () => cloud.server.database.db;

async function activeServer(owner: Nova): Promise<string> {
  const r = await owner.call('POST', '/servers', { body: { server: { name: 'c', imageRef: imageId, flavorRef: '1', networks: 'none' } }, version: '2.37' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  const now = new Date().toISOString();
  await db().updateTable('compute_servers').set({ kind: 'container', host: HOST, vm_state: 'active', task_state: null, power_state: 1, launched_at: now, updated_at: now }).where('id', '=', id).execute();
  return id;
}

/** A console session's socket and everything it received so far (kept from the start: the greeting may come with the handshake). */
interface Session { ws: WebSocket; until(want: string): Promise<string> }

/** Connects to a console URL; resolves with the session once open, or the HTTP status it was refused with. */
function connect(url: string, protocols: string[] = ['binary']): Promise<Session | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    let text = '';
    const waiters: Array<() => void> = [];
    ws.on('message', (d: Buffer) => {
      text += d.toString('utf8');
      for (const w of waiters.splice(0)) w();
    });
    const until = async (want: string) => {
      while (!text.includes(want)) await new Promise<void>((r) => waiters.push(r));
      return text;
    };
    ws.on('open', () => resolve({ ws, until }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', reject);
  });
}

test('console URLs: os-getSerialConsole (2.1-2.5), remote-consoles (2.6+), and their refusals', async () => {
  const id = await activeServer(alice);
  const a = await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getSerialConsole': { type: 'serial' } } });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.console.type, 'serial');
  assert.match(a.body.console.url, new RegExp(`^ws://127\\.0\\.0\\.1:\\d+/compute/serial-console\\?token=[0-9a-f-]{36}$`));
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.remote_console.protocol, 'serial');
  assert.equal(r.body.remote_console.type, 'serial');
  assert.match(r.body.remote_console.url, /^ws:\/\/.*\/compute\/serial-console\?token=/);
  assert.notEqual(r.body.remote_console.url, a.body.console.url);

  // the action is gone at 2.6, the resource does not exist before it
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { version: '2.6', body: { 'os-getSerialConsole': { type: 'serial' } } })).status, 404);
  assert.equal((await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.5', body: { remote_console: { protocol: 'serial', type: 'serial' } } })).status, 404);
  // a container has no VNC console; a serial console has no other type; bad bodies
  const vnc = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
  assert.equal(vnc.status, 400);
  assert.match(vnc.body.badRequest.message, /Unavailable console type novnc/);
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getVNCConsole': { type: 'novnc' } } })).status, 400);
  assert.equal((await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'novnc' } } })).status, 400);
  assert.equal((await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'nope' } } })).status, 400);
  assert.equal((await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'mks', type: 'webmks' } } })).status, 400);
  assert.equal((await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial' } } })).status, 400);
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getSerialConsole': { type: 'novnc' } } })).status, 400);
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getSerialConsole': {} } })).status, 400);
  // another project's server does not exist; an unknown one neither
  assert.equal((await bob.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } })).status, 404);
  assert.equal((await alice.call('POST', `/servers/${crypto.randomUUID()}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } })).status, 404);
  // a server that is not running has no console
  await db().updateTable('compute_servers').set({ vm_state: 'stopped', power_state: 4 }).where('id', '=', id).execute();
  const stopped = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } });
  assert.equal(stopped.status, 409);
  assert.match(stopped.body.conflictingRequest.message, /is not ready/);
});

test('os-console-auth-tokens: the admin checks a token (2.31+ for serial consoles)', async () => {
  const id = await activeServer(alice);
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } });
  const token = new URL(r.body.remote_console.url).searchParams.get('token')!;
  const shown = await admin.call('GET', `/os-console-auth-tokens/${token}`, { version: '2.31' });
  assert.equal(shown.status, 200, JSON.stringify(shown.body));
  assert.equal(shown.body.console.instance_uuid, id);
  assert.equal(shown.body.console.host, HOST);
  assert.equal((await admin.call('GET', `/os-console-auth-tokens/${token}`, { version: '2.30' })).status, 401);
  assert.equal((await admin.call('GET', `/os-console-auth-tokens/${crypto.randomUUID()}`, { version: '2.31' })).status, 404);
  assert.equal((await alice.call('GET', `/os-console-auth-tokens/${token}`, { version: '2.31' })).status, 403);
  // only the token's hash is stored
  const rows = await db().selectFrom('compute_console_auth_tokens').select('token_hash').execute();
  assert.ok(rows.length > 0 && rows.every((x) => x.token_hash !== token && /^[0-9a-f]{64}$/.test(x.token_hash)));
});

test('the console WebSocket: bytes both ways through the agent stream, binary subprotocol; the session ends with the socket', async () => {
  const id = await activeServer(alice);
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } });
  const c = await connect(r.body.remote_console.url);
  assert.ok('ws' in c, JSON.stringify(c));
  const { ws } = c;
  assert.equal(ws.protocol, 'binary');
  assert.match(await c.until('\r\n'), new RegExp(`console of ${id}`));
  ws.send(Buffer.from('ls -l\n'));
  await c.until('echo:ls -l\n');
  const session = sessions.find((s) => s.serverId === id)!;
  assert.equal(Buffer.concat(session.got).toString(), 'ls -l\n');
  // a token may be used again until it expires (as in Nova)
  const again = await connect(r.body.remote_console.url);
  assert.ok('ws' in again);
  again.ws.close();
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  const mine = () => sessions.filter((s) => s.serverId === id);
  for (let i = 0; i < 500 && !mine().every((s) => s.closed); i++) await new Promise((r2) => setTimeout(r2, 10));
  assert.deepEqual(mine().map((s) => s.closed), [true, true], 'the provider side of a closed console is closed');
});

test('the console WebSocket refuses bad, missing and expired tokens, plain HTTP, and a server no longer running', async () => {
  const id = await activeServer(alice);
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } });
  const url = new URL(r.body.remote_console.url);
  const token = url.searchParams.get('token')!;
  const bad = await connect(`${url.origin}${url.pathname}?token=${crypto.randomUUID()}`);
  assert.equal('status' in bad && bad.status, 401);
  assert.ok('body' in bad && !bad.body.includes(token));
  const missing = await connect(`${url.origin}${url.pathname}`);
  assert.equal('status' in missing && missing.status, 401);
  // plain HTTP with a good token: this resource only speaks WebSocket
  const plain = await fetch(url.toString().replace(/^ws/, 'http'));
  assert.equal(plain.status, 400);
  // stopped since the URL was issued
  await db().updateTable('compute_servers').set({ vm_state: 'stopped' }).where('id', '=', id).execute();
  const stopped = await connect(url.toString());
  assert.equal('status' in stopped && stopped.status, 409);
  await db().updateTable('compute_servers').set({ vm_state: 'active' }).where('id', '=', id).execute();
  // expired
  await db().updateTable('compute_console_auth_tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('server_id', '=', id).execute();
  const expired = await connect(url.toString());
  assert.equal('status' in expired && expired.status, 401);
});

test('the agent stream channel wants the agent token', async () => {
  const base = cloud.url.replace(/^http/, 'ws');
  const none = await connect(`${base}/agent/v1/hosts/${HOST}/stream`, []);
  assert.equal('status' in none && none.status, 401);
  const wrong = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${base}/agent/v1/hosts/${HOST}/stream`, { headers: { 'x-stratus-agent-token': 'x'.repeat(43) } });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
  });
  assert.equal(wrong, 401);
});
