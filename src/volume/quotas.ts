// Cinder's quotas (os-quota-sets, os-quota-class-sets, limits): a limit per project and resource,
// the default where none is set (the quota class `default`, else Cinder's
// built-in defaults), -1 for unlimited, and per volume type
// `volumes_<type>`, `gigabytes_<type>`, `snapshots_<type>`. Usage is counted
// from the rows themselves inside the creating or extending transaction,
// under a per-project lock on PostgreSQL (SQLite runs one writer at a time),
// so parallel creates cannot overshoot and nothing is reserved apart.
import { Type } from 'typebox';
import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../db/migration-helpers.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { mv } from './http.ts';
import { backupLimitExceeded, backupSizeExceedsQuota, badRequest, sizeExceedsLimit, sizeExceedsQuota, snapshotLimitExceeded, volumeLimitExceeded } from './errors.ts';
import type { VolumeTables } from './schema.ts';
import { parseBoolean } from './view.ts';

/** Cinder's defaults (cinder/quota.py). */
export const DEFAULT_QUOTAS = {
  volumes: 10, snapshots: 10, gigabytes: 1000, backups: 10, backup_gigabytes: 1000, groups: 10, per_volume_gigabytes: -1,
} as const;
const PER_TYPE = ['volumes', 'gigabytes', 'snapshots'] as const;

type VDb = Kysely<VolumeTables>;

/** Every quota resource with its built-in default: the fixed ones and the per-type ones of every type. */
async function builtinDefaults(db: VDb): Promise<Record<string, number>> {
  const out: Record<string, number> = { ...DEFAULT_QUOTAS };
  for (const t of await db.selectFrom('volume_types').select('name').orderBy('name').execute()) for (const p of PER_TYPE) out[`${p}_${t.name}`] = -1;
  return out;
}

/** A quota class's limits: the built-in defaults, overridden by the class `default`, then by the class itself. */
async function classLimits(db: VDb, className: string): Promise<Record<string, number>> {
  const out = await builtinDefaults(db);
  const rows = await db.selectFrom('volume_quota_classes').select(['class_name', 'resource', 'hard_limit']).where('class_name', 'in', [...new Set(['default', className])]).execute();
  for (const name of ['default', className]) for (const r of rows) if (r.class_name === name && Object.hasOwn(out, r.resource)) out[r.resource] = r.hard_limit;
  return out;
}

/** Every project's defaults: the quota class `default`. */
const defaultsOf = (db: VDb) => classLimits(db, 'default');

/** Checks a quota body's keys and values as Cinder does (unknown keys 400; integers from -1). */
function limitsIn(body: Record<string, unknown>, known: Record<string, number>): Array<[string, number]> {
  const bad = Object.keys(body).filter((k) => !Object.hasOwn(known, k) && k !== 'tenant_id' && k !== 'id' && k !== 'class_name');
  if (bad.length) throw badRequest(`Bad key(s) in quota set: ${bad.join(',')}`);
  const out: Array<[string, number]> = [];
  for (const [k, v] of Object.entries(body)) {
    if (k === 'tenant_id' || k === 'id' || k === 'class_name') continue;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isInteger(n)) throw badRequest(`Invalid input received: ${k} must be an integer.`);
    if (n < -1) throw badRequest(`Invalid input received: Quota limit ${n} for ${k} must be greater than or equal to -1.`);
    if (n > 2147483647) throw badRequest(`Invalid input received: Quota limit ${n} for ${k} must be less than or equal to 2147483647.`);
    out.push([k, n]);
  }
  return out;
}

export async function limitsOf(db: VDb, projectId: string): Promise<Record<string, number>> {
  const out = await defaultsOf(db);
  for (const r of await db.selectFrom('volume_quotas').select(['resource', 'hard_limit']).where('project_id', '=', projectId).execute()) {
    if (Object.hasOwn(out, r.resource)) out[r.resource] = r.hard_limit;
  }
  return out;
}

