// /v3/regions, /v3/services, /v3/endpoints and OS-EP-FILTER (endpoint groups and
// project-endpoint associations). Every catalog write refreshes the in-memory
// catalog, so tokens issued afterwards carry the change.
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { ApiError, badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { hexId } from '../../common/ids.ts';
import { type Route, route } from '../../http/service.ts';
import type { Db } from '../../db/database.ts';
import { resourceRoutes } from '../resource.ts';
import type { IdentityContext } from '../context.ts';
import { extraOf, mergeExtra, patchFlag, patchText, queryString, renderList, selfLink, splitExtra, v3Url } from '../http.ts';
import { conflictOnDuplicate, ignoreDuplicate } from '../../db/unique.ts';
import { getProject, missing, mustGet } from '../lookup.ts';

type Tx = Db;
type RegionRow = { id: string; description: string; parent_region_id: string | null; extra: string };
type ServiceRow = { id: string; type: string; name: string; description: string; enabled: number; extra: string };
type EndpointRow = { id: string; service_id: string; interface: string; url: string; region_id: string | null; enabled: number; extra: string };
type EndpointGroupRow = { id: string; name: string; description: string; filters: string };
type ProjectRow = NonNullable<Awaited<ReturnType<typeof getProject>>>;

const INTERFACES = ['admin', 'internal', 'public'] as const;
const Interface = Type.Enum([...INTERFACES]);
const NullableString = (max?: number) => Type.Union([Type.String(max ? { maxLength: max } : {}), Type.Null()]);
const RegionId = Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()]);
const Name = Type.String({ minLength: 1, maxLength: 255, pattern: '\\S' });

