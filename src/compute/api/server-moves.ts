// The server actions that move a server's resources: resize with
// confirmResize/revertResize, shelve, shelveOffload and unshelve, and rescue
// and unrescue (the server booted from another disk, its own kept beside it).
//
// Resize (one host, Nova's allow_resize_to_same_host): the API checks the new
// flavor (Nova's 400s: unknown flavor, the same flavor, a smaller disk; quota's
// 403), then in one transaction records a `resize` migration, hands the
// server's placement allocations to the migration (Nova's move_allocations:
// the old flavor stays claimed until confirm) and claims the new flavor for
// the server on its host (none fits: Nova's 400 NoValidHost). The row gets the
// new flavor and task_state resize_prep; its host's agent applies the flavor
// (a container's cgroup limits in place, a VM stopped and started with the new
// memory and vCPUs and its disk grown) and reports, and the lifecycle makes it
// VERIFY_RESIZE (vm_state resized, migration finished). confirmResize releases
// the migration's allocations (vm_state back to what it was, active or
// stopped); revertResize puts the old flavor and its allocations back (task
// resize_reverting until the agent has applied it; migration reverted).
//
// Shelve: a snapshot `<name>-shelved` through the same agent request as
// createImage, then SHELVED (the server stopped on its host) or, with
// shelvedOffloadTime 0 (Nova's default), SHELVED_OFFLOADED at once: no host,
// claims released, ports unbound (they and their addresses are kept), the
// agent removes what the server held. Unshelve of an offloaded server sends
// it back to the scheduler (task unshelving, optionally to another zone at
// 2.77) and its disk is made from the shelve snapshot (`disk_image`); a
// shelved one is started where it is. The snapshot is deleted once the
// server runs again (service.ts).
import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { sql, type Transaction } from 'kysely';
import { ApiError, badRequest, conflict, notFound } from '../../common/errors.ts';
import type { Tables } from '../../db/tables.ts';
import { nowIso } from '../../common/ids.ts';
import type { RouteContext } from '../../http/service.ts';
import { claimOnProvider, moveConsumer, releaseConsumer } from '../../placement/service.ts';
import { agentImage } from '../engine/desired.ts';
import { MigrationType, MOVE_IN_FLIGHT, returnClaims } from '../engine/migrations.ts';
import { PowerState } from '../schema.ts';
import { moveServerVolumes } from '../engine/server-volumes.ts';
import { hostIsUp, NO_VALID_HOST, requestOf } from '../engine/scheduler.ts';
import { isolatedKind, kindOf } from '../kinds.ts';
import { applyIntent, checkLock, notReady } from './action-intent.ts';
import type { ComputeContext } from './context.ts';
import { extraSpecsOf, findFlavor } from './flavors.ts';
import { isUuid, mv, validate } from './http.ts';
import { overQuota, projectLimits, serverUsage, within } from './quota.ts';
import { generatePassword, idFromHref, kindOfImage, knownZones } from './servers.ts';
import { reloadServer, type ServerRow } from './servers-store.ts';
import { parseFlavor } from './servers-view.ts';
import { checkState, TaskState as T, VmState as V } from './state.ts';

export const MOVE_ACTIONS = ['migrate', 'evacuate', 'resize', 'confirmResize', 'revertResize', 'shelve', 'shelveOffload', 'unshelve', 'rescue', 'unrescue'] as const;
export type MoveAction = (typeof MOVE_ACTIONS)[number];
export const isMoveAction = (a: string): a is MoveAction => (MOVE_ACTIONS as readonly string[]).includes(a);

const NullOrEmpty = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })]);
const ResizeBody = Type.Object({
  flavorRef: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 })]),
  'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
}, { additionalProperties: false });
// 2.56: the destination host may be named (null: the scheduler's choice)
const MigrateBody = Type.Union([Type.Null(), Type.Object({
  host: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\s]+$' }), Type.Null()])),
}, { additionalProperties: false })]);
// onSharedStorage until 2.14, force from 2.29 until 2.68 (Nova's schemas; Stratus never bypasses the scheduler's checks)
const EvacuateBody = Type.Object({
  host: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])),
  adminPass: Type.Optional(Type.String()),
  onSharedStorage: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
  force: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
}, { additionalProperties: false });
const RescueBody = Type.Union([Type.Null(), Type.Object({
  adminPass: Type.Optional(Type.String()),
  rescue_image_ref: Type.Optional(Type.String()),
}, { additionalProperties: false })]);
const UnshelveBody = Type.Union([Type.Null(), Type.Object({
  availability_zone: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])),
}, { additionalProperties: false })]);

export async function moveAction(ctx: ComputeContext, rc: RouteContext, s: ServerRow, action: MoveAction, arg: unknown): Promise<unknown> {
  switch (action) {
    case 'migrate': return migrate(ctx, rc, s, arg);
    case 'evacuate': return evacuate(ctx, rc, s, arg);
    case 'resize': return resize(ctx, rc, s, arg);
    case 'confirmResize': return confirmResize(ctx, rc, s, arg);
    case 'revertResize': return revertResize(ctx, rc, s, arg);
    case 'shelve': return shelve(ctx, rc, s, arg);
    case 'shelveOffload': return shelveOffload(ctx, rc, s, arg);
    case 'unshelve': return unshelve(ctx, rc, s, arg);
    case 'rescue': return rescue(ctx, rc, s, arg);
    case 'unrescue': return unrescue(ctx, rc, s, arg);
  }
}

