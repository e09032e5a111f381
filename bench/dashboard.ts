// bench/dashboard: the web dashboard's servers page with 1,000 servers in the
// project, in Debian's chromium (playwright-core), against a real `stratus
// server` child process on a temp SQLite:
//
// - time to first render: from navigating to /#/servers (logged in: the
//   session in sessionStorage) to the table's first page of rows on screen,
//   cold (a new browser context: nothing cached) and warm (the same context
//   again: the hashed assets from its cache), the median of --runs each;
//   against the baseline measured in the same run: a plain
//   GET /compute/v2.1/servers/detail of the same 1,000 servers from Node
//   (what `openstack server list --long` fetches), the median of --runs;
// - the compressed bytes the browser downloads before the first page is
//   usable (the login form): every response's encoded body and headers, as
//   chromium counts them; and the build's own count (ui/dist/manifest.json).
//
// Targets (issue 15): first render under 1 s; the first page at most 250 KiB.
// No agent runs: the servers stay where the scheduler leaves them (no host).
// Usage: bin/bench dashboard [--servers 1000] [--runs 5]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { freePort, numberFlag, request } from './lib.ts';

const SERVERS = numberFlag('servers', 1000);
const RUNS = numberFlag('runs', 5);
const CHROMIUM = process.env.STRATUS_CHROMIUM ?? '/usr/bin/chromium';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A `docker save` style archive with one empty layer: the smallest container image. */
function dockerArchive(dir: string): Buffer {
  mkdirSync(join(dir, 'l'));
  writeFileSync(join(dir, 'l', 'layer.tar'), Buffer.alloc(1024));
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ os: 'linux' }));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', RepoTags: ['c:latest'], Layers: ['l/layer.tar'] }]));
  execFileSync('tar', ['-cf', join(dir, 'out.tar'), '-C', dir, 'manifest.json', 'cfg.json', 'l']);
  return readFileSync(join(dir, 'out.tar'));
}

const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-'));
const port = await freePort();
const password = 'bench-admin-password';
const launcher = join(import.meta.dirname, '../bin/stratus');
if (spawnSync(launcher, ['--help'], { stdio: 'ignore' }).status !== 0) throw new Error(`${launcher} --help failed`);
const child = spawn(launcher, ['server', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn', '--admin-password', password], { stdio: ['ignore', 'inherit', 'inherit'] });
const base = `http://127.0.0.1:${port}`;
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
try {
  for (let i = 0; ; i++) {
    const r = await request(`${base}/healthz`, 'GET').catch(() => null);
    if (r?.status === 200) break;
    if (i > 300) throw new Error('server did not start');
    await new Promise((res) => setTimeout(res, 100));
  }
  const login = await request(`${base}/identity/v3/auth/tokens`, 'POST', {}, JSON.stringify({ auth: {
    identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } },
    scope: { project: { name: 'admin', domain: { id: 'default' } } },
  } }));
  const token = login.headers['x-subject-token'] as string;
  const projectId = JSON.parse(login.body).token.project.id as string;
  const h = { 'X-Auth-Token': token, 'X-OpenStack-Nova-API-Version': '2.79' };
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await request(`${base}${path}`, method, h, body === undefined ? undefined : JSON.stringify(body));
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body.slice(0, 300)}`);
    return r.body ? JSON.parse(r.body) : null;
  };
  await api('PUT', `/compute/v2.1/os-quota-sets/${projectId}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
  const img = await api('POST', '/image/v2/images', { name: 'bench', container_format: 'docker', disk_format: 'raw', visibility: 'public' });
  const tarDir = mkdtempSync(join(tmpdir(), 'stratus-bench-img-'));
  const up = await fetch(`${base}/image/v2/images/${img.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(dockerArchive(tarDir)) });
  rmSync(tarDir, { recursive: true, force: true });
  if (up.status !== 204) throw new Error(`image upload: ${up.status}`);
  const flavor = (await api('GET', '/compute/v2.1/flavors')).flavors[0].id;
  const t0 = performance.now();
  for (let made = 0; made < SERVERS;) {
    const n = Math.min(100, SERVERS - made);
    await api('POST', '/compute/v2.1/servers', { server: { name: `bench-${made}`, imageRef: img.id, flavorRef: flavor, networks: 'none', min_count: n, max_count: n } });
    made += n;
  }
  console.log(`stratus dashboard benchmark: ${SERVERS} servers made in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${RUNS} runs each`);

  // the baseline: the same servers as a client lists them
  const plain: number[] = [];
  let count = 0;
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    const r = await request(`${base}/compute/v2.1/servers/detail`, 'GET', h);
    plain.push(performance.now() - s);
    count = JSON.parse(r.body).servers.length;
  }

  // the page: the session as the login form leaves it in sessionStorage, then /#/servers
  const session = JSON.stringify({ token, unscoped: null, appCredential: false });
  const firstRender = async (page: import('playwright-core').Page) => {
    const s = performance.now();
    await page.goto(`${base}/#/servers`);
    await page.waitForFunction(() => document.querySelectorAll('main table tbody tr a').length >= 25, null, { timeout: 30_000 });
    return performance.now() - s;
  };
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext();
    await context.addInitScript((s) => sessionStorage.setItem('stratus.session', s), session);
    const page = await context.newPage();
    cold.push(await firstRender(page));
    await page.goto('about:blank');
    warm.push(await firstRender(page));
    await context.close();
  }

  // what the first page (the login form) downloads, compressed, as the browser counted it
  const context = await browser.newContext();
  const page = await context.newPage();
  const sizes: Array<{ url: string; bytes: number }> = [];
  page.on('requestfinished', async (req) => {
    const s = await req.sizes();
    sizes.push({ url: req.url(), bytes: s.responseBodySize + s.responseHeadersSize });
  });
  await page.goto(`${base}/`);
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await page.waitForLoadState('networkidle');
  await context.close();
  const total = sizes.reduce((n, s) => n + s.bytes, 0);
  const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../ui/dist/manifest.json'), 'utf8'));

  const ms = (x: number) => `${x.toFixed(0).padStart(6)} ms`;
  console.log(`GET /servers/detail (${count} servers)     median ${ms(median(plain))}   (runs: ${plain.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`servers page, first render, cold   median ${ms(median(cold))}   ratio ${(median(cold) / median(plain)).toFixed(2)}x the plain GET   (runs: ${cold.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`servers page, first render, warm   median ${ms(median(warm))}   ratio ${(median(warm) / median(plain)).toFixed(2)}x the plain GET   (runs: ${warm.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`target: first render under 1000 ms: ${median(cold) < 1000 ? 'met' : 'NOT met'}`);
  console.log(`first page downloaded: ${(total / 1024).toFixed(1)} KiB compressed with headers in ${sizes.length} responses (${sizes.map((s) => `${new URL(s.url).pathname} ${(s.bytes / 1024).toFixed(1)}`).join(', ')}); the build's count (brotli bodies): ${(manifest.firstLoadBr / 1024).toFixed(1)} KiB; target 250 KiB: ${total <= 250 * 1024 ? 'met' : 'NOT met'}`);
} finally {
  await browser.close().catch(() => undefined);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
