// The conductor's record of each node's serial console (what
// `openstack console log show` of a bare-metal server reads): while the
// conductor holds a node and it is powered on, a recorder keeps a console
// session open through the node's BMC (bmc.ts openConsole: IPMI Serial over
// LAN through ipmitool, a Redfish BMC's Telnet serial console) and appends
// what it says to <root>/consoles/<node>.log (0600), kept under `cap` bytes
// (its newest half kept, as the VM driver's console log). A session that
// ends is opened again (after 2 s, backing off to 30 s while it keeps
// failing); a BMC that offers no console is asked again only every 5 min,
// and the node's console log says so. The recorder stops when the node is
// powered off, forgotten or the conductor stops: its signal aborted, which
// ends a session being opened (whatever openConsole waits for) as well as an
// open one (ipmitool killed by its pid, the Telnet socket destroyed); stop()
// resolves once nothing of it is left (no process, no socket). The log stays
// until the node is forgotten.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { tailLines } from '../../../common/text.ts';
import { toResourceError, userError } from '../../errors.ts';
import { capConsoleLog } from '../console-log.ts';
import { CONSOLE_UNAVAILABLE, type BmcClient, type ConsoleSession } from './bmc.ts';

const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 30_000;
const UNAVAILABLE_RETRY_MS = 300_000;

interface Recorder {
  wanted: boolean;
  /** Aborted by stop(): ends the session being opened or open. */
  abort: AbortController;
  session: ConsoleSession | null;
  /** Why there is no console, when the BMC said it has none. */
  unavailable: string | null;
  wake: (() => void) | null;
  done: Promise<void>;
  /** Resolves once the first session is open (or failed to open). */
  opened: Promise<void>;
  markOpened: () => void;
}

export class ConsoleRecorders {
  private readonly dir: string;
  private readonly recorders = new Map<string, Recorder>();
  private readonly log: Logger;
  private readonly cap: number;

  constructor(root: string, log: Logger, cap: number) {
    this.dir = join(root, 'consoles');
    this.log = log;
    this.cap = cap;
  }

  file(id: string): string {
    return join(this.dir, `${id}.log`);
  }

  /** Whether a node's console is being recorded. */
  recording(id: string): boolean {
    return this.recorders.get(id)?.wanted === true;
  }

  /**
   * Records the node's console through `bmc` unless it is already; resolves
   * once its first session is open (or failed to), or after `waitMs`: a
   * caller about to power the node on waits, so the firmware's first words
   * are heard.
   */
  async start(id: string, bmc: BmcClient, waitMs = 0): Promise<void> {
    let r = this.recorders.get(id);
    if (!r?.wanted) {
      let markOpened = () => {};
      const opened = new Promise<void>((resolve) => { markOpened = resolve; });
      const fresh: Recorder = { wanted: true, abort: new AbortController(), session: null, unavailable: null, wake: null, done: Promise.resolve(), opened, markOpened };
      this.recorders.set(id, fresh);
      fresh.done = this.run(id, fresh, bmc)
        .catch((err: Error) => this.log.warn({ node: id, err: err.message }, 'recording the serial console failed'))
        .finally(() => fresh.markOpened());
      r = fresh;
    }
    if (waitMs <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([r.opened, new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs); })]);
    clearTimeout(timer);
  }

  /** Stops recording the node's console (a session being opened or open ended); resolves once it has stopped, its process reaped and its socket closed. */
  async stop(id: string): Promise<void> {
    const r = this.recorders.get(id);
    if (!r) return;
    r.wanted = false;
    r.abort.abort();
    void r.session?.close();
    r.wake?.();
    this.recorders.delete(id);
    await r.done;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.recorders.keys()].map((id) => this.stop(id)));
  }

  /** The node's recorded console (its last `lines` lines); a node whose BMC has no console: a user error saying so. */
  async output(id: string, lines?: number): Promise<string> {
    const text = await fsp.readFile(this.file(id), 'utf8').catch(() => '');
    const r = this.recorders.get(id);
    if (!text && r?.unavailable) {
      throw userError(CONSOLE_UNAVAILABLE, r.unavailable);
    }
    return lines === undefined || lines < 0 ? text : tailLines(text, lines);
  }

  /** Removes a forgotten node's log. */
  async remove(id: string): Promise<void> {
    await this.stop(id);
    await fsp.rm(this.file(id), { force: true });
  }

  private async run(id: string, r: Recorder, bmc: BmcClient): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    let delay = RETRY_MIN_MS;
    while (r.wanted) {
      let pause = delay;
      try {
        try {
          r.session = await bmc.openConsole(r.abort.signal);
        } finally {
          r.markOpened();
        }
        if (!r.wanted) break;
        r.unavailable = null;
        const fh = await fsp.open(this.file(id), 'a', 0o600);
        let written = 0;
        try {
          for await (const chunk of r.session.output) {
            await fh.write(chunk);
            written += chunk.length;
            if (written > this.cap / 4) {
              written = 0;
              await capConsoleLog(this.file(id), this.cap);
            }
            delay = RETRY_MIN_MS;
          }
        } finally {
          await fh.close();
          await capConsoleLog(this.file(id), this.cap).catch(() => undefined);
        }
        pause = delay;
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      } catch (err) {
        const e = toResourceError(err);
        if (e.code === CONSOLE_UNAVAILABLE) {
          // the BMC's words (its address) go to the log; the request's answer reaches the server's user
          if (!r.unavailable) this.log.info({ node: id, err: e.message }, 'the node\'s BMC offers no serial console');
          r.unavailable = `The BMC of node ${id} offers no serial console (neither IPMI Serial over LAN nor a Redfish Telnet serial console).`;
          pause = UNAVAILABLE_RETRY_MS;
        } else {
          if (r.wanted) this.log.warn({ node: id, code: e.code, err: e.message }, 'serial console session failed');
          pause = delay;
          delay = Math.min(delay * 2, RETRY_MAX_MS);
        }
      } finally {
        const session = r.session;
        r.session = null;
        await session?.close();
      }
      if (!r.wanted) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, pause);
        t.unref();
        function done() {
          clearTimeout(t);
          r.wake = null;
          resolve();
        }
        r.wake = done;
      });
    }
  }
}
