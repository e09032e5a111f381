// Compute's `server` resource kind on the fleet: what is placed on a host
// (compute_servers.host, by version), the desired state of servers
// (desired.ts), and the agent's reports turned into server states by the
// lifecycle state machine (lifecycle.ts), written here guarded by the row's
// version. Requests go through the request channel (requests.ts).
import { Type } from 'typebox';
import type { Logger } from 'pino';
import { nowIso } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import type { ResourceKind } from '../../fleet/kinds.ts';
import type { ResourceReport } from '../../fleet/protocol.ts';
import type { ImageService } from '../../image/service.ts';
import { desiredServers } from './desired.ts';
import { applyReport, type ServerReportIn, type ServerRow, type Transition } from './lifecycle.ts';
import { SERVER_KIND, ServerObservedState } from './protocol.ts';
import { releaseClaim, softDelete } from './release.ts';
import type { RequestChannel } from './requests.ts';
import { applyVolumeObservations, bumpServers } from './server-volumes.ts';
import type { ServerVolumes } from '../../volume/service.ts';
import { KINDS } from '../kinds.ts';
import { MigrationType, MOVE_IN_FLIGHT, openMigration } from './migrations.ts';

/** Kinds whose servers no agent converges (KINDS[k].agent false). */
const IN_PROCESS_KINDS = Object.entries(KINDS).filter(([, k]) => !k.agent).map(([name]) => name);

const ServerObservedBody = Type.Object({
  power_state: Type.Integer({ minimum: 0, maximum: 7 }),
  state: Type.Union(ServerObservedState.map((s) => Type.Literal(s))),
  // since 2.4: the spec's volumes as the host holds them
  volumes: Type.Optional(Type.Array(Type.Object({
    attachment_id: Type.String({ maxLength: 64 }),
    state: Type.Union([Type.Literal('attached'), Type.Literal('failed')]),
    // generous: a driver's message is not cut by the agent; what is kept of it is (server-volumes.ts)
    message: Type.Optional(Type.String({ maxLength: 65536 })),
  }, { additionalProperties: false }), { maxItems: 256 })),
}, { additionalProperties: false });

export function serverKind(o: {
  db: Db; log: Logger; images: ImageService; requests: RequestChannel; maxAttempts: number;
  notify(host: string): void; kick(): void; changed(ids: string[]): Promise<void>;
  /** Cinder's attachments (none: servers have no volumes). */
  volumes?: ServerVolumes;
}): ResourceKind {
  const { db, log } = o;

  const write = (row: ServerRow, t: Transition, hostname: string) => writeTransition(db, log, row, t, hostname);

  return {
    kind: SERVER_KIND,
    observed: ServerObservedBody,

    async placed(hostname) {
      // a server waiting for its boot volume's export (block_device_mapping) is not handed to the host yet
      // nor is a server of a kind no agent converges (bare metal: engine/baremetal.ts drives its node in-process)
      const rows = await db.selectFrom('compute_servers').select(['id', 'version']).where('host', '=', hostname).where('deleted_at', 'is', null)
        .where((eb) => eb.or([eb('task_state', 'is', null), eb('task_state', '!=', 'block_device_mapping')]))
        .where('kind', 'not in', IN_PROCESS_KINDS).execute();
      const placed = new Map(rows.map((r) => [r.id, r.version]));
      // a server moved off this host whose move is not yet confirmed or reverted: kept here, stopped (desired.ts);
      // a server arriving here by live migration: held for the migration's requests (spec.incoming)
      for (const r of [...await migratedFrom(db, hostname), ...await migratingTo(db, hostname)]) if (!placed.has(r.id)) placed.set(r.id, r.version);
      return placed;
    },

    desired: (ids, hostname) => desiredServers(db, o.images, ids, o.volumes, hostname),

    async report(hostname, reports: ResourceReport[]) {
      const touched: string[] = [];
      let notify = false;
      let kick = false;
      for (const r of reports) {
        const row = await db.selectFrom('compute_servers').selectAll().where('id', '=', r.id).executeTakeFirst();
        if (!row || row.host !== hostname || row.deleted_at !== null) continue;
        const t = applyReport(row, r as ServerReportIn, hostname, { maxAttempts: o.maxAttempts, now: nowIso() });
        const observed = (r as ServerReportIn).observed;
        // the volumes the host reports: attaches completed or rolled back, detaches finished
        const volumesChanged = o.volumes && observed.volumes && t.kind !== 'deleted'
          ? await applyVolumeObservations(db, o.volumes, log, row.id, row.version, r.version, observed).catch((err: Error) => {
            log.warn({ server: row.id, err: err.message }, 'applying the volumes reported failed');
            return false;
          })
          : false;
        const wrote = await write(row, t, hostname);
        if (volumesChanged) {
          // the spec changed (a failed attach dropped, a failed detach back): a new version, after the report's own write
          await bumpServers(db, [row.id]);
          notify = true;
        }
        if (!wrote) continue;
        touched.push(row.id);
        if (t.kind !== 'none' && t.notify) notify = true;
        if (t.kind !== 'none' && t.kick) kick = true;
      }
      if (notify) o.notify(hostname);
      if (kick) o.kick();
      await o.changed(touched);
    },

    pendingRequests: (hostname) => o.requests.pending(hostname),

    async answer(hostname, q) {
      const touched = await o.requests.answer(hostname, q);
      if (touched) await o.changed([touched]);
    },
  };
}

