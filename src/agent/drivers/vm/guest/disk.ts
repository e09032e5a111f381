// The bootable disk of the small guest: a raw disk with an MBR (SYSLINUX's
// mbr.bin) and one active FAT16 partition at 1 MiB holding the kernel, the
// initramfs, syslinux.cfg and SYSLINUX itself, converted to qcow2. The Debian
// image adds an ext4 root partition after it.
//
// Why FAT + SYSLINUX: every step works on a plain file, without root, loop
// devices or mounts: mkfs.fat writes the file system at an offset into the
// disk file, mtools copies files into it, and the syslinux installer (the
// mtools one) writes its boot sector and ldlinux.sys there. GRUB or extlinux
// would need the file system mounted. SeaBIOS boots it like any disk.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from '../../../exec.ts';

export const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';
const SECTOR = 512;
const PART_START = 2048; // sectors: 1 MiB, as partitioning tools align
const MIB = 1 << 20;

export interface MbrPartition { start: number; sectors: number; type: number; active?: boolean }

/** The MBR from byte 440: the disk signature, up to four partition entries (LBA; CHS out of reach) and the 0x55AA signature. */
export function mbrPartitionTable(parts: readonly MbrPartition[], signature: number): Buffer {
  if (parts.length > 4) throw new Error('an MBR holds four partitions');
  const b = Buffer.alloc(SECTOR - 440);
  b.writeUInt32LE(signature >>> 0, 0); // disk signature at 440
  parts.forEach((p, i) => {
    const e = 446 - 440 + 16 * i;
    b[e] = p.active ? 0x80 : 0;
    b.set([0xfe, 0xff, 0xff], e + 1);
    b[e + 4] = p.type;
    b.set([0xfe, 0xff, 0xff], e + 5);
    b.writeUInt32LE(p.start, e + 8);
    b.writeUInt32LE(p.sectors, e + 12);
  });
  b[510 - 440] = 0x55;
  b[511 - 440] = 0xaa;
  return b;
}

export function syslinuxConfig(cmdline: string): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT stratus',
    'PROMPT 0',
    'TIMEOUT 0',
    'LABEL stratus',
    '  KERNEL /vmlinuz',
    '  INITRD /initrd.img',
    `  APPEND ${cmdline}`,
    '',
  ].join('\n');
}

/**
 * Writes a bootable disk with `vmlinuz` and `initrd` to `output` (qcow2, or
 * raw when `format` is raw; `compress`: a compressed qcow2), booting with
 * `cmdline`. With `root`, a second partition holds an ext4 file system made
 * from that directory (`mkfs.ext4 -d`, at its offset in the disk file: no
 * mount) with that label and size. `work` is a scratch directory the caller
 * removes.
 */
export async function makeBootDisk(o: {
  vmlinuz: string; initrd: string; cmdline: string; output: string; work: string; format?: 'qcow2' | 'raw'; compress?: boolean;
  bootMiB?: number; root?: { dir: string; label: string; sizeMiB: number };
}): Promise<void> {
  const payload = (await fsp.stat(o.vmlinuz)).size + (await fsp.stat(o.initrd)).size;
  const partMiB = o.bootMiB ?? Math.ceil(payload / MIB) + 4;
  const partSectors = (partMiB * MIB) / SECTOR;
  const rootStart = PART_START + partSectors;
  const raw = join(o.work, 'disk.raw');
  await fsp.rm(raw, { force: true });
  await fsp.writeFile(raw, Buffer.alloc(0));
  await fsp.truncate(raw, PART_START * SECTOR + partMiB * MIB + (o.root ? o.root.sizeMiB * MIB : 0));
  // the file system at sector 2048 of the disk file, its hidden-sector count saying so
  await runOk('mkfs.fat', ['-F', '16', '-n', 'STRATUS', '-i', '57524154', '-h', String(PART_START), '--offset', String(PART_START), raw, String(partMiB * 1024)], { timeoutMs: 60_000 });
  const cfg = join(o.work, 'syslinux.cfg');
  await fsp.writeFile(cfg, syslinuxConfig(o.cmdline));
  const img = `${raw}@@${PART_START * SECTOR}`;
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
  for (const [src, name] of [[o.vmlinuz, 'vmlinuz'], [o.initrd, 'initrd.img'], [cfg, 'syslinux.cfg']] as const) {
    await runOk('mcopy', ['-o', '-i', img, src, `::${name}`], { env, timeoutMs: 60_000 });
  }
  await runOk('syslinux', ['--offset', String(PART_START * SECTOR), '--install', raw], { env, timeoutMs: 60_000 });
  // after the FAT file system, so that nothing written there can touch it
  if (o.root) {
    await runOk('mkfs.ext4', ['-q', '-F', '-L', o.root.label, '-d', o.root.dir, '-E', `offset=${rootStart * SECTOR}`, raw, `${o.root.sizeMiB * 1024}k`], { timeoutMs: 1_800_000 });
  }
  const mbr = await fsp.readFile(SYSLINUX_MBR);
  const signature = createHash('sha256').update(o.cmdline).digest().readUInt32LE(0);
  const fh = await fsp.open(raw, 'r+');
  try {
    await fh.write(mbr.subarray(0, 440), 0, 440, 0);
    const parts: MbrPartition[] = [{ start: PART_START, sectors: partSectors, type: 0x0e, active: true }];
    if (o.root) parts.push({ start: rootStart, sectors: (o.root.sizeMiB * MIB) / SECTOR, type: 0x83 });
    await fh.write(mbrPartitionTable(parts, signature), 0, SECTOR - 440, 440);
  } finally {
    await fh.close();
  }
  if ((o.format ?? 'qcow2') === 'raw') {
    await fsp.rename(raw, o.output);
  } else {
    await runOk('qemu-img', ['convert', ...(o.compress ? ['-c'] : []), '-f', 'raw', '-O', 'qcow2', raw, o.output], { timeoutMs: 1_800_000 });
  }
}
