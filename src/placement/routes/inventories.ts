// Inventories of a resource provider, by resource class; every change checks
// and bumps the provider's generation.
import { Type, type Static } from 'typebox';
import type { Db } from '../../db/database.ts';
import { route, type Route } from '../../http/service.ts';
import { isStandardClass } from '../classes.ts';
import { badRequest, conflict, notFound, PlacementCode } from '../errors.ts';
import { mv, PREFIX, since, type PlacementVersion } from '../http.ts';
import { bumpOrConflict, mustProvider, type Inventory } from '../store.ts';
import { canonicalUuid } from './providers.ts';

const MAX_INT = 2147483647;
const Fields = {
  reserved: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_INT })),
  min_unit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  max_unit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  step_size: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  allocation_ratio: Type.Optional(Type.Number({ minimum: 0, exclusiveMinimum: 0, maximum: 3.40282e38 })),
};
const Total = Type.Integer({ minimum: 1, maximum: MAX_INT });
const Generation = Type.Integer({ minimum: 0 });
const ClassName = Type.String({ pattern: '^[A-Z0-9_]+$', maxLength: 255 });
const InventoryFields = Type.Object({ total: Total, ...Fields }, { additionalProperties: false });
const PostBody = Type.Object({ resource_class: ClassName, total: Total, resource_provider_generation: Type.Optional(Generation), ...Fields }, { additionalProperties: false });
const PutOneBody = Type.Object({ resource_provider_generation: Generation, total: Total, ...Fields }, { additionalProperties: false });
const PutAllBody = Type.Object({
  resource_provider_generation: Generation, inventories: Type.Record(ClassName, InventoryFields),
}, { additionalProperties: false });

type Given = Static<typeof InventoryFields>;

function complete(g: Given): Inventory {
  return {
    total: g.total, reserved: g.reserved ?? 0, min_unit: g.min_unit ?? 1, max_unit: g.max_unit ?? MAX_INT,
    step_size: g.step_size ?? 1, allocation_ratio: g.allocation_ratio ?? 1,
  };
}

const view = (inv: Inventory) => ({
  total: inv.total, reserved: inv.reserved, min_unit: inv.min_unit, max_unit: inv.max_unit, step_size: inv.step_size, allocation_ratio: Number(inv.allocation_ratio),
});

async function checkClasses(db: Db, provider: string, classes: string[]): Promise<void> {
  const custom = classes.filter((c) => !isStandardClass(c));
  const known = custom.length ? new Set((await db.selectFrom('placement_resource_classes').select('name').where('name', 'in', custom).execute()).map((r) => r.name)) : new Set();
  const missing = custom.find((c) => !known.has(c));
  if (missing) throw badRequest(`Unknown resource class in inventory for resource provider ${provider}: ${missing}`);
}

function checkReserved(v: PlacementVersion, provider: string, rc: string, inv: Inventory): void {
  if (inv.reserved > inv.total || (inv.reserved === inv.total && v.lt('1.26'))) {
    throw badRequest(`Unable to update inventory for resource provider ${provider}: Invalid inventory for '${rc}' on resource provider '${provider}'. The reserved value is greater than or equal to total.`);
  }
}

async function refuseInUse(db: Db, provider: string, classes: string[]): Promise<void> {
  if (!classes.length) return;
  const used = await db.selectFrom('placement_allocations').select('resource_class').where('provider_uuid', '=', provider).where('resource_class', 'in', classes).executeTakeFirst();
  if (used) throw conflict(`update conflict: Inventory for '${used.resource_class}' on resource provider '${provider}' in use.`, PlacementCode.inventoryInUse);
}

async function inventoriesView(db: Db, provider: string) {
  const p = await mustProvider(db, provider);
  const rows = await db.selectFrom('placement_inventories').selectAll().where('provider_uuid', '=', provider).orderBy('resource_class').execute();
  return { resource_provider_generation: p.generation, inventories: Object.fromEntries(rows.map((r) => [r.resource_class, view(r)])) };
}

const noInventory = (rc: string, provider: string) => notFound(`No inventory of class ${rc} found for resource provider ${provider}`);

