// Allocations per consumer, allocation candidates and project usages.
import { Type } from 'typebox';
import type { Db } from '../../db/database.ts';
import { PUBLIC } from '../../http/policy.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { findCandidates } from '../candidates.ts';
import { badRequest, notFound, PlacementCode } from '../errors.ts';
import { mv, since, versionDocument, type PlacementVersion } from '../http.ts';
import { checkNames, parseCandidateQuery } from '../query.ts';
import { allocationsOf, capacityOf, getConsumer, providerStates, replaceAllocations, type AllocationMap } from '../store.ts';
import { canonicalUuid } from './providers.ts';

const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$' });
const Ident = Type.String({ minLength: 1, maxLength: 255 });
const Amounts = Type.Record(Type.String({ pattern: '^[A-Z0-9_]+$' }), Type.Integer({ minimum: 1, maximum: 2147483647 }), { minProperties: 1 });
const ListForm = Type.Array(Type.Object({
  resource_provider: Type.Object({ uuid: Uuid }, { additionalProperties: false }), resources: Amounts,
}, { additionalProperties: false }), { minItems: 1 });
const DictForm = Type.Record(Uuid, Type.Object({ resources: Amounts, generation: Type.Optional(Type.Integer()) }, { additionalProperties: false }));
const ConsumerGen = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);
const AllocationBody = Type.Object({
  allocations: Type.Union([ListForm, DictForm]),
  project_id: Type.Optional(Ident), user_id: Type.Optional(Ident), consumer_generation: Type.Optional(ConsumerGen),
}, { additionalProperties: false });
const ManyBody = Type.Record(Uuid, Type.Object({
  allocations: DictForm, project_id: Ident, user_id: Ident, consumer_generation: Type.Optional(ConsumerGen),
}, { additionalProperties: false }));

interface Wanted { allocations: unknown; project_id?: string; user_id?: string; consumer_generation?: number | null }

/** The allocations of a PUT body in the form its microversion takes, checked for what the schema cannot say. */
function readBody(v: PlacementVersion, body: Wanted): { allocs: AllocationMap; expected: number | null | 'unchecked' } {
  const allocs: AllocationMap = {};
  if (v.lt('1.12')) {
    if (!Array.isArray(body.allocations)) throw badRequest('JSON does not validate: allocations must be a list before microversion 1.12');
    for (const a of body.allocations as Array<{ resource_provider: { uuid: string }; resources: Record<string, number> }>) {
      Object.assign((allocs[canonicalUuid(a.resource_provider.uuid)] ??= {}), a.resources);
    }
  } else {
    if (Array.isArray(body.allocations)) throw badRequest('JSON does not validate: allocations must be an object keyed by resource provider uuid');
    for (const [rp, a] of Object.entries(body.allocations as Record<string, { resources: Record<string, number> }>)) allocs[canonicalUuid(rp)] = a.resources;
    if (!Object.keys(allocs).length && v.lt('1.28')) throw badRequest('JSON does not validate: allocations must not be empty');
  }
  if (v.ge('1.8') && (body.project_id === undefined || body.user_id === undefined)) {
    throw badRequest(`JSON does not validate: '${body.project_id === undefined ? 'project_id' : 'user_id'}' is a required property`);
  }
  if (v.lt('1.8') && (body.project_id !== undefined || body.user_id !== undefined)) throw badRequest("JSON does not validate: Additional properties are not allowed ('project_id', 'user_id' were unexpected)");
  let expected: number | null | 'unchecked' = 'unchecked';
  if (v.ge('1.28')) {
    if (body.consumer_generation === undefined) throw badRequest("JSON does not validate: 'consumer_generation' is a required property");
    expected = body.consumer_generation;
  } else if (body.consumer_generation !== undefined) throw badRequest("JSON does not validate: Additional properties are not allowed ('consumer_generation' was unexpected)");
  return { allocs, expected };
}

