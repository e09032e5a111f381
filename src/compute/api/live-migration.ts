// Live migration (Nova's os-migrateLive, admins): a running VM moves to
// another host without stopping, by QEMU's own migration, its local disks
// copied over NBD first (a block migration: Stratus's disks are never on
// shared storage, so block_migration `auto` is a block migration and `false`
// is refused as Nova refuses it without shared storage).
//
// The API checks the request as Nova's does (schemas per microversion:
// disk_over_commit below 2.25, `auto` from 2.25, `force` from 2.30 until
// 2.67; a locked server 409, a vm_state other than ACTIVE/PAUSED or a task
// running 409, an unknown host 400, volumes 400), asks the scheduler for the
// destination (the same host, none fitting, or one without an address: 400
// below 2.34; from 2.34, as Nova's asynchronous checks, 202 and a migration
// in error), then in one transaction records a `live-migration` migration
// (queued), hands the server's allocations to it and claims the flavor on
// the destination (placement, as cold migration), task `migrating`.
//
// Then `runLiveMigration`, in this process, drives the two agents through
// the request channel (agent protocol 2.6): the ports are pre-plugged on
// the destination (binding:profile migrating_to); preparing: the destination
// starts the server waiting for its state (`live_migration_prepare`, with the
// spec its host would get); running: the source copies the disks and the
// memory (`live_migration_run`; its progress read every 2 s into the
// migration); post-migrating: the destination continues it
// (`live_migration_finish`); completed: the row moves to the destination
// (ports bound there, the source's allocations released: a live migration
// needs no confirm), the source's agent removes what it held. A failure at
// any step, or an abort (DELETE of the migration: `cancelling`), leaves the
// server running on its source (`live_migration_recover`), ACTIVE, the
// migration in error (cancelled), the destination's claim released and what
// it made removed (the server is no longer placed there).
import { Type } from 'typebox';
import { sql } from 'kysely';
import { badRequest, conflict, notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import type { RouteContext } from '../../http/service.ts';
import { LIVE_ABORTABLE, LIVE_IN_PROGRESS, LIVE_OPEN, MigrationType, openMigration, returnClaims } from '../engine/migrations.ts';
import { ServerAction, type LiveMigrationProgress, type LiveMigrationTarget } from '../engine/protocol.ts';
import { releaseConsumer } from '../../placement/service.ts';
import { kindOf } from '../kinds.ts';
import { applyIntent, checkLock } from './action-intent.ts';
import type { ComputeContext } from './context.ts';
import { mv, validate } from './http.ts';
import { checkNamedHost, checkVolumes, NoValidHost, recordMove } from './server-moves.ts';
import { recordAction, reloadServer, type ServerRow } from './servers-store.ts';
import { checkState, TaskState as T, VmState as V } from './state.ts';

/** oslo's boolean strings, as Nova's parameter_types.boolean lists them. */
const BOOL_STRINGS = ['True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no'];
const NovaBool = Type.Union([Type.Boolean(), ...BOOL_STRINGS.map((b) => Type.Literal(b))]);
const Host = Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-._]*$' }), Type.Null()]);
const LiveBody = Type.Object({ host: Host, block_migration: NovaBool, disk_over_commit: NovaBool }, { additionalProperties: false });
const LiveBody225 = Type.Object({ host: Host, block_migration: Type.Union([NovaBool, Type.Literal('auto')]) }, { additionalProperties: false });
const LiveBody230 = Type.Object({ host: Host, block_migration: Type.Union([NovaBool, Type.Literal('auto')]), force: Type.Optional(NovaBool) }, { additionalProperties: false });
const truthy = (b: boolean | string) => b === true || ['true', '1', 'on', 'yes'].includes(String(b).toLowerCase());

/** How long each step may take: the destination's preparation (an image download), the copy (Nova's completion timeout and some), the finish. */
const PREPARE_TIMEOUT_MS = 600_000;
const RUN_TIMEOUT_MS = 900_000;
const STEP_TIMEOUT_MS = 60_000;
const PROGRESS_EVERY_MS = 2000;

