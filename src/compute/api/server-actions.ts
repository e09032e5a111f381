// POST /servers/{id}/action: power actions, reboot, lock, rebuild, createImage,
// console output, forceDelete and the admin's resetState. Each records intent
// on the server row (desired power, reboot/rebuild sequence, task_state, a
// version bump) under Nova's state checks, records an instance action, and
// wakes the agent of the server's host.
import { isDriverAction, kindOf, kindSupports, type KindName } from '../kinds.ts';
import { tailLines } from '../../common/text.ts';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { badRequest, conflict, forbidden, ApiError } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { applyIntent, checkLock, notReady, type Intent } from './action-intent.ts';
import type { ComputeContext } from './context.ts';
import { consoleAction } from './consoles.ts';
import { serverFloatingIpAction } from './floating-ips.ts';
import { serverGroupAction } from './security-groups.ts';
import { isMoveAction, moveAction } from './server-moves.ts';
import { endLiveMigrationOnHosts, liveMigrate } from './live-migration.ts';
import { endOpenMigrations } from '../engine/migrations.ts';
import { accessIp, actionOf, checkName, hostUrl, isPrintable, mv, validate, objectOf } from './http.ts';
import { findKeypair } from './keypairs.ts';
import { isComputeAdmin } from './policy.ts';
import { overQuota, projectLimits } from './quota.ts';
import { checkFlavorKindImage, checkHostname, checkImage, checkVersionedFields, deleteServer, generatePassword, idFromHref, isBase64, kindOfImage, Metadata } from './servers.ts';
import { forgetServer, loadServer, recordAction, reloadServer, serverTarget, settleEvents, type ServerRow } from './servers-store.ts';
import { parseFlavor, partialView, renderServer, viewData } from './servers-view.ts';
import { ALLOW_REBOOT, checkState, TaskState, VmState } from './state.ts';

const V = VmState;
const T = TaskState;

/** Actions only admins may ask for, by default policy, with the rule Nova names. */
const ADMIN_ACTIONS: Record<string, string> = {
  migrate: 'os_compute_api:os-migrate-server:migrate', 'os-migrateLive': 'os_compute_api:os-migrate-server:migrate_live',
  evacuate: 'os_compute_api:os-evacuate', shelveOffload: 'os_compute_api:os-shelve:shelve_offload',
};

const NullOrEmpty = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })]);

