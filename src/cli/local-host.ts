// A second host on this machine, for tests and demos: `stratus host
// add-local NAME` makes a network namespace with a veth underlay to the first
// host's namespace and runs `stratus agent` in it, with its own state dir
// (runc root, image cache, servers) and NAME as its host name; `host
// remove-local NAME` takes all of it away again.
//
// The agent in the namespace reaches the server through a relay: a listener
// on the namespace's own 127.0.0.1, made by a short-lived child that enters
// the namespace and hands the listening socket back over IPC, so that this
// process (still in the first host's namespace) accepts there and connects to
// the server on its 127.0.0.1. The server keeps listening where it did; the
// agent's URL is http://127.0.0.1:PORT inside the namespace.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { connect, isIPv4, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { run, runOk } from '../agent/exec.ts';
import { superviseAgent } from '../agent/main.ts';
import { ContainerDriver } from '../agent/drivers/container/driver.ts';
import { VmContainerDriver, VM_CONTAINER_KIND } from '../agent/drivers/vm-container/driver.ts';
import { VmDriver } from '../agent/drivers/vm/driver.ts';
import { NetworkDriver } from '../agent/drivers/network/driver.ts';
import { NETWORK_KIND, PORT_KIND, ROUTER_KIND, SECURITY_GROUP_KIND } from '../network/protocol.ts';
import { Reverter } from '../common/revert.ts';

/** A host name short enough for the veth's name in the first namespace (15 characters at most). */
export const LOCAL_HOST_NAME = /^[a-z0-9][a-z0-9-]{0,10}$/;
export const DEFAULT_UNDERLAY = '10.250.0.0/30';
const HOST_LINK = 'underlay0';

export interface LocalHostLayout {
  name: string;
  /** The host's network namespace (/run/netns/NAME). */
  netns: string;
  /** The veth's end in the first host's namespace, and its address there (the first host's VXLAN endpoint). */
  peerLink: string;
  peerIp: string;
  /** The address of the end inside the namespace: this host's VXLAN endpoint (its host_ip). */
  hostIp: string;
  prefixlen: number;
  stateDir: string;
  cgroupParent: string;
}

