// Placement's model over the database: providers, inventories, usage, and
// allocations written in one transaction that checks capacity.
//
// Capacity of (provider, class) = floor((total - reserved) * allocation_ratio).
// A write of allocations first bumps the generation of every provider it
// allocates from, in uuid order: that UPDATE holds the provider's row lock on
// PostgreSQL until commit (SQLite runs one write transaction at a time), so
// the usage summed next cannot change under the check, and concurrent writers
// queue on the provider instead of oversubscribing it.
import type { Db } from '../db/database.ts';
import { nowIso } from '../common/ids.ts';
import { badRequest, conflict, generationConflict, PlacementCode, providerNotFound } from './errors.ts';

export type Resources = Record<string, number>;
/** Allocations of one consumer: provider uuid -> resource class -> amount. */
export type AllocationMap = Record<string, Resources>;

export interface Inventory { total: number; reserved: number; min_unit: number; max_unit: number; step_size: number; allocation_ratio: number }
export type ProviderRow = { uuid: string; name: string; generation: number; parent_provider_uuid: string | null; root_provider_uuid: string };

export const capacityOf = (inv: Inventory): number => Math.floor((inv.total - inv.reserved) * inv.allocation_ratio);

/** Everything placement knows about a provider, for filtering in memory. */
export interface ProviderState {
  provider: ProviderRow;
  inventories: Map<string, Inventory>;
  usage: Map<string, number>;
  traits: Set<string>;
  aggregates: Set<string>;
}

export async function getProvider(db: Db, uuid: string): Promise<ProviderRow | undefined> {
  return db.selectFrom('placement_providers').select(['uuid', 'name', 'generation', 'parent_provider_uuid', 'root_provider_uuid'])
    .where('uuid', '=', uuid).executeTakeFirst();
}

export async function mustProvider(db: Db, uuid: string): Promise<ProviderRow> {
  const p = await getProvider(db, uuid);
  if (!p) throw providerNotFound(uuid);
  return p;
}

/** Bumps a provider's generation, optionally only from `expected`; false when it moved (or is gone). */
export async function bumpGeneration(db: Db, uuid: string, expected?: number): Promise<boolean> {
  let u = db.updateTable('placement_providers').set((eb) => ({ generation: eb('generation', '+', 1), updated_at: nowIso() })).where('uuid', '=', uuid);
  if (expected !== undefined) u = u.where('generation', '=', expected);
  const r = await u.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Like bumpGeneration with an expected generation, but a mismatch is Placement's 409. */
export async function bumpOrConflict(db: Db, uuid: string, expected: number): Promise<void> {
  if (!(await bumpGeneration(db, uuid, expected))) {
    await mustProvider(db, uuid);
    throw generationConflict();
  }
}

export async function inventoriesOf(db: Db, uuids: string[]): Promise<Map<string, Map<string, Inventory>>> {
  const out = new Map<string, Map<string, Inventory>>(uuids.map((u) => [u, new Map()]));
  if (!uuids.length) return out;
  const rows = await db.selectFrom('placement_inventories').selectAll().where('provider_uuid', 'in', uuids).execute();
  for (const r of rows) {
    const { provider_uuid, resource_class, ...inv } = r;
    out.get(provider_uuid)?.set(resource_class, { ...inv, allocation_ratio: Number(inv.allocation_ratio) });
  }
  return out;
}

/** Used amounts per provider and class (providers with nothing allocated get an empty map). */
export async function usageOf(db: Db, uuids: string[]): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>(uuids.map((u) => [u, new Map()]));
  if (!uuids.length) return out;
  const rows = await db.selectFrom('placement_allocations')
    .select((eb) => ['provider_uuid', 'resource_class', eb.fn.sum<number>('used').as('used')])
    .where('provider_uuid', 'in', uuids).groupBy(['provider_uuid', 'resource_class']).execute();
  for (const r of rows) out.get(r.provider_uuid)?.set(r.resource_class, Number(r.used));
  return out;
}

/** The state of the given providers (all when `uuids` is undefined). */
export async function providerStates(db: Db, uuids?: string[]): Promise<Map<string, ProviderState>> {
  let q = db.selectFrom('placement_providers').select(['uuid', 'name', 'generation', 'parent_provider_uuid', 'root_provider_uuid']).orderBy('name');
  if (uuids) {
    if (!uuids.length) return new Map();
    q = q.where('uuid', 'in', uuids);
  }
  const providers = await q.execute();
  const ids = providers.map((p) => p.uuid);
  const [inv, usage] = await Promise.all([inventoriesOf(db, ids), usageOf(db, ids)]);
  const out = new Map<string, ProviderState>();
  for (const p of providers) out.set(p.uuid, { provider: p, inventories: inv.get(p.uuid)!, usage: usage.get(p.uuid)!, traits: new Set(), aggregates: new Set() });
  if (!ids.length) return out;
  for (const t of await db.selectFrom('placement_provider_traits').selectAll().where('provider_uuid', 'in', ids).execute()) out.get(t.provider_uuid)?.traits.add(t.trait);
  for (const a of await db.selectFrom('placement_provider_aggregates').selectAll().where('provider_uuid', 'in', ids).execute()) out.get(a.provider_uuid)?.aggregates.add(a.aggregate_uuid);
  return out;
}

