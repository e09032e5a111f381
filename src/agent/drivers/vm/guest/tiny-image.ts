// The small VM image (`stratus-tiny`): what behaves like CirrOS, built on this
// machine from Debian packages (docs/guest-images.md). The kernel comes from
// kernel.ts, the initramfs from initramfs.ts, the disk from disk.ts. A build is
// kept under the cache directory by a key made of every input's version and
// the scripts' text, so a second build costs a hash and a stat; the kernel
// package is only downloaded when its version changed.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from '../../../exec.ts';
import { makeBootDisk, syslinuxConfig } from './disk.ts';
import { buildInitramfs, initramfsInputs } from './initramfs.ts';
import { guestKernel, pruneCache } from './kernel.ts';
import { ETC_FILES, KERNEL_CMDLINE } from './scripts.ts';

export const TINY_IMAGE_NAME = 'stratus-tiny';
/** Where builds are cached unless told otherwise (re-creatable: /var/cache). */
export const DEFAULT_GUEST_CACHE = '/var/cache/stratus/guest';
/** Glance fields of the image (container_format bare, disk_format qcow2) and the properties that tell Nova what it needs. */
export const TINY_IMAGE_GLANCE = {
  container_format: 'bare',
  disk_format: 'qcow2',
  min_disk: 1,
  min_ram: 64,
  hw_disk_bus: 'virtio',
  hw_vif_model: 'virtio',
  hw_machine_type: 'q35',
  os_type: 'linux',
  os_distro: 'stratus-tiny',
  // the user Tempest's validation and the docs log in as
  os_admin_user: 'root',
} as const;
/** Builds kept in the cache (the newest; older ones go when a new one is made). */
const KEEP_BUILDS = 3;
/** Bump when the build changes in a way the inputs' versions do not show. */
const BUILDER_VERSION = 1;

export interface TinyImage {
  /** The bootable qcow2 disk. */
  disk: string;
  /** The kernel, initramfs and command line inside it (for a direct `-kernel` boot). */
  vmlinuz: string;
  initrd: string;
  cmdline: string;
  key: string;
  /** Which kernel package it holds. */
  kernel: { package: string; version: string; release: string };
  size: number;
}

/**
 * The small VM image, from the cache when its inputs have not changed, else
 * built now (as root: apt-get download; about 30 s, most of it the kernel
 * package's download and unpacking). Concurrent builders each build and the
 * first to finish is kept.
 */
export async function buildTinyImage(o: { cacheDir?: string; log?: (msg: string) => void } = {}): Promise<TinyImage> {
  const cacheDir = o.cacheDir ?? DEFAULT_GUEST_CACHE;
  const log = o.log ?? (() => {});
  const kernel = await guestKernel(cacheDir, log);
  const syslinux = (await runOk('dpkg-query', ['-W', '-f=${Version}', 'syslinux'], { timeoutMs: 30_000 }).catch(() => null))?.stdout.trim() || 'none';
  const inputs = {
    builder: BUILDER_VERSION, kernel: `${kernel.package}=${kernel.version}`, early: kernel.early, late: kernel.late,
    ...(await initramfsInputs()), syslinux, cmdline: KERNEL_CMDLINE, files: ETC_FILES, syslinuxCfg: syslinuxConfig(KERNEL_CMDLINE),
  };
  const key = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
  const dir = join(cacheDir, 'tiny', key);
  const result = async (): Promise<TinyImage> => ({
    disk: join(dir, 'disk.qcow2'), vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), cmdline: KERNEL_CMDLINE, key,
    kernel: { package: kernel.package, version: kernel.version, release: kernel.release },
    size: (await fsp.stat(join(dir, 'disk.qcow2'))).size,
  });
  if (existsSync(join(dir, 'inputs.json'))) return result();

  await fsp.mkdir(join(cacheDir, 'tiny'), { recursive: true });
  const tmp = await fsp.mkdtemp(join(cacheDir, 'tiny', '.build-'));
  try {
    const out = join(tmp, 'out');
    await fsp.mkdir(out);
    await fsp.copyFile(kernel.vmlinuz, join(out, 'vmlinuz'));
    const initrdSize = await buildInitramfs(kernel, join(out, 'initrd.img'));
    log(`initramfs: ${initrdSize} bytes`);
    await makeBootDisk({ vmlinuz: join(out, 'vmlinuz'), initrd: join(out, 'initrd.img'), cmdline: KERNEL_CMDLINE, output: join(out, 'disk.qcow2'), work: tmp });
    // written last: its presence says the build is whole
    await fsp.writeFile(join(out, 'inputs.json'), `${JSON.stringify(inputs, (k, v) => (k === 'files' ? undefined : v), 2)}\n`);
    await fsp.rename(out, dir).catch(async (err: NodeJS.ErrnoException) => {
      if (!existsSync(join(dir, 'inputs.json'))) throw err; // else another build finished first: keep that one
    });
    log(`built ${TINY_IMAGE_NAME} ${key} in ${dir}`);
    await pruneCache(join(cacheDir, 'tiny'), KEEP_BUILDS);
    return result();
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
