// The IPMI BMC client: Debian's `ipmitool -I lanplus -C 3` (IPMI 2.0 over
// LAN, cipher suite 3: HMAC-SHA1 + AES; without `-C 3` ipmitool first asks for
// the cipher suites, which simple BMCs such as OpenIPMI's ipmi_sim do not
// answer, and every call then waits ~10 s). The password reaches ipmitool
// only through its environment (`-E` reads IPMI_PASSWORD): never in argv
// (readable by every user in /proc), a log line or an error message.
//
// Failures are classified from ipmitool's own words (it runs with `-v`, which
// names the step that failed): no answer at all (the Get Channel
// Authentication Capabilities request goes unanswered) is bmc_unreachable and
// transient; a RAKP step refusing the user name or the password's HMAC is
// bmc_auth, the user's (the node's driver_info); a completion code refusing a
// command (an unsupported boot device, a power control the BMC cannot do) is
// bmc_refused. ipmitool exits 0 after some refusals (`chassis bootdev` prints
// "Set Chassis Boot Parameter 5 failed" and exits 0), so stderr is read too.
//
// The serial console is Serial over LAN: `sol deactivate` (a session left by
// a killed ipmitool holds the payload until the BMC times it out), then a
// long-running `sol activate` (unbuffered through coreutils' stdbuf) whose
// stdout is the node's serial output (its stdin, a pipe never written, keeps
// it open; ipmitool's own banner lines are left out). A BMC without SOL (or
// with it disabled) is console_unavailable. The child is ended by its pid
// (through its ChildProcess handle) and reaped on every way out: a failed
// first read, an abort of the caller's signal (during `sol deactivate` too),
// close(), an output that ends.
import type { BmcAccess, BootDevice, PowerState } from '../../../../baremetal/protocol.ts';
import { BaremetalErrorCode } from '../../../../baremetal/protocol.ts';
import { ResourceFailure, transient, userError } from '../../../errors.ts';
import { run } from '../../../exec.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { CONSOLE_UNAVAILABLE, type BmcClient, type ConsoleSession } from '../bmc.ts';

export const IPMI_DEFAULT_PORT = 623;

/** How ipmitool is asked to wait: `-R` retries of `-N` seconds each per request (a BMC that does not answer fails in ~6 s). */
const RETRIES = 2;
const RETRY_SEC = 1;
/** The deadline of one ipmitool run, whatever it does. */
const RUN_TIMEOUT_MS = 30_000;
const POLL_MS = 500;
/** How long `sol activate` may take to say its session is up before the session is handed out anyway. */
const SOL_OPEN_TIMEOUT_MS = 15_000;
/** How long an ended `sol activate` has after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2000;
const DEFAULT_TIMEOUT_MS = 60_000;

/** ipmitool's `chassis bootdev` argument for each boot device. */
const BOOTDEV: Record<BootDevice, string> = { pxe: 'pxe', disk: 'disk', cdrom: 'cdrom', bios: 'bios' };