export function allocationRoutes(db: Db): Route[] {
  const show = async (rc: RouteContext<any, any>, consumer: string) => {
    const v = mv(rc);
    const allocs = await allocationsOf(db, consumer);
    const providers = Object.keys(allocs);
    const gens = new Map(providers.length
      ? (await db.selectFrom('placement_providers').select(['uuid', 'generation']).where('uuid', 'in', providers).execute()).map((p) => [p.uuid, p.generation])
      : []);
    const allocations = Object.fromEntries(Object.entries(allocs).map(([rp, resources]) => [rp, { generation: gens.get(rp) ?? 0, resources }]));
    const out: Record<string, unknown> = { allocations };
    const c = await getConsumer(db, consumer);
    if (v.ge('1.12') && c) Object.assign(out, { project_id: c.project_id, user_id: c.user_id });
    if (v.ge('1.28') && c) out.consumer_generation = c.generation;
    return out;
  };
  return [
    route({ method: 'GET', path: '/', rule: PUBLIC, handler: () => versionDocument() }),

    route({
      method: 'GET', path: '/allocations/:consumer', rule: 'placement:allocations:list',
      handler: (rc) => show(rc, canonicalUuid(rc.params.consumer!)),
    }),
    route({
      method: 'PUT', path: '/allocations/:consumer', rule: 'placement:allocations:update', schema: { body: AllocationBody }, status: 204,
      async handler(rc) {
        if (!/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(rc.params.consumer!)) throw badRequest('Malformed consumer_uuid.');
        const consumer = canonicalUuid(rc.params.consumer!);
        const { allocs, expected } = readBody(mv(rc), rc.body);
        await checkNames(db, Object.values(allocs).map((resources) => ({ resources, required: [], forbidden: [], memberOf: [] })));
        const owner = { project_id: rc.body.project_id ?? '', user_id: rc.body.user_id ?? '' };
        await db.transaction().execute((tx) => replaceAllocations(tx, consumer, allocs, owner, expected));
      },
    }),
    since('1.13', route({
      method: 'POST', path: '/allocations', rule: 'placement:allocations:manage', schema: { body: ManyBody }, status: 204,
      async handler(rc) {
        const v = mv(rc);
        const work = Object.entries(rc.body).map(([consumer, b]) => ({ consumer: canonicalUuid(consumer), owner: { project_id: b.project_id, user_id: b.user_id }, ...readBody(v, b) }));
        await checkNames(db, work.flatMap((w) => Object.values(w.allocs).map((resources) => ({ resources, required: [], forbidden: [], memberOf: [] }))));
        await db.transaction().execute(async (tx) => {
          for (const w of work) await replaceAllocations(tx, w.consumer, w.allocs, w.owner, w.expected);
        });
      },
    })),
    route({
      method: 'DELETE', path: '/allocations/:consumer', rule: 'placement:allocations:delete', status: 204,
      async handler(rc) {
        const consumer = canonicalUuid(rc.params.consumer!);
        await db.transaction().execute(async (tx) => {
          const had = await tx.selectFrom('placement_allocations').select('consumer_uuid').where('consumer_uuid', '=', consumer).executeTakeFirst();
          if (!had) throw notFound(`No allocations for consumer '${consumer}'`);
          await replaceAllocations(tx, consumer, {}, { project_id: '', user_id: '' }, 'unchecked');
        });
      },
    }),

    since('1.10', route({
      method: 'GET', path: '/allocation_candidates', rule: 'placement:allocation_candidates:list',
      async handler(rc) {
        const v = mv(rc);
        const q = parseCandidateQuery(rc.query, v);
        await checkNames(db, [...q.groups.values()]);
        const states = await providerStates(db);
        const candidates = findCandidates(states, q);
        const requested = new Set([...q.groups.values()].flatMap((g) => Object.keys(g.resources)));
        const summaries: Record<string, unknown> = {};
        for (const c of candidates) {
          for (const rp of Object.keys(c)) {
            if (summaries[rp]) continue;
            const s = states.get(rp)!;
            const resources: Record<string, { capacity: number; used: number }> = {};
            for (const [cls, inv] of s.inventories) {
              if (v.ge('1.27') || requested.has(cls)) resources[cls] = { capacity: capacityOf(inv), used: s.usage.get(cls) ?? 0 };
            }
            const summary: Record<string, unknown> = { resources };
            if (v.ge('1.17')) summary.traits = [...s.traits].sort();
            if (v.ge('1.29')) Object.assign(summary, { parent_provider_uuid: s.provider.parent_provider_uuid, root_provider_uuid: s.provider.root_provider_uuid });
            summaries[rp] = summary;
          }
        }
        const allocation_requests = candidates.map((c) => (v.ge('1.12')
          ? { allocations: Object.fromEntries(Object.entries(c).map(([rp, resources]) => [rp, { resources }])) }
          : { allocations: Object.entries(c).map(([rp, resources]) => ({ resource_provider: { uuid: rp }, resources })) }));
        return { allocation_requests, provider_summaries: summaries };
      },
    })),

    since('1.9', route({
      method: 'GET', path: '/usages', rule: 'placement:usages',
      target: (rc) => ({ project_id: typeof rc.query.project_id === 'string' ? rc.query.project_id : undefined }),
      async handler(rc) {
        const { project_id: project, user_id: user } = rc.query;
        for (const k of Object.keys(rc.query)) {
          if (k !== 'project_id' && k !== 'user_id') throw badRequest(`Invalid query string parameters: Additional properties are not allowed ('${k}' was unexpected)`);
        }
        if (typeof project !== 'string' || !project) throw badRequest("Invalid query string parameters: 'project_id' is a required property", PlacementCode.queryMissingValue);
        let q = db.selectFrom('placement_allocations as a').innerJoin('placement_consumers as c', 'c.uuid', 'a.consumer_uuid')
          .select((eb) => ['a.resource_class', eb.fn.sum<number>('a.used').as('used')]).where('c.project_id', '=', project);
        if (typeof user === 'string') q = q.where('c.user_id', '=', user);
        const rows = await q.groupBy('a.resource_class').execute();
        return { usages: Object.fromEntries(rows.map((r) => [r.resource_class, Number(r.used)])) };
      },
    })),
  ];
}
