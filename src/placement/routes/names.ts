// Resource classes (1.2) and traits (1.6): the standard names plus CUSTOM_* rows.
import { Type } from 'typebox';
import type { Db } from '../../db/database.ts';
import { conflictOnDuplicate, ignoreDuplicate } from '../../db/unique.ts';
import { nowIso } from '../../common/ids.ts';
import { route, type Route } from '../../http/service.ts';
import { CUSTOM_NAME, isStandardClass, isStandardTrait, STANDARD_CLASSES, STANDARD_TRAITS } from '../classes.ts';
import { badRequest, conflict, notFound, PlacementCode } from '../errors.ts';
import { PREFIX, since } from '../http.ts';

const CustomName = Type.String({ pattern: '^CUSTOM_[A-Z0-9_]+$', maxLength: 255 });
const ClassBody = Type.Object({ name: CustomName }, { additionalProperties: false });

const classView = (name: string) => ({ name, links: [{ rel: 'self', href: `${PREFIX}/resource_classes/${name}` }] });

async function classExists(db: Db, name: string): Promise<boolean> {
  return isStandardClass(name) || !!(await db.selectFrom('placement_resource_classes').select('name').where('name', '=', name).executeTakeFirst());
}
async function traitExists(db: Db, name: string): Promise<boolean> {
  return isStandardTrait(name) || !!(await db.selectFrom('placement_traits').select('name').where('name', '=', name).executeTakeFirst());
}

function customOnly(name: string, what: 'resource class' | 'trait'): void {
  if (!CUSTOM_NAME.test(name)) {
    throw badRequest(what === 'trait'
      ? `The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"`
      : `JSON does not validate: '${name}' does not match '^CUSTOM_[A-Z0-9_]+$'`);
  }
}

/** GET /traits filters: name=in:A,B or name=startswith:CUSTOM_; associated=true|false. */
function traitFilter(q: Record<string, string | string[] | undefined>): { names?: Set<string>; prefix?: string; associated?: boolean } {
  for (const k of Object.keys(q)) {
    if (k !== 'name' && k !== 'associated') throw badRequest(`Invalid query string parameters: Additional properties are not allowed ('${k}' was unexpected)`);
  }
  const out: { names?: Set<string>; prefix?: string; associated?: boolean } = {};
  const name = q.name;
  if (typeof name === 'string') {
    if (name.startsWith('in:')) out.names = new Set(name.slice(3).split(','));
    else if (name.startsWith('startswith:')) out.prefix = name.slice('startswith:'.length);
    else throw badRequest(`Badly formed name filter. Expected 'in:' or 'startswith:' but got ${name}`, PlacementCode.queryBadValue);
  } else if (name !== undefined) throw badRequest("Invalid query string parameters: 'name' may be given once.", PlacementCode.queryBadValue);
  const assoc = q.associated;
  if (assoc !== undefined) {
    if (assoc !== 'true' && assoc !== 'false') throw badRequest(`The query parameter "associated" only accepts "true" or "false"`, PlacementCode.queryBadValue);
    out.associated = assoc === 'true';
  }
  return out;
}