/**
 * The servers moved off `hostname` (a cold migration's source) whose move is
 * still open: the source keeps them, stopped, until confirm (then they are
 * gone from it) or revert (then they are its own again).
 */
export async function migratedFrom(db: Db, hostname: string): Promise<Array<{ id: string; version: number }>> {
  return db.selectFrom('compute_migrations as m').innerJoin('compute_servers as s', 's.id', 'm.server_id')
    .select(['s.id', 's.version']).where('m.source_compute', '=', hostname).where((eb) => openMigration(eb, [MigrationType.migration, MigrationType.resize], 'm'))
    .where('s.deleted_at', 'is', null).where((eb) => eb.or([eb('s.host', 'is', null), eb('s.host', '!=', hostname)])).execute();
}

/** The servers arriving on `hostname` by an open live migration (still placed on their source). */
export async function migratingTo(db: Db, hostname: string): Promise<Array<{ id: string; version: number; migration: string }>> {
  return db.selectFrom('compute_migrations as m').innerJoin('compute_servers as s', 's.id', 'm.server_id')
    .select(['s.id', 's.version', 'm.uuid as migration']).where('m.dest_compute', '=', hostname).where((eb) => openMigration(eb, [MigrationType.live], 'm'))
    .where('s.deleted_at', 'is', null).where('s.host', '!=', hostname).execute();
}

/**
 * Writes one lifecycle transition of a server read as `row` (guarded by its
 * version); true when the row changed. The agents' reports and the
 * bare-metal driver's (baremetal.ts) take this one path. `hostname` names
 * where the server was (the log's).
 */
export async function writeTransition(db: Db, log: Logger, row: ServerRow, t: Transition, hostname: string): Promise<boolean> {
  if (t.kind === 'none') return false;
  if (t.kind === 'deleted') return db.transaction().execute((tx) => softDelete(tx, row.id, row.version, { deleting: true }));
  // a server leaving its host leaves its bare-metal node too
  const set = t.set.host === null ? { ...t.set, node: null } : t.set;
  const ok = await db.transaction().execute(async (tx) => {
    const u = await tx.updateTable('compute_servers').set(set).where('id', '=', row.id).where('version', '=', row.version)
      .where('deleted_at', 'is', null).executeTakeFirst();
    if (!Number(u.numUpdatedRows)) return false;
    if (t.release) await releaseClaim(tx, row.id);
    // an evacuation's rebuild on its new host ended: done (the dead host's allocations released) or failed
    if (row.task_state === 'rebuilding' && 'task_state' in set && set.task_state === null) {
      const evacuations = await tx.selectFrom('compute_migrations').select(['id', 'uuid']).where('server_id', '=', row.id)
        .where((eb) => openMigration(eb, [MigrationType.evacuation])).execute();
      for (const m of evacuations) {
        await tx.updateTable('compute_migrations').set({ status: set.vm_state === 'error' ? 'failed' : 'done', updated_at: set.updated_at ?? nowIso() }).where('id', '=', m.id).execute();
        await releaseClaim(tx, m.uuid);
      }
    }
    if (t.migration) {
      await tx.updateTable('compute_migrations').set({ status: t.migration, updated_at: set.updated_at ?? nowIso() })
        .where('server_id', '=', row.id).where('migration_type', 'in', [MigrationType.resize, MigrationType.migration])
        .where('status', 'in', [...MOVE_IN_FLIGHT, 'reverting']).execute();
    }
    return true;
  });
  if (ok && t.buildFailed) log.warn({ server: row.id, host: hostname, err: t.buildFailed.message, rescheduled: t.buildFailed.rescheduled }, 'build failed on host');
  return ok;
}
