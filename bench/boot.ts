// bench/boot: boot throughput of container servers through the compute API.
//
// Runs a real `stratus server` and a real `stratus agent` (child processes, on
// a temp SQLite and a temp agent state dir), uploads the busybox image, then:
//   1. raw baseline: the same image, unpacked once, booted N times by a plain
//      loop of `mount -t overlay` + `runc run -d` with the same OCI spec the
//      agent writes (no API, no agent, no netns): the kernel+runc floor;
//   2. the API: N `POST /servers` (16 in flight), each timed from its POST to
//      its launched_at (ACTIVE), polled with changes-since;
//   3. delete them through the API (a few one at a time, timed DELETE to 404; then the rest at once) and check that nothing is left
//      (containers, mounts, namespaces, cgroups, server directories, claims).
// Prints servers/s, p50/p99 time-to-ACTIVE and the ratio of the API's cost
// per server to the raw loop's. Target on a 2-core machine: >= 50 servers/s to
// ACTIVE, API cost per server <= 1.5x the raw runc cost.
//
// Usage (as root): bin/bench boot [--n 100] [--concurrency 16] [--agent-concurrency 8] [--keep]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImage } from '../src/agent/drivers/container/busybox.ts';
import { inspectArchive, unpackLayer } from '../src/agent/drivers/container/oci.ts';
import { buildSpec } from '../src/agent/drivers/container/spec.ts';
import { run, runOk } from '../src/agent/exec.ts';
import type { DesiredServer } from '../src/compute/engine/protocol.ts';
import { freePort, numberFlag, pct, request } from './lib.ts';

const N = numberFlag('n', 100);
const CONCURRENCY = numberFlag('concurrency', 16);
const AGENT_CONCURRENCY = numberFlag('agent-concurrency', 8);
const KEEP = process.argv.includes('--keep');
const CGROUP_PARENT = 'stratus-bench';
const CLI = join(import.meta.dirname, '../src/cli/main.ts');

/** CPU seconds a process used, its waited-for children included (/proc/<pid>/stat utime+stime+cutime+cstime). */
function cpuOf(pid: number | string): number {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds of a process and of every process below it (its command runner, their waited-for children). */
function cpuTree(pid: number): number {
  let total = cpuOf(pid);
  let kids: string[] = [];
  try {
    kids = readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
  } catch { /* gone */ }
  for (const k of kids) total += cpuTree(Number(k));
  return total;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));


async function pool<T>(items: T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
}

async function stopChild(c: ChildProcess | null): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  process.kill(c.pid!, 'SIGTERM');
  await Promise.race([exited, sleep(60_000).then(() => process.kill(c.pid!, 'SIGKILL'))]);
}

