// The guest of a VM-isolated container (kind `vm-container`, as Kata
// Containers runs an OCI image): the small guest's Debian kernel
// (vm/guest/kernel.ts) and its busybox initramfs (vm/guest/initramfs.ts)
// with boot scripts of its own, cached under the guest cache by a key of
// every input as stratus-tiny and the deploy ramdisk are. Per server, a
// second small cpio appended to it (the kernel unpacks concatenated
// archives) carries /etc/stratus/container.sh: the image's command, its
// environment, working directory, user, stop signal and the host name
// (containerConfig).
//
// The boot (busybox init): rcS loads every module, leases an address on each
// NIC (udhcpc, the small guest's script, in the initramfs: it keeps renewing
// outside the container), mounts the root disk (/dev/vda: ext4 made from the
// image's layers) at /newroot with /proc, /sys, /dev, /dev/pts, /dev/shm and
// the config drive (ro at /mnt/config, as a runc container has it), writes
// /etc/resolv.conf, /etc/hosts and /etc/hostname there; `run` starts the
// command chrooted into it with the image's environment and working
// directory, its stdio the serial console. When the command ends the VM
// powers off (the server goes SHUTOFF, as a container whose process ends).
// The ACPI power button (a graceful stop) sends the command the image's stop
// signal and gives it STOP_GRACE_S seconds (rcK) before init ends the rest.
import { gzipSync } from 'node:zlib';
import { shQuote } from '../../../common/text.ts';
import type { OciImageConfig } from '../container/oci.ts';
import { cpioArchive } from '../vm/guest/cpio.ts';
import { cachedBoot } from '../vm/guest/initramfs.ts';
import { FUNCTIONS_SH, POWER_BUTTON, UDHCPC_SCRIPT } from '../vm/guest/scripts.ts';
import { DEFAULT_GUEST_CACHE } from '../vm/guest/tiny-image.ts';