class Cancelled extends Error {}

export async function liveMigrate(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const v = mv(rc);
  const body = v.lt('2.25') ? validate(LiveBody, arg) : v.lt('2.30') || v.ge('2.68') ? validate(LiveBody225, arg) : validate(LiveBody230, arg);
  const host = body.host ?? null;
  const force = 'force' in body ? body.force as boolean | string | undefined : undefined;
  if (force !== undefined && truthy(force) && !host) throw badRequest('Can\'t force to a non-provided destination');
  checkLock(rc.cred!, s);
  checkState('os-migrateLive', s, [V.ACTIVE, V.PAUSED], [null]);
  if (!s.host) throw conflict(`Instance ${s.id} is not ready`);
  // the server's own host is one of the conductor's checks (below), an unknown one the API's
  await checkNamedHost(ctx, s, host === s.host ? null : host, { unknown: (h) => badRequest(`Compute host ${h} could not be found.`), same: () => badRequest('') });
  await checkVolumes(ctx, s);
  // Nova's checks made by its conductor: answered at once below 2.34, and from 2.34 (asynchronous) a migration in error
  const precheck = async (err: Error): Promise<void> => {
    if (v.lt('2.34')) throw err;
    await failedPrecheck(ctx, rc, s, host, err.message);
  };
  if (body.block_migration !== 'auto' && !truthy(body.block_migration)) {
    return precheck(badRequest(`Migration pre-check error: ${s.id} is not on shared storage: Shared storage live-migration requires either shared storage or boot-from-volume with no local disks.`));
  }
  if (host === s.host) return precheck(badRequest(`Unable to migrate instance (${s.id}) to current host (${s.host}).`));
  const dest = await ctx.engine.selectDestination(s, { force: host });
  if (!dest) return precheck(new NoValidHost());
  if (!dest.host_ip) return precheck(badRequest(`Migration pre-check error: host ${dest.hostname} has no address to receive the server on.`));
  const destination = { ...dest, host_ip: dest.host_ip };
  let migration = '';
  await applyIntent(ctx, rc, s, { action: 'live-migration', event: 'compute_live_migration', taskState: T.MIGRATING, expectedVmState: [V.ACTIVE, V.PAUSED] }, {},
    async (tx) => { migration = await recordMove(tx, s, { type: MigrationType.live, status: 'queued', dest: destination }); });
  void runLiveMigration(ctx, await reloadServer(ctx.db, s.id), migration, destination)
    .catch((err: unknown) => ctx.log.error({ err, server: s.id, migration }, 'live migration failed to settle'));
}

/** A pre-check that failed after 2.34: Nova answers 202 and its migration is in error; the server stays as it was. */
async function failedPrecheck(ctx: ComputeContext, rc: RouteContext, s: ServerRow, host: string | null, why: string): Promise<void> {
  const now = nowIso();
  await ctx.db.transaction().execute(async (tx) => {
    await tx.insertInto('compute_migrations').values({
      uuid: crypto.randomUUID(), server_id: s.id, project_id: s.project_id, user_id: s.user_id, migration_type: MigrationType.live, status: 'error',
      source_compute: s.host, dest_compute: host, source_node: s.host, dest_node: host, dest_host: null,
      old_flavor: s.flavor, new_flavor: s.flavor, old_vm_state: s.vm_state, created_at: now, updated_at: now,
    }).execute();
    await recordAction(tx, s, rc.cred!, rc.req.id, { action: 'live-migration', event: 'conductor_live_migrate_instance' }, s.host);
  });
  ctx.log.warn({ server: s.id, err: why }, 'live migration pre-check failed');
}

