// Compute quotas: limits per project (Keystone's unified limits, else the
// built-in defaults under Nova's quota classes and sets in compute_quotas),
// usage counted from the live rows, and checks that run inside the
// transaction that creates what they count.
import type { Transaction } from 'kysely';
import { ApiError } from '../../common/errors.ts';
import type { Db } from '../../db/database.ts';
import { isPostgres } from '../../db/migration-helpers.ts';
import type { Tables } from '../../db/tables.ts';
import { REGION } from '../../identity/bootstrap.ts';
import { unifiedLimits } from '../../identity/lookup.ts';

const QUOTA_DEFAULTS = {
  instances: 10,
  cores: 20,
  ram: 51200,
  metadata_items: 128,
  injected_files: 5,
  injected_file_content_bytes: 10240,
  injected_file_path_bytes: 255,
  key_pairs: 100,
  server_groups: 10,
  server_group_members: 10,
  // Proxied to the network service before 2.36; kept for the old views.
  fixed_ips: -1,
  floating_ips: 10,
  security_groups: 10,
  security_group_rules: 20,
} as const;
export type QuotaResource = keyof typeof QUOTA_DEFAULTS;
export const QUOTA_RESOURCES = Object.keys(QUOTA_DEFAULTS) as QuotaResource[];

export type Limits = Record<QuotaResource, number>;
type Executor = Db | Transaction<Tables>;

/**
 * Nova's names for these resources in Keystone's unified limits (registered
 * limits and project limits of a service of type compute), as its unified
 * limits driver reads them.
 */
const UNIFIED_LIMIT_NAMES: Partial<Record<QuotaResource, string>> = {
  instances: 'servers',
  cores: 'class:VCPU',
  ram: 'class:MEMORY_MB',
  metadata_items: 'server_metadata_items',
  injected_files: 'server_injected_files',
  injected_file_content_bytes: 'server_injected_file_content_bytes',
  injected_file_path_bytes: 'server_injected_file_path_bytes',
  key_pairs: 'server_key_pairs',
  server_groups: 'server_groups',
  server_group_members: 'server_group_members',
};

/** The compute_quotas key of a quota class, of a project's quota set (its id), and of a user's within it. */
export const quotaKey = {
  class: (name: string) => `__class__/${name}`,
  user: (projectId: string, userId: string) => `${projectId}/${userId}`,
};

/**
 * The limits that apply to a project (and to a user in it). A resource with a
 * limit in Keystone (registered for this region, or the project's own) takes
 * Keystone's value, as under Nova's unified-limits driver; Nova's quota sets
 * and classes do not store one for it (see keystoneGoverned). Every other
 * resource takes the built-in default, overridden by the 'default' quota
 * class, the project's quota set and the user's quota set within the project.
 */
export const projectLimits = (db: Executor, projectId: string, userId?: string): Promise<Limits> => layered(db, 'default', projectId, userId);

/** A quota class's limits (Nova uses only 'default'): what a project without limits of its own gets. */
export const classLimits = (db: Executor, name: string): Promise<Limits> => layered(db, name);

async function layered(db: Executor, quotaClass: string, projectId?: string, userId?: string): Promise<Limits> {
  const keys = [quotaKey.class(quotaClass), ...(projectId !== undefined ? [projectId] : []), ...(projectId !== undefined && userId ? [quotaKey.user(projectId, userId)] : [])];
  const rows = await db.selectFrom('compute_quotas').select(['project_id', 'resource', 'hard_limit']).where('project_id', 'in', keys).execute();
  const out = { ...QUOTA_DEFAULTS } as Limits;
  for (const key of keys) {
    for (const r of rows) if (r.project_id === key && r.resource in out) out[r.resource as QuotaResource] = r.hard_limit;
  }
  return { ...out, ...(await keystoneLimits(db, projectId)) };
}

/** The resources Keystone has a limit for in this region: the project's own, else registered (every project's, when no project is given). */
async function keystoneLimits(db: Executor, projectId?: string): Promise<Partial<Limits>> {
  const keystone = await unifiedLimits(db, { projectId, serviceType: 'compute', regionId: REGION });
  const out: Partial<Limits> = {};
  for (const [resource, name] of Object.entries(UNIFIED_LIMIT_NAMES) as Array<[QuotaResource, string]>) {
    const v = keystone.get(name);
    if (v !== undefined) out[resource] = v;
  }
  return out;
}

/**
 * The resources of a quota set or class update that Keystone governs (for the
 * project, or registered for all when no project is given). Nova's
 * unified-limits driver makes updates of those a no-op: nothing is checked or
 * stored, so a value written back by a client cannot take effect later, once
 * the Keystone limit is gone.
 */
export async function keystoneGoverned(db: Executor, projectId?: string): Promise<Set<QuotaResource>> {
  return new Set(Object.keys(await keystoneLimits(db, projectId)) as QuotaResource[]);
}

/** Instances, cores and ram in use by a project (servers being deleted no longer count). */
export async function serverUsage(db: Executor, projectId: string): Promise<{ instances: number; cores: number; ram: number }> {
  const r = await db.selectFrom('compute_servers')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('vcpus').as('cores'), eb.fn.sum<number>('memory_mb').as('ram')])
    .where('project_id', '=', projectId).where('deleted_at', 'is', null)
    .where((eb) => eb.or([eb('task_state', 'is', null), eb('task_state', '!=', 'deleting')])).executeTakeFirst();
  return { instances: Number(r?.n ?? 0), cores: Number(r?.cores ?? 0), ram: Number(r?.ram ?? 0) };
}

export async function countOf(db: Executor, what: 'key_pairs' | 'server_groups', owner: string): Promise<number> {
  const r = what === 'key_pairs'
    ? await db.selectFrom('compute_keypairs').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', owner).executeTakeFirst()
    : await db.selectFrom('compute_server_groups').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', owner).executeTakeFirst();
  return Number(r?.n ?? 0);
}

export async function groupMembers(db: Executor, groupId: string): Promise<number> {
  const r = await db.selectFrom('compute_server_group_members as m')
    .innerJoin('compute_servers as s', 's.id', 'm.server_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('m.group_id', '=', groupId).where('s.deleted_at', 'is', null).executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Nova's OverQuota: 403 with "Quota exceeded for <resources>: Requested N, but already used U of L <resources>". */
export function overQuota(resources: string[], requested: number[], used: number[], allowed: number[]): ApiError {
  const names = resources.join(', ');
  return new ApiError('Forbidden', `Quota exceeded for ${names}: Requested ${requested.join(', ')}, but already used ${used.join(', ')} of ${allowed.join(', ')} ${names}`);
}

export const within = (limit: number, used: number, wanted: number): boolean => limit < 0 || used + wanted <= limit;

/**
 * Runs `fn` in a transaction that serialises claims (quota and capacity): on
 * SQLite the one writer connection already does; on PostgreSQL the
 * transaction is serializable and retried on a serialization failure.
 */
export async function claimTransaction<T>(db: Db, fn: (tx: Transaction<Tables>) => Promise<T>): Promise<T> {
  if (!isPostgres(db)) return db.transaction().execute(fn);
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction().setIsolationLevel('serializable').execute(fn);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // a dozen creates of one project at once on a loaded host lost all of 9 tries (a 500 in the scheduling race test):
      // retried longer, the wait growing to at most half a second
      if ((code === '40001' || code === '40P01') && attempt < 30) {
        await new Promise((r) => setTimeout(r, 5 + Math.random() * Math.min(500, 20 * (attempt + 1))));
        continue;
      }
      throw e;
    }
  }
}

