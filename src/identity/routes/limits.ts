// Unified limits: /v3/registered_limits (per-service defaults), /v3/limits
// (per-project or per-domain overrides) and /v3/limits/model (the flat model).
// Other services' quotas read them through unifiedLimits() (lookup.ts).
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { hexId } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import { type Route, route } from '../../http/service.ts';
import { resourceRoutes } from '../resource.ts';
import type { IdentityContext } from '../context.ts';
import { patchText, renderList, selfLink, withQueryFilters } from '../http.ts';
import { getDomain, getProject, orNotFound } from '../lookup.ts';

type RegisteredLimitRow = {
  id: string; service_id: string; region_id: string | null; resource_name: string; default_limit: number; description: string;
};
type LimitRow = {
  id: string; project_id: string | null; domain_id: string | null; service_id: string; region_id: string | null;
  resource_name: string; resource_limit: number; description: string;
};

export const LIMIT_MODEL = {
  name: 'flat',
  description: 'Limit enforcement and validation does not take project hierarchy into consideration.',
} as const;

const LimitValue = Type.Integer({ minimum: -1, maximum: 0x7fffffff });
const RegionId = Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()]);
const ResourceName = Type.String({ minLength: 1, maxLength: 255, pattern: '\\S' });
const Description = Type.Union([Type.String({ maxLength: 255 }), Type.Null()]);
const ScopeId = Type.Union([Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9-]+$' }), Type.Null()]);

/** What a registered limit, and every limit under it, is for: a (service, region, resource) triple. */
const LimitKey = {
  service_id: Type.String(),
  region_id: Type.Optional(RegionId),
  resource_name: ResourceName,
};

const RegisteredLimitsCreate = Type.Object({
  registered_limits: Type.Array(Type.Object({
    ...LimitKey,
    default_limit: LimitValue,
    description: Type.Optional(Description),
  }, { additionalProperties: false }), { minItems: 1 }),
}, { additionalProperties: false });
const RegisteredLimitPatch = Type.Object({
  registered_limit: Type.Object({
    service_id: Type.Optional(Type.String()),
    region_id: Type.Optional(RegionId),
    resource_name: Type.Optional(ResourceName),
    default_limit: Type.Optional(LimitValue),
    description: Type.Optional(Description),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const LimitsCreate = Type.Object({
  limits: Type.Array(Type.Object({
    project_id: Type.Optional(ScopeId),
    domain_id: Type.Optional(ScopeId),
    ...LimitKey,
    resource_limit: LimitValue,
    description: Type.Optional(Description),
  }, { additionalProperties: false }), { minItems: 1 }),
}, { additionalProperties: false });
const LimitPatch = Type.Object({
  limit: Type.Object({
    resource_limit: Type.Optional(LimitValue),
    description: Type.Optional(Description),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

/** Keystone's ValidationError text. */
const expecting = (attribute: string, target: string) => badRequest(
  `Expecting to find ${attribute} in ${target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.`,
);
const duplicateEntry = (kind: string) => conflict(`Conflict occurred attempting to store ${kind} - Duplicate entry.`);

/** Keystone keeps a missing description as null; the column keeps it as ''. */
const description = (d: string) => (d === '' ? null : d);

function renderRegisteredLimit(req: FastifyRequest, r: RegisteredLimitRow) {
  return {
    id: r.id, service_id: r.service_id, region_id: r.region_id, resource_name: r.resource_name,
    default_limit: r.default_limit, description: description(r.description), links: selfLink(req, `/registered_limits/${r.id}`),
  };
}

function renderLimit(req: FastifyRequest, l: LimitRow) {
  return {
    id: l.id, project_id: l.project_id, domain_id: l.domain_id, service_id: l.service_id, region_id: l.region_id,
    resource_name: l.resource_name, resource_limit: l.resource_limit, description: description(l.description),
    links: selfLink(req, `/limits/${l.id}`),
  };
}

/** The registered limit a (service, region, resource) triple names, region null-safe. */
function findRegistered(db: Db, serviceId: string, regionId: string | null, resourceName: string) {
  let q = db.selectFrom('identity_registered_limits').selectAll().where('service_id', '=', serviceId).where('resource_name', '=', resourceName);
  q = regionId === null ? q.where('region_id', 'is', null) : q.where('region_id', '=', regionId);
  return q.executeTakeFirst();
}

async function assertCatalogRefs(db: Db, target: string, serviceId: string | undefined, regionId: string | null | undefined): Promise<void> {
  if (serviceId !== undefined && !(await db.selectFrom('identity_services').select('id').where('id', '=', serviceId).executeTakeFirst())) {
    throw expecting('service_id', target);
  }
  if (regionId != null && !(await db.selectFrom('identity_regions').select('id').where('id', '=', regionId).executeTakeFirst())) {
    throw expecting('region_id', target);
  }
}


export function limitsRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  const loadRegistered = (id: string) => orNotFound(
    db.selectFrom('identity_registered_limits').selectAll().where('id', '=', id).executeTakeFirst(),
    () => notFound(`Could not find registered limit for ${id}.`),
  );
  const getLimit = (id: string) => db.selectFrom('identity_limits').selectAll().where('id', '=', id).executeTakeFirst();
  const loadLimit = (id: string) => orNotFound(getLimit(id), () => notFound(`Could not find limit for ${id}.`));
  /** True when project or domain limits hang off the registered limit. */
  const referenced = async (r: RegisteredLimitRow) => {
    let q = db.selectFrom('identity_limits').select('id').where('service_id', '=', r.service_id).where('resource_name', '=', r.resource_name);
    q = r.region_id === null ? q.where('region_id', 'is', null) : q.where('region_id', '=', r.region_id);
    return (await q.executeTakeFirst()) !== undefined;
  };

  return [
    // ---- registered limits
    route({
      method: 'POST', path: '/v3/registered_limits', rule: 'identity:create_registered_limits', status: 201,
      schema: { body: RegisteredLimitsCreate },
      async handler(rc) {
        const items = rc.body.registered_limits;
        const rows: RegisteredLimitRow[] = [];
        for (const it of items) {
          await assertCatalogRefs(db, 'registered_limit', it.service_id, it.region_id);
          const row: RegisteredLimitRow = {
            id: hexId(), service_id: it.service_id, region_id: it.region_id ?? null, resource_name: it.resource_name,
            default_limit: it.default_limit, description: it.description ?? '',
          };
          if (rows.some((r) => r.service_id === row.service_id && r.region_id === row.region_id && r.resource_name === row.resource_name)) {
            throw duplicateEntry('registered_limit');
          }
          rows.push(row);
        }
        // All or nothing.
        await db.transaction().execute(async (tx) => {
          for (const row of rows) {
            if (await findRegistered(tx, row.service_id, row.region_id, row.resource_name)) throw duplicateEntry('registered_limit');
            await tx.insertInto('identity_registered_limits').values(row).execute();
          }
        });
        return { registered_limits: rows.map((r) => renderRegisteredLimit(rc.req, r)) };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/registered_limits', param: 'registered_limit_id', key: 'registered_limit',
      rules: { get: 'identity:get_registered_limit', delete: 'identity:delete_registered_limit' },
      load: loadRegistered, render: renderRegisteredLimit,
      async remove(id, current) {
        if (await referenced(current)) {
          throw forbidden(`Unable to update or delete registered limit ${id} because there are project limits associated with it.`);
        }
        await db.deleteFrom('identity_registered_limits').where('id', '=', id).execute();
      },
      list: {
        rule: 'identity:list_registered_limits', key: 'registered_limits', filters: ['service_id', 'region_id', 'resource_name'],
        query: () => db.selectFrom('identity_registered_limits').selectAll().orderBy('id'),
      },
      update: {
        rule: 'identity:update_registered_limit', schema: RegisteredLimitPatch,
        async check(rc) {
          const p = rc.body.registered_limit;
          await assertCatalogRefs(db, 'registered_limit', p.service_id, p.region_id);
        },
        async apply(rc, current) {
          const id = current.id;
          const p = rc.body.registered_limit;
          const next: RegisteredLimitRow = {
            ...current,
            service_id: p.service_id ?? current.service_id,
            region_id: p.region_id === undefined ? current.region_id : p.region_id,
            resource_name: p.resource_name ?? current.resource_name,
            default_limit: p.default_limit ?? current.default_limit,
            description: patchText(p.description, current.description),
          };
          const moved = next.service_id !== current.service_id || next.region_id !== current.region_id || next.resource_name !== current.resource_name;
          if (moved) {
            // Limits name their registered limit by this triple: it cannot move from under them.
            if (await referenced(current)) {
              throw forbidden(`Unable to update or delete registered limit ${id} because there are project limits associated with it.`);
            }
            const clash = await findRegistered(db, next.service_id, next.region_id, next.resource_name);
            if (clash && clash.id !== id) throw duplicateEntry('registered_limit');
          }
          await db.updateTable('identity_registered_limits').set(next).where('id', '=', id).execute();
          return next;
        },
      },
    }),

    // ---- limits
    {
      method: 'GET', path: '/v3/limits/model', rule: 'identity:get_limit_model',
      handler: () => ({ model: { ...LIMIT_MODEL } }),
    },
    route({
      method: 'POST', path: '/v3/limits', rule: 'identity:create_limits', status: 201, schema: { body: LimitsCreate },
      async handler(rc) {
        const items = rc.body.limits;
        const rows: LimitRow[] = [];
        for (const it of items) {
          const projectId: string | null = it.project_id ?? null;
          const domainId: string | null = it.domain_id ?? null;
          if ((projectId === null) === (domainId === null)) {
            throw badRequest('Invalid input for field limits: a limit names exactly one of project_id and domain_id.');
          }
          await assertCatalogRefs(db, 'limit', it.service_id, it.region_id);
          if (projectId !== null && !(await getProject(db, projectId))) throw expecting('project_id', 'limit');
          if (domainId !== null && !(await getDomain(db, domainId))) throw expecting('domain_id', 'limit');
          const row: LimitRow = {
            id: hexId(), project_id: projectId, domain_id: domainId, service_id: it.service_id, region_id: it.region_id ?? null,
            resource_name: it.resource_name, resource_limit: it.resource_limit, description: it.description ?? '',
          };
          if (!(await findRegistered(db, row.service_id, row.region_id, row.resource_name))) {
            throw forbidden('Unable to create a limit that has no corresponding registered limit.');
          }
          const same = (r: LimitRow) => r.service_id === row.service_id && r.region_id === row.region_id &&
            r.resource_name === row.resource_name && r.project_id === row.project_id && r.domain_id === row.domain_id;
          if (rows.some(same)) throw duplicateEntry('limit');
          rows.push(row);
        }
        await db.transaction().execute(async (tx) => {
          for (const row of rows) {
            let q = tx.selectFrom('identity_limits').select('id')
              .where('service_id', '=', row.service_id).where('resource_name', '=', row.resource_name);
            q = row.region_id === null ? q.where('region_id', 'is', null) : q.where('region_id', '=', row.region_id);
            q = row.project_id !== null ? q.where('project_id', '=', row.project_id) : q.where('domain_id', '=', row.domain_id!);
            if (await q.executeTakeFirst()) throw duplicateEntry('limit');
            await tx.insertInto('identity_limits').values(row).execute();
          }
        });
        return { limits: rows.map((r) => renderLimit(rc.req, r)) };
      },
    }),
    {
      method: 'GET', path: '/v3/limits', rule: 'identity:list_limits',
      async handler(rc) {
        const q = withQueryFilters(db.selectFrom('identity_limits').selectAll().orderBy('id'), rc,
          ['service_id', 'region_id', 'resource_name', 'project_id', 'domain_id']);
        const c = rc.cred!;
        // As Keystone: the cloud admin (and services) see all; a domain-scoped caller their domain's
        // limits and its projects'; a project-scoped caller their project's; anyone else nothing.
        let rows: LimitRow[];
        if (c.system || c.roles.has('admin') || c.roles.has('service')) rows = await q.execute();
        else if (c.domainId !== null) {
          const projects = new Set((await db.selectFrom('identity_projects').select('id').where('domain_id', '=', c.domainId).execute()).map((p) => p.id));
          rows = (await q.execute()).filter((l) => (l.project_id !== null ? projects.has(l.project_id) : l.domain_id === c.domainId));
        } else if (c.projectId !== null) rows = await q.where('project_id', '=', c.projectId).execute();
        else rows = [];
        return renderList(rc.req, 'limits', rows, renderLimit);
      },
    },
    {
      method: 'GET', path: '/v3/limits/:limit_id', rule: 'identity:get_limit',
      // The rule reads the limit's project and domain; a missing limit is reported after the check.
      async target(rc) {
        const l = await getLimit(rc.params.limit_id!);
        if (!l) return {};
        if (l.project_id !== null) return { project_id: l.project_id, domain_id: (await getProject(db, l.project_id))?.domain_id };
        return { domain_id: l.domain_id };
      },
      handler: async (rc) => ({ limit: renderLimit(rc.req, await loadLimit(rc.params.limit_id!)) }),
    },
    route({
      method: 'PATCH', path: '/v3/limits/:limit_id', rule: 'identity:update_limit', schema: { body: LimitPatch },
      async handler(rc) {
        const id = rc.params.limit_id!;
        const p = rc.body.limit;
        const current = await loadLimit(id);
        const next: LimitRow = {
          ...current,
          resource_limit: p.resource_limit ?? current.resource_limit,
          description: patchText(p.description, current.description),
        };
        await db.updateTable('identity_limits').set({ resource_limit: next.resource_limit, description: next.description }).where('id', '=', id).execute();
        return { limit: renderLimit(rc.req, next) };
      },
    }),
    {
      method: 'DELETE', path: '/v3/limits/:limit_id', rule: 'identity:delete_limit', status: 204,
      async handler(rc) {
        const id = rc.params.limit_id!;
        await loadLimit(id);
        await db.deleteFrom('identity_limits').where('id', '=', id).execute();
      },
    },
  ];
}