/**
 * Why `amount` of `rc` cannot come from a provider with `inv` and `used`, or
 * null when it can: no inventory, outside min/max unit or step, over capacity.
 */
export function unfit(inv: Inventory | undefined, used: number, amount: number): 'missing' | 'constraints' | 'capacity' | null {
  if (!inv) return 'missing';
  if (amount < inv.min_unit || amount > inv.max_unit || amount % inv.step_size !== 0) return 'constraints';
  if (used + amount > capacityOf(inv)) return 'capacity';
  return null;
}

/** The first resource class of `resources` a provider state cannot give, or null when all fit. */
export function firstUnfit(state: ProviderState, resources: Resources): string | null {
  for (const [rc, amount] of Object.entries(resources)) {
    if (unfit(state.inventories.get(rc), state.usage.get(rc) ?? 0, amount)) return rc;
  }
  return null;
}

function allocationError(rc: string, provider: string, why: 'missing' | 'constraints' | 'capacity') {
  if (why === 'missing') return conflict(`Unable to allocate inventory: Inventory for '${rc}' on resource provider '${provider}' invalid.`);
  return conflict(`Unable to allocate inventory: Unable to create allocation for '${rc}' on resource provider '${provider}'. ` +
    (why === 'capacity' ? 'The requested amount would exceed the capacity.' : 'The requested amount would violate inventory constraints.'));
}

export interface ConsumerOwner { project_id: string; user_id: string }

/**
 * Locks the providers (generation bump, uuid order), then checks that
 * `allocs` fit beside what others hold. Call inside a transaction, after the
 * consumer's own earlier allocations are removed. Throws Placement's 400/409.
 */
async function lockAndCheck(tx: Db, allocs: AllocationMap): Promise<void> {
  const uuids = Object.keys(allocs).sort();
  for (const u of uuids) {
    if (!(await bumpGeneration(tx, u))) throw badRequest(`Allocation for resource provider '${u}' that does not exist.`);
  }
  const [inv, usage] = await Promise.all([inventoriesOf(tx, uuids), usageOf(tx, uuids)]);
  for (const u of uuids) {
    for (const [rc, amount] of Object.entries(allocs[u]!)) {
      const why = unfit(inv.get(u)!.get(rc), usage.get(u)!.get(rc) ?? 0, amount);
      if (why) throw allocationError(rc, u, why);
    }
  }
}

async function insertAllocations(tx: Db, consumer: string, allocs: AllocationMap): Promise<void> {
  const rows = Object.entries(allocs).flatMap(([provider_uuid, res]) =>
    Object.entries(res).filter(([, used]) => used > 0).map(([resource_class, used]) => ({ consumer_uuid: consumer, provider_uuid, resource_class, used })));
  if (rows.length) await tx.insertInto('placement_allocations').values(rows).execute();
}

/** Creates the consumer or bumps its generation, recording its owner. */
async function touchConsumer(tx: Db, consumer: string, owner: ConsumerOwner, existing: { generation: number } | undefined): Promise<void> {
  const now = nowIso();
  if (existing) {
    await tx.updateTable('placement_consumers').set({ ...owner, generation: existing.generation + 1, updated_at: now }).where('uuid', '=', consumer).execute();
  } else {
    await tx.insertInto('placement_consumers').values({ uuid: consumer, ...owner, generation: 1, created_at: now, updated_at: now }).execute();
  }
}

export async function getConsumer(db: Db, uuid: string) {
  return db.selectFrom('placement_consumers').selectAll().where('uuid', '=', uuid).executeTakeFirst();
}

/**
 * Replaces a consumer's allocations (PUT /allocations/{consumer}). `expected`
 * is the consumer generation the caller saw: null for a new consumer,
 * 'unchecked' for callers before microversion 1.28. Empty `allocs` removes the
 * consumer. Must run inside a transaction.
 */
export async function replaceAllocations(
  tx: Db, consumer: string, allocs: AllocationMap, owner: ConsumerOwner, expected: number | null | 'unchecked',
): Promise<void> {
  const current = await getConsumer(tx, consumer);
  if (expected !== 'unchecked') {
    const have = current ? current.generation : null;
    if (have !== expected) {
      throw conflict(`consumer generation conflict - expected ${expected === null ? 'null' : expected} but got ${have === null ? 'None' : have}`, PlacementCode.concurrentUpdate);
    }
  }
  await tx.deleteFrom('placement_allocations').where('consumer_uuid', '=', consumer).execute();
  const nonEmpty = Object.fromEntries(Object.entries(allocs).filter(([, r]) => Object.values(r).some((n) => n > 0)));
  if (!Object.keys(nonEmpty).length) {
    if (current) await tx.deleteFrom('placement_consumers').where('uuid', '=', consumer).execute();
    return;
  }
  await lockAndCheck(tx, nonEmpty);
  await insertAllocations(tx, consumer, nonEmpty);
  await touchConsumer(tx, consumer, owner, current);
}

