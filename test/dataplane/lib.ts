// Helpers for the data-plane tests: a real Stratus server in-process, a real
// agent (in-process, or a child process that a test may kill), the busybox
// image uploaded through Glance, and kernel-state probes. Everything a test
// creates is found again by path and PID and removed in `cleanup()`, also
// when the test failed half-way.
//
// Needs root and: runc, iproute2, busybox-static, attr (getfattr/setfattr).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { freshPostgres, startCloud, type Cloud } from '../harness.ts';
import { freePort } from '../ports.ts';
import { createAgent } from '../../src/agent/main.ts';
import type { Agent } from '../../src/agent/agent.ts';
import { buildBusyboxImage, ensureBusyboxStatic } from '../../src/agent/drivers/container/busybox.ts';
import { run } from '../../src/agent/exec.ts';

export const CLI = join(import.meta.dirname, '../../src/cli/main.ts');
export const CGROUP_PARENT = 'stratus';
/** The in-process agent's console log cap. */
export const CONSOLE_CAP = 64 * 1024;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const skipUnlessRoot = process.getuid?.() !== 0 ? 'data-plane tests run as root' : false;

let busyboxArchive: Promise<Buffer> | null = null;
/** The busybox image archive (an OCI layout tar), built once per test process. */
export function busyboxTar(): Promise<Buffer> {
  busyboxArchive ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stratus-dp-img-'));
    try {
      const file = join(dir, 'busybox.tar');
      if (process.getuid?.() === 0) await ensureBusyboxStatic();
      await buildBusyboxImage(file);
      return await fsp.readFile(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return busyboxArchive;
}

export { freePort };

export interface Plane {
  cloud: Cloud;
  dataDir: string;
  stateDir: string;
  hostname: string;
  port: number;
  imageId: string;
  flavorId: string;
  token: string;
  /** The in-process agent (null when the agent runs as a child process). */
  agent: Agent | null;
  child: ChildProcess | null;
  startAgent(mode: 'inproc' | 'child', extra?: string[]): Promise<void>;
  /**
   * A second host: another in-process agent on this machine (its own state
   * dir and runc root, no network or volume driver) registered as `hostname`;
   * stopped and its state dir cleaned by cleanup().
   */
  addHost(hostname: string): Promise<{ hostname: string; stateDir: string }>;
  /** Stops the agent: gracefully, or SIGKILL by PID for the child. */
  stopAgent(kill?: boolean): Promise<void>;
  restartServer(): Promise<void>;
  api<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }>;
  createServer(opts?: Record<string, unknown>): Promise<string>;
  waitStatus(id: string, statuses: string[], timeoutMs?: number): Promise<any>;
  waitGone(id: string, timeoutMs?: number): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * `network`: the agent serves tenant networks with its bridges and nft tables
 * in this namespace (in-process agents only); without it the agent runs with
 * no network driver, so the machine's own namespace is never touched.
 * `volume`: the agent serves volumes (a loop-mounted btrfs pool under the
 * state dir); off by default, so other tests mount nothing.
 */
export async function startPlane(opts: { hostname?: string; agent?: 'inproc' | 'child' | 'none'; agentArgs?: string[]; network?: { hostNetns: string; underlayIp?: string }; volume?: boolean } = {}): Promise<Plane> {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-dp-data-'));
  const stateDir = mkdtempSync(join(tmpdir(), 'stratus-dp-agent-'));
  const hostname = opts.hostname ?? `dp-${Math.random().toString(36).slice(2, 8)}`;
  const port = await freePort();
  // On PostgreSQL the plane keeps its own database, so that a restarted server finds its state again.
  const pgdb = process.env.STRATUS_TEST_DATABASE ? await freshPostgres(process.env.STRATUS_TEST_DATABASE, 'stratus_dp') : null;
  const database = pgdb?.url;
  let cloud = await startCloud({ dataDir, port, database });
  const log = pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' });
  const extra: Array<{ agent: Agent; stateDir: string }> = [];
  const plane: Plane = {
    cloud, dataDir, stateDir, hostname, port, imageId: '', flavorId: '', token: cloud.adminToken, agent: null, child: null,
    async startAgent(mode, extra = []) {
      const flags = {
        server: `http://127.0.0.1:${port}`, tokenFile: join(dataDir, 'agent-token'), stateDir, hostname, cgroupParent: CGROUP_PARENT,
        network: !!opts.network, volume: !!opts.volume, networkHostNetns: opts.network?.hostNetns ?? null, underlayIp: opts.network?.underlayIp ?? (opts.network ? '127.0.0.1' : undefined),
      };
      if (mode === 'inproc') {
        plane.agent = createAgent({ ...flags, concurrency: 8, sweepIntervalMs: 2000, consoleLogMax: CONSOLE_CAP }, log);
        await plane.agent.start();
        return;
      }
      const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, 'agent', '--server', flags.server, '--token-file', flags.tokenFile,
        '--state-dir', stateDir, '--hostname', hostname, '--log-level', process.env.STRATUS_TEST_LOG ?? 'warn', '--no-network', ...(opts.volume ? [] : ['--no-volume']), ...extra], { stdio: ['ignore', 'inherit', 'inherit'] });
      plane.child = child;
      // registered once the host row's last_seen_at moves
      const before = await hostSeen(plane);
      for (let i = 0; i < 300; i++) {
        const now = await hostSeen(plane);
        if (now && now !== before) return;
        if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}`);
        await sleep(100);
      }
      throw new Error('the agent did not register');
    },
    async addHost(name) {
      const dir = mkdtempSync(join(tmpdir(), 'stratus-dp-agent-'));
      const agent = createAgent({
        server: `http://127.0.0.1:${port}`, tokenFile: join(dataDir, 'agent-token'), stateDir: dir, hostname: name, cgroupParent: CGROUP_PARENT,
        network: false, volume: false, networkHostNetns: null, concurrency: 8, sweepIntervalMs: 2000, consoleLogMax: CONSOLE_CAP,
      }, log);
      extra.push({ agent, stateDir: dir });
      await agent.start();
      return { hostname: name, stateDir: dir };
    },
    async stopAgent(kill = false) {
      if (plane.agent) {
        await plane.agent.stop();
        plane.agent = null;
      }
      const c = plane.child;
      if (c && c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        process.kill(c.pid!, kill ? 'SIGKILL' : 'SIGTERM');
        await exited;
      }
      plane.child = null;
    },
    async restartServer() {
      await cloud.close();
      cloud = await startCloud({ dataDir, port, database });
      plane.cloud = cloud;
      plane.token = cloud.adminToken;
    },
    async api(method, path, body, headers = {}) {
      const r = await plane.cloud.call(method, path, { token: plane.token, body, headers: { 'X-OpenStack-Nova-API-Version': '2.79', ...headers } });
      return r;
    },
    async createServer(o = {}) {
      const r = await plane.api('POST', '/compute/v2.1/servers', { server: { name: 'dp', imageRef: plane.imageId, flavorRef: plane.flavorId, networks: 'none', ...o } });
      if (r.status !== 202) throw new Error(`server create: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.server.id as string;
    },
    async waitStatus(id, statuses, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < until) {
        const r = await plane.api('GET', `/compute/v2.1/servers/${id}`);
        last = r.body.server;
        if (last && statuses.includes(last.status) && (last['OS-EXT-STS:task_state'] ?? null) === null) return last;
        await sleep(100);
      }
      throw new Error(`server ${id} did not reach ${statuses.join('/')}: ${JSON.stringify(last?.status)} task ${JSON.stringify(last?.['OS-EXT-STS:task_state'])} fault ${JSON.stringify(last?.fault)}`);
    },
    async waitGone(id, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const r = await plane.api('GET', `/compute/v2.1/servers/${id}`);
        if (r.status === 404) return;
        await sleep(100);
      }
      throw new Error(`server ${id} was not deleted`);
    },
    async cleanup() {
      await plane.stopAgent(true).catch(() => undefined);
      for (const x of extra) await x.agent.stop().catch(() => undefined);
      await plane.cloud.close().catch(() => undefined);
      await pgdb?.drop().catch(() => undefined);
      for (const dir of [stateDir, ...extra.map((x) => x.stateDir)]) await cleanStateDir(dir);
      await fsp.rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    const img = await plane.api('POST', '/image/v2/images', { name: 'busybox', container_format: 'docker', disk_format: 'raw', visibility: 'public' });
    if (img.status !== 201) throw new Error(`image create: ${img.status}`);
    plane.imageId = img.body.id;
    const up = await fetch(`${cloud.url}/image/v2/images/${plane.imageId}/file`, {
      method: 'PUT', headers: { 'x-auth-token': plane.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await busyboxTar()),
    });
    if (up.status !== 204) throw new Error(`image upload: ${up.status}`);
    const project = await cloud.server.database.db.selectFrom('identity_projects').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow();
    const q = await plane.api('PUT', `/compute/v2.1/os-quota-sets/${project.id}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
    if (q.status !== 200) throw new Error(`quota update: ${q.status} ${JSON.stringify(q.body)}`);
    const fl = await plane.api('POST', '/compute/v2.1/flavors', { flavor: { name: `dp-${hostname}`, ram: 96, vcpus: 1, disk: 0 } });
    if (fl.status !== 200) throw new Error(`flavor create: ${fl.status} ${JSON.stringify(fl.body)}`);
    plane.flavorId = fl.body.flavor.id;
    if (opts.agent && opts.agent !== 'none') await plane.startAgent(opts.agent, opts.agentArgs);
  } catch (err) {
    await plane.cleanup();
    throw err;
  }
  return plane;
}

