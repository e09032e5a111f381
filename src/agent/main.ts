// Entry points of the agent for the CLI: `stratus agent` (run one), the
// supervisor `stratus up` uses to run one agent beside the server, and the
// default images' import (image-import.ts) and builders.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { Agent, RECONCILERS } from './agent.ts';
import { AgentClient, ServerList } from './client.ts';
import { ContainerDriver } from './drivers/container/driver.ts';
import { buildBusyboxImage, ensureBusyboxStatic } from './drivers/container/busybox.ts';
import { ContainerConsoles } from './drivers/container/console.ts';
import { NetworkDriver } from './drivers/network/driver.ts';
import { MetadataProxy } from './metadata-proxy.ts';
import { networkReconcilers } from './drivers/network/reconciler.ts';
import { volumeDirOf } from './drivers/volume/host.ts';
import { FileBackend } from './drivers/volume/file.ts';
import { VolumeDriver } from './drivers/volume/driver.ts';
import { volumeReconcilers } from './drivers/volume/reconciler.ts';
import { onPath, run, runOk } from './exec.ts';
import { buildTinyImage, TINY_IMAGE_NAME } from './drivers/vm/guest/tiny-image.ts';
import { buildDebianImage, DEBIAN_CMDLINE } from './drivers/vm/guest/debian.ts';
import { VmDriver } from './drivers/vm/driver.ts';
import { VmContainerDriver } from './drivers/vm-container/driver.ts';
import { QEMU } from './drivers/vm/accel.ts';
import { BaremetalConductor } from './drivers/baremetal/conductor.ts';
import { baremetalReconcilers } from './drivers/baremetal/reconciler.ts';
import { bmcClient } from './drivers/baremetal/bmc/factory.ts';
export { importDefaultImage, importTinyImage } from './image-import.ts';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { consoleProviders, StreamChannel, withStreams } from './stream.ts';

export interface AgentFlags {
  /** The server's URL, or the control-plane replicas' (each may also hold several, comma-separated). */
  server: string | string[];
  tokenFile: string;
  stateDir: string;
  hostname?: string;
  concurrency?: number;
  availabilityZone?: string;
  cgroupParent?: string;
  logLevel?: string;
  cpuAllocationRatio?: number;
  ramAllocationRatio?: number;
  diskAllocationRatio?: number;
  /** Console log cap in bytes (the newest half is kept when exceeded). */
  consoleLogMax?: number;
  /** How often every server is observed (ms); not a CLI flag. */
  sweepIntervalMs?: number;
  /** Serve tenant networks (the network driver: `network`, `port`, `security_group`); default true (`--no-network`: off). */
  network?: boolean;
  /** This host's VXLAN endpoint, registered as its host_ip (default: the address the route to the server leaves from). */
  underlayIp?: string;
  /** The namespace holding the network driver's bridges and nft tables (default: the agent's own); tests only. */
  networkHostNetns?: string | null;
  /** Flat networks on these physical networks use these existing host bridges (`--bridge-mapping public=br-ex`). */
  bridgeMappings?: Record<string, string>;
  /** Run `vm` servers (the VM driver) and `vm-container` servers (VM-isolated containers) when qemu-system-x86_64 is on PATH; default true (`--no-vm`: off). */
  vm?: boolean;
  /** A live migration's copy rate from this host in MiB/s, memory and each disk (Nova's live_migration_bandwidth); 0 or absent: unlimited. */
  liveMigrationBandwidth?: number;
  /** Serve volumes (the volume driver, file backend under STATE_DIR/volumes); default true (`--no-volume`: off). */
  volume?: boolean;
  /** Be a bare-metal conductor (`baremetal_node`: ipmi and redfish nodes); needs `baremetalAddress`. */
  baremetal?: boolean;
  /** The conductor's address on the provisioning network (its HTTP endpoint for iPXE and the deploy ramdisk listens there). */
  baremetalAddress?: string;
  baremetalPort?: number;
  /** How long a node may take from power-on to its deploy ramdisk's first call, in seconds (default 900). */
  baremetalRamdiskTimeout?: number;
}

export function readToken(file: string): string {
  const t = readFileSync(file, 'utf8').trim();
  if (t.length < 32) throw new Error(`${file} does not hold an agent token`);
  return t;
}