const RebuildBody = Type.Object({
  imageRef: Type.String({ minLength: 1 }),
  name: Type.Optional(Type.String()),
  adminPass: Type.Optional(Type.String()),
  metadata: Type.Optional(Metadata),
  preserve_ephemeral: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
  'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
  accessIPv4: Type.Optional(Type.String()),
  accessIPv6: Type.Optional(Type.String()),
  personality: Type.Optional(Type.Array(Type.Unknown())),
  description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
  key_name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])),
  user_data: Type.Optional(Type.Union([Type.String({ maxLength: 65535 }), Type.Null()])),
  trusted_image_certificates: Type.Optional(Type.Union([Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 50, uniqueItems: true }), Type.Null()])),
  hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
}, { additionalProperties: false });
const REBUILD_FIELDS: Array<[string, string, string | null]> = [
  ['description', '2.19', null], ['key_name', '2.54', null], ['user_data', '2.57', null], ['personality', '2.1', '2.56'],
  ['trusted_image_certificates', '2.63', null], ['hostname', '2.90', null],
];
const CreateImageBody = Type.Object({ name: Type.String(), metadata: Type.Optional(Metadata) }, { additionalProperties: false });
const BackupBody = Type.Object({
  name: Type.String(), backup_type: Type.String(), rotation: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+$' })]),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false });
const ConsoleBody = Type.Union([Type.Null(), Type.Object({
  length: Type.Optional(Type.Union([Type.Integer({ minimum: -1 }), Type.String({ pattern: '^-?[0-9]+$' }), Type.Null()])),
}, { additionalProperties: false })]);
const LockBody = Type.Union([Type.Null(), Type.Object({ locked_reason: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }, { additionalProperties: false })]);

export function serverActionRoutes(ctx: ComputeContext): Route[] {
  return [route({
    method: 'POST', path: '/v2.1/servers/:server_id/action', rule: 'os_compute_api:servers:action',
    target: (rc) => serverTarget(ctx, rc),
    async handler(rc) {
      const [action, arg] = actionOf(rc.body);
      const s = await loadServer(ctx, rc);
      // what the agent finished since the last action is settled before the next one is recorded
      await settleEvents(ctx.db, s);
      const cred = rc.cred!;
      const v = mv(rc);
      // Nova's admin-only actions are refused to others first (its policy runs before any driver is asked)
      const adminRule = ADMIN_ACTIONS[action];
      if (adminRule) rc.enforce(adminRule, { project_id: s.project_id, user_id: s.user_id });
      // an action the server's kind cannot do: Nova's 409 (as for an action its driver does not support), never "no such action"
      if (isDriverAction(action) && !kindSupports(s.kind, action)) {
        throw conflict(`Cannot '${action}' instance ${s.id}: a ${s.kind} server does not support ${action}.`);
      }
      rc.reply.code(202);
      const power = async (intent: Intent, vmStates: string[], taskStates: Array<string | null> = [null]) => {
        validate(NullOrEmpty, arg ?? null);
        checkLock(cred, s);
        checkState(action, s, vmStates, taskStates);
        if (!s.host) throw notReady(s);
        await applyIntent(ctx, rc, s, intent);
      };
      if (isMoveAction(action)) return moveAction(ctx, rc, s, action, arg);
      switch (action) {
        case 'os-migrateLive':
          return liveMigrate(ctx, rc, s, arg);
        case 'os-start':
          return power({ action: 'start', event: 'compute_start_instance', taskState: T.POWERING_ON, desiredPower: 'running' }, [V.STOPPED]);
        case 'os-stop':
          return power({ action: 'stop', event: 'compute_stop_instance', taskState: T.POWERING_OFF, desiredPower: 'stopped' }, [V.ACTIVE, V.ERROR]);
        case 'pause':
          return power({ action: 'pause', event: 'compute_pause_instance', taskState: T.PAUSING, desiredPower: 'paused' }, [V.ACTIVE]);
        case 'unpause':
          return power({ action: 'unpause', event: 'compute_unpause_instance', taskState: T.UNPAUSING, desiredPower: 'running' }, [V.PAUSED]);
        case 'suspend':
          return power({ action: 'suspend', event: 'compute_suspend_instance', taskState: T.SUSPENDING, desiredPower: 'suspended' }, [V.ACTIVE]);
        case 'resume':
          return power({ action: 'resume', event: 'compute_resume_instance', taskState: T.RESUMING, desiredPower: 'running' }, [V.SUSPENDED]);
        case 'reboot': {
          const given = objectOf(arg);
          const type = String(given?.type ?? '');
          if (!given || !/^(hard|soft)$/i.test(type) || Object.keys(given).length !== 1) {
            throw badRequest(`Invalid input for field/attribute reboot. Value: ${JSON.stringify(arg)}. 'type' must be one of HARD, SOFT`);
          }
          checkLock(cred, s);
          if (type.toUpperCase() === 'SOFT') {
            checkState('reboot', s, [V.ACTIVE], [null]);
            if (!s.host) throw notReady(s);
            return applyIntent(ctx, rc, s, { action: 'reboot', event: 'compute_reboot_instance', taskState: T.REBOOTING, reboot: 'SOFT', desiredPower: 'running' });
          }
          checkState('reboot', s, [V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED, V.ERROR], ALLOW_REBOOT);
          if (!s.host) throw notReady(s);
          return applyIntent(ctx, rc, s, { action: 'reboot', event: 'compute_reboot_instance', taskState: T.REBOOTING_HARD, reboot: 'HARD', desiredPower: 'running' });
        }
        case 'lock': {
          const body = validate(LockBody, arg ?? null);
          if (body?.locked_reason !== undefined && v.lt('2.73')) throw badRequest(`Invalid input for field/attribute lock. Additional properties are not allowed ('locked_reason' was unexpected)`);
          const isOwner = s.project_id === cred.projectId;
          if (s.locked && isOwner) return;
          await ctx.db.transaction().execute(async (tx) => {
            await tx.updateTable('compute_servers').set({
              locked: 1, locked_by: isOwner ? 'owner' : 'admin', locked_reason: body?.locked_reason ?? null, updated_at: nowIso(),
            }).where('id', '=', s.id).execute();
            await recordAction(tx, s, cred, rc.req.id, { action: 'lock', event: 'api_lock' });
          });
          return;
        }
        case 'unlock': {
          validate(NullOrEmpty, arg ?? null);
          const expected = s.project_id === cred.projectId ? 'owner' : 'admin';
          if (s.locked_by && s.locked_by !== expected && !isComputeAdmin(cred)) {
            throw forbidden(`Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.`);
          }
          await ctx.db.transaction().execute(async (tx) => {
            await tx.updateTable('compute_servers').set({ locked: 0, locked_by: null, locked_reason: null, updated_at: nowIso() }).where('id', '=', s.id).execute();
            await recordAction(tx, s, cred, rc.req.id, { action: 'unlock', event: 'api_unlock' });
          });
          return;
        }
        case 'rebuild':
          return rebuild(ctx, rc, s, arg);
        case 'createImage': {
          const body = validate(CreateImageBody, arg);
          return snapshot(ctx, rc, s, body.name, body.metadata ?? {}, null);
        }
        case 'createBackup': {
          const body = validate(BackupBody, arg);
          return snapshot(ctx, rc, s, body.name, body.metadata ?? {}, { type: body.backup_type, rotation: Number(body.rotation) });
        }
        case 'os-getConsoleOutput': {
          const body = validate(ConsoleBody, arg ?? null);
          const raw = body?.length;
          const length = raw === undefined || raw === null ? null : Number(raw);
          if (length !== null && length < -1) throw badRequest(`Invalid input for field/attribute length. Value: ${raw}. ${raw} is less than the minimum of -1`);
          if (!s.host) throw notReady(s);
          if (s.task_state === T.DELETING) throw conflict(`Instance ${s.id} is being deleted`);
          let output: unknown;
          try {
            output = await ctx.engine.request(s.id, 'console', { length: length === -1 ? null : length }, ctx.config.consoleTimeoutMs);
          } catch (e) {
            if (e instanceof ApiError) throw e;
            ctx.log.warn({ err: e, server: s.id }, 'console output request failed');
            throw conflict(`Instance ${s.id} is not ready: its host did not answer.`);
          }
          let text = typeof output === 'string' ? output : String((output as { output?: unknown })?.output ?? '');
          if (length !== null && length >= 0) text = tailLines(text, length);
          rc.reply.code(200);
          return { output: text };
        }
        case 'os-getSerialConsole': case 'os-getVNCConsole': case 'os-getSPICEConsole': case 'os-getRDPConsole':
          return consoleAction(ctx, rc, s, action, arg);
        case 'forceDelete':
          validate(NullOrEmpty, arg ?? null);
          checkLock(cred, s);
          await deleteServer(ctx, cred, rc.req.id, s, 'forceDelete');
          return;
        case 'restore':
          throw conflict(`Cannot 'restore' instance ${s.id} while it is in vm_state ${s.vm_state}`);
        case 'trigger_crash_dump':
          if (v.lt('2.17')) throw badRequest(`There is no such action: ${action}`);
          checkLock(cred, s);
          checkState(action, s, [V.ACTIVE, V.PAUSED, V.RESCUED, V.RESIZED, V.ERROR], [null]);
          throw badRequest('Triggering crash dump is not supported by this instance.');
        case 'os-resetState': {
          if (!isComputeAdmin(cred)) throw forbidden(`Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.`);
          const state = arg && typeof arg === 'object' ? (arg as { state?: unknown }).state : undefined;
          if (state !== 'active' && state !== 'error') throw badRequest(`Invalid input for field/attribute state. Value: ${String(state)}. '${String(state)}' is not one of ['active', 'error']`);
          // the server's open migrations end (an evacuation's dead host, a move's source: their claims settled; a live migration cancelled on its hosts)
          const ended = await ctx.db.transaction().execute(async (tx) => {
            await tx.updateTable('compute_servers').set({ vm_state: state, task_state: null, updated_at: nowIso(), version: sql`version + 1` }).where('id', '=', s.id).execute();
            await recordAction(tx, s, cred, rc.req.id, { action: 'resetState' });
            return endOpenMigrations(tx, s, 'error', { giveBack: true });
          });
          ctx.engine.notify(s.host);
          for (const m of ended) {
            for (const h of [m.source_compute, m.dest_compute]) if (h !== s.host) ctx.engine.notify(h);
            if (m.migration_type === 'live-migration') await endLiveMigrationOnHosts(ctx, s, m.uuid);
          }
          return;
        }
        case 'injectNetworkInfo':
        case 'resetNetwork':
          if (!isComputeAdmin(cred)) throw forbidden();
          return;
        case 'addSecurityGroup':
        case 'removeSecurityGroup':
          await serverGroupAction(ctx, rc, s, action, arg);
          return;
        case 'addFloatingIp':
        case 'removeFloatingIp':
          await serverFloatingIpAction(ctx, rc, s, action, arg);
          return;
        default:
          throw badRequest(`There is no such action: ${action}`);
      }
    },
  })];
}

async function rebuild(ctx: ComputeContext, rc: RouteContext, s: ServerRow, arg: unknown): Promise<unknown> {
  const v = mv(rc);
  const cred = rc.cred!;
  const body = validate(RebuildBody, arg);
  checkVersionedFields(rc, body, REBUILD_FIELDS, 'rebuild');
  if (body.name !== undefined) checkName('name', body.name);
  if (typeof body.description === 'string' && !isPrintable(body.description)) throw badRequest('Invalid input for field/attribute description.');
  if (typeof body.user_data === 'string' && !isBase64(body.user_data)) throw badRequest(`Invalid input for field/attribute user_data. Value: ${body.user_data.slice(0, 40)}. It is not a 'base64'`);
  if (body.hostname !== undefined) checkHostname(rc, body.hostname);
  checkLock(cred, s);
  checkState('rebuild', s, [V.ACTIVE, V.STOPPED, V.ERROR], [null]);
  // a server booted from a volume: its root is the volume (Nova reimages it from 2.93; not served here)
  if (!s.image_id) throw badRequest('Unable to rebuild with a different image for a volume-backed server.');
  const imageId = idFromHref(body.imageRef);
  const flavor = parseFlavor(s);
  const image = checkImage(await ctx.images.get(cred, imageId), flavor, 'Cannot find image for rebuild');
  // a kind the flavor chose (bare metal) takes the images its descriptor names; the others the kind the image needs
  if (kindOf(s.kind).byFlavor) checkFlavorKindImage(s.kind as KindName, image);
  else if (kindOfImage(image) !== s.kind) throw badRequest(`Image ${image.id} is unacceptable: it needs a ${kindOfImage(image)} host, and this server is a ${s.kind}.`);
  const metadata = body.metadata;
  if (metadata) {
    const limits = await projectLimits(ctx.db, s.project_id);
    const n = Object.keys(metadata).length;
    if (limits.metadata_items >= 0 && n > limits.metadata_items) throw overQuota(['metadata_items'], [n], [0], [limits.metadata_items]);
  }
  // the disk is made from the image again (an unshelved server's disk came from its shelve snapshot)
  const set: Record<string, unknown> = { image_id: image.id, disk_image: null };
  if (body.name !== undefined) set.name = String(body.name).trim();
  if (body.description !== undefined) set.description = body.description;
  if (body.accessIPv4 !== undefined) set.access_ipv4 = accessIp('accessIPv4', body.accessIPv4);
  if (body.accessIPv6 !== undefined) set.access_ipv6 = accessIp('accessIPv6', body.accessIPv6);
  if (body['OS-DCF:diskConfig'] !== undefined) set.disk_config = body['OS-DCF:diskConfig'];
  if (body.hostname !== undefined) set.hostname = body.hostname;
  if (body.trusted_image_certificates !== undefined) set.trusted_certs = body.trusted_image_certificates ? JSON.stringify(body.trusted_image_certificates) : null;
  if (body.key_name !== undefined) {
    if (body.key_name === null) {
      set.key_name = null;
      set.key_data = null;
    } else {
      const kp = await findKeypair(ctx, cred.userId, body.key_name);
      if (!kp) throw badRequest('Invalid key_name provided.');
      set.key_name = kp.name;
      set.key_data = kp.public_key;
    }
  }
  if ('user_data' in body) set.user_data = body.user_data;
  await applyIntent(ctx, rc, s, { action: 'rebuild', event: 'compute_rebuild_instance', taskState: T.REBUILDING, rebuild: set });
  if (metadata) {
    await ctx.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('compute_server_metadata').where('server_id', '=', s.id).execute();
      for (const [key, value] of Object.entries(metadata)) await tx.insertInto('compute_server_metadata').values({ server_id: s.id, key, value }).execute();
    });
  }
  forgetServer(rc);
  const fresh = await reloadServer(ctx.db, s.id);
  const view = renderServer(ctx, rc.req, cred, fresh, await viewData(ctx, [fresh]), partialView(rc.req, true));
  if (ctx.config.enableInstancePassword) view.adminPass = body.adminPass ?? generatePassword();
  if (v.ge('2.57')) view.user_data = fresh.user_data;
  const self = (view.links as Array<{ rel: string; href: string }>)[0]!.href;
  rc.reply.code(202).header('Location', self);
  return { server: view };
}