/** A live migration's status moved on, if it is still `from` (an abort may have made it cancelling). */
async function advance(ctx: ComputeContext, migration: string, from: string, to: string, progress?: LiveMigrationProgress): Promise<void> {
  const r = await ctx.db.updateTable('compute_migrations').set({ status: to, updated_at: nowIso(), ...(progress ? { progress: JSON.stringify(progress) } : {}) })
    .where('uuid', '=', migration).where('status', '=', from).executeTakeFirst();
  if (!Number(r.numUpdatedRows)) throw new Cancelled(`the migration left ${from}`);
}

/** Runs a recorded live migration to its end (completed, or error/cancelled with the server on its source). */
export async function runLiveMigration(ctx: ComputeContext, s: ServerRow, migration: string, dest: { hostname: string; host_ip: string }): Promise<void> {
  const source = s.host!;
  let handedOver = false;
  try {
    await advance(ctx, migration, 'queued', 'preparing');
    // the ports are plugged on the destination too (its network, taps and security groups) before the guest arrives there
    await ctx.network?.migrating(s.id, dest.hostname);
    ctx.engine.notify(dest.hostname);
    const resource = await ctx.engine.desiredOn(s.id, dest.hostname);
    if (!resource) throw new Error('the server is gone');
    const target = await ctx.engine.request(s.id, ServerAction.migrationPrepare, { migration, version: resource.version, spec: resource.spec, listen: dest.host_ip },
      PREPARE_TIMEOUT_MS, { host: dest.hostname }) as LiveMigrationTarget;
    await advance(ctx, migration, 'preparing', 'running');
    let running = true;
    const copy = ctx.engine.request(s.id, ServerAction.migrationRun, { migration, target }, RUN_TIMEOUT_MS) as Promise<LiveMigrationProgress>;
    copy.finally(() => { running = false; }).catch(() => undefined);
    void (async () => {
      while (running) {
        await new Promise((r) => setTimeout(r, PROGRESS_EVERY_MS));
        if (!running) break;
        const p = await ctx.engine.request(s.id, ServerAction.migrationProgress, { migration }, STEP_TIMEOUT_MS).catch(() => null);
        if (p && running) await ctx.db.updateTable('compute_migrations').set({ progress: JSON.stringify(p), updated_at: nowIso() }).where('uuid', '=', migration).where('status', '=', 'running').execute();
      }
    })().catch(() => undefined);
    const done = await copy;
    handedOver = true;
    await advance(ctx, migration, 'running', 'post-migrating', done);
    await ctx.engine.request(s.id, ServerAction.migrationFinish, { migration }, STEP_TIMEOUT_MS, { host: dest.hostname });
    // the server is the destination's: the row moves there and the source's claim (the migration's) goes
    const moved = await ctx.db.transaction().execute(async (tx) => {
      const m = await tx.updateTable('compute_migrations').set({ status: 'completed', updated_at: nowIso() })
        .where('uuid', '=', migration).where('status', '=', 'post-migrating').executeTakeFirst();
      if (!Number(m.numUpdatedRows)) return false;
      const r = await tx.updateTable('compute_servers').set({ host: dest.hostname, task_state: null, updated_at: nowIso(), version: sql`version + 1` })
        .where('id', '=', s.id).where('deleted_at', 'is', null).where('task_state', '=', T.MIGRATING).executeTakeFirst();
      if (!Number(r.numUpdatedRows)) throw new Cancelled('the server changed while it migrated');
      await releaseConsumer(tx, migration);
      return true;
    });
    if (!moved) throw new Cancelled('the migration left post-migrating');
    await ctx.network?.bind(s.id, dest.hostname, kindOf(s.kind).vifType).catch((err: Error) => ctx.log.warn({ server: s.id, err: err.message }, 'binding a live-migrated server\'s ports failed'));
    ctx.engine.notify(source);
    ctx.engine.notify(dest.hostname);
    await ctx.serverEvents([s.id]);
    ctx.log.info({ server: s.id, migration, from: source, to: dest.hostname }, 'live migration completed');
  } catch (err) {
    ctx.log.warn({ server: s.id, migration, err: err instanceof Error ? err.message : String(err), handedOver }, 'live migration failed: the server stays on its source');
    await undoLiveMigration(ctx, s, migration);
  }
}

