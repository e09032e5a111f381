// bench/vm: how long a VM takes through the cloud, as ratios to plain QEMU
// booting the same guest in the same run (absolute numbers on these shared
// 2-core machines move by tens of percent from run to run; the ratios less).
//
// Runs a real `stratus server` and a real `stratus agent` (child processes, a
// temp SQLite and a temp agent state dir; the agent's VM driver, its network
// driver, no volumes), uploads the small guest `stratus-tiny` (built or taken
// from the cache by buildTinyImage, as `stratus up` does) with its Glance
// record, makes a flavor (128 MiB, 1 vCPU, 1 GiB), a key pair, a tenant network
// and a security group letting TCP 22 in, and puts a busybox container on the
// network for the whole run (a host holds a network's bridge and DHCP
// namespace while it has a server on it: each VM then finds the network set up
// on the host, as it does on a network with other servers). Then:
//   1. --n rounds, one VM at a time, the two sides alternating (which goes
//      first alternates too):
//      - raw: plain qemu-system-x86_64 booting the same disk: a qcow2 overlay
//        of 1 GiB on the tiny image, a config drive (the driver's own
//        buildConfigDrive: host name and the key), a tap on a bridge in a
//        namespace this benchmark makes, with dnsmasq handing out a fixed
//        address per MAC, as the cloud's DHCP does; the same machine, CPU
//        model, accelerator (TCG), memory, vCPUs, virtio disk, config drive
//        (virtio), NIC (virtio) and entropy device (virtio-rng) as the driver
//        gives (src/agent/drivers/vm/driver.ts, args()). Not given: what the
//        cloud adds around the guest (VGA + VNC, spare PCIe root ports, QMP,
//        -sandbox, -runas, the cgroup), which the cloud side pays. Timed from
//        before the overlay is made to the SSH banner.
//      - API: POST /servers (the network, the group, config_drive, the key)
//        to ACTIVE (launched_at) and to the SSH banner.
//      "Answers SSH": the guest's dropbear sends its `SSH-` banner on a TCP
//      connect to port 22. A probe process (Node, one per namespace) tries
//      every 100 ms from inside the namespace the guest's network lives in:
//      the network's DHCP namespace (qdhcp-<network>) for the cloud's VM,
//      the benchmark's namespace for the raw one; nothing is added to the
//      host's own interfaces or routes.
//      Prints the medians and the ratio API / raw to SSH (target <= 1.1x).
//   2. VMs started at once, 1, 2, 4, ... up to --parallel-max, each side in
//      turn: VMs per minute to SSH-ready (count / time from the first start
//      to the last banner), until the cloud's rate stops growing (less than
//      5 % over the best so far).
//   3. Deletes the servers through the API (then the network and the group),
//      kills the raw QEMUs and dnsmasq by their PIDs and deletes the
//      benchmark's namespace (its taps and bridge with it), also on failure
//      and on SIGINT; then checks that nothing is left: no qemu of this run,
//      no server directory, VM cgroup, port tap, network bridge or DHCP
//      namespace. If the API could not delete something, the VM and network
//      drivers' own destroy run on the agent's state dir.
//
// Usage (as root, a cloud of its own: under flock /tmp/stratus-cloud.lock):
//   bin/bench vm [--n 3] [--parallel-max 4] [--keep]
//   --keep: the temp data dir (the server's database, the agent's state and log files) stays
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { onPath, run, runOk } from '../src/agent/exec.ts';
import { buildConfigDrive } from '../src/agent/drivers/vm/configdrive.ts';
import { VmDriver } from '../src/agent/drivers/vm/driver.ts';
import { QEMU } from '../src/agent/drivers/vm/accel.ts';
import { buildTinyImage, TINY_IMAGE_GLANCE } from '../src/agent/drivers/vm/guest/tiny-image.ts';
import { buildBusyboxImage } from '../src/agent/drivers/container/busybox.ts';
import { NetworkDriver } from '../src/agent/drivers/network/driver.ts';
import { bridgeName, dhcpNamespace, tapName } from '../src/network/protocol.ts';
import { api, freePort, launchedAt, median, numberFlag, request, sleep, spawnCli, spawnServer, stopChild, uploadImage, waitAgent, waitServer, type Session } from './lib.ts';

