// The stratus command line.
// First, before anything uses libuv's thread pool: see the module.
import './threadpool.ts';
// Then, before anything loads Fastify: see the module.
import '../http/defer-tls.ts';
import { Command, InvalidArgumentError } from 'commander';
import { writeFileSync, mkdirSync, openSync } from 'node:fs';
import { pino } from 'pino';
import { join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { migrate, openDatabase } from '../db/database.ts';
import { bootstrap } from '../identity/bootstrap.ts';
import { createDefaultNetworks, createProvisioningNetwork } from './default-networks.ts';
import { registerBaremetalVirtual } from './baremetal-virtual.ts';
import { rotateCredentialKeys } from '../identity/credential-store.ts';
import { rotateKeys } from '../identity/keys.ts';
import { adminPasswordFor, defaultDatabase, HOSTED_SERVICES, registryGc, serverLogger, startStratus, type Stratus, type StratusOptions } from '../server/stratus.ts';
import type { AgentFlags } from '../agent/main.ts';
import { shQuote } from '../common/text.ts';
import { formatCidr, parseCidr } from '../network/ipnet.ts';
import { MAX_ALLOCATION_RATIO } from '../fleet/protocol.ts';

const DEFAULT_DATA_DIR = '/var/lib/stratus';
const DEFAULT_AGENT_STATE_DIR = '/var/lib/stratus-agent';
/** The physical network of the all-in-one's external bridge (DevStack's `public`). */
const EXTERNAL_PHYSNET = 'public';
/** The physical network of the all-in-one's provisioning network (bare metal), mapped onto its host bridge br-bm. */
const BAREMETAL_PHYSNET = 'baremetal';
// The agent's modules load only for the commands that run it: a plain server
// then keeps their memory (and node:http's ESM facade, which pulls in undici) out.
const agentModule = () => import('../agent/main.ts');

function port(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('not a port number');
  return n;
}
function count(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('not a count');
  return n;
}
function positiveCount(v: string): number {
  const n = count(v);
  if (n === 0) throw new InvalidArgumentError('not a positive count');
  return n;
}
/** A parser of an overcommit ratio: above 0, at most `max` (the bounds the agent API accepts). */
function ratio(max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new InvalidArgumentError(`not a number above 0 and at most ${max}`);
    return n;
  };
}
/** A repeatable option whose values may also be comma-separated. */
function urlList(v: string, previous?: string[]): string[] {
  return [...(previous ?? []), ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}
function imageStoreKind(v: string): 'file' | 'object' {
  if (v !== 'file' && v !== 'object') throw new InvalidArgumentError('not file or object');
  return v;
}
const IFNAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;
/** `--bridge-mapping <physical_network>=<bridge>`, repeatable: the mappings so far plus this one. */
function bridgeMapping(v: string, previous?: Record<string, string>): Record<string, string> {
  const [physnet, bridge, more] = v.trim().split('=');
  if (!physnet || !bridge || more !== undefined || !IFNAME.test(bridge)) throw new InvalidArgumentError('not <physical_network>=<bridge>');
  return { ...previous, [physnet]: bridge };
}
/** The all-in-one's external bridge: its name, the host's address on it (`cidr`), and the external subnet that makes (its gateway: the host). */
interface ExternalBridge { name: string; cidr: string; subnet: string; gateway: string }
/** `--external-bridge <bridge>=<address>/<prefix>` of `up`. */
function externalBridge(v: string): ExternalBridge {
  const [name, cidr, more] = v.trim().split('=');
  const c = parseCidr(cidr ?? '', false);
  if (!name || !IFNAME.test(name) || more !== undefined || !c) throw new InvalidArgumentError('not <bridge>=<address>/<prefix length>');
  return { name, cidr: cidr!, subnet: formatCidr(c), gateway: cidr!.split('/')[0]! };
}
function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('not a positive number of seconds');
  return n;
}

interface ServerFlags {
  dataDir: string; database?: string; host: string; port: number; publicUrl?: string; logLevel: string;
  tlsCert?: string; tlsKey?: string; tokenExpiration?: number; lockoutAttempts?: number; lockoutDuration?: number;
  uniqueLastPasswordCount?: number; adminPassword?: string; imageDir?: string; objectDir?: string; imageStore?: string;
  s3Domain?: string; s3Region?: string;
}

function serverOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'directory holding all state', DEFAULT_DATA_DIR)
    .option('--database <url>', 'postgres://… URL or SQLite file (default: DATA_DIR/stratus.db)')
    .option('--image-dir <dir>', 'directory of the image bytes (default: DATA_DIR/images; env STRATUS_IMAGE_DIR); several replicas need one on shared storage')
    .option('--object-dir <dir>', 'directory of the object store\'s blobs (default: DATA_DIR/objects; env STRATUS_OBJECT_DIR)')
    .option('--image-store <store>', 'where image data is kept: file (the image directory) or object (the object store, as Glance\'s swift store; env STRATUS_IMAGE_STORE)', imageStoreKind)
    .option('--s3-domain <domain>', 'S3 virtual-hosted buckets: requests for Host <bucket>.<domain> (env STRATUS_S3_DOMAIN; default: path style only)')
    .option('--s3-region <region>', 'the region the S3 API reports (default us-east-1; any region a client signs with is accepted)')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', port, 5000)
    .option('--public-url <url>', 'URL clients reach this server at (default: http://HOST:PORT)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--token-expiration <seconds>', 'token lifetime', seconds)
    .option('--lockout-attempts <n>', 'lock a user out after N failed logins (0: off)', count)
    .option('--lockout-duration <seconds>', 'how long a lockout lasts', seconds)
    .option('--unique-last-password-count <n>', 'a user changing their password may not reuse any of their last N (0: off)', count)
    .option('--admin-password <password>', 'the admin\'s password, set at every start (default: generated at the first start); kept in DATA_DIR/admin-password');
}

