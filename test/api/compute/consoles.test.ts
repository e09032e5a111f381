// Serial and noVNC consoles through the API, end to end but for the host:
// console URLs and tokens (os-getSerialConsole, os-getVNCConsole,
// remote-consoles, os-console-auth-tokens), the console WebSockets on the
// server's public port, the noVNC page and modules, and the agent's stream
// channel that carries them. The host side is a real StreamChannel (the
// agent's module) with the agent's console routing (consoleProviders) over two
// test-double drivers, one holding containers, one VMs: a serial console
// greets and answers every write with "echo:" + what it got; a VNC console
// greets as an RFB server and answers with "vnc:<id>:" + what it got.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { useCloud } from '../../harness.ts';
import { consoleProviders, StreamChannel, type ConsoleProvider } from '../../../src/agent/stream.ts';
import { adminNova, projectUser, type Nova } from './lib.ts';

const HOST = 'console-host';
let admin: Nova;
let alice: Nova;
let bob: Nova;
let imageId: string;
let channel: StreamChannel;
/** The provider's sessions, by server id: what each received, and whether it is closed. */
const sessions: Array<{ serverId: string; got: Buffer[]; closed: boolean }> = [];
/** The servers the host's drivers hold, by kind. */
const held = new Map<string, 'container' | 'vm'>();
/** What the VNC double received. */
const vncGot: Buffer[] = [];

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
  // two drivers' consoles, as an agent with the container and VM drivers has: each stream goes to the one holding the server
  const serial = async (serverId: string) => {
    const session = { serverId, got: [] as Buffer[], closed: false };
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
  };
  const containers: ConsoleProvider = { hasServer: async (id) => held.get(id) === 'container', serialConsole: serial };
  const vms: ConsoleProvider = {
    hasServer: async (id) => held.get(id) === 'vm',
    serialConsole: serial,
    // a VNC server's greeting, then what it gets echoed
    async vncConsole(serverId) {
      const d: Duplex = new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) {
          vncGot.push(chunk);
          d.push(Buffer.concat([Buffer.from(`vnc:${serverId}:`), chunk]));
          cb();
        },
      });
      d.push('RFB 003.008\n');
      return d;
    },
  };
  channel = new StreamChannel({
    server: cloud.url, token: readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim(), hostname: HOST, log: pino({ level: 'silent' }),
    providers: consoleProviders(containers, vms),
  });
  channel.start();
  await channel.waitOpen();
});
after(() => channel?.stop());

const db = () => cloud.server.database.db;