/** The open resize or cold migration of a server (finished: waiting for confirm or revert). */
async function openResize(ctx: ComputeContext, serverId: string, statuses: string[]) {
  return ctx.db.selectFrom('compute_migrations').selectAll().where('server_id', '=', serverId).where('migration_type', 'in', [MigrationType.resize, MigrationType.migration])
    .where('status', 'in', statuses).orderBy('id', 'desc').executeTakeFirst();
}

/**
 * Cold migration (Nova's migrate action; 2.56: `host`): the server moves to
 * another host with its flavor. The scheduler picks the host (never the
 * server's own: a named one equal to it is Nova's 400 "Cannot migrate to the
 * host where the server exists.", an unknown one 400 ComputeHostNotFound,
 * none fitting 400 NoValidHost), and in one transaction a `migration` record
 * is written, the server's allocations go to the migration (the source kept
 * claimed) and the flavor is claimed on the destination for the server: a
 * refusal leaves nothing behind. Task resize_migrating: the source's agent
 * stops the server (as Nova powers it off) and copies the disk into a hidden image (the snapshot request: a VM's qcow2
 * with its backing image folded in, a container's image with its writable
 * layer as one more layer); then the row moves to the destination (task
 * resize_finish, its `disk_image` the copy, its ports bound there, addresses
 * kept) and the destination's agent builds it from the copy: VERIFY_RESIZE.
 * The source keeps the server stopped, its disk intact, until confirm (it is
 * gone from the source, the source's claim released) or revert (back there).
 * A copy that fails puts everything back (migration error, task cleared).
 */
async function migrate(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const cred = rc.cred!;
  // before 2.56 Nova reads no body (null); from it, only `host`
  const body = mv(rc).lt('2.56') ? null : validate(MigrateBody, arg ?? null);
  checkLock(cred, s);
  checkState('migrate', s, [V.ACTIVE, V.STOPPED], [null]);
  if (!s.host) throw notReady(s);
  const force = body?.host ?? null;
  await checkNamedHost(ctx, s, force, { same: () => badRequest('Cannot migrate to the host where the server exists.'), unknown: (h) => badRequest(`Compute host ${h} could not be found.`) });
  // the disk goes through the image service: a server without one of its own (volume-backed) or with volumes attached is not moved yet
  await checkMovable(ctx, s, 'migrate');
  await startMove(ctx, rc, s, { type: MigrationType.migration, action: 'migrate', force });
}

/**
 * Evacuate (Nova's os-evacuate, admins): a server whose host is down
 * (forced down, or not heard from within the service down time) is rebuilt
 * on another host from its image: its disk on the dead host is not reached.
 * Nova's refusals: the host still up, 400 "Compute service of <host> is
 * still in use."; a named host unknown, 404 "Compute host <host> not
 * found."; the server's own host named, 400; none fitting, 400 NoValidHost;
 * a vm_state other than ACTIVE/SHUTOFF/ERROR or a task running, 409. In one
 * transaction an `evacuation` migration (status accepted, done once the new
 * host reports it built, failed on an error), the server's allocations on the
 * dead host moved to it (released when it is done), the flavor claimed on
 * the new host; the row moves there at once (task rebuilding, ports rebound,
 * addresses kept). The dead host, should it come back, no longer has the
 * server placed on it: its agent removes what is left. From 2.95 the server
 * is left stopped there, as Nova does. 200, with `adminPass` below 2.14.
 */
