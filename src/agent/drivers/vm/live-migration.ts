// A VM's live migration as QMP commands, as QEMU's docs prescribe for a
// block migration over NBD (docs/interop/live-block-operations.rst, what
// libvirt does for non-shared storage):
//
//   destination  qemu started with `-incoming defer` (driver.ts launch);
//                `nbd-server-start` on its host address and a writable
//                `block-export-add` of each local disk (its overlay made
//                afresh on the same backing image); `migrate-incoming` on a
//                TCP port of the same address
//   source       per disk an `nbd` block node to that export and a
//                `blockdev-mirror` (sync `top` for the root disk: the backing
//                image is the same on both hosts; `full` for blank disks);
//                once every job is READY, `migrate` of the memory (the
//                mirrors keep the disks in step meanwhile); once it
//                completes (the guest paused), `block-job-cancel` of each
//                ready job, which ends it with the target in step, and its
//                node removed
//   destination  exports and NBD server stopped, `cont`
//
// A failure or an abort on the source: `migrate_cancel`, the jobs cancelled
// (force), the nodes removed, the guest continued when it ran before: the
// server goes on where it was. Ports are picked at random in the dynamic
// range and tried again when taken.
import type { LiveMigrationProgress, LiveMigrationTarget } from '../../../compute/engine/protocol.ts';
import type { QmpClient } from './qmp.ts';

/** qemu's ids of a VM's local writable disks (driver.ts args), the ones a block migration copies. */
export const LOCAL_DRIVES = ['drive-root', 'drive-eph0', 'drive-swap'] as const;
/** The mirror job and target node of a disk (node names hold at most 31 characters). */
const jobOf = (drive: string) => `mig-${drive}`;
/** How often progress is read while the disks or the memory are copied. */
const POLL_MS = 200;
/** Nova's live_migration_completion_timeout (800 s): a copy that has not converged by then is cancelled. */
export const COMPLETION_TIMEOUT_MS = 800_000;
/** qemu's max-bandwidth when none is set (its own default is 128 MiB/s). */
const UNLIMITED = 8 * 2 ** 30;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A migration cancelled by an abort (DELETE of the migration). */
export class MigrationCancelledError extends Error {}

/** A free-looking port of the dynamic range; qemu's bind is the test (a taken one is tried again). */
const randomPort = () => 49152 + Math.floor(Math.random() * 16000);

async function onFreePort(what: string, attempt: (port: number) => Promise<unknown>): Promise<number> {
  let last: Error | null = null;
  for (let i = 0; i < 12; i++) {
    const port = randomPort();
    try {
      await attempt(port);
      return port;
    } catch (err) {
      last = err as Error;
      if (!/in use|bind|address/i.test(last.message)) throw err;
    }
  }
  throw new Error(`no free port for the ${what}: ${last?.message ?? ''}`);
}

/** Destination: NBD exports of the local disks and the incoming migration, on `host`. `block` false: shared storage, no exports. */
export async function listenIncoming(q: QmpClient, host: string, block: boolean): Promise<LiveMigrationTarget> {
  let nbd: LiveMigrationTarget['nbd'] = null;
  if (block) {
    const disks = (await q.execute('query-block')).filter((b) => (LOCAL_DRIVES as readonly string[]).includes(b.device) && b.inserted?.['node-name'] && !b.inserted.ro);
    const port = await onFreePort('NBD server', (p) => q.execute('nbd-server-start', { addr: { type: 'inet', data: { host, port: String(p) } } }));
    for (const d of disks) await q.execute('block-export-add', { type: 'nbd', id: jobOf(d.device), 'node-name': d.inserted!['node-name']!, writable: true, name: d.device });
    nbd = { host, port, exports: disks.map((d) => d.device) };
  }
  const mport = await onFreePort('incoming migration', (p) => q.execute('migrate-incoming', { uri: `tcp:${host}:${p}` }));
  return { migrate_uri: `tcp:${host}:${mport}`, nbd };
}

/** Destination: the exports and the NBD server gone (the source has let go of them). */
export async function stopIncoming(q: QmpClient): Promise<void> {
  for (const d of LOCAL_DRIVES) await q.execute('block-export-del', { id: jobOf(d), mode: 'hard' }).catch(() => undefined);
  await q.execute('nbd-server-stop').catch(() => undefined);
}

/** What the source has copied so far (Nova's migration progress fields). */
export async function progressOf(q: QmpClient): Promise<LiveMigrationProgress> {
  const m = await q.execute('query-migrate');
  const jobs = (await q.execute('query-block-jobs')).filter((j) => j.device.startsWith('mig-'));
  const disk_total = jobs.reduce((n, j) => n + j.len, 0);
  const disk_processed = jobs.reduce((n, j) => n + j.offset, 0);
  return {
    status: m.status ?? (jobs.length ? 'mirroring' : 'none'),
    memory_total: m.ram?.total ?? 0, memory_processed: m.ram?.transferred ?? 0, memory_remaining: m.ram?.remaining ?? 0,
    disk_total, disk_processed, disk_remaining: Math.max(0, disk_total - disk_processed),
  };
}