export function localHostLayout(name: string, o: { underlay?: string; stateDir?: string } = {}): LocalHostLayout {
  if (!LOCAL_HOST_NAME.test(name)) throw new Error(`host name ${JSON.stringify(name)}: 1 to 11 of a-z, 0-9 and -, not starting with -`);
  const [ip, len] = (o.underlay ?? DEFAULT_UNDERLAY).split('/');
  const prefixlen = Number(len);
  if (!ip || !isIPv4(ip) || !Number.isInteger(prefixlen) || prefixlen < 8 || prefixlen > 30) throw new Error(`underlay ${JSON.stringify(o.underlay)}: an IPv4 network of /8 to /30`);
  const n = ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const base = n - (n % 2 ** (32 - prefixlen));
  const dotted = (v: number) => [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
  return {
    name, netns: `stratus-${name}`, peerLink: `stu-${name}`, peerIp: dotted(base + 1), hostIp: dotted(base + 2), prefixlen,
    stateDir: resolve(o.stateDir ?? `/var/lib/stratus-host-${name}`), cgroupParent: `stratus-${name}`,
  };
}

const nsArgs = (netns: string) => [`--net=/run/netns/${netns}`];

/**
 * The namespace and its veth underlay: NAME's end holds hostIp, the other end
 * (in `peerNetns`, default this process's namespace) peerIp.
 */
export async function createUnderlay(l: LocalHostLayout, peerNetns: string | null = null): Promise<void> {
  if (existsSync(`/run/netns/${l.netns}`)) throw new Error(`host ${l.name} exists (namespace ${l.netns}): \`stratus host remove-local ${l.name}\` first`);
  const revert = new Reverter();
  try {
    await runOk('ip', ['netns', 'add', l.netns]);
    revert.add(() => run('ip', ['netns', 'del', l.netns]));
    const peer = peerNetns ? ['-n', peerNetns] : [];
    await runOk('ip', [...peer, 'link', 'add', l.peerLink, 'type', 'veth', 'peer', 'name', HOST_LINK, 'netns', l.netns]);
    revert.add(() => run('ip', [...peer, 'link', 'del', l.peerLink]));
    await runOk('ip', [...peer, 'addr', 'add', `${l.peerIp}/${l.prefixlen}`, 'dev', l.peerLink]);
    await runOk('ip', [...peer, 'link', 'set', l.peerLink, 'up']);
    await runOk('ip', ['-n', l.netns, 'addr', 'add', `${l.hostIp}/${l.prefixlen}`, 'dev', HOST_LINK]);
    await runOk('ip', ['-n', l.netns, 'link', 'set', HOST_LINK, 'up']);
    await runOk('ip', ['-n', l.netns, 'link', 'set', 'lo', 'up']);
    revert.success();
  } catch (err) {
    await revert.fail();
    throw err;
  }
}

/** A listener on 127.0.0.1:PORT inside `netns` whose connections go to `target` (host:port) from here. */
export async function relayInto(netns: string, target: { host: string; port: number }): Promise<{ port: number; close(): void }> {
  const LISTEN = "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>process.send({port:s.address().port},s,()=>{s.close();process.disconnect()}))";
  const child = spawn('nsenter', [...nsArgs(netns), process.execPath, '-e', LISTEN], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [msg, server] = await new Promise<[{ port: number }, Server]>((res, rej) => {
    child.once('message', (m, handle) => res([m as { port: number }, handle as Server]));
    child.once('exit', (code) => rej(new Error(`the relay's listener in ${netns} exited with ${code}`)));
  });
  const open = new Set<Socket>();
  server.on('connection', (inner: Socket) => {
    const outer = connect(target.port, target.host);
    open.add(inner).add(outer);
    const end = () => {
      inner.destroy();
      outer.destroy();
      open.delete(inner);
      open.delete(outer);
    };
    inner.on('error', end).on('close', end);
    outer.on('error', end).on('close', end);
    inner.pipe(outer).pipe(inner);
  });
  return {
    port: msg.port,
    close() {
      server.close();
      for (const s of open) s.destroy();
    },
  };
}

export interface LocalHost {
  layout: LocalHostLayout;
  /** The agent's process id (undefined while it restarts). */
  agentPid(): number | undefined;
  /** Stops the agent and the relay; servers keep running (remove-local takes them away). */
  stop(): Promise<void>;
}

/**
 * `host add-local`: the namespace, its underlay, a relay per server URL and
 * the agent in the namespace (supervised: restarted when it dies).
 */
export async function addLocalHost(o: {
  name: string; server: string[]; tokenFile: string; underlay?: string; stateDir?: string; peerNetns?: string | null;
  cli: string; log: Logger; agentArgs?: string[]; output?: number; execArgv?: string[];
}): Promise<LocalHost> {
  const l = localHostLayout(o.name, o);
  await createUnderlay(l, o.peerNetns ?? null);
  const relays: Array<{ close(): void }> = [];
  try {
    await fsp.mkdir(l.stateDir, { recursive: true, mode: 0o700 });
    const urls: string[] = [];
    for (const s of o.server) {
      const u = new URL(s);
      const relay = await relayInto(l.netns, { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) });
      relays.push(relay);
      urls.push(`${u.protocol}//127.0.0.1:${relay.port}`);
    }
    const agent = superviseAgent({
      cli: o.cli, log: o.log, output: o.output, execArgv: o.execArgv, wrap: ['nsenter', ...nsArgs(l.netns)],
      args: ['--server', urls.join(','), '--token-file', resolve(o.tokenFile), '--state-dir', l.stateDir, '--hostname', l.name,
        '--underlay-ip', l.hostIp, '--cgroup-parent', l.cgroupParent, ...(o.agentArgs ?? [])],
    });
    writeFileSync(join(l.stateDir, 'add-local.pid'), `${process.pid}\n`);
    return {
      layout: l,
      agentPid: () => agent.pid(),
      async stop() {
        await agent.stop();
        for (const r of relays) r.close();
        await fsp.rm(join(l.stateDir, 'add-local.pid'), { force: true });
      },
    };
  } catch (err) {
    for (const r of relays) r.close();
    await run('ip', ['netns', 'del', l.netns]);
    throw err;
  }
}

/**
 * `host remove-local`: stops a running `add-local` of NAME, then removes its
 * servers (containers, mounts, namespaces, cgroups), its routers (namespaces,
 * radvd), its networks (bridges, VXLAN devices, DHCP namespaces and dnsmasq,
 * nft tables), its volume pool's mount, the namespace with
 * its underlay, and the state dir. Idempotent; returns what it removed.
 */
export async function removeLocalHost(o: { name: string; stateDir?: string; log: Logger }): Promise<string[]> {
  const l = localHostLayout(o.name, o);
  const done: string[] = [];
  const pidFile = join(l.stateDir, 'add-local.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  if (pid > 0 && pid !== process.pid && isAddLocal(pid)) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 600 && isAddLocal(pid); i++) await new Promise((r) => setTimeout(r, 100));
    done.push(`stopped add-local (pid ${pid})`);
  }
  const hasNs = existsSync(`/run/netns/${l.netns}`);
  if (existsSync(l.stateDir)) {
    const containers = new ContainerDriver({
      stateDir: l.stateDir, log: o.log, cgroupParent: l.cgroupParent, fetchImage: async () => { throw new Error('not fetching images while removing a host'); },
    });
    for (const id of await containers.localServers()) {
      await containers.destroy(id);
      done.push(`server ${id}`);
    }
    await containers.stop();
    // its VMs and VM-isolated containers (qemu killed by the pid it recorded, disks and cgroups removed)
    const noFetch = async () => { throw new Error('not fetching images while removing a host'); };
    for (const [dir, vms, what] of [
      ['vm', () => new VmDriver({ stateDir: l.stateDir, log: o.log, netns: null, cgroupParent: `${l.cgroupParent}-vm`, fetchImage: noFetch }), 'VM'],
      [VM_CONTAINER_KIND, () => new VmContainerDriver({ stateDir: l.stateDir, log: o.log, netns: null, cgroupParent: `${l.cgroupParent}-vmc`, fetchImage: noFetch }), 'VM-isolated container'],
    ] as const) {
      if (!existsSync(join(l.stateDir, dir))) continue;
      const driver = vms();
      for (const id of await driver.localServers()) {
        await driver.destroy(id);
        done.push(`${what} ${id}`);
      }
      await driver.stop();
    }
    if (hasNs) done.push(...await removeNetworking(l.stateDir, l.netns, o.log));
    for (const ctl of await fsp.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      for (const parent of [l.cgroupParent, `${l.cgroupParent}-vm`, `${l.cgroupParent}-vmc`]) await fsp.rmdir(join('/sys/fs/cgroup', ctl, parent)).catch(() => undefined);
    }
    // the volume pool (a loop-mounted btrfs when the state dir cannot reflink) goes with the host
    if ((await run('umount', [join(l.stateDir, 'volumes')])).code === 0) done.push('volume pool');
    await fsp.rm(l.stateDir, { recursive: true, force: true });
    done.push(`state dir ${l.stateDir}`);
  }
  if (hasNs) {
    // the veth pair, deleted by its end in here: the namespace's own teardown would take the peer
    // end away only once the kernel frees the namespace, later
    await run('ip', ['-n', l.netns, 'link', 'del', HOST_LINK]);
    await runOk('ip', ['netns', 'del', l.netns]);
    done.push(`namespace ${l.netns} and its underlay`);
  }
  return done;
}

/**
 * Takes out of a host namespace what an agent's network driver made there
 * (by its state dir): routers (namespaces and radvd), ports, security groups,
 * networks with their DHCP namespaces and dnsmasq, then its nft tables. Returns what it removed.
 */
export async function removeNetworking(stateDir: string, netns: string, log: Logger): Promise<string[]> {
  const done: string[] = [];
  // the host's servers are removed first: no namespace a port made is still a server's
  const network = new NetworkDriver({ stateDir, hostNetns: netns, log, serverHere: async () => false });
  try {
    // routers first (their radvd and namespaces; their veths sit on the networks' bridges)
    for (const kind of [ROUTER_KIND, PORT_KIND, SECURITY_GROUP_KIND, NETWORK_KIND] as const) {
      for (const id of await network.list(kind)) {
        await network.destroy(kind, id);
        done.push(`${kind} ${id}`);
      }
    }
    await network.removeTables();
  } finally {
    await network.stop();
  }
  return done;
}

/** Whether `pid` is a `stratus host add-local` (never signal a recycled pid). */
function isAddLocal(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('add-local');
    return i > 0 && argv[i - 1] === 'host';
  } catch {
    return false;
  }
}
