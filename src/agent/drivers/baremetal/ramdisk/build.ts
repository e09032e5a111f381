// The deploy ramdisk: the small guest's Debian kernel (kernel.ts) and its
// busybox initramfs (initramfs.ts) with the ramdisk's own boot scripts
// (scripts.ts), cached under the guest cache by a key of every input, as
// stratus-tiny is; and, per operation, an ISO 9660 image of it for Redfish
// virtual media (isolinux from Debian's isolinux and syslinux-common,
// xorriso), whose kernel line carries the callback parameters.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from '../../../exec.ts';
import { cachedBoot, type CachedBoot } from '../../vm/guest/initramfs.ts';
import { DEFAULT_GUEST_CACHE } from '../../vm/guest/tiny-image.ts';
import { RAMDISK_CMDLINE, RAMDISK_FILES } from './scripts.ts';

export const ISOLINUX_BIN = '/usr/lib/ISOLINUX/isolinux.bin';
export const LDLINUX_C32 = '/usr/lib/syslinux/modules/bios/ldlinux.c32';
/** Bump when the build changes in a way the inputs do not show. */
const BUILDER_VERSION = 1;

export type Ramdisk = CachedBoot;

/** The ramdisk, from the cache when its inputs have not changed, else built now (as root: apt-get download of the kernel when not cached). */
export async function buildRamdisk(o: { cacheDir?: string; log?: (msg: string) => void } = {}): Promise<Ramdisk> {
  return cachedBoot({ cacheDir: o.cacheDir ?? DEFAULT_GUEST_CACHE, name: 'ramdisk', what: 'the deploy ramdisk', builder: BUILDER_VERSION, files: RAMDISK_FILES, log: o.log ?? (() => {}) });
}

/** isolinux.cfg of the ramdisk ISO: boots at once with `cmdline`. */
export function isolinuxConfig(cmdline: string): string {
  return ['SERIAL 0 115200', 'DEFAULT ramdisk', 'PROMPT 0', 'TIMEOUT 0', 'LABEL ramdisk', '  KERNEL /vmlinuz', '  INITRD /initrd.img', `  APPEND ${cmdline}`, ''].join('\n');
}

/** The kernel command line of a ramdisk booted for `node`, calling back `callback` with `token`. */
export function ramdiskCmdline(callback: string, node: string, token: string, extra = ''): string {
  return `${RAMDISK_CMDLINE} stratus.callback=${callback} stratus.node=${node} stratus.token=${token}${extra ? ` ${extra}` : ''}`;
}

/** An El Torito ISO of the ramdisk booting with `cmdline` (isolinux), written to `out` (mode 0600: it holds a token). */
export async function buildRamdiskIso(r: Ramdisk, cmdline: string, out: string): Promise<void> {
  const stage = await fsp.mkdtemp(`${out}.stage-`);
  try {
    await fsp.mkdir(join(stage, 'isolinux'));
    await fsp.copyFile(ISOLINUX_BIN, join(stage, 'isolinux', 'isolinux.bin'));
    await fsp.copyFile(LDLINUX_C32, join(stage, 'isolinux', 'ldlinux.c32'));
    await fsp.writeFile(join(stage, 'isolinux', 'isolinux.cfg'), isolinuxConfig(cmdline), { mode: 0o600 });
    await fsp.copyFile(r.vmlinuz, join(stage, 'vmlinuz'));
    await fsp.copyFile(r.initrd, join(stage, 'initrd.img'));
    await runOk('xorriso', ['-as', 'mkisofs', '-quiet', '-o', `${out}.tmp`, '-V', 'STRATUS_RAMDISK', '-r', '-J',
      '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', stage], { timeoutMs: 120_000 });
    await fsp.chmod(`${out}.tmp`, 0o600);
    await fsp.rename(`${out}.tmp`, out);
  } finally {
    await fsp.rm(stage, { recursive: true, force: true });
    await fsp.rm(`${out}.tmp`, { force: true });
  }
}
