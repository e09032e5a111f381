// The virtual BMCs' processes (ipmi_sim per IPMI machine, one Redfish
// emulator per state directory) run detached (their own session, stdio to a
// log file, never the caller's terminal or pipes), so they outlive the CLI
// call that started them. Each is named by a pid file; a stop checks that the
// pid's command line still holds the daemon's mark (its config path), so a
// reused pid is never killed. A daemon is ready once the kernel shows its port
// bound by the daemon's own process (boundBy, read from /proc), or once a
// connection to its port is accepted (tcpAnswers, for a server that takes a
// probe's connection without leaving anything behind): never a bind of the
// port, which for its moment takes the port from a daemon about to bind it.
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { killPid, livePid } from './machine.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface DaemonSpec {
  cmd: string;
  args: string[];
  pidFile: string;
  /** A string of its command line (a path of its own) that tells it from any other process. */
  mark: string;
  log: string;
  env?: NodeJS.ProcessEnv;
  /** Resolves true once it serves (given the daemon's pid). */
  ready: (pid: number) => Promise<boolean>;
  timeoutMs?: number;
}

/** Whether something accepts a TCP connection on address:port now (false on a refusal, an error or no answer within `timeoutMs`). */
export function tcpAnswers(address: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port });
    const done = (answered: boolean) => { clearTimeout(t); s.destroy(); resolve(answered); };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Whether process `pid` holds a socket bound to `port`: a listening TCP socket
 * (state 0A) or a bound UDP one (state 07) in /proc/<pid>/net/<proto>{,6},
 * whose inode is one of the process's open files. Reading the kernel's tables
 * neither takes the port nor opens a connection the daemon must serve.
 */
export function boundBy(pid: number, proto: 'tcp' | 'udp', port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const state = proto === 'tcp' ? '0A' : '07';
  const inodes = new Set<string>();
  for (const table of [proto, `${proto}6`]) {
    try {
      for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols[3] === state && cols[1]?.endsWith(hex) && cols[9] && cols[9] !== '0') inodes.add(`socket:[${cols[9]}]`);
      }
    } catch { /* no such table, or the process is gone */ }
  }
  if (!inodes.size) return false;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try { return inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { return false; }
    });
  } catch {
    return false;
  }
}

/** Starts the daemon unless its pid file names it running; resolves once `ready` holds. */
export async function startDaemon(d: DaemonSpec): Promise<number> {
  const running = livePid(d.pidFile, d.mark);
  if (running !== null) return running;
  const log = await fsp.open(d.log, 'a', 0o600);
  let pid: number;
  let exited = false;
  try {
    const child = spawn(d.cmd, d.args, { detached: true, stdio: ['ignore', log.fd, log.fd], env: d.env ?? process.env });
    child.once('exit', () => { exited = true; });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    pid = child.pid!;
    child.unref();
    await fsp.writeFile(d.pidFile, `${pid}\n`, { mode: 0o644 });
  } finally {
    await log.close();
  }
  const until = Date.now() + (d.timeoutMs ?? 15_000);
  for (;;) {
    if (exited || Date.now() > until) {
      if (!exited) await killPid(pid, 1000);
      await fsp.rm(d.pidFile, { force: true });
      const text = await fsp.readFile(d.log, 'utf8').catch(() => '');
      throw new Error(`${d.cmd} ${exited ? 'exited' : 'did not get ready'}: ${text.trim().split('\n').slice(-3).join(' ').slice(0, 500)}`);
    }
    if (await d.ready(pid).catch(() => false)) return pid;
    await sleep(50);
  }
}

/** Stops the daemon its pid file names (when it is still that daemon) and removes the pid file. */
export async function stopDaemon(pidFile: string, mark: string): Promise<boolean> {
  const pid = livePid(pidFile, mark);
  if (pid !== null) await killPid(pid, 5000);
  await fsp.rm(pidFile, { force: true });
  return pid !== null;
}
