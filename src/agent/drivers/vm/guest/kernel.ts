// The guest's kernel: Debian's own (the package linux-image-amd64 depends on),
// fetched with `apt-get download` and unpacked with `dpkg-deb -x`, never
// installed on the host. Debian builds virtio, ATA, ISO 9660 and the ACPI
// button as modules, so the modules the guest needs are picked here in the
// order `modprobe --show-depends` gives (after `depmod` on the unpacked tree)
// and go into the initramfs. The result (vmlinuz + the picked modules, about
// 15 MB) is cached per package version and module lists; the 70 MB package
// and its unpacked tree are not kept.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, join } from 'node:path';
import { runOk } from '../../../exec.ts';

/** The package whose dependency is the kernel (the Debian way to say "the current kernel"). */
export const KERNEL_META_PACKAGE = 'linux-image-amd64';

/** Modules loaded at boot, before the network comes up (their dependencies come along). */
export const EARLY_MODULES = [
  'virtio_pci', 'virtio_net', 'virtio_blk', 'virtio_rng', 'e1000', 'e1000e', // NICs and disks (e1000e: q35's default NIC)
  'ahci', 'ata_piix', 'sr_mod', 'isofs', // the config drive as a CD-ROM (q35's SATA, pc's IDE) or a virtio disk
  'button', 'evdev', // the ACPI power button, read by acpid
] as const;
/** Modules loaded after the guest is ready: volumes on other buses and file systems. */
export const LATE_MODULES = ['virtio_scsi', 'sd_mod', 'ext4', 'vfat', 'nls_cp437', 'nls_iso8859-1'] as const;

export interface GuestKernel {
  /** The kernel package (e.g. linux-image-6.1.0-57-amd64) and its version. */
  package: string;
  version: string;
  /** `uname -r` of the kernel. */
  release: string;
  dir: string;
  vmlinuz: string;
  /** File names under `dir/modules`, in load order. */
  early: string[];
  late: string[];
}

interface Manifest { package: string; version: string; release: string; early: string[]; late: string[] }

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };

/** The kernel package linux-image-amd64 depends on, and that package's candidate version. */
export async function currentKernelPackage(): Promise<{ package: string; version: string }> {
  const deps = (await runOk('apt-cache', ['depends', KERNEL_META_PACKAGE], { env: APT_ENV, timeoutMs: 60_000 })).stdout;
  const pkg = deps.match(/Depends:\s*(linux-image-[^\s]+)/)?.[1];
  if (!pkg) throw new Error(`apt-cache depends ${KERNEL_META_PACKAGE} names no kernel package (apt-get update?)`);
  const show = (await runOk('apt-cache', ['show', '--no-all-versions', pkg], { env: APT_ENV, timeoutMs: 60_000 })).stdout;
  const version = show.match(/^Version:\s*(\S+)/m)?.[1];
  if (!version) throw new Error(`apt-cache show ${pkg} gives no version`);
  return { package: pkg, version };
}

