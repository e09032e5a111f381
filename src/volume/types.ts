// Volume types (Cinder's types, types_extra_specs, volume_type_access and,
// from 3.62, default-types): public types every project sees, private ones
// only the projects they are shared with, and `__DEFAULT__`, made at start
// as Cinder (Wallaby and later) makes it, which cannot be deleted.
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { ApiError } from '../common/errors.ts';
import { uuid } from '../common/ids.ts';
import { isAdmin } from '../http/policy.ts';
import type { Credentials } from '../http/auth.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { badRequest, conflict, invalidInput, notFound } from './errors.ts';
import { UUID_RE } from './input.ts';
import { since } from './http.ts';
import { USER_VISIBLE_EXTRA_SPECS } from './policy.ts';
import type { VolumeTables } from './schema.ts';
import { parseBoolean } from './view.ts';

type TypeRow = VolumeTables['volume_types'];

/** Makes the default type when it does not exist yet (every start; idempotent). */
export async function ensureDefaultType(ctx: VolumeContext): Promise<void> {
  const name = ctx.config.defaultType;
  if (await ctx.vdb.selectFrom('volume_types').select('id').where('name', '=', name).executeTakeFirst()) return;
  const now = new Date().toISOString();
  await ctx.vdb.insertInto('volume_types').values({ id: uuid(), name, description: 'Default Volume Type', is_public: 1, qos_specs_id: null, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('name').doNothing()).execute();
}

async function specsOf(db: Kysely<VolumeTables>, ids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>(ids.map((id) => [id, {}]));
  if (!ids.length) return out;
  for (const r of await db.selectFrom('volume_type_extra_specs').selectAll().where('type_id', 'in', ids).orderBy('key').execute()) out.get(r.type_id)![r.key] = r.value;
  return out;
}

/** Whether the caller may use (and see) a type: public, shared with its project, or the caller is an admin. */
async function visible(db: Kysely<VolumeTables>, c: Credentials, t: TypeRow): Promise<boolean> {
  if (t.is_public || isAdmin(c)) return true;
  if (!c.projectId) return false;
  return !!(await db.selectFrom('volume_type_projects').select('type_id').where('type_id', '=', t.id).where('project_id', '=', c.projectId).executeTakeFirst());
}

/** A type by id, or by name (what volume create's `volume_type` may hold); 404 when the caller may not use it. */
export async function findType(ctx: VolumeContext, c: Credentials, idOrName: string): Promise<TypeRow> {
  const db = ctx.vdb;
  let t = await db.selectFrom('volume_types').selectAll().where('id', '=', idOrName).executeTakeFirst();
  t ??= await db.selectFrom('volume_types').selectAll().where('name', '=', idOrName).executeTakeFirst();
  if (!t || !(await visible(db, c, t))) throw UUID_RE.test(idOrName) ? notFound.type(idOrName) : notFound.typeByName(idOrName);
  return t;
}

/** The type a volume gets when none is named: the project's default (3.62), else the configured default. */
export async function defaultTypeFor(ctx: VolumeContext, projectId: string): Promise<TypeRow> {
  const db = ctx.vdb;
  const p = await db.selectFrom('volume_default_types').innerJoin('volume_types', 'volume_types.id', 'volume_default_types.type_id')
    .selectAll('volume_types').where('volume_default_types.project_id', '=', projectId).executeTakeFirst();
  if (p) return p;
  const d = await db.selectFrom('volume_types').selectAll().where('name', '=', ctx.config.defaultType).executeTakeFirst();
  if (!d) throw notFound.typeByName(ctx.config.defaultType);
  return d;
}

export async function typeSpecs(ctx: VolumeContext, typeId: string): Promise<Record<string, string>> {
  return (await specsOf(ctx.vdb, [typeId])).get(typeId)!;
}

/** Cinder's `<is> True` boolean spec values (and plain true). */
export const specTrue = (v: string | undefined): boolean => v !== undefined && /^\s*(<is>\s*)?true\s*$/i.test(v);

/** A type as Cinder shows it: `qos_specs_id` on show and list for admins, the access extension's attribute everywhere but after an update. */
function view(c: Credentials, t: TypeRow, specs: Record<string, string>, on: 'show' | 'create' | 'update' = 'show'): Record<string, unknown> {
  const shown = isAdmin(c) ? specs : Object.fromEntries(Object.entries(specs).filter(([k]) => (USER_VISIBLE_EXTRA_SPECS as readonly string[]).includes(k)));
  return {
    id: t.id, name: t.name, description: t.description, is_public: !!t.is_public,
    ...(on !== 'update' ? { 'os-volume-type-access:is_public': !!t.is_public } : {}),
    extra_specs: shown, ...(on === 'show' && isAdmin(c) ? { qos_specs_id: t.qos_specs_id } : {}),
  };
}

const SpecValue = Type.Union([Type.String({ maxLength: 255 }), Type.Number(), Type.Boolean()]);
const Specs = Type.Record(Type.String({ minLength: 1, maxLength: 255 }), SpecValue);
const TypeCreate = Type.Object({
  volume_type: Type.Object({
    name: Type.String({ minLength: 1, maxLength: 255 }),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    'os-volume-type-access:is_public': Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
    extra_specs: Type.Optional(Specs),
  }, { additionalProperties: false }),
});
const TypeUpdate = Type.Object({
  volume_type: Type.Object({
    name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    is_public: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
  }, { additionalProperties: false }),
});
const SpecsBody = Type.Object({ extra_specs: Specs }, { additionalProperties: false });
const AccessAction = Type.Object({
  addProjectAccess: Type.Optional(Type.Object({ project: Type.String({ minLength: 1, maxLength: 255 }) })),
  removeProjectAccess: Type.Optional(Type.Object({ project: Type.String({ minLength: 1, maxLength: 255 }) })),
});
const DefaultBody = Type.Object({ default_type: Type.Object({ volume_type: Type.String({ minLength: 1, maxLength: 255 }) }) });

const str = (v: string | number | boolean): string => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));