async function hostSeen(p: Plane): Promise<string | null> {
  const h = await p.cloud.server.database.db.selectFrom('compute_hosts').select('last_seen_at').where('hostname', '=', p.hostname).executeTakeFirst();
  return h?.last_seen_at ?? null;
}

/** Removes everything an agent's state dir anchors, by path: containers, mounts, namespaces, cgroups, files. */
export async function cleanStateDir(stateDir: string): Promise<void> {
  const root = join(stateDir, 'runc');
  const ids = new Set<string>([...list(join(stateDir, 'servers')), ...list(root)]);
  for (const id of ids) {
    await run('runc', ['--root', root, 'kill', '--all', id, 'KILL']);
    await sleep(50);
    await run('runc', ['--root', root, 'delete', '--force', id]);
    for (const m of mountsUnder(join(stateDir, 'servers', id))) await run('umount', ['-l', m]);
    await run('ip', ['netns', 'del', `st-${id}`]);
    for (const ctl of list('/sys/fs/cgroup')) await fsp.rmdir(join('/sys/fs/cgroup', ctl, CGROUP_PARENT, id)).catch(() => undefined);
  }
  await cleanNetworkState(join(stateDir, 'network'));
  for (const m of mountsUnder(stateDir)) await run('umount', ['-l', m]);
  // a process killed above (a container's console writer, runc) may still write its last file
  // while the tree is removed: ENOTEMPTY, tried again once it has exited
  for (let attempt = 1; ; attempt++) {
    try {
      await fsp.rm(stateDir, { recursive: true, force: true });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || attempt === 5) throw err;
      await sleep(200 * attempt);
    }
  }
}