/** Removes all but the `keep` newest cache directories under `root` (not the temporary `.build-*` ones). */
export async function pruneCache(root: string, keep: number): Promise<void> {
  const dirs = (await fsp.readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.'));
  const dated = await Promise.all(dirs.map(async (d) => ({ name: d.name, mtime: (await fsp.stat(join(root, d.name))).mtimeMs })));
  dated.sort((a, b) => b.mtime - a.mtime);
  for (const d of dated.slice(keep)) await fsp.rm(join(root, d.name), { recursive: true, force: true });
}

/** The cache directory of a kernel package version with the module lists of this code. */
function kernelDir(cacheDir: string, pkg: string, version: string): string {
  const lists = createHash('sha256').update(JSON.stringify([EARLY_MODULES, LATE_MODULES])).digest('hex').slice(0, 8);
  return join(cacheDir, 'kernel', `${pkg}_${version.replace(/[^A-Za-z0-9.+~-]/g, '_')}_${lists}`);
}

async function readCached(dir: string): Promise<GuestKernel | null> {
  try {
    const m = JSON.parse(await fsp.readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    if (!existsSync(join(dir, 'vmlinuz'))) return null;
    return { ...m, dir, vmlinuz: join(dir, 'vmlinuz') };
  } catch {
    return null;
  }
}

/** The newest kernel already in the cache (for a machine whose package lists cannot be read). */
async function anyCached(cacheDir: string): Promise<GuestKernel | null> {
  const root = join(cacheDir, 'kernel');
  const names = await fsp.readdir(root).catch(() => [] as string[]);
  let best: { k: GuestKernel; mtime: number } | null = null;
  for (const n of names) {
    const k = await readCached(join(root, n));
    if (!k) continue;
    const mtime = (await fsp.stat(join(root, n, 'manifest.json'))).mtimeMs;
    if (!best || mtime > best.mtime) best = { k, mtime };
  }
  return best?.k ?? null;
}

/** Module files in load order for `names` (deduplicated), from `modprobe --show-depends` on the unpacked tree. */
async function moduleOrder(root: string, release: string, names: readonly string[], skip: Set<string>): Promise<string[]> {
  const out: string[] = [];
  for (const name of names) {
    const r = await runOk('modprobe', ['-d', root, '-S', release, '--show-depends', name], { timeoutMs: 60_000 });
    for (const line of r.stdout.split('\n')) {
      const m = line.match(/^insmod\s+(\S+\.ko)\b/);
      if (m && !skip.has(m[1]!)) {
        skip.add(m[1]!);
        out.push(m[1]!);
      }
    }
  }
  return out;
}

/**
 * The guest kernel and its modules, from the cache under `cacheDir/kernel`
 * when the current package version is there, else downloaded and picked now.
 * When apt cannot tell the current version (no package lists), the newest
 * cached kernel is used.
 */
export async function guestKernel(cacheDir: string, log: (msg: string) => void = () => {}): Promise<GuestKernel> {
  let want: { package: string; version: string };
  try {
    want = await currentKernelPackage();
  } catch (err) {
    const cached = await anyCached(cacheDir);
    if (cached) return cached;
    throw err;
  }
  const dir = kernelDir(cacheDir, want.package, want.version);
  const cached = await readCached(dir);
  if (cached) return cached;

  await fsp.mkdir(join(cacheDir, 'kernel'), { recursive: true });
  const tmp = await fsp.mkdtemp(join(cacheDir, 'kernel', '.fetch-'));
  try {
    log(`downloading ${want.package} ${want.version}`);
    // APT::Sandbox::User=root: the download lands in a root-owned temp dir (_apt could not write there)
    await runOk('apt-get', ['-o', 'APT::Sandbox::User=root', 'download', `${want.package}=${want.version}`], { cwd: tmp, env: APT_ENV, timeoutMs: 900_000 });
    const deb = (await fsp.readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${want.package} left no .deb`);
    const root = join(tmp, 'root');
    await runOk('dpkg-deb', ['-x', join(tmp, deb), root], { timeoutMs: 300_000 });
    const releases = await fsp.readdir(join(root, 'lib', 'modules'));
    const release = releases.find((r) => want.package.endsWith(r)) ?? releases[0];
    if (!release) throw new Error(`${want.package} holds no /lib/modules`);
    await runOk('depmod', ['-b', root, release], { timeoutMs: 300_000 });
    const seen = new Set<string>();
    const early = await moduleOrder(root, release, EARLY_MODULES, seen);
    const late = await moduleOrder(root, release, LATE_MODULES, seen);

    const stage = join(tmp, 'out');
    await fsp.mkdir(join(stage, 'modules'), { recursive: true });
    await fsp.copyFile(join(root, 'boot', `vmlinuz-${release}`), join(stage, 'vmlinuz'));
    await fsp.copyFile(join(root, 'boot', `config-${release}`), join(stage, 'config'));
    for (const ko of [...early, ...late]) await fsp.copyFile(ko, join(stage, 'modules', basename(ko)));
    const names = (l: string[]) => l.map((p) => basename(p));
    const manifest: Manifest = { package: want.package, version: want.version, release, early: names(early), late: names(late) };
    if (new Set([...manifest.early, ...manifest.late]).size !== early.length + late.length) throw new Error('two kernel modules share a file name');
    await fsp.writeFile(join(stage, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rename(stage, dir);
    log(`kernel ${release}: ${early.length} early and ${late.length} late modules`);
    await pruneCache(join(cacheDir, 'kernel'), 2);
    return { ...manifest, dir, vmlinuz: join(dir, 'vmlinuz') };
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
