// /limits, /os-quota-sets/{project_id}[/detail|/defaults] and
// /os-quota-class-sets/{class}: limits per project (and per user in a project),
// default limits, and usage counted from the live rows.
import { badRequest, forbidden } from '../../common/errors.ts';
import type { Db } from '../../db/database.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { getProject } from '../../identity/lookup.ts';
import type { ComputeContext } from './context.ts';
import { boolFrom, mv, q, strictQuery, objectOf } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { classLimits, countOf, keystoneGoverned, projectLimits, quotaKey, QUOTA_RESOURCES, serverUsage, type Limits, type QuotaResource } from './quota.ts';

/** What a project (or a user in it) uses of each resource. */
async function usageFor(db: Db, projectId: string, userId?: string): Promise<Record<QuotaResource, number>> {
  const servers = await serverUsage(db, projectId);
  const keyPairs = userId ? await countOf(db, 'key_pairs', userId) : 0;
  const groups = await countOf(db, 'server_groups', projectId);
  const out = Object.fromEntries(QUOTA_RESOURCES.map((r) => [r, 0])) as Record<QuotaResource, number>;
  Object.assign(out, { instances: servers.instances, cores: servers.cores, ram: servers.ram, key_pairs: keyPairs, server_groups: groups });
  return out;
}

const NETWORK_PROXIES = ['fixed_ips', 'floating_ips', 'security_group_rules', 'security_groups'];
const INJECTED_FILES = ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes'];

/** Resources shown at a microversion: network proxies go at `networkGone`, injected files at 2.57. */
function shownFrom(rc: RouteContext, networkGone: string): QuotaResource[] {
  const v = mv(rc);
  const hidden = [...(v.ge(networkGone) ? NETWORK_PROXIES : []), ...(v.ge('2.57') ? INJECTED_FILES : [])];
  return QUOTA_RESOURCES.filter((r) => !hidden.includes(r));
}
/** Quota sets drop the network proxies at 2.36, quota class sets at 2.50. */
const shown = (rc: RouteContext): QuotaResource[] => shownFrom(rc, '2.36');
const classShown = (rc: RouteContext): QuotaResource[] => shownFrom(rc, '2.50');

async function checkProject(ctx: ComputeContext, id: string): Promise<void> {
  if (!(await getProject(ctx.db, id))) throw badRequest(`Project ID ${id} is not a valid project.`);
}

/** Parses an update body: known resources only (per microversion), integers >= -1, and `force`. */
function parseUpdate(rc: RouteContext, key: 'quota_set' | 'quota_class_set', allowed: QuotaResource[]): { values: Partial<Limits>; force: boolean } {
  const body = objectOf(rc.body);
  const set = objectOf(body?.[key]);
  if (!body || Object.keys(body).some((k) => k !== key) || !set) {
    throw badRequest(`Invalid input for field/attribute ${key}. '${key}' is a required property`);
  }
  const values: Partial<Limits> = {};
  let force = false;
  for (const [k, raw] of Object.entries(set)) {
    if (k === 'force' && key === 'quota_set') {
      try {
        force = boolFrom(raw, true);
      } catch {
        throw badRequest(`Invalid input for field/attribute force. Value: ${String(raw)}.`);
      }
      continue;
    }
    if (!allowed.includes(k as QuotaResource)) throw badRequest(`Invalid input for field/attribute ${key}. Additional properties are not allowed ('${k}' was unexpected)`);
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < -1 || n > 2147483647) throw badRequest(`Invalid input for field/attribute ${k}. Value: ${String(raw)}. ${String(raw)} is not a valid quota limit (an integer from -1 to 2147483647)`);
    values[k as QuotaResource] = n;
  }
  return { values, force };
}

/** Keeps an update's values for `key`, leaving out the resources Keystone governs (keystoneGoverned: a no-op for those). */
async function saveLimits(db: Db, key: string, values: Partial<Limits>, governed: Set<QuotaResource>): Promise<void> {
  for (const r of governed) delete values[r];
  await db.transaction().execute(async (tx) => {
    for (const [resource, hard_limit] of Object.entries(values) as Array<[string, number]>) {
      const r = await tx.updateTable('compute_quotas').set({ hard_limit }).where('project_id', '=', key).where('resource', '=', resource).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) await tx.insertInto('compute_quotas').values({ project_id: key, resource, hard_limit }).execute();
    }
  });
}

const pick = (l: Record<string, number>, keys: QuotaResource[]) => Object.fromEntries(keys.map((k) => [k, l[k]]));