function toOptions(f: ServerFlags): StratusOptions {
  if (!!f.tlsCert !== !!f.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  return {
    dataDir: resolve(f.dataDir), database: f.database, host: f.host, port: f.port, publicUrl: f.publicUrl, logLevel: f.logLevel,
    tls: f.tlsCert && f.tlsKey ? { certFile: f.tlsCert, keyFile: f.tlsKey } : undefined,
    adminPassword: f.adminPassword ?? process.env.STRATUS_ADMIN_PASSWORD,
    imageDir: f.imageDir ?? (process.env.STRATUS_IMAGE_DIR || undefined),
    imageStore: imageStoreKind(f.imageStore ?? (process.env.STRATUS_IMAGE_STORE || 'file')),
    object: { objectDir: f.objectDir ?? (process.env.STRATUS_OBJECT_DIR || undefined) },
    s3: { domain: f.s3Domain ?? (process.env.STRATUS_S3_DOMAIN || undefined), ...(f.s3Region ? { region: f.s3Region } : {}) },
    identity: {
      ...(f.tokenExpiration ? { tokenExpiration: f.tokenExpiration } : {}),
      ...(f.lockoutAttempts !== undefined ? { lockoutFailureAttempts: f.lockoutAttempts } : {}),
      ...(f.lockoutDuration !== undefined ? { lockoutDuration: f.lockoutDuration } : {}),
      ...(f.uniqueLastPasswordCount !== undefined ? { uniqueLastPasswordCount: f.uniqueLastPasswordCount } : {}),
    },
  };
}

/** Runs a started service until SIGTERM/SIGINT, then closes it and exits. */
function runUntilSignal(close: () => Promise<void>): void {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`stratus: ${signal}, shutting down\n`);
    close().then(() => process.exit(0), (err) => {
      process.stderr.write(`stratus: shutdown failed: ${err}\n`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * clouds.yaml and openrc for the admin, owner-only (they hold the password).
 * The project is named by id too, and openrc exports OS_DOMAIN_NAME: Go clients
 * (gophercloud's AuthOptionsFromEnv) read neither OS_USER_DOMAIN_NAME nor
 * OS_PROJECT_DOMAIN_NAME and refuse a user or project name without a domain;
 * openstackclient turns OS_DOMAIN_NAME into those two for a project-scoped login.
 */
function writeClientConfig(dataDir: string, url: string, password: string, projectId: string): { clouds: string; openrc: string } {
  const auth = `${url}/identity/v3`;
  const clouds = join(dataDir, 'clouds.yaml');
  writeFileSync(clouds, [
    'clouds:',
    '  stratus:',
    '    auth:',
    `      auth_url: ${auth}`,
    '      username: admin',
    // A JSON string is a valid YAML double-quoted scalar, whatever the password holds.
    `      password: ${JSON.stringify(password)}`,
    '      project_name: admin',
    `      project_id: ${projectId}`,
    '      user_domain_name: Default',
    '      project_domain_name: Default',
    '    region_name: RegionOne',
    '    identity_api_version: 3',
    '    interface: public',
    '',
  ].join('\n'), { mode: 0o600 });
  const openrc = join(dataDir, 'openrc');
  writeFileSync(openrc, [
    `export OS_AUTH_URL=${auth}`,
    'export OS_USERNAME=admin',
    `export OS_PASSWORD=${shQuote(password)}`,
    'export OS_PROJECT_NAME=admin',
    `export OS_PROJECT_ID=${projectId}`,
    'export OS_USER_DOMAIN_NAME=Default',
    'export OS_PROJECT_DOMAIN_NAME=Default',
    'export OS_DOMAIN_NAME=Default',
    'export OS_REGION_NAME=RegionOne',
    'export OS_IDENTITY_API_VERSION=3',
    '',
  ].join('\n'), { mode: 0o600 });
  return { clouds, openrc };
}

const program = new Command('stratus')
  .description('Stratus: a private cloud for containers, virtual machines and bare metal, speaking the OpenStack APIs')
  .showHelpAfterError();

serverOptions(program.command('server').description('run the control-plane server (every API on one port)'))
  .action(async (f: ServerFlags) => {
    const s = await startStratus(toOptions(f));
    runUntilSignal(s.close);
  });

/** The overcommit flags of a host agent, with the agent API's bounds: on `agent`, and on `up` for the agent it runs. */
const ALLOCATION_RATIOS = [
  { flag: 'cpu-allocation-ratio', key: 'cpuAllocationRatio', of: 'vCPU', dflt: 16, max: MAX_ALLOCATION_RATIO.cpu },
  { flag: 'ram-allocation-ratio', key: 'ramAllocationRatio', of: 'RAM', dflt: 1.5, max: MAX_ALLOCATION_RATIO.ram },
  { flag: 'disk-allocation-ratio', key: 'diskAllocationRatio', of: 'disk', dflt: 1, max: MAX_ALLOCATION_RATIO.disk },
] as const;
type AllocationRatios = { [K in (typeof ALLOCATION_RATIOS)[number]['key']]?: number };

function allocationRatioOptions(cmd: Command): Command {
  for (const r of ALLOCATION_RATIOS) cmd.option(`--${r.flag} <r>`, `${r.of} overcommit of the agent's host (default ${r.dflt})`, ratio(r.max));
  return cmd;
}

/** The same flags, as given to `up`, for the agent it starts. */
function allocationRatioArgs(f: AllocationRatios): string[] {
  return ALLOCATION_RATIOS.flatMap((r) => (f[r.key] === undefined ? [] : [`--${r.flag}`, String(f[r.key])]));
}

/**
 * Where `up` sends the JSON log of the server and its agent: a file (opened for
 * appending, owner-only when new), or stdout for `-`. Its stdout otherwise holds
 * only the banner, for a human.
 */
function upLog(file: string, level: string): { logger: pino.Logger; fd?: number; where: string } {
  if (file === '-') return { logger: serverLogger(level), where: 'stdout' };
  const fd = openSync(file, 'a', 0o600);
  return { logger: serverLogger(level, pino.destination({ fd, sync: true })), fd, where: file };
}

allocationRatioOptions(serverOptions(program.command('up').description('run the all-in-one cloud in the foreground, with client configuration written to DATA_DIR'))
  .option('--no-agent', 'do not run a host agent beside the server')
  .option('--underlay-ip <ip>', 'the agent\'s VXLAN endpoint (default: the address the route to the server leaves from); with `host add-local`, its underlay address (10.250.0.1)')
  .option('--external-bridge <bridge=cidr>', `the host bridge of the external network (physical network \`${EXTERNAL_PHYSNET}\`), made with the host's address on it when missing and never removed; nothing is forwarded or NATed from it to the host's other interfaces`, externalBridge, externalBridge('br-ex=172.24.4.1/24'))
  .option('--no-external-bridge', 'no external bridge (flat networks on physical network `public` then fail on this host)')
  .option('--baremetal-bridge <bridge=cidr>', `the host bridge of the bare-metal provisioning network (physical network \`${BAREMETAL_PHYSNET}\`), made with the host's address on it when missing and never removed; the agent is its conductor on that address, and the shared flat network \`${BAREMETAL_PHYSNET}\` is made on it on the first start; nothing is forwarded or NATed from it`, externalBridge, externalBridge('br-bm=172.24.8.1/24'))
  .option('--no-baremetal', 'no bare metal: no provisioning bridge, no conductor in the agent, no network `baremetal`')
  .option('--no-baremetal-network', 'do not make the network `baremetal` on the first start (the bridge and the conductor still run)')
  .option('--no-vm-image', 'do not build and import the small VM image stratus-tiny (by default done in the background where qemu-system-x86_64 is installed; docs/guest-images.md)')
  .option('--log-file <file>', 'where the JSON log of the server and its agent goes (default: DATA_DIR/stratus.log; - for stdout); stdout shows where the cloud and its credentials are'))
  .action(async (f: ServerFlags & AllocationRatios & { agent?: boolean; vmImage?: boolean; logFile?: string; externalBridge: ExternalBridge | false; underlayIp?: string; baremetal?: boolean; baremetalBridge: ExternalBridge; baremetalNetwork?: boolean }) => {
    const dataDir = resolve(f.dataDir);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const log = upLog(f.logFile ?? join(dataDir, 'stratus.log'), f.logLevel);
    const s = await startStratus({ ...toOptions(f), logger: log.logger });
    const { clouds, openrc } = writeClientConfig(dataDir, s.url, s.adminPassword, s.adminProjectId);
    const baremetal = f.baremetal === false ? false : { bridge: f.baremetalBridge, network: f.baremetalNetwork !== false };
    const agent = await startLocalAgent(s, dataDir, f.agent !== false, [...allocationRatioArgs(f), ...(f.underlayIp ? ['--underlay-ip', f.underlayIp] : [])], f.externalBridge, log.fd, f.vmImage !== false, baremetal);
    // No password here: whatever captures this output (a terminal's scrollback, a
    // service manager's journal, CI logs) would keep it. It is in the owner-only files.
    process.stdout.write([
      '',
      `Stratus is up: ${s.url}`,
      `  dashboard:   ${s.url}/   (log in as admin, domain Default)`,
      `  identity:    ${s.url}/identity/v3`,
      '  admin:       user admin, project admin, domain Default',
      `  credentials: ${clouds}   (export OS_CLIENT_CONFIG_FILE=${clouds}; openstack --os-cloud stratus token issue)`,
      `               ${openrc}   (. ${openrc}; openstack token issue)`,
      `               the admin password alone: ${join(dataDir, 'admin-password')}`,
      `  log:         ${log.where}`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'));
    runUntilSignal(async () => {
      await agent?.stop();
      await s.close();
    });
  });

/**
 * The all-in-one's host agent: imports the default busybox image once (and,
 * in the background, the stratus-tiny VM image when `vmImage` and QEMU is
 * installed), then runs `stratus agent` as a supervised child (see
 * src/agent/main.ts).
 */
async function startLocalAgent(s: Stratus, dataDir: string, wanted: boolean, extraArgs: string[], external: ExternalBridge | false, output?: number, vmImage = true,
  baremetal: { bridge: ExternalBridge; network: boolean } | false = false): Promise<{ stop(): Promise<void> } | null> {
  if (!wanted) return null;
  if (process.getuid?.() !== 0) {
    s.logger.warn('not root: no host agent started, servers will not be placed (run `stratus up` as root)');
    return null;
  }
  const { ensureExternalBridge, importDefaultImage, importTinyImage, superviseAgent } = await agentModule();
  if (external) {
    const made = await ensureExternalBridge(external.name, external.cidr);
    if (made.length) s.logger.info({ made }, 'external bridge');
    extraArgs = [...extraArgs, '--bridge-mapping', `${EXTERNAL_PHYSNET}=${external.name}`];
  }
  if (baremetal) {
    // the provisioning network's bridge, as br-ex: the host's address on it is the conductor's
    const made = await ensureExternalBridge(baremetal.bridge.name, baremetal.bridge.cidr);
    if (made.length) s.logger.info({ made }, 'bare-metal provisioning bridge');
    extraArgs = [...extraArgs, '--bridge-mapping', `${BAREMETAL_PHYSNET}=${baremetal.bridge.name}`, '--baremetal', '--baremetal-address', baremetal.bridge.gateway];
    if (baremetal.network) {
      await createProvisioningNetwork({ url: s.url, adminPassword: s.adminPassword, dataDir, log: s.logger, physicalNetwork: BAREMETAL_PHYSNET, cidr: baremetal.bridge.subnet, host: baremetal.bridge.gateway })
        .catch((err: Error) => s.logger.error({ err: err.message }, 'could not create the bare-metal provisioning network'));
    }
  }
  await importDefaultImage({ url: s.url, adminPassword: s.adminPassword, dataDir, log: s.logger })
    .catch((err: Error) => s.logger.error({ err: err.message }, 'could not import the default busybox image'));
  if (vmImage) {
    void importTinyImage({ url: s.url, adminPassword: s.adminPassword, dataDir, log: s.logger })
      .catch((err: Error) => s.logger.error({ err: err.message }, 'could not build or import the stratus-tiny VM image'));
  }
  if (external) {
    await createDefaultNetworks({ url: s.url, adminPassword: s.adminPassword, dataDir, log: s.logger, physicalNetwork: EXTERNAL_PHYSNET, external: { cidr: external.subnet, gateway: external.gateway } })
      .catch((err: Error) => s.logger.error({ err: err.message }, 'could not create the default networks'));
  }
  return superviseAgent({
    cli: process.argv[1]!, log: s.logger, output,
    args: ['--server', s.url, '--token-file', join(dataDir, 'agent-token'), '--state-dir', join(dataDir, 'agent'), '--hostname', hostname(), ...extraArgs],
  });
}

allocationRatioOptions(program.command('agent').description('run a host agent (as root): registers this host, converges the servers placed on it, reports what it observes')
  .requiredOption('--server <url>', 'URL of the Stratus server (the agent connects out to it); repeat it or separate URLs with commas for several control-plane replicas, used in turn when one fails', urlList)
  .option('--token-file <file>', 'file holding the agent token (the server keeps it in DATA_DIR/agent-token)', join(DEFAULT_DATA_DIR, 'agent-token'))
  .option('--state-dir <dir>', 'directory for images, server disks and runc state', DEFAULT_AGENT_STATE_DIR)
  .option('--hostname <name>', 'the host name this agent registers (default: the system host name)')
  .option('--concurrency <n>', 'servers converged at once', positiveCount, 8)
  .option('--availability-zone <az>', 'availability zone of this host (default: the server\'s default zone)')
  .option('--cgroup-parent <name>', 'cgroup of every container: /<name>/<server id>', 'stratus')
  .option('--console-log-max <bytes>', 'size cap of each server\'s console log', count, 1 << 20)
  .option('--underlay-ip <ip>', 'this host\'s VXLAN endpoint, registered as its host_ip (default: the address the route to the server leaves from)')
  .option('--no-network', 'serve no tenant networks (no bridges, VXLAN, nftables or dnsmasq on this host)')
  .option('--no-vm', 'run no virtual machines (by default the agent serves `vm` servers when qemu-system-x86_64 is installed)')
  .option('--live-migration-bandwidth <MiB/s>', 'the rate a live migration copies a VM\'s memory and each disk at from this host (Nova\'s live_migration_bandwidth; 0: unlimited)', count, 0)
  .option('--no-volume', 'serve no volumes (by default the agent keeps volumes as files under STATE_DIR/volumes: reflink copies on btrfs/XFS, a loop-mounted btrfs otherwise)')
  .option('--bridge-mapping <physnet=bridge>', 'flat networks on this physical network use this existing host bridge (repeatable; e.g. public=br-ex); the agent never changes or deletes it', bridgeMapping)
  .option('--baremetal', 'be a bare-metal conductor: drive `ipmi` and `redfish` nodes (power, boot device, inspection, cleaning and deploys through the deploy ramdisk)')
  .option('--baremetal-address <ip>', 'the conductor\'s address on the provisioning network: its HTTP endpoint for iPXE and the deploy ramdisk listens there')
  .option('--baremetal-port <port>', 'the port of that endpoint', port, 6386)
  .option('--baremetal-ramdisk-timeout <seconds>', 'how long a node may take from power on to its deploy ramdisk\'s first call', seconds, 900)
  .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info'))
  .action(async ({ bridgeMapping, ...f }: AgentFlags & { bridgeMapping?: Record<string, string> }) => {
    await (await agentModule()).runAgent({ ...f, bridgeMappings: bridgeMapping });
  });

const host = program.command('host').description('hosts on this machine, for tests and demos');
host.command('add-local').description('run a second host here (as root): a network namespace NAME with a veth underlay to this one, and `stratus agent` in it, in the foreground')
  .argument('<name>', 'its host name (and namespace stratus-NAME): 1 to 11 of a-z, 0-9, -')
  .requiredOption('--server <url>', 'URL of the Stratus server as reached from here (the agent reaches it through a relay on the namespace\'s 127.0.0.1, so an https server\'s certificate must also name 127.0.0.1)', urlList)
  .option('--token-file <file>', 'file holding the agent token', join(DEFAULT_DATA_DIR, 'agent-token'))
  .option('--underlay <cidr>', 'IPv4 network of the veth underlay: .1 here (give it to `up --underlay-ip`), .2 in the namespace (the host\'s VXLAN endpoint)', '10.250.0.0/30')
  .option('--state-dir <dir>', 'its agent\'s state dir: runc root, images, servers (default: /var/lib/stratus-host-NAME)')
  .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
  .action(async (name: string, f: { server: string[]; tokenFile: string; underlay: string; stateDir?: string; logLevel: string }) => {
    const { addLocalHost } = await import('./local-host.ts');
    const h = await addLocalHost({ name, ...f, cli: process.argv[1]!, log: serverLogger(f.logLevel), agentArgs: ['--log-level', f.logLevel] });
    const l = h.layout;
    process.stderr.write(`host ${name} is up: namespace ${l.netns}, VXLAN endpoint ${l.hostIp} (this host's: ${l.peerIp} on ${l.peerLink}), state ${l.stateDir}. Ctrl-C stops its agent; \`stratus host remove-local ${name}\` removes it.\n`);
    runUntilSignal(h.stop);
  });
host.command('remove-local').description('remove a host made by add-local: stops it, deletes its servers, networks, namespace, underlay and state dir')
  .argument('<name>', 'the host name given to add-local')
  .option('--state-dir <dir>', 'its agent\'s state dir (default: /var/lib/stratus-host-NAME)')
  .action(async (name: string, f: { stateDir?: string }) => {
    const { removeLocalHost } = await import('./local-host.ts');
    const removed = await removeLocalHost({ name, stateDir: f.stateDir, log: serverLogger('warn') });
    process.stdout.write(removed.length ? `removed: ${removed.join('; ')}\n` : `no host ${name} here\n`);
  });

const image = program.command('image').description('images');
image.command('build-busybox').description('build the default busybox container image (an OCI layout tar) from Debian\'s busybox-static')
  .requiredOption('--output <file>', 'where to write the OCI archive')
  .action(async (f: { output: string }) => {
    process.stdout.write(`${await (await agentModule()).buildBusybox(f.output)}\n`);
  });

image.command('build-tiny').description('build the small VM image stratus-tiny (a Debian kernel, a busybox + dropbear initramfs, a SYSLINUX boot disk; docs/guest-images.md), as root; a build whose inputs did not change comes from the cache')
  .option('--out <file>', 'also copy the disk (qcow2) to this file')
  .option('--raw', 'with --out: write a raw disk instead of qcow2')
  .option('--cache-dir <dir>', 'where builds and the kernel are cached', '/var/cache/stratus/guest')
  .action(async (f: { out?: string; raw?: boolean; cacheDir: string }) => {
    process.stdout.write(`${await (await agentModule()).buildTiny(f)}\n`);
  });

image.command('build-debian').description('build a Debian 12 cloud image with cloud-init and OpenSSH (debootstrap, as root; takes minutes; docs/guest-images.md)')
  .requiredOption('--out <file>', 'where to write the disk (compressed qcow2)')
  .option('--mirror <url>', 'the Debian mirror debootstrap uses', 'http://deb.debian.org/debian')
  .option('--size <MiB>', 'size of the root file system', positiveCount, 3072)
  .action(async (f: { out: string; mirror: string; size: number }) => {
    process.stdout.write(`${await (await agentModule()).buildDebian(f)}\n`);
  });

registerBaremetalVirtual(program);

program.command('bootstrap').description('create the default domain, admin project, user, roles and catalog (idempotent)')
  .option('--data-dir <dir>', 'directory holding all state', DEFAULT_DATA_DIR)
  .option('--database <url>', 'postgres://… URL or SQLite file')
  .option('--public-url <url>', 'URL clients reach the server at', 'http://127.0.0.1:5000')
  .option('--admin-password <password>', 'set (or reset) the admin password')
  .action(async (f: { dataDir: string; database?: string; publicUrl: string; adminPassword?: string }) => {
    const dataDir = resolve(f.dataDir);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const d = await openDatabase(f.database ?? defaultDatabase(dataDir));
    try {
      await migrate(d.db);
      const adminPassword = adminPasswordFor(dataDir, f.adminPassword);
      const r = await bootstrap(d.db, { adminPassword, resetAdminPassword: !!f.adminPassword, publicUrl: f.publicUrl, services: HOSTED_SERVICES });
      process.stdout.write(`bootstrapped: admin user ${r.adminUserId}, admin project ${r.adminProjectId}${r.created ? ' (created)' : ''}\n`);
    } finally {
      await d.close();
    }
  });

const keys = program.command('keys').description('token encryption keys');
keys.command('rotate').description('stage a new token key; the oldest beyond the kept set is dropped')
  .option('--data-dir <dir>', 'directory holding all state', DEFAULT_DATA_DIR)
  .option('--database <url>', 'postgres://… URL or SQLite file')
  .option('--credential', 'rotate the keys /v3/credentials blobs are encrypted with instead, re-encrypting every credential')
  .action(async (f: { dataDir: string; database?: string; credential?: boolean }) => {
    const d = await openDatabase(f.database ?? defaultDatabase(resolve(f.dataDir)));
    try {
      await migrate(d.db);
      if (f.credential) {
        const id = await rotateCredentialKeys(d.db);
        process.stdout.write(`credential key ${id} is primary; every credential is re-encrypted with it\n`);
        return;
      }
      const id = await rotateKeys(d.db);
      process.stdout.write(`staged token key ${id}; running servers pick it up within seconds\n`);
    } finally {
      await d.close();
    }
  });

const volume = program.command('volume').description('volumes on this host');
volume.command('audit').description('list volume files on this host that no volume or snapshot accounts for (and placed volumes whose data is missing); changes nothing; exit status 1 when any')
  .requiredOption('--server <url>', 'URL of the Stratus server', urlList)
  .option('--token-file <file>', 'file holding the agent token', join(DEFAULT_DATA_DIR, 'agent-token'))
  .option('--state-dir <dir>', 'the agent\'s state dir', DEFAULT_AGENT_STATE_DIR)
  .option('--hostname <name>', 'the host name the agent registers (default: the system host name)')
  .action(async (f: { server: string[]; tokenFile: string; stateDir: string; hostname?: string }) => {
    const { auditVolumes } = await import('../agent/volume-audit.ts');
    const r = await auditVolumes(f);
    process.stdout.write(`${r.text}\n`);
    const a = r.audit;
    process.exitCode = a.volumes.length + a.snapshots.length + a.strays.length + a.missing.length ? 1 : 0;
  });

const registry = program.command('registry').description('the OCI registry (/v2)');
registry.command('gc').description('remove blobs no manifest of their project references, the bytes of deleted manifests, and upload sessions untouched for a day (the server also does it at start and hourly)')
  .option('--data-dir <dir>', 'directory holding all state', DEFAULT_DATA_DIR)
  .option('--database <url>', 'postgres://… URL or SQLite file')
  .option('--grace <seconds>', 'keep blobs and objects younger than this (a push uploads blobs before its manifest)', count, 3600)
  .option('--upload-age <seconds>', 'remove upload sessions untouched for this long', count, 86400)
  .option('--object-dir <dir>', 'directory of the object store\'s blobs (default: DATA_DIR/objects; env STRATUS_OBJECT_DIR)')
  .action(async (f: { dataDir: string; database?: string; grace: number; uploadAge: number; objectDir?: string }) => {
    const dataDir = resolve(f.dataDir);
    const objectDir = resolve(f.objectDir ?? (process.env.STRATUS_OBJECT_DIR || join(dataDir, 'objects')));
    const r = await registryGc({ dataDir, database: f.database, object: { objectDir } }, { graceMs: f.grace * 1000, uploadMaxAgeMs: f.uploadAge * 1000 });
    process.stdout.write(`removed ${r.blobs} blobs, ${r.manifests} manifests, ${r.uploads} upload sessions, ${r.chunks} stray chunks\n`);
  });

const objectCmd = program.command('object').description('the object store');
objectCmd.command('audit').description('check every blob of the object store against its checksums and records: reports bit rot, orphan files and missing files; changes nothing; exit status 1 when any')
  .option('--data-dir <dir>', 'directory holding all state', DEFAULT_DATA_DIR)
  .option('--database <url>', 'postgres://… URL or SQLite file')
  .option('--object-dir <dir>', 'directory of the blobs (default: DATA_DIR/objects; env STRATUS_OBJECT_DIR)')
  .option('--no-verify', 'only look for orphan and missing files, without reading every blob')
  .option('--json', 'print the report as JSON')
  .action(async (f: { dataDir: string; database?: string; objectDir?: string; verify: boolean; json?: boolean }) => {
    const { auditObjects, auditText } = await import('../object/audit.ts');
    const dataDir = resolve(f.dataDir);
    const d = await openDatabase(f.database ?? defaultDatabase(dataDir));
    try {
      await migrate(d.db);
      const objectDir = resolve(f.objectDir ?? (process.env.STRATUS_OBJECT_DIR || join(dataDir, 'objects')));
      const r = await auditObjects({ db: d.db, log: serverLogger('warn'), dataDir, objectDir, verify: f.verify });
      process.stdout.write(`${f.json ? JSON.stringify(r) : auditText(r)}\n`);
      process.exitCode = r.corrupt.length + r.orphanFiles.length + r.missingFiles.length ? 1 : 0;
    } finally {
      await d.close();
    }
  });

const db = program.command('db').description('the state database');
db.command('migrate').description('run pending migrations')
  .option('--data-dir <dir>', 'directory holding all state', DEFAULT_DATA_DIR)
  .option('--database <url>', 'postgres://… URL or SQLite file')
  .action(async (f: { dataDir: string; database?: string }) => {
    const dataDir = resolve(f.dataDir);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const d = await openDatabase(f.database ?? defaultDatabase(dataDir));
    try {
      const ran = await migrate(d.db);
      process.stdout.write(ran.length ? `applied: ${ran.join(', ')}\n` : 'database is up to date\n');
    } finally {
      await d.close();
    }
  });

program.command('events').description('print the resource event stream (servers created, changing state, deleted...) of the OS_* credentials\' project (every project for an admin), one line per event; docs/events.md')
  .option('--types <types>', 'only these resource types, comma-separated (server, volume, network, subnet, port, router, floatingip, security_group, image)')
  .option('--json', 'each event as its JSON object')
  .option('--since <seq>', 'first replay the events after this sequence number that the server still holds')
  .action(async (f: { types?: string; json?: boolean; since?: string }) => {
    const { printEvents } = await import('./events.ts');
    await printEvents(f);
  });

program.command('status').description('check that a server answers')
  .option('--url <url>', 'server URL', 'http://127.0.0.1:5000')
  .action(async (f: { url: string }) => {
    const health = await fetch(`${f.url}/healthz`).then((r) => r.status, () => 0);
    const identity = await fetch(`${f.url}/identity/v3`).then((r) => (r.ok ? r.json() as Promise<{ version: { id: string } }> : null), () => null);
    process.stdout.write(`server ${f.url}: ${health === 200 ? 'ready' : health === 0 ? 'unreachable' : `not ready (${health})`}\n`);
    if (identity) process.stdout.write(`identity: ${identity.version.id}\n`);
    process.exitCode = health === 200 ? 0 : 1;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`stratus: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
