// Talking to a guest of the VM driver in data-plane tests: waiting for its
// console log to show something, and running a shell command on its serial
// console (the stratus-tiny guest gives a root shell there).
import assert from 'node:assert/strict';
import type { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { sleep } from './lib.ts';

/** How long a tiny guest may take to boot under TCG on a busy 2-core machine. */
export const BOOT_WAIT_MS = 240_000;

/** The server's console log from `from` on, once it matches `pattern`. */
export async function waitConsole(driver: VmDriver, id: string, pattern: RegExp, from = 0): Promise<string> {
  const until = Date.now() + BOOT_WAIT_MS;
  for (;;) {
    const text = (await driver.consoleOutput(id)).slice(from);
    if (pattern.test(text)) return text;
    if (Date.now() > until) assert.fail(`console never matched ${pattern}; tail: ${text.slice(-600)}`);
    await sleep(500);
  }
}

/** Runs `cmd` on the guest's serial console and returns what it printed between two markers. */
export async function guestRun(driver: VmDriver, id: string, cmd: string): Promise<string> {
  const con = await driver.serialConsole(id);
  const tag = `m${Math.random().toString(36).slice(2, 8)}`;
  try {
    let got = '';
    con.on('data', (b: Buffer) => { got += b.toString(); });
    con.write(`echo ${tag}-begin; ${cmd}; echo ${tag}-end\n`);
    const re = new RegExp(`\\n${tag}-begin\\r?\\n([\\s\\S]*?)${tag}-end`);
    const until = Date.now() + 60_000;
    while (!re.test(got) && Date.now() < until) await sleep(200);
    const m = re.exec(got);
    assert.ok(m, `the guest answered ${cmd}: ${got.slice(-300)}`);
    return m[1]!;
  } finally {
    con.destroy();
  }
}