const RegionFields = {
  description: Type.Optional(NullableString(255)),
  parent_region_id: Type.Optional(RegionId),
};
const RegionCreate = Type.Object({
  region: Type.Object({ ...RegionFields, id: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])) }, { additionalProperties: true }),
});
const RegionPatch = Type.Object({
  region: Type.Object({ ...RegionFields, id: Type.Optional(RegionId) }, { additionalProperties: true, minProperties: 1 }),
});
const ServiceFields = {
  type: Type.String({ minLength: 1, maxLength: 255 }),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  description: Type.Optional(NullableString()),
  enabled: Type.Optional(Type.Boolean()),
};
const ServiceCreate = Type.Object({ service: Type.Object(ServiceFields, { additionalProperties: true }) });
const ServicePatch = Type.Object({
  // id only to refuse a change of it.
  service: Type.Object({ ...ServiceFields, type: Type.Optional(ServiceFields.type), id: Type.Optional(Type.Unknown()) }, { additionalProperties: true, minProperties: 1 }),
});
const EndpointFields = {
  interface: Interface,
  service_id: Type.String(),
  url: Type.String({ maxLength: 225, pattern: '^[a-zA-Z0-9+.-]+:.+' }),
  region_id: Type.Optional(RegionId),
  region: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  enabled: Type.Optional(Type.Boolean()),
  name: Type.Optional(Type.String()),
  description: Type.Optional(NullableString()),
};
const EndpointCreate = Type.Object({
  endpoint: Type.Object({ ...EndpointFields, id: Type.Optional(Type.String()) }, { additionalProperties: true }),
});
const EndpointPatch = Type.Object({
  endpoint: Type.Object({
    ...EndpointFields,
    interface: Type.Optional(Interface), service_id: Type.Optional(EndpointFields.service_id), url: Type.Optional(EndpointFields.url),
    id: Type.Optional(Type.Unknown()), // only to refuse a change of it
  }, { additionalProperties: true, minProperties: 1 }),
});
const Filters = Type.Object({
  interface: Type.Optional(Interface),
  service_id: Type.Optional(Type.String()),
  region_id: Type.Optional(RegionId),
  enabled: Type.Optional(Type.Boolean()),
}, { additionalProperties: true });
const EndpointGroupCreate = Type.Object({
  endpoint_group: Type.Object({
    name: Name, filters: Filters, description: Type.Optional(NullableString()),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const EndpointGroupPatch = Type.Object({
  endpoint_group: Type.Object({
    name: Type.Optional(Name), filters: Type.Optional(Filters), description: Type.Optional(NullableString()),
  }, { additionalProperties: false, minProperties: 1 }),
}, { additionalProperties: false });

type RegionBody = Static<typeof RegionCreate>['region'];
/** What an endpoint body says of its region: region_id, or the legacy region. */
type EndpointRegion = { region_id?: string | null; region?: string | null };

const REGION_KNOWN = ['id', 'description', 'parent_region_id', 'links'];
const SERVICE_KNOWN = ['id', 'type', 'name', 'description', 'enabled', 'links'];
const ENDPOINT_KNOWN = ['id', 'interface', 'service_id', 'url', 'region_id', 'region', 'enabled', 'links', 'legacy_endpoint_id'];
const FILTER_KEYS = ['service_id', 'region_id', 'interface'];

/** Keystone's ValidationError text. */
const expecting = (attribute: string, target: string) => badRequest(
  `Expecting to find ${attribute} in ${target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.`,
);
const cannotChangeId = () => badRequest('Cannot change ID');

export function renderRegion(req: FastifyRequest, r: RegionRow) {
  return { ...extraOf(r.extra), id: r.id, description: r.description, parent_region_id: r.parent_region_id, links: selfLink(req, `/regions/${r.id}`) };
}

export function renderService(req: FastifyRequest, s: ServiceRow) {
  return {
    ...extraOf(s.extra), id: s.id, type: s.type, name: s.name, description: s.description, enabled: s.enabled === 1,
    links: selfLink(req, `/services/${s.id}`),
  };
}

export function renderEndpoint(req: FastifyRequest, e: EndpointRow) {
  return {
    ...extraOf(e.extra), id: e.id, interface: e.interface, region_id: e.region_id, region: e.region_id, service_id: e.service_id,
    url: e.url, enabled: e.enabled === 1, links: selfLink(req, `/endpoints/${e.id}`),
  };
}

function renderEndpointGroup(req: FastifyRequest, g: EndpointGroupRow) {
  return {
    id: g.id, name: g.name, description: g.description === '' ? null : g.description, filters: extraOf(g.filters),
    links: selfLink(req, `/OS-EP-FILTER/endpoint_groups/${g.id}`),
  };
}

function renderProject(req: FastifyRequest, p: ProjectRow) {
  return {
    ...extraOf(p.extra), id: p.id, name: p.name, domain_id: p.domain_id, description: p.description, enabled: p.enabled === 1,
    parent_id: p.parent_id ?? p.domain_id, is_domain: false, links: selfLink(req, `/projects/${p.id}`),
  };
}

/** Keystone refuses URLs with substitutions other than its whitelist (check_endpoint_url). */
const URL_SUBSTITUTIONS = new Set(['tenant_id', 'project_id', 'user_id', 'compute_host', 'public_endpoint']);
function checkEndpointUrl(url: string): void {
  const invalid = new ApiError('BadRequest', `Cannot create an endpoint with an invalid URL: ${url}.`);
  let i = url.indexOf('$(');
  while (i !== -1) {
    const m = /^\$\(([^)]*)\)([a-zA-Z])/.exec(url.slice(i));
    if (!m || !URL_SUBSTITUTIONS.has(m[1]!) || !'sdirfFeEgGxXoc'.includes(m[2]!)) throw invalid;
    i = url.indexOf('$(', i + m[0].length);
  }
}

const getRegion = (db: Db, id: string) => db.selectFrom('identity_regions').selectAll().where('id', '=', id).executeTakeFirst();
const getService = (db: Db, id: string) => db.selectFrom('identity_services').selectAll().where('id', '=', id).executeTakeFirst();
const getEndpoint = (db: Db, id: string) => db.selectFrom('identity_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
const getEndpointGroup = (db: Db, id: string) => db.selectFrom('identity_endpoint_groups').selectAll().where('id', '=', id).executeTakeFirst();

/** The region and every region below it (cycle-safe). */
async function regionSubtree(db: Tx, id: string): Promise<string[]> {
  const all = await db.selectFrom('identity_regions').select(['id', 'parent_region_id']).execute();
  const out = [id];
  const seen = new Set(out);
  for (let k = 0; k < out.length; k++) {
    for (const r of all) {
      if (r.parent_region_id === out[k] && !seen.has(r.id)) {
        seen.add(r.id);
        out.push(r.id);
      }
    }
  }
  return out;
}

/** Rejects a parent that would make the region its own ancestor (Keystone: 400). */
async function assertNoCycle(db: Db, regionId: string, parentId: string | null): Promise<void> {
  const seen = new Set<string>();
  let current = parentId;
  while (current) {
    if (current === regionId) throw badRequest(`The specified parent region ${parentId} would create a circular region hierarchy.`);
    if (seen.has(current)) return;
    seen.add(current);
    current = (await getRegion(db, current))?.parent_region_id ?? null;
  }
}

/** Endpoints that match an endpoint group's filters. */
function matchesFilters(e: EndpointRow, filters: Record<string, unknown>): boolean {
  return Object.entries(filters).every(([k, v]) => {
    if (k === 'enabled') return (e.enabled === 1) === v;
    return (e as unknown as Record<string, unknown>)[k] === v;
  });
}

function checkFilters(filters: Record<string, unknown> | undefined, creating: boolean): void {
  if (creating && (!filters || Object.keys(filters).length === 0)) throw badRequest('filters field is required and cannot be empty');
  for (const k of Object.keys(filters ?? {})) {
    if (!FILTER_KEYS.includes(k)) throw expecting(FILTER_KEYS.join(' or '), 'endpoint_group');
  }
}

/** The endpoints a project is associated with, directly or through endpoint groups. */
export async function endpointsForProject(db: Db, projectId: string): Promise<EndpointRow[]> {
  const direct = (await db.selectFrom('identity_project_endpoints').select('endpoint_id').where('project_id', '=', projectId).execute()).map((r) => r.endpoint_id);
  const groupIds = (await db.selectFrom('identity_project_endpoint_groups').select('endpoint_group_id').where('project_id', '=', projectId).execute())
    .map((r) => r.endpoint_group_id);
  if (direct.length === 0 && groupIds.length === 0) return [];
  const endpoints = await db.selectFrom('identity_endpoints').selectAll().orderBy('id').execute();
  const groups = groupIds.length ? await db.selectFrom('identity_endpoint_groups').selectAll().where('id', 'in', groupIds).execute() : [];
  const wanted = new Set(direct);
  return endpoints.filter((e) => wanted.has(e.id) || groups.some((g) => matchesFilters(e, extraOf(g.filters))));
}

export function catalogRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  const loadRegion = (id: string) => mustGet(getRegion(db, id), 'region', id);
  const loadService = (id: string) => mustGet(getService(db, id), 'service', id);
  const loadEndpoint = (id: string) => mustGet(getEndpoint(db, id), 'endpoint', id);
  const loadGroup = (id: string) => mustGet(getEndpointGroup(db, id), 'Endpoint Group', id);
  const loadProject = (id: string) => mustGet(getProject(db, id), 'project', id);
  const changed = () => ctx.catalog.invalidate();

  async function createRegion(req: FastifyRequest, id: string, body: RegionBody) {
    const duplicateRegion = () => conflict(`Conflict occurred attempting to store region - Duplicate ID, ${id}.`);
    if (await getRegion(db, id)) throw duplicateRegion();
    const parent = body.parent_region_id ?? null;
    if (parent !== null && !(await getRegion(db, parent))) throw missing('region', parent);
    const row: RegionRow = {
      id, description: body.description ?? '', parent_region_id: parent,
      extra: JSON.stringify(splitExtra(body, REGION_KNOWN)),
    };
    await conflictOnDuplicate(db.insertInto('identity_regions').values(row).execute(), duplicateRegion);
    await changed();
    return { region: renderRegion(req, row) };
  }

  /** Resolves an endpoint body's region: region_id must exist; a legacy `region` is created when missing. */
  async function resolveEndpointRegion(body: EndpointRegion): Promise<string | null | undefined> {
    const regionId = body.region_id;
    const legacy = body.region;
    if (regionId == null && legacy != null) {
      if (!(await getRegion(db, legacy))) {
        // Created concurrently meanwhile: fine.
        await ignoreDuplicate(
          db.insertInto('identity_regions').values({ id: legacy, description: '', parent_region_id: null, extra: '{}' }).execute(),
        );
      }
      return legacy;
    }
    if (regionId != null && !(await getRegion(db, regionId))) throw expecting('endpoint region_id', 'region table');
    return regionId;
  }

  return [
    // ---- regions
    route({
      method: 'POST', path: '/v3/regions', rule: 'identity:create_region', status: 201, schema: { body: RegionCreate },
      handler: (rc) => {
        const r = rc.body.region;
        return createRegion(rc.req, r.id || hexId(), r);
      },
    }),
    route({
      method: 'PUT', path: '/v3/regions/:region_id', rule: 'identity:create_region', status: 201, schema: { body: RegionCreate },
      handler: (rc) => {
        const id = rc.params.region_id!;
        const r = rc.body.region;
        if ('id' in r && r.id !== id) throw badRequest(`Conflicting region IDs specified: "${id}" != "${String(r.id)}"`);
        return createRegion(rc.req, id, r);
      },
    }),
    ...resourceRoutes({
      collection: '/v3/regions', param: 'region_id', key: 'region', rules: { get: 'identity:get_region', delete: 'identity:delete_region' },
      load: loadRegion, render: renderRegion,
      async remove(id) {
        // As Keystone: child regions go with their parent, unless an endpoint lives anywhere below.
        await db.transaction().execute(async (tx) => {
          const ids = await regionSubtree(tx, id);
          const used = await tx.selectFrom('identity_endpoints').select('id').where('region_id', 'in', ids).executeTakeFirst();
          if (used) throw forbidden(`Unable to delete region ${id} because it or its child regions have associated endpoints.`);
          const limited = await tx.selectFrom('identity_registered_limits').select('id').where('region_id', 'in', ids).executeTakeFirst();
          if (limited) throw forbidden(`Unable to delete region ${id} because it or its child regions have associated registered limits.`);
          await tx.deleteFrom('identity_regions').where('id', 'in', ids).execute();
        });
        await changed();
      },
      list: {
        rule: 'identity:list_regions', key: 'regions', filters: ['parent_region_id'],
        query: () => db.selectFrom('identity_regions').selectAll().orderBy('id'),
      },
      update: {
        rule: 'identity:update_region', schema: RegionPatch,
        async check(rc) {
          const r = rc.body.region;
          if (r.id != null && r.id !== rc.params.region_id) throw cannotChangeId();
          const parent = r.parent_region_id;
          if (parent != null && !(await getRegion(db, parent))) throw missing('region', parent);
        },
        async apply(rc, current) {
          const r = rc.body.region;
          const parent = r.parent_region_id;
          const next: RegionRow = {
            ...current,
            description: patchText(r.description, current.description),
            parent_region_id: parent === undefined ? current.parent_region_id : parent,
            extra: mergeExtra(current.extra, r, REGION_KNOWN),
          };
          await assertNoCycle(db, current.id, next.parent_region_id);
          await db.updateTable('identity_regions').set(next).where('id', '=', current.id).execute();
          await changed();
          return next;
        },
      },
    }),

    // ---- services
    route({
      method: 'POST', path: '/v3/services', rule: 'identity:create_service', status: 201, schema: { body: ServiceCreate },
      async handler(rc) {
        const s = rc.body.service;
        const row: ServiceRow = {
          id: hexId(), type: s.type, name: s.name ?? '', description: s.description ?? '',
          enabled: s.enabled === false ? 0 : 1, extra: JSON.stringify(splitExtra(s, SERVICE_KNOWN)),
        };
        await db.insertInto('identity_services').values(row).execute();
        await changed();
        return { service: renderService(rc.req, row) };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/services', param: 'service_id', key: 'service', rules: { get: 'identity:get_service', delete: 'identity:delete_service' },
      load: loadService, render: renderService,
      async remove(id) {
        // The service's endpoints, their project associations and the service's limits go with it.
        await db.transaction().execute(async (tx) => {
          const eps = (await tx.selectFrom('identity_endpoints').select('id').where('service_id', '=', id).execute()).map((r) => r.id);
          if (eps.length) await tx.deleteFrom('identity_project_endpoints').where('endpoint_id', 'in', eps).execute();
          await tx.deleteFrom('identity_endpoints').where('service_id', '=', id).execute();
          await tx.deleteFrom('identity_limits').where('service_id', '=', id).execute();
          await tx.deleteFrom('identity_registered_limits').where('service_id', '=', id).execute();
          await tx.deleteFrom('identity_services').where('id', '=', id).execute();
        });
        await changed();
      },
      list: {
        rule: 'identity:list_services', key: 'services', filters: ['type', 'name'],
        query: () => db.selectFrom('identity_services').selectAll().orderBy('type').orderBy('id'),
      },
      update: {
        rule: 'identity:update_service', schema: ServicePatch,
        check(rc) {
          const s = rc.body.service;
          if (s.id != null && s.id !== rc.params.service_id) throw cannotChangeId();
        },
        async apply(rc, current) {
          const s = rc.body.service;
          const next: ServiceRow = {
            ...current,
            type: s.type ?? current.type,
            name: s.name ?? current.name,
            description: patchText(s.description, current.description),
            enabled: patchFlag(s.enabled, current.enabled),
            extra: mergeExtra(current.extra, s, SERVICE_KNOWN),
          };
          await db.updateTable('identity_services').set(next).where('id', '=', current.id).execute();
          await changed();
          return next;
        },
      },
    }),

    // ---- endpoints
    route({
      method: 'POST', path: '/v3/endpoints', rule: 'identity:create_endpoint', status: 201, schema: { body: EndpointCreate },
      async handler(rc) {
        const e = rc.body.endpoint;
        checkEndpointUrl(e.url);
        const regionId = await resolveEndpointRegion(e);
        if (!(await getService(db, e.service_id))) throw expecting('endpoint service_id', 'service table');
        const row: EndpointRow = {
          id: hexId(), service_id: e.service_id, interface: e.interface, url: e.url,
          region_id: regionId ?? null, enabled: e.enabled === false ? 0 : 1, extra: JSON.stringify(splitExtra(e, ENDPOINT_KNOWN)),
        };
        await db.insertInto('identity_endpoints').values(row).execute();
        await changed();
        return { endpoint: renderEndpoint(rc.req, row) };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/endpoints', param: 'endpoint_id', key: 'endpoint', rules: { get: 'identity:get_endpoint', delete: 'identity:delete_endpoint' },
      load: loadEndpoint, render: renderEndpoint,
      async remove(id) {
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('identity_project_endpoints').where('endpoint_id', '=', id).execute();
          await tx.deleteFrom('identity_endpoints').where('id', '=', id).execute();
        });
        await changed();
      },
      list: {
        rule: 'identity:list_endpoints', key: 'endpoints', filters: ['service_id', 'region_id'],
        query(rc) {
          const q = db.selectFrom('identity_endpoints').selectAll().orderBy('id');
          const iface = queryString(rc, 'interface');
          if (iface === undefined) return q;
          if (!(INTERFACES as readonly string[]).includes(iface)) throw badRequest(`Invalid input for field 'interface': '${iface}' is not one of ${INTERFACES.join(', ')}.`);
          return q.where('interface', '=', iface);
        },
      },
      update: {
        rule: 'identity:update_endpoint', schema: EndpointPatch,
        check(rc) {
          const e = rc.body.endpoint;
          if (e.id != null && e.id !== rc.params.endpoint_id) throw cannotChangeId();
        },
        async apply(rc, current) {
          const e = rc.body.endpoint;
          if (e.url !== undefined) checkEndpointUrl(e.url);
          const regionId = await resolveEndpointRegion(e);
          if (e.service_id !== undefined && !(await getService(db, e.service_id))) throw expecting('endpoint service_id', 'service table');
          const regionGiven = 'region_id' in e || (e.region != null);
          const next: EndpointRow = {
            ...current,
            service_id: e.service_id ?? current.service_id,
            interface: e.interface ?? current.interface,
            url: e.url ?? current.url,
            region_id: regionGiven ? regionId ?? null : current.region_id,
            enabled: patchFlag(e.enabled, current.enabled),
            extra: mergeExtra(current.extra, e, ENDPOINT_KNOWN),
          };
          await db.updateTable('identity_endpoints').set(next).where('id', '=', current.id).execute();
          await changed();
          return next;
        },
      },
    }),

    // ---- OS-EP-FILTER: endpoint groups
    route({
      method: 'POST', path: '/v3/OS-EP-FILTER/endpoint_groups', rule: 'identity:create_endpoint_group', status: 201,
      schema: { body: EndpointGroupCreate },
      async handler(rc) {
        const g = rc.body.endpoint_group;
        checkFilters(g.filters, true);
        const row: EndpointGroupRow = { id: hexId(), name: g.name, description: g.description ?? '', filters: JSON.stringify(g.filters) };
        await db.insertInto('identity_endpoint_groups').values(row).execute();
        await changed();
        return { endpoint_group: renderEndpointGroup(rc.req, row) };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/OS-EP-FILTER/endpoint_groups', param: 'endpoint_group_id', key: 'endpoint_group',
      rules: { get: 'identity:get_endpoint_group', delete: 'identity:delete_endpoint_group' },
      load: loadGroup, render: renderEndpointGroup,
      async remove(id) {
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('identity_project_endpoint_groups').where('endpoint_group_id', '=', id).execute();
          await tx.deleteFrom('identity_endpoint_groups').where('id', '=', id).execute();
        });
        await changed();
      },
      list: {
        rule: 'identity:list_endpoint_groups', key: 'endpoint_groups', filters: ['name'],
        query: () => db.selectFrom('identity_endpoint_groups').selectAll().orderBy('name').orderBy('id'),
      },
      update: {
        rule: 'identity:update_endpoint_group', schema: EndpointGroupPatch,
        check(rc) {
          const g = rc.body.endpoint_group;
          if (g.filters !== undefined) checkFilters(g.filters, true);
        },
        async apply(rc, current) {
          const g = rc.body.endpoint_group;
          const next: EndpointGroupRow = {
            ...current,
            name: g.name ?? current.name,
            description: patchText(g.description, current.description),
            filters: g.filters === undefined ? current.filters : JSON.stringify(g.filters),
          };
          await db.updateTable('identity_endpoint_groups').set(next).where('id', '=', current.id).execute();
          await changed();
          return next;
        },
      },
    }),
    {
      method: 'GET', path: '/v3/OS-EP-FILTER/endpoint_groups/:endpoint_group_id/endpoints',
      rule: 'identity:list_endpoints_associated_with_endpoint_group',
      async handler(rc) {
        const g = await loadGroup(rc.params.endpoint_group_id!);
        const filters = extraOf(g.filters);
        const all = await db.selectFrom('identity_endpoints').selectAll().orderBy('id').execute();
        return renderList(rc.req, 'endpoints', all.filter((e) => matchesFilters(e, filters)), renderEndpoint);
      },
    },
    {
      method: 'GET', path: '/v3/OS-EP-FILTER/endpoint_groups/:endpoint_group_id/projects',
      rule: 'identity:list_projects_associated_with_endpoint_group',
      async handler(rc) {
        const id = rc.params.endpoint_group_id!;
        await loadGroup(id);
        const ids = (await db.selectFrom('identity_project_endpoint_groups').select('project_id').where('endpoint_group_id', '=', id).execute())
          .map((r) => r.project_id);
        const projects = ids.length ? await db.selectFrom('identity_projects').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
        return renderList(rc.req, 'projects', projects, renderProject);
      },
    },
    {
      method: 'GET', path: '/v3/OS-EP-FILTER/endpoint_groups/:endpoint_group_id/projects/:project_id',
      rule: 'identity:get_endpoint_group_in_project',
      async handler(rc) {
        const { endpoint_group_id: groupId, project_id: projectId } = rc.params as { endpoint_group_id: string; project_id: string };
        await loadProject(projectId);
        await loadGroup(groupId);
        const found = await db.selectFrom('identity_project_endpoint_groups').select('project_id')
          .where('endpoint_group_id', '=', groupId).where('project_id', '=', projectId).executeTakeFirst();
        if (!found) throw notFound('Endpoint Group Project Association not found');
        return {
          project_endpoint_group: {
            endpoint_group_id: groupId, project_id: projectId,
            links: { self: v3Url(rc.req, `/OS-EP-FILTER/endpoint_groups/${groupId}/projects/${projectId}`) },
          },
        };
      },
    },
    {
      method: 'PUT', path: '/v3/OS-EP-FILTER/endpoint_groups/:endpoint_group_id/projects/:project_id',
      rule: 'identity:add_endpoint_group_to_project', status: 204,
      async handler(rc) {
        const { endpoint_group_id: groupId, project_id: projectId } = rc.params as { endpoint_group_id: string; project_id: string };
        await loadProject(projectId);
        await loadGroup(groupId);
        await conflictOnDuplicate(
          db.insertInto('identity_project_endpoint_groups').values({ endpoint_group_id: groupId, project_id: projectId }).execute(),
          () => conflict('Conflict occurred attempting to store project_endpoint_group - Duplicate entry.'),
        );
        await changed();
      },
    },
    {
      method: 'DELETE', path: '/v3/OS-EP-FILTER/endpoint_groups/:endpoint_group_id/projects/:project_id',
      rule: 'identity:remove_endpoint_group_from_project', status: 204,
      async handler(rc) {
        const { endpoint_group_id: groupId, project_id: projectId } = rc.params as { endpoint_group_id: string; project_id: string };
        await loadProject(projectId);
        await loadGroup(groupId);
        const r = await db.deleteFrom('identity_project_endpoint_groups')
          .where('endpoint_group_id', '=', groupId).where('project_id', '=', projectId).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound('Endpoint Group Project Association not found');
        await changed();
      },
    },

    // ---- OS-EP-FILTER: project-endpoint associations
    {
      method: 'PUT', path: '/v3/OS-EP-FILTER/projects/:project_id/endpoints/:endpoint_id', rule: 'identity:add_endpoint_to_project', status: 204,
      async handler(rc) {
        const { project_id: projectId, endpoint_id: endpointId } = rc.params as { project_id: string; endpoint_id: string };
        await loadEndpoint(endpointId);
        await loadProject(projectId);
        await conflictOnDuplicate(
          db.insertInto('identity_project_endpoints').values({ endpoint_id: endpointId, project_id: projectId }).execute(),
          () => conflict('Conflict occurred attempting to store project_endpoint - Duplicate entry.'),
        );
        await changed();
      },
    },
    {
      method: 'GET', path: '/v3/OS-EP-FILTER/projects/:project_id/endpoints/:endpoint_id', rule: 'identity:check_endpoint_in_project', status: 204,
      async handler(rc) {
        const { project_id: projectId, endpoint_id: endpointId } = rc.params as { project_id: string; endpoint_id: string };
        await loadEndpoint(endpointId);
        await loadProject(projectId);
        const found = await db.selectFrom('identity_project_endpoints').select('project_id')
          .where('endpoint_id', '=', endpointId).where('project_id', '=', projectId).executeTakeFirst();
        if (!found) throw notFound(`Endpoint ${endpointId} not found in project ${projectId}`);
      },
    },
    {
      method: 'DELETE', path: '/v3/OS-EP-FILTER/projects/:project_id/endpoints/:endpoint_id', rule: 'identity:remove_endpoint_from_project', status: 204,
      async handler(rc) {
        const { project_id: projectId, endpoint_id: endpointId } = rc.params as { project_id: string; endpoint_id: string };
        const r = await db.deleteFrom('identity_project_endpoints')
          .where('endpoint_id', '=', endpointId).where('project_id', '=', projectId).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound(`Endpoint ${endpointId} not found in project ${projectId}`);
        await changed();
      },
    },
    {
      method: 'GET', path: '/v3/OS-EP-FILTER/projects/:project_id/endpoints', rule: 'identity:list_endpoints_for_project',
      async handler(rc) {
        const projectId = rc.params.project_id!;
        await loadProject(projectId);
        return renderList(rc.req, 'endpoints', await endpointsForProject(db, projectId), renderEndpoint);
      },
    },
    {
      method: 'GET', path: '/v3/OS-EP-FILTER/projects/:project_id/endpoint_groups', rule: 'identity:list_endpoint_groups_for_project',
      async handler(rc) {
        const projectId = rc.params.project_id!;
        await loadProject(projectId);
        const ids = (await db.selectFrom('identity_project_endpoint_groups').select('endpoint_group_id').where('project_id', '=', projectId).execute())
          .map((r) => r.endpoint_group_id);
        const groups = ids.length ? await db.selectFrom('identity_endpoint_groups').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
        return renderList(rc.req, 'endpoint_groups', groups, renderEndpointGroup);
      },
    },
    {
      method: 'GET', path: '/v3/OS-EP-FILTER/endpoints/:endpoint_id/projects', rule: 'identity:list_projects_for_endpoint',
      async handler(rc) {
        const endpointId = rc.params.endpoint_id!;
        await loadEndpoint(endpointId);
        const ids = (await db.selectFrom('identity_project_endpoints').select('project_id').where('endpoint_id', '=', endpointId).execute())
          .map((r) => r.project_id);
        const projects = ids.length ? await db.selectFrom('identity_projects').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
        return renderList(rc.req, 'projects', projects, renderProject);
      },
    },
  ];
}
