// Resource providers: CRUD, and what hangs off one (aggregates, traits, usages, allocations).
import { Type } from 'typebox';
import type { Db } from '../../db/database.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import { nowIso, uuid as newUuid } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { badRequest, conflict, PlacementCode } from '../errors.ts';
import { mv, PREFIX, since } from '../http.ts';
import { checkNames, parseMemberOf, parseResources, parseTraits, qualifies, type RequestGroup } from '../query.ts';
import { bumpOrConflict, firstUnfit, mustProvider, providerStates, usageOf, type ProviderRow } from '../store.ts';

const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$' });
const Name = Type.String({ minLength: 1, maxLength: 200 });
const Generation = Type.Integer({ minimum: 0 });

const ProviderCreate = Type.Object({
  name: Name, uuid: Type.Optional(Uuid), parent_provider_uuid: Type.Optional(Type.Union([Uuid, Type.Null()])),
}, { additionalProperties: false });
const ProviderUpdate = Type.Object({
  name: Name, parent_provider_uuid: Type.Optional(Type.Union([Uuid, Type.Null()])),
}, { additionalProperties: false });
const TraitsBody = Type.Object({
  traits: Type.Array(Type.String({ minLength: 1, maxLength: 255 })), resource_provider_generation: Generation,
}, { additionalProperties: false });
const AggregateList = Type.Array(Uuid);
const AggregatesBody = Type.Union([
  AggregateList,
  Type.Object({ aggregates: AggregateList, resource_provider_generation: Generation }, { additionalProperties: false }),
]);

