// bench/boot: boot throughput and agent CPU of container servers through the
// compute API, as ratios to a raw loop measured in the same run (absolute
// numbers on these shared 2-core machines move by tens of percent from run to
// run; the ratios much less).
//
// Runs a real `stratus server` and a real `stratus agent` (child processes, on
// a temp SQLite and a temp agent state dir), uploads the busybox image, then:
//   1. the raw loop (the floor): one `sh` running, for each of N servers in
//      turn, what the agent asks of the kernel and runc per server: `ip netns
//      add` + loopback up, `unshare --mount` + `mount -t overlay`, `runc run
//      -d` with the config.json the agent's spec builder writes (seccomp,
//      capabilities, masked paths, cgroup limits). No API, no agent, no Node
//      per server; specs written before the clock starts. Its CPU: the shell
//      and everything it ran (ip, unshare, mount, runc and runc init up to
//      the container's exec).
//   2. the API side: N `POST /servers` (16 in flight), each timed from its
//      POST to its launched_at (ACTIVE), polled with changes-since. Agent CPU:
//      the agent's Node process and every process below it (its command
//      shell, ip, nsenter, unshare, mount, runc), read from /proc (waited-for
//      children included); the server's CPU is printed apart.
//   3. delete them through the API (a few one at a time, timed DELETE to 404;
//      then the rest at once) and check that nothing is left (containers,
//      mounts, namespaces, cgroups, server directories, claims).
// Prints, as ratios to the raw loop: throughput (API servers/s to ACTIVE ÷ raw
// servers/s) and agent CPU per server (agent tree ÷ raw loop). Targets (issue
// item 8): throughput >= 1.5x (the agent uses both cores; the raw loop one),
// agent CPU <= 1.3x, at n=100 and n=1000. Neither side counts the containers'
// own processes after their exec.
//
// Usage (as root): bin/bench boot [--n 100] [--concurrency 16] [--agent-concurrency 8] [--keep]
//   [--profile DIR]: the agent runs with --cpu-prof (a V8 CPU profile in DIR when it stops)
//   [--network]: every server on one tenant network (a /16) behind a security group with a rule
//   (TCP 80 in), as issue 10's item 8 asks: the agent also plugs a veth, sets its addresses and
//   routes, and applies the port's nft rules; the raw loop stays the same floor. The network and
//   the group are deleted at the end and their bridge, DHCP namespace and rules checked gone.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImage } from '../src/agent/drivers/container/busybox.ts';
import { inspectArchive, unpackLayer } from '../src/agent/drivers/container/oci.ts';
import { overlayOptions } from '../src/agent/drivers/container/host.ts';
import { buildSpec } from '../src/agent/drivers/container/spec.ts';
import { run, runOk } from '../src/agent/exec.ts';
import { portChains, sgChains } from '../src/agent/drivers/network/rules.ts';
import { bridgeName, dhcpNamespace } from '../src/network/protocol.ts';
import type { DesiredServer } from '../src/compute/engine/protocol.ts';
import { flag, freePort, launchedAt, numberFlag, pct, pool, request, sleep, spawnCli, spawnServer, stopChild, uploadImage, waitAgent, waitServer } from './lib.ts';

const N = numberFlag('n', 100);
const CONCURRENCY = numberFlag('concurrency', 16);
const AGENT_CONCURRENCY = numberFlag('agent-concurrency', 8);
const KEEP = process.argv.includes('--keep');
const NETWORK = process.argv.includes('--network');
const PROFILE = flag('profile');
const CGROUP_PARENT = 'stratus-bench';

/** utime, stime, cutime, cstime of a process in seconds (/proc/<pid>/stat), zeros once it is gone. */
function times(pid: number | string): [number, number, number, number] {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]) / 100, Number(f[12]) / 100, Number(f[13]) / 100, Number(f[14]) / 100];
  } catch {
    return [0, 0, 0, 0];
  }
}

/** CPU seconds a process used, its waited-for children included. */
function cpuOf(pid: number | string): number {
  const t = times(pid);
  return t[0] + t[1] + t[2] + t[3];
}

/** CPU seconds of a process alone (its own threads, no children). */
const ownCpu = (pid: number | string) => times(pid)[0] + times(pid)[1];

/** CPU seconds of this process's waited-for children. */
const childCpuOfSelf = () => times('self')[2] + times('self')[3];

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

