// The Redfish emulator of a state directory as a daemon: its configuration
// (STATE_DIR/redfish/emulator.json: address, port, the one user and its
// password; owner-only), its self-signed certificate (made with openssl at
// the first start: RSA 2048, ten years, the listen address and localhost as
// subject alternative names), its pid file and log. The emulator itself is
// redfish-emulator.ts, run with Node as a detached process.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../agent/exec.ts';
import { startDaemon, stopDaemon, tcpAnswers } from './daemon.ts';
import { livePid, writeJson } from './machine.ts';
import { freeTcpPort } from './serial-relay.ts';

const EMULATOR = fileURLToPath(new URL('./redfish-emulator.ts', import.meta.url));

export interface RedfishEndpoint { address: string; port: number; username: string; password: string }

export const redfishDir = (stateDir: string) => join(stateDir, 'redfish');
const configFile = (stateDir: string) => join(redfishDir(stateDir), 'emulator.json');
const pidFile = (stateDir: string) => join(redfishDir(stateDir), 'emulator.pid');

export async function readEndpoint(stateDir: string): Promise<RedfishEndpoint | null> {
  try {
    return JSON.parse(await fsp.readFile(configFile(stateDir), 'utf8')) as RedfishEndpoint;
  } catch {
    return null;
  }
}

async function makeCertificate(dir: string, address: string): Promise<void> {
  const cert = join(dir, 'cert.pem');
  if (existsSync(cert) && existsSync(join(dir, 'key.pem'))) return;
  const san = `subjectAltName=${/^[\d.]+$|:/.test(address) ? `IP:${address}` : `DNS:${address}`},DNS:localhost,IP:127.0.0.1`;
  const r = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=stratus-vbmc',
    '-addext', san, '-keyout', join(dir, 'key.pem.tmp'), '-out', join(dir, 'cert.pem.tmp')], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`openssl could not make the emulator's certificate: ${r.stderr.trim().slice(-300)}`);
  await fsp.chmod(join(dir, 'key.pem.tmp'), 0o600);
  await fsp.rename(join(dir, 'key.pem.tmp'), join(dir, 'key.pem'));
  await fsp.rename(join(dir, 'cert.pem.tmp'), cert);
}

/** One start at a time per state directory in this process (machines made at once share one emulator). */
const starting = new Map<string, Promise<unknown>>();

/** The emulator of `stateDir`, started unless it runs; its endpoint (made at the first start). */
export function ensureRedfishEmulator(o: { stateDir: string; address: string; port?: number }): Promise<RedfishEndpoint> {
  const key = resolvePath(o.stateDir);
  const next = (starting.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => startEmulator(o));
  starting.set(key, next);
  return next;
}

async function startEmulator(o: { stateDir: string; address: string; port?: number }): Promise<RedfishEndpoint> {
  const dir = redfishDir(o.stateDir);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  let ep = await readEndpoint(o.stateDir);
  if (!ep) {
    ep = { address: o.address, port: o.port ?? await freeTcpPort(o.address), username: 'admin', password: randomBytes(12).toString('base64url') };
    await writeJson(configFile(o.stateDir), ep);
  }
  await makeCertificate(dir, ep.address);
  const endpoint = ep;
  await startDaemon({
    cmd: process.execPath, args: ['--disable-warning=ExperimentalWarning', EMULATOR, resolvePath(o.stateDir)],
    pidFile: pidFile(o.stateDir), mark: resolvePath(o.stateDir), log: join(dir, 'emulator.log'),
    ready: () => tcpAnswers(endpoint.address, endpoint.port),
  });
  return ep;
}

export function redfishEmulatorPid(stateDir: string): number | null {
  return livePid(pidFile(stateDir), resolvePath(stateDir));
}

export async function stopRedfishEmulator(stateDir: string): Promise<boolean> {
  return stopDaemon(pidFile(stateDir), resolvePath(stateDir));
}