/** Placement normalises uuids to the dashed lower-case form. */
export const canonicalUuid = (u: string): string => {
  const h = u.replaceAll('-', '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export function providerView(rc: RouteContext<any, any>, p: ProviderRow): Record<string, unknown> {
  const v = mv(rc);
  const self = `${PREFIX}/resource_providers/${p.uuid}`;
  const links = [
    { rel: 'self', href: self }, { rel: 'inventories', href: `${self}/inventories` }, { rel: 'usages', href: `${self}/usages` },
  ];
  if (v.ge('1.1')) links.push({ rel: 'aggregates', href: `${self}/aggregates` });
  if (v.ge('1.6')) links.push({ rel: 'traits', href: `${self}/traits` });
  if (v.ge('1.11')) links.push({ rel: 'allocations', href: `${self}/allocations` });
  const out: Record<string, unknown> = { uuid: p.uuid, name: p.name, generation: p.generation, links };
  if (v.ge('1.14')) Object.assign(out, { parent_provider_uuid: p.parent_provider_uuid, root_provider_uuid: p.root_provider_uuid });
  return out;
}

async function traitsOf(db: Db, uuid: string): Promise<string[]> {
  return (await db.selectFrom('placement_provider_traits').select('trait').where('provider_uuid', '=', uuid).orderBy('trait').execute()).map((t) => t.trait);
}
async function aggregatesOf(db: Db, uuid: string): Promise<string[]> {
  return (await db.selectFrom('placement_provider_aggregates').select('aggregate_uuid').where('provider_uuid', '=', uuid).orderBy('aggregate_uuid').execute())
    .map((a) => a.aggregate_uuid);
}

const only = (rc: RouteContext<any, any>, name: string): string | undefined => {
  const v = rc.query[name];
  if (Array.isArray(v)) throw badRequest(`Invalid query string parameters: '${name}' may be given once.`, PlacementCode.queryBadValue);
  return v;
};

/** A provider's parent must exist, and must not be the provider itself or one of its descendants. */
async function checkParent(db: Db, uuid: string, parent: string): Promise<string> {
  const p = await db.selectFrom('placement_providers').select(['uuid', 'root_provider_uuid', 'parent_provider_uuid']).where('uuid', '=', parent).executeTakeFirst();
  if (!p) throw badRequest(`parent provider UUID does not exist.`);
  for (let at: string | null = parent; at; ) {
    if (at === uuid) throw badRequest('creating loop in the provider tree is not allowed.');
    at = (await db.selectFrom('placement_providers').select('parent_provider_uuid').where('uuid', '=', at).executeTakeFirst())?.parent_provider_uuid ?? null;
  }
  return p.root_provider_uuid;
}

export function providerRoutes(db: Db): Route[] {
  return [
    route({
      method: 'GET', path: '/resource_providers', rule: 'placement:resource_providers:list',
      async handler(rc) {
        const v = mv(rc);
        const known = new Set(['name', 'uuid']);
        if (v.ge('1.3')) known.add('member_of');
        if (v.ge('1.4')) known.add('resources');
        if (v.ge('1.14')) known.add('in_tree');
        if (v.ge('1.18')) known.add('required');
        for (const k of Object.keys(rc.query)) {
          if (!known.has(k)) throw badRequest(`Invalid query string parameters: Additional properties are not allowed ('${k}' was unexpected)`);
        }
        const name = only(rc, 'name');
        const uuid = only(rc, 'uuid');
        const inTree = only(rc, 'in_tree');
        const group: RequestGroup = { resources: {}, required: [], forbidden: [], memberOf: [] };
        const resources = only(rc, 'resources');
        if (resources !== undefined) group.resources = parseResources(resources);
        const required = only(rc, 'required');
        if (required !== undefined) Object.assign(group, parseTraits(required, v));
        const memberOf = rc.query.member_of;
        if (memberOf !== undefined) group.memberOf = parseMemberOf(Array.isArray(memberOf) ? memberOf : [memberOf], v);
        await checkNames(db, [group]);
        const states = await providerStates(db);
        const treeRoot = inTree ? states.get(canonicalUuid(inTree))?.provider.root_provider_uuid ?? '-' : null;
        const out = [...states.values()].filter((s) =>
          (name === undefined || s.provider.name === name) && (uuid === undefined || s.provider.uuid === canonicalUuid(uuid)) &&
          (treeRoot === null || s.provider.root_provider_uuid === treeRoot) && qualifies(s, group) && firstUnfit(s, group.resources) === null);
        return { resource_providers: out.map((s) => providerView(rc, s.provider)) };
      },
    }),
    route({
      method: 'POST', path: '/resource_providers', rule: 'placement:resource_providers:create', schema: { body: ProviderCreate },
      async handler(rc) {
        const v = mv(rc);
        const body = rc.body;
        if (body.parent_provider_uuid !== undefined && v.lt('1.14')) throw badRequest("JSON does not validate: Additional properties are not allowed ('parent_provider_uuid' was unexpected)");
        const uuid = body.uuid ? canonicalUuid(body.uuid) : newUuid();
        const now = nowIso();
        const row = await db.transaction().execute(async (tx) => {
          if (await tx.selectFrom('placement_providers').select('uuid').where('uuid', '=', uuid).executeTakeFirst()) {
            throw conflict(`Conflicting resource provider uuid: ${uuid} already exists.`, PlacementCode.duplicateName);
          }
          const parent = body.parent_provider_uuid ? canonicalUuid(body.parent_provider_uuid) : null;
          const root = parent ? await checkParent(tx, uuid, parent) : uuid;
          const r = { uuid, name: body.name, generation: 0, parent_provider_uuid: parent, root_provider_uuid: root, created_at: now, updated_at: now };
          await conflictOnDuplicate(tx.insertInto('placement_providers').values(r).execute(),
            () => conflict(`Conflicting resource provider name: ${body.name} already exists.`, PlacementCode.duplicateName));
          return r;
        });
        rc.reply.header('Location', `${PREFIX}/resource_providers/${uuid}`);
        if (v.ge('1.20')) {
          rc.reply.code(200);
          return providerView(rc, row);
        }
        rc.reply.code(201);
        return undefined;
      },
    }),
    route({
      method: 'GET', path: '/resource_providers/:uuid', rule: 'placement:resource_providers:show',
      handler: async (rc) => providerView(rc, await mustProvider(db, canonicalUuid(rc.params.uuid!))),
    }),
    route({
      method: 'PUT', path: '/resource_providers/:uuid', rule: 'placement:resource_providers:update', schema: { body: ProviderUpdate },
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        const body = rc.body;
        if (body.parent_provider_uuid !== undefined && mv(rc).lt('1.14')) throw badRequest("JSON does not validate: Additional properties are not allowed ('parent_provider_uuid' was unexpected)");
        const row = await db.transaction().execute(async (tx) => {
          const p = await mustProvider(tx, uuid);
          const set: Partial<ProviderRow> & { updated_at: string } = { name: body.name, updated_at: nowIso() };
          if (body.parent_provider_uuid !== undefined) {
            const parent = body.parent_provider_uuid ? canonicalUuid(body.parent_provider_uuid) : null;
            // Placement allows setting a parent once; moving or un-parenting a provider is refused (before 1.37).
            if (parent !== p.parent_provider_uuid) {
              if (p.parent_provider_uuid !== null || parent === null) throw badRequest('re-parenting a provider is not currently allowed.');
              set.parent_provider_uuid = parent;
              set.root_provider_uuid = await checkParent(tx, uuid, parent);
            }
          }
          await conflictOnDuplicate(
            tx.updateTable('placement_providers').set((eb) => ({ ...set, generation: eb('generation', '+', 1) })).where('uuid', '=', uuid).execute(),
            () => conflict(`Conflicting resource provider name: ${body.name} already exists.`, PlacementCode.duplicateName));
          if (set.root_provider_uuid && set.root_provider_uuid !== p.root_provider_uuid) {
            await tx.updateTable('placement_providers').set({ root_provider_uuid: set.root_provider_uuid }).where('root_provider_uuid', '=', p.root_provider_uuid).execute();
          }
          return mustProvider(tx, uuid);
        });
        return providerView(rc, row);
      },
    }),
    route({
      method: 'DELETE', path: '/resource_providers/:uuid', rule: 'placement:resource_providers:delete', status: 204,
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        await db.transaction().execute(async (tx) => {
          await mustProvider(tx, uuid);
          if (await tx.selectFrom('placement_allocations').select('consumer_uuid').where('provider_uuid', '=', uuid).executeTakeFirst()) {
            throw conflict(`Unable to delete resource provider ${uuid}: Resource provider has allocations.`, PlacementCode.providerInUse);
          }
          if (await tx.selectFrom('placement_providers').select('uuid').where('parent_provider_uuid', '=', uuid).executeTakeFirst()) {
            throw conflict(`Unable to delete parent resource provider ${uuid}: It has child resource providers.`, PlacementCode.cannotDeleteParent);
          }
          await tx.deleteFrom('placement_inventories').where('provider_uuid', '=', uuid).execute();
          await tx.deleteFrom('placement_provider_traits').where('provider_uuid', '=', uuid).execute();
          await tx.deleteFrom('placement_provider_aggregates').where('provider_uuid', '=', uuid).execute();
          await tx.deleteFrom('placement_providers').where('uuid', '=', uuid).execute();
        });
      },
    }),

    // ---- aggregates (1.1; the generation from 1.19)
    since('1.1', route({
      method: 'GET', path: '/resource_providers/:uuid/aggregates', rule: 'placement:resource_providers:aggregates:list',
      async handler(rc) {
        const p = await mustProvider(db, canonicalUuid(rc.params.uuid!));
        const aggregates = await aggregatesOf(db, p.uuid);
        return mv(rc).ge('1.19') ? { aggregates, resource_provider_generation: p.generation } : { aggregates };
      },
    })),
    since('1.1', route({
      method: 'PUT', path: '/resource_providers/:uuid/aggregates', rule: 'placement:resource_providers:aggregates:update', schema: { body: AggregatesBody },
      async handler(rc) {
        const v = mv(rc);
        const uuid = canonicalUuid(rc.params.uuid!);
        const body = rc.body;
        if (v.ge('1.19') === Array.isArray(body)) {
          throw badRequest(v.ge('1.19') ? "JSON does not validate: 'aggregates' and 'resource_provider_generation' are required properties" : 'JSON does not validate: the body must be a list of aggregate uuids');
        }
        const list = [...new Set((Array.isArray(body) ? body : body.aggregates).map(canonicalUuid))];
        return db.transaction().execute(async (tx) => {
          const p = await mustProvider(tx, uuid);
          if (!Array.isArray(body)) await bumpOrConflict(tx, uuid, body.resource_provider_generation);
          else await tx.updateTable('placement_providers').set((eb) => ({ generation: eb('generation', '+', 1) })).where('uuid', '=', uuid).execute();
          await tx.deleteFrom('placement_provider_aggregates').where('provider_uuid', '=', uuid).execute();
          if (list.length) await tx.insertInto('placement_provider_aggregates').values(list.map((a) => ({ provider_uuid: uuid, aggregate_uuid: a }))).execute();
          const aggregates = await aggregatesOf(tx, uuid);
          return v.ge('1.19') ? { aggregates, resource_provider_generation: p.generation + 1 } : { aggregates };
        });
      },
    })),

    // ---- traits of a provider (1.6)
    since('1.6', route({
      method: 'GET', path: '/resource_providers/:uuid/traits', rule: 'placement:resource_providers:traits:list',
      async handler(rc) {
        const p = await mustProvider(db, canonicalUuid(rc.params.uuid!));
        return { traits: await traitsOf(db, p.uuid), resource_provider_generation: p.generation };
      },
    })),
    since('1.6', route({
      method: 'PUT', path: '/resource_providers/:uuid/traits', rule: 'placement:resource_providers:traits:update', schema: { body: TraitsBody },
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        const traits = [...new Set(rc.body.traits)];
        await checkNames(db, [{ resources: {}, required: traits, forbidden: [], memberOf: [] }]);
        return db.transaction().execute(async (tx) => {
          const p = await mustProvider(tx, uuid);
          await bumpOrConflict(tx, uuid, rc.body.resource_provider_generation);
          await tx.deleteFrom('placement_provider_traits').where('provider_uuid', '=', uuid).execute();
          if (traits.length) await tx.insertInto('placement_provider_traits').values(traits.map((trait) => ({ provider_uuid: uuid, trait }))).execute();
          return { traits: await traitsOf(tx, uuid), resource_provider_generation: p.generation + 1 };
        });
      },
    })),
    since('1.6', route({
      method: 'DELETE', path: '/resource_providers/:uuid/traits', rule: 'placement:resource_providers:traits:delete', status: 204,
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        await db.transaction().execute(async (tx) => {
          const p = await mustProvider(tx, uuid);
          await bumpOrConflict(tx, uuid, p.generation);
          await tx.deleteFrom('placement_provider_traits').where('provider_uuid', '=', uuid).execute();
        });
      },
    })),

    // ---- usages and allocations of a provider
    route({
      method: 'GET', path: '/resource_providers/:uuid/usages', rule: 'placement:resource_providers:usages',
      async handler(rc) {
        const p = await mustProvider(db, canonicalUuid(rc.params.uuid!));
        const classes = (await db.selectFrom('placement_inventories').select('resource_class').where('provider_uuid', '=', p.uuid).execute()).map((r) => r.resource_class);
        const used = (await usageOf(db, [p.uuid])).get(p.uuid)!;
        const usages: Record<string, number> = {};
        for (const rc2 of [...classes, ...used.keys()]) usages[rc2] = used.get(rc2) ?? 0;
        return { resource_provider_generation: p.generation, usages };
      },
    }),
    route({
      method: 'GET', path: '/resource_providers/:uuid/allocations', rule: 'placement:resource_providers:allocations:list',
      async handler(rc) {
        const p = await mustProvider(db, canonicalUuid(rc.params.uuid!));
        const rows = await db.selectFrom('placement_allocations').selectAll().where('provider_uuid', '=', p.uuid).execute();
        const allocations: Record<string, { resources: Record<string, number> }> = {};
        for (const r of rows) (allocations[r.consumer_uuid] ??= { resources: {} }).resources[r.resource_class] = r.used;
        return { allocations, resource_provider_generation: p.generation };
      },
    }),
  ];
}