/** Builds an agent from flags (not started). */
export function createAgent(f: AgentFlags, log: Logger): Agent {
  const stateDir = resolve(f.stateDir);
  const token = readToken(f.tokenFile);
  const client = new AgentClient(new ServerList(f.server), token, f.hostname ?? osHostname());
  const driver = new ContainerDriver({
    stateDir, log: log.child({ component: 'container' }), cgroupParent: f.cgroupParent, consoleCap: f.consoleLogMax,
    fetchImage: (id, dest) => client.downloadImage(id, dest),
  });

  const network = f.network === false ? null : new NetworkDriver({
    stateDir, log: log.child({ component: 'network' }), underlayIp: f.underlayIp ?? null, hostNetns: f.networkHostNetns ?? null, bridgeMappings: f.bridgeMappings,
    metadata: new MetadataProxy({ servers: client.servers, token, log: log.child({ component: 'metadata' }) }),
    serverHere: (id) => driver.hasServer(id),
  });
  // VMs beside containers: the container driver stays first (its capacity is the host's)
  const vm = f.vm === false || !onPath(QEMU) ? null : new VmDriver({
    // the VMs' cgroups beside the containers' (`<parent>-vm`): two agents on one machine (add-local) never share one
    stateDir, log: log.child({ component: 'vm' }), consoleCap: f.consoleLogMax, netns: f.networkHostNetns ?? null,
    ...(f.cgroupParent ? { cgroupParent: `${f.cgroupParent}-vm` } : {}),
    ...(f.liveMigrationBandwidth ? { migrationBandwidthMiB: f.liveMigrationBandwidth } : {}),
    fetchImage: (id, dest) => client.downloadImage(id, dest),
  });
  // VM-isolated containers (OCI images in a VM of their own): wherever VMs run
  const vmc = vm ? new VmContainerDriver({
    stateDir, log: log.child({ component: 'vm-container' }), consoleCap: f.consoleLogMax, netns: f.networkHostNetns ?? null,
    ...(f.cgroupParent ? { cgroupParent: `${f.cgroupParent}-vmc` } : {}),
    fetchImage: (id, dest) => client.downloadImage(id, dest),
  }) : null;
  const volume = f.volume === false ? null : new VolumeDriver({
    backends: [new FileBackend({ dir: volumeDirOf(stateDir), fetchImage: (id, dest) => client.downloadImage(id, dest) })], log: log.child({ component: 'volume' }),
  });
  if (f.baremetal && !f.baremetalAddress) throw new Error('--baremetal needs --baremetal-address (the conductor\'s address on the provisioning network)');
  const conductor = !f.baremetal ? null : new BaremetalConductor({
    stateDir, log: log.child({ component: 'baremetal' }), address: f.baremetalAddress!, port: f.baremetalPort,
    ramdiskTimeoutMs: f.baremetalRamdiskTimeout ? f.baremetalRamdiskTimeout * 1000 : undefined,
    fetchImage: (id, dest) => client.downloadImage(id, dest), bmc: bmcClient,
  });
  const drivers = [driver, ...(vm ? [vm] : []), ...(vmc ? [vmc] : []), ...(network ? [network] : []), ...(volume ? [volume] : []), ...(conductor ? [conductor] : [])];
  // consoles: each stream goes to the driver holding the server
  const streams = new StreamChannel({
    server: client.servers.urls, token, hostname: client.hostname, log: log.child({ component: 'streams' }),
    providers: consoleProviders(new ContainerConsoles(stateDir), ...(vm ? [vm] : []), ...(vmc ? [vmc] : [])),
  });
  return withStreams(new Agent({
    client, drivers, log, concurrency: f.concurrency, availabilityZone: f.availabilityZone, sweepIntervalMs: f.sweepIntervalMs,
    allocationRatios: { cpu: f.cpuAllocationRatio, ram: f.ramAllocationRatio, disk: f.diskAllocationRatio },
    hostIp: f.underlayIp, reconcilers: { ...RECONCILERS, ...(network ? networkReconcilers : {}), ...(volume ? volumeReconcilers : {}), ...(conductor ? baremetalReconcilers : {}) },
  }), streams);
}

/**
 * The address this host's VXLAN traffic leaves from: the source of the route
 * to the (first) server, 127.0.0.1 when the server is on this host's loopback.
 */
export async function underlayFor(server: string | string[]): Promise<string> {
  const first = (Array.isArray(server) ? server : [server]).flatMap((s) => s.split(',')).map((s) => s.trim()).find(Boolean) ?? '127.0.0.1';
  const host = new URL(first).hostname.replace(/^\[|\]$/g, '');
  const addr = isIP(host) ? host : (await lookup(host)).address;
  if (addr.startsWith('127.') || addr === '::1') return '127.0.0.1';
  const r = await run('ip', ['-j', 'route', 'get', addr]);
  const src = r.code === 0 ? (JSON.parse(r.stdout) as Array<{ prefsrc?: string }>)[0]?.prefsrc : undefined;
  if (!src) throw new Error(`cannot tell this host's underlay address toward ${addr}: give --underlay-ip`);
  return src;
}

/**
 * The all-in-one's external bridge (DevStack's br-ex): a host bridge with the
 * host's address on the external network, so floating IPs and router
 * gateways on it are reachable from the host. Made when missing, never
 * removed (it belongs to the host, not to a run of the cloud); nothing is
 * forwarded or NATed from it to the host's other interfaces.
 */