/**
 * Source: the disks mirrored to the destination's exports, then the memory
 * migrated; returns once the guest is handed over (paused here) and the
 * mirrors ended in step. `cancelled()` is asked between polls (an abort).
 * Throws on a failure or a cancel; the caller undoes (cancelOutgoing).
 * `bandwidth`: bytes/s for the memory and each disk (0: unlimited).
 */
export async function migrateOut(q: QmpClient, target: LiveMigrationTarget, cancelled: () => boolean, bandwidth = 0): Promise<LiveMigrationProgress> {
  const check = () => {
    if (cancelled()) throw new MigrationCancelledError('the live migration was cancelled');
  };
  const deadline = Date.now() + COMPLETION_TIMEOUT_MS;
  const jobs: string[] = [];
  if (target.nbd) {
    for (const drive of target.nbd.exports) {
      if (!(LOCAL_DRIVES as readonly string[]).includes(drive)) throw new Error(`unknown disk ${drive} in the destination's exports`);
      const job = jobOf(drive);
      await q.execute('blockdev-add', { driver: 'nbd', 'node-name': job, server: { type: 'inet', host: target.nbd.host, port: String(target.nbd.port) }, export: drive });
      await q.execute('blockdev-mirror', { 'job-id': job, device: drive, target: job, sync: drive === 'drive-root' ? 'top' : 'full', ...(bandwidth ? { speed: bandwidth } : {}) });
      jobs.push(job);
    }
    for (;;) {
      check();
      const now = (await q.execute('query-block-jobs')).filter((j) => jobs.includes(j.device));
      if (now.length < jobs.length) throw new Error('a disk\'s copy to the destination ended early (its NBD connection failed)');
      const bad = now.find((j) => j['io-status'] && j['io-status'] !== 'ok');
      if (bad) throw new Error(`the copy of disk ${bad.device.slice(4)} failed (${bad['io-status']})`);
      if (now.every((j) => j.ready)) break;
      if (Date.now() > deadline) throw new Error(`the disks were not copied within ${COMPLETION_TIMEOUT_MS / 1000} s`);
      await sleep(POLL_MS);
    }
  }
  check();
  await q.execute('migrate-set-parameters', { 'max-bandwidth': bandwidth || UNLIMITED });
  await q.execute('migrate', { uri: target.migrate_uri });
  for (;;) {
    check();
    const m = await q.execute('query-migrate');
    if (m.status === 'completed') break;
    if (m.status === 'failed' || m.status === 'cancelled') throw new Error(`the memory copy ${m.status}${m['error-desc'] ? `: ${m['error-desc']}` : ''}`);
    if (Date.now() > deadline) throw new Error(`the live migration did not complete within ${COMPLETION_TIMEOUT_MS / 1000} s`);
    await sleep(POLL_MS);
  }
  const done = await progressOf(q);
  // the guest is paused here now: each ready mirror, cancelled, finishes with its target in step
  for (const job of jobs) await q.execute('block-job-cancel', { device: job });
  await jobsGone(q, jobs);
  for (const job of jobs) await q.execute('blockdev-del', { 'node-name': job });
  return { ...done, status: 'completed', disk_processed: done.disk_total, disk_remaining: 0 };
}

async function jobsGone(q: QmpClient, jobs: string[], ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const left = (await q.execute('query-block-jobs')).filter((j) => jobs.includes(j.device));
    if (!left.length) return;
    if (Date.now() > until) throw new Error(`the disks' copy jobs did not end: ${left.map((j) => j.device).join(', ')}`);
    await sleep(POLL_MS);
  }
}

/** Source: whatever a migration started is stopped (the memory copy, the mirrors and their nodes); the guest's run state is the caller's. */
export async function cancelOutgoing(q: QmpClient): Promise<void> {
  const st = await q.execute('query-migrate').catch(() => null);
  if (st?.status && !['completed', 'failed', 'cancelled', 'none'].includes(st.status)) await q.execute('migrate_cancel').catch(() => undefined);
  const jobs = LOCAL_DRIVES.map(jobOf);
  for (const j of (await q.execute('query-block-jobs')).filter((x) => jobs.includes(x.device))) await q.execute('block-job-cancel', { device: j.device, force: true }).catch(() => undefined);
  await jobsGone(q, jobs, 30_000);
  const nodes = new Set((await q.execute('query-named-block-nodes', { flat: true })).map((n) => n['node-name']));
  for (const j of jobs) if (nodes.has(j)) await q.execute('blockdev-del', { 'node-name': j }).catch(() => undefined);
}
