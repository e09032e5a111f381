// Two control-plane replicas (`stratus server` processes) on one PostgreSQL
// database, sharing one image directory, and one host agent given both URLs.
// An image uploaded through one replica is read through the other (Glance
// download, the agent's download, a server booted through the other); then a
// batch of servers is created through both in turn, the replica the agent
// talks to is SIGKILLed mid-batch, the rest go to the survivor, and every
// server ends ACTIVE: the survivor schedules what the dead one accepted, and
// the agent moves its watch, reports and stream channel to the survivor.
//
// Needs root, runc and PostgreSQL: STRATUS_REPLICAS_DATABASE or
// STRATUS_TEST_DATABASE (bin/test's dataplane suite runs it under
// scripts/test-postgres.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgres } from '../harness.ts';
import { busyboxTar, CGROUP_PARENT, cleanStateDir, CLI, freePort, skipUnlessRoot, sleep } from './lib.ts';

const pgBase = process.env.STRATUS_REPLICAS_DATABASE || process.env.STRATUS_TEST_DATABASE;
const skip = skipUnlessRoot || (!pgBase && 'needs PostgreSQL: run under scripts/test-postgres.sh');
const PASSWORD = 'replicas-admin-pw-1';
const BATCH = 12;
const LOG = process.env.STRATUS_TEST_LOG ?? 'warn';

interface Replica { name: string; url: string; dataDir: string; child: ChildProcess }

function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
}

async function startReplica(name: string, database: string, imageDir: string): Promise<Replica> {
  const dataDir = mkdtempSync(join(tmpdir(), `stratus-replica-${name}-`));
  const port = await freePort();
  const child = spawnCli(['server', '--data-dir', dataDir, '--database', database, '--image-dir', imageDir, '--port', String(port),
    '--admin-password', PASSWORD, '--log-level', LOG]);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`replica ${name} exited with ${child.exitCode}`);
    const r = await fetch(`${url}/healthz`).catch(() => null);
    if (r?.status === 200) return { name, url, dataDir, child };
    await sleep(100);
  }
  throw new Error(`replica ${name} did not start`);
}