/**
 * A live migration that failed or was cancelled: the migration in error (or
 * cancelled, when an abort asked for it), the claims back as they were, the
 * task cleared; the source's copy runs on (`recover`: after a hand-over the
 * source's guest is paused), the destination's goes (the server is no
 * longer placed there), the ports are no longer plugged there. Once.
 */
export async function undoLiveMigration(ctx: ComputeContext, s: ServerRow, migration: string): Promise<void> {
  const ended = await ctx.db.transaction().execute(async (tx) => {
    const m = await tx.selectFrom('compute_migrations').select(['status', 'dest_compute']).where('uuid', '=', migration).executeTakeFirst();
    if (!m || !(LIVE_OPEN as readonly string[]).includes(m.status)) return null;
    await tx.updateTable('compute_migrations').set({ status: m.status === 'cancelling' ? 'cancelled' : 'error', updated_at: nowIso() })
      .where('uuid', '=', migration).where('status', '=', m.status).execute();
    const r = await tx.updateTable('compute_servers').set({ task_state: null, updated_at: nowIso(), version: sql`version + 1` })
      .where('id', '=', s.id).where('deleted_at', 'is', null).where('host', '=', s.host).where('task_state', '=', T.MIGRATING).executeTakeFirst();
    // a server deleted or reset meanwhile: whoever changed it settled the claims
    if (Number(r.numUpdatedRows)) await returnClaims(tx, s.id, migration);
    return m;
  });
  await endLiveMigrationOnHosts(ctx, s, migration);
  if (ended?.dest_compute) ctx.engine.notify(ended.dest_compute);
  await ctx.serverEvents([s.id]);
}

/**
 * A live migration ended on the database's side (undone, or an admin's
 * resetState): its copies stop on the source, whose guest runs on
 * (`recover`), and the ports are no longer plugged on the destination.
 */
export async function endLiveMigrationOnHosts(ctx: ComputeContext, s: ServerRow, migration: string): Promise<void> {
  // a copy still under way stops (the source's run then recovers by itself); the recover covers a hand-over already made
  void ctx.engine.request(s.id, ServerAction.migrationAbort, { migration }, STEP_TIMEOUT_MS).catch(() => undefined);
  await ctx.engine.request(s.id, ServerAction.migrationRecover, { migration }, STEP_TIMEOUT_MS)
    .catch((err: Error) => ctx.log.warn({ server: s.id, migration, err: err.message }, 'the source did not take the server back'));
  await ctx.network?.migrating(s.id, null).catch(() => undefined);
  ctx.engine.notify(s.host);
}

/** A server's live migration by its id (Nova's integer id), in progress; else Nova's 404 (abort, show) or 400 (force_complete). */
export async function liveMigrationOf(ctx: ComputeContext, s: ServerRow, id: string, missing: (msg: string) => Error) {
  const m = /^\d{1,9}$/.test(id)
    ? await ctx.db.selectFrom('compute_migrations').selectAll().where('id', '=', Number(id)).where('server_id', '=', s.id).executeTakeFirst()
    : undefined;
  if (!m) throw missing(`Migration ${id} not found for instance ${s.id}`);
  return m;
}

/** The in-progress live migrations of servers (GET /servers/{id}/migrations), in Nova's view. */
export async function inProgress(ctx: ComputeContext, serverId: string, id?: number) {
  let qb = ctx.db.selectFrom('compute_migrations').selectAll().where('server_id', '=', serverId).where('migration_type', '=', MigrationType.live)
    .where('status', 'in', [...LIVE_IN_PROGRESS]);
  if (id !== undefined) qb = qb.where('id', '=', id);
  return qb.orderBy('id', 'desc').execute();
}