async function evacuate(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<unknown> {
  const v = mv(rc);
  const body = validate(EvacuateBody, arg ?? {});
  if (v.ge('2.14') && body.onSharedStorage !== undefined) throw badRequest(`Invalid input for field/attribute evacuate. Value: ${JSON.stringify(arg)}. Additional properties are not allowed ('onSharedStorage' was unexpected)`);
  if ((v.lt('2.29') || v.ge('2.68')) && body.force !== undefined) throw badRequest(`Invalid input for field/attribute evacuate. Value: ${JSON.stringify(arg)}. Additional properties are not allowed ('force' was unexpected)`);
  const force = body.host ?? null;
  await checkNamedHost(ctx, s, force, { unknown: (h) => notFound(`Compute host ${h} not found.`), same: () => badRequest('The target host can\'t be the same one.') });
  checkLock(rc.cred!, s);
  checkState('evacuate', s, [V.ACTIVE, V.STOPPED, V.ERROR], [null]);
  if (!s.host) throw notReady(s);
  const source = await ctx.db.selectFrom('compute_hosts').selectAll().where('hostname', '=', s.host).executeTakeFirst();
  if (source && hostIsUp(source, ctx.config.serviceDownTime)) throw badRequest(`Compute service of ${s.host} is still in use.`);
  await checkVolumes(ctx, s);
  const dest = await ctx.engine.selectDestination(s, { force });
  if (!dest) throw new NoValidHost();
  // rebuilt from the server's image (Nova's image_ref), never from a disk image a shelve or a move left on the row (deleted since)
  const set: Record<string, unknown> = { host: dest.hostname, availability_zone: s.availability_zone, disk_image: null };
  const intent = { action: 'evacuate', event: 'compute_rebuild_instance', taskState: T.REBUILDING, expectedVmState: [V.ACTIVE, V.STOPPED, V.ERROR], ...(v.ge('2.95') ? { desiredPower: 'stopped' } : {}) };
  await applyIntent(ctx, rc, s, intent, set, (tx) => recordMove(tx, s, { type: MigrationType.evacuation, status: 'accepted', dest }).then(() => undefined));
  await ctx.network?.bind(s.id, dest.hostname, kindOf(s.kind).vifType).catch((err: Error) => ctx.log.warn({ server: s.id, err: err.message }, 'binding an evacuated server\'s ports failed'));
  ctx.engine.notify(dest.hostname);
  rc.reply.code(200);
  return v.lt('2.14') && ctx.config.enableInstancePassword ? { adminPass: body.adminPass ?? generatePassword() } : undefined;
}

/** What no move to another host takes yet: a disk that is not the server's own (volume-backed) or volumes attached (Nova's 400). */
export async function checkVolumes(ctx: ComputeContext, s: ServerRow): Promise<void> {
  if (!s.image_id) throw badRequest(`Instance ${s.id} is volume-backed: moving it to another host is not served yet.`);
  const volumes = await ctx.db.selectFrom('compute_block_device_mappings').select('id').where('server_id', '=', s.id).executeTakeFirst();
  if (volumes) throw badRequest(`Instance ${s.id} has volumes attached: moving it to another host is not served yet.`);
}

/** What a cold move (its disk copied through an image) cannot take: checkVolumes, and no image service to copy through. */
async function checkMovable(ctx: ComputeContext, s: ServerRow, action: string): Promise<void> {
  await checkVolumes(ctx, s);
  if (!ctx.images.available) throw conflict(`Cannot '${action}' instance ${s.id}: images cannot be created.`);
}

/**
 * A destination host named by the caller (null: the scheduler's choice):
 * unknown, or the server's own, is the action's error (Nova words them per action).
 */
export async function checkNamedHost(ctx: ComputeContext, s: ServerRow, host: string | null, err: { unknown: (host: string) => ApiError; same: () => ApiError }): Promise<void> {
  if (host === null) return;
  const known = await ctx.db.selectFrom('compute_hosts').select('id').where('hostname', '=', host).executeTakeFirst();
  if (!known) throw err.unknown(host);
  if (host === s.host) throw err.same();
}

/** Nova's NoValidHost (400): the scheduler found no host, or the one chosen is full by the time it is claimed. A type of its own, so that a resize can fall back on it. */
export class NoValidHost extends ApiError {
  constructor() {
    super('BadRequest', NO_VALID_HOST);
  }
}

/**
 * A move's record and claims, in the caller's transaction: the migration
 * (`uuid`, type and first status; a cold move's disk images), the server's
 * allocations moved to it (Nova's move_allocations: the source stays
 * claimed by the migration) and `flavor` (default the server's) claimed on
 * `dest` for the server (full by now: NoValidHost, the transaction undone).
 */
export async function recordMove(tx: Transaction<Tables>, s: ServerRow, m: {
  type: MigrationType; status: string; dest: { id: string; hostname: string; host_ip: string | null }; uuid?: string; flavor?: string; oldDiskImage?: string | null;
}): Promise<string> {
  const uuid = m.uuid ?? randomUUID();
  const now = nowIso();
  const flavor = m.flavor ?? s.flavor;
  await tx.insertInto('compute_migrations').values({
    uuid, server_id: s.id, project_id: s.project_id, user_id: s.user_id, migration_type: m.type, status: m.status,
    source_compute: s.host, dest_compute: m.dest.hostname, source_node: s.host, dest_node: m.dest.hostname, dest_host: m.dest.host_ip || null,
    old_flavor: s.flavor, new_flavor: flavor, old_vm_state: s.vm_state, created_at: now, updated_at: now,
    ...(m.oldDiskImage !== undefined ? { disk_image: null, old_disk_image: m.oldDiskImage } : {}),
  }).execute();
  await moveConsumer(tx, s.id, uuid);
  const placed = await claimOnProvider(tx, m.dest.id, [{ item: s.id, consumer: s.id, owner: { project_id: s.project_id, user_id: s.user_id }, resources: requestOf({ flavor, image_id: s.image_id }).resources }], async () => true);
  if (!placed.length) throw new NoValidHost();
  return uuid;
}

/**
 * A move to another host (a cold migration, or a resize the server's host has
 * no room for): the destination chosen for `flavor` (the server's own, or
 * the resize's new one with `set`, the row's new flavor fields, written at
 * once), the migration recorded, the source's claim moved to it and the
 * flavor claimed on the destination, in one transaction; then the copy.
 */
async function startMove(ctx: ComputeContext, rc: RouteContext, s: ServerRow,
  o: { type: typeof MigrationType.migration | typeof MigrationType.resize; action: string; force: string | null; flavor?: string; set?: Record<string, unknown> }): Promise<void> {
  const flavor = o.flavor ?? s.flavor;
  const dest = await ctx.engine.selectDestination({ ...s, flavor }, { force: o.force });
  if (!dest) throw new NoValidHost();
  const migration = randomUUID();
  await applyIntent(ctx, rc, s, { action: o.action, event: 'compute_prep_resize', taskState: T.RESIZE_MIGRATING, expectedVmState: [V.ACTIVE, V.STOPPED] }, o.set ?? {},
    (tx) => recordMove(tx, s, { uuid: migration, type: o.type, status: 'migrating', dest, flavor, oldDiskImage: s.disk_image }).then(() => undefined));
  void copyDisk(ctx, s, migration, dest.hostname).catch((err: unknown) => ctx.log.error({ err, server: s.id }, 'moving a server failed'));
}

/** The migration's disk copy off the source (the snapshot request), then the server handed to the destination; a failure undoes the move. */
async function copyDisk(ctx: ComputeContext, s: ServerRow, migration: string, dest: string): Promise<void> {
  const kind = kindOf(s.kind);
  const base = s.image_id ? await ctx.images.getRecord(s.image_id) : undefined;
  let imageId: string | null = null;
  try {
    // the source stops it first (the spec's power during resize_migrating): the copy is of a disk at rest
    for (const end = Date.now() + STOP_WAIT_MS; ;) {
      const now = await ctx.db.selectFrom('compute_servers').select(['task_state', 'power_state', 'deleted_at']).where('id', '=', s.id).executeTakeFirst();
      if (!now || now.deleted_at !== null || now.task_state !== T.RESIZE_MIGRATING) throw new Error('the server changed while it was stopped for its move');
      if (now.power_state !== PowerState.RUNNING && now.power_state !== PowerState.PAUSED && now.power_state !== PowerState.SUSPENDED) break;
      if (Date.now() > end) throw new Error(`the source host did not stop the server within ${STOP_WAIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const owner = { projectId: s.project_id, userId: s.user_id } as Parameters<typeof ctx.images.createSnapshot>[0];
    const image = await ctx.images.createSnapshot(owner, {
      name: `${s.name}-migration-${migration.slice(0, 8)}`, hidden: true,
      containerFormat: kind.snapshot.containerFormat, diskFormat: kind.snapshot.diskFormat,
      minDisk: Math.max(parseFlavor(s).disk, base?.minDisk ?? 0), minRam: base?.minRam ?? 0,
      properties: { image_type: 'migration', instance_uuid: s.id, migration_uuid: migration, ...(s.image_id ? { base_image_ref: s.image_id } : {}) },
    });
    imageId = image.id;
    await ctx.engine.request(s.id, 'snapshot', { image_id: image.id, name: image.name }, ctx.config.snapshotTimeoutMs);
    const copy = await ctx.images.getRecord(image.id);
    if (!copy || copy.status !== 'active') throw new Error(`the copy of the disk (image ${image.id}) is ${copy?.status ?? 'gone'}`);
    const disk = JSON.stringify(agentImage({
      id: copy.id, name: copy.name, status: copy.status, container_format: copy.containerFormat, disk_format: copy.diskFormat, size: copy.size, checksum: null,
    }));
    // the server moves to the destination: built there from the copy (task resize_finish until its agent reports it)
    const moved = await ctx.db.transaction().execute(async (tx) => {
      const m = await tx.updateTable('compute_migrations').set({ status: 'post-migrating', disk_image: disk, updated_at: nowIso() })
        .where('uuid', '=', migration).where('status', '=', 'migrating').executeTakeFirst();
      if (!Number(m.numUpdatedRows)) return false;
      const r = await tx.updateTable('compute_servers').set({ host: dest, disk_image: disk, task_state: T.RESIZE_FINISH, updated_at: nowIso(), version: sql`version + 1` })
        .where('id', '=', s.id).where('deleted_at', 'is', null).where('task_state', '=', T.RESIZE_MIGRATING).executeTakeFirst();
      if (!Number(r.numUpdatedRows)) throw new MoveAbandoned();
      return true;
    }).catch((e: unknown) => { if (e instanceof MoveAbandoned) return false; throw e; });
    if (!moved) throw new Error('the server changed while its disk was copied');
    await ctx.network?.bind(s.id, dest, kind.vifType);
    ctx.engine.notify(s.host);
    ctx.engine.notify(dest);
    await ctx.serverEvents([s.id]);
  } catch (err) {
    ctx.log.warn({ server: s.id, migration, err: err instanceof Error ? err.message : String(err) }, 'cold migration failed: undone');
    if (imageId) await ctx.images.deleteById(imageId).catch(() => undefined);
    await undoMove(ctx, s, migration);
  }
}

class MoveAbandoned extends Error {}

/** How long a cold migration waits for the source to stop the server (a guest ignoring the ACPI power-down is stopped hard after Nova's 60 s). */
export const STOP_WAIT_MS = 180_000;

/** A move whose copy failed (or stalled: janitor.ts): the destination's claim released, the source's given back to the server, the task cleared, the migration error. */
export async function undoMove(ctx: ComputeContext, s: ServerRow, migration: string): Promise<void> {
  await ctx.db.transaction().execute(async (tx) => {
    const m = await tx.updateTable('compute_migrations').set({ status: 'error', updated_at: nowIso() })
      .where('uuid', '=', migration).where('status', 'in', [...MOVE_IN_FLIGHT]).executeTakeFirst();
    if (!Number(m.numUpdatedRows)) return;
    const r = await tx.updateTable('compute_servers').set({ host: s.host, task_state: null, disk_image: s.disk_image, updated_at: nowIso(), version: sql`version + 1` })
      .where('id', '=', s.id).where('deleted_at', 'is', null).where('task_state', 'in', [T.RESIZE_MIGRATING, T.RESIZE_FINISH]).executeTakeFirst();
    // a server deleted or reset meanwhile: whoever changed it settled the claims (release.ts, endOpenMigrations)
    if (Number(r.numUpdatedRows)) await returnClaims(tx, s.id, migration);
  });
  await ctx.network?.bind(s.id, s.host, kindOf(s.kind).vifType).catch(() => undefined);
  ctx.engine.notify(s.host);
  await ctx.serverEvents([s.id]);
}

async function resize(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const cred = rc.cred!;
  const body = validate(ResizeBody, arg);
  checkLock(cred, s);
  checkState('resize', s, [V.ACTIVE, V.STOPPED], [null]);
  if (!s.host) throw notReady(s);
  const flavorId = typeof body.flavorRef === 'number' ? String(body.flavorRef) : idFromHref(body.flavorRef);
  const flavor = await findFlavor(ctx.db, cred, flavorId);
  if (!flavor || flavor.disabled) throw badRequest('Unable to locate requested flavor.');
  const old = parseFlavor(s);
  if (String(old.id ?? s.flavor_id) === flavor.id) throw badRequest('When resizing, instances must change flavor!');
  // a root disk is never shrunk (nor a container's disk limit lowered)
  if (flavor.disk === 0 && old.disk !== 0 && kindOf(s.kind).rootDisk && s.image_id) throw badRequest('Server disk was unable to be resized because: Resize to zero disk flavor is not allowed.');
  if (flavor.disk < old.disk && flavor.disk !== 0) throw badRequest('Server disk was unable to be resized because: Unable to resize disk down.');
  // the image's minimums hold for the new flavor too (Nova's _validate_flavor_image_nostatus)
  const image = s.image_id ? await ctx.images.getRecord(s.image_id) : undefined;
  if (image && image.minRam > flavor.ram) throw badRequest(`Flavor's memory is too small for requested image.`);
  if (image && kindOf(s.kind).rootDisk && flavor.disk > 0 && image.minDisk > flavor.disk) {
    throw badRequest(`Flavor's disk is too small for requested image. Flavor disk is ${flavor.disk * 1024 ** 3} bytes, minimum required by image is ${image.minDisk * 1024 ** 3} bytes.`);
  }
  // quota for the growth (Nova's _check_quota_for_upsize)
  const dCores = flavor.vcpus - s.vcpus;
  const dRam = flavor.ram - s.memory_mb;
  if (dCores > 0 || dRam > 0) {
    const limits = await projectLimits(ctx.db, s.project_id);
    const used = await serverUsage(ctx.db, s.project_id);
    const over = ([['cores', dCores, used.cores, limits.cores], ['ram', dRam, used.ram, limits.ram]] as const).filter(([, d, u, l]) => d > 0 && !within(l, u, d));
    if (over.length) throw overQuota(over.map((o) => o[0]), over.map((o) => o[1]), over.map((o) => o[2]), over.map((o) => o[3]));
  }
  const embedded = {
    id: flavor.id, name: flavor.name, vcpus: flavor.vcpus, ram: flavor.ram, disk: flavor.disk, ephemeral: flavor.ephemeral, swap: flavor.swap,
    extra_specs: await extraSpecsOf(ctx.db, flavor.id),
  };
  // a flavor for another kind of server (stratus:kind, or hw:isolation=vm for a container) fits no host this server can stay on
  const wantKind = embedded.extra_specs['stratus:kind'] ?? isolatedKind(s.kind, embedded.extra_specs);
  if (wantKind && wantKind !== s.kind) throw new NoValidHost();
  const newFlavor = JSON.stringify(embedded);
  const host = await ctx.db.selectFrom('compute_hosts').selectAll().where('hostname', '=', s.host).executeTakeFirst();
  if (!host) throw new NoValidHost();
  const set: Record<string, unknown> = { flavor: newFlavor, flavor_id: flavor.id, vcpus: flavor.vcpus, memory_mb: flavor.ram };
  if (body['OS-DCF:diskConfig'] !== undefined) set.disk_config = body['OS-DCF:diskConfig'];
  try {
    await resizeHere(ctx, rc, s, set, host, newFlavor);
  } catch (e) {
    // no room left on its host: resized on another one, by the cold migration's path (a server that cannot move keeps Nova's NoValidHost)
    if (!(e instanceof NoValidHost)) throw e;
    try {
      await checkMovable(ctx, s, 'resize');
    } catch {
      throw e;
    }
    await startMove(ctx, rc, s, { type: MigrationType.resize, action: 'resize', force: null, flavor: newFlavor, set });
  }
}

/** A resize on the server's own host (Nova's allow_resize_to_same_host): the new flavor claimed beside the old one, which the migration holds. */
async function resizeHere(ctx: ComputeContext, rc: RouteContext, s: ServerRow, set: Record<string, unknown>, host: { id: string; host_ip: string }, newFlavor: string): Promise<void> {
  // the old flavor's allocations go to the migration; the server claims the new one beside them (same host)
  await applyIntent(ctx, rc, s, { action: 'resize', event: 'compute_prep_resize', taskState: T.RESIZE_PREP }, set,
    (tx) => recordMove(tx, s, { type: MigrationType.resize, status: 'migrating', dest: { id: host.id, hostname: s.host!, host_ip: host.host_ip }, flavor: newFlavor }).then(() => undefined));
}

async function confirmResize(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const cred = rc.cred!;
  validate(NullOrEmpty, arg ?? null);
  checkLock(cred, s);
  checkState('confirmResize', s, [V.RESIZED], [null]);
  const m = await openResize(ctx, s.id, ['finished']);
  if (!m) throw badRequest(`Instance has not been resized.`);
  await applyIntent(ctx, rc, s, { action: 'confirmResize', event: 'compute_confirm_resize', taskState: null, expectedVmState: [V.RESIZED] },
    { vm_state: m.old_vm_state === V.STOPPED ? V.STOPPED : V.ACTIVE }, async (tx) => {
      await settleMigration(tx, s, m.id, 'confirmResize', 'confirmed');
      await releaseConsumer(tx, m.uuid);
    });
  // a migration's source no longer keeps the server (it is gone from it)
  if (m.source_compute && m.source_compute !== s.host) ctx.engine.notify(m.source_compute);
  await settleMoveImage(ctx, m.id, m.disk_image);
  // Nova answers a confirm with 204
  rc.reply.code(204);
}

async function revertResize(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const cred = rc.cred!;
  validate(NullOrEmpty, arg ?? null);
  checkLock(cred, s);
  checkState('revertResize', s, [V.RESIZED], [null]);
  const m = await openResize(ctx, s.id, ['finished']);
  if (!m) throw badRequest(`Instance has not been resized.`);
  const old = JSON.parse(m.old_flavor) as { id?: string; vcpus?: number; ram?: number };
  const set: Record<string, unknown> = { flavor: m.old_flavor, flavor_id: String(old.id ?? s.flavor_id), vcpus: Number(old.vcpus ?? 0), memory_mb: Number(old.ram ?? 0) };
  // a migration goes back to its source, which kept the server (stopped) with the disk it ran from
  const away = m.source_compute !== null && m.source_compute !== s.host;
  if (away) Object.assign(set, { host: m.source_compute, disk_image: m.old_disk_image });
  await applyIntent(ctx, rc, s, { action: 'revertResize', event: 'compute_revert_resize', taskState: T.RESIZE_REVERTING, expectedVmState: [V.RESIZED] }, set, async (tx) => {
    await settleMigration(tx, s, m.id, 'revertResize', 'reverting');
    // the new flavor's claim goes; the old one comes back from the migration
    await releaseConsumer(tx, s.id);
    await moveConsumer(tx, m.uuid, s.id);
  });
  if (away) {
    await ctx.network?.bind(s.id, m.source_compute, kindOf(s.kind).vifType).catch((err: Error) => ctx.log.warn({ server: s.id, err: err.message }, 'binding a reverted server\'s ports failed'));
    ctx.engine.notify(m.source_compute);
    await settleMoveImage(ctx, m.id, m.disk_image);
  }
}

/** A settled move's copy of the disk: off the migration, then deleted (once: a confirm, a revert or the server's delete). */
async function settleMoveImage(ctx: ComputeContext, migrationId: number, disk: string | null): Promise<void> {
  if (!disk) return;
  const cleared = await ctx.db.updateTable('compute_migrations').set({ disk_image: null }).where('id', '=', migrationId).where('disk_image', '=', disk).executeTakeFirst();
  if (Number(cleared.numUpdatedRows)) await dropMoveImage(ctx, disk);
}

/** The copies of a deleted server's disk its moves left (a move never confirmed or reverted): deleted. Called with the rows an agent's report changed. */
export async function dropMoveImages(ctx: ComputeContext, rows: ServerRow[]): Promise<void> {
  const gone = rows.filter((r) => r.deleted_at !== null).map((r) => r.id);
  if (!gone.length) return;
  const ms = await ctx.db.selectFrom('compute_migrations').select(['id', 'disk_image']).where('server_id', 'in', gone).where('disk_image', 'is not', null).execute();
  for (const m of ms) await settleMoveImage(ctx, m.id, m.disk_image);
}

/** The image a migration copied a disk through: deleted once the move is settled (an agent keeps its copy while a server runs from it). */
async function dropMoveImage(ctx: ComputeContext, disk: string | null): Promise<void> {
  if (!disk) return;
  let id: string | undefined;
  try {
    id = (JSON.parse(disk) as { id?: string }).id;
  } catch { /* nothing to delete */ }
  if (id) await ctx.images.deleteById(id).catch((err: Error) => ctx.log.warn({ image: id, err: err.message }, 'deleting a migration\'s disk image failed'));
}

/** A finished resize's migration confirmed or being reverted: one of the two, once (a confirm and a revert racing: the second is a 409). */
async function settleMigration(tx: Transaction<Tables>, s: ServerRow, migrationId: number, action: string, status: string): Promise<void> {
  const r = await tx.updateTable('compute_migrations').set({ status, updated_at: nowIso() }).where('id', '=', migrationId).where('status', '=', 'finished').executeTakeFirst();
  if (!Number(r.numUpdatedRows)) throw conflict(`Cannot '${action}' instance ${s.id}: its resize was confirmed or reverted meanwhile.`);
}

async function shelve(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const cred = rc.cred!;
  validate(NullOrEmpty, arg ?? null);
  checkLock(cred, s);
  checkState('shelve', s, [V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED], [null]);
  if (!s.host) throw notReady(s);
  // Nova shelves a volume-backed server without a snapshot, its volumes kept: not served here yet
  if (!s.image_id) throw badRequest(`Instance ${s.id} is volume-backed: shelving it is not served yet.`);
  const flavor = parseFlavor(s);
  const base = s.image_id ? await ctx.images.getRecord(s.image_id) : undefined;
  const image = await ctx.images.createSnapshot(cred, {
    name: `${s.name}-shelved`,
    containerFormat: kindOf(s.kind).snapshot.containerFormat,
    diskFormat: kindOf(s.kind).snapshot.diskFormat,
    minDisk: Math.max(flavor.disk, base?.minDisk ?? 0),
    minRam: base?.minRam ?? 0,
    properties: { image_type: 'snapshot', instance_uuid: s.id, user_id: cred.userId, ...(s.image_id ? { base_image_ref: s.image_id } : {}) },
  });
  try {
    await applyIntent(ctx, rc, s, { action: 'shelve', event: 'compute_shelve_instance', taskState: T.SHELVING }, { shelved_image_id: image.id });
  } catch (e) {
    await ctx.images.deleteById(image.id).catch(() => undefined);
    throw e;
  }
  const failed = async (err: unknown) => {
    ctx.log.warn({ err, server: s.id, image: image.id }, 'shelve snapshot failed');
    await ctx.images.deleteById(image.id).catch(() => undefined);
    await ctx.db.updateTable('compute_servers').set({ task_state: null, shelved_image_id: null, updated_at: nowIso() })
      .where('id', '=', s.id).where('task_state', '=', T.SHELVING).execute();
  };
  ctx.engine.request(s.id, 'snapshot', { image_id: image.id, name: image.name }, ctx.config.snapshotTimeoutMs)
    .then(() => shelved(ctx, s.id), failed)
    .catch((err) => ctx.log.error({ err, server: s.id }, 'finishing a shelve failed'));
}

/** The shelve snapshot is uploaded: SHELVED (stopped where it is), then offloaded at once when shelvedOffloadTime is 0. */
async function shelved(ctx: ComputeContext, id: string): Promise<void> {
  const s = await reloadServer(ctx.db, id);
  if (s.task_state !== T.SHELVING || s.deleted_at !== null) return;
  const offload = ctx.config.shelvedOffloadTime === 0;
  const r = await ctx.db.updateTable('compute_servers')
    .set({ vm_state: V.SHELVED, task_state: offload ? T.SHELVING_OFFLOADING : null, desired_power: 'stopped', updated_at: nowIso(), version: s.version + 1 })
    .where('id', '=', id).where('version', '=', s.version).where('task_state', '=', T.SHELVING).executeTakeFirst();
  if (!Number(r.numUpdatedRows)) return;
  ctx.engine.notify(s.host);
  // part of the shelve's action: none of its own; a server changed meanwhile (deleted, unshelved) is left as it is
  if (offload) await offloadServer(ctx, null, await reloadServer(ctx.db, id)).catch((err: unknown) => { if (!(err instanceof ApiError)) throw err; });
}

/**
 * SHELVED_OFFLOADED: the server leaves its host (the agent removes what it
 * held there once the server is no longer placed on it), its claims go and
 * its ports are unbound (kept, with their addresses, for the unshelve).
 */
async function offloadServer(ctx: ComputeContext, rc: RouteContext | null, s: ServerRow): Promise<void> {
  await applyIntent(ctx, rc, s, { action: 'shelveOffload', event: 'compute_shelve_offload_instance', taskState: null, expectedVmState: [V.SHELVED] },
    { vm_state: V.SHELVED_OFFLOADED, host: null, power_state: PowerState.NOSTATE }, (tx) => releaseConsumer(tx, s.id));
  await ctx.network?.bind(s.id, null).catch((err: Error) => ctx.log.warn({ server: s.id, err: err.message }, 'unbinding an offloaded server\'s ports failed'));
  // its volumes stay attached without a host (Cinder's attachments reserved, no export) until the unshelve places it
  if (ctx.volumes) await moveServerVolumes(ctx.db, ctx.volumes, s.id, null).catch((err: Error) => ctx.log.warn({ server: s.id, err: err.message }, 'moving an offloaded server\'s volumes failed'));
}

async function shelveOffload(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const cred = rc.cred!;
  validate(NullOrEmpty, arg ?? null);
  checkLock(cred, s);
  checkState('shelveOffload', s, [V.SHELVED], [null]);
  await offloadServer(ctx, rc, s);
}

async function unshelve(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  const cred = rc.cred!;
  // below 2.77 Nova reads nothing of the body
  const body = mv(rc).lt('2.77') ? null : validate(UnshelveBody, arg ?? null);
  checkLock(cred, s);
  checkState('unshelve', s, [V.SHELVED, V.SHELVED_OFFLOADED], [null]);
  const az = body?.availability_zone;
  if (az !== undefined && az !== null && s.vm_state !== V.SHELVED_OFFLOADED) {
    throw conflict(`The unshelve server operation on a shelved instance with availability_zone is only allowed when the instance is shelved offloaded. Instance ${s.id} is in vm_state ${s.vm_state}.`);
  }
  if (az && !(await knownZones(ctx)).has(az)) throw badRequest('The requested availability zone is not available');
  const intent = { action: 'unshelve', event: 'compute_unshelve_instance', taskState: T.UNSHELVING, desiredPower: 'running' };
  if (s.vm_state === V.SHELVED) {
    // still on its host, stopped: started again there
    if (!s.host) throw notReady(s);
    return applyIntent(ctx, rc, s, intent);
  }
  // offloaded: scheduled again (the scheduler takes unshelving servers without a host), its disk from the shelve snapshot
  const snap = s.shelved_image_id ? await ctx.images.getRecord(s.shelved_image_id) : undefined;
  // without its snapshot the server's disk is gone: refused (Nova's UnshelveException), never rebuilt from the original image
  if (s.image_id && (!snap || snap.status !== 'active')) {
    throw conflict(`Error during unshelve instance ${s.id}: the shelve snapshot ${s.shelved_image_id ?? ''} is not available.`.replace(' .', '.'));
  }
  const set: Record<string, unknown> = {
    failed_hosts: '[]',
    disk_image: snap ? JSON.stringify(agentImage({
      id: snap.id, name: snap.name, status: snap.status, container_format: snap.containerFormat, disk_format: snap.diskFormat, size: snap.size, checksum: null,
    })) : null,
  };
  if (az !== undefined) {
    set.availability_zone = az;
    set.requested_az = az;
  }
  await applyIntent(ctx, rc, s, intent, set);
  ctx.engine.kick();
}

/**
 * Deletes the shelve snapshots of servers that no longer need them: running
 * again after an unshelve, or deleted (Nova deletes the shelved image then
 * too). Called with the rows an agent's report changed.
 */
export async function dropShelveImages(ctx: ComputeContext, rows: ServerRow[]): Promise<void> {
  for (const r of rows) {
    if (!r.shelved_image_id) continue;
    const done = r.deleted_at !== null || (r.task_state === null && r.vm_state !== V.SHELVED && r.vm_state !== V.SHELVED_OFFLOADED);
    if (!done) continue;
    const cleared = await ctx.db.updateTable('compute_servers').set({ shelved_image_id: null })
      .where('id', '=', r.id).where('shelved_image_id', '=', r.shelved_image_id).executeTakeFirst();
    if (!Number(cleared.numUpdatedRows)) continue;
    await ctx.images.deleteById(r.shelved_image_id).catch((err: Error) => ctx.log.warn({ server: r.id, image: r.shelved_image_id, err: err.message }, 'deleting a shelve snapshot failed'));
  }
}

/**
 * Rescue (Nova's os-rescue): ACTIVE, SHUTOFF or ERROR servers, none locked or
 * with a task running. The rescue image is the server's own image, or
 * `rescue_image_ref` (a uuid, an image of the server's kind, active): its
 * AgentImage goes on the row (rescue_image), which puts `rescue` in the
 * agent's spec; task rescuing until the host runs the server from it, then
 * RESCUE (vm_state rescued). A volume-backed server (no image) is Nova's 400,
 * as below 2.87. Answers 200 with the adminPass when instance passwords are
 * enabled (the rescue system gets no password injected: a container has none,
 * and a VM's rescue disk is the image as it is).
 */
async function rescue(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<unknown> {
  const cred = rc.cred!;
  const body = validate(RescueBody, arg ?? null);
  let imageId: string | null = null;
  if (body?.rescue_image_ref !== undefined) {
    imageId = body.rescue_image_ref.split('/').pop() ?? '';
    if (!isUuid(imageId)) throw badRequest('Invalid rescue_image_ref provided.');
  }
  checkLock(cred, s);
  checkState('rescue', s, [V.ACTIVE, V.STOPPED, V.ERROR], [null]);
  if (!s.image_id) throw badRequest(`Instance ${s.id} cannot be rescued: Cannot rescue a volume-backed instance`);
  if (!s.host) throw notReady(s);
  const ref = imageId ?? s.image_id;
  const image = await ctx.images.get(cred, ref).catch(() => undefined);
  if (!image || image.status !== 'active' || kindOfImage(image) !== s.kind) throw badRequest(`Requested rescue image '${ref}' is not supported`);
  const rescueImage = JSON.stringify(agentImage({
    id: image.id, name: image.name, status: image.status, container_format: image.containerFormat, disk_format: image.diskFormat, size: image.size, checksum: null,
  }));
  await applyIntent(ctx, rc, s, { action: 'rescue', event: 'compute_rescue_instance', taskState: T.RESCUING, desiredPower: 'running' }, { rescue_image: rescueImage });
  rc.reply.code(200);
  return ctx.config.enableInstancePassword ? { adminPass: body?.adminPass ?? generatePassword() } : {};
}

/** Unrescue: a RESCUE server back on its own disk (task unrescuing until its host reports it running so, then ACTIVE). */
async function unrescue(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<void> {
  validate(NullOrEmpty, arg ?? null);
  checkLock(rc.cred!, s);
  checkState('unrescue', s, [V.RESCUED], [null]);
  if (!s.host) throw notReady(s);
  await applyIntent(ctx, rc, s, { action: 'unrescue', event: 'compute_unrescue_instance', taskState: T.UNRESCUING, desiredPower: 'running' }, { rescue_image: null });
}