/**
 * What an agent's network driver left running outside its host namespace when
 * a test ended before the agent removed it (a network deleted just before the
 * agent stopped): its DHCP servers and metadata haproxies (pid files naming
 * this state's files) and its DHCP and router namespaces. Bridges and nft
 * tables live in the test's host namespace, which the test deletes.
 */
async function cleanNetworkState(root: string): Promise<void> {
  for (const id of list(join(root, 'dhcp'))) {
    const dir = join(root, 'dhcp', id);
    for (const file of ['pid', 'haproxy.pid']) {
      const pid = Number(readOr(join(dir, file)).trim());
      if (Number.isInteger(pid) && pid > 0 && readOr(`/proc/${pid}/cmdline`).includes(dir)) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch { /* it ended in between */ }
      }
    }
    await run('ip', ['netns', 'del', `qdhcp-${id}`]);
  }
  // routers' radvd (pid file naming this state's radvd.conf)
  for (const id of list(join(root, 'radvd'))) {
    const dir = join(root, 'radvd', id);
    const pid = Number(readOr(join(dir, 'pid')).trim());
    if (Number.isInteger(pid) && pid > 0 && readOr(`/proc/${pid}/cmdline`).includes(dir)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch { /* it ended in between */ }
    }
  }
  for (const f of list(join(root, 'routers')).filter((n) => n.endsWith('.json'))) await run('ip', ['netns', 'del', `qrouter-${f.slice(0, -5)}`]);
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').map((m) => m.replace(/\\040/g, ' '))
    .filter((m) => m === prefix || m.startsWith(prefix + '/')).sort().reverse();
}