export function quotaRoutes(ctx: ComputeContext): Route[] {
  const db = ctx.db;
  const projectTarget = (rc: RouteContext) => ({ project_id: rc.params.project_id });
  const userOf = (rc: RouteContext) => q(rc, 'user_id') || undefined;
  const strict = (rc: RouteContext, allowed: string[]) => { if (mv(rc).ge('2.75')) strictQuery(rc, allowed); };
  return [
    route({
      method: 'GET', path: '/v2.1/limits', rule: 'os_compute_api:limits',
      async handler(rc) {
        const v = mv(rc);
        strict(rc, ['tenant_id']);
        let projectId = rc.cred!.projectId ?? '';
        const other = q(rc, 'tenant_id');
        if (other) {
          if (!isComputeAdmin(rc.cred)) throw forbidden(`Policy doesn't allow os_compute_api:limits:other_project to be performed.`);
          projectId = other;
        }
        const limits = await projectLimits(db, projectId);
        const used = await usageFor(db, projectId);
        const names: Array<[QuotaResource, string]> = [['ram', 'maxTotalRAMSize'], ['instances', 'maxTotalInstances'], ['cores', 'maxTotalCores'],
          ['key_pairs', 'maxTotalKeypairs'], ['floating_ips', 'maxTotalFloatingIps'], ['metadata_items', 'maxServerMeta'], ['metadata_items', 'maxImageMeta'],
          ['injected_files', 'maxPersonality'], ['injected_file_content_bytes', 'maxPersonalitySize'], ['security_groups', 'maxSecurityGroups'],
          ['security_group_rules', 'maxSecurityGroupRules'], ['server_groups', 'maxServerGroups'], ['server_group_members', 'maxServerGroupMembers']];
        let filtered: string[] = [];
        if (v.ge('2.36')) filtered = ['floating_ips', 'security_groups', 'security_group_rules'];
        if (v.ge('2.57')) filtered = [...filtered, 'injected_files', 'injected_file_content_bytes'];
        const absolute: Record<string, number> = {};
        for (const [r, name] of names) {
          if (filtered.includes(r) || (name === 'maxImageMeta' && v.ge('2.39'))) continue;
          absolute[name] = limits[r];
        }
        const usedNames: Array<[string, QuotaResource]> = [['totalRAMUsed', 'ram'], ['totalCoresUsed', 'cores'], ['totalInstancesUsed', 'instances'],
          ['totalFloatingIpsUsed', 'floating_ips'], ['totalSecurityGroupsUsed', 'security_groups'], ['totalServerGroupsUsed', 'server_groups']];
        for (const [name, r] of usedNames) if (!filtered.includes(r)) absolute[name] = used[r];
        return { limits: { rate: [], absolute } };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-quota-sets/:project_id', rule: 'os_compute_api:os-quota-sets:show', target: projectTarget,
      async handler(rc) {
        strict(rc, ['user_id']);
        const id = rc.params.project_id!;
        await checkProject(ctx, id);
        return { quota_set: { id, ...pick(await projectLimits(db, id, userOf(rc)), shown(rc)) } };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-quota-sets/:project_id/detail', rule: 'os_compute_api:os-quota-sets:show', target: projectTarget,
      async handler(rc) {
        strict(rc, ['user_id']);
        const id = rc.params.project_id!;
        await checkProject(ctx, id);
        const user = userOf(rc);
        const limits = await projectLimits(db, id, user);
        const used = await usageFor(db, id, user ?? (rc.cred!.projectId === id ? rc.cred!.userId : undefined));
        const out: Record<string, unknown> = { id };
        for (const r of shown(rc)) out[r] = { limit: limits[r], in_use: used[r], reserved: 0 };
        return { quota_set: out };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-quota-sets/:project_id/defaults', rule: 'os_compute_api:os-quota-sets:defaults', target: projectTarget,
      async handler(rc) {
        const id = rc.params.project_id!;
        await checkProject(ctx, id);
        return { quota_set: { id, ...pick(await classLimits(db, 'default'), shown(rc)) } };
      },
    }),
    route({
      method: 'PUT', path: '/v2.1/os-quota-sets/:project_id', rule: 'os_compute_api:os-quota-sets:update', target: projectTarget,
      async handler(rc) {
        strict(rc, ['user_id']);
        const id = rc.params.project_id!;
        const { values, force } = parseUpdate(rc, 'quota_set', shown(rc));
        await checkProject(ctx, id);
        const user = userOf(rc);
        const governed = await keystoneGoverned(db, id);
        if (!force) {
          const used = await usageFor(db, id, user);
          const ofProject = user ? await projectLimits(db, id) : undefined;
          for (const [r, limit] of Object.entries(values) as Array<[QuotaResource, number]>) {
            if (governed.has(r)) continue;
            if (limit !== -1 && limit < used[r]) throw badRequest(`Quota limit ${limit} for ${r} must be greater than or equal to already used and reserved ${used[r]}.`);
            if (ofProject && ofProject[r] !== -1 && (limit === -1 || limit > ofProject[r])) {
              throw badRequest(`Quota limit ${limit} for ${r} must be less than or equal to ${ofProject[r]}.`);
            }
          }
        }
        await saveLimits(db, user ? quotaKey.user(id, user) : id, values, governed);
        return { quota_set: pick(await projectLimits(db, id, user), shown(rc)) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/os-quota-sets/:project_id', rule: 'os_compute_api:os-quota-sets:delete', target: projectTarget, status: 202,
      async handler(rc) {
        strict(rc, ['user_id']);
        const id = rc.params.project_id!;
        const user = userOf(rc);
        if (user) await db.deleteFrom('compute_quotas').where('project_id', '=', quotaKey.user(id, user)).execute();
        else await db.deleteFrom('compute_quotas').where((eb) => eb.or([eb('project_id', '=', id), eb('project_id', 'like', quotaKey.user(id, '%'))])).execute();
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-quota-class-sets/:class', rule: 'os_compute_api:os-quota-sets:update',
      async handler(rc) {
        const name = rc.params.class!;
        const limits = await classLimits(db, name);
        return { quota_class_set: { id: name, ...pick(limits, classShown(rc)) } };
      },
    }),
    route({
      method: 'PUT', path: '/v2.1/os-quota-class-sets/:class', rule: 'os_compute_api:os-quota-sets:update',
      async handler(rc) {
        const name = rc.params.class!;
        if (!/^[a-zA-Z0-9_. -]{1,255}$/.test(name)) throw badRequest(`Invalid quota class name ${name}.`);
        const { values } = parseUpdate(rc, 'quota_class_set', classShown(rc));
        await saveLimits(db, quotaKey.class(name), values, await keystoneGoverned(db));
        const limits = await classLimits(db, name);
        return { quota_class_set: pick(limits, classShown(rc)) };
      },
    }),
  ];
}
