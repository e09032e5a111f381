// The small guest's initramfs: Debian's busybox-static (every applet a link),
// dropbear with the shared libraries it needs (found with ldd on this host),
// the kernel modules picked by kernel.ts, and the boot scripts of scripts.ts,
// as one gzip-compressed newc cpio. /init is busybox itself (its init applet).
// The bare-metal deploy ramdisk (../../baremetal/ramdisk/) is the same
// initramfs with its own boot scripts.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runOk } from '../../../exec.ts';
import { isStaticElf } from '../../container/busybox.ts';
import { cpioArchive, type CpioEntry } from './cpio.ts';
import { guestKernel, pruneCache, type GuestKernel } from './kernel.ts';
import { ETC_FILES } from './scripts.ts';

export const BUSYBOX = '/bin/busybox';
/** Dropbear's programs in the guest: the server, its key maker and the client (dbclient). */
export const DROPBEAR_PROGRAMS = ['/usr/sbin/dropbear', '/usr/bin/dropbearkey', '/usr/bin/dbclient'] as const;

const DIRS: ReadonlyArray<[string, number]> = [
  ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['etc/acpi', 0o755], ['etc/acpi/PWRF', 0o755], ['etc/dropbear', 0o700],
  ['etc/init.d', 0o755], ['etc/stratus', 0o755], ['lib', 0o755], ['lib/modules', 0o755], ['mnt', 0o755], ['mnt/config', 0o755],
  ['proc', 0o555], ['root', 0o700], ['run', 0o755], ['sbin', 0o755], ['sys', 0o555], ['tmp', 0o1777], ['usr', 0o755],
  ['usr/bin', 0o755], ['usr/sbin', 0o755], ['usr/share', 0o755], ['usr/share/udhcpc', 0o755], ['var', 0o755], ['var/log', 0o755],
];