/** What ipmitool says when the BMC refused the credentials (RAKP 2 checks the user name and the password's HMAC). */
const AUTH = /RAKP 2 HMAC is invalid|RAKP 2 message indicates an error|unauthorized name|invalid (integrity|authentication) (check|algorithm)|insufficient privilege|Invalid user name|password (is )?invalid|Activate Session error/i;
/** ... when nothing answered. */
const UNREACHABLE = /Get Auth Capabilities error|Error issuing Get Channel Authentication Capabilities|No response from remote controller|Address lookup for .* failed|Unable to establish (IPMI v2 \/ RMCP\+|LAN) session|Connection refused|Network is unreachable|No route to host|timed out/i;
/** ... when the BMC has no Serial over LAN, or it is disabled. */
const NO_SOL = /Error activating SOL payload: Invalid command|SOL payload disabled|Payload type disabled|not support(ed)? .*SOL/i;
/** Lines of `-v` chatter that are no error. */
const NOISE = /^(Loading IANA PEN Registry|Running Get VSO Capabilities|Invalid completion code received: Invalid command|Discovered IPMB address|Get Session Challenge command failed|>> |<< )/;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class IpmiBmc implements BmcClient {
  readonly virtualMedia = null;
  private readonly access: BmcAccess;

  constructor(access: BmcAccess) {
    if (access.type !== 'ipmi') throw new Error(`IpmiBmc for a ${access.type} node`);
    this.access = access;
  }

  async power(): Promise<PowerState> {
    const out = await this.ipmitool(['chassis', 'power', 'status']);
    const m = /Chassis Power is (on|off)/i.exec(out);
    if (!m) throw transient(BaremetalErrorCode.bmcRefused, `${this.where()}: unexpected answer to chassis power status: ${out.trim().slice(0, 200)}`);
    return m[1]!.toLowerCase() === 'on' ? 'power on' : 'power off';
  }

  async setPower(target: PowerState, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    if ((await this.power()) === target) return;
    await this.ipmitool(['chassis', 'power', target === 'power on' ? 'on' : 'off']);
    await this.waitFor(target, timeoutMs);
  }

  async reboot(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    if ((await this.power()) === 'power off') {
      await this.ipmitool(['chassis', 'power', 'on']);
    } else {
      await this.ipmitool(['chassis', 'power', 'reset']);
    }
    await this.waitFor('power on', timeoutMs);
  }

  async softPowerOff(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<boolean> {
    if ((await this.power()) === 'power off') return true;
    try {
      await this.ipmitool(['chassis', 'power', 'soft']);
    } catch (err) {
      if (err instanceof ResourceFailure && err.code === BaremetalErrorCode.bmcRefused) return false;
      throw err;
    }
    await this.waitFor('power off', timeoutMs);
    return true;
  }

  async setBootDevice(device: BootDevice, persistent: boolean): Promise<void> {
    const dev = BOOTDEV[device];
    if (!dev) throw userError(BaremetalErrorCode.bmcRefused, `${this.where()}: boot device ${String(device)} is not one IPMI sets`);
    await this.ipmitool(['chassis', 'bootdev', dev, ...(persistent ? ['options=persistent'] : [])]);
  }

  async openConsole(signal?: AbortSignal): Promise<ConsoleSession> {
    signal?.throwIfAborted();
    // a stale session (a recorder killed, an agent restarted) holds the SOL payload: freed first; "already de-activated" is fine
    await this.ipmitool(['sol', 'deactivate'], signal).catch(() => undefined);
    signal?.throwIfAborted();
    // stdbuf -o0: ipmitool writes the console through stdio, in 4 KiB blocks to a pipe otherwise (stdbuf execs it: one pid)
    const child = spawn('stdbuf', ['-o0', 'ipmitool', ...this.argv(['sol', 'activate'], false)], { env: this.env(), stdio: ['pipe', 'pipe', 'pipe'] });
    return solSession(child, { where: this.where(), scrub: (t) => this.scrub(t), signal });
  }

  /** Polls the power state until it is `target`; a transient bmc_refused after `timeoutMs`. */
  private async waitFor(target: PowerState, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if ((await this.power()) === target) return;
      if (Date.now() >= until) throw transient(BaremetalErrorCode.bmcRefused, `${this.where()}: the node is not ${target} ${Math.round(timeoutMs / 1000)} s after the request`);
      await sleep(POLL_MS);
    }
  }

  private where(): string {
    return `IPMI BMC ${this.access.address}:${this.access.port ?? IPMI_DEFAULT_PORT}`;
  }

  /** Runs one ipmitool command; its stdout, or a classified ResourceFailure (an abort of `signal`: its reason, once ipmitool is reaped). */
  private async ipmitool(command: string[], signal?: AbortSignal): Promise<string> {
    const args = this.argv(command, true);
    const env = this.env();
    let r;
    try {
      r = await run('ipmitool', args, { env, timeoutMs: RUN_TIMEOUT_MS, signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      // ENOENT: no ipmitool on this host
      throw transient(BaremetalErrorCode.bmcUnreachable, `cannot run ipmitool: ${(err as Error).message}`);
    }
    const errors = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !NOISE.test(l));
    const said = this.scrub(errors.slice(-3).join('; ').slice(0, 400));
    const what = `${this.where()}: ipmitool ${command.join(' ')}`;
    if (r.signal) throw transient(BaremetalErrorCode.bmcUnreachable, `${what}: no answer within ${RUN_TIMEOUT_MS / 1000} s`);
    if (AUTH.test(r.stderr)) throw userError(BaremetalErrorCode.bmcAuth, `${what}: the BMC refused the user name or password${said ? ` (${said})` : ''}`);
    if (r.code !== 0 && UNREACHABLE.test(r.stderr)) throw transient(BaremetalErrorCode.bmcUnreachable, `${what}: the BMC does not answer${said ? ` (${said})` : ''}`);
    if (r.code !== 0 || errors.some((l) => /failed|error|invalid|unable|not supported/i.test(l))) {
      throw userError(BaremetalErrorCode.bmcRefused, `${what}: refused${said ? `: ${said}` : ` (exit ${r.code})`}`);
    }
    return r.stdout;
  }

  /** ipmitool's arguments for `command` (never the password: `-E`). */
  private argv(command: string[], verbose: boolean): string[] {
    const a = this.access;
    return ['-I', 'lanplus', '-C', '3', '-H', a.address, '-p', String(a.port ?? IPMI_DEFAULT_PORT),
      ...(a.username ? ['-U', a.username] : []), '-E', ...(verbose ? ['-v'] : []), '-R', String(RETRIES), '-N', String(RETRY_SEC), ...command];
  }

  /** The environment carries the password; LC_ALL=C keeps ipmitool's words the ones matched here. */
  private env(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', IPMI_PASSWORD: this.access.password ?? '' };
  }

  /** No message carries the password, whatever a tool printed. */
  private scrub(text: string): string {
    const p = this.access.password;
    return p && p.length >= 3 ? text.split(p).join('***') : text;
  }
}

/**
 * `sol activate`'s child (just spawned, stdio piped) as a console session:
 * open once ipmitool says the session is up (its first words), it ends, or
 * after `openTimeoutMs`. On every way out the child is ended through its
 * handle (by its pid: SIGTERM, SIGKILL after a grace) and reaped before the
 * promise settles: a first read that fails (a transient bmc_unreachable), an
 * abort of `signal` while opening (rejects with its reason), an abort or
 * close() of the open session, an output that ends or fails.
 */
export async function solSession(child: ChildProcess, o: { where: string; scrub: (t: string) => string; signal?: AbortSignal; openTimeoutMs?: number }): Promise<ConsoleSession> {
  const { where, scrub, signal } = o;
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000); });
  child.on('error', () => { /* ENOENT: the output ends at once */ });
  child.stdin!.on('error', () => undefined);
  const running = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  // 'close': stdout read to its end, the exit code known ('close' comes after 'error' too: a child that never started)
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  // 'exit': the child reaped (waited for); one that never started has nothing to reap
  const reaped = new Promise<void>((r) => { if (!running()) r(); else child.once('exit', () => r()); });
  let ending: Promise<void> | null = null;
  const end = (): Promise<void> => {
    ending ??= (async () => {
      if (running()) {
        child.kill('SIGTERM');
        const hard = setTimeout(() => { if (running()) child.kill('SIGKILL'); }, KILL_GRACE_MS);
        await reaped;
        clearTimeout(hard);
      }
      await reaped;
    })();
    return ending;
  };
  const it = (child.stdout! as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first = it.next();
  first.catch(() => undefined); // read again below (a failed open ends the child first)
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(resolve, o.openTimeoutMs ?? SOL_OPEN_TIMEOUT_MS);
      first.then(() => resolve(), reject);
      if (signal) {
        onAbort = () => reject(signal.reason);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  } catch (err) {
    await end();
    if (signal?.aborted) throw signal.reason;
    throw transient(BaremetalErrorCode.bmcUnreachable, `${where}: sol activate: ${scrub((err as Error).message)}`);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal!.removeEventListener('abort', onAbort);
  }
  // open: an abort ends the session as close() does
  const close = (): Promise<void> => {
    signal?.removeEventListener('abort', onAbortOpen);
    return end();
  };
  const onAbortOpen = () => { void end(); };
  signal?.addEventListener('abort', onAbortOpen, { once: true });
  async function* output(): AsyncIterable<Buffer> {
    try {
      for (let next = await first; !next.done; next = await it.next()) {
        // ipmitool's own words: "[SOL Session operational.  Use ~? for help]", "[SOL Session closed]"
        const text = next.value.toString('latin1').replace(/\[SOL Session [^\]\n]*\]\r?\n?/g, '');
        if (text) yield Buffer.from(text, 'latin1');
      }
      const code = await exited;
      const said = scrub(stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^tcgetattr|^Info: SOL payload already de-activated/.test(l)).slice(-2).join('; ').slice(0, 300));
      if (code !== 0 && code !== null && !signal?.aborted) {
        if (AUTH.test(stderr)) throw userError(BaremetalErrorCode.bmcAuth, `${where}: sol activate: the BMC refused the user name or password`);
        // a BMC without Serial over LAN (ipmi_sim with no `sol`: Invalid command), or with it turned off
        if (NO_SOL.test(stderr)) throw userError(CONSOLE_UNAVAILABLE, `${where}: no Serial over LAN${said ? ` (${said})` : ''}`);
        throw transient(BaremetalErrorCode.bmcUnreachable, `${where}: sol activate ended (exit ${code})${said ? `: ${said}` : ''}`);
      }
    } catch (err) {
      if (err instanceof ResourceFailure) throw err;
      // the pipe failed mid-session: the session ends, transient
      throw transient(BaremetalErrorCode.bmcUnreachable, `${where}: sol activate: ${scrub((err as Error).message)}`);
    } finally {
      await close();
    }
  }
  return { output: output(), close };
}