export function nameRoutes(db: Db): Route[] {
  return [
    // ---- resource classes
    since('1.2', route({
      method: 'GET', path: '/resource_classes', rule: 'placement:resource_classes:list',
      async handler() {
        const custom = (await db.selectFrom('placement_resource_classes').select('name').orderBy('name').execute()).map((r) => r.name);
        return { resource_classes: [...STANDARD_CLASSES, ...custom].map(classView) };
      },
    })),
    since('1.2', route({
      method: 'POST', path: '/resource_classes', rule: 'placement:resource_classes:create', schema: { body: ClassBody }, status: 201,
      async handler(rc) {
        const name = rc.body.name;
        await conflictOnDuplicate(db.insertInto('placement_resource_classes').values({ name, created_at: nowIso() }).execute(),
          () => conflict(`Conflicting resource class already exists: ${name}`, PlacementCode.duplicateName));
        rc.reply.header('Location', `${PREFIX}/resource_classes/${name}`);
      },
    })),
    since('1.2', route({
      method: 'GET', path: '/resource_classes/:name', rule: 'placement:resource_classes:show',
      async handler(rc) {
        const name = rc.params.name!;
        if (!(await classExists(db, name))) throw notFound(`No such resource class ${name}.`);
        return classView(name);
      },
    })),
    // 1.2-1.6 renamed a class with a body; from 1.7 PUT creates the class if absent and takes no body.
    since('1.7', route({
      method: 'PUT', path: '/resource_classes/:name', rule: 'placement:resource_classes:update',
      async handler(rc) {
        const name = rc.params.name!;
        customOnly(name, 'resource class');
        if (await classExists(db, name)) {
          rc.reply.code(204);
          return;
        }
        await ignoreDuplicate(db.insertInto('placement_resource_classes').values({ name, created_at: nowIso() }).execute());
        rc.reply.code(201).header('Location', `${PREFIX}/resource_classes/${name}`);
      },
    })),
    since('1.2', route({
      method: 'DELETE', path: '/resource_classes/:name', rule: 'placement:resource_classes:delete', status: 204,
      async handler(rc) {
        const name = rc.params.name!;
        if (isStandardClass(name)) throw badRequest(`Cannot delete standard resource class ${name}: Cannot delete a standard resource class.`);
        if (!(await classExists(db, name))) throw notFound(`No such resource class ${name}.`);
        const used = await db.selectFrom('placement_inventories').select('provider_uuid').where('resource_class', '=', name).executeTakeFirst();
        if (used) throw conflict(`Unable to delete resource class ${name}. The resource class is in use in inventory.`, PlacementCode.inventoryInUse);
        await db.deleteFrom('placement_resource_classes').where('name', '=', name).execute();
      },
    })),

    // ---- traits
    since('1.6', route({
      method: 'GET', path: '/traits', rule: 'placement:traits:list',
      async handler(rc) {
        const f = traitFilter(rc.query);
        const custom = (await db.selectFrom('placement_traits').select('name').orderBy('name').execute()).map((r) => r.name);
        let names = [...STANDARD_TRAITS, ...custom];
        if (f.names) names = names.filter((n) => f.names!.has(n));
        if (f.prefix !== undefined) names = names.filter((n) => n.startsWith(f.prefix!));
        if (f.associated !== undefined) {
          const assoc = new Set((await db.selectFrom('placement_provider_traits').select('trait').distinct().execute()).map((r) => r.trait));
          names = names.filter((n) => assoc.has(n) === f.associated);
        }
        return { traits: names.sort() };
      },
    })),
    since('1.6', route({
      method: 'GET', path: '/traits/:name', rule: 'placement:traits:show', status: 204,
      async handler(rc) {
        if (!(await traitExists(db, rc.params.name!))) throw notFound(`No such trait(s): ${rc.params.name}.`);
      },
    })),
    since('1.6', route({
      method: 'PUT', path: '/traits/:name', rule: 'placement:traits:update',
      async handler(rc) {
        const name = rc.params.name!;
        customOnly(name, 'trait');
        rc.reply.header('Location', `${PREFIX}/traits/${name}`);
        if (await traitExists(db, name)) {
          rc.reply.code(204);
          return;
        }
        await ignoreDuplicate(db.insertInto('placement_traits').values({ name, created_at: nowIso() }).execute());
        rc.reply.code(201);
      },
    })),
    since('1.6', route({
      method: 'DELETE', path: '/traits/:name', rule: 'placement:traits:delete', status: 204,
      async handler(rc) {
        const name = rc.params.name!;
        if (isStandardTrait(name)) throw badRequest(`Cannot delete standard trait ${name}.`);
        if (!(await traitExists(db, name))) throw notFound(`No such trait(s): ${name}.`);
        const used = await db.selectFrom('placement_provider_traits').select('provider_uuid').where('trait', '=', name).executeTakeFirst();
        if (used) throw conflict(`The trait ${name} is in use by a resource provider.`);
        await db.deleteFrom('placement_traits').where('name', '=', name).execute();
      },
    })),
  ];
}