/** What a project uses now, per resource: volumes and snapshots (their sizes count in gigabytes, as Cinder counts them), backups (backup_gigabytes); groups are not served yet: 0. */
export async function usageOf(db: VDb, projectId: string): Promise<Record<string, number>> {
  const rows = await db.selectFrom('volume_volumes').innerJoin('volume_types', 'volume_types.id', 'volume_volumes.volume_type_id')
    .select(['volume_types.name as type', 'volume_volumes.size', 'volume_volumes.requested_size'])
    .where('volume_volumes.project_id', '=', projectId).execute();
  const out: Record<string, number> = { volumes: 0, gigabytes: 0, snapshots: 0, backups: 0, backup_gigabytes: 0, groups: 0, per_volume_gigabytes: 0 };
  for (const t of await db.selectFrom('volume_types').select('name').execute()) for (const p of PER_TYPE) out[`${p}_${t.name}`] = 0;
  for (const r of rows) {
    const gb = Math.max(r.size, r.requested_size ?? 0);
    out.volumes! += 1;
    out.gigabytes! += gb;
    out[`volumes_${r.type}`] = (out[`volumes_${r.type}`] ?? 0) + 1;
    out[`gigabytes_${r.type}`] = (out[`gigabytes_${r.type}`] ?? 0) + gb;
  }
  const snaps = await db.selectFrom('volume_snapshots').innerJoin('volume_types', 'volume_types.id', 'volume_snapshots.volume_type_id')
    .select(['volume_types.name as type', 'volume_snapshots.size']).where('volume_snapshots.project_id', '=', projectId).execute();
  for (const r of snaps) {
    out.snapshots! += 1;
    out.gigabytes! += r.size;
    out[`snapshots_${r.type}`] = (out[`snapshots_${r.type}`] ?? 0) + 1;
    out[`gigabytes_${r.type}`] = (out[`gigabytes_${r.type}`] ?? 0) + r.size;
  }
  for (const r of await db.selectFrom('volume_backups').select('size').where('project_id', '=', projectId).execute()) {
    out.backups! += 1;
    out.backup_gigabytes! += r.size;
  }
  return out;
}

/**
 * Refuses (413 overLimit, Cinder's QuotaError family) `volumes` more volumes
 * and `gigabytes` more GiB of type `typeName` for a project, `size` being the
 * size of the one volume made or extended, `snapshots` more snapshots, and
 * `backups` more backups of `backupGigabytes` GiB (Cinder's
 * BackupLimitExceeded, VolumeBackupSizeExceedsAvailableQuota); call inside
 * the transaction that writes the row (the quota lock is taken here).
 */
export async function checkQuota(tx: VDb, projectId: string, o: {
  typeName?: string; size?: number; volumes?: number; gigabytes?: number; snapshots?: number; backups?: number; backupGigabytes?: number;
  /** A retype: what moves into the type's own keys only (the project's totals do not change). */
  typeOnly?: { volumes: number; gigabytes: number };
}): Promise<void> {
  if (isPostgres(tx)) await sql`select pg_advisory_xact_lock(hashtext(${`volume-quota:${projectId}`}))`.execute(tx);
  const limits = await limitsOf(tx, projectId);
  const perVolume = limits.per_volume_gigabytes!;
  if (o.size !== undefined && perVolume >= 0 && o.size > perVolume) throw sizeExceedsLimit(o.size, perVolume);
  const used = await usageOf(tx, projectId);
  const over = (name: string, want: number) => want > 0 && (limits[name] ?? -1) >= 0 && (used[name] ?? 0) + want > limits[name]!;
  const typed = (name: string) => (o.typeName ? [name, `${name}_${o.typeName}`] : [name]);
  for (const name of typed('gigabytes')) {
    const want = o.typeOnly && name !== 'gigabytes' ? o.typeOnly.gigabytes : o.gigabytes ?? 0;
    if (over(name, want)) throw sizeExceedsQuota(name, want, limits[name]!, used[name] ?? 0);
  }
  for (const name of typed('volumes')) {
    const want = o.typeOnly && name !== 'volumes' ? o.typeOnly.volumes : o.volumes ?? 0;
    if (over(name, want)) throw volumeLimitExceeded(limits[name]!, name);
  }
  for (const name of typed('snapshots')) if (over(name, o.snapshots ?? 0)) throw snapshotLimitExceeded(limits[name]!);
  if (over('backups', o.backups ?? 0)) throw backupLimitExceeded(limits.backups!);
  if (over('backup_gigabytes', o.backupGigabytes ?? 0)) throw backupSizeExceedsQuota(o.backupGigabytes!, limits.backup_gigabytes!, used.backup_gigabytes!);
}

const QuotaBody = Type.Object({
  quota_set: Type.Record(Type.String(), Type.Unknown()),
});

