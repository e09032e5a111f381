// bench/volume: the block-storage path through the Cinder API against a real
// `stratus server` and `stratus agent` (child processes, temp SQLite, temp
// agent state dir; the agent's file backend, reflink raw files on a
// loop-mounted btrfs unless the state dir reflinks itself), each step as a
// ratio to what the backend does to the files alone, measured in the same run
// (absolute times on these shared 2-core machines move by tens of percent from
// run to run; the ratios much less):
//   1. create and delete N (200) blank 1 GiB volumes, 16 calls in flight, each
//      timed from its POST to `available` (and from its DELETE to 404): volumes
//      per second, against a sequential `sh` loop of `truncate -s 1G` + `rm`
//      over the same pool (the floor: a volume is a sparse file).
//   2. a snapshot and a clone (a volume from `source_volid`) of a 1 GiB and a
//      50 GiB volume, each holding 64 MiB of data at its start and end, timed
//      from the POST to `available`: the 50 GiB ones should take as long as the
//      1 GiB ones (reflink: constant in size); against `cp --reflink=always` of
//      the same files.
//   3. a 1 GiB volume from a qcow2 image (1 GiB virtual, 256 MiB of data),
//      POST to `available`, against `qemu-img convert -O raw` of the same image
//      file (target <= 1.2x; the API path also downloads the image from the
//      server and inspects it: the download alone, through Glance's API, is
//      timed too, and the ratio to download + convert printed).
// Prints each ratio; checks that nothing is left in the pool.
//
// Usage (as root): bin/bench volume [--n 200] [--concurrency 16] [--keep]
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '../src/agent/exec.ts';
import { freePort, median, numberFlag, pool, request, sleep, spawnCli, spawnServer, stopChild, uploadImage, waitServer, type Session } from './lib.ts';

const N = numberFlag('n', 200);
const CONCURRENCY = numberFlag('concurrency', 16);
const KEEP = process.argv.includes('--keep');

/** A Cinder call that must succeed; its parsed body. */
async function cinder<T = any>(s: Session, method: string, path: string, body?: unknown): Promise<T> {
  const r = await request(`${s.base}/volume/v3${path}`, method, { 'X-Auth-Token': s.token, 'OpenStack-API-Version': 'volume 3.64' }, body === undefined ? undefined : JSON.stringify(body));
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  return (r.body ? JSON.parse(r.body) : {}) as T;
}

/** Polls a volume or snapshot until `status` (or gone, for 'gone'); an error status throws. */
async function until(s: Session, kind: 'volumes' | 'snapshots', id: string, status: string): Promise<void> {
  for (;;) {
    const r = await request(`${s.base}/volume/v3/${kind}/${id}`, 'GET', { 'X-Auth-Token': s.token });
    if (r.status === 404 && status === 'gone') return;
    if (r.status === 200) {
      const cur = (JSON.parse(r.body) as Record<string, { status: string }>)[kind === 'volumes' ? 'volume' : 'snapshot']!.status;
      if (cur === status) return;
      if (cur.startsWith('error')) throw new Error(`${kind} ${id} is ${cur}`);
    }
    // 16 volumes polled at once: every 50 ms is 320 GETs/s, a load of its own on the server measured
    await sleep(50);
  }
}

