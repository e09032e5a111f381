// A virtual machine's serial port as its BMC offers it: qemu's serial is a
// unix socket (serial.sock, qemu the server; console.log keeps everything it
// says whoever listens), reachable from the host's network namespace even when
// qemu runs in another. The relay, Debian's socat as a detached daemon (pid
// file, stopped by pid), forwards one TCP port of the host to it: each
// connection (a forked socat) waits for qemu's socket (retried every 50 ms
// while the machine is off) and ends when qemu does. Waiting matters:
// ipmi_sim tries a refused SOL connection again only after ~10 s, so a
// connection held open across power on carries the firmware's first words.
// It is ready once the kernel shows socat's listening socket (daemon.ts
// boundBy): a bind of the port would take it from socat, and a probe's
// connection would be forked into a relay waiting for qemu's socket for nobody.
//   IPMI     127.0.0.1:<port>, where ipmi_sim's `sol "tcp:..."` connects (and
//            reconnects) for Serial over LAN
//   Redfish  <BMC address>:<port>, the system's SerialConsole.Telnet Port
//            (plain bytes; a Telnet client copes)
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { boundBy, startDaemon, stopDaemon } from './daemon.ts';
import { killPid, livePid, type Machine } from './machine.ts';

export const serialSocket = (m: Machine) => m.file('serial.sock');
const pidFile = (m: Machine) => m.file('serial-relay.pid');

/** A TCP port free on `address` now (the kernel's choice). */
export function freeTcpPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Starts the machine's relay (when it has a serial port: machines made before it had none). */
export async function startSerialRelay(m: Machine): Promise<number | null> {
  const serial = m.config.serial;
  if (!serial) return null;
  const host = serial.address.includes(':') ? `[${serial.address}]` : serial.address;
  return startDaemon({
    cmd: 'socat',
    args: [`TCP-LISTEN:${serial.port},bind=${host},reuseaddr,fork`, `UNIX-CONNECT:${serialSocket(m)},forever,interval=0.05`],
    pidFile: pidFile(m), mark: serialSocket(m), log: m.file('serial-relay.log'),
    ready: async (pid) => boundBy(pid, 'tcp', serial.port),
  });
}

/** Stops the relay and the connections it forked (children with the same command line). */
export async function stopSerialRelay(m: Machine): Promise<void> {
  const pid = livePid(pidFile(m), serialSocket(m));
  const children = pid === null ? [] : forks(pid, serialSocket(m));
  await stopDaemon(pidFile(m), serialSocket(m));
  for (const c of children) {
    try {
      if (readFileSync(`/proc/${c}/cmdline`, 'utf8').includes(serialSocket(m))) await killPid(c, 2000);
    } catch { /* gone */ }
  }
}

/** The relay's forked connections: its children with its mark on their command line. */
function forks(pid: number, mark: string): number[] {
  const out: number[] = [];
  try {
    for (const c of readFileSync(join('/proc', String(pid), 'task', String(pid), 'children'), 'utf8').trim().split(/\s+/)) {
      if (/^\d+$/.test(c) && readFileSync(`/proc/${c}/cmdline`, 'utf8').includes(mark)) out.push(Number(c));
    }
  } catch { /* none, or gone */ }
  return out;
}
