// bench/identity: token issue (password), rescope (method token), token validate
// and project list, at concurrency 1 and 16, against a real `stratus server`
// child process on a temp SQLite. Prints req/s, p50/p99, the server's RSS after
// the run (at once and 4 s later), the time one password hash takes, and
// ratios against (a) Debian's Keystone measured on this machine kind (the
// issue's reference numbers) and (b) GET /healthz measured in this same run
// (the HTTP stack's floor).
// Usage: bin/bench identity [--requests N] [--issue-requests N] [--keystone http://HOST:PORT/v3 --keystone-password PW]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword } from '../src/identity/passwords.ts';
import { flag, format, freePort, numberFlag, request, run, type RunResult } from './lib.ts';

// req/s at concurrency 16, Debian's Keystone (Zed) under uwsgi with memcached on
// this machine kind (the issue's reference). The issue gives no rescope figure:
// the validate figure stands in. Measured side by side (--keystone), Keystone
// rescopes at 1.1-1.6x its validate rate, so the side-by-side ratio is lower.
const REFERENCE_KEYSTONE_C16 = { issue: 3, rescope: 55, validate: 55, projects: 62 } as const;
const TARGET_RATIO = { issue: 5, rescope: 100, validate: 100, projects: 50 } as const;

const N = numberFlag('requests', 2000);
const N_ISSUE = numberFlag('issue-requests', 200);

/** RSS in MiB, and its split into anonymous memory and file-backed pages (mostly Node's own binary). */
function rssOf(pid: number): { rss: number; anon: number; file: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0) / 1024;
  return { rss: kb('Rss'), anon: kb('Anonymous'), file: kb('Rss') - kb('Anonymous') };
}

/** Runs every operation at concurrency 1 and 16 against an identity v3 URL; `baseline` is a cheap GET measured alongside. */
async function measure(label: string, v3: string, password: string, baseline: string): Promise<Record<string, RunResult>> {
  const passwordBody = (scope?: unknown) => JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, ...(scope ? { scope } : {}) } });
  const projectScope = { project: { name: 'admin', domain: { id: 'default' } } };
  const admin = await request(`${v3}/auth/tokens`, 'POST', {}, passwordBody(projectScope));
  if (admin.status !== 201) throw new Error(`${label}: admin login failed with ${admin.status}`);
  const adminToken = admin.headers['x-subject-token'] as string;
  const unscoped = (await request(`${v3}/auth/tokens`, 'POST', {}, passwordBody())).headers['x-subject-token'] as string;
  const rescopeBody = JSON.stringify({ auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: projectScope } });
  const ops = {
    baseline: async () => (await request(baseline, 'GET')).status < 400,
    issue: async () => (await request(`${v3}/auth/tokens?nocatalog`, 'POST', {}, passwordBody(projectScope))).status === 201,
    rescope: async () => (await request(`${v3}/auth/tokens`, 'POST', {}, rescopeBody)).status === 201,
    validate: async () => (await request(`${v3}/auth/tokens`, 'GET', { 'X-Auth-Token': adminToken, 'X-Subject-Token': adminToken })).status === 200,
    projects: async () => (await request(`${v3}/projects`, 'GET', { 'X-Auth-Token': adminToken })).status === 200,
  };
  const results: Record<string, RunResult> = {};
  console.log(`-- ${label} (baseline: GET ${baseline})`);
  for (const c of [1, 16]) {
    for (const [name, fn] of Object.entries(ops)) {
      await run(name, c, Math.min(50, N), fn); // warm-up
      const r = await run(name, c, name === 'issue' ? N_ISSUE : N, fn);
      results[`${name}@${c}`] = r;
      let extra = '';
      if (c === 16 && name in REFERENCE_KEYSTONE_C16) {
        const k = name as keyof typeof REFERENCE_KEYSTONE_C16;
        const ratio = r.rps / REFERENCE_KEYSTONE_C16[k];
        extra = `  ${ratio.toFixed(0)}x the reference Keystone (target ${TARGET_RATIO[k]}x: ${ratio >= TARGET_RATIO[k] ? 'met' : 'NOT met'})`;
      }
      if (name !== 'baseline') extra += `  ${(r.rps / results[`baseline@${c}`]!.rps).toFixed(2)} of baseline`;
      console.log(format(r, extra));
    }
  }
  return results;
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-'));
  const port = await freePort();
  const password = 'bench-admin-password';
  // The real launcher, so the server runs with the settings it runs with in production.
  const launcher = join(import.meta.dirname, '../bin/stratus');
  // Loads the server's modules once, so the measured server starts, as every
  // start after a checkout's first does, from the stripped-source cache
  // (scripts/stripped-ts-cache.mjs) rather than with the type stripper loaded.
  if (spawnSync(launcher, ['--help'], { stdio: 'ignore' }).status !== 0) throw new Error(`${launcher} --help failed`);
  const child = spawn(launcher, ['server', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn', '--admin-password', password], { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      const r = await request(`${base}/healthz`, 'GET').catch(() => null);
      if (r?.status === 200) break;
      if (i > 300) throw new Error('server did not start');
      await new Promise((res) => setTimeout(res, 100));
    }
    const t0 = performance.now();
    await hashPassword('a password of usual length');
    const hashMs = performance.now() - t0;
    console.log(`stratus identity benchmark: ${N} requests per run (${N_ISSUE} for password issue); password hash argon2id m=19MiB t=2 p=1: ${hashMs.toFixed(0)} ms`);
    const ours = await measure('stratus', `${base}/identity/v3`, password, `${base}/healthz`);
    // Read at once, and again once the server has been idle long enough to
    // hand back what the run left (src/http/idle-memory.ts: 2 s of quiet).
    // Not later: this machine's kernel pages out file-backed memory left idle
    // for a minute or two (DAMON), which would flatter the reading; both
    // readings show the file-backed part, which must not have moved.
    // bin/stratus execs node, so the child's pid is the server's.
    const atOnce = rssOf(child.pid!);
    await new Promise((res) => setTimeout(res, 4000));
    const settled = rssOf(child.pid!);
    const split = (m: ReturnType<typeof rssOf>) => `${m.rss.toFixed(1)} MiB = ${m.anon.toFixed(1)} anonymous + ${m.file.toFixed(1)} file-backed`;
    const rssLine = `server RSS right after the run: ${split(atOnce)}\n` +
      `server RSS 4 s after the run: ${split(settled)} (target <= 100 MB: ${settled.rss * 1.048576 <= 100 ? 'met' : 'NOT met'})`;
    const keystone = flag('keystone')?.replace(/\/$/, '');
    if (keystone) {
      // The reference Keystone, measured in this same run (docs/performance.md says how to start it).
      const theirs = await measure('keystone', keystone, flag('keystone-password') ?? '', keystone);
      for (const k of Object.keys(REFERENCE_KEYSTONE_C16)) {
        const a = ours[`${k}@16`]!;
        const b = theirs[`${k}@16`]!;
        console.log(`${k.padEnd(10)} c=16  stratus ${a.rps.toFixed(1)} req/s vs keystone ${b.rps.toFixed(1)} req/s: ${(a.rps / b.rps).toFixed(1)}x`);
      }
    }
    console.log(rssLine);
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await new Promise((res) => child.once('exit', res));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
