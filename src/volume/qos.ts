// QoS specs (Cinder's qos-specs, admins only): named sets of keys for a
// consumer (`front-end`, the hypervisor; `back-end`, the volume backend;
// `both`), associated with volume types (one QoS specs per type). Recorded
// only: no consumer applies them yet.
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import { uuid } from '../common/ids.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { badRequest, conflict, notFound } from './errors.ts';
import { one } from './list.ts';
import type { VolumeTables } from './schema.ts';
import { baseUrl, parseBoolean } from './view.ts';

type VDb = Kysely<VolumeTables>;
type QosRow = VolumeTables['volume_qos_specs'];
const CONSUMERS = ['front-end', 'back-end', 'both'];

async function keysOf(db: VDb, ids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
  if (ids.length) for (const k of await db.selectFrom('volume_qos_spec_keys').selectAll().where('qos_id', 'in', ids).orderBy('key').execute()) out.get(k.qos_id)![k.key] = k.value;
  return out;
}

/** Spec keys from a body: strings (numbers and booleans written as Cinder writes them). */
function specKeys(o: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k.length < 1 || k.length > 255) throw badRequest(`Invalid input received: key '${k.slice(0, 20)}' must be 1 to 255 characters.`);
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);
    else throw badRequest(`Invalid input for field/attribute ${k}. Value: ${JSON.stringify(v)}. ${JSON.stringify(v)} is not of type 'string'`);
    if (out[k]!.length > 255) throw badRequest(`Invalid input received: the value of ${k} is longer than 255 characters.`);
  }
  return out;
}