export async function ensureExternalBridge(name: string, cidr: string): Promise<string[]> {
  const done: string[] = [];
  const ip = async (args: string[]) => {
    const r = await run('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const show = await run('ip', ['-j', 'addr', 'show', 'dev', name]);
  const link = show.code === 0 ? (JSON.parse(show.stdout) as Array<{ flags: string[]; linkinfo?: unknown; addr_info?: Array<{ local: string; prefixlen: number }> }>)[0] : undefined;
  if (!link) {
    await ip(['link', 'add', 'name', name, 'type', 'bridge']);
    done.push(`bridge ${name}`);
  }
  if (!link?.flags.includes('UP')) await ip(['link', 'set', 'dev', name, 'up']);
  if (!(link?.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === cidr)) {
    await ip(['addr', 'replace', cidr, 'dev', name]);
    done.push(`${cidr} on ${name}`);
  }
  return done;
}

/** `stratus agent`: runs until SIGTERM/SIGINT; containers keep running when it stops. */
export async function runAgent(f: AgentFlags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the agent runs containers: run it as root');
  const log = pino({ level: f.logLevel ?? 'info', base: { service: 'stratus-agent' } });
  await fsp.mkdir(resolve(f.stateDir), { recursive: true, mode: 0o700 });
  const underlayIp = f.network === false ? f.underlayIp : f.underlayIp ?? await underlayFor(f.server);
  const agent = createAgent({ ...f, underlayIp }, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'agent stopping; servers keep running');
    agent.stop().then(() => process.exit(0), (err: Error) => {
      log.error({ err: err.message }, 'agent stop failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
}

/**
 * Runs `stratus agent` as a child process and restarts it when it dies (the
 * all-in-one `up`). A child, not in-process: the data plane keeps its own
 * process (a crash there does not take the APIs down, and the agent can be
 * restarted alone, as on a multi-host cloud). `output`: a file descriptor
 * for the child's stdout and stderr (its log) instead of ours. `wrap`: a
 * command the agent runs under (`nsenter --net=…` for a host in a namespace);
 * `execArgv`: Node's flags for it (default: ours).
 */
export function superviseAgent(o: { cli: string; args: string[]; log: Logger; output?: number; wrap?: string[]; execArgv?: string[] }): { stop(): Promise<void>; pid(): number | undefined } {
  let child: ChildProcess | null = null;
  let stopped = false;
  let delay = 500;
  const startChild = () => {
    if (stopped) return;
    const started = Date.now();
    const argv = [process.execPath, ...(o.execArgv ?? process.execArgv), o.cli, 'agent', ...o.args];
    const [cmd, ...args] = [...(o.wrap ?? []), ...argv] as [string, ...string[]];
    child = spawn(cmd, args, { stdio: ['ignore', o.output ?? 'inherit', o.output ?? 'inherit'] });
    child.on('exit', (code, signal) => {
      child = null;
      if (stopped) return;
      if (Date.now() - started > 30_000) delay = 500;
      o.log.warn({ code, signal, restartInMs: delay }, 'agent exited; restarting it');
      setTimeout(startChild, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };
  startChild();
  return {
    pid: () => child?.pid,
    async stop() {
      stopped = true;
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolveStop) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
        c.once('exit', () => {
          clearTimeout(t);
          resolveStop();
        });
        c.kill('SIGTERM');
      });
    },
  };
}

/** `stratus image build-busybox --output F` (installs busybox-static first when missing and run as root). */
export async function buildBusybox(output: string): Promise<string> {
  if (process.getuid?.() === 0) await ensureBusyboxStatic();
  const r = await buildBusyboxImage(resolve(output));
  return `wrote ${resolve(output)} (${r.size} bytes, image ${r.configDigest})`;
}


/**
 * `stratus image build-tiny [--out F] [--raw]`: the small VM image (built, or
 * found in the guest cache), copied to F when given.
 */
export async function buildTiny(o: { out?: string; cacheDir?: string; raw?: boolean }): Promise<string> {
  const img = await buildTinyImage({ cacheDir: o.cacheDir, log: (m) => process.stderr.write(`${m}\n`) });
  const lines = [
    `${TINY_IMAGE_NAME} ${img.key}: ${img.kernel.package} ${img.kernel.version}`,
    `  disk (qcow2):  ${img.disk} (${img.size} bytes)`,
    `  kernel:        ${img.vmlinuz}`,
    `  initramfs:     ${img.initrd}`,
    `  command line:  ${img.cmdline}`,
  ];
  if (o.out) {
    const out = resolve(o.out);
    if (o.raw) await runOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', img.disk, out], { timeoutMs: 300_000 });
    else await fsp.copyFile(img.disk, out);
    lines.push(`wrote ${out} (${o.raw ? 'raw' : 'qcow2'}, ${(await fsp.stat(out)).size} bytes)`);
  }
  return lines.join('\n');
}

/** `stratus image build-debian --out F`: a Debian 12 + cloud-init + OpenSSH qcow2 (debootstrap; minutes). */
export async function buildDebian(o: { out: string; mirror?: string; size?: number }): Promise<string> {
  const r = await buildDebianImage({ out: o.out, mirror: o.mirror, sizeMiB: o.size, log: (m) => process.stderr.write(`${m}\n`) });
  return [
    `wrote ${r.out} (qcow2, ${r.size} bytes; kernel ${r.kernel}, command line ${DEBIAN_CMDLINE})`,
    `openstack image create --container-format bare --disk-format qcow2 --property hw_disk_bus=virtio --property hw_vif_model=virtio --file ${r.out} debian-12`,
  ].join('\n');
}
