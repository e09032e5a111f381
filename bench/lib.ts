// Small load-generation helpers shared by the benchmarks: keep-alive HTTP,
// a fixed number of requests at a fixed concurrency, latency percentiles.
import http from 'node:http';
import { createServer } from 'node:net';

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