/**
 * createImage and createBackup: records a queued image owned by the server's
 * project, sets the task state and asks the agent to snapshot the server into
 * it. Returns at once, as Nova does; the task state is settled (and old
 * backups rotated out) when the agent answers.
 */
async function snapshot(
  ctx: ComputeContext, rc: RouteContext, s: ServerRow, rawName: string, metadata: Record<string, string>,
  backup: { type: string; rotation: number } | null,
): Promise<unknown> {
  const v = mv(rc);
  const cred = rc.cred!;
  const action = backup ? 'createBackup' : 'createImage';
  const name = checkName('name', rawName).trim();
  if (v.lt('2.39')) {
    const limits = await projectLimits(ctx.db, s.project_id);
    if (limits.metadata_items >= 0 && Object.keys(metadata).length > limits.metadata_items) throw forbidden('Image metadata limit exceeded');
  }
  checkState(action, s, [V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED], [null]);
  if (!s.host) throw notReady(s);
  // a server booted from a volume has no disk of its own: Nova's snapshot of it is Cinder snapshots of its volumes
  if (!s.image_id) {
    if (backup) throw badRequest("It's not supported to backup volume backed instance.");
    throw badRequest(`Instance ${s.id} is volume-backed: an image of it (snapshots of its volumes) is not served yet.`);
  }
  const flavor = parseFlavor(s);
  const base = s.image_id ? await ctx.images.get(cred, s.image_id) : undefined;
  const image = await ctx.images.createSnapshot(cred, {
    name,
    containerFormat: kindOf(s.kind).snapshot.containerFormat,
    diskFormat: kindOf(s.kind).snapshot.diskFormat,
    minDisk: Math.max(flavor.disk, base?.minDisk ?? 0),
    minRam: base?.minRam ?? 0,
    properties: {
      ...Object.fromEntries(Object.entries(base?.properties ?? {}).filter(([k]) => !['image_type', 'instance_uuid', 'base_image_ref', 'user_id', 'backup_type', 'owner_user_name', 'owner_project_name'].includes(k))),
      image_type: backup ? 'backup' : 'snapshot', instance_uuid: s.id, user_id: cred.userId, ...(s.image_id ? { base_image_ref: s.image_id } : {}),
      ...(backup ? { backup_type: backup.type } : {}),
      // what the caller gives wins, as in Nova's create_image
      ...metadata,
    },
  });
  try {
    await applyIntent(ctx, rc, s, {
      action, event: backup ? 'compute_backup_instance' : 'compute_snapshot_instance', taskState: backup ? T.IMAGE_BACKUP : T.IMAGE_SNAPSHOT_PENDING,
    });
  } catch (e) {
    await ctx.images.delete(cred, image.id).catch(() => undefined);
    throw e;
  }
  const settle = async (ok: boolean, err?: unknown) => {
    if (!ok) {
      ctx.log.warn({ err, server: s.id, image: image.id }, 'snapshot failed');
      await ctx.images.delete(cred, image.id).catch(() => undefined);
    } else if (backup) {
      // keep the newest `rotation` backups of this type
      const mine = (await ctx.images.list(cred))
        .filter((i) => i.properties.instance_uuid === s.id && i.properties.image_type === 'backup' && i.properties.backup_type === backup.type)
        .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
      for (const old of mine.slice(backup.rotation)) await ctx.images.delete(cred, old.id).catch((e) => ctx.log.warn({ err: e, image: old.id }, 'rotating a backup out failed'));
    }
    await ctx.db.updateTable('compute_servers').set({ task_state: null, updated_at: nowIso() })
      .where('id', '=', s.id).where('task_state', 'in', [T.IMAGE_SNAPSHOT_PENDING, T.IMAGE_SNAPSHOT, T.IMAGE_PENDING_UPLOAD, T.IMAGE_UPLOADING, T.IMAGE_BACKUP]).execute();
  };
  ctx.engine.request(s.id, 'snapshot', { image_id: image.id, name }, ctx.config.snapshotTimeoutMs)
    .then(() => settle(true), (err) => settle(false, err))
    .catch((err) => ctx.log.error({ err }, 'settling a snapshot failed'));
  if (v.ge('2.45')) return { image_id: image.id };
  if (!backup || backup.rotation > 0) rc.reply.header('Location', `${hostUrl(rc.req)}/image/v2/images/${image.id}`);
  return undefined;
}