/** ms from `start` (the POST) to the resource's `status`. */
async function timed(s: Session, kind: 'volumes' | 'snapshots', start: () => Promise<string>, status = 'available'): Promise<{ id: string; ms: number }> {
  const t0 = performance.now();
  const id = await start();
  await until(s, kind, id, status);
  return { id, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bin/bench volume runs as root (the agent loop-mounts its pool)');
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-volume-'));
  const stateDir = join(dataDir, 'agent');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const password = 'bench-volume-password';
  let server: ChildProcess | null = null;
  let agent: ChildProcess | null = null;
  const hostname = `benchvol-${process.pid}`;
  try {
    console.log(`stratus volume benchmark: ${N} volumes, ${CONCURRENCY} API requests in flight, ${cpus().length} CPUs`);
    server = spawnServer(dataDir, port, password);
    const s = await waitServer(base, password);
    await cinder(s, 'PUT', `/os-quota-sets/${s.projectId}`, { quota_set: { volumes: -1, gigabytes: -1, snapshots: -1 } });
    agent = spawnCli(['agent', '--server', base, '--token-file', join(dataDir, 'agent-token'), '--state-dir', stateDir, '--hostname', hostname, '--log-level', 'warn']);
    for (let i = 0; ; i++) {
      const p = await cinder<{ pools: unknown[] }>(s, 'GET', '/scheduler-stats/get_pools');
      if (p.pools.length) break;
      if (agent.exitCode !== null) throw new Error(`agent exited with ${agent.exitCode}`);
      if (i > 600) throw new Error('no volume pool heard');
      await sleep(100);
    }
    const poolDir = join(stateDir, 'volumes');
    const volFile = (id: string) => join(poolDir, 'volumes', `${id}.raw`);
    const rawDir = join(poolDir, 'bench-raw');
    await fsp.mkdir(rawDir);
    const make = async (size: number, extra: Record<string, unknown> = {}) => (await cinder<{ volume: { id: string } }>(s, 'POST', '/volumes', { volume: { size, ...extra } })).volume.id;
    const drop = async (id: string) => {
      await cinder(s, 'DELETE', `/volumes/${id}`);
      await until(s, 'volumes', id, 'gone');
    };

    // 1. create and delete N volumes
    const rawScript = join(rawDir, 'loop.sh');
    await fsp.writeFile(rawScript, Array.from({ length: N }, (_, i) => `truncate -s 1G ${rawDir}/v${i}; rm ${rawDir}/v${i}`).join('\n') + '\n');
    let t0 = performance.now();
    await runOk('sh', [rawScript]);
    const rawPerSec = (N * 1000) / (performance.now() - t0);
    const ids: string[] = [];
    const createMs: number[] = [];
    t0 = performance.now();
    await pool(Array.from({ length: N }), CONCURRENCY, async () => {
      const r = await timed(s, 'volumes', () => make(1));
      ids.push(r.id);
      createMs.push(r.ms);
    });
    const createPerSec = (N * 1000) / (performance.now() - t0);
    const deleteMs: number[] = [];
    t0 = performance.now();
    await pool(ids, CONCURRENCY, async (id) => {
      const t = performance.now();
      await drop(id);
      deleteMs.push(performance.now() - t);
    });
    const deletePerSec = (N * 1000) / (performance.now() - t0);
    console.log(`raw floor (truncate -s 1G + rm, sequential sh): ${rawPerSec.toFixed(0)} volumes/s`);
    console.log(`API create to available: ${createPerSec.toFixed(1)} volumes/s (median ${median(createMs).toFixed(0)} ms each); delete to 404: ${deletePerSec.toFixed(1)} volumes/s (median ${median(deleteMs).toFixed(0)} ms)`);
    console.log(`  ratio create+delete rate, API / raw: ${(1 / (1 / createPerSec + 1 / deletePerSec) / rawPerSec).toFixed(3)}x`);

    // 2. snapshot and clone of 1 GiB and 50 GiB volumes, 64 MiB of data at each end
    const sizes = [1, 50];
    const rows: Array<{ size: number; snap: number; clone: number; raw: number }> = [];
    for (const size of sizes) {
      const v = await make(size);
      await until(s, 'volumes', v, 'available');
      await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 64M', '-c', `write -P 0xa5 ${size * 1024 - 64}M 64M`, volFile(v)]);
      const snap = await timed(s, 'snapshots', async () => (await cinder<{ snapshot: { id: string } }>(s, 'POST', '/snapshots', { snapshot: { volume_id: v } })).snapshot.id);
      const clone = await timed(s, 'volumes', () => make(size, { source_volid: v }));
      // the floor: the same reflink copy of the same file, alone
      const rawTimes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await runOk('cp', ['--reflink=always', volFile(v), join(rawDir, `copy${i}`)]);
        rawTimes.push(performance.now() - t);
      }
      rows.push({ size, snap: snap.ms, clone: clone.ms, raw: median(rawTimes) });
      await cinder(s, 'DELETE', `/snapshots/${snap.id}`);
      await until(s, 'snapshots', snap.id, 'gone');
      for (const id of [clone.id, v]) await drop(id);
      for (let i = 0; i < 3; i++) await fsp.rm(join(rawDir, `copy${i}`));
    }
    for (const r of rows) console.log(`${String(r.size).padStart(2)} GiB: snapshot ${r.snap.toFixed(0)} ms, clone ${r.clone.toFixed(0)} ms to available; cp --reflink ${r.raw.toFixed(1)} ms`);
    const [small, big] = rows as [typeof rows[0], typeof rows[0]];
    console.log(`  ratio 50 GiB / 1 GiB: snapshot ${(big.snap / small.snap).toFixed(2)}x, clone ${(big.clone / small.clone).toFixed(2)}x (flat: ~1); reflink alone ${(big.raw / small.raw).toFixed(2)}x`);

    // 3. a volume from a qcow2 image, against qemu-img convert of the same file
    const img = join(rawDir, 'image.qcow2');
    await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', img, '1G']);
    await runOk('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 128M', '-c', 'write -P 0x22 512M 128M', img]);
    const imageId = await uploadImage(s, { name: 'bench-vol-image', container_format: 'bare', disk_format: 'qcow2', visibility: 'public' }, readFileSync(img));
    const convertTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await runOk('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', img, join(rawDir, 'converted.raw')]);
      convertTimes.push(performance.now() - t);
      await fsp.rm(join(rawDir, 'converted.raw'));
    }
    // the part of the API path that is not conversion: the image's bytes through Glance's download, to a file
    const downloadTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const r = await fetch(`${s.base}/image/v2/images/${imageId}/file`, { headers: { 'x-auth-token': s.token } });
      if (r.status !== 200 || !r.body) throw new Error(`image download: ${r.status}`);
      await fsp.writeFile(join(rawDir, 'downloaded.qcow2'), r.body as unknown as AsyncIterable<Uint8Array>);
      downloadTimes.push(performance.now() - t);
      await fsp.rm(join(rawDir, 'downloaded.qcow2'));
    }
    const fromImage: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await timed(s, 'volumes', () => make(1, { imageRef: imageId }));
      fromImage.push(r.ms);
      await drop(r.id);
    }
    console.log(`volume from image (1 GiB qcow2, 256 MiB of data): ${median(fromImage).toFixed(0)} ms to available (median of 3); qemu-img convert -O raw ${median(convertTimes).toFixed(0)} ms; the image's download alone ${median(downloadTimes).toFixed(0)} ms`);
    console.log(`  ratio API / qemu-img convert: ${(median(fromImage) / median(convertTimes)).toFixed(2)}x (target <= 1.2x); API / (download + convert): ${(median(fromImage) / (median(downloadTimes) + median(convertTimes))).toFixed(2)}x`);
    await fsp.rm(rawDir, { recursive: true });

    const left = [...readdirSync(join(poolDir, 'volumes')), ...readdirSync(join(poolDir, 'snapshots'))];
    console.log(left.length ? `LEFT BEHIND in the pool: ${left.join(' ')}` : 'nothing left in the pool');
    if (left.length) process.exitCode = 1;
  } finally {
    await stopChild(agent);
    await stopChild(server);
    if (!KEEP) {
      // the agent's loop-mounted pool, if it made one
      for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n').reverse()) {
        const m = line.split(' ')[1];
        if (m && m.startsWith(dataDir)) await run('umount', ['-l', m]);
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
}

await main();