/** String.raw, with a backslash before `${` standing for a shell's `${` (not a substitution). */
const sh = (s: TemplateStringsArray, ...v: unknown[]): string => String.raw(s, ...v).replace(/\\\$\{/g, '${');

/** How long a graceful stop gives the container's command after its stop signal. */
export const STOP_GRACE_S = 10;
/** The label of the root disk's ext4 (the one the guest mounts). */
export const ROOT_LABEL = 'stratus-croot';
/** The kernel command line (the serial console is /dev/console: the command's stdio). */
export const VMC_CMDLINE = 'console=ttyS0,115200n8 panic=5 loglevel=3';
/** The line the guest prints when it starts the command, and when it ends (`... exited with N`). */
export const VMC_STARTED = 'stratus-guest: container started';
export const VMC_EXITED = 'stratus-guest: container exited with';

/** /etc/init.d/rcS: the boot up to a mounted, configured root. */
export const VMC_RCS = sh`#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
. /etc/stratus/functions.sh
. /etc/stratus/container.sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /run/stratus /var/log /newroot
say "booting a VM-isolated container: kernel $(uname -r), uptime $(uptime_s) s"
hostname "$C_HOSTNAME"
ip link set lo up
load_modules /lib/modules/early.order
load_modules /lib/modules/late.order
acpid -c /etc/acpi -l /var/log/acpid.log
for d in /sys/class/net/eth*; do
  [ -e "$d" ] || continue
  i=\${d##*/}
  ip link set "$i" up
  udhcpc -i "$i" -s /usr/share/udhcpc/default.script -t 30 -T 1 -A 1 -b -O mtu -O staticroutes -x hostname:"$C_HOSTNAME" >/var/log/udhcpc-$i.log 2>&1 &
done
root=$(findfs LABEL=${ROOT_LABEL} 2>/dev/null || echo /dev/vda)
if ! mount -t ext4 "$root" /newroot; then say "cannot mount the root disk $root"; poweroff; exit 1; fi
for m in proc sys dev; do mkdir -p /newroot/$m; done
# the guest's; the command's own is mounted over it in its namespaces (unshare --mount-proc)
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm /newroot/dev/.stratus
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
# busybox for the start inside the root (cd, then exec): on a tmpfs of its own, never on the disk
mount -t tmpfs -o mode=755,size=4m stratus /newroot/dev/.stratus
cp /bin/busybox /newroot/dev/.stratus/busybox
dev=$(findfs LABEL=config-2 2>/dev/null)
if [ -n "$dev" ]; then
  mkdir -p /newroot/mnt/config
  mount -o ro -t iso9660 "$dev" /newroot/mnt/config 2>/dev/null && say "config drive at /mnt/config"
fi
# the lease on eth0 (the command starts without one after 30 s)
n=0; while [ -e /sys/class/net/eth0 ] && [ $n -lt 300 ] && ! ip -4 addr show dev eth0 | grep -q inet; do sleep 0.1; n=$((n + 1)); done
if [ -d /newroot/etc ]; then
  [ -f /etc/resolv.conf ] && cp /etc/resolv.conf /newroot/etc/resolv.conf
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > /newroot/etc/hosts
  for a in $(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1); do printf '%s\t%s\n' "$a" "$C_HOSTNAME" >> /newroot/etc/hosts; done
  echo "$C_HOSTNAME" > /newroot/etc/hostname
fi
say "root mounted, addresses $(ip -4 -o addr show scope global | awk '{print $4}' | tr '\n' ' ')uptime $(uptime_s) s"
`;

/** /etc/stratus/run (init's `once`): the command, then power-off. */
export const VMC_RUN = sh`#!/bin/sh
. /etc/stratus/functions.sh
. /etc/stratus/container.sh
if [ -e /newroot/dev/.stratus/busybox ]; then
  # stdio: the console (init gives it); a background job's stdin would be /dev/null
  exec 3<&0
  # a PID namespace of its own (the command is its PID 1, as under runc; the guest's helpers are out of its reach), its /proc
  unshare -p -f --mount-proc=/newroot/proc chroot /newroot /dev/.stratus/busybox sh -c 'cd -- "$0" 2>/dev/null || cd /; exec /dev/.stratus/busybox env -i "$@"' "$C_CWD" "$@" <&3 &
  pid=$!
  echo $pid > /run/stratus/container.pid
  say "container started: pid $pid, uptime $(uptime_s) s"
  wait $pid
  rc=$?
  rm -f /run/stratus/container.pid
  say "container exited with $rc"
fi
sync
poweroff
`;

/** /etc/init.d/rcK (init's shutdown): the command gets its stop signal and a grace time, then everything is synced. */
export const VMC_RCK = sh`#!/bin/sh
. /etc/stratus/functions.sh
. /etc/stratus/container.sh
if [ -f /run/stratus/container.pid ]; then
  pid=$(cat /run/stratus/container.pid)
  # the command: unshare's child (PID 1 of the namespace)
  c=$(cat /proc/$pid/task/$pid/children 2>/dev/null | awk '{print $1}')
  say "stopping the container (SIG$C_STOPSIGNAL)"
  kill -s "$C_STOPSIGNAL" "\${c:-$pid}" 2>/dev/null
  n=0; while kill -0 "$pid" 2>/dev/null && [ $n -lt ${STOP_GRACE_S * 10} ]; do sleep 0.1; n=$((n + 1)); done
fi
say "powering off"
sync
`;

export const VMC_FILES: ReadonlyArray<[string, string, number]> = [
  ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644],
  ['etc/group', 'root:x:0:\ntty:x:5:\n', 0o644],
  ['etc/hosts', '127.0.0.1\tlocalhost\n', 0o644],
  ['etc/os-release', 'NAME="Stratus VM-isolated container"\nID=stratus-vm-container\n', 0o644],
  // no shell on the console: it is the command's
  ['etc/inittab', '::sysinit:/etc/init.d/rcS\n::once:/etc/stratus/run\n::shutdown:/etc/init.d/rcK\n', 0o644],
  ['etc/init.d/rcS', VMC_RCS, 0o755],
  ['etc/init.d/rcK', VMC_RCK, 0o755],
  ['etc/stratus/run', VMC_RUN, 0o755],
  ['etc/stratus/functions.sh', FUNCTIONS_SH, 0o644],
  // replaced by each server's (its own cpio after this one)
  ['etc/stratus/container.sh', 'C_HOSTNAME=container\nC_CWD=/\nC_STOPSIGNAL=TERM\nset --\n', 0o644],
  ['etc/acpi/PWRF/00000080', POWER_BUTTON, 0o755],
  ['usr/share/udhcpc/default.script', UDHCPC_SCRIPT, 0o755],
];

