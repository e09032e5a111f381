// The OCI runtime spec (config.json) of a server's container, written in TS
// from the image config and the flavor: what `runc spec` gives, hardened as
// Docker and Podman run containers (their default capabilities, no new
// privileges, their default seccomp profile, /proc and /sys paths masked or
// read-only), cgroup limits from the flavor, the server's own network
// namespace, its config drive mounted read-only, and a user namespace when the
// flavor asks for one (userns.ts).
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { DesiredServer, ServerVolumeSpec } from '../../../compute/engine/protocol.ts';
import type { HostBlockDevice } from '../volume-attach.ts';
import type { OciImageConfig } from './oci.ts';
import { CONFIG_DRIVE_PATH } from './busybox.ts';
import { seccompFor } from './seccomp.ts';
import { idMappings, usernsWanted } from './userns.ts';

/** Docker's default capability set (what images expect; CAP_NET_RAW for ping). */
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Hidden from the container (an empty file or tmpfs over them), as runc's and Docker's defaults. */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug',
  '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** RLIMIT_NOFILE for the container; must stay under the host's hard limit (20000 on these machines, no CAP_SYS_RESOURCE). */
export const NOFILE_LIMIT = 16384;
export const DEFAULT_PIDS_LIMIT = 1024;

export interface Limits { memoryBytes: number; cpuShares: number; cpuQuota: number; cpuPeriod: number; pids: number }

function intSpec(specs: Record<string, string>, key: string): number | undefined {
  const v = specs[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** cgroup limits from the flavor, honouring Nova's libvirt `quota:` extra specs where they make sense. */
export function limitsFor(flavor: DesiredServer['flavor']): Limits {
  const specs = flavor.extraSpecs ?? {};
  const vcpus = Math.max(1, flavor.vcpus);
  const period = intSpec(specs, 'quota:cpu_period') ?? 100_000;
  return {
    memoryBytes: Math.max(4, flavor.ram) * 1024 * 1024,
    cpuShares: intSpec(specs, 'quota:cpu_shares') ?? 1024 * vcpus,
    cpuQuota: intSpec(specs, 'quota:cpu_quota') ?? vcpus * period,
    cpuPeriod: period,
    pids: intSpec(specs, 'stratus:pids_limit') ?? DEFAULT_PIDS_LIMIT,
  };
}

interface IdUser { uid: number; gid: number; additionalGids?: number[] }

/** Reads etc/<name> from the first of `lookup` (the disk's layers, top first) that has it, as overlayfs would. */
async function readIdFile(lookup: string[], name: string): Promise<string[][]> {
  let text = '';
  for (const root of lookup) {
    const t = await fsp.readFile(join(root, 'etc', name), 'utf8').catch(() => null);
    if (t !== null) {
      text = t;
      break;
    }
  }
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/** Resolves an image's User ("name", "uid", "uid:gid", "name:group") against the image's /etc/passwd and /etc/group. */
export async function resolveUser(lookup: string[], user: string | undefined): Promise<IdUser> {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':', 2) as [string, string | undefined];
  const passwd = await readIdFile(lookup, 'passwd');
  let uid: number;
  let gid = 0;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const row = passwd.find((p) => p[2] === u);
    if (row) gid = Number(row[3]);
  } else {
    const row = passwd.find((p) => p[0] === u);
    if (!row) throw new Error(`the image's user '${u}' is not in its /etc/passwd`);
    uid = Number(row[2]);
    gid = Number(row[3]);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = (await readIdFile(lookup, 'group')).find((p) => p[0] === g);
      if (!row) throw new Error(`the image's group '${g}' is not in its /etc/group`);
      gid = Number(row[2]);
    }
  }
  return { uid, gid };
}

export interface SpecInput {
  desired: DesiredServer;
  image: OciImageConfig;
  /** Directories to look up the image's /etc/passwd and /etc/group in, top layer first. */
  lookup: string[];
  netnsPath: string;
  cgroupsPath: string;
  configDriveDir: string;
  /** The attached volumes' block devices: a node at `spec.device`, allowed in the device cgroup, mounted at `mount_path` when `fstype`. */
  volumes?: ContainerVolume[];
}

export interface ContainerVolume {
  spec: ServerVolumeSpec;
  dev: HostBlockDevice;
  /** The volume's file system (blkid) when it is to be mounted; null: the node only. */
  fstype: string | null;
}

export async function buildSpec(i: SpecInput): Promise<Record<string, unknown>> {
  const cfg = i.image.config ?? {};
  const args = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  if (!args.length) throw new Error('the image has neither an entrypoint nor a command');
  const env = [...(cfg.Env ?? [])];
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${i.desired.hostname}`);
  if (!env.some((e) => e.startsWith('HOME='))) env.push('HOME=/root');
  const user = await resolveUser(i.lookup, cfg.User);
  const limits = limitsFor(i.desired.flavor);
  const userns = usernsWanted(i.desired.flavor);
  const volumes = i.volumes ?? [];
  // a user namespace may not mount a block device's file system: the driver mounts those after the start
  const volumeMounts = userns ? [] : volumes.filter((v) => v.fstype && v.spec.mount_path).map((v) => ({
    destination: v.spec.mount_path!, type: v.fstype!, source: v.dev.path, options: ['nosuid', 'nodev', ...(v.spec.read_only ? ['ro'] : [])],
  }));
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args,
      env,
      cwd: cfg.WorkingDir || '/',
      capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS, inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: NOFILE_LIMIT, soft: NOFILE_LIMIT }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: i.desired.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      // a user namespace may not mount sysfs for a network namespace it does not own (the server's is the host's): the host's, read-only
      userns
        ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
        : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      { destination: CONFIG_DRIVE_PATH, type: 'bind', source: i.configDriveDir, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
      ...volumeMounts,
    ],
    linux: {
      // in a user namespace runc would bind-mount each node from the same path on the host, where it does not
      // exist: the driver makes those nodes once the container runs (as for a hot attach)
      ...(volumes.length && !userns ? {
        devices: volumes.map((v) => ({
          path: v.spec.device, type: 'b', major: v.dev.major, minor: v.dev.minor, fileMode: 0o660,
          uid: 0, gid: 0,
        })),
      } : {}),
      resources: {
        devices: [{ allow: false, access: 'rwm' }, ...volumes.map((v) => ({ allow: true, type: 'b', major: v.dev.major, minor: v.dev.minor, access: v.spec.read_only ? 'r' : 'rw' }))],
        memory: { limit: limits.memoryBytes, swap: limits.memoryBytes },
        cpu: { shares: limits.cpuShares, quota: limits.cpuQuota, period: limits.cpuPeriod },
        pids: { limit: limits.pids },
      },
      cgroupsPath: i.cgroupsPath,
      namespaces: [
        { type: 'pid' },
        { type: 'network', path: i.netnsPath },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        ...(userns ? [{ type: 'user' }] : []),
      ],
      ...(userns ? { uidMappings: idMappings(), gidMappings: idMappings() } : {}),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      seccomp: await seccompFor(DEFAULT_CAPS),
    },
  };
}
