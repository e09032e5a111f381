// Helpers of the virtual BMC tests (vbmc-*.test.ts): a bridge and a state
// directory of unique names, the processes and taps they leave (none, once
// cleaned up), a tiny bootable ISO (ISOLINUX printing a line on the serial
// port), the Debian clients run without the host's CA bundle variables.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '../../src/agent/exec.ts';
import { deleteMachine, listMachines, tapName } from '../../src/vbmc/fleet.ts';
import { linkExists } from '../../src/vbmc/machine.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, cmd)));
}

/** Why the tests cannot run here, or false. */
export function skipWithout(...cmds: string[]): string | false {
  if (process.getuid?.() !== 0) return 'data-plane tests run as root';
  const missing = cmds.filter((c) => !(c.startsWith('/') ? existsSync(c) : onPath(c)));
  return missing.length ? `not installed: ${missing.join(', ')}` : false;
}

export interface Bed { stateDir: string; bridge: string; work: string; netns?: string }

/** A fresh state directory and a bridge, both named for this process; the bridge in a network namespace of its own with `netns`. */
export async function makeBed(prefix: string, o: { netns?: boolean } = {}): Promise<Bed> {
  const work = mkdtempSync(join(tmpdir(), `stratus-${prefix}-`));
  const bridge = `${prefix.slice(0, 6)}${process.pid.toString(16).slice(-6)}`;
  const netns = o.netns ? `stratus-${bridge}` : undefined;
  const bed: Bed = { stateDir: join(work, 'state'), bridge, work, ...(netns ? { netns } : {}) };
  const ip = (...args: string[]) => runOk('ip', [...(netns ? ['-n', netns] : []), ...args]);
  if (netns) await runOk('ip', ['netns', 'add', netns]);
  await ip('link', 'add', bridge, 'type', 'bridge');
  await ip('link', 'set', bridge, 'up');
  return bed;
}

/** Deletes every machine (stopping qemu and the BMCs), the bridge and the files; what could not be removed. */
export async function tearDown(bed: Bed | undefined): Promise<string[]> {
  if (!bed) return [];
  const failed: string[] = [];
  for (const m of await listMachines(bed.stateDir).catch(() => [])) {
    await deleteMachine(bed.stateDir, m.name).catch((err: Error) => failed.push(`${m.name}: ${err.message}`));
  }
  // whatever a failed delete left: processes naming the state dir, by pid
  for (const pid of processesUnder(bed.stateDir)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  if (bed.netns) await run('ip', ['netns', 'del', bed.netns]);
  else await run('ip', ['link', 'del', bed.bridge]);
  rmSync(bed.work, { recursive: true, force: true });
  return failed;
}

/** Live (not zombie) processes whose command line names a path under `dir`. */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (/\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) continue;
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').some((a) => a.includes(dir))) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

/** What a state directory leaves on the host: processes and the taps of these machine names. */
export async function leaks(bed: Bed, names: string[]): Promise<string[]> {
  const out = processesUnder(bed.stateDir).map((pid) => `process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 120)}`);
  for (const n of names) {
    const tap = tapName(bed.stateDir, n);
    if (await linkExists(bed.netns, tap)) out.push(`tap ${tap}`);
  }
  return out;
}

export function pidAlive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The text appended to a file after `offset` (without ANSI escape sequences), once it matches `pattern` (or throws after `timeoutMs`). */
export async function waitText(file: string, pattern: RegExp, offset = 0, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < until) {
    // SeaBIOS's serial console turns cursor moves into ANSI sequences, even inside a line
    text = (await fsp.readFile(file).catch(() => Buffer.alloc(0))).subarray(offset).toString('latin1').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    if (pattern.test(text)) return text;
    await sleep(200);
  }
  throw new Error(`${file}: no ${pattern} within ${timeoutMs} ms; it ends with: ${JSON.stringify(text.slice(-400))}`);
}

export async function fileSize(file: string): Promise<number> {
  return (await fsp.stat(file).catch(() => ({ size: 0 }))).size;
}

export const CD_MARK = 'STRATUS-VBMC-CD-BOOTED';

/** A bootable ISO (xorriso + ISOLINUX) that prints CD_MARK on the serial port and waits at its prompt. */
export async function makeIso(dir: string): Promise<string> {
  const root = join(dir, 'iso-root');
  await fsp.mkdir(root, { recursive: true });
  await fsp.copyFile('/usr/lib/ISOLINUX/isolinux.bin', join(root, 'isolinux.bin'));
  await fsp.copyFile('/usr/lib/syslinux/modules/bios/ldlinux.c32', join(root, 'ldlinux.c32'));
  // no kernel: ISOLINUX says its line and waits at the boot: prompt (the machine stays on)
  await fsp.writeFile(join(root, 'isolinux.cfg'), `SERIAL 0 115200\nSAY ${CD_MARK}\nPROMPT 1\nTIMEOUT 0\n`);
  const iso = join(dir, 'tiny.iso');
  await runOk('xorriso', ['-as', 'mkisofs', '-quiet', '-o', iso, '-b', 'isolinux.bin', '-c', 'boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', root]);
  return iso;
}

/** Runs a Debian client: stdout, stderr and the exit status; without the host's CA bundle variables (requests lets them override verify=). */
export function client(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  for (const k of ['REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'SSL_CERT_FILE', 'SSL_CERT_DIR']) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