async function activeServer(owner: Nova, kind: 'container' | 'vm' = 'container'): Promise<string> {
  const r = await owner.call('POST', '/servers', { body: { server: { name: 'c', imageRef: imageId, flavorRef: '1', networks: 'none' } }, version: '2.37' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  const now = new Date().toISOString();
  held.set(id, kind);
  await db().updateTable('compute_servers').set({ kind, host: HOST, vm_state: 'active', task_state: null, power_state: 1, launched_at: now, updated_at: now }).where('id', '=', id).execute();
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

/** An HTTP GET of `path` as sent (no URL normalisation, which would fold `..` and `%2e%2e` away). */
function rawGet(path: string): Promise<{ status: number; type: string; body: string }> {
  const { port } = new URL(cloud.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('noVNC console URLs of a VM: os-getVNCConsole (2.1-2.5) and remote-consoles vnc/novnc (2.6+); a container has none', async () => {
  const id = await activeServer(alice, 'vm');
  const a = await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getVNCConsole': { type: 'novnc' } } });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.console.type, 'novnc');
  const url = new URL(a.body.console.url);
  assert.equal(`${url.origin}${url.pathname}`, `${cloud.url}/compute/novnc/vnc_lite.html`);
  assert.match(url.searchParams.get('path')!, /^compute\/vnc-console\?token=[0-9a-f-]{36}$/);
  assert.match(a.body.console.url, /\?path=compute%2Fvnc-console%3Ftoken%3D[0-9a-f-]{36}$/);
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.remote_console.protocol, r.body.remote_console.type], ['vnc', 'novnc']);
  assert.match(r.body.remote_console.url, /\/compute\/novnc\/vnc_lite\.html\?path=compute%2Fvnc-console%3Ftoken%3D/);
  // a VM has a serial console too; no other VNC type, no SPICE
  const serial = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } });
  assert.equal(serial.status, 200, JSON.stringify(serial.body));
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getVNCConsole': { type: 'xvpvnc' } } })).status, 400);
  const spice = await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getSPICEConsole': { type: 'spice-html5' } } });
  assert.equal(spice.status, 400);
  assert.match(spice.body.badRequest.message, /Unavailable console type spice-html5/);
  // a container: Nova's "Unavailable console type" (400), both ways of asking
  const ctr = await activeServer(alice);
  const c = await alice.call('POST', `/servers/${ctr}/action`, { body: { 'os-getVNCConsole': { type: 'novnc' } } });
  assert.equal(c.status, 400);
  assert.match(c.body.badRequest.message, /Unavailable console type novnc/);
  assert.equal((await alice.call('POST', `/servers/${ctr}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } })).status, 400);
  // another project's VM does not exist; a stopped one has no console
  assert.equal((await bob.call('POST', `/servers/${id}/action`, { body: { 'os-getVNCConsole': { type: 'novnc' } } })).status, 404);
  await db().updateTable('compute_servers').set({ vm_state: 'stopped', power_state: 4 }).where('id', '=', id).execute();
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { 'os-getVNCConsole': { type: 'novnc' } } })).status, 409);
});

test('os-console-auth-tokens shows a novnc token (2.31+)', async () => {
  const id = await activeServer(alice, 'vm');
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
  const token = new URL(r.body.remote_console.url).searchParams.get('path')!.split('token=')[1]!;
  const shown = await admin.call('GET', `/os-console-auth-tokens/${token}`, { version: '2.31' });
  assert.equal(shown.status, 200, JSON.stringify(shown.body));
  assert.equal(shown.body.console.instance_uuid, id);
  assert.equal(shown.body.console.host, HOST);
  assert.equal((await admin.call('GET', `/os-console-auth-tokens/${token}`, { version: '2.30' })).status, 401);
  const row = await db().selectFrom('compute_console_auth_tokens').select('console_type').where('server_id', '=', id).executeTakeFirstOrThrow();
  assert.equal(row.console_type, 'novnc');
});

test('the noVNC page and noVNC modules are served with their content types; nothing outside the package', async () => {
  const id = await activeServer(alice, 'vm');
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
  const page = await fetch(r.body.remote_console.url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type')!, /^text\/html/);
  assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
  const html = await page.text();
  assert.match(html, /import RFB from '\.\/core\/rfb\.js'/);
  // what Tempest's test_novnc looks for in the page
  assert.match(html, /<html.*>/);
  assert.ok(html.includes('</html>') && html.includes('noVNC') && html.includes('<script'));
  // the page builds ws://host:port/ + path from its own location, as noVNC's vnc_lite.html does
  assert.match(html, /q\.get\('path'\)/);
  for (const p of ['core/rfb.js', 'core/websock.js', 'core/util/logging.js', 'vendor/pako/lib/zlib/inflate.js']) {
    const m = await fetch(`${cloud.url}/compute/novnc/${p}`);
    assert.equal(m.status, 200, p);
    assert.equal(m.headers.get('content-type'), 'text/javascript; charset=utf-8', p);
    assert.ok((await m.text()).length > 0, p);
  }
  // the page's whole module graph loads, as a browser would walk it from the page
  const seen = new Set<string>();
  const queue = [`${cloud.url}/compute/novnc/core/rfb.js`];
  while (queue.length) {
    const u = queue.shift()!;
    if (seen.has(u)) continue;
    seen.add(u);
    const m = await fetch(u);
    assert.equal(m.status, 200, u);
    assert.equal(m.headers.get('content-type'), 'text/javascript; charset=utf-8', u);
    for (const [, imp] of (await m.text()).matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?(?:from\s*)?["'](\.{1,2}\/[^"']+)["']/g)) queue.push(new URL(imp!, u).href);
  }
  assert.ok(seen.size > 20, `noVNC's modules (${seen.size})`);
  assert.ok([...seen].some((u) => u.includes('/vendor/pako/')), 'pako, from vendor/');
  // outside the package, outside its served folders, or not a file type it serves: 404, never the file
  for (const p of [
    '/compute/novnc/core/../package.json', '/compute/novnc/../../package.json', '/compute/novnc/core/%2e%2e/%2e%2e/%2e%2e/package.json',
    '/compute/novnc/core/..%2f..%2f..%2fpackage.json', '/compute/novnc/core/%2e%2e%2f%2e%2e%2fpackage.json', '/compute/novnc/%2fetc%2fpasswd',
    '/compute/novnc/core/..%5c..%5cpackage.json', '/compute/novnc/package.json', '/compute/novnc/docs/API.md',
    '/compute/novnc/core/', '/compute/novnc/core/nope.js', '/compute/novnc/core//rfb.js',
  ]) {
    const got = await rawGet(p);
    assert.equal(got.status, 404, `${p}: ${got.status} ${got.body.slice(0, 80)}`);
    assert.ok(!got.body.includes('"dependencies"') && !got.body.includes('root:'), p);
  }
  // an encoded NUL is every service's bad input (src/http), never the file either
  const nul = await rawGet('/compute/novnc/core/rfb.js%00.js');
  assert.equal(nul.status, 400, nul.body);
  assert.ok(!nul.body.includes('RFB'), 'not the file');
  // a path that is not valid percent-encoding is refused by the router before
  assert.equal((await rawGet('/compute/novnc/core/%E0%A4%A.js')).status, 400);
});

test('the noVNC WebSocket: RFB bytes both ways to the VM\'s VNC server through the agent stream; tokens of the other console type refused', async () => {
  const id = await activeServer(alice, 'vm');
  const r = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
  const page = new URL(r.body.remote_console.url);
  // where the page connects: its host and port, then `path`
  const wsUrl = `ws://${page.host}/${page.searchParams.get('path')}`;
  const c = await connect(wsUrl);
  assert.ok('ws' in c, JSON.stringify(c));
  assert.equal(c.ws.protocol, 'binary');
  assert.equal(await c.until('\n'), 'RFB 003.008\n');
  c.ws.send(Buffer.from('RFB 003.008\n'));
  await c.until(`vnc:${id}:RFB 003.008\n`);
  assert.equal(Buffer.concat(vncGot).toString(), 'RFB 003.008\n');
  c.ws.close();
  // a page from another host may not use the token (Nova's origin check); the console's own host may
  const foreign = await new Promise<number>((resolve) => {
    const s = new WebSocket(wsUrl, ['binary'], { headers: { origin: 'http://evil.example:8080' } });
    s.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
    s.on('open', () => resolve(101));
  });
  assert.equal(foreign, 403);
  const own = await new Promise<number>((resolve) => {
    const s = new WebSocket(wsUrl, ['binary'], { headers: { origin: `http://${page.host}` } });
    s.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
    s.on('open', () => {
      s.close();
      resolve(101);
    });
  });
  assert.equal(own, 101);
  // noVNC may also connect with no subprotocol
  const plain = await connect(wsUrl, []);
  assert.ok('ws' in plain, JSON.stringify(plain));
  await plain.until('RFB 003.008\n');
  plain.ws.close();
  // a serial token does not open the VNC console, nor a novnc token the serial one
  const s = await alice.call('POST', `/servers/${id}/remote-consoles`, { version: '2.6', body: { remote_console: { protocol: 'serial', type: 'serial' } } });
  const serialToken = new URL(s.body.remote_console.url).searchParams.get('token');
  const wrong = await connect(`ws://${page.host}/compute/vnc-console?token=${serialToken}`);
  assert.equal('status' in wrong && wrong.status, 401);
  const novncToken = page.searchParams.get('path')!.split('token=')[1];
  const wrong2 = await connect(`ws://${page.host}/compute/serial-console?token=${novncToken}`);
  assert.equal('status' in wrong2 && wrong2.status, 401);
  // a bad token as Tempest's test_novnc_bad_token sends it: the answer, then nothing (no frame, no body), then the end
  const raw = await new Promise<string>((resolve, reject) => {
    const sock = netConnect(Number(page.port), page.hostname, () => {
      sock.write(`GET /${page.searchParams.get('path')!.replace('token=', 'token=bad')} HTTP/1.1\r\nHost: ${page.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
        + 'Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n');
    });
    let got = '';
    sock.on('data', (d) => (got += d));
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
  });
  assert.match(raw, /^HTTP\/1\.1 401 /);
  assert.equal(raw.slice(raw.indexOf('\r\n\r\n') + 4), '');
  // a VM's serial console goes to the VM driver
  const sc = await connect(s.body.remote_console.url);
  assert.ok('ws' in sc, JSON.stringify(sc));
  await sc.until(`console of ${id}`);
  sc.ws.close();
  // a container's driver has no VNC console: the host refuses the stream (409), the socket never opens
  held.set(id, 'container');
  try {
    const refused = await connect(wsUrl);
    assert.equal('status' in refused && refused.status, 409);
    // a refused upgrade has no body (Tempest reads frames right after the answer)
    assert.equal('body' in refused && refused.body, '');
    held.delete(id);
    const gone = await connect(wsUrl);
    assert.equal('status' in gone && gone.status, 409);
  } finally {
    held.set(id, 'vm');
  }
});
