// The noVNC console of a VM, end to end from the console URL to a real QEMU
// VNC server (root, real qemu): the URL through the compute API, the noVNC
// page, the WebSocket its `path` names on the server's public port, the
// agent's stream channel and its console routing (consoleProviders), and
// QEMU's VNC server on a unix socket, which answers a real RFB handshake.
//
// The VM driver is not part of this test: a `qemu-system-x86_64 -machine
// none` stands for the VM, behind a small ConsoleProvider that connects to
// its VNC socket as the VM driver's does, on a StreamChannel for the plane's
// host; the server row is a VM made ACTIVE on that host in the database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { consoleProviders, StreamChannel, type ConsoleProvider } from '../../src/agent/stream.ts';
import { skipUnlessRoot, sleep, startPlane } from './lib.ts';

const QEMU = 'qemu-system-x86_64';
const skip = skipUnlessRoot || (spawnSync(QEMU, ['--version']).status === 0 ? false : `${QEMU} is not installed (Debian package qemu-system-x86)`);

/**
 * Opens a WebSocket; resolves with it and a reader of its next message (kept
 * from the start: the server's greeting may come in the same packet as the
 * handshake's answer), or with the HTTP status it was refused with.
 */
function open(url: string): Promise<{ ws: WebSocket; next(): Promise<Buffer> } | number> {
  const ws = new WebSocket(url, ['binary']);
  const messages: Buffer[] = [];
  let closed = false;
  const waiters: Array<() => void> = [];
  const wake = () => { for (const w of waiters.splice(0)) w(); };
  ws.on('message', (d: Buffer) => {
    messages.push(d);
    wake();
  });
  ws.on('close', () => {
    closed = true;
    wake();
  });
  const next = async (): Promise<Buffer> => {
    while (!messages.length) {
      if (closed) throw new Error('the socket closed');
      await new Promise<void>((r) => waiters.push(r));
    }
    return messages.shift()!;
  };
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve({ ws, next }));
    ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
    ws.on('error', reject);
  });
}