/**
 * The floor: the same per-server kernel and runc work the agent does, issued
 * by a plain sequential `sh` loop (one shell for the whole loop, no API, no
 * agent, no Node per server). Per server: a named network namespace with
 * loopback up (`ip netns add` + `ip -n … link set lo up`), a private mount
 * namespace (`unshare --mount`) in which the overlay root is mounted, and
 * `runc run -d` of a config.json from the agent's own spec builder (same
 * seccomp profile, capabilities, masked paths, cgroup limits, netns path).
 * The specs are written before the clock starts; building them is agent work.
 * CPU is that of the loop's shell and everything it ran (waited-for children).
 */
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
  const lines: string[] = ['set -e'];
  for (const id of ids) {
    const b = join(dir, id);
    for (const sub of ['upper', 'work', 'rootfs', 'cd']) await fsp.mkdir(join(b, sub), { recursive: true });
    const spec = await buildSpec({ desired, image: img.config, lookup: [...lowers].reverse(), netnsPath: `/run/netns/${id}`, cgroupsPath: `/${CGROUP_PARENT}/${id}`, configDriveDir: `${b}/cd` });
    await fsp.writeFile(join(b, 'config.json'), JSON.stringify(spec));
    const opts = overlayOptions(lowers, `${b}/upper`, `${b}/work`);
    lines.push(`cd ${b}; ip netns add ${id}; ip -n ${id} link set lo up`,
      `unshare --mount --propagation private -- sh -c 'mount -t overlay overlay -o "$0" rootfs && exec runc --root ${root} run -d ${id} </dev/null >>console.log 2>&1' '${opts}'`);
  }
  const script = join(dir, 'loop.sh');
  await fsp.writeFile(script, lines.join('\n') + '\n');
  const t0 = performance.now();
  const cpu0 = childCpuOfSelf();
  await runOk('sh', [script]);
  const ms = performance.now() - t0;
  const cpuMs = ((childCpuOfSelf() - cpu0) * 1000) / n;
  const c0 = performance.now();
  for (const id of ids) {
    await run('runc', ['--root', root, 'delete', '--force', id]);
    await run('ip', ['netns', 'del', id]);
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
    console.log(`raw loop (netns + lo up, unshare + mount overlay, runc run -d; sequential sh): ${raw.perSecond.toFixed(1)} servers/s, ${raw.perServerMs.toFixed(1)} ms per server (cleanup ${(raw.cleanupMs / N).toFixed(1)} ms each); CPU ${raw.cpuMs.toFixed(1)} ms per server`);

    // 2. server + agent
    server = spawnServer(dataDir, port, password);
    const session = await waitServer(base, password);
    const { projectId, H } = session;
    const img = { id: await uploadImage(session, { name: 'busybox', container_format: 'docker', disk_format: 'raw', visibility: 'public' }, readFileSync(archive)) };
    await request(`${base}/compute/v2.1/os-quota-sets/${projectId}`, 'PUT', H, JSON.stringify({ quota_set: { instances: -1, cores: -1, ram: -1 } }));
    const flavor = JSON.parse((await request(`${base}/compute/v2.1/flavors`, 'POST', H, JSON.stringify({ flavor: { name: 'bench', ram: 32, vcpus: 1, disk: 0 } }))).body) as { flavor: { id: string } };

    agent = spawnCli(['agent', '--server', base, '--token-file', join(dataDir, 'agent-token'), '--state-dir', stateDir, '--hostname', hostname,
      '--concurrency', String(AGENT_CONCURRENCY), '--cpu-allocation-ratio', '10000', '--ram-allocation-ratio', '100', '--cgroup-parent', CGROUP_PARENT, '--log-level', 'warn'], PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []);
    await waitAgent(session, hostname, agent);
    // --network: one tenant network with room for every server, a security group with one rule
    let net: { id: string } | null = null;
    let sg: { id: string } | null = null;
    const neutron = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const r = await request(`${base}/network/v2.0${path}`, method, H, body === undefined ? undefined : JSON.stringify(body));
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
      return (r.body ? JSON.parse(r.body) : {}) as T;
    };
    if (NETWORK) {
      await neutron('PUT', `/quotas/${projectId}`, { quota: { port: -1 } });
      net = (await neutron<{ network: { id: string } }>('POST', '/networks', { network: { name: 'bench-net' } })).network;
      await neutron('POST', '/subnets', { subnet: { network_id: net.id, cidr: '10.200.0.0/16', ip_version: 4 } });
      sg = (await neutron<{ security_group: { id: string } }>('POST', '/security-groups', { security_group: { name: 'bench-sg' } })).security_group;
      await neutron('POST', '/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 80 } });
    }
    const placement = NETWORK ? { networks: [{ uuid: net!.id }], security_groups: [{ name: 'bench-sg' }] } : { networks: 'none' };

    // warm-up: one server, so the image is fetched and unpacked before timing
    const warm = JSON.parse((await request(`${base}/compute/v2.1/servers`, 'POST', H, JSON.stringify({ server: { name: 'warm', imageRef: img.id, flavorRef: flavor.flavor.id, ...placement } }))).body) as { server: { id: string } };
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
    const cpuStart = { server: cpuOf(server.pid!), agent: cpuTree(agent.pid!), agentNode: ownCpu(agent.pid!), bench: cpuOf('self') };
    let polling = true;
    const poller = (async () => {
      let since = new Date(startWall - 1000).toISOString();
      while (polling) {
        // a margin for updates computed before this poll but committed after it (times come from launched_at, not from polling)
        const pollStart = new Date(Date.now() - 1000).toISOString();
        const r = await request(`${base}/compute/v2.1/servers/detail?changes-since=${encodeURIComponent(since)}&limit=1000`, 'GET', H);
        if (r.status === 200) {
          for (const s of (JSON.parse(r.body) as { servers: Array<Record<string, any>> }).servers) {
            if (s.status === 'ACTIVE' && sent.has(s.id) && !active.has(s.id)) active.set(s.id, launchedAt(s));
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
      const r = await request(`${base}/compute/v2.1/servers`, 'POST', H, JSON.stringify({ server: { name: `boot-${i}`, imageRef: img.id, flavorRef: flavor.flavor.id, ...placement } }));
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
    const cpu = { server: cpuOf(server.pid!) - cpuStart.server, agent: cpuTree(agent.pid!) - cpuStart.agent, agentNode: ownCpu(agent.pid!) - cpuStart.agentNode, bench: cpuOf('self') - cpuStart.bench };
    const lastActive = Math.max(...active.values());
    const wallS = (lastActive - startWall) / 1000;
    const lat = [...active.entries()].map(([id, t]) => t - sent.get(id)!).sort((a, b) => a - b);
    const perSecond = active.size / wallS;
    console.log(`API: ${N} POSTs in ${(postsMs / 1000).toFixed(2)} s; ${active.size} ACTIVE, ${errors.length} ERROR; all ACTIVE after ${wallS.toFixed(2)} s`);
    console.log(`boot throughput: ${perSecond.toFixed(1)} servers/s to ACTIVE; time to ACTIVE: p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms, max ${(lat.at(-1) ?? 0).toFixed(0)} ms`);
    const agentMs = (cpu.agent * 1000) / N;
    const nodeMs = (cpu.agentNode * 1000) / N;
    console.log(`CPU per server: agent ${agentMs.toFixed(1)} ms (Node ${nodeMs.toFixed(1)}, its commands ${(agentMs - nodeMs).toFixed(1)}), server ${((cpu.server * 1000) / N).toFixed(1)} ms, bench client ${((cpu.bench * 1000) / N).toFixed(1)} ms`);
    const tRatio = perSecond / raw.perSecond;
    const cRatio = agentMs / raw.cpuMs;
    console.log(`RATIO throughput (API / raw loop): ${tRatio.toFixed(2)}x (target >= 1.5x: ${tRatio >= 1.5 ? 'met' : 'NOT met'})`);
    console.log(`RATIO agent CPU per server (agent tree / raw loop): ${cRatio.toFixed(2)}x (target <= 1.3x: ${cRatio <= 1.3 ? 'met' : 'NOT met'})`);
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
    // the ports' nft chains are checked gone at the end: their ids before the servers take them along
    const portIds = net ? (await neutron<{ ports: Array<{ id: string }> }>('GET', `/ports?network_id=${net.id}&device_owner=compute:nova`)).ports.map((p) => p.id) : [];
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
    if (net && sg) {
      // the ports went with their servers; the network's bridge, DHCP namespace and the group's rules go with these
      await neutron('DELETE', `/networks/${net.id}`);
      await neutron('DELETE', `/security-groups/${sg.id}`);
      const bridge = bridgeName(net.id);
      for (let i = 0; existsSync(`/sys/class/net/${bridge}`) || existsSync(`/run/netns/${dhcpNamespace(net.id)}`); i++) {
        if (i > 600) { left.push(`the network's bridge or DHCP namespace`); break; }
        await sleep(50);
      }
      // the agent removes the ports' and the group's chains after the API has forgotten them: wait for it
      const chains = sgChains(sg.id);
      const named = [chains.ingress, chains.egress, ...portIds.map((p) => portChains(p).ingress)];
      for (let i = 0; ; i++) {
        const nft = (await run('nft', ['list', 'table', 'inet', 'stratus'])).stdout;
        const still = named.filter((c) => nft.includes(c));
        if (!still.length) break;
        if (i > 600) { left.push(`${still.length} nft chains of the ports and the security group`); break; }
        await sleep(50);
      }
    }
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
    console.log(left.length ? `LEFT BEHIND: ${left.join(', ')}` : `nothing left behind (containers, mounts, namespaces, cgroups, directories, claims${NETWORK ? ', the network\'s bridge, DHCP namespace and rules' : ''})`);
    if (left.length) process.exitCode = 1;
  } finally {
    await stopChild(agent);
    await stopChild(server);
    if (!KEEP) {
      // the raw loop's leftovers, if it failed half-way
      const root = join(rawDir, 'runc');
      for (const id of existsSync(root) ? readdirSync(root) : []) await run('runc', ['--root', root, 'delete', '--force', id]);
      for (const ns of existsSync('/run/netns') ? readdirSync('/run/netns').filter((x) => x.startsWith(`raw-${process.pid}-`)) : []) await run('ip', ['netns', 'del', ns]);
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