/** The kernel+runc floor: mount + runc run -d of the same image and spec, in a plain loop. */
async function rawLoop(archive: string, dir: string, n: number): Promise<{ perServerMs: number; perSecond: number; cleanupMs: number; cpuMs: number }> {
  const img = await inspectArchive(archive);
  const lowers: string[] = [];
  for (const [i, l] of img.layers.entries()) {
    const d = join(dir, `layer${i}`);
    await unpackLayer(archive, l, d, [...lowers].reverse());
    lowers.push(d);
  }
  const root = join(dir, 'runc');
  const desired = { hostname: 'raw', flavor: { id: 'b', name: 'b', vcpus: 1, ram: 32, disk: 0, ephemeral: 0, swap: 0, extraSpecs: {} } } as unknown as DesiredServer;
  const ids = Array.from({ length: n }, (_, i) => `raw-${process.pid}-${i}`);
  const bundles: string[] = [];
  for (const id of ids) {
    const b = join(dir, id);
    await fsp.mkdir(join(b, 'upper'), { recursive: true });
    await fsp.mkdir(join(b, 'work'));
    await fsp.mkdir(join(b, 'rootfs'));
    await fsp.mkdir(join(b, 'cd'));
    bundles.push(b);
  }
  const t0 = performance.now();
  const cpu0 = cpuOf('self');
  for (const [i, id] of ids.entries()) {
    const b = bundles[i]!;
    await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...lowers].reverse().join(':')},upperdir=${b}/upper,workdir=${b}/work`, `${b}/rootfs`]);
    const spec = await buildSpec({ desired, image: img.config, lookup: [...lowers].reverse(), netnsPath: '', cgroupsPath: `/${CGROUP_PARENT}/${id}`, configDriveDir: `${b}/cd` });
    (spec.linux as { namespaces: Array<{ type: string; path?: string }> }).namespaces = (spec.linux as { namespaces: Array<{ type: string }> }).namespaces.map((x) => (x.type === 'network' ? { type: 'network' } : x));
    await fsp.writeFile(join(b, 'config.json'), JSON.stringify(spec));
    const fh = await fsp.open(join(b, 'console.log'), 'a');
    try {
      await runOk('runc', ['--root', root, 'run', '-d', id], { cwd: b, stdout: fh.fd, stderr: fh.fd });
    } finally {
      await fh.close();
    }
  }
  const ms = performance.now() - t0;
  const cpuMs = ((cpuOf('self') - cpu0) * 1000) / n;
  const c0 = performance.now();
  for (const [i, id] of ids.entries()) {
    await run('runc', ['--root', root, 'kill', id, 'KILL']);
    for (let k = 0; k < 100; k++) {
      const r = await run('runc', ['--root', root, 'delete', id]);
      if (r.code === 0) break;
      await sleep(10);
    }
    await run('umount', [`${bundles[i]}/rootfs`]);
  }
  const cleanupMs = performance.now() - c0;
  return { perServerMs: ms / n, perSecond: (n * 1000) / ms, cleanupMs, cpuMs };
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('bench/boot runs containers: run it as root');
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-boot-'));
  const stateDir = join(dataDir, 'agent');
  const rawDir = join(dataDir, 'raw');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const password = 'bench-admin-password';
  let server: ChildProcess | null = null;
  let agent: ChildProcess | null = null;
  const hostname = `bench-${process.pid}`;
  try {
    console.log(`stratus boot benchmark: ${N} container servers, ${CONCURRENCY} API requests in flight, agent concurrency ${AGENT_CONCURRENCY}, ${cpus().length} CPUs`);
    const archive = join(dataDir, 'busybox.tar');
    await buildBusyboxImage(archive);

    // 1. raw baseline
    await fsp.mkdir(rawDir, { recursive: true });
    const raw = await rawLoop(archive, rawDir, N);
    console.log(`raw runc loop (mount overlay + runc run -d, sequential): ${raw.perSecond.toFixed(1)} servers/s, ${raw.perServerMs.toFixed(1)} ms per server (cleanup ${(raw.cleanupMs / N).toFixed(1)} ms each); CPU ${raw.cpuMs.toFixed(1)} ms per server`);

    // 2. server + agent
    server = spawnCli(['server', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn', '--admin-password', password]);
    for (let i = 0; ; i++) {
      const r = await request(`${base}/healthz`, 'GET').catch(() => null);
      if (r?.status === 200) break;
      if (i > 300) throw new Error('server did not start');
      await sleep(100);
    }
    const login = await request(`${base}/identity/v3/auth/tokens`, 'POST', {}, JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } },
    }));
    const token = login.headers['x-subject-token'] as string;
    const projectId = (JSON.parse(login.body) as { token: { project: { id: string } } }).token.project.id;
    const H = { 'X-Auth-Token': token, 'X-OpenStack-Nova-API-Version': '2.79' };
    const img = JSON.parse((await request(`${base}/image/v2/images`, 'POST', H, JSON.stringify({ name: 'busybox', container_format: 'docker', disk_format: 'raw', visibility: 'public' }))).body) as { id: string };
    const up = await fetch(`${base}/image/v2/images/${img.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: readFileSync(archive) });
    if (up.status !== 204) throw new Error(`image upload: ${up.status}`);
    await request(`${base}/compute/v2.1/os-quota-sets/${projectId}`, 'PUT', H, JSON.stringify({ quota_set: { instances: -1, cores: -1, ram: -1 } }));
    const flavor = JSON.parse((await request(`${base}/compute/v2.1/flavors`, 'POST', H, JSON.stringify({ flavor: { name: 'bench', ram: 32, vcpus: 1, disk: 0 } }))).body) as { flavor: { id: string } };

    agent = spawnCli(['agent', '--server', base, '--token-file', join(dataDir, 'agent-token'), '--state-dir', stateDir, '--hostname', hostname,
      '--concurrency', String(AGENT_CONCURRENCY), '--cpu-allocation-ratio', '10000', '--ram-allocation-ratio', '100', '--cgroup-parent', CGROUP_PARENT, '--log-level', 'warn']);
    for (let i = 0; ; i++) {
      const r = await request(`${base}/compute/v2.1/os-services?binary=nova-compute`, 'GET', H);
      if (r.status === 200 && (JSON.parse(r.body) as { services: Array<{ host: string; state: string }> }).services.some((s) => s.host === hostname && s.state === 'up')) break;
      if (i > 300) throw new Error('agent did not register');
      await sleep(100);
    }
    // warm-up: one server, so the image is fetched and unpacked before timing
    const warm = JSON.parse((await request(`${base}/compute/v2.1/servers`, 'POST', H, JSON.stringify({ server: { name: 'warm', imageRef: img.id, flavorRef: flavor.flavor.id, networks: 'none' } }))).body) as { server: { id: string } };
    for (let i = 0; ; i++) {
      const s = JSON.parse((await request(`${base}/compute/v2.1/servers/${warm.server.id}`, 'GET', H)).body) as { server: { status: string } };
      if (s.server.status === 'ACTIVE') break;
      if (s.server.status === 'ERROR' || i > 600) throw new Error(`warm-up server: ${s.server.status}`);
      await sleep(50);
    }
    await request(`${base}/compute/v2.1/servers/${warm.server.id}`, 'DELETE', H);

    // 3. N creates, timed from POST to launched_at
    const sent = new Map<string, number>();
    const active = new Map<string, number>();
    const errors: string[] = [];
    const startWall = Date.now();
    const t0 = performance.now();
    const cpuStart = { server: cpuOf(server.pid!), agent: cpuTree(agent.pid!), bench: cpuOf('self') };
    let polling = true;
    const poller = (async () => {
      let since = new Date(startWall - 1000).toISOString();
      while (polling) {
        // a margin for updates computed before this poll but committed after it (times come from launched_at, not from polling)
        const pollStart = new Date(Date.now() - 1000).toISOString();
        const r = await request(`${base}/compute/v2.1/servers/detail?changes-since=${encodeURIComponent(since)}&limit=1000`, 'GET', H);
        if (r.status === 200) {
          for (const s of (JSON.parse(r.body) as { servers: Array<Record<string, any>> }).servers) {
            if (s.status === 'ACTIVE' && sent.has(s.id) && !active.has(s.id)) active.set(s.id, Date.parse(s['OS-SRV-USG:launched_at'] + (s['OS-SRV-USG:launched_at'].endsWith('Z') ? '' : 'Z')));
            if (s.status === 'ERROR' && sent.has(s.id) && !errors.includes(s.id)) errors.push(s.id);
          }
          since = pollStart;
        }
        if (active.size + errors.length >= N && sent.size >= N) break;
        await sleep(250);
      }
    })();
    const ids: string[] = [];
    await pool(Array.from({ length: N }, (_, i) => i), CONCURRENCY, async (i) => {
      const at = Date.now();
      const r = await request(`${base}/compute/v2.1/servers`, 'POST', H, JSON.stringify({ server: { name: `boot-${i}`, imageRef: img.id, flavorRef: flavor.flavor.id, networks: 'none' } }));
      if (r.status !== 202) throw new Error(`create ${i}: ${r.status} ${r.body}`);
      const id = (JSON.parse(r.body) as { server: { id: string } }).server.id;
      sent.set(id, at);
      ids.push(id);
    });
    const postsMs = performance.now() - t0;
    const deadline = Date.now() + Math.max(120_000, N * 1000);
    while (active.size + errors.length < N && Date.now() < deadline) await sleep(50);
    polling = false;
    await poller;
    const cpu = { server: cpuOf(server.pid!) - cpuStart.server, agent: cpuTree(agent.pid!) - cpuStart.agent, bench: cpuOf('self') - cpuStart.bench };
    const lastActive = Math.max(...active.values());
    const wallS = (lastActive - startWall) / 1000;
    const lat = [...active.entries()].map(([id, t]) => t - sent.get(id)!).sort((a, b) => a - b);
    const apiPerServerMs = (wallS * 1000) / N;
    console.log(`API: ${N} POSTs in ${(postsMs / 1000).toFixed(2)} s; ${active.size} ACTIVE, ${errors.length} ERROR; all ACTIVE after ${wallS.toFixed(2)} s`);
    console.log(`boot throughput: ${(active.size / wallS).toFixed(1)} servers/s to ACTIVE (target >= 50: ${active.size / wallS >= 50 ? 'met' : 'NOT met'})`);
    console.log(`time to ACTIVE: p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms, max ${(lat.at(-1) ?? 0).toFixed(0)} ms`);
    const ratio = apiPerServerMs / raw.perServerMs;
    console.log(`cost per server: API ${apiPerServerMs.toFixed(1)} ms vs raw runc loop ${raw.perServerMs.toFixed(1)} ms = ${ratio.toFixed(2)}x (target <= 1.5x: ${ratio <= 1.5 ? 'met' : 'NOT met'})`);
    console.log(`CPU per server: server ${((cpu.server * 1000) / N).toFixed(1)} ms, agent (+ runc, mount, ip) ${((cpu.agent * 1000) / N).toFixed(1)} ms, bench client ${((cpu.bench * 1000) / N).toFixed(1)} ms`);
    if (errors.length) console.log(`ERROR servers: ${errors.slice(0, 5).join(', ')}${errors.length > 5 ? ' …' : ''}`);

    // 4. delete: first a few running servers one at a time (DELETE to 404: a delete destroys at once, no
    // graceful shutdown), then all the others at once; check that nothing is left
    const one: number[] = [];
    for (const id of ids.splice(0, Math.min(10, Math.max(0, ids.length - 1)))) {
      const at = performance.now();
      const r = await request(`${base}/compute/v2.1/servers/${id}`, 'DELETE', H);
      if (r.status !== 204) throw new Error(`delete ${id}: ${r.status}`);
      for (let i = 0; (await request(`${base}/compute/v2.1/servers/${id}`, 'GET', H)).status !== 404; i++) {
        if (i > 6000) throw new Error(`server ${id} was not deleted`);
        await sleep(10);
      }
      one.push(performance.now() - at);
    }
    one.sort((a, b) => a - b);
    if (one.length) console.log(`delete of one running server (DELETE to 404, ${one.length} in turn): p50 ${pct(one, 50).toFixed(0)} ms, max ${(one.at(-1) ?? 0).toFixed(0)} ms`);
    const d0 = performance.now();
    await pool(ids, CONCURRENCY, async (id) => {
      const r = await request(`${base}/compute/v2.1/servers/${id}`, 'DELETE', H);
      if (r.status !== 204) throw new Error(`delete ${id}: ${r.status}`);
    });
    for (let i = 0; ; i++) {
      const r = await request(`${base}/compute/v2.1/servers?limit=1`, 'GET', H);
      if ((JSON.parse(r.body) as { servers: unknown[] }).servers.length === 0) break;
      if (i > 6000) throw new Error('servers were not deleted');
      await sleep(50);
    }
    const delS = (performance.now() - d0) / 1000;
    console.log(`delete: ${ids.length} servers gone in ${delS.toFixed(2)} s (${(ids.length / delS).toFixed(1)} servers/s)`);
    const left: string[] = [];
    const serversDir = join(stateDir, 'servers');
    if (existsSync(serversDir) && readdirSync(serversDir).length) left.push(`${readdirSync(serversDir).length} server directories`);
    if (existsSync(join(stateDir, 'runc')) && readdirSync(join(stateDir, 'runc')).length) left.push('runc containers');
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.includes(stateDir)).length;
    if (mounts) left.push(`${mounts} mounts`);
    const netns = ids.filter((id) => existsSync(`/run/netns/st-${id}`)).length;
    if (netns) left.push(`${netns} network namespaces`);
    const cgroups = readdirSync('/sys/fs/cgroup').flatMap((c) => (existsSync(join('/sys/fs/cgroup', c, CGROUP_PARENT)) ? readdirSync(join('/sys/fs/cgroup', c, CGROUP_PARENT)).filter((n) => ids.includes(n)) : []));
    if (cgroups.length) left.push(`${cgroups.length} cgroups`);
    const stats = JSON.parse((await request(`${base}/compute/v2.1/os-hypervisors/statistics`, 'GET', H)).body) as { hypervisor_statistics: { vcpus_used: number; running_vms: number } };
    if (stats.hypervisor_statistics.vcpus_used || stats.hypervisor_statistics.running_vms) left.push(`claims: ${JSON.stringify(stats.hypervisor_statistics)}`);
    console.log(left.length ? `LEFT BEHIND: ${left.join(', ')}` : 'nothing left behind (containers, mounts, namespaces, cgroups, directories, claims)');
    if (left.length) process.exitCode = 1;
  } finally {
    await stopChild(agent);
    await stopChild(server);
    if (!KEEP) {
      // the raw loop's leftovers, if it failed half-way
      const root = join(rawDir, 'runc');
      for (const id of existsSync(root) ? readdirSync(root) : []) await run('runc', ['--root', root, 'delete', '--force', id]);
      for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n').reverse()) {
        const m = line.split(' ')[1];
        if (m && m.startsWith(dataDir)) await run('umount', ['-l', m]);
      }
      for (const c of readdirSync('/sys/fs/cgroup')) {
        const p = join('/sys/fs/cgroup', c, CGROUP_PARENT);
        for (const n of existsSync(p) ? readdirSync(p).filter((x) => x.startsWith('raw-')) : []) await fsp.rmdir(join(p, n)).catch(() => undefined);
        await fsp.rmdir(p).catch(() => undefined); // the bench's own parent, once empty
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
}

await main();
