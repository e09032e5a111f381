// Which accelerator VMs get on this host, found by running guest code, not by
// looking for /dev/kvm: on these machines /dev/kvm exists but is `kvm_pvm`
// (nested paging emulation without vmx/svm), where KVM starts and runs guest
// code, only far slower than TCG (shared/notes/dataplane.md, section 3).
//
// The probe boots SeaBIOS with no disk, once under TCG and once under KVM,
// and times how long the BIOS takes to reach "No bootable device" (it writes
// its log to the debug console port 0x402, which qemu sends to a file). KVM
// is taken only when its run finishes, and faster than TCG's: hardware
// virtualisation that is slower than emulation is not usable. The result is
// cached for the process and, for the other agents and test planes of this
// boot, in /run (a tmpfs: gone at reboot) under the boot id and qemu's
// version, so that it is found again only while both hold; `qemuVersion` is
// read once too.
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Hypervisor } from '../../../fleet/protocol.ts';
import { run } from '../../exec.ts';

export const QEMU = 'qemu-system-x86_64';

export interface AccelProbe {
  accel: 'kvm' | 'tcg';
  /** Why: the timings, or why KVM was not tried. */
  reason: string;
  tcgMs: number | null;
  kvmMs: number | null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const BIOS_DONE = /No bootable device|Booting from/;

/** Milliseconds SeaBIOS took under `accel` to finish, or null when it did not within `deadlineMs` (or qemu refused the accelerator). */
async function biosRun(accel: 'kvm' | 'tcg', dir: string, deadlineMs: number): Promise<{ ms: number | null; err: string }> {
  const log = join(dir, `probe-${accel}-${process.pid}.log`);
  await fsp.rm(log, { force: true });
  const t0 = performance.now();
  const child = spawn(QEMU, ['-accel', accel, '-machine', 'pc', '-nodefaults', '-display', 'none', '-m', '16', '-no-reboot',
    '-chardev', `file,id=dbg,path=${log}`, '-device', 'isa-debugcon,iobase=0x402,chardev=dbg'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (err.length < 2000) err += d; });
  let exited = false;
  child.once('exit', () => { exited = true; });
  child.once('error', (e) => { exited = true; err += e.message; });
  try {
    while (performance.now() - t0 < deadlineMs) {
      const text = await fsp.readFile(log, 'utf8').catch(() => '');
      if (BIOS_DONE.test(text)) return { ms: Math.round(performance.now() - t0), err };
      if (exited) return { ms: null, err: err.trim() || 'qemu exited' };
      await sleep(20);
    }
    return { ms: null, err: `the BIOS did not finish within ${deadlineMs} ms` };
  } finally {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await fsp.rm(log, { force: true });
  }
}

let cached: Promise<AccelProbe> | null = null;

/** Where a probe's result is kept for this boot. */
export const PROBE_CACHE = '/run/stratus/accel-probe.json';

/** This boot and this qemu: a cached probe holds only while both are the same. */
async function probeKey(): Promise<string> {
  const boot = (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  return `${boot}/${(await qemuVersion()) ?? '?'}`;
}

async function cachedProbe(key: string): Promise<AccelProbe | null> {
  try {
    const c = JSON.parse(await fsp.readFile(PROBE_CACHE, 'utf8')) as { key?: string; probe?: AccelProbe };
    return c.key === key && (c.probe?.accel === 'kvm' || c.probe?.accel === 'tcg') ? c.probe : null;
  } catch {
    return null;
  }
}

async function keepProbe(key: string, probe: AccelProbe): Promise<void> {
  const tmp = `${PROBE_CACHE}.${process.pid}`;
  try {
    await fsp.mkdir('/run/stratus', { recursive: true, mode: 0o755 });
    await fsp.writeFile(tmp, JSON.stringify({ key, probe }), { mode: 0o644 });
    await fsp.rename(tmp, PROBE_CACHE);
  } catch {
    await fsp.rm(tmp, { force: true }); // not root, or no /run: probe again next time
  }
}

/** Probes once per process (a forced `accel` skips the probe). `dir`: where the probe's log files go. */
export function probeAccel(dir: string, forced?: 'kvm' | 'tcg'): Promise<AccelProbe> {
  if (forced) return Promise.resolve({ accel: forced, reason: 'set by the agent\'s configuration', tcgMs: null, kvmMs: null });
  cached ??= (async (): Promise<AccelProbe> => {
    const key = await probeKey();
    const kept = await cachedProbe(key);
    if (kept) return kept;
    const probe = await runProbe(dir);
    await keepProbe(key, probe);
    return probe;
  })();
  cached.catch(() => { cached = null; });
  return cached;
}

async function runProbe(dir: string): Promise<AccelProbe> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const kvmDev = await fsp.access('/dev/kvm', fsp.constants.R_OK | fsp.constants.W_OK).then(() => true, () => false);
  const tcg = await biosRun('tcg', dir, 30_000);
  if (!kvmDev) return { accel: 'tcg', reason: 'no usable /dev/kvm', tcgMs: tcg.ms, kvmMs: null };
  const kvm = await biosRun('kvm', dir, Math.max(3000, 3 * (tcg.ms ?? 1000)));
  if (kvm.ms === null) return { accel: 'tcg', reason: `KVM did not run the BIOS: ${kvm.err.slice(0, 300)}`, tcgMs: tcg.ms, kvmMs: null };
  if (tcg.ms !== null && kvm.ms >= tcg.ms) return { accel: 'tcg', reason: `KVM runs guest code slower than TCG (BIOS in ${kvm.ms} ms vs ${tcg.ms} ms): nested or emulated virtualisation`, tcgMs: tcg.ms, kvmMs: kvm.ms };
  return { accel: 'kvm', reason: `BIOS in ${kvm.ms} ms under KVM, ${tcg.ms ?? '?'} ms under TCG`, tcgMs: tcg.ms, kvmMs: kvm.ms };
}

let version: Promise<string | undefined> | null = null;

/** qemu-system-x86_64's version (e.g. '7.2.22'), undefined when it cannot be run. */
export function qemuVersion(): Promise<string | undefined> {
  version ??= run(QEMU, ['--version']).then((r) => /version (\d+\.\d+\.\d+)/.exec(r.stdout)?.[1], () => undefined);
  return version;
}

/** What the host registers (os-hypervisors' hypervisor_type: QEMU for TCG, KVM). */
export async function hypervisorOf(p: AccelProbe): Promise<Hypervisor> {
  const v = await qemuVersion();
  return { type: p.accel === 'kvm' ? 'KVM' : 'QEMU', accel: p.accel, ...(v ? { version: v } : {}) };
}
