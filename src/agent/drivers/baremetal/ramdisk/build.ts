// The deploy ramdisk: the small guest's Debian kernel (kernel.ts) and its
// busybox initramfs (initramfs.ts) with the ramdisk's own boot scripts
// (scripts.ts), cached under the guest cache by a key of every input, as
// stratus-tiny is; and, per operation, an ISO 9660 image of it for Redfish
// virtual media (isolinux from Debian's isolinux and syslinux-common,
// xorriso), whose kernel line carries the callback parameters.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from '../../../exec.ts';
import { buildInitramfs, initramfsInputs } from '../../vm/guest/initramfs.ts';
import { guestKernel, pruneCache } from '../../vm/guest/kernel.ts';
import { DEFAULT_GUEST_CACHE } from '../../vm/guest/tiny-image.ts';
import { RAMDISK_CMDLINE, RAMDISK_FILES } from './scripts.ts';

export const ISOLINUX_BIN = '/usr/lib/ISOLINUX/isolinux.bin';
export const LDLINUX_C32 = '/usr/lib/syslinux/modules/bios/ldlinux.c32';
/** Bump when the build changes in a way the inputs do not show. */
const BUILDER_VERSION = 1;

export interface Ramdisk {
  vmlinuz: string;
  initrd: string;
  key: string;
}

/** The ramdisk, from the cache when its inputs have not changed, else built now (as root: apt-get download of the kernel when not cached). */
export async function buildRamdisk(o: { cacheDir?: string; log?: (msg: string) => void } = {}): Promise<Ramdisk> {
  const cacheDir = o.cacheDir ?? DEFAULT_GUEST_CACHE;
  const log = o.log ?? (() => {});
  const kernel = await guestKernel(cacheDir, log);
  const inputs = { builder: BUILDER_VERSION, kernel: `${kernel.package}=${kernel.version}`, early: kernel.early, late: kernel.late, ...(await initramfsInputs()), files: RAMDISK_FILES };
  const key = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
  const dir = join(cacheDir, 'ramdisk', key);
  const result: Ramdisk = { vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), key };
  if (existsSync(join(dir, 'inputs.json'))) return result;
  await fsp.mkdir(join(cacheDir, 'ramdisk'), { recursive: true });
  const tmp = await fsp.mkdtemp(join(cacheDir, 'ramdisk', '.build-'));
  try {
    await fsp.copyFile(kernel.vmlinuz, join(tmp, 'vmlinuz'));
    const size = await buildInitramfs(kernel, join(tmp, 'initrd.img'), RAMDISK_FILES);
    await fsp.writeFile(join(tmp, 'inputs.json'), `${JSON.stringify(inputs, (k, v) => (k === 'files' ? undefined : v), 2)}\n`);
    await fsp.rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      if (!existsSync(join(dir, 'inputs.json'))) throw err;
    });
    log(`built the deploy ramdisk ${key} (initramfs ${size} bytes)`);
    await pruneCache(join(cacheDir, 'ramdisk'), 2);
    return result;
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
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