export function inventoryRoutes(db: Db): Route[] {
  const base = '/resource_providers/:uuid/inventories';
  return [
    route({
      method: 'GET', path: base, rule: 'placement:resource_providers:inventories:list',
      handler: (rc) => inventoriesView(db, canonicalUuid(rc.params.uuid!)),
    }),
    route({
      method: 'POST', path: base, rule: 'placement:resource_providers:inventories:create', schema: { body: PostBody },
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        const { resource_class: cls, resource_provider_generation: gen, ...given } = rc.body;
        const inv = complete(given);
        const p = await mustProvider(db, uuid);
        await checkClasses(db, uuid, [cls]);
        checkReserved(mv(rc), uuid, cls, inv);
        const generation = await db.transaction().execute(async (tx) => {
          const now = await mustProvider(tx, uuid);
          await bumpOrConflict(tx, uuid, gen ?? now.generation);
          if (await tx.selectFrom('placement_inventories').select('total').where('provider_uuid', '=', uuid).where('resource_class', '=', cls).executeTakeFirst()) {
            throw conflict(`Update conflict: Inventory for ${cls} on resource provider ${uuid} already exists.`);
          }
          await tx.insertInto('placement_inventories').values({ provider_uuid: uuid, resource_class: cls, ...inv }).execute();
          return now.generation + 1;
        });
        rc.reply.code(201).header('Location', `${PREFIX}/resource_providers/${p.uuid}/inventories/${cls}`);
        return { resource_class: cls, ...view(inv), resource_provider_generation: generation };
      },
    }),
    route({
      method: 'PUT', path: base, rule: 'placement:resource_providers:inventories:update', schema: { body: PutAllBody },
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        const wanted = Object.entries(rc.body.inventories).map(([cls, g]) => [cls, complete(g)] as const);
        await mustProvider(db, uuid);
        await checkClasses(db, uuid, wanted.map(([c]) => c));
        for (const [cls, inv] of wanted) checkReserved(mv(rc), uuid, cls, inv);
        await db.transaction().execute(async (tx) => {
          await bumpOrConflict(tx, uuid, rc.body.resource_provider_generation);
          const have = (await tx.selectFrom('placement_inventories').select('resource_class').where('provider_uuid', '=', uuid).execute()).map((r) => r.resource_class);
          await refuseInUse(tx, uuid, have.filter((c) => !wanted.some(([w]) => w === c)));
          await tx.deleteFrom('placement_inventories').where('provider_uuid', '=', uuid).execute();
          if (wanted.length) await tx.insertInto('placement_inventories').values(wanted.map(([cls, inv]) => ({ provider_uuid: uuid, resource_class: cls, ...inv }))).execute();
        });
        return inventoriesView(db, uuid);
      },
    }),
    since('1.5', route({
      method: 'DELETE', path: base, rule: 'placement:resource_providers:inventories:delete', status: 204,
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        await db.transaction().execute(async (tx) => {
          const p = await mustProvider(tx, uuid);
          const have = (await tx.selectFrom('placement_inventories').select('resource_class').where('provider_uuid', '=', uuid).execute()).map((r) => r.resource_class);
          await refuseInUse(tx, uuid, have);
          await bumpOrConflict(tx, uuid, p.generation);
          await tx.deleteFrom('placement_inventories').where('provider_uuid', '=', uuid).execute();
        });
      },
    })),
    route({
      method: 'GET', path: `${base}/:resource_class`, rule: 'placement:resource_providers:inventories:show',
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        const p = await mustProvider(db, uuid);
        const row = await db.selectFrom('placement_inventories').selectAll().where('provider_uuid', '=', uuid).where('resource_class', '=', rc.params.resource_class!).executeTakeFirst();
        if (!row) throw noInventory(rc.params.resource_class!, uuid);
        return { ...view(row), resource_provider_generation: p.generation };
      },
    }),
    route({
      method: 'PUT', path: `${base}/:resource_class`, rule: 'placement:resource_providers:inventories:update', schema: { body: PutOneBody },
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        const cls = rc.params.resource_class!;
        const { resource_provider_generation: gen, ...given } = rc.body;
        const inv = complete(given);
        await mustProvider(db, uuid);
        if (!/^[A-Z0-9_]+$/.test(cls)) throw badRequest(`Unknown resource class in inventory for resource provider ${uuid}: ${cls}`);
        await checkClasses(db, uuid, [cls]);
        checkReserved(mv(rc), uuid, cls, inv);
        const generation = await db.transaction().execute(async (tx) => {
          await bumpOrConflict(tx, uuid, gen);
          // Placement's PUT of one class creates it too (placement >= Train).
          await tx.insertInto('placement_inventories').values({ provider_uuid: uuid, resource_class: cls, ...inv })
            .onConflict((oc) => oc.columns(['provider_uuid', 'resource_class']).doUpdateSet(inv)).execute();
          return gen + 1;
        });
        return { ...view(inv), resource_provider_generation: generation };
      },
    }),
    route({
      method: 'DELETE', path: `${base}/:resource_class`, rule: 'placement:resource_providers:inventories:delete', status: 204,
      async handler(rc) {
        const uuid = canonicalUuid(rc.params.uuid!);
        const cls = rc.params.resource_class!;
        await db.transaction().execute(async (tx) => {
          const p = await mustProvider(tx, uuid);
          if (!(await tx.selectFrom('placement_inventories').select('total').where('provider_uuid', '=', uuid).where('resource_class', '=', cls).executeTakeFirst())) {
            throw noInventory(cls, uuid);
          }
          await refuseInUse(tx, uuid, [cls]);
          await bumpOrConflict(tx, uuid, p.generation);
          await tx.deleteFrom('placement_inventories').where('provider_uuid', '=', uuid).where('resource_class', '=', cls).execute();
        });
      },
    }),
  ];
}