const N = numberFlag('n', 3);
const PARALLEL_MAX = numberFlag('parallel-max', 4);
const KEEP = process.argv.includes('--keep');
/** The flavor (and the raw QEMU's size). */
const RAM_MB = 128;
const VCPUS = 1;
const DISK_GB = 1;
/** Not a timing assertion: how long a guest may take under TCG on a loaded box before the run gives up. */
const BOOT_WAIT_MS = 600_000;
/** The raw side's network (inside the benchmark's namespace) and its addresses: .10 + slot. */
const RAW_NET = '10.202.0';
const RAW_SLOTS = 64;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const s1 = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * The SSH probe: a Node process inside a network namespace that, for each
 * address written to its stdin, connects to port 22 every 100 ms until the
 * peer sends an `SSH-` banner, then prints `<address> <Date.now()>`.
 */
const PROBE = `
const net = require('node:net');
const want = new Set(), busy = new Set();
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => { if (l.trim()) want.add(l.trim()); }).on('close', () => process.exit(0));
function attempt(ip) {
  busy.add(ip);
  const s = net.connect({ host: ip, port: 22, timeout: 500 });
  let buf = '';
  s.setEncoding('latin1');
  s.on('data', (d) => {
    buf += d;
    if (buf.length >= 4 && buf.startsWith('SSH-') && want.delete(ip)) process.stdout.write(ip + ' ' + Date.now() + '\\n');
    if (buf.length >= 4) s.destroy();
  });
  s.on('timeout', () => s.destroy());
  s.on('error', () => {});
  s.on('close', () => busy.delete(ip));
}
setInterval(() => { for (const ip of want) if (!busy.has(ip)) attempt(ip); }, 100);
`;

class SshProbe {
  readonly child: ChildProcess;
  private readonly waiting = new Map<string, (at: number) => void>();
  constructor(netns: string) {
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', PROBE], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const [ip, at] = l.split(' ');
      this.waiting.get(ip!)?.(Number(at));
      this.waiting.delete(ip!);
    });
  }
  /** Resolves with the time (Date.now()) the guest at `ip` first sent its SSH banner. */
  banner(ip: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(ip); reject(new Error(`${ip} did not answer SSH within ${BOOT_WAIT_MS / 1000} s`)); }, BOOT_WAIT_MS);
      this.waiting.set(ip, (at) => { clearTimeout(timer); resolve(at); });
      this.child.stdin!.write(`${ip}\n`);
    });
  }
  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** One boot's times, Date.now() based: when it was asked for, ACTIVE (API side), the SSH banner. */
