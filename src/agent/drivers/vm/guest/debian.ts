// A Debian 12 cloud image with cloud-init and OpenSSH, for a real-world check
// of the VM path (`stratus image build-debian --out F`; documented, not run in
// CI: debootstrap takes minutes and the guest minutes more under TCG). The
// recipe is the one the data-plane probes proved (notes/dataplane.md, 3b):
// debootstrap minbase with systemd, Debian's kernel, cloud-init (ConfigDrive,
// then the OpenStack metadata service), openssh-server; the root file system
// made with `mkfs.ext4 -d` (no loop device, no mount). Booting goes through
// the same FAT + SYSLINUX partition as the small image (disk.ts), the ext4
// root partition after it, so growpart can grow it to the flavor's disk.
import * as fsp from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { run, runOk } from '../../../exec.ts';
import { makeBootDisk } from './disk.ts';

export const DEBIAN_SUITE = 'bookworm';
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
/**
 * What debootstrap installs besides minbase (python3-cffi-backend: debootstrap
 * does not resolve the virtual package cloud-init needs). The generic kernel,
 * not linux-image-cloud-amd64: the cloud kernel has no AHCI driver, so on q35
 * it never sees a config drive attached as a CD-ROM (SATA), and cloud-init
 * then stays off.
 */
export const DEBIAN_IMAGE_INCLUDE = [
  'systemd-sysv', 'udev', 'dbus', 'linux-image-amd64', 'initramfs-tools', 'cloud-init', 'python3-cffi-backend',
  'openssh-server', 'iproute2', 'ifupdown', 'isc-dhcp-client', 'netbase', 'ca-certificates', 'sudo', 'procps',
  'e2fsprogs', 'cloud-guest-utils',
] as const;
export const DEBIAN_ROOT_LABEL = 'stratus-root';
export const DEBIAN_CMDLINE = `root=LABEL=${DEBIAN_ROOT_LABEL} rw console=tty0 console=ttyS0,115200n8 net.ifnames=0`;

/** Unmounts whatever is still mounted under `dir` (a failed debootstrap leaves proc and sys in its chroot). */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (const m of mounts.reverse()) await run('umount', ['-l', m]);
}

/**
 * Builds the Debian image into `out` (a compressed qcow2), as root. `sizeMiB`
 * is the root partition's size (the disk's virtual size is 64 MiB more).
 */
export async function buildDebianImage(o: { out: string; mirror?: string; sizeMiB?: number; log?: (msg: string) => void }): Promise<{ out: string; size: number; kernel: string }> {
  const log = o.log ?? (() => {});
  const out = resolve(o.out);
  if (process.getuid?.() !== 0) throw new Error('building the Debian image needs root (debootstrap, chroot)');
  const work = await fsp.mkdtemp(join(dirname(out), '.stratus-debian-'));
  const root = join(work, 'root');
  try {
    const t0 = Date.now();
    log(`debootstrap ${DEBIAN_SUITE} from ${o.mirror ?? DEBIAN_MIRROR} (minutes)`);
    await runOk('debootstrap', ['--variant=minbase', `--include=${DEBIAN_IMAGE_INCLUDE.join(',')}`, DEBIAN_SUITE, root, o.mirror ?? DEBIAN_MIRROR],
      { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 3_600_000 });
    log(`debootstrap: ${Math.round((Date.now() - t0) / 1000)} s`);
    await fsp.writeFile(join(root, 'etc/hostname'), 'debian\n');
    await fsp.writeFile(join(root, 'etc/fstab'), `LABEL=${DEBIAN_ROOT_LABEL} / ext4 defaults,discard 0 1\n`);
    await fsp.mkdir(join(root, 'etc/cloud/cloud.cfg.d'), { recursive: true });
    // the config drive first (no network needed), then the metadata service
    await fsp.writeFile(join(root, 'etc/cloud/cloud.cfg.d/90-stratus.cfg'), 'datasource_list: [ ConfigDrive, OpenStack, None ]\n');
    await fsp.writeFile(join(root, 'etc/network/interfaces'), 'auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n');
    await fsp.mkdir(join(root, 'etc/network/interfaces.d'), { recursive: true });
    await runOk('chroot', [root, 'systemctl', 'enable', 'serial-getty@ttyS0.service'], { timeoutMs: 120_000 });
    // host keys: made per server by cloud-init
    for (const f of await fsp.readdir(join(root, 'etc/ssh'))) if (f.startsWith('ssh_host_')) await fsp.rm(join(root, 'etc/ssh', f));
    await runOk('chroot', [root, 'apt-get', 'clean'], { timeoutMs: 120_000 });
    await fsp.rm(join(root, 'var/lib/apt/lists'), { recursive: true, force: true });
    await fsp.mkdir(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
    await unmountUnder(root);
    const vmlinuz = await fsp.realpath(join(root, 'vmlinuz'));
    const initrd = await fsp.realpath(join(root, 'initrd.img'));
    log(`disk: kernel ${vmlinuz.slice(root.length)}, root file system ${o.sizeMiB ?? 3072} MiB`);
    await makeBootDisk({ vmlinuz, initrd, cmdline: DEBIAN_CMDLINE, output: out, work, compress: true, bootMiB: 64, root: { dir: root, label: DEBIAN_ROOT_LABEL, sizeMiB: o.sizeMiB ?? 3072 } });
    return { out, size: (await fsp.stat(out)).size, kernel: vmlinuz.slice(root.length) };
  } finally {
    await unmountUnder(work);
    await fsp.rm(work, { recursive: true, force: true });
  }
}
