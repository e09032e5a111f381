// Row lookups shared by authentication and the resource routes.
import type { Db } from '../db/database.ts';
import { type ApiError, notFound } from '../common/errors.ts';

export const getDomain = (db: Db, id: string) =>
  db.selectFrom('identity_domains').selectAll().where('id', '=', id).executeTakeFirst();
export const getDomainByName = (db: Db, name: string) =>
  db.selectFrom('identity_domains').selectAll().where('name', '=', name).executeTakeFirst();
export const getProject = (db: Db, id: string) =>
  db.selectFrom('identity_projects').selectAll().where('id', '=', id).executeTakeFirst();
export const getProjectByName = (db: Db, domainId: string, name: string) =>
  db.selectFrom('identity_projects').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
export const getUser = (db: Db, id: string) =>
  db.selectFrom('identity_users').selectAll().where('id', '=', id).executeTakeFirst();
export const getUserByName = (db: Db, domainId: string, name: string) =>
  db.selectFrom('identity_users').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
export const getGroup = (db: Db, id: string) =>
  db.selectFrom('identity_groups').selectAll().where('id', '=', id).executeTakeFirst();
export const getRole = (db: Db, id: string) =>
  db.selectFrom('identity_roles').selectAll().where('id', '=', id).executeTakeFirst();

/** Keystone's 404 message for a missing entity: "Could not find user: <id>." */
export const missing = (kind: string, id: string) => notFound(`Could not find ${kind}: ${id}.`);

/** The row, or `error()`: a 404 in Keystone's words for this kind of entity. */
export async function orNotFound<T>(row: Promise<T | undefined>, error: () => ApiError): Promise<T> {
  const r = await row;
  if (!r) throw error();
  return r;
}

/** The row, or the 404 `missing(kind, id)`. */
export const mustGet = <T>(row: Promise<T | undefined>, kind: string, id: string): Promise<T> => orNotFound(row, () => missing(kind, id));

/**
 * A service's limits as one project sees them under the flat model, by
 * resource name: the project's own limit where it has one, else the
 * registered default (or, with no project, the registered defaults alone).
 * This is what the other services' quotas read. -1 means unlimited. A region
 * narrows the match, with region-less entries as the fallback.
 */
export async function unifiedLimits(
  db: Db,
  q: { projectId?: string; serviceType?: string; serviceId?: string; regionId?: string },
): Promise<Map<string, number>> {
  let serviceIds: string[];
  if (q.serviceId !== undefined) serviceIds = [q.serviceId];
  else if (q.serviceType !== undefined) {
    serviceIds = (await db.selectFrom('identity_services').select('id').where('type', '=', q.serviceType).execute()).map((r) => r.id);
  } else throw new Error('unifiedLimits needs a serviceId or a serviceType');
  const out = new Map<string, number>();
  if (serviceIds.length === 0) return out;
  // Best match first: the asked region, then no region, then (when no region was asked) any region.
  const rank = (regionId: string | null) =>
    q.regionId !== undefined ? (regionId === q.regionId ? 0 : regionId === null ? 1 : -1) : regionId === null ? 0 : 1;
  // Rows come by region, then service, so equal ranks resolve the same way every time on either database.
  const best = (rows: Array<{ resource_name: string; region_id: string | null; value: number }>) => {
    const found = new Map<string, { rank: number; value: number }>();
    for (const r of rows) {
      const rk = rank(r.region_id);
      if (rk >= 0 && rk < (found.get(r.resource_name)?.rank ?? Infinity)) found.set(r.resource_name, { rank: rk, value: r.value });
    }
    return found;
  };
  const registered = best(await db.selectFrom('identity_registered_limits').select(['resource_name', 'region_id', 'default_limit as value'])
    .where('service_id', 'in', serviceIds).orderBy('region_id').orderBy('service_id').execute());
  const own = q.projectId === undefined ? new Map() : best(await db.selectFrom('identity_limits')
    .select(['resource_name', 'region_id', 'resource_limit as value'])
    .where('project_id', '=', q.projectId).where('service_id', 'in', serviceIds).orderBy('region_id').orderBy('service_id').execute());
  for (const [name, r] of registered) out.set(name, r.value);
  for (const [name, r] of own) out.set(name, r.value);
  return out;
}