/** The shared libraries (and the dynamic loader) `programs` load, by their paths on this host. */
export async function sharedLibraries(programs: readonly string[]): Promise<string[]> {
  const libs = new Set<string>();
  for (const p of programs) {
    const out = (await runOk('ldd', [p], { timeoutMs: 30_000 })).stdout;
    for (const line of out.split('\n')) {
      const m = line.match(/=>\s*(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
      if (m) libs.add(m[1]!);
    }
  }
  return [...libs].sort();
}

/** The versions that decide the initramfs's content besides the scripts (for the image cache key). */
export async function initramfsInputs(): Promise<Record<string, string>> {
  const version = async (pkg: string) => (await runOk('dpkg-query', ['-W', '-f=${Version}', pkg], { timeoutMs: 30_000 }).catch(() => null))?.stdout.trim() || 'none';
  return { 'busybox-static': await version('busybox-static'), 'dropbear-bin': await version('dropbear-bin'), libc6: await version('libc6') };
}

/**
 * Builds the gzip-compressed initramfs for `kernel` into `output`; returns its
 * size. `files`: the plain files of /etc and the rest (default the small
 * guest's; the bare-metal deploy ramdisk gives its own).
 */
export async function buildInitramfs(kernel: GuestKernel, output: string, files: ReadonlyArray<[string, string, number]> = ETC_FILES): Promise<number> {
  if (!(await isStaticElf(BUSYBOX).catch(() => false))) throw new Error(`${BUSYBOX} is missing or not statically linked: apt-get install busybox-static`);
  for (const p of DROPBEAR_PROGRAMS) await fsp.access(p).catch(() => { throw new Error(`${p} is missing: apt-get install dropbear-bin`); });

  const entries: CpioEntry[] = [];
  const names = new Set<string>();
  const dir = (name: string, mode = 0o755) => {
    if (names.has(name)) return;
    const parent = dirname(name);
    if (parent !== '.') dir(parent);
    names.add(name);
    entries.push({ name, type: 'dir', mode });
  };
  const add = (e: CpioEntry) => {
    if (names.has(e.name)) return;
    if (dirname(e.name) !== '.') dir(dirname(e.name));
    names.add(e.name);
    entries.push(e);
  };
  for (const [name, mode] of DIRS) dir(name, mode);
  add({ name: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 });
  add({ name: 'dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 });
  add({ name: 'init', type: 'symlink', target: '/bin/busybox' });
  for (const [name, text, mode] of files) add({ name, type: 'file', mode, data: text });
  add({ name: 'bin/busybox', type: 'file', mode: 0o755, data: await fsp.readFile(BUSYBOX) });
  const applets = (await runOk(BUSYBOX, ['--list-full'])).stdout.split('\n').map((s) => s.trim()).filter((s) => /^[a-z0-9/._[-]+$/i.test(s));
  for (const a of applets) if (a !== 'bin/busybox') add({ name: a, type: 'symlink', target: '/bin/busybox' });
  for (const p of DROPBEAR_PROGRAMS) add({ name: p.slice(1), type: 'file', mode: 0o755, data: await fsp.readFile(p) });
  for (const lib of await sharedLibraries(DROPBEAR_PROGRAMS)) {
    add({ name: lib.slice(1), type: 'file', mode: 0o755, data: await fsp.readFile(lib) }); // readFile follows the library's symlink
  }
  for (const ko of [...kernel.early, ...kernel.late]) add({ name: `lib/modules/${basename(ko)}`, type: 'file', mode: 0o644, data: await fsp.readFile(join(kernel.dir, 'modules', ko)) });
  add({ name: 'lib/modules/early.order', type: 'file', data: `${kernel.early.join('\n')}\n` });
  add({ name: 'lib/modules/late.order', type: 'file', data: `${kernel.late.join('\n')}\n` });

  const gz = gzipSync(cpioArchive(entries), { level: 9 });
  await fsp.mkdir(dirname(output), { recursive: true });
  await fsp.writeFile(output, gz);
  return gz.length;
}

export interface CachedBoot {
  vmlinuz: string;
  initrd: string;
  /** A hash of every input: a new one is a new build. */
  key: string;
}

/**
 * The small guest's kernel with an initramfs of `files` (the deploy ramdisk's, the VM-isolated container
 * guest's boot scripts), from `<cacheDir>/<name>/<key>` when none of its inputs changed (`builder`: bumped
 * when the build changes in a way the inputs do not show), else built there now (as root: the kernel
 * fetched with apt-get download when not cached); the two newest builds kept.
 */
export async function cachedBoot(o: {
  cacheDir: string; name: string; what: string; builder: number; files: ReadonlyArray<[string, string, number]>; log: (msg: string) => void;
}): Promise<CachedBoot> {
  const kernel = await guestKernel(o.cacheDir, o.log);
  const inputs = { builder: o.builder, kernel: `${kernel.package}=${kernel.version}`, early: kernel.early, late: kernel.late, ...(await initramfsInputs()), files: o.files };
  const key = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
  const root = join(o.cacheDir, o.name);
  const dir = join(root, key);
  const result: CachedBoot = { vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), key };
  if (existsSync(join(dir, 'inputs.json'))) return result;
  await fsp.mkdir(root, { recursive: true });
  const tmp = await fsp.mkdtemp(join(root, '.build-'));
  try {
    await fsp.copyFile(kernel.vmlinuz, join(tmp, 'vmlinuz'));
    const size = await buildInitramfs(kernel, join(tmp, 'initrd.img'), o.files);
    await fsp.writeFile(join(tmp, 'inputs.json'), `${JSON.stringify(inputs, (k, v) => (k === 'files' ? undefined : v), 2)}\n`);
    // another process that built the same key first won: its build serves
    await fsp.rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      if (!existsSync(join(dir, 'inputs.json'))) throw err;
    });
    o.log(`built ${o.what} ${key} (initramfs ${size} bytes)`);
    await pruneCache(root, 2);
    return result;
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
