// The virtual BMCs' processes (ipmi_sim per IPMI machine, one Redfish
// emulator per state directory) run detached (their own session, stdio to a
// log file, never the caller's terminal or pipes), so they outlive the CLI
// call that started them. Each is named by a pid file; a stop checks that the
// pid's command line still holds the daemon's mark (its config path), so a
// reused pid is never killed. A daemon serving TCP is ready once a
// connection to its port is accepted (tcpAnswers): never a bind of the port,
// which for its moment takes the port from a daemon about to bind it.
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
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
  /** Resolves true once it serves. */
  ready: () => Promise<boolean>;
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
    if (await d.ready().catch(() => false)) return pid;
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
