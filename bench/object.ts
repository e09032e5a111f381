// bench/object: the object store against Debian's Swift, both measured in the same run on
// the same machine (issue 13 item 7).
//
//   1. Objects: PUT, GET and DELETE of 4 KiB and 1 MiB objects at concurrency 16, fsync on
//      (Stratus's file backend always fsyncs; Swift's object server fsyncs each PUT), through
//      each one's Swift API with a Keystone token: Stratus's `/object/v1/AUTH_<project>` and
//      Swift's proxy (one replica, Keystone auth through authtoken + keystoneauth, as DevStack
//      sets it up). Target: Stratus >= 10x Swift for 4 KiB PUT and GET.
//      Also measured, before and after: the disk's own floor for a durable small write (a
//      4 KiB file written, fdatasynced and renamed, C at a time, in the data dir's file system).
//   2. Listing: 1,000 names (`?limit=1000`, JSON, from a marker in the middle, and with a
//      prefix) out of a container holding --list-objects (default 1,000,000) objects, both
//      sides filled through their own databases (a million PUTs would take hours): Stratus's
//      `object_objects` rows (empty objects: no blob) and Swift's container database (its
//      `object` table), each in one transaction, the container's counters set to match.
//   3. Registry: skopeo copy of a --registry-mib (default 100) MiB image (one gzip layer of
//      random bytes, an OCI layout made here) into Stratus's registry (push) and back out
//      (pull), against skopeo copy of the same image between two local OCI directories
//      (the floor: the same tool's own copy cost). Target: <= 1.5x.
//
// The reference services come from the team's peer scripts (`--peer-source`, default
// ../shared/peer beside the repository, else /work/shared/peer), copied to a temporary
// directory and started from there: MariaDB, memcached, Keystone on :5000, Swift's proxy on
// :8080 and its servers on :6200-6202. They are stopped afterwards by their pid files only.
// Stratus runs as `stratus server` on a free port and a temp data dir. Run it alone on the
// machine: `flock /tmp/stratus-cloud.lock bin/bench object` (as root).
//
// Usage: bin/bench object [--requests 2000] [--large-requests 300] [--concurrency 16]
//   [--list-objects 1000000] [--list-requests 200] [--registry-mib 100] [--rounds 3]
//   [--only objects,listing,registry] [--no-swift] [--peer-source DIR] [--keep-peer]
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { open, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { flag, format, freePort, median, numberFlag, run, sleep, spawnServer, stopChild, type RunResult } from './lib.ts';

const ROOT = resolve(import.meta.dirname, '..');
const N = numberFlag('requests', 2000);
const N_LARGE = numberFlag('large-requests', 300);
const C = numberFlag('concurrency', 16);
const LIST_OBJECTS = numberFlag('list-objects', 1_000_000);
const LIST_N = numberFlag('list-requests', 200);
const REGISTRY_MIB = numberFlag('registry-mib', 100);
const ROUNDS = numberFlag('rounds', 3);
const ONLY = new Set((flag('only') ?? 'objects,listing,registry').split(','));
const WITH_SWIFT = !process.argv.includes('--no-swift');
const TARGET_SMALL = 10; // Stratus / Swift, 4 KiB PUT and GET
const TARGET_REGISTRY = 1.5; // registry copy time / local directory copy time
const PASSWORD = 'bench-admin-password';

// --- HTTP with binary bodies (keep-alive, as the clients keep their connections)
let agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
interface Res { status: number; headers: http.IncomingHttpHeaders; body: Buffer }
function req(url: string, method: string, headers: Record<string, string | number> = {}, body?: Buffer | string): Promise<Res> {
  return new Promise((res, rej) => {
    const r = http.request(url, { method, agent, headers: body === undefined ? headers : { 'Content-Length': Buffer.byteLength(body), ...headers } }, (m) => {
      const chunks: Buffer[] = [];
      m.on('data', (c: Buffer) => chunks.push(c));
      m.on('end', () => res({ status: m.statusCode ?? 0, headers: m.headers, body: Buffer.concat(chunks) }));
      m.on('error', rej);
    });
    r.on('error', rej);
    r.end(body);
  });
}

/** A Swift endpoint with a token: where objects go. */
interface Target { label: string; account: string; token: string }

/** Logs in to a Keystone v3 (`auth`) as admin of project admin; the object-store public URL from the catalog. */
async function login(label: string, auth: string, password: string): Promise<Target> {
  const body = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } });
  const r = await req(`${auth}/auth/tokens`, 'POST', { 'Content-Type': 'application/json' }, body);
  if (r.status !== 201) throw new Error(`${label}: login ${r.status} ${r.body}`);
  const cat = (JSON.parse(r.body.toString()) as { token: { catalog: Array<{ type: string; endpoints: Array<{ interface: string; url: string }> }> } }).token.catalog;
  const url = cat.find((s) => s.type === 'object-store')?.endpoints.find((e) => e.interface === 'public')?.url;
  if (!url) throw new Error(`${label}: no object-store endpoint in the catalog`);
  return { label, account: url.replace(/\/$/, ''), token: r.headers['x-subject-token'] as string };
}