export function typeRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;
  const byId = async (id: string): Promise<TypeRow> => {
    const t = await db.selectFrom('volume_types').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t) throw notFound.type(id);
    return t;
  };
  const visibleById = async (rc: RouteContext, id: string): Promise<TypeRow> => {
    const t = await db.selectFrom('volume_types').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t || !(await visible(db, rc.cred!, t))) throw notFound.type(id);
    return t;
  };
  const show = async (rc: RouteContext, t: TypeRow, on: 'show' | 'create' | 'update' = 'show') => view(rc.cred!, t, await typeSpecs(ctx, t.id), on);
  const putSpecs = async (typeId: string, specs: Record<string, string | number | boolean>) => {
    await db.transaction().execute(async (tx) => {
      for (const [key, v] of Object.entries(specs)) {
        await tx.deleteFrom('volume_type_extra_specs').where('type_id', '=', typeId).where('key', '=', key).execute();
        await tx.insertInto('volume_type_extra_specs').values({ type_id: typeId, key, value: str(v) }).execute();
      }
    });
  };
  const inUse = async (typeId: string) =>
    !!(await db.selectFrom('volume_volumes').select('id').where('volume_type_id', '=', typeId).executeTakeFirst());
  return [
    route({
      method: 'GET', path: '/types', rule: 'volume_extension:type_get_all',
      async handler(rc) {
        const c = rc.cred!;
        let rows = await db.selectFrom('volume_types').selectAll().orderBy('created_at').orderBy('id').execute();
        // is_public: true (default) public ones, false the private ones, None every one (admin)
        const isPublic = typeof rc.query.is_public === 'string' ? rc.query.is_public : undefined;
        if (isAdmin(c)) {
          if (isPublic !== undefined && isPublic.toLowerCase() !== 'none') {
            const want = parseBoolean('is_public', isPublic);
            rows = rows.filter((t) => !!t.is_public === want);
          }
        } else {
          const shared = c.projectId ? new Set((await db.selectFrom('volume_type_projects').select('type_id').where('project_id', '=', c.projectId).execute()).map((r) => r.type_id)) : new Set<string>();
          rows = rows.filter((t) => t.is_public || shared.has(t.id));
        }
        const specs = await specsOf(db, rows.map((t) => t.id));
        // 3.52: extra_specs={"k": "v"} (a JSON object)
        const filter = rc.query.extra_specs;
        let wanted: Record<string, unknown> | null = null;
        if (typeof filter === 'string' && filter !== '') {
          try { wanted = JSON.parse(filter.replaceAll("'", '"')) as Record<string, unknown>; } catch { throw invalidInput(`Invalid filter extra_specs: ${filter}`); }
        }
        const views = rows
          .filter((t) => !wanted || Object.entries(wanted).every(([k, v]) => specs.get(t.id)![k] === String(v)))
          .map((t) => view(c, t, specs.get(t.id)!));
        return { volume_types: views };
      },
    }),
    route({
      method: 'GET', path: '/types/default', rule: 'volume_extension:type_get',
      handler: async (rc) => ({ volume_type: await show(rc, await defaultTypeFor(ctx, rc.cred!.projectId ?? '')) }),
    }),
    route({
      method: 'GET', path: '/types/:type_id', rule: 'volume_extension:type_get',
      handler: async (rc) => ({ volume_type: await show(rc, await visibleById(rc, rc.params.type_id!)) }),
    }),
    route({
      method: 'POST', path: '/types', rule: 'volume_extension:types_manage', schema: { body: TypeCreate },
      async handler(rc) {
        const b = rc.body.volume_type;
        const name = b.name.trim();
        if (!name) throw invalidInput('Volume type name can not be empty.');
        const pub = b['os-volume-type-access:is_public'];
        const isPublic = pub === undefined ? true : typeof pub === 'boolean' ? pub : parseBoolean('is_public', pub);
        if (await db.selectFrom('volume_types').select('id').where('name', '=', name).executeTakeFirst()) throw conflict(`Volume Type ${name} already exists.`);
        const now = new Date().toISOString();
        const id = uuid();
        try {
          await db.transaction().execute(async (tx) => {
            await tx.insertInto('volume_types').values({ id, name, description: b.description ?? null, is_public: isPublic ? 1 : 0, qos_specs_id: null, created_at: now, updated_at: now }).execute();
            for (const [key, v] of Object.entries(b.extra_specs ?? {})) await tx.insertInto('volume_type_extra_specs').values({ type_id: id, key, value: str(v) }).execute();
          });
        } catch (err) {
          if (await db.selectFrom('volume_types').select('id').where('name', '=', name).executeTakeFirst()) throw conflict(`Volume Type ${name} already exists.`);
          throw err;
        }
        return { volume_type: await show(rc, await byId(id), 'create') };
      },
    }),
    route({
      method: 'PUT', path: '/types/:type_id', rule: 'volume_extension:types_manage', schema: { body: TypeUpdate },
      async handler(rc) {
        const t = await byId(rc.params.type_id!);
        const b = rc.body.volume_type;
        if (b.name === undefined && b.description === undefined && b.is_public === undefined) {
          throw invalidInput('Specify volume type name, description, is_public or a combination thereof.');
        }
        const set: Partial<TypeRow> = { updated_at: new Date().toISOString() };
        if (typeof b.name === 'string') {
          const name = b.name.trim();
          if (!name) throw invalidInput('Volume type name can not be empty.');
          if (t.name === ctx.config.defaultType && name !== t.name) throw badRequest('The default volume type can not be renamed.');
          if (name !== t.name && await db.selectFrom('volume_types').select('id').where('name', '=', name).executeTakeFirst()) throw conflict(`Volume Type ${name} already exists.`);
          set.name = name;
        }
        if (b.description !== undefined) set.description = b.description;
        if (b.is_public !== undefined) set.is_public = (typeof b.is_public === 'boolean' ? b.is_public : parseBoolean('is_public', b.is_public)) ? 1 : 0;
        try {
          await db.transaction().execute((tx) => tx.updateTable('volume_types').set(set).where('id', '=', t.id).execute());
        } catch (err) {
          // a rename racing another create or rename to the same name: the unique index says no, as on create
          if (set.name !== undefined && await db.selectFrom('volume_types').select('id').where('name', '=', set.name).where('id', '!=', t.id).executeTakeFirst()) throw conflict(`Volume Type ${set.name} already exists.`);
          throw err;
        }
        return { volume_type: await show(rc, await byId(t.id), 'update') };
      },
    }),
    route({
      method: 'DELETE', path: '/types/:type_id', rule: 'volume_extension:types_manage', status: 202,
      async handler(rc) {
        const t = await byId(rc.params.type_id!);
        if (t.name === ctx.config.defaultType) throw badRequest('Default volume type can not be deleted.');
        if (await db.selectFrom('volume_default_types').select('project_id').where('type_id', '=', t.id).executeTakeFirst()) {
          throw badRequest(`Volume Type ${t.id} deletion is not allowed: it is the default type of a project.`);
        }
        if (await inUse(t.id)) throw badRequest(`Target volume type is still in use.`);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('volume_type_extra_specs').where('type_id', '=', t.id).execute();
          await tx.deleteFrom('volume_type_encryption').where('volume_type_id', '=', t.id).execute();
          await tx.deleteFrom('volume_type_projects').where('type_id', '=', t.id).execute();
          await tx.deleteFrom('volume_types').where('id', '=', t.id).execute();
        });
      },
    }),
    // extra specs
    route({
      method: 'GET', path: '/types/:type_id/extra_specs', rule: 'volume_extension:types_extra_specs:index',
      async handler(rc) {
        const t = await visibleById(rc, rc.params.type_id!);
        return { extra_specs: view(rc.cred!, t, await typeSpecs(ctx, t.id)).extra_specs };
      },
    }),
    route({
      method: 'POST', path: '/types/:type_id/extra_specs', rule: 'volume_extension:types_extra_specs:create', schema: { body: SpecsBody },
      async handler(rc) {
        const t = await byId(rc.params.type_id!);
        if (await inUse(t.id)) throw badRequest(`Volume Type ${t.id} is in use: its extra specs can not be changed.`);
        await putSpecs(t.id, rc.body.extra_specs);
        return { extra_specs: Object.fromEntries(Object.entries(rc.body.extra_specs).map(([k, v]) => [k, str(v)])) };
      },
    }),
    route({
      method: 'GET', path: '/types/:type_id/extra_specs/:key', rule: 'volume_extension:types_extra_specs:show',
      async handler(rc) {
        const t = await visibleById(rc, rc.params.type_id!);
        const specs = view(rc.cred!, t, await typeSpecs(ctx, t.id)).extra_specs as Record<string, string>;
        const key = rc.params.key!;
        if (!Object.hasOwn(specs, key)) throw notFound.extraSpec(t.id, key);
        return { [key]: specs[key] };
      },
    }),
    route({
      method: 'PUT', path: '/types/:type_id/extra_specs/:key', rule: 'volume_extension:types_extra_specs:update',
      schema: { body: Type.Record(Type.String({ minLength: 1, maxLength: 255 }), SpecValue) },
      async handler(rc) {
        const t = await byId(rc.params.type_id!);
        const key = rc.params.key!;
        const entries = Object.entries(rc.body);
        if (entries.length !== 1) throw badRequest('Request body contains too many items.');
        if (entries[0]![0] !== key) throw badRequest('Request body and URI mismatch');
        if (await inUse(t.id)) throw badRequest(`Volume Type ${t.id} is in use: its extra specs can not be changed.`);
        await putSpecs(t.id, rc.body);
        return { [key]: str(entries[0]![1]) };
      },
    }),
    route({
      method: 'DELETE', path: '/types/:type_id/extra_specs/:key', rule: 'volume_extension:types_extra_specs:delete', status: 202,
      async handler(rc) {
        const t = await byId(rc.params.type_id!);
        const key = rc.params.key!;
        if (await inUse(t.id)) throw badRequest(`Volume Type ${t.id} is in use: its extra specs can not be changed.`);
        const r = await db.deleteFrom('volume_type_extra_specs').where('type_id', '=', t.id).where('key', '=', key).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound.extraSpec(t.id, key);
      },
    }),
    // access to private types
    route({
      method: 'GET', path: '/types/:type_id/os-volume-type-access', rule: 'volume_extension:volume_type_access',
      async handler(rc) {
        const t = await byId(rc.params.type_id!);
        if (t.is_public) throw notFound.type(t.id);
        const rows = await db.selectFrom('volume_type_projects').select('project_id').where('type_id', '=', t.id).orderBy('project_id').execute();
        return { volume_type_access: rows.map((r) => ({ volume_type_id: t.id, project_id: r.project_id })) };
      },
    }),
    route({
      method: 'POST', path: '/types/:type_id/action', rule: 'volume_extension:volume_type_access', schema: { body: AccessAction }, status: 202,
      async handler(rc) {
        const t = await byId(rc.params.type_id!);
        const add = rc.body.addProjectAccess, remove = rc.body.removeProjectAccess;
        if (!add && !remove) throw badRequest('There is no such action: the body names neither addProjectAccess nor removeProjectAccess.');
        rc.enforce(add ? 'volume_extension:volume_type_access:addProjectAccess' : 'volume_extension:volume_type_access:removeProjectAccess', {});
        if (t.is_public) throw badRequest('Invalid volume type: Type access modification is not applicable to public volume type.');
        const project = (add ?? remove)!.project;
        const have = await db.selectFrom('volume_type_projects').select('project_id').where('type_id', '=', t.id).where('project_id', '=', project).executeTakeFirst();
        if (add) {
          if (have) throw conflict(`Volume type access for ${t.id} / ${project} combination already exists.`);
          await db.insertInto('volume_type_projects').values({ type_id: t.id, project_id: project }).execute();
        } else {
          if (!have) throw new ApiError('NotFound', `Volume type access not found for ${t.id} / ${project} combination.`);
          await db.deleteFrom('volume_type_projects').where('type_id', '=', t.id).where('project_id', '=', project).execute();
        }
      },
    }),
    // default types per project (3.62)
    since('3.62', route({
      method: 'PUT', path: '/default-types/:target_project', rule: 'volume_extension:default_set_or_update', schema: { body: DefaultBody },
      async handler(rc) {
        const project = rc.params.target_project!;
        const t = await findType(ctx, rc.cred!, rc.body.default_type.volume_type);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('volume_default_types').where('project_id', '=', project).execute();
          await tx.insertInto('volume_default_types').values({ project_id: project, type_id: t.id }).execute();
        });
        return { default_type: { project_id: project, volume_type_id: t.id } };
      },
    })),
    since('3.62', route({
      method: 'GET', path: '/default-types/:target_project', rule: 'volume_extension:default_get',
      async handler(rc) {
        const project = rc.params.target_project!;
        const r = await db.selectFrom('volume_default_types').selectAll().where('project_id', '=', project).executeTakeFirst();
        if (!r) throw notFound.defaultType(project);
        return { default_type: { project_id: r.project_id, volume_type_id: r.type_id } };
      },
    })),
    since('3.62', route({
      method: 'GET', path: '/default-types', rule: 'volume_extension:default_get_all',
      async handler() {
        const rows = await db.selectFrom('volume_default_types').selectAll().orderBy('project_id').execute();
        return { default_types: rows.map((r) => ({ project_id: r.project_id, volume_type_id: r.type_id })) };
      },
    })),
    since('3.62', route({
      method: 'DELETE', path: '/default-types/:target_project', rule: 'volume_extension:default_unset', status: 204,
      async handler(rc) {
        await db.deleteFrom('volume_default_types').where('project_id', '=', rc.params.target_project!).execute();
      },
    })),
  ];
}
