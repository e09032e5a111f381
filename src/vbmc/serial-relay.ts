// A virtual machine's serial port as its BMC offers it: qemu's serial is a
// unix socket (serial.sock, qemu the server; console.log keeps everything it
// says whoever listens), reachable from the host's network namespace even when
// qemu runs in another. The relay, Debian's socat as a detached daemon (pid
// file, stopped by pid), forwards one TCP port of the host to it: each
// connection (a forked socat) waits for qemu's socket (retried every 50 ms
// while the machine is off) and ends when qemu does. Waiting matters:
// ipmi_sim tries a refused SOL connection again only after ~10 s, so a
// connection held open across power on carries the firmware's first words.
// It is ready once its port accepts a connection (daemon.ts tcpAnswers; a
// bind of the port would take it from socat). The probe's connection is a
// fork too, which while the machine is off waits for qemu's socket although
// the probe has gone: the start ends the relay's forks whose client has gone
// (their TCP socket in CLOSE_WAIT), by pid; with the machine on, the fork
// reaches qemu's socket, reads the probe's end and ends by itself.
//   IPMI     127.0.0.1:<port>, where ipmi_sim's `sol "tcp:..."` connects (and
//            reconnects) for Serial over LAN
//   Redfish  <BMC address>:<port>, the system's SerialConsole.Telnet Port
//            (plain bytes; a Telnet client copes)
import { createServer } from 'node:net';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, stopDaemon, tcpAnswers } from './daemon.ts';
import { killPid, livePid, type Machine } from './machine.ts';

export const serialSocket = (m: Machine) => m.file('serial.sock');
/** How long a start waits at most for the readiness probe's connection to be accepted and its fork ended. */
const PROBE_FORK_MS = 2000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
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
  const running = livePid(pidFile(m), serialSocket(m));
  if (running !== null) return running;
  const pid = await startDaemon({
    cmd: 'socat',
    args: [`TCP-LISTEN:${serial.port},bind=${host},reuseaddr,fork`, `UNIX-CONNECT:${serialSocket(m)},forever,interval=0.05`],
    pidFile: pidFile(m), mark: serialSocket(m), log: m.file('serial-relay.log'),
    ready: () => tcpAnswers(serial.address, serial.port),
  });
  // the probe's connection (socat accepts and forks it after the probe has gone) waits for qemu's socket for nobody: ended
  for (const until = Date.now() + PROBE_FORK_MS; Date.now() < until; await sleep(20)) {
    const gone = goneClients(pid, serial.port);
    if (!gone.size) break;
    // accepted: its fork killed by pid (SIGKILL: a fork sent SIGTERM just after socat forked it took the
    // listening relay down with it, under load); still in the accept queue (no owner yet): looked for again
    for (const c of forks(pid, serialSocket(m)).filter((f) => holds(f, gone))) {
      try { process.kill(c, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  return pid;
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

/**
 * The relay's connections on `port` that their client has closed (CLOSE_WAIT,
 * state 08 in /proc/net/tcp{,6} of the relay's namespace), as "socket:[inode]"
 * (inode 0: not accepted yet).
 */
function goneClients(relay: number, port: number): Set<string> {
  const out = new Set<string>();
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of ['tcp', 'tcp6']) {
    try {
      for (const line of readFileSync(`/proc/${relay}/net/${table}`, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols[3] === '08' && cols[1]?.endsWith(hex) && cols[9]) out.add(`socket:[${cols[9]}]`);
      }
    } catch { /* no such table */ }
  }
  return out;
}

/** Whether process `pid` holds one of `sockets` ("socket:[inode]"). */
function holds(pid: number, sockets: Set<string>): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try { return sockets.has(readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { return false; }
    });
  } catch {
    return false;
  }
}