async function mustOk(r: Promise<Res>, what: string): Promise<Res> {
  const x = await r;
  if (x.status >= 300) throw new Error(`${what}: ${x.status} ${x.body.toString().slice(0, 200)}`);
  return x;
}

/** Waits until the account answers an authenticated HEAD (a proxy just started may drop its first connections). */
async function ready(t: Target): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await req(t.account, 'HEAD', { 'X-Auth-Token': t.token }).catch((e: Error) => e);
    if (!(r instanceof Error) && r.status < 300) return;
    if (i >= 60) throw new Error(`${t.label}: the account does not answer: ${r instanceof Error ? r.message : r.status}`);
    await sleep(500);
  }
}

// --- 1. objects
interface OpResults { put: RunResult; get: RunResult; del: RunResult }
async function objects(t: Target, size: number, n: number): Promise<OpResults> {
  const container = `bench-${size}-${Date.now()}`;
  const H = { 'X-Auth-Token': t.token };
  await mustOk(req(`${t.account}/${container}`, 'PUT', H), `${t.label}: container PUT`);
  const data = randomBytes(size);
  const etag = createHash('md5').update(data).digest('hex');
  const url = (i: number) => `${t.account}/${container}/o-${String(i).padStart(7, '0')}`;
  let i = 0;
  // warm-up: a few of each outside the timing
  for (let w = 0; w < 16; w++) await req(`${url(1e6 + w)}`, 'PUT', { ...H, 'Content-Type': 'application/octet-stream' }, data);
  const put = await run(`${t.label} PUT ${label(size)}`, C, n, async () => (await req(url(i++), 'PUT', { ...H, 'Content-Type': 'application/octet-stream', ETag: etag }, data)).status === 201);
  i = 0;
  const get = await run(`${t.label} GET ${label(size)}`, C, n, async () => {
    const r = await req(url(i++), 'GET', H);
    return r.status === 200 && r.body.length === size;
  });
  i = 0;
  const del = await run(`${t.label} DELETE ${label(size)}`, C, n, async () => (await req(url(i++), 'DELETE', H)).status === 204);
  for (let w = 0; w < 16; w++) await req(`${url(1e6 + w)}`, 'DELETE', H);
  await req(`${t.account}/${container}`, 'DELETE', H);
  return { put, get, del };
}
const label = (size: number) => (size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`);

/**
 * The disk's floor for a durable small write, in this same run: what the file backend must do at
 * least per PUT (write a 4 KiB file, fdatasync, rename), `n` times with C in flight, in the data dir.
 */
async function fsyncFloor(dir: string, n: number): Promise<RunResult> {
  const d = join(dir, 'fsync-floor');
  mkdirSync(d, { recursive: true });
  const data = randomBytes(4096);
  let i = 0;
  const r = await run('disk: 4 KiB write+fdatasync+rename', C, n, async () => {
    const k = i++;
    const f = await open(join(d, `t${k}`), 'w');
    await f.write(data);
    await f.datasync();
    await f.close();
    await rename(join(d, `t${k}`), join(d, `b${k}`));
    return true;
  });
  rmSync(d, { recursive: true, force: true });
  return r;
}

// --- 2. listing
const listName = (i: number) => `dir${String(i % 100).padStart(2, '0')}/obj-${String(i).padStart(8, '0')}`;

/** Stratus: rows straight into object_objects (empty objects, no blob), counters to match. */
function fillStratus(dbFile: string, project: string, container: string, n: number): void {
  const db = new DatabaseSync(dbFile);
  db.exec('PRAGMA busy_timeout = 60000');
  const row = db.prepare('SELECT id FROM object_containers WHERE project_id = ? AND name = ? AND internal = 0').get(project, container) as { id: number } | undefined;
  if (!row) throw new Error(`stratus: no container ${container} in ${dbFile}`);
  const ts = (Date.now() / 1000).toFixed(5).padStart(16, '0');
  const ins = db.prepare(`INSERT INTO object_objects (container_id, name, size, etag, content_type, metadata, sysmeta, timestamp, delete_at, segments)
    VALUES (?, ?, 0, 'd41d8cd98f00b204e9800998ecf8427e', 'application/octet-stream', '{}', '{}', ?, NULL, '[]')`);
  db.exec('BEGIN');
  for (let i = 0; i < n; i++) ins.run(row.id, listName(i), ts);
  db.prepare('UPDATE object_containers SET object_count = object_count + ? WHERE id = ?').run(n, row.id);
  db.exec('COMMIT');
  db.close();
}

/** Swift: rows straight into the container's database (its `object` table; the triggers keep the counters). */
function fillSwift(container: string, n: number): void {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (depth < 3 && statSync(p).isDirectory()) walk(p, depth + 1);
      else if (e.endsWith('.db')) found.push(p);
    }
  };
  walk('/srv/node/d1/containers', 0);
  for (const f of found) {
    const db = new DatabaseSync(f);
    db.exec('PRAGMA busy_timeout = 60000');
    // the triggers of Swift's container schema keep a running hash with this function of Swift's (swift.common.utils.chexor)
    db.function('chexor', (old, name, timestamp) => {
      const h = BigInt(`0x${createHash('md5').update(`${String(name)}-${String(timestamp)}`).digest('hex')}`);
      return (BigInt(`0x${String(old)}`) ^ h).toString(16).padStart(32, '0');
    });
    const st = db.prepare('SELECT container FROM container_stat').get() as { container: string } | undefined;
    if (st?.container !== container) { db.close(); continue; }
    const ts = (Date.now() / 1000).toFixed(5).padStart(16, '0');
    const ins = db.prepare(`INSERT INTO object (name, created_at, size, content_type, etag, deleted, storage_policy_index)
      VALUES (?, ?, 0, 'application/octet-stream', 'd41d8cd98f00b204e9800998ecf8427e', 0, 0)`);
    db.exec('BEGIN');
    for (let i = 0; i < n; i++) ins.run(listName(i), ts);
    db.exec('COMMIT');
    db.close();
    return;
  }
  throw new Error(`swift: no container database for ${container} under /srv/node/d1/containers`);
}

interface ListResults { middle: RunResult; prefix: RunResult; fillSeconds: number }
async function listing(t: Target, fill: (container: string) => void): Promise<ListResults> {
  const container = `bench-list-${Date.now()}`;
  const H = { 'X-Auth-Token': t.token };
  await mustOk(req(`${t.account}/${container}`, 'PUT', H), `${t.label}: container PUT`);
  const t0 = performance.now();
  fill(container);
  const fillSeconds = (performance.now() - t0) / 1000;
  // the fill blocked this process for minutes: the kept-alive connections are stale by now
  agent.destroy();
  agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const head = await mustOk(req(`${t.account}/${container}`, 'HEAD', H), `${t.label}: container HEAD`);
  console.log(`${t.label}: ${head.headers['x-container-object-count']} objects in ${container} (filled in ${fillSeconds.toFixed(1)} s)`);
  const check = (r: Res) => r.status === 200 && (JSON.parse(r.body.toString()) as unknown[]).length === 1000;
  let k = 0;
  // markers spread over the whole key range, so no answer comes from a cache of the last one
  const marker = () => encodeURIComponent(listName(Math.floor(((k++ * 7919) % LIST_OBJECTS) * 0.999)));
  for (let w = 0; w < 5; w++) await req(`${t.account}/${container}?format=json&limit=1000&marker=${marker()}`, 'GET', H);
  const middle = await run(`${t.label} list 1000 (marker)`, C, LIST_N, async () => check(await req(`${t.account}/${container}?format=json&limit=1000&marker=${marker()}`, 'GET', H)));
  const prefix = await run(`${t.label} list 1000 (prefix)`, C, LIST_N, async () => check(await req(`${t.account}/${container}?format=json&limit=1000&prefix=dir${String(k++ % 100).padStart(2, '0')}/`, 'GET', H)));
  return { middle, prefix, fillSeconds };
}

// --- 3. registry
function sh(cmd: string, args: string[], env: Record<string, string> = {}): { ok: boolean; out: string; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, seconds: (performance.now() - t0) / 1000 };
}
function must(cmd: string, args: string[]): number {
  const r = sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.out.slice(-600)}`);
  return r.seconds;
}