/** POST /servers/{id}/migrations/{mid}/action {force_complete}: the source pauses the guest so that the copy converges (Nova's, without post-copy). */
export async function forceComplete(ctx: ComputeContext, rc: RouteContext, s: ServerRow, migrationId: string): Promise<void> {
  checkLock(rc.cred!, s);
  checkState('force_complete', s, [V.ACTIVE], [T.MIGRATING]);
  const m = await liveMigrationOf(ctx, s, migrationId, badRequest);
  if (m.migration_type !== MigrationType.live || m.status !== 'running') {
    throw badRequest(`Migration ${m.id} state of instance ${s.id} is ${m.status}. Cannot force complete while the migration is in this state.`);
  }
  await recordAction(ctx.db, s, rc.cred!, rc.req.id, { action: 'live_migration_force_complete', event: 'compute_live_migration_force_complete' }, s.host);
  void ctx.engine.request(s.id, ServerAction.migrationForceComplete, { migration: m.uuid }, STEP_TIMEOUT_MS)
    .catch((err: Error) => ctx.log.warn({ server: s.id, migration: m.uuid, err: err.message }, 'forcing a live migration to complete failed'));
}

/**
 * DELETE /servers/{id}/migrations/{mid} (2.24): the migration cancelling;
 * running, the source's copies are cancelled (`live_migration_abort`); queued
 * or preparing (2.65), its run stops before the copy. Either way the run
 * ends it cancelled, the server on its source.
 */
export async function abortLiveMigration(ctx: ComputeContext, rc: RouteContext, s: ServerRow, migrationId: string): Promise<void> {
  checkLock(rc.cred!, s);
  checkState('abort live migration', s, [V.ACTIVE], [T.MIGRATING]);
  const m = await liveMigrationOf(ctx, s, migrationId, notFound);
  const allowed: readonly string[] = mv(rc).ge('2.65') ? LIVE_ABORTABLE : ['running'];
  if (m.migration_type !== MigrationType.live || !allowed.includes(m.status)) {
    throw badRequest(`Migration ${m.id} state of instance ${s.id} is ${m.status}. Cannot abort live migration while the migration is in this state.`);
  }
  const r = await ctx.db.updateTable('compute_migrations').set({ status: 'cancelling', updated_at: nowIso() }).where('id', '=', m.id).where('status', '=', m.status).executeTakeFirst();
  if (!Number(r.numUpdatedRows)) throw badRequest(`Migration ${m.id} state of instance ${s.id} changed. Cannot abort live migration while the migration is in this state.`);
  await recordAction(ctx.db, s, rc.cred!, rc.req.id, { action: 'live_migration_abort', event: 'compute_live_migration_abort' }, s.host);
  if (m.status === 'running') {
    void ctx.engine.request(s.id, ServerAction.migrationAbort, { migration: m.uuid }, STEP_TIMEOUT_MS)
      .catch((err: Error) => ctx.log.warn({ server: s.id, migration: m.uuid, err: err.message }, 'aborting a live migration on its source failed'));
  }
}

/** Live migrations whose run this process (or one that restarted) never finished: undone, once older than any run could take. */
export async function abandonLiveMigrations(ctx: ComputeContext, now = Date.now()): Promise<number> {
  const cutoff = new Date(now - PREPARE_TIMEOUT_MS - RUN_TIMEOUT_MS - 2 * STEP_TIMEOUT_MS).toISOString();
  const stale = await ctx.db.selectFrom('compute_migrations as m').innerJoin('compute_servers as s', 's.id', 'm.server_id').selectAll('s')
    .select(['m.uuid as migration_uuid']).where((eb) => openMigration(eb, [MigrationType.live], 'm')).where('m.created_at', '<', cutoff).execute();
  for (const r of stale) {
    const { migration_uuid: migration, ...row } = r;
    ctx.log.warn({ server: row.id, migration }, 'a live migration never finished; it was undone');
    await undoLiveMigration(ctx, row, migration);
  }
  return stale.length;
}