export function qosRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;
  const now = () => new Date().toISOString();
  const load = async (id: string): Promise<QosRow> => {
    const r = await db.selectFrom('volume_qos_specs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound.qos(id);
    return r;
  };
  const view = (r: QosRow, specs: Record<string, string>) => ({ id: r.id, name: r.name, consumer: r.consumer, specs });
  const links = (rc: RouteContext, r: QosRow) => [
    { href: `${baseUrl(rc.req)}/v3/${rc.cred!.projectId ?? ''}/qos-specs/${r.id}`, rel: 'self' },
    { href: `${baseUrl(rc.req)}/${rc.cred!.projectId ?? ''}/qos-specs/${r.id}`, rel: 'bookmark' },
  ];
  const show = async (rc: RouteContext, r: QosRow) => ({ qos_specs: view(r, (await keysOf(db, [r.id])).get(r.id)!), links: links(rc, r) });
  /** The volume type named by `vol_type_id` (400 when absent, 404 when unknown). */
  const typeParam = async (rc: RouteContext) => {
    const typeId = one(rc.query.vol_type_id);
    if (!typeId) throw badRequest('Volume Type id must not be None.');
    const t = await db.selectFrom('volume_types').select(['id', 'qos_specs_id']).where('id', '=', typeId).executeTakeFirst();
    if (!t) throw notFound.type(typeId);
    return t;
  };

  return [
    route({
      method: 'GET', path: '/qos-specs', rule: 'volume_extension:qos_specs_manage:get_all',
      async handler() {
        const rows = await db.selectFrom('volume_qos_specs').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
        const keys = await keysOf(db, rows.map((r) => r.id));
        return { qos_specs: rows.map((r) => view(r, keys.get(r.id)!)) };
      },
    }),
    route({
      method: 'POST', path: '/qos-specs', rule: 'volume_extension:qos_specs_manage:create',
      schema: { body: Type.Object({ qos_specs: Type.Record(Type.String(), Type.Unknown()) }) },
      async handler(rc) {
        const { name, consumer = 'back-end', ...rest } = rc.body.qos_specs;
        if (typeof name !== 'string' || name.trim() === '' || name.length > 255) throw badRequest(`Invalid input for field/attribute name. Value: ${JSON.stringify(name)}. The name must be a string of 1 to 255 characters.`);
        if (typeof consumer !== 'string' || !CONSUMERS.includes(consumer)) throw badRequest(`Invalid input for field/attribute consumer. Value: ${JSON.stringify(consumer)}. ${JSON.stringify(consumer)} is not one of ['front-end', 'back-end', 'both']`);
        const specs = specKeys(rest);
        const row: QosRow = { id: uuid(), name: name.trim(), consumer, created_at: now(), updated_at: now() };
        if (await db.selectFrom('volume_qos_specs').select('id').where('name', '=', row.name).executeTakeFirst()) throw conflict(`QoS Specs ${row.name} already exists.`);
        try {
          await db.transaction().execute(async (tx) => {
            await tx.insertInto('volume_qos_specs').values(row).execute();
            for (const [key, value] of Object.entries(specs)) await tx.insertInto('volume_qos_spec_keys').values({ qos_id: row.id, key, value }).execute();
          });
        } catch (err) {
          if (await db.selectFrom('volume_qos_specs').select('id').where('name', '=', row.name).executeTakeFirst()) throw conflict(`QoS Specs ${row.name} already exists.`);
          throw err;
        }
        return show(rc, row);
      },
    }),
    route({ method: 'GET', path: '/qos-specs/:qos_id', rule: 'volume_extension:qos_specs_manage:get', handler: async (rc) => show(rc, await load(rc.params.qos_id!)) }),
    route({
      method: 'PUT', path: '/qos-specs/:qos_id', rule: 'volume_extension:qos_specs_manage:update',
      schema: { body: Type.Object({ qos_specs: Type.Record(Type.String(), Type.Unknown()) }) },
      async handler(rc) {
        const r = await load(rc.params.qos_id!);
        const { consumer, ...rest } = rc.body.qos_specs;
        if (consumer !== undefined && (typeof consumer !== 'string' || !CONSUMERS.includes(consumer))) throw badRequest(`Invalid input for field/attribute consumer. Value: ${JSON.stringify(consumer)}. ${JSON.stringify(consumer)} is not one of ['front-end', 'back-end', 'both']`);
        const specs = specKeys(rest);
        await db.transaction().execute(async (tx) => {
          if (typeof consumer === 'string') await tx.updateTable('volume_qos_specs').set({ consumer, updated_at: now() }).where('id', '=', r.id).execute();
          for (const [key, value] of Object.entries(specs)) {
            await tx.deleteFrom('volume_qos_spec_keys').where('qos_id', '=', r.id).where('key', '=', key).execute();
            await tx.insertInto('volume_qos_spec_keys').values({ qos_id: r.id, key, value }).execute();
          }
        });
        return { qos_specs: { ...specs, ...(typeof consumer === 'string' ? { consumer } : {}) } };
      },
    }),
    route({
      method: 'DELETE', path: '/qos-specs/:qos_id', rule: 'volume_extension:qos_specs_manage:delete', status: 202,
      async handler(rc) {
        const r = await load(rc.params.qos_id!);
        const forceRaw = one(rc.query.force);
        const force = forceRaw !== undefined && parseBoolean('force', forceRaw);
        await db.transaction().execute(async (tx) => {
          const inUse = await tx.selectFrom('volume_types').select('id').where('qos_specs_id', '=', r.id).executeTakeFirst();
          if (inUse && !force) throw badRequest('Qos specs still in use.');
          await tx.updateTable('volume_types').set({ qos_specs_id: null }).where('qos_specs_id', '=', r.id).execute();
          await tx.deleteFrom('volume_qos_spec_keys').where('qos_id', '=', r.id).execute();
          await tx.deleteFrom('volume_qos_specs').where('id', '=', r.id).execute();
        });
      },
    }),
    route({
      method: 'PUT', path: '/qos-specs/:qos_id/delete_keys', rule: 'volume_extension:qos_specs_manage:update', status: 202,
      schema: { body: Type.Object({ keys: Type.Array(Type.String()) }) },
      async handler(rc) {
        const r = await load(rc.params.qos_id!);
        const have = (await keysOf(db, [r.id])).get(r.id)!;
        const missing = rc.body.keys.find((k) => !Object.hasOwn(have, k));
        if (missing !== undefined) throw notFound.qosKey(r.id, missing);
        if (rc.body.keys.length) await db.deleteFrom('volume_qos_spec_keys').where('qos_id', '=', r.id).where('key', 'in', rc.body.keys).execute();
      },
    }),
    route({
      method: 'GET', path: '/qos-specs/:qos_id/associations', rule: 'volume_extension:qos_specs_manage:get',
      async handler(rc) {
        const r = await load(rc.params.qos_id!);
        const types = await db.selectFrom('volume_types').select(['id', 'name']).where('qos_specs_id', '=', r.id).orderBy('name').execute();
        return { qos_associations: types.map((t) => ({ association_type: 'volume_type', id: t.id, name: t.name })) };
      },
    }),
    route({
      method: 'GET', path: '/qos-specs/:qos_id/associate', rule: 'volume_extension:qos_specs_manage:update', status: 202,
      async handler(rc) {
        const r = await load(rc.params.qos_id!);
        const t = await typeParam(rc);
        if (t.qos_specs_id && t.qos_specs_id !== r.id) throw badRequest(`Invalid volume type: Type ${t.id} is already associated with another qos specs: ${t.qos_specs_id}`);
        const u = await db.updateTable('volume_types').set({ qos_specs_id: r.id, updated_at: now() }).where('id', '=', t.id)
          .where((eb) => eb.or([eb('qos_specs_id', 'is', null), eb('qos_specs_id', '=', r.id)])).executeTakeFirst();
        if (Number(u.numUpdatedRows) === 0) throw badRequest(`Invalid volume type: Type ${t.id} is already associated with another qos specs.`);
        return undefined;
      },
    }),
    route({
      method: 'GET', path: '/qos-specs/:qos_id/disassociate', rule: 'volume_extension:qos_specs_manage:update', status: 202,
      async handler(rc) {
        const r = await load(rc.params.qos_id!);
        const t = await typeParam(rc);
        await db.updateTable('volume_types').set({ qos_specs_id: null, updated_at: now() }).where('id', '=', t.id).where('qos_specs_id', '=', r.id).execute();
        return undefined;
      },
    }),
    route({
      method: 'GET', path: '/qos-specs/:qos_id/disassociate_all', rule: 'volume_extension:qos_specs_manage:update', status: 202,
      async handler(rc) {
        const r = await load(rc.params.qos_id!);
        await db.updateTable('volume_types').set({ qos_specs_id: null, updated_at: now() }).where('qos_specs_id', '=', r.id).execute();
        return undefined;
      },
    }),
  ];
}

