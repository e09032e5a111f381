// Small helpers shared by the benchmarks: keep-alive HTTP, a fixed number of
// requests at a fixed concurrency, latency percentiles; and, for the
// benchmarks that start a cloud (boot, vm), `stratus server` and `stratus
// agent` as child processes, an admin login and a few API steps.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface HttpResult { status: number; headers: http.IncomingHttpHeaders; body: string }

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function request(url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

export interface RunResult { name: string; concurrency: number; requests: number; seconds: number; rps: number; p50: number; p99: number; errors: number }

/** The p-th percentile of ascending `sorted`. */
export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

/** Runs `total` calls of `fn` with `concurrency` in flight; fn resolves true on success. */
export async function run(name: string, concurrency: number, total: number, fn: () => Promise<boolean>): Promise<RunResult> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      const t0 = performance.now();
      const ok = await fn().catch(() => false);
      latencies.push(performance.now() - t0);
      if (!ok) errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { name, concurrency, requests: total, seconds, rps: total / seconds, p50: pct(latencies, 50), p99: pct(latencies, 99), errors };
}

export function format(r: RunResult, extra = ''): string {
  return `${r.name.padEnd(28)} c=${String(r.concurrency).padStart(2)}  ${r.rps.toFixed(1).padStart(9)} req/s  p50 ${r.p50.toFixed(2).padStart(8)} ms  p99 ${r.p99.toFixed(2).padStart(8)} ms${r.errors ? `  errors ${r.errors}` : ''}${extra}`;
}

/** A TCP port free on loopback right now, for a server the benchmark starts. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** The value after `--name` on the command line, if given. */
export function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** The number after `--name` on the command line, or `dflt`. */
export function numberFlag(name: string, dflt: number): number {
  const v = flag(name);
  return v === undefined ? dflt : Number(v);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The median of `xs` (any order). */
export const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);

/** Runs `fn` over `items` with `n` in flight. */
export async function pool<T>(items: T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

const CLI = join(import.meta.dirname, '../src/cli/main.ts');

/** `stratus <args>` as a child process of this one (stdout and stderr shared). */
export function spawnCli(args: string[], nodeFlags: string[] = []): ChildProcess {
  return spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...nodeFlags, CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** SIGTERM to a child this process started, SIGKILL after 60 s; resolves once it exited. */
export async function stopChild(c: ChildProcess | null): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  process.kill(c.pid!, 'SIGTERM');
  // the timer is cleared once it exited: a pending one would keep this process alive for a minute
  const timer = setTimeout(() => process.kill(c.pid!, 'SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}

/** An admin session on a cloud the benchmark started: its URL, a token scoped to the admin project, the headers to send. */
export interface Session { base: string; token: string; projectId: string; H: Record<string, string> }

/** `stratus server` on `dataDir` (temp SQLite); the caller stops it (stopChild), also when waitServer fails. */
export function spawnServer(dataDir: string, port: number, password: string): ChildProcess {
  return spawnCli(['server', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn', '--admin-password', password]);
}

/** Waits for the server's /healthz, then logs in as admin (project admin). */
export async function waitServer(base: string, password: string): Promise<Session> {
  for (let i = 0; ; i++) {
    const r = await request(`${base}/healthz`, 'GET').catch(() => null);
    if (r?.status === 200) break;
    if (i > 300) throw new Error('server did not start');
    await sleep(100);
  }
  const login = await request(`${base}/identity/v3/auth/tokens`, 'POST', {}, JSON.stringify({
    auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } },
  }));
  if (login.status !== 201) throw new Error(`login: ${login.status} ${login.body}`);
  const token = login.headers['x-subject-token'] as string;
  const projectId = (JSON.parse(login.body) as { token: { project: { id: string } } }).token.project.id;
  return { base, token, projectId, H: { 'X-Auth-Token': token, 'X-OpenStack-Nova-API-Version': '2.79' } };
}

/** Waits until the agent `hostname` reports its nova-compute service up. */
export async function waitAgent(s: Session, hostname: string, agent: ChildProcess): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await request(`${s.base}/compute/v2.1/os-services?binary=nova-compute`, 'GET', s.H);
    if (r.status === 200 && (JSON.parse(r.body) as { services: Array<{ host: string; state: string }> }).services.some((x) => x.host === hostname && x.state === 'up')) return;
    if (agent.exitCode !== null) throw new Error(`agent exited with ${agent.exitCode}`);
    if (i > 600) throw new Error('agent did not register');
    await sleep(100);
  }
}

/** A JSON API call that must succeed (status < 300); its parsed body ({} when empty). */
export async function api<T = Record<string, any>>(s: Session, method: string, path: string, body?: unknown): Promise<T> {
  const r = await request(`${s.base}${path}`, method, s.H, body === undefined ? undefined : JSON.stringify(body));
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  return (r.body ? JSON.parse(r.body) : {}) as T;
}

/** Creates a Glance image with `fields` and uploads `data`; its id. */
export async function uploadImage(s: Session, fields: Record<string, unknown>, data: Uint8Array): Promise<string> {
  const img = await api<{ id: string }>(s, 'POST', '/image/v2/images', fields);
  const up = await fetch(`${s.base}/image/v2/images/${img.id}/file`, { method: 'PUT', headers: { 'x-auth-token': s.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
  if (up.status !== 204) throw new Error(`image upload: ${up.status}`);
  return img.id;
}

/** A server's launched_at (Nova's format, UTC without a zone) in ms since the epoch. */
export const launchedAt = (s: Record<string, any>): number => Date.parse(s['OS-SRV-USG:launched_at'] + (String(s['OS-SRV-USG:launched_at']).endsWith('Z') ? '' : 'Z'));