interface Boot { t0: number; active?: number; ssh: number }

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/vm runs VMs, namespaces and a cloud: run it as root');
  if (!onPath(QEMU)) throw new Error(`${QEMU} is not installed`);
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-vm-'));
  const stateDir = join(dataDir, 'agent');
  const rawDir = join(dataDir, 'raw');
  const rawNs = `stratus-bvm-${process.pid}`;
  const hostname = `bench-vm-${process.pid}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const password = 'bench-admin-password';
  let server: ChildProcess | null = null;
  let agent: ChildProcess | null = null;
  let session: Session | null = null;
  let net: { id: string } | null = null;
  let sg: { id: string } | null = null;
  /** Servers not yet deleted; every server this run made. */
  const servers = new Set<string>();
  const made = new Set<string>();
  const portIds = new Set<string>();
  const rawQemus = new Map<number, ChildProcess>();
  const probes: SshProbe[] = [];
  let dnsmasq: ChildProcess | null = null;
  const tablesBefore = (await run('nft', ['list', 'tables'])).stdout;

  let cleaning: Promise<void> | null = null;
  const cleanup = () => (cleaning ??= (async () => {
    for (const p of probes) p.stop();
    // raw side: its QEMUs and dnsmasq by PID, then the namespace (its bridge and taps go with it)
    for (const c of [...rawQemus.values(), ...(dnsmasq ? [dnsmasq] : [])]) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      }
    }
    if (existsSync(`/run/netns/${rawNs}`)) await run('ip', ['netns', 'del', rawNs]);
    // cloud side: through the API while it runs
    const left: string[] = [];
    if (session && agent?.exitCode === null && server?.exitCode === null) {
      const s = session;
      try {
        if (net) for (const p of (await api<{ ports: Array<{ id: string }> }>(s, 'GET', `/network/v2.0/ports?network_id=${net.id}`)).ports) portIds.add(p.id);
        for (const id of servers) await request(`${base}/compute/v2.1/servers/${id}`, 'DELETE', s.H);
        for (const id of servers) {
          for (let i = 0; (await request(`${base}/compute/v2.1/servers/${id}`, 'GET', s.H)).status !== 404; i++) {
            if (i > 1200) throw new Error(`server ${id} was not deleted`);
            await sleep(100);
          }
          servers.delete(id);
        }
        if (net) {
          await api(s, 'DELETE', `/network/v2.0/networks/${net.id}`);
          for (let i = 0; existsSync(`/sys/class/net/${bridgeName(net.id)}`) || existsSync(`/run/netns/${dhcpNamespace(net.id)}`); i++) {
            if (i > 600) throw new Error('the network\'s bridge or DHCP namespace stayed');
            await sleep(100);
          }
        }
        if (sg) await api(s, 'DELETE', `/network/v2.0/security-groups/${sg.id}`);
        // the agent removes what the API forgot on its next pass: the ports' taps are the sign
        for (let i = 0; [...portIds].some((p) => existsSync(`/sys/class/net/${tapName(p)}`)); i++) {
          if (i > 600) break;
          await sleep(100);
        }
      } catch (err) {
        console.log(`cleanup through the API failed: ${(err as Error).message}; the drivers clean up below`);
      }
    }
    await stopChild(agent);
    await stopChild(server);
    // whatever the API did not remove: the drivers' own destroy on the agent's state
    const silent = pino({ level: 'silent' });
    const vm = new VmDriver({ stateDir, log: silent, fetchImage: async () => undefined });
    for (const id of await vm.localServers()) await vm.destroy(id).catch((err: Error) => left.push(`VM ${id}: ${err.message}`));
    if (existsSync(join(stateDir, 'network'))) {
      const nd = new NetworkDriver({ stateDir, log: silent, hostNetns: null, serverHere: async () => false });
      for (const kind of ['port', 'network', 'security_group'] as const) {
        for (const id of await nd.list(kind)) await nd.destroy(kind, id).catch((err: Error) => left.push(`${kind} ${id}: ${err.message}`));
      }
      await nd.stop();
    }
    // our nft tables, when this run made them (none of another cloud's)
    for (const t of (await run('nft', ['list', 'tables'])).stdout.split('\n').map((l) => l.trim()).filter((l) => /^table \S+ stratus$/.test(l))) {
      if (!tablesBefore.includes(t)) await run('nft', ['delete', ...t.split(' ').slice(1)]);
    }
    // what is left
    const qemus = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dataDir) && readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('qemu'); } catch { return false; }
    });
    if (qemus.length) left.push(`qemu processes ${qemus.join(' ')}`);
    const dirs = existsSync(join(stateDir, 'vm', 'servers')) ? readdirSync(join(stateDir, 'vm', 'servers')) : [];
    if (dirs.length) left.push(`${dirs.length} VM directories (overlays)`);
    const taps = [...portIds].filter((p) => existsSync(`/sys/class/net/${tapName(p)}`));
    if (taps.length) left.push(`${taps.length} port taps`);
    if (net && existsSync(`/sys/class/net/${bridgeName(net.id)}`)) left.push('the network bridge');
    if (net && existsSync(`/run/netns/${dhcpNamespace(net.id)}`)) left.push('the DHCP namespace');
    if (existsSync(`/run/netns/${rawNs}`)) left.push(`the namespace ${rawNs}`);
    const cgroups = ['', 'cpu', 'memory', 'pids'].flatMap((c) => [...made].filter((id) => existsSync(join('/sys/fs/cgroup', c, 'stratus-vm', id))));
    if (cgroups.length) left.push(`${cgroups.length} VM cgroups`);
    console.log(left.length ? `LEFT BEHIND: ${left.join('; ')}` : 'cleanup: nothing left behind (qemu processes, overlays and VM directories, taps, bridges, namespaces, cgroups)');
    if (left.length) process.exitCode = 1;
    if (!KEEP) rmSync(dataDir, { recursive: true, force: true });
  })());
  process.once('SIGINT', () => {
    console.log('SIGINT: cleaning up');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    console.log(`stratus VM benchmark: ${N} rounds, parallel up to ${PARALLEL_MAX}, ${cpus().length} CPUs; load average ${load()}`);
    const tiny = await buildTinyImage({ log: (m) => console.log(`tiny image: ${m}`) });
    const keyFile = join(dataDir, 'id');
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-vm', '-f', keyFile]);
    const publicKey = readFileSync(`${keyFile}.pub`, 'utf8').trim();

    // ---- the raw side's network: a namespace with a bridge, dnsmasq with a fixed address per MAC
    await fsp.mkdir(rawDir, { recursive: true });
    await runOk('ip', ['netns', 'add', rawNs]);
    const inNs = (args: string[]) => runOk('ip', ['-n', rawNs, ...args]);
    await inNs(['link', 'set', 'lo', 'up']);
    await inNs(['link', 'add', 'br0', 'type', 'bridge']);
    await inNs(['addr', 'add', `${RAW_NET}.1/24`, 'dev', 'br0']);
    await inNs(['link', 'set', 'br0', 'up']);
    const rawMac = (slot: number) => `52:54:00:b0:00:${slot.toString(16).padStart(2, '0')}`;
    const rawIp = (slot: number) => `${RAW_NET}.${10 + slot}`;
    dnsmasq = spawn('ip', ['netns', 'exec', rawNs, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-hosts', '--no-resolv', '--port=0',
      '--bind-interfaces', '--interface=br0', '--except-interface=lo', '--leasefile-ro', '--dhcp-authoritative', '--user=root', '--group=root',
      `--pid-file=${join(rawDir, 'dnsmasq.pid')}`, `--dhcp-range=${RAW_NET}.0,static,255.255.255.0,3600s`,
      ...Array.from({ length: RAW_SLOTS }, (_, i) => `--dhcp-host=${rawMac(i)},${rawIp(i)}`)], { stdio: ['ignore', 'ignore', 'inherit'] });
    const rawProbe = new SshProbe(rawNs);
    probes.push(rawProbe);

    /** Plain QEMU: overlay, config drive, tap, qemu (in the namespace) until the SSH banner; left running. */
    const bootRaw = async (slot: number): Promise<Boot> => {
      const dir = join(rawDir, `vm${slot}`);
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.mkdir(dir);
      const tap = `rtap${slot}`;
      const t0 = Date.now();
      await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', tiny.disk, '-F', 'qcow2', join(dir, 'root.qcow2'), String(DISK_GB * 2 ** 30)]);
      const name = `raw-${slot}`;
      await buildConfigDrive({ id: randomUUID(), config_drive: {
        requested: true, user_data: null, vendor_data: {}, network_data: { links: [], networks: [], services: [] },
        meta_data: { name, hostname: name, launch_index: 0, availability_zone: 'nova', public_keys: { bench: publicKey }, keys: [{ name: 'bench', type: 'ssh', data: publicKey }] },
      } }, join(dir, 'config-2.iso'), join(dir, 'cd.tmp'));
      await inNs(['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      await inNs(['link', 'set', 'dev', tap, 'master', 'br0', 'up']);
      if (cleaning) throw new Error('interrupted');
      const q = spawn('ip', ['netns', 'exec', rawNs, QEMU,
        '-name', name, '-machine', 'q35', '-accel', 'tcg,tb-size=64', '-cpu', 'max', '-m', `${RAM_MB}M`, '-smp', String(VCPUS),
        '-nodefaults', '-no-user-config', '-rtc', 'base=utc', '-display', 'none', '-serial', `file:${join(dir, 'console.log')}`,
        '-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0',
        '-drive', `file=${join(dir, 'root.qcow2')},format=qcow2,if=none,id=drive-root,discard=unmap`, '-device', 'virtio-blk-pci,drive=drive-root,bootindex=0',
        '-drive', `file=${join(dir, 'config-2.iso')},format=raw,if=none,id=drive-config,readonly=on`, '-device', 'virtio-blk-pci,drive=drive-config,serial=config-2',
        '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no,vhost=off`, '-device', `virtio-net-pci,netdev=n0,mac=${rawMac(slot)}`,
      ], { stdio: ['ignore', 'ignore', 'inherit'] });
      rawQemus.set(slot, q);
      const ended = new Promise<never>((_, reject) => q.once('exit', (code, sig) => reject(new Error(`raw qemu ${slot} ended (${code ?? sig})`))));
      ended.catch(() => undefined);
      const ssh = await Promise.race([rawProbe.banner(rawIp(slot)), ended]);
      return { t0, ssh };
    };
    const stopRaw = async (slot: number): Promise<void> => {
      const q = rawQemus.get(slot);
      if (q && q.exitCode === null && q.signalCode === null) {
        const gone = new Promise((r) => q.once('exit', r));
        q.kill('SIGKILL');
        await gone;
      }
      rawQemus.delete(slot);
      await run('ip', ['-n', rawNs, 'link', 'del', `rtap${slot}`]);
      await fsp.rm(join(rawDir, `vm${slot}`), { recursive: true, force: true });
    };

    // ---- the cloud
    server = spawnServer(dataDir, port, password);
    session = await waitServer(base, password);
    const s = session;
    const imageId = await uploadImage(s, { name: 'stratus-tiny', visibility: 'public', ...TINY_IMAGE_GLANCE }, await fsp.readFile(tiny.disk));
    await api(s, 'PUT', `/compute/v2.1/os-quota-sets/${s.projectId}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
    await api(s, 'PUT', `/network/v2.0/quotas/${s.projectId}`, { quota: { port: -1 } });
    const flavorId = (await api<{ flavor: { id: string } }>(s, 'POST', '/compute/v2.1/flavors', { flavor: { name: 'bench-vm', ram: RAM_MB, vcpus: VCPUS, disk: DISK_GB } })).flavor.id;
    await api(s, 'POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'bench', public_key: publicKey } });
    agent = spawnCli(['agent', '--server', base, '--token-file', join(dataDir, 'agent-token'), '--state-dir', stateDir, '--hostname', hostname,
      '--no-volume', '--cpu-allocation-ratio', '100', '--ram-allocation-ratio', '100', '--log-level', 'warn']);
    await waitAgent(s, hostname, agent);
    net = (await api<{ network: { id: string } }>(s, 'POST', '/network/v2.0/networks', { network: { name: 'bench-vm-net' } })).network;
    await api(s, 'POST', '/network/v2.0/subnets', { subnet: { network_id: net.id, cidr: '10.201.0.0/24', ip_version: 4 } });
    sg = (await api<{ security_group: { id: string } }>(s, 'POST', '/network/v2.0/security-groups', { security_group: { name: 'bench-vm-ssh' } })).security_group;
    await api(s, 'POST', '/network/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 22, port_range_max: 22 } });
    // a host holds a network (bridge, DHCP namespace) while one of its servers has a port on it: a
    // busybox container stays on the network for the whole run, so that each VM finds it there, as
    // one more server on a busy network does
    const archive = join(dataDir, 'busybox.tar');
    await buildBusyboxImage(archive);
    const busybox = await uploadImage(s, { name: 'busybox', container_format: 'docker', disk_format: 'raw', visibility: 'public' }, await fsp.readFile(archive));
    const small = (await api<{ flavor: { id: string } }>(s, 'POST', '/compute/v2.1/flavors', { flavor: { name: 'bench-vm-holder', ram: 32, vcpus: 1, disk: 0 } })).flavor.id;
    const holder = (await api<{ server: { id: string } }>(s, 'POST', '/compute/v2.1/servers', { server: { name: 'bench-vm-holder', imageRef: busybox, flavorRef: small, networks: [{ uuid: net.id }] } })).server.id;
    servers.add(holder);
    made.add(holder);
    for (let i = 0; ; i++) {
      const v = (await api<{ server: { status: string } }>(s, 'GET', `/compute/v2.1/servers/${holder}`)).server;
      if (v.status === 'ACTIVE' && existsSync(`/run/netns/${dhcpNamespace(net.id)}`)) break;
      if (v.status === 'ERROR' || i > 1200) throw new Error(`the network's holder container: ${v.status}`);
      await sleep(100);
    }
    const apiProbe = new SshProbe(dhcpNamespace(net.id));
    probes.push(apiProbe);

    /** POST /servers until ACTIVE (launched_at) and until the SSH banner; left running. */
    let serial = 0;
    const bootApi = async (): Promise<Boot & { id: string }> => {
      if (cleaning) throw new Error('interrupted');
      const t0 = Date.now();
      const r = await api<{ server: { id: string } }>(s, 'POST', '/compute/v2.1/servers', { server: {
        name: `bench-vm-${serial++}`, imageRef: imageId, flavorRef: flavorId, key_name: 'bench', config_drive: true,
        networks: [{ uuid: net!.id }], security_groups: [{ name: 'bench-vm-ssh' }],
      } });
      const id = r.server.id;
      if (cleaning) {
        // the cleanup may have listed the servers already
        await request(`${base}/compute/v2.1/servers/${id}`, 'DELETE', s.H);
        throw new Error('interrupted');
      }
      servers.add(id);
      made.add(id);
      let banner: Promise<number> | null = null;
      let active: number | undefined;
      for (let i = 0; !banner || active === undefined; i++) {
        const v = (await api<{ server: Record<string, any> }>(s, 'GET', `/compute/v2.1/servers/${id}`)).server;
        if (v.status === 'ERROR') throw new Error(`server ${id}: ERROR ${JSON.stringify(v.fault ?? {})}`);
        if (v.status === 'ACTIVE') active = launchedAt(v);
        const ip = Object.values((v.addresses ?? {}) as Record<string, Array<{ addr: string }>>).flat()[0]?.addr;
        if (ip && !banner) banner = apiProbe.banner(ip);
        if (i * 200 > BOOT_WAIT_MS) throw new Error(`server ${id} stayed ${v.status}`);
        if (!banner || active === undefined) await sleep(200);
      }
      return { id, t0, active, ssh: await banner };
    };
    const deleteApi = async (ids: string[]): Promise<void> => {
      const ports = await api<{ ports: Array<{ id: string; device_id: string }> }>(s, 'GET', `/network/v2.0/ports?network_id=${net!.id}`);
      for (const p of ports.ports) if (ids.includes(p.device_id)) portIds.add(p.id);
      for (const id of ids) await api(s, 'DELETE', `/compute/v2.1/servers/${id}`);
      for (const id of ids) {
        for (let i = 0; (await request(`${base}/compute/v2.1/servers/${id}`, 'GET', s.H)).status !== 404; i++) {
          if (i > 1200) throw new Error(`server ${id} was not deleted`);
          await sleep(100);
        }
        servers.delete(id);
      }
    };

    // warm-up (not timed): the agent fetches the image into its cache, the DHCP server is up; and one raw boot
    console.log('warm-up: one VM through the API, one raw');
    const w = await bootApi();
    await deleteApi([w.id]);
    await bootRaw(0);
    await stopRaw(0);

    // ---- 1. one at a time
    const raws: Boot[] = [];
    const apis: Boot[] = [];
    for (let r = 0; r < N; r++) {
      const doRaw = async () => { const b = await bootRaw(0); await stopRaw(0); raws.push(b); return b; };
      const doApi = async () => { const b = await bootApi(); await deleteApi([b.id]); apis.push(b); return b; };
      const loadAt = load();
      let rb: Boot;
      let ab: Boot;
      if (r % 2 === 0) { rb = await doRaw(); ab = await doApi(); } else { ab = await doApi(); rb = await doRaw(); }
      console.log(`round ${r + 1}: raw to SSH ${s1(rb.ssh - rb.t0)}; API to ACTIVE ${s1(ab.active! - ab.t0)}, to SSH ${s1(ab.ssh - ab.t0)}; ratio ${((ab.ssh - ab.t0) / (rb.ssh - rb.t0)).toFixed(2)}x (load ${loadAt})`);
    }
    const rawSsh = median(raws.map((b) => b.ssh - b.t0));
    const apiSsh = median(apis.map((b) => b.ssh - b.t0));
    const apiActive = median(apis.map((b) => b.active! - b.t0));
    const ratio = apiSsh / rawSsh;
    console.log(`medians of ${N}: raw qemu to SSH ${s1(rawSsh)}; API to ACTIVE ${s1(apiActive)}, to SSH ${s1(apiSsh)}`);
    console.log(`RATIO time to SSH (API / raw qemu): ${ratio.toFixed(2)}x (target <= 1.1x: ${ratio <= 1.1 ? 'met' : 'NOT met'}); ACTIVE at ${(apiActive / rawSsh).toFixed(2)}x of the raw time to SSH`);

    // ---- 2. in parallel, until the cloud's rate stops growing
    let best = 0;
    for (let p = 1; p <= PARALLEL_MAX; p *= 2) {
      const loadAt = load();
      const slots = Array.from({ length: p }, (_, i) => i);
      const rb = await Promise.all(slots.map((i) => bootRaw(i)));
      for (const i of slots) await stopRaw(i);
      const ab = await Promise.all(slots.map(() => bootApi()));
      await deleteApi(ab.map((b) => b.id));
      const rate = (bs: Boot[]) => (bs.length * 60_000) / (Math.max(...bs.map((b) => b.ssh)) - Math.min(...bs.map((b) => b.t0)));
      const rr = rate(rb);
      const ar = rate(ab);
      console.log(`parallel ${String(p).padStart(2)}: raw ${rr.toFixed(1)} VMs/min (slowest ${s1(Math.max(...rb.map((b) => b.ssh - b.t0)))}), API ${ar.toFixed(1)} VMs/min (slowest ${s1(Math.max(...ab.map((b) => b.ssh - b.t0)))}, ACTIVE median ${s1(median(ab.map((b) => b.active! - b.t0)))}); API / raw ${(ar / rr).toFixed(2)}x (load ${loadAt})`);
      if (p > 1 && ar < best * 1.05) {
        console.log(`the cloud's rate stopped growing at ${p} in parallel (best ${best.toFixed(1)} VMs/min)`);
        break;
      }
      best = Math.max(best, ar);
    }
    console.log(`load average at the end ${load()}`);
  } finally {
    await cleanup();
  }
}

await main();