/** Bump when the build changes in a way the inputs do not show. */
const BUILDER_VERSION = 1;

export interface VmContainerGuest { vmlinuz: string; initrd: string; cmdline: string; key: string }

/** The guest's kernel and initramfs, from the cache when its inputs have not changed, else built now (as root). */
export async function buildVmContainerGuest(o: { cacheDir?: string; log?: (msg: string) => void } = {}): Promise<VmContainerGuest> {
  const boot = await cachedBoot({
    cacheDir: o.cacheDir ?? DEFAULT_GUEST_CACHE, name: 'vm-container', what: 'the VM-isolated container guest', builder: BUILDER_VERSION, files: VMC_FILES, log: o.log ?? (() => {}),
  });
  return { ...boot, cmdline: VMC_CMDLINE };
}

/** Thrown when an image asks for what the guest cannot do (its message is the user's). */
export class UnsupportedImageError extends Error {}

/** The signal name (without SIG) of an image's StopSignal: a name or a number. */
function stopSignal(s: string | undefined): string {
  const v = (s ?? '').trim().toUpperCase().replace(/^SIG/, '');
  return /^([A-Z][A-Z0-9+-]*|\d{1,2})$/.test(v) ? v : 'TERM';
}

/**
 * /etc/stratus/container.sh of a server: what runc's spec would hold
 * (spec.ts): the image's Entrypoint + Cmd, its Env (PATH defaulted, HOSTNAME
 * and HOME set as runc's images get them), WorkingDir, the stop signal.
 * A user other than root is not supported yet (busybox has no tool that
 * switches to a numeric uid): UnsupportedImageError.
 */
export function containerConfig(config: OciImageConfig, hostname: string): string {
  const c = config.config ?? {};
  const argv = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (!argv.length) throw new UnsupportedImageError('the image has neither Entrypoint nor Cmd: nothing to run');
  const user = (c.User ?? '').trim();
  if (user && !/^(root|0)(:(root|0))?$/.test(user)) throw new UnsupportedImageError(`the image runs as user ${user}: a VM-isolated container runs its command as root only`);
  const env = new Map<string, string>();
  env.set('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  for (const kv of c.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  env.set('HOSTNAME', hostname);
  if (!env.has('HOME')) env.set('HOME', '/root');
  if (!env.has('TERM')) env.set('TERM', 'xterm');
  // env -i K=V... COMMAND: the command's first word must not look like an assignment
  const first = argv[0]!;
  const command = first.includes('=') && !first.includes('/') ? [`./${first}`, ...argv.slice(1)] : argv;
  const words = [...[...env].map(([k, v]) => `${k}=${v}`), ...command];
  return [
    `C_HOSTNAME=${shQuote(hostname.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63) || 'container')}`,
    `C_CWD=${shQuote(c.WorkingDir || '/')}`,
    `C_STOPSIGNAL=${shQuote(stopSignal(c.StopSignal))}`,
    `set -- ${words.map(shQuote).join(' ')}`,
    '',
  ].join('\n');
}

/** The per-server initramfs part: container.sh, as a gzip-compressed cpio (appended to the guest's). */
export function serverCpio(containerSh: string): Buffer {
  return gzipSync(cpioArchive([
    { name: 'etc', type: 'dir', mode: 0o755 }, { name: 'etc/stratus', type: 'dir', mode: 0o755 },
    { name: 'etc/stratus/container.sh', type: 'file', mode: 0o644, data: containerSh },
  ]));
}