/** An OCI layout at `dir` (tag `bench`): one gzip layer of `mib` MiB of random bytes. */
function makeImage(dir: string, mib: number): void {
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'bench-layer-'));
  writeFileSync(join(work, 'payload'), randomBytes(mib << 20));
  must('tar', ['-C', work, '-cf', join(work, 'layer.tar'), 'payload']);
  const diffId = createHash('sha256').update(readFileSync(join(work, 'layer.tar'))).digest('hex');
  // random bytes do not compress: gzip -1 only frames them, as a registry expects a gzip layer
  must('gzip', ['-1', join(work, 'layer.tar')]);
  const layer = readFileSync(join(work, 'layer.tar.gz'));
  rmSync(work, { recursive: true, force: true });
  const put = (b: Buffer) => {
    const d = createHash('sha256').update(b).digest('hex');
    writeFileSync(join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const l = put(layer);
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] } })));
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l }],
  })));
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
}

interface RegistryResults { local: number[]; push: number[]; pull: number[] }
async function registry(host: string, project: string, password: string): Promise<RegistryResults | string> {
  if (sh('skopeo', ['--version']).ok === false) return 'skopeo is not installed';
  const probe = await req(`http://${host}/v2/`, 'GET').catch(() => null);
  if (!probe || probe.status === 404) return `no registry at http://${host}/v2/ (answered ${probe?.status ?? 'nothing'})`;
  const out: RegistryResults = { local: [], push: [], pull: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const work = mkdtempSync(join(tmpdir(), 'bench-registry-'));
    try {
      // a new image each round: no blob of it is in the registry yet
      makeImage(join(work, 'src'), REGISTRY_MIB);
      out.local.push(must('skopeo', ['copy', '--quiet', `oci:${work}/src:bench`, `oci:${work}/local:bench`]));
      const ref = `docker://${host}/${project}/bench-${round}-${Date.now()}:v1`;
      out.push.push(must('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `admin:${password}`, `oci:${work}/src:bench`, ref]));
      out.pull.push(must('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--src-creds', `admin:${password}`, ref, `oci:${work}/pulled:bench`]));
      const a = readFileSync(join(work, 'src/index.json'), 'utf8'), b = readFileSync(join(work, 'pulled/index.json'), 'utf8');
      const digest = (s: string) => (JSON.parse(s) as { manifests: Array<{ digest: string }> }).manifests[0]!.digest;
      if (digest(a) !== digest(b)) throw new Error(`registry: the pulled manifest ${digest(b)} is not the pushed ${digest(a)}`);
      console.log(`registry round ${round + 1}: local copy ${out.local.at(-1)!.toFixed(2)} s, push ${out.push.at(-1)!.toFixed(2)} s, pull ${out.pull.at(-1)!.toFixed(2)} s`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return out;
}

// --- the reference Swift (the peer scripts), started from a copy, stopped by pid files
class Peer {
  dir = '';
  startedMysql = false;
  start(): Promise<Target> {
    const candidates = [flag('peer-source'), join(ROOT, '../shared/peer'), '/work/shared/peer'].filter((x): x is string => !!x);
    const source = candidates.find((d) => existsSync(join(d, 'start-swift.sh')));
    if (!source) throw new Error(`no peer scripts (start-swift.sh) in ${candidates.join(', ')}: give --peer-source`);
    // the packages, as the project installs any (scripts/debian-packages.sh)
    const pk = sh('bash', ['-c', `. '${ROOT}/scripts/debian-packages.sh' && ensure_debian_packages $STRATUS_SWIFT_PEER_PACKAGES`]);
    if (!pk.ok) throw new Error(`peer packages: ${pk.out}`);
    this.dir = mkdtempSync(join(tmpdir(), 'stratus-bench-peer-'));
    cpSync(source, this.dir, { recursive: true });
    for (const f of readdirSync(this.dir)) if (f.endsWith('.pid') || f === 'logs' || f === 'admin-openrc.sh') rmSync(join(this.dir, f), { recursive: true, force: true });
    this.startedMysql = !sh('mysqladmin', ['ping']).ok;
    console.log(`peer: starting Keystone and Swift from ${this.dir} (logs in ${this.dir}/logs)`);
    const ks = sh(join(this.dir, 'start-keystone.sh'), ['--reset', '--cache', '--conn-close']);
    if (!ks.ok) throw new Error(`start-keystone.sh: ${ks.out.slice(-1500)}`);
    const sw = sh(join(this.dir, 'start-swift.sh'), []);
    if (!sw.ok) throw new Error(`start-swift.sh: ${sw.out.slice(-1500)}`);
    return login('swift', 'http://127.0.0.1:5000/v3', 'secret');
  }
  async stop(): Promise<void> {
    if (!this.dir) return;
    const pids: number[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.pid')) continue;
      const pid = Number(readFileSync(join(this.dir, f), 'utf8').trim());
      if (pid > 1) pids.push(pid);
    }
    if (this.startedMysql && existsSync('/run/mysqld/mysqld.pid')) pids.push(Number(readFileSync('/run/mysqld/mysqld.pid', 'utf8').trim()));
    for (const pid of pids) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
    for (let i = 0; i < 100 && pids.some(alive); i++) await sleep(100);
    for (const pid of pids.filter(alive)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    console.log(`peer: stopped pids ${pids.join(' ')}`);
  }
}
function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

// --- main
function ratioLine(what: string, ours: number, theirs: number | undefined, target?: number): string {
  if (theirs === undefined) return `${what.padEnd(18)} stratus ${ours.toFixed(1)} ops/s`;
  const r = ours / theirs;
  return `${what.padEnd(18)} stratus ${ours.toFixed(1).padStart(8)} ops/s  swift ${theirs.toFixed(1).padStart(8)} ops/s  ${r.toFixed(1)}x${target ? `  (target ${target}x: ${r >= target ? 'met' : 'NOT met'})` : ''}`;
}

async function main() {
  const peer = new Peer();
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-object-'));
  const port = await freePort();
  const server = ONLY.has('objects') || ONLY.has('listing') || ONLY.has('registry') ? spawnServer(dataDir, port, PASSWORD) : null;
  const base = `http://127.0.0.1:${port}`;
  try {
    let swift: Target | undefined;
    if (WITH_SWIFT && (ONLY.has('objects') || ONLY.has('listing'))) swift = await peer.start();
    for (let i = 0; ; i++) {
      const r = await req(`${base}/healthz`, 'GET').catch(() => null);
      if (r?.status === 200) break;
      if (i > 300) throw new Error('stratus server did not start');
      await sleep(100);
    }
    const stratus = await login('stratus', `${base}/identity/v3`, PASSWORD).catch((e: Error) => e);
    if (stratus instanceof Error) console.log(`stratus: ${stratus.message} (the object service is not in this build?)`);
    const targets = [...(stratus instanceof Error ? [] : [stratus]), ...(swift ? [swift] : [])];
    for (const t of targets) await ready(t);
    console.log(`stratus object benchmark: ${N} requests per 4 KiB run, ${N_LARGE} per 1 MiB run, concurrency ${C}; ${targets.map((t) => `${t.label} at ${t.account}`).join(', ')}`);
    const summary: string[] = [];

    if (ONLY.has('objects')) {
      const res: Record<string, Record<string, OpResults>> = {};
      // the disk's own rate for what a durable PUT needs at least, before and after the runs
      const floors = [await fsyncFloor(dataDir, N / 2)];
      console.log(format(floors[0]!));
      for (const size of [4 << 10, 1 << 20]) {
        for (const t of targets) {
          const r = await objects(t, size, size > 65536 ? N_LARGE : N);
          (res[t.label] ??= {})[size] = r;
          for (const x of [r.put, r.get, r.del]) console.log(format(x, size > 65536 ? `  ${((x.rps * size) / (1 << 20)).toFixed(1)} MiB/s` : ''));
        }
      }
      floors.push(await fsyncFloor(dataDir, N / 2));
      console.log(format(floors[1]!));
      summary.push(`disk floor: 4 KiB write+fdatasync+rename ${floors.map((f) => f.rps.toFixed(0)).join(' / ')} ops/s (before / after the runs)`);
      for (const size of [4 << 10, 1 << 20]) {
        const ours = res.stratus?.[size], theirs = res.swift?.[size];
        if (!ours) continue;
        const small = size < 65536;
        summary.push(ratioLine(`PUT ${label(size)}`, ours.put.rps, theirs?.put.rps, small ? TARGET_SMALL : undefined));
        summary.push(ratioLine(`GET ${label(size)}`, ours.get.rps, theirs?.get.rps, small ? TARGET_SMALL : undefined));
        summary.push(ratioLine(`DELETE ${label(size)}`, ours.del.rps, theirs?.del.rps));
      }
    }

    if (ONLY.has('listing')) {
      const res: Record<string, ListResults> = {};
      for (const t of targets) {
        const project = t.account.slice(t.account.lastIndexOf('AUTH_') + 5);
        res[t.label] = await listing(t, t.label === 'stratus' ? (c) => fillStratus(join(dataDir, 'stratus.db'), project, c, LIST_OBJECTS) : (c) => fillSwift(c, LIST_OBJECTS));
        for (const x of [res[t.label]!.middle, res[t.label]!.prefix]) console.log(format(x));
      }
      if (res.stratus) {
        summary.push(ratioLine('list 1000 (marker)', res.stratus.middle.rps, res.swift?.middle.rps) + `  p50 ${res.stratus.middle.p50.toFixed(1)} ms`);
        summary.push(ratioLine('list 1000 (prefix)', res.stratus.prefix.rps, res.swift?.prefix.rps) + `  p50 ${res.stratus.prefix.p50.toFixed(1)} ms`);
      }
    }

    if (ONLY.has('registry') && !(stratus instanceof Error)) {
      const r = await registry(`127.0.0.1:${port}`, 'admin', PASSWORD);
      if (typeof r === 'string') console.log(`registry: skipped: ${r}`);
      else {
        const l = median(r.local), p = median(r.push), q = median(r.pull);
        summary.push(`registry ${REGISTRY_MIB} MiB: local copy ${l.toFixed(2)} s, push ${p.toFixed(2)} s (${(p / l).toFixed(2)}x: ${p / l <= TARGET_REGISTRY ? 'met' : 'NOT met'}), pull ${q.toFixed(2)} s (${(q / l).toFixed(2)}x: ${q / l <= TARGET_REGISTRY ? 'met' : 'NOT met'}; target <= ${TARGET_REGISTRY}x), medians of ${ROUNDS}`);
      }
    }
    console.log('-- summary (concurrency ' + C + ')');
    for (const l of summary) console.log(l);
  } finally {
    if (!process.argv.includes('--keep-peer')) await peer.stop();
    await stopChild(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