/** The allocations a consumer holds: provider -> class -> amount. */
export async function allocationsOf(db: Db, consumer: string): Promise<AllocationMap> {
  const rows = await db.selectFrom('placement_allocations').selectAll().where('consumer_uuid', '=', consumer).execute();
  const out: AllocationMap = {};
  for (const r of rows) (out[r.provider_uuid] ??= {})[r.resource_class] = r.used;
  return out;
}

/**
 * Removes everything a consumer holds (a server deleted, failed, or
 * rescheduled). Safe inside the caller's transaction; a consumer without
 * allocations is a no-op.
 */
export async function releaseConsumer(db: Db, consumer: string): Promise<void> {
  await db.deleteFrom('placement_allocations').where('consumer_uuid', '=', consumer).execute();
  await db.deleteFrom('placement_consumers').where('uuid', '=', consumer).execute();
}

/**
 * Moves everything `from` holds to `to` (Nova's move_allocations: a resize
 * hands the server's old allocations to its migration record, a revert hands
 * them back). `to` must hold nothing. No capacity changes, so no check; the
 * providers' generations move, as any allocation write does.
 */
export async function moveConsumer(tx: Db, from: string, to: string): Promise<void> {
  const src = await getConsumer(tx, from);
  if (!src) return;
  const providers = [...new Set((await tx.selectFrom('placement_allocations').select('provider_uuid').where('consumer_uuid', '=', from).execute()).map((r) => r.provider_uuid))].sort();
  for (const p of providers) await bumpGeneration(tx, p);
  await tx.updateTable('placement_allocations').set({ consumer_uuid: to }).where('consumer_uuid', '=', from).execute();
  const now = nowIso();
  await tx.insertInto('placement_consumers').values({ uuid: to, project_id: src.project_id, user_id: src.user_id, generation: 1, created_at: now, updated_at: now }).execute();
  await tx.deleteFrom('placement_consumers').where('uuid', '=', from).execute();
}

/** What one consumer asks of a provider in a batched claim. */
export interface ClaimItem<T> { item: T; consumer: string; owner: ConsumerOwner; resources: Resources }

/**
 * Claims for several consumers on one provider, in the caller's transaction:
 * locks the provider, sums its usage once, and for each item that still fits
 * asks `accept(item)` (e.g. a conditional update of the server row) before
 * writing its allocations. Returns the items placed. A consumer's earlier
 * allocations are replaced.
 */
export async function claimOnProvider<T>(tx: Db, provider: string, items: ClaimItem<T>[], accept: (item: T) => Promise<boolean>): Promise<T[]> {
  if (!(await bumpGeneration(tx, provider))) return [];
  const inv = (await inventoriesOf(tx, [provider])).get(provider)!;
  const used = (await usageOf(tx, [provider])).get(provider)!;
  const placed: T[] = [];
  for (const c of items) {
    const mine = await allocationsOf(tx, c.consumer);
    const already = (rc: string) => mine[provider]?.[rc] ?? 0;
    const fits = Object.entries(c.resources).every(([rc, n]) => !unfit(inv.get(rc), (used.get(rc) ?? 0) - already(rc), n));
    if (!fits || !(await accept(c.item))) continue;
    for (const [p, res] of Object.entries(mine)) {
      if (p === provider) for (const [rc, n] of Object.entries(res)) used.set(rc, (used.get(rc) ?? 0) - n);
    }
    await tx.deleteFrom('placement_allocations').where('consumer_uuid', '=', c.consumer).execute();
    await insertAllocations(tx, c.consumer, { [provider]: c.resources });
    const consumer = await getConsumer(tx, c.consumer);
    if (Object.values(c.resources).some((n) => n > 0)) await touchConsumer(tx, c.consumer, c.owner, consumer);
    else if (consumer) await tx.deleteFrom('placement_consumers').where('uuid', '=', c.consumer).execute();
    for (const [rc, n] of Object.entries(c.resources)) used.set(rc, (used.get(rc) ?? 0) + n);
    placed.push(c.item);
  }
  return placed;
}

/** Deletes a provider and everything hanging off it (a compute service deleted). */
export async function removeProvider(db: Db, uuid: string): Promise<void> {
  await db.deleteFrom('placement_allocations').where('provider_uuid', '=', uuid).execute();
  await db.deleteFrom('placement_inventories').where('provider_uuid', '=', uuid).execute();
  await db.deleteFrom('placement_provider_traits').where('provider_uuid', '=', uuid).execute();
  await db.deleteFrom('placement_provider_aggregates').where('provider_uuid', '=', uuid).execute();
  await db.deleteFrom('placement_providers').where('uuid', '=', uuid).execute();
}