// ---- kernel state probes

export function runcState(stateDir: string, id: string): { pid: number; start: number; cgroups: Record<string, string> } | null {
  const f = join(stateDir, 'runc', id, 'state.json');
  if (!existsSync(f)) return null;
  const s = JSON.parse(readFileSync(f, 'utf8'));
  return { pid: s.init_process_pid, start: s.init_process_start, cgroups: s.cgroup_paths ?? {} };
}

export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The file system type of a process's root, from its own mount namespace (the server's overlay lives there only). */
export function rootFsType(pid: number): string | null {
  try {
    for (const l of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
      const [left, right] = l.split(' - ');
      if (left?.split(' ')[4] === '/' && right) return right.split(' ')[0] ?? null;
    }
  } catch { /* gone */ }
  return null;
}

/** The overlay options of a process's root mount (lowerdir, upperdir...). */
export function rootMountOptions(pid: number): string {
  for (const l of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const [left, right] = l.split(' - ');
    if (left?.split(' ')[4] === '/' && right) return right.split(' ')[2] ?? '';
  }
  return '';
}

export function cgroupFile(ctl: string, id: string, file: string): string | null {
  try {
    return readFileSync(join('/sys/fs/cgroup', ctl, CGROUP_PARENT, id, file), 'utf8').trim();
  } catch {
    return null;
  }
}

export function cgroupDirs(id: string): string[] {
  return list('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c, CGROUP_PARENT, id)).filter((p) => existsSync(p));
}

export const netnsPath = (id: string) => `/run/netns/st-${id}`;

/** Everything the host still holds for a server (empty when clean). */
export function leftovers(stateDir: string, id: string): string[] {
  const out: string[] = [];
  const st = runcState(stateDir, id);
  if (st && processAlive(st.pid)) out.push(`process ${st.pid}`);
  if (existsSync(join(stateDir, 'runc', id))) out.push('runc state');
  if (existsSync(join(stateDir, 'servers', id))) out.push('server directory');
  for (const m of mountsUnder(join(stateDir, 'servers', id))) out.push(`mount ${m}`);
  if (existsSync(netnsPath(id))) out.push('netns');
  for (const c of cgroupDirs(id)) out.push(`cgroup ${c}`);
  return out;
}

/** GET http://127.0.0.1:<port>/ from inside a server's network namespace, with the host's busybox. */
export async function httpInNetns(id: string, port = 80): Promise<string> {
  const r = await run('ip', ['netns', 'exec', `st-${id}`, 'timeout', '5', '/bin/busybox', 'wget', '-qO-', `http://127.0.0.1:${port}/`]);
  if (r.code !== 0) throw new Error(`wget in netns: ${r.code} ${r.stderr}`);
  return r.stdout;
}

/** The server's console output through the compute API. */
export async function consoleOf(plane: Pick<Plane, 'api'>, id: string): Promise<string> {
  const r = await plane.api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} });
  if (r.status !== 200) throw new Error(`console output of ${id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.output as string;
}

/** Polls the server's console until it matches `pattern`; throws with its tail when it never does. */
export async function waitConsole(plane: Pick<Plane, 'api'>, id: string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let out = '';
  while (Date.now() < until) {
    out = await consoleOf(plane, id);
    if (pattern.test(out)) return out;
    await sleep(200);
  }
  throw new Error(`console of ${id} never matched ${pattern}: ${JSON.stringify(out.slice(-1500))}`);
}
