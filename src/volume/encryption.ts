// Volume type encryption specs (Cinder's volume_type_encryption, admins):
// `/types/{type_id}/encryption` shows a type's specs (`{}` without), creates
// them (provider, cipher, key_size, control_location), one key of them, and
// updates and deletes them (the id in those paths is not read, as in Cinder:
// a type has one set); a type in use by volumes keeps its specs as they are. No key manager serves volume keys here, so a volume is never made
// encrypted: volume create refuses a type with encryption specs
// (`encryptionOf`).
import { uuid } from '../common/ids.ts';
import { objectOf } from '../http/body.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { ApiError } from '../common/errors.ts';
import { badRequest, notFound } from './errors.ts';
import type { VolumeTables } from './schema.ts';
import { cinderTime } from './view.ts';
import type { Kysely } from 'kysely';

type Row = VolumeTables['volume_type_encryption'];
const FIELDS = ['provider', 'cipher', 'key_size', 'control_location'] as const;

/** The type's encryption specs, or undefined. */
export async function encryptionOf(db: Kysely<VolumeTables>, typeId: string): Promise<Row | undefined> {
  return db.selectFrom('volume_type_encryption').selectAll().where('volume_type_id', '=', typeId).executeTakeFirst();
}

const noEncryption = (typeId: string) => new ApiError('NotFound', `Volume type encryption for type ${typeId} does not exist.`);

/** The body's specs, checked as Cinder's schema (create: provider required; control_location front-end/back-end). */
function specsOf(raw: unknown, create: boolean): Partial<Pick<Row, 'provider' | 'cipher' | 'key_size' | 'control_location'>> {
  const body = objectOf(raw);
  const e = objectOf(body?.encryption);
  if (!body || !e) throw badRequest(`Missing required element 'encryption' in request body.`);
  const unknown = Object.keys(e).filter((k) => !(FIELDS as readonly string[]).includes(k));
  if (unknown.length) throw badRequest(`Additional properties are not allowed ('${unknown.join("', '")}' ${unknown.length > 1 ? 'were' : 'was'} unexpected)`);
  const out: ReturnType<typeof specsOf> = {};
  if (e.provider !== undefined) {
    if (typeof e.provider !== 'string' || e.provider.length < 1 || e.provider.length > 255) throw badRequest(`Invalid input for field/attribute provider. Value: ${JSON.stringify(e.provider)}.`);
    out.provider = e.provider;
  } else if (create) {
    throw badRequest(`Invalid input for field/attribute encryption. Value: ${JSON.stringify(e)}. 'provider' is a required property`);
  }
  if (e.cipher !== undefined) {
    if (e.cipher !== null && (typeof e.cipher !== 'string' || e.cipher.length > 255)) throw badRequest(`Invalid input for field/attribute cipher. Value: ${JSON.stringify(e.cipher)}.`);
    out.cipher = e.cipher as string | null;
  }
  if (e.key_size !== undefined) {
    const k = typeof e.key_size === 'string' && /^\d+$/.test(e.key_size) ? Number(e.key_size) : e.key_size;
    if (k !== null && (typeof k !== 'number' || !Number.isInteger(k) || k < 0)) throw badRequest(`Invalid input for field/attribute key_size. Value: ${JSON.stringify(e.key_size)}.`);
    out.key_size = k as number | null;
  }
  if (e.control_location !== undefined) {
    if (e.control_location !== 'front-end' && e.control_location !== 'back-end') throw badRequest(`Invalid input for field/attribute control_location. Value: ${JSON.stringify(e.control_location)}. ${JSON.stringify(e.control_location)} is not one of ['front-end', 'back-end']`);
    out.control_location = e.control_location;
  } else if (create) {
    out.control_location = 'front-end';
  }
  return out;
}

export function encryptionRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;
  const typeOf = async (rc: RouteContext) => {
    const id = rc.params.type_id!;
    const t = await db.selectFrom('volume_types').select('id').where('id', '=', id).executeTakeFirst();
    if (!t) throw notFound.type(id);
    return t.id;
  };
  const inUse = async (typeId: string) => !!(await db.selectFrom('volume_volumes').select('id').where('volume_type_id', '=', typeId).executeTakeFirst());
  const view = (r: Row) => ({
    volume_type_id: r.volume_type_id, encryption_id: r.encryption_id, provider: r.provider, cipher: r.cipher, key_size: r.key_size,
    control_location: r.control_location, deleted: false, created_at: cinderTime(r.created_at), updated_at: cinderTime(r.updated_at), deleted_at: null,
  });
  return [
    route({
      method: 'GET', path: '/types/:type_id/encryption', rule: 'volume_extension:volume_type_encryption:get',
      async handler(rc) {
        const r = await encryptionOf(db, await typeOf(rc));
        return r ? view(r) : {};
      },
    }),
    route({
      method: 'GET', path: '/types/:type_id/encryption/:key', rule: 'volume_extension:volume_type_encryption:get',
      async handler(rc) {
        const typeId = await typeOf(rc);
        const r = await encryptionOf(db, typeId);
        const key = rc.params.key!;
        const v = r ? (view(r) as Record<string, unknown>)[key] : undefined;
        if (!r || v === undefined) throw noEncryption(typeId);
        return { [key]: v };
      },
    }),
    route({
      method: 'POST', path: '/types/:type_id/encryption', rule: 'volume_extension:volume_type_encryption:create',
      async handler(rc) {
        const typeId = await typeOf(rc);
        const specs = specsOf(rc.body, true);
        if (await inUse(typeId)) throw badRequest('Cannot create encryption specs. Volume type in use.');
        if (await encryptionOf(db, typeId)) throw badRequest(`Volume type encryption for type ${typeId} already exists.`);
        const t = new Date().toISOString();
        const row: Row = {
          volume_type_id: typeId, encryption_id: uuid(), provider: specs.provider!, cipher: specs.cipher ?? null, key_size: specs.key_size ?? null,
          control_location: specs.control_location ?? 'front-end', created_at: t, updated_at: t,
        };
        await db.insertInto('volume_type_encryption').values(row).execute();
        const { created_at: _c, updated_at: _u, ...shown } = row;
        return { encryption: shown };
      },
    }),
    route({
      method: 'PUT', path: '/types/:type_id/encryption/:encryption_id', rule: 'volume_extension:volume_type_encryption:update',
      async handler(rc) {
        const typeId = await typeOf(rc);
        const specs = specsOf(rc.body, false);
        if (await inUse(typeId)) throw badRequest('Cannot update encryption specs. Volume type in use.');
        const r = await db.updateTable('volume_type_encryption').set({ ...specs, updated_at: new Date().toISOString() })
          .where('volume_type_id', '=', typeId).executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) throw noEncryption(typeId);
        return { encryption: specs };
      },
    }),
    route({
      method: 'DELETE', path: '/types/:type_id/encryption/:encryption_id', rule: 'volume_extension:volume_type_encryption:delete', status: 202,
      async handler(rc) {
        const typeId = await typeOf(rc);
        if (await inUse(typeId)) throw badRequest('Cannot delete encryption specs. Volume type in use.');
        const r = await db.deleteFrom('volume_type_encryption').where('volume_type_id', '=', typeId).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw noEncryption(typeId);
      },
    }),
  ];
}