export function quotaRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;
  const target = (rc: { params: Record<string, string> }) => ({ project_id: rc.params.target_project });
  return [
    route({
      method: 'GET', path: '/os-quota-sets/:target_project', rule: 'volume_extension:quotas:show', target,
      async handler(rc) {
        const p = rc.params.target_project!;
        const limits = await limitsOf(db, p);
        const usage = typeof rc.query.usage === 'string' && parseBoolean('usage', rc.query.usage);
        if (!usage) return { quota_set: { id: p, ...limits } };
        const used = await usageOf(db, p);
        const out: Record<string, unknown> = { id: p };
        for (const [k, limit] of Object.entries(limits)) out[k] = { limit, in_use: used[k] ?? 0, reserved: 0, allocated: 0 };
        return { quota_set: out };
      },
    }),
    route({
      method: 'GET', path: '/os-quota-sets/:target_project/defaults', rule: 'volume_extension:quotas:show', target,
      handler: async (rc) => ({ quota_set: { id: rc.params.target_project!, ...await defaultsOf(db) } }),
    }),
    route({
      method: 'PUT', path: '/os-quota-sets/:target_project', rule: 'volume_extension:quotas:update', schema: { body: QuotaBody },
      async handler(rc) {
        const p = rc.params.target_project!;
        const wanted = limitsIn(rc.body.quota_set, await defaultsOf(db));
        await db.transaction().execute(async (tx) => {
          for (const [resource, hard_limit] of wanted) {
            await tx.deleteFrom('volume_quotas').where('project_id', '=', p).where('resource', '=', resource).execute();
            await tx.insertInto('volume_quotas').values({ project_id: p, resource, hard_limit }).execute();
          }
        });
        return { quota_set: await limitsOf(db, p) };
      },
    }),
    route({
      method: 'DELETE', path: '/os-quota-sets/:target_project', rule: 'volume_extension:quotas:delete',
      async handler(rc) {
        await db.deleteFrom('volume_quotas').where('project_id', '=', rc.params.target_project!).execute();
        return undefined;
      },
    }),
    route({
      method: 'GET', path: '/os-quota-class-sets/:class_name', rule: 'volume_extension:quota_classes',
      handler: async (rc) => ({ quota_class_set: { id: rc.params.class_name!, ...await classLimits(db, rc.params.class_name!) } }),
    }),
    route({
      method: 'PUT', path: '/os-quota-class-sets/:class_name', rule: 'volume_extension:quota_classes',
      schema: { body: Type.Object({ quota_class_set: Type.Record(Type.String(), Type.Unknown()) }) },
      async handler(rc) {
        const name = rc.params.class_name!;
        if (name.length > 255) throw badRequest('Invalid input received: the quota class name must be at most 255 characters.');
        const wanted = limitsIn(rc.body.quota_class_set, await builtinDefaults(db));
        await db.transaction().execute(async (tx) => {
          for (const [resource, hard_limit] of wanted) {
            await tx.deleteFrom('volume_quota_classes').where('class_name', '=', name).where('resource', '=', resource).execute();
            await tx.insertInto('volume_quota_classes').values({ class_name: name, resource, hard_limit }).execute();
          }
        });
        return { quota_class_set: await classLimits(db, name) };
      },
    }),
    route({
      method: 'GET', path: '/limits', rule: 'limits_extension:used_limits',
      async handler(rc) {
        const c = rc.cred!;
        // 3.39: an admin may ask for another project's limits
        const asked = typeof rc.query.project_id === 'string' ? rc.query.project_id : undefined;
        const p = asked && isAdmin(c) && mv(rc).ge('3.39') ? asked : c.projectId ?? '';
        const l = await limitsOf(db, p);
        const u = await usageOf(db, p);
        return {
          limits: {
            rate: [],
            absolute: {
              maxTotalVolumes: l.volumes, maxTotalSnapshots: l.snapshots, maxTotalVolumeGigabytes: l.gigabytes,
              maxTotalBackups: l.backups, maxTotalBackupGigabytes: l.backup_gigabytes,
              totalVolumesUsed: u.volumes, totalGigabytesUsed: u.gigabytes, totalSnapshotsUsed: u.snapshots,
              totalBackupsUsed: u.backups, totalBackupGigabytesUsed: u.backup_gigabytes,
            },
          },
        };
      },
    }),
  ];
}
