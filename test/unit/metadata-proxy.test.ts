// The agent's metadata proxy (src/agent/metadata-proxy.ts) between a unix
// socket (where haproxy forwards) and a stand-in agent API on loopback: it
// relays only what haproxy vouches for (the socket's network, haproxy's
// source header) plus method, path and body, never the guest's other
// headers; streams the answer back; refuses what did not come through
// haproxy; turns an agent API failure into a plain 500; removes its socket.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ServerList } from '../../src/agent/client.ts';
import { MetadataProxy } from '../../src/agent/metadata-proxy.ts';
import { AGENT_TOKEN_HEADER } from '../../src/fleet/protocol.ts';
import { METADATA_ANSWER_HEADER, METADATA_NETWORK_HEADER, METADATA_SOURCE_HEADER } from '../../src/metadata/protocol.ts';

const dir = mkdtempSync(join(tmpdir(), 'md-proxy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Seen { headers: http.IncomingHttpHeaders; body: any }

async function fakeAgentApi(answer: (seen: Seen, res: http.ServerResponse) => void): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c) => text += c);
    req.on('end', () => {
      const s = { headers: req.headers, body: JSON.parse(text) };
      seen.push(s);
      answer(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

function ask(socketPath: string, o: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; type: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: o.method ?? 'GET', path: o.path, headers: o.headers }, (res) => {
      let text = '';
      res.on('data', (c) => text += c);
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], text }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

test('relays what haproxy vouches for, and only that; refuses the rest', async () => {
  const api = await fakeAgentApi((s, res) => {
    res.writeHead(s.body.path === '/missing' ? 404 : 200, { 'content-type': 'application/json', [METADATA_ANSWER_HEADER]: '1' });
    res.end(JSON.stringify({ asked: s.body }));
  });
  const proxy = new MetadataProxy({ servers: new ServerList(api.url), token: 't'.repeat(43), log: pino({ level: 'silent' }) });
  const sock = join(dir, 'a.sock');
  assert.equal(await proxy.ensure('net-1', sock), true);
  assert.equal(await proxy.ensure('net-1', sock), false, 'a second ensure changes nothing');
  const vouched = { [METADATA_SOURCE_HEADER]: '10.0.0.5', [METADATA_NETWORK_HEADER]: 'net-1' };

  const r = await ask(sock, { path: '/openstack/latest/meta%5Fdata.json?x=1', headers: { ...vouched, 'x-forwarded-for': '10.0.0.9', 'x-instance-id': 'someone-else', [AGENT_TOKEN_HEADER]: 'guess' } });
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/json');
  assert.deepEqual(JSON.parse(r.text).asked, { network_id: 'net-1', remote_ip: '10.0.0.5', method: 'GET', path: '/openstack/latest/meta_data.json' });
  assert.equal(api.seen[0]!.headers[AGENT_TOKEN_HEADER], 't'.repeat(43));
  assert.equal(api.seen[0]!.headers['x-instance-id'], undefined);
  assert.equal(api.seen[0]!.headers['x-forwarded-for'], undefined);
  assert.equal((await ask(sock, { path: '/missing', headers: vouched })).status, 404);

  const post = await ask(sock, { method: 'POST', path: '/openstack/latest/password', headers: vouched, body: 'sekrit' });
  assert.equal(Buffer.from(JSON.parse(post.text).asked.body, 'base64').toString(), 'sekrit');

  const n = api.seen.length;
  // not through haproxy, or haproxy of another network: refused without asking
  assert.equal((await ask(sock, { path: '/', headers: { [METADATA_NETWORK_HEADER]: 'net-1' } })).status, 400);
  assert.equal((await ask(sock, { path: '/', headers: { ...vouched, [METADATA_NETWORK_HEADER]: 'net-2' } })).status, 400);
  assert.equal((await ask(sock, { method: 'DELETE', path: '/', headers: vouched })).status, 405);
  const big = await ask(sock, { method: 'POST', path: '/openstack/latest/password', headers: vouched, body: 'x'.repeat(5000) });
  assert.equal(big.status, 400);
  assert.match(big.text, /Request is too large/);
  assert.equal(api.seen.length, n);

  await proxy.remove('net-1');
  assert.equal(existsSync(sock), false);
  assert.equal(proxy.listening('net-1'), false);
  await proxy.close();
  await api.close();
});

test('an agent API failure is a plain 500; the next replica is tried', async () => {
  const broken = await fakeAgentApi((_s, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":"down"}');
  });
  const refusing = await fakeAgentApi((_s, res) => {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end('{"error":"who"}');
  });
  const good = await fakeAgentApi((_s, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', [METADATA_ANSWER_HEADER]: '1' });
    res.end('ok');
  });
  const vouched = { [METADATA_SOURCE_HEADER]: '10.0.0.5', [METADATA_NETWORK_HEADER]: 'n' };
  const log = pino({ level: 'silent' });

  const p1 = new MetadataProxy({ servers: new ServerList([broken.url, good.url]), token: 't'.repeat(43), log });
  await p1.ensure('n', join(dir, 'b.sock'));
  assert.deepEqual(await ask(join(dir, 'b.sock'), { path: '/', headers: vouched }), { status: 200, type: 'text/plain', text: 'ok' });
  await p1.close();

  const p2 = new MetadataProxy({ servers: new ServerList(refusing.url), token: 't'.repeat(43), log });
  await p2.ensure('n', join(dir, 'c.sock'));
  const r = await ask(join(dir, 'c.sock'), { path: '/', headers: vouched });
  assert.equal(r.status, 500);
  assert.doesNotMatch(r.text, /who/);
  await p2.close();
  assert.equal(existsSync(join(dir, 'c.sock')), false);
  for (const a of [broken, refusing, good]) await a.close();
});

test('the socket haproxy forwards to fits haproxy\'s 97 bytes however deep the data directory, one per network directory', async () => {
  const { metadataSocket } = await import('../../src/agent/drivers/network/dhcp.ts');
  const deep = `/tmp/stratus-conformance.abcdef/data/agent/network/dhcp/${'9ef594f3-52cc-48df-81c9-4c932f05b19e'}`;
  const a = metadataSocket(deep);
  assert.ok(Buffer.byteLength(a) <= 97, a);
  assert.equal(metadataSocket(deep), a);
  assert.notEqual(metadataSocket(`${deep.slice(0, -1)}f`), a);
  assert.notEqual(metadataSocket(deep.replace('/tmp/', '/var/')), a);
});