test('noVNC console of a VM: the page, then an RFB session with QEMU\'s VNC server through the agent stream', { skip, timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-vmconsole-'));
  const sock = join(dir, 'vnc.sock');
  const plane = await startPlane({ agent: 'none' });
  let qemu: ReturnType<typeof spawn> | null = null;
  let channel: StreamChannel | null = null;
  let ws: WebSocket | null = null;
  const opened: Socket[] = [];
  try {
    // killed with this process too (a test cut short by its timeout does not reach `finally`)
    qemu = spawn('setpriv', ['--pdeathsig', 'KILL', '--', QEMU, '-machine', 'none', '-display', 'none', '-nodefaults', '-vnc', `unix:${sock}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (let i = 0; i < 200 && !existsSync(sock) && qemu.exitCode === null; i++) await sleep(50);
    assert.ok(existsSync(sock), 'qemu made its VNC socket');

    // a VM server, ACTIVE on the plane's host (a host row as the agent would register it; the server, once placed there, made a running VM)
    const db = plane.cloud.server.database.db;
    const now = new Date().toISOString();
    await db.insertInto('compute_hosts').values({
      id: crypto.randomUUID(), hostname: plane.hostname, service_id: crypto.randomUUID(), kinds: '["container","vm"]', vcpus: 8, memory_mb: 8192, disk_gb: 100,
      cpu_allocation_ratio: 16, ram_allocation_ratio: 1.5, disk_allocation_ratio: 1, availability_zone: 'nova', status: 'enabled',
      disabled_reason: null, forced_down: 0, host_ip: '127.0.0.1', agent_version: 'test', last_seen_at: new Date(Date.now() + 3600_000).toISOString(), created_at: now,
    }).execute();
    const id = await plane.createServer({ name: 'vnc' });
    for (let i = 0; i < 300; i++) {
      const row = await db.selectFrom('compute_servers').select(['host', 'vm_state']).where('id', '=', id).executeTakeFirstOrThrow();
      assert.notEqual(row.vm_state, 'error');
      if (row.host) break;
      await sleep(100);
    }
    await db.updateTable('compute_servers')
      .set({ kind: 'vm', host: plane.hostname, vm_state: 'active', task_state: null, power_state: 1, launched_at: now, updated_at: now })
      .where('id', '=', id).execute();

    // the host's side: the VM's VNC server, as the VM driver's ConsoleProvider gives it
    const vm: ConsoleProvider = {
      hasServer: async (s) => s === id,
      serialConsole: () => Promise.reject(new Error('no serial console in this test')),
      vncConsole: () => new Promise<Duplex>((resolve, reject) => {
        const s = netConnect(sock);
        s.once('connect', () => {
          opened.push(s);
          resolve(s);
        });
        s.once('error', reject);
      }),
    };
    channel = new StreamChannel({
      server: `http://127.0.0.1:${plane.port}`, token: readFileSync(join(plane.dataDir, 'agent-token'), 'utf8').trim(), hostname: plane.hostname,
      log: pino({ level: 'silent' }), providers: consoleProviders(vm),
    });
    channel.start();
    await channel.waitOpen();

    const r = await plane.api('POST', `/compute/v2.1/servers/${id}/remote-consoles`, { remote_console: { protocol: 'vnc', type: 'novnc' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const page = new URL(r.body.remote_console.url);
    assert.equal(page.pathname, '/compute/novnc/vnc_lite.html');
    const html = await fetch(page);
    assert.equal(html.status, 200);
    assert.match(await html.text(), /\.\/core\/rfb\.js/);

    // what the page connects to: its own host and port, then `path`
    // (the server may not have taken the agent's channel in yet: a 409 until it has)
    let next: (() => Promise<Buffer>) | null = null;
    for (let i = 0; i < 100 && !ws; i++) {
      const got = await open(`ws://${page.host}/${page.searchParams.get('path')}`);
      if (typeof got === 'number') {
        assert.equal(got, 409);
        await sleep(100);
      } else ({ ws, next } = got);
    }
    assert.ok(ws && next, 'the console WebSocket opened');
    assert.equal(ws.protocol, 'binary');
    // RFB 3.8 (RFC 6143), one message a frame as Tempest's test_novnc reads them:
    // versions, security type None, its result, ClientInit, ServerInit
    assert.equal((await next()).toString(), 'RFB 003.008\n');
    ws.send(Buffer.from('RFB 003.008\n'));
    const security = await next();
    assert.equal(security.length, security[0]! + 1, 'a list of security types');
    assert.ok([...security.subarray(1)].includes(1), `security None offered (got ${[...security]})`);
    ws.send(Buffer.from([1]));
    assert.deepEqual([...(await next())], [0, 0, 0, 0], 'security handshake ok');
    ws.send(Buffer.from([1])); // ClientInit: shared
    const init = await next();
    assert.ok(init.length > 24 && init.length === 24 + init.readUInt32BE(20), 'ServerInit with its name');
    assert.ok(init.readUInt16BE(0) > 0 && init.readUInt16BE(2) > 0, `a screen size (${init.readUInt16BE(0)}x${init.readUInt16BE(2)})`);
    assert.match(init.subarray(24).toString(), /QEMU/);

    // closing the page's socket ends the stream and the connection to the VNC server
    ws.close();
    await new Promise((res) => ws!.once('close', res));
    ws = null;
    for (let i = 0; i < 500 && (channel.streams > 0 || !opened.every((s) => s.destroyed)); i++) await sleep(10);
    assert.equal(channel.streams, 0);
    assert.ok(opened.length === 1 && opened[0]!.destroyed, 'the VNC connection is closed');
  } finally {
    ws?.terminate();
    await channel?.stop();
    if (qemu?.pid && qemu.exitCode === null && qemu.signalCode === null) {
      const gone = new Promise((r) => qemu!.once('exit', r));
      process.kill(qemu.pid, 'SIGKILL');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
    await plane.cleanup();
  }
});