async function stop(c: ChildProcess | null | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  process.kill(c.pid!, signal);
  const t = setTimeout(() => { if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL'); }, 30_000);
  await exited;
  clearTimeout(t);
}

test('two replicas, one agent: images cross replicas, and a batch of servers survives killing one replica mid-batch', { skip, timeout: 240_000 }, async () => {
  const db = await freshPostgres(pgBase!, 'stratus_replicas');
  const imageDir = mkdtempSync(join(tmpdir(), 'stratus-replicas-images-'));
  const stateDir = mkdtempSync(join(tmpdir(), 'stratus-replicas-agent-'));
  const hostname = `rp-${Math.random().toString(36).slice(2, 8)}`;
  const replicas: Replica[] = [];
  let agent: ChildProcess | null = null;
  try {
    // One after the other: the first bootstraps the database, the second finds it done.
    const a = await startReplica('a', db.url, imageDir);
    replicas.push(a);
    const b = await startReplica('b', db.url, imageDir);
    replicas.push(b);

    const token = readFileSync(join(a.dataDir, 'agent-token'), 'utf8').trim();
    assert.equal(readFileSync(join(b.dataDir, 'agent-token'), 'utf8').trim(), token, 'both replicas hold the one agent token');

    const login = await fetch(`${b.url}/identity/v3/auth/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: PASSWORD } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
    });
    assert.equal(login.status, 201);
    const auth = login.headers.get('x-subject-token')!;
    const projectId = ((await login.json()) as { token: { project: { id: string } } }).token.project.id;
    const api = async (r: Replica, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${r.url}${path}`, {
        method, headers: { 'x-auth-token': auth, 'x-openstack-nova-api-version': '2.79', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };

    // the image: uploaded through b, read back through a
    const archive = await busyboxTar();
    const img = await api(b, 'POST', '/image/v2/images', { name: 'busybox', container_format: 'docker', disk_format: 'raw', visibility: 'public' });
    assert.equal(img.status, 201);
    const imageId = img.body.id as string;
    const up = await fetch(`${b.url}/image/v2/images/${imageId}/file`, {
      method: 'PUT', headers: { 'x-auth-token': auth, 'content-type': 'application/octet-stream' }, body: new Uint8Array(archive),
    });
    assert.equal(up.status, 204);
    const down = await fetch(`${a.url}/image/v2/images/${imageId}/file`, { headers: { 'x-auth-token': auth } });
    assert.equal(down.status, 200, 'the image uploaded through b is downloadable through a');
    const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex');
    assert.equal(sha(Buffer.from(await down.arrayBuffer())), sha(archive));

    assert.equal((await api(a, 'PUT', `/compute/v2.1/os-quota-sets/${projectId}`, { quota_set: { instances: -1, cores: -1, ram: -1 } })).status, 200);
    const flavor = await api(a, 'POST', '/compute/v2.1/flavors', { flavor: { name: `rp-${hostname}`, ram: 64, vcpus: 1, disk: 0 } });
    assert.equal(flavor.status, 200);

    // the agent talks to a first (so it downloads through a what went in through b), b when a fails
    agent = spawnCli(['agent', '--no-network', '--server', a.url, '--server', b.url, '--token-file', join(a.dataDir, 'agent-token'), '--state-dir', stateDir,
      '--hostname', hostname, '--cgroup-parent', CGROUP_PARENT, '--cpu-allocation-ratio', '1000', '--ram-allocation-ratio', '100', '--log-level', LOG]);
    for (let i = 0; ; i++) {
      const s = await api(b, 'GET', '/compute/v2.1/os-services?binary=nova-compute');
      if (s.status === 200 && (s.body.services as Array<{ host: string; state: string }>).some((x) => x.host === hostname && x.state === 'up')) break;
      if (agent.exitCode !== null) throw new Error(`the agent exited with ${agent.exitCode}`);
      if (i > 300) throw new Error('the agent did not register');
      await sleep(100);
    }

    const create = async (r: Replica, i: number) => {
      const res = await api(r, 'POST', '/compute/v2.1/servers', { server: { name: `rp-${i}`, imageRef: imageId, flavorRef: flavor.body.flavor.id, networks: 'none' } });
      assert.equal(res.status, 202, `create ${i} through ${r.name}: ${JSON.stringify(res.body)}`);
      return res.body.server.id as string;
    };
    const waitActive = async (id: string) => {
      let last: { status?: string; fault?: unknown; 'OS-EXT-STS:task_state'?: string | null } = {};
      for (const until = Date.now() + 120_000; Date.now() < until;) {
        const s = await api(b, 'GET', `/compute/v2.1/servers/${id}`);
        last = s.body?.server ?? {};
        if (last.status === 'ACTIVE' && (last['OS-EXT-STS:task_state'] ?? null) === null) return;
        if (last.status === 'ERROR') break;
        await sleep(200);
      }
      assert.fail(`server ${id} is ${last.status}, not ACTIVE: ${JSON.stringify(last.fault)}`);
    };

    // a server booted through b from the image uploaded through b, its bytes fetched by the agent through a
    const first = await create(b, 0);
    await waitActive(first);

    // the batch, round-robin; a is SIGKILLed half-way (with servers it accepted still building), the rest go to b
    const ids = [first];
    for (let i = 1; i <= BATCH; i++) {
      const alive = replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null);
      ids.push(await create(alive[i % alive.length]!, i));
      if (i === BATCH / 2) await stop(a.child, 'SIGKILL');
    }
    assert.notEqual(a.child.signalCode, null, 'replica a was killed');
    for (const id of ids) await waitActive(id);

    // clean up through the survivor
    for (const id of ids) assert.equal((await api(b, 'DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
    for (const id of ids) {
      for (let i = 0; ; i++) {
        if ((await api(b, 'GET', `/compute/v2.1/servers/${id}`)).status === 404) break;
        if (i > 600) assert.fail(`server ${id} was not deleted`);
        await sleep(100);
      }
    }
  } finally {
    await stop(agent);
    for (const r of replicas) await stop(r.child);
    await cleanStateDir(stateDir);
    await db.drop().catch(() => undefined);
    for (const d of [imageDir, ...replicas.map((r) => r.dataDir)]) await fsp.rm(d, { recursive: true, force: true });
  }
});
