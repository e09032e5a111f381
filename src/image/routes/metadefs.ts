// /v2/metadefs: metadata definition namespaces with their objects,
// properties, tags and resource type associations; /v2/metadefs/resource_types;
// and the /v2/schemas/metadefs/* documents. Readers see public namespaces and
// their own project's; only admins change the catalog (Glance's defaults).
import type { FastifyRequest } from 'fastify';
import { badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import type { Db } from '../../db/database.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import type { Target } from '../../http/policy.ts';
import { objectOf } from '../../http/body.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ImageContext } from '../context.ts';
import { glanceTime, objectBody } from '../http.ts';
import { isAdminCred } from '../images.ts';
import { schemaViolation, type JsonSchema } from '../jsonschema.ts';
import { METADEF_SCHEMAS, namespaceSchema, objectSchema, propertySchema, resourceTypeSchema, tagSchema } from '../metadefs.ts';
import type { ImageTables } from '../schema.ts';

type NamespaceRow = ImageTables['image_metadef_namespaces'];
type ObjectRow = ImageTables['image_metadef_objects'];
type PropertyRow = ImageTables['image_metadef_properties'];
type TagRow = ImageTables['image_metadef_tags'];
type AssocRow = ImageTables['image_metadef_associations'];

const NS_SCHEMA = namespaceSchema();
const OBJECT_SCHEMA = objectSchema();
const PROPERTY_SCHEMA = propertySchema();
const PROPERTY_IN_OBJECT_SCHEMA = propertySchema(false);
const TAG_SCHEMA = tagSchema();
const RT_SCHEMA = resourceTypeSchema();

const json = <T>(s: string, fallback: T): T => {
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
};
const now = () => new Date().toISOString();
/** Drops undefined and null members, as Glance's WSME views do. */
const compact = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null));

function validate(schema: JsonSchema, body: unknown, name: string, disallowed: string[]): Record<string, unknown> {
  const b = objectBody(body, `Provided object does not match schema '${name}': ${JSON.stringify(body)} is not of type 'object'`);
  for (const k of disallowed) if (k in b) throw forbidden(`Attribute '${k}' is read-only.`);
  const err = schemaViolation(schema, b);
  if (err) throw badRequest(`Provided object does not match schema '${name}': ${err}`);
  return b;
}

const nsMissing = (ns: string) => notFound(`Metadata definition namespace=${ns} was not found.`);

/** A namespace's members kept by name: their table and how Glance's messages name them. */
const MEMBERS = {
  object: { table: 'image_metadef_objects', noun: 'metadata definition object' },
  property: { table: 'image_metadef_properties', noun: 'metadata definition property' },
  tag: { table: 'image_metadef_tags', noun: 'metadata tag' },
} as const;
type MemberKind = keyof typeof MEMBERS;
type MemberRow = { object: ObjectRow; property: PropertyRow; tag: TagRow };

const memberMissing = (kind: MemberKind, ns: string, name: string) => {
  const noun = MEMBERS[kind].noun;
  return notFound(`${noun[0]!.toUpperCase()}${noun.slice(1)} not found for namespace=${ns} and ${kind}=${name}.`);
};
const memberExists = (kind: MemberKind, ns: string, name: string) =>
  conflict(`A ${MEMBERS[kind].noun} with name=${name} already exists in namespace=${ns}.`);

const canSeeNamespace = (rc: RouteContext, ns: NamespaceRow): boolean =>
  isAdminCred(rc.cred!) || ns.visibility === 'public' || (rc.cred!.projectId !== null && rc.cred!.projectId === ns.owner);

const nsTarget = (ns: NamespaceRow): Target => ({ project_id: ns.owner, owner: ns.owner, visibility: ns.visibility, namespace: ns.namespace });

const loadedNs = new WeakMap<FastifyRequest, NamespaceRow>();

function renderAssoc(a: AssocRow) {
  return compact({ name: a.resource_type, prefix: a.prefix, properties_target: a.properties_target, created_at: glanceTime(a.created_at), updated_at: glanceTime(a.updated_at) });
}
function renderObject(o: ObjectRow) {
  return compact({
    name: o.name, description: o.description, required: json(o.required, []), properties: json(o.properties, {}),
    schema: '/v2/schemas/metadefs/object', self: `/v2/metadefs/namespaces/${o.namespace}/objects/${o.name}`,
    created_at: glanceTime(o.created_at), updated_at: glanceTime(o.updated_at),
  });
}
const renderProperty = (p: PropertyRow) => ({ name: p.name, ...json<Record<string, unknown>>(p.definition, {}) });
const renderTag = (t: TagRow) => ({ name: t.name, created_at: glanceTime(t.created_at), updated_at: glanceTime(t.updated_at) });

function renderNamespace(ns: NamespaceRow, assocs: AssocRow[]) {
  return compact({
    namespace: ns.namespace, display_name: ns.display_name, description: ns.description, visibility: ns.visibility,
    protected: ns.protected === 1, owner: ns.owner, created_at: glanceTime(ns.created_at), updated_at: glanceTime(ns.updated_at),
    resource_type_associations: assocs.length ? assocs.map(renderAssoc) : undefined,
    schema: '/v2/schemas/metadefs/namespace', self: `/v2/metadefs/namespaces/${ns.namespace}`,
  });
}

const getNs = (db: Db, ns: string) => db.selectFrom('image_metadef_namespaces').selectAll().where('namespace', '=', ns).executeTakeFirst();

/** Property definitions as stored: the body without its name. */
function propertyDefinition(body: Record<string, unknown>): string {
  const { name: _n, ...def } = body;
  return JSON.stringify(def);
}

function checkObjectProperties(b: Record<string, unknown>): void {
  const props = objectOf(b.properties) ?? {};
  for (const p of Object.values(props)) {
    const err = schemaViolation(PROPERTY_IN_OBJECT_SCHEMA, p);
    if (err) throw badRequest(`Provided object does not match schema 'property': ${err}`);
  }
}

async function ensureResourceType(db: Db, name: string): Promise<void> {
  const found = await db.selectFrom('image_metadef_resource_types').select('name').where('name', '=', name).executeTakeFirst();
  if (!found) {
    const t = now();
    await db.insertInto('image_metadef_resource_types').values({ name, protected: 0, created_at: t, updated_at: t }).execute();
  }
}

export function metadefRoutes(ictx: ImageContext): Route[] {
  const db = ictx.db;
  /** Loads :namespace; one the caller may not see is a 404. */
  const target = async (rc: RouteContext): Promise<Target> => {
    const name = rc.params.namespace ?? '';
    const ns = await getNs(db, name);
    if (!ns || !canSeeNamespace(rc, ns)) throw nsMissing(name);
    loadedNs.set(rc.req, ns);
    return nsTarget(ns);
  };
  const nsOf = (rc: RouteContext): NamespaceRow => loadedNs.get(rc.req)!;
  const touch = (ns: string) => db.updateTable('image_metadef_namespaces').set({ updated_at: now() }).where('namespace', '=', ns).execute();
  const assocsOf = (ns: string) => db.selectFrom('image_metadef_associations').selectAll().where('namespace', '=', ns).orderBy('created_at').execute();

  // A namespace's objects, properties and tags: found, added, renamed and
  // removed by name the same way (404 for a missing name, 409 for a taken one).
  const findMember = (kind: MemberKind, ns: string, name: string) =>
    db.selectFrom(MEMBERS[kind].table).selectAll().where('namespace', '=', ns).where('name', '=', name).executeTakeFirst();
  /** The member called `name`; a 404 naming `shown` (the name as asked for) if there is none. */
  async function getMember<K extends MemberKind>(kind: K, ns: string, name: string, shown = name): Promise<MemberRow[K]> {
    const row = await findMember(kind, ns, name);
    if (!row) throw memberMissing(kind, ns, shown);
    return row as MemberRow[K];
  }
  async function addMember<K extends MemberKind>(kind: K, row: MemberRow[K]): Promise<void> {
    if (await findMember(kind, row.namespace, row.name)) throw memberExists(kind, row.namespace, row.name);
    await db.insertInto(MEMBERS[kind].table).values(row).execute();
  }
  /** Replaces the member called `name` by `next` (which may carry a new name). */
  async function replaceMember<K extends MemberKind>(kind: K, name: string, next: MemberRow[K]): Promise<void> {
    if (next.name !== name && (await findMember(kind, next.namespace, next.name))) throw memberExists(kind, next.namespace, next.name);
    await db.updateTable(MEMBERS[kind].table).set(next).where('namespace', '=', next.namespace).where('name', '=', name).execute();
  }
  async function deleteMember(kind: MemberKind, ns: string, name: string): Promise<void> {
    const res = await db.deleteFrom(MEMBERS[kind].table).where('namespace', '=', ns).where('name', '=', name).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw memberMissing(kind, ns, name);
  }

  const base = '/v2/metadefs/namespaces/:namespace';
  return [
    route({
      method: 'GET', path: '/v2/schemas/metadefs/:name', rule: 'get_schemas',
      handler(rc) {
        const build = METADEF_SCHEMAS[rc.params.name ?? ''];
        if (!build) throw notFound('The resource could not be found.');
        return build();
      },
    }),
    // ---------------------------------------------------------------- resource types
    route({
      method: 'GET', path: '/v2/metadefs/resource_types', rule: 'list_metadef_resource_types',
      target: (rc) => ({ project_id: rc.cred?.projectId, visibility: 'public' }),
      async handler() {
        const rows = await db.selectFrom('image_metadef_resource_types').selectAll().orderBy('created_at').orderBy('name').execute();
        return { resource_types: rows.map((r) => ({ name: r.name, created_at: glanceTime(r.created_at), updated_at: glanceTime(r.updated_at) })) };
      },
    }),
    route({
      method: 'GET', path: `${base}/resource_types`, rule: 'get_metadef_resource_type', target,
      handler: async (rc) => ({ resource_type_associations: (await assocsOf(nsOf(rc).namespace)).map(renderAssoc) }),
    }),
    route({
      method: 'POST', path: `${base}/resource_types`, rule: 'add_metadef_resource_type_association', target, status: 201,
      async handler(rc) {
        const b = validate(RT_SCHEMA, rc.body, 'resource_type_association', ['created_at', 'updated_at']);
        const ns = nsOf(rc);
        const name = b.name as string;
        await ensureResourceType(db, name);
        const exists = await db.selectFrom('image_metadef_associations').select('resource_type')
          .where('namespace', '=', ns.namespace).where('resource_type', '=', name).executeTakeFirst();
        if (exists) throw conflict(`The metadata definition resource-type association of resource-type=${name} to namespace=${ns.namespace}, already exists.`);
        const t = now();
        const row: AssocRow = {
          namespace: ns.namespace, resource_type: name, prefix: (b.prefix as string | undefined) ?? null,
          properties_target: (b.properties_target as string | undefined) ?? null, created_at: t, updated_at: t,
        };
        await db.insertInto('image_metadef_associations').values(row).execute();
        return renderAssoc(row);
      },
    }),
    route({
      method: 'DELETE', path: `${base}/resource_types/:resource_type`, rule: 'remove_metadef_resource_type_association', target, status: 204,
      async handler(rc) {
        const ns = nsOf(rc);
        const rt = rc.params.resource_type!;
        const res = await db.deleteFrom('image_metadef_associations').where('namespace', '=', ns.namespace).where('resource_type', '=', rt).executeTakeFirst();
        if (Number(res.numDeletedRows) === 0) {
          throw notFound(`The metadata definition resource-type association of resource-type=${rt} to namespace=${ns.namespace}, was not found.`);
        }
      },
    }),
    // ---------------------------------------------------------------- namespaces
    route({
      method: 'GET', path: '/v2/metadefs/namespaces', rule: 'get_metadef_namespaces',
      async handler(rc) {
        const q = rc.query as Record<string, string | undefined>;
        const sortDir = q.sort_dir ?? 'desc';
        if (sortDir !== 'asc' && sortDir !== 'desc') throw badRequest(`Invalid sort direction: ${sortDir}`);
        const sortKey = q.sort_key ?? 'created_at';
        if (!['created_at', 'updated_at', 'namespace', 'display_name'].includes(sortKey)) throw badRequest(`Invalid sort key: ${sortKey}`);
        if (q.visibility !== undefined && !['public', 'private'].includes(q.visibility)) throw badRequest(`Invalid visibility value: ${q.visibility}`);
        let limit = 25;
        if (q.limit !== undefined) {
          if (!/^-?\d+$/.test(q.limit)) throw badRequest('limit param must be an integer');
          limit = Math.min(parseInt(q.limit, 10), 1000);
          if (limit < 0) throw badRequest('limit param must be positive');
        }
        let rows = (await db.selectFrom('image_metadef_namespaces').selectAll().execute()).filter((ns) => canSeeNamespace(rc, ns));
        if (q.visibility) rows = rows.filter((ns) => ns.visibility === q.visibility);
        const assocs = await db.selectFrom('image_metadef_associations').selectAll().orderBy('created_at').execute();
        const byNs = new Map<string, AssocRow[]>();
        for (const a of assocs) (byNs.get(a.namespace) ?? byNs.set(a.namespace, []).get(a.namespace)!).push(a);
        if (q.resource_types) {
          const wanted = q.resource_types.split(',').map((s) => s.trim());
          rows = rows.filter((ns) => (byNs.get(ns.namespace) ?? []).some((a) => wanted.includes(a.resource_type)));
        }
        const key = sortKey as keyof NamespaceRow;
        rows.sort((a, b) => {
          const c = String(a[key] ?? '') < String(b[key] ?? '') ? -1 : String(a[key] ?? '') > String(b[key] ?? '') ? 1 : a.namespace < b.namespace ? -1 : 1;
          return sortDir === 'asc' ? c : -c;
        });
        if (q.marker !== undefined) {
          const i = rows.findIndex((ns) => ns.namespace === q.marker);
          if (i < 0) throw nsMissing(q.marker);
          rows = rows.slice(i + 1);
        }
        const page = rows.slice(0, limit);
        const params = new URLSearchParams(rc.req.url.includes('?') ? rc.req.url.slice(rc.req.url.indexOf('?') + 1) : '');
        params.delete('marker');
        const query = params.toString();
        const out: Record<string, unknown> = {
          namespaces: page.map((ns) => renderNamespace(ns, byNs.get(ns.namespace) ?? [])),
          first: query ? `/v2/metadefs/namespaces?${query}` : '/v2/metadefs/namespaces',
          schema: '/v2/schemas/metadefs/namespaces',
        };
        if (page.length !== 0 && page.length === limit) {
          params.set('marker', page[page.length - 1]!.namespace);
          out.next = `/v2/metadefs/namespaces?${params.toString()}`;
        }
        return out;
      },
    }),
    route({
      method: 'POST', path: '/v2/metadefs/namespaces', rule: 'add_metadef_namespace', status: 201,
      target: (rc) => ({ project_id: rc.cred?.projectId }),
      async handler(rc) {
        const b = validate(NS_SCHEMA, rc.body, 'namespace', ['self', 'schema', 'created_at', 'updated_at']);
        for (const list of ['objects', 'resource_type_associations', 'tags'] as const) {
          for (const o of (b[list] ?? []) as Array<Record<string, unknown>>) {
            if (!o.name) throw badRequest(`Provided object does not match schema 'namespace': 'name' is a required property of each of ${list}`);
          }
        }
        const name = b.namespace as string;
        if (await getNs(db, name)) throw conflict(`A metadata definition namespace with name=${name} already exists.`);
        const t = now();
        const ns: NamespaceRow = {
          namespace: name, display_name: (b.display_name as string | undefined) ?? null, description: (b.description as string | undefined) ?? null,
          visibility: (b.visibility as string | undefined) ?? 'private', protected: b.protected === true ? 1 : 0,
          owner: (b.owner as string | undefined) ?? rc.cred!.projectId, created_at: t, updated_at: t,
        };
        await conflictOnDuplicate(db.transaction().execute(async (tx) => {
          await tx.insertInto('image_metadef_namespaces').values(ns).execute();
          for (const a of (b.resource_type_associations ?? []) as Array<Record<string, string>>) {
            await ensureResourceType(tx as unknown as Db, a.name!);
            await tx.insertInto('image_metadef_associations').values({
              namespace: name, resource_type: a.name!, prefix: a.prefix ?? null, properties_target: a.properties_target ?? null, created_at: t, updated_at: t,
            }).execute();
          }
          for (const o of (b.objects ?? []) as Array<Record<string, unknown>>) {
            await tx.insertInto('image_metadef_objects').values({
              namespace: name, name: o.name as string, description: (o.description as string | undefined) ?? null,
              required: JSON.stringify(o.required ?? []), properties: JSON.stringify(o.properties ?? {}), created_at: t, updated_at: t,
            }).execute();
          }
          for (const [pname, def] of Object.entries((b.properties ?? {}) as Record<string, Record<string, unknown>>)) {
            await tx.insertInto('image_metadef_properties').values({ namespace: name, name: pname, definition: propertyDefinition(def), created_at: t, updated_at: t }).execute();
          }
          for (const tag of (b.tags ?? []) as Array<Record<string, string>>) {
            await tx.insertInto('image_metadef_tags').values({ namespace: name, name: tag.name!, created_at: t, updated_at: t }).execute();
          }
        }), () => conflict(`A metadata definition namespace with name=${name} already exists, or its request repeats a member.`));
        const out: Record<string, unknown> = renderNamespace(ns, await assocsOf(name));
        if (b.properties) out.properties = b.properties;
        if (b.objects) out.objects = b.objects;
        if (b.tags) out.tags = b.tags;
        rc.reply.header('Location', `/v2/metadefs/namespaces/${encodeURIComponent(name)}`);
        return out;
      },
    }),
    route({
      method: 'GET', path: base, rule: 'get_metadef_namespace', target,
      async handler(rc) {
        const ns = nsOf(rc);
        const out: Record<string, unknown> = renderNamespace(ns, await assocsOf(ns.namespace));
        const objects = await db.selectFrom('image_metadef_objects').selectAll().where('namespace', '=', ns.namespace).orderBy('name').execute();
        if (objects.length) out.objects = objects.map(renderObject);
        const props = await db.selectFrom('image_metadef_properties').selectAll().where('namespace', '=', ns.namespace).orderBy('name').execute();
        const prefix = (rc.query.resource_type && (await assocsOf(ns.namespace)).find((a) => a.resource_type === rc.query.resource_type)?.prefix) || '';
        if (props.length) out.properties = Object.fromEntries(props.map((p) => [`${prefix}${p.name}`, json(p.definition, {})]));
        const tags = await db.selectFrom('image_metadef_tags').selectAll().where('namespace', '=', ns.namespace).orderBy('created_at').execute();
        if (tags.length) out.tags = tags.map((t) => ({ name: t.name }));
        return out;
      },
    }),
    route({
      method: 'PUT', path: base, rule: 'modify_metadef_namespace', target,
      async handler(rc) {
        const b = validate(NS_SCHEMA, rc.body, 'namespace', ['self', 'schema', 'created_at', 'updated_at']);
        const ns = nsOf(rc);
        const next: NamespaceRow = {
          ...ns,
          namespace: (b.namespace as string | undefined) ?? ns.namespace,
          display_name: b.display_name !== undefined ? (b.display_name as string) : ns.display_name,
          description: b.description !== undefined ? (b.description as string) : ns.description,
          visibility: (b.visibility as string | undefined) ?? ns.visibility,
          protected: b.protected !== undefined ? (b.protected ? 1 : 0) : ns.protected,
          owner: (b.owner as string | undefined) ?? ns.owner,
          updated_at: now(),
        };
        if (next.namespace !== ns.namespace && (await getNs(db, next.namespace))) {
          throw conflict(`A metadata definition namespace with name=${next.namespace} already exists.`);
        }
        await db.transaction().execute(async (tx) => {
          await tx.updateTable('image_metadef_namespaces').set(next).where('namespace', '=', ns.namespace).execute();
          if (next.namespace !== ns.namespace) {
            for (const t of ['image_metadef_objects', 'image_metadef_properties', 'image_metadef_tags', 'image_metadef_associations'] as const) {
              await tx.updateTable(t).set({ namespace: next.namespace }).where('namespace', '=', ns.namespace).execute();
            }
          }
        });
        return renderNamespace(next, await assocsOf(next.namespace));
      },
    }),
    route({
      method: 'DELETE', path: base, rule: 'delete_metadef_namespace', target, status: 204,
      async handler(rc) {
        const ns = nsOf(rc);
        if (ns.protected) throw forbidden(`Namespace ${ns.namespace} is protected and cannot be deleted.`);
        await db.transaction().execute(async (tx) => {
          for (const t of ['image_metadef_objects', 'image_metadef_properties', 'image_metadef_tags', 'image_metadef_associations'] as const) {
            await tx.deleteFrom(t).where('namespace', '=', ns.namespace).execute();
          }
          await tx.deleteFrom('image_metadef_namespaces').where('namespace', '=', ns.namespace).execute();
        });
      },
    }),
    ...(['objects', 'properties', 'tags'] as const).map((what): Route => (route({
      method: 'DELETE', path: `${base}/${what}`,
      rule: what === 'objects' ? 'delete_metadef_object' : what === 'properties' ? 'remove_metadef_property' : 'delete_metadef_tags',
      target, status: 204,
      async handler(rc) {
        const ns = nsOf(rc);
        if (ns.protected) throw forbidden(`Namespace ${ns.namespace} is protected and cannot be deleted.`);
        const table = what === 'objects' ? 'image_metadef_objects' : what === 'properties' ? 'image_metadef_properties' : 'image_metadef_tags';
        await db.deleteFrom(table).where('namespace', '=', ns.namespace).execute();
        await touch(ns.namespace);
      },
    }))),
    // ---------------------------------------------------------------- objects
    route({
      method: 'GET', path: `${base}/objects`, rule: 'get_metadef_objects', target,
      async handler(rc) {
        const rows = await db.selectFrom('image_metadef_objects').selectAll().where('namespace', '=', nsOf(rc).namespace).orderBy('created_at', 'desc').execute();
        return { objects: rows.map(renderObject), schema: 'v2/schemas/metadefs/objects' };
      },
    }),
    route({
      method: 'POST', path: `${base}/objects`, rule: 'add_metadef_object', target, status: 201,
      async handler(rc) {
        const b = validate(OBJECT_SCHEMA, rc.body, 'object', ['self', 'schema', 'created_at', 'updated_at']);
        checkObjectProperties(b);
        const ns = nsOf(rc);
        const t = now();
        const row: ObjectRow = {
          namespace: ns.namespace, name: b.name as string, description: (b.description as string | undefined) ?? null,
          required: JSON.stringify(b.required ?? []), properties: JSON.stringify(b.properties ?? {}), created_at: t, updated_at: t,
        };
        await addMember('object', row);
        return renderObject(row);
      },
    }),
    route({
      method: 'GET', path: `${base}/objects/:object`, rule: 'get_metadef_object', target,
      async handler(rc) {
        return renderObject(await getMember('object', nsOf(rc).namespace, rc.params.object!));
      },
    }),
    route({
      method: 'PUT', path: `${base}/objects/:object`, rule: 'modify_metadef_object', target,
      async handler(rc) {
        const b = validate(OBJECT_SCHEMA, rc.body, 'object', ['self', 'schema', 'created_at', 'updated_at']);
        checkObjectProperties(b);
        const ns = nsOf(rc);
        const name = rc.params.object!;
        const row = await getMember('object', ns.namespace, name);
        const next: ObjectRow = {
          ...row, name: b.name as string, description: (b.description as string | undefined) ?? null,
          required: JSON.stringify(b.required ?? []), properties: JSON.stringify(b.properties ?? {}), updated_at: now(),
        };
        await replaceMember('object', name, next);
        return renderObject(next);
      },
    }),
    route({
      method: 'DELETE', path: `${base}/objects/:object`, rule: 'delete_metadef_object', target, status: 204,
      async handler(rc) {
        await deleteMember('object', nsOf(rc).namespace, rc.params.object!);
      },
    }),
    // ---------------------------------------------------------------- properties
    route({
      method: 'GET', path: `${base}/properties`, rule: 'get_metadef_properties', target,
      async handler(rc) {
        const rows = await db.selectFrom('image_metadef_properties').selectAll().where('namespace', '=', nsOf(rc).namespace).orderBy('name').execute();
        return { properties: Object.fromEntries(rows.map((p) => [p.name, json(p.definition, {})])) };
      },
    }),
    route({
      method: 'POST', path: `${base}/properties`, rule: 'add_metadef_property', target, status: 201,
      async handler(rc) {
        const b = validate(PROPERTY_SCHEMA, rc.body, 'property', []);
        const ns = nsOf(rc);
        const t = now();
        const row: PropertyRow = { namespace: ns.namespace, name: b.name as string, definition: propertyDefinition(b), created_at: t, updated_at: t };
        await addMember('property', row);
        return renderProperty(row);
      },
    }),
    route({
      method: 'GET', path: `${base}/properties/:property`, rule: 'get_metadef_property', target,
      async handler(rc) {
        const ns = nsOf(rc);
        let name = rc.params.property!;
        // With ?resource_type=..., the name carries that association's prefix.
        const rt = rc.query.resource_type;
        if (typeof rt === 'string') {
          const prefix = (await assocsOf(ns.namespace)).find((a) => a.resource_type === rt)?.prefix;
          if (prefix && name.startsWith(prefix)) name = name.slice(prefix.length);
        }
        return renderProperty(await getMember('property', ns.namespace, name, rc.params.property!));
      },
    }),
    route({
      method: 'PUT', path: `${base}/properties/:property`, rule: 'modify_metadef_property', target,
      async handler(rc) {
        const b = validate(PROPERTY_SCHEMA, rc.body, 'property', []);
        const ns = nsOf(rc);
        const name = rc.params.property!;
        const row = await getMember('property', ns.namespace, name);
        const next: PropertyRow = { ...row, name: b.name as string, definition: propertyDefinition(b), updated_at: now() };
        await replaceMember('property', name, next);
        return renderProperty(next);
      },
    }),
    route({
      method: 'DELETE', path: `${base}/properties/:property`, rule: 'remove_metadef_property', target, status: 204,
      async handler(rc) {
        await deleteMember('property', nsOf(rc).namespace, rc.params.property!);
      },
    }),
    // ---------------------------------------------------------------- tags
    route({
      method: 'GET', path: `${base}/tags`, rule: 'get_metadef_tags', target,
      async handler(rc) {
        const rows = await db.selectFrom('image_metadef_tags').selectAll().where('namespace', '=', nsOf(rc).namespace).orderBy('created_at').orderBy('name').execute();
        return { tags: rows.map(renderTag) };
      },
    }),
    route({
      method: 'POST', path: `${base}/tags`, rule: 'add_metadef_tags', target, status: 201,
      async handler(rc) {
        const b = objectOf(rc.body);
        if (!b || !Array.isArray(b.tags)) throw badRequest("Provided object does not match schema 'tags': 'tags' is a required property");
        const names: string[] = [];
        for (const tag of b.tags) {
          const t = validate(TAG_SCHEMA, tag, 'tag', ['created_at', 'updated_at']);
          names.push(t.name as string);
        }
        if (new Set(names).size !== names.length) throw conflict('Duplicate tags in the request.');
        const ns = nsOf(rc);
        const append = String(rc.req.headers['x-openstack-append'] ?? '').toLowerCase() === 'true';
        const t = now();
        await db.transaction().execute(async (tx) => {
          if (!append) await tx.deleteFrom('image_metadef_tags').where('namespace', '=', ns.namespace).execute();
          const existing = new Set((await tx.selectFrom('image_metadef_tags').select('name').where('namespace', '=', ns.namespace).execute()).map((r) => r.name));
          const dup = names.find((n) => existing.has(n));
          if (dup) throw memberExists('tag', ns.namespace, dup);
          if (names.length) await tx.insertInto('image_metadef_tags').values(names.map((name) => ({ namespace: ns.namespace, name, created_at: t, updated_at: t }))).execute();
        });
        return { tags: names.map((name) => ({ name })) };
      },
    }),
    route({
      method: 'POST', path: `${base}/tags/:tag`, rule: 'add_metadef_tag', target, status: 201,
      async handler(rc) {
        const ns = nsOf(rc);
        const name = rc.params.tag!;
        validate(TAG_SCHEMA, { name }, 'tag', []);
        const t = now();
        const row: TagRow = { namespace: ns.namespace, name, created_at: t, updated_at: t };
        await addMember('tag', row);
        return renderTag(row);
      },
    }),
    route({
      method: 'GET', path: `${base}/tags/:tag`, rule: 'get_metadef_tag', target,
      async handler(rc) {
        return renderTag(await getMember('tag', nsOf(rc).namespace, rc.params.tag!));
      },
    }),
    route({
      method: 'PUT', path: `${base}/tags/:tag`, rule: 'modify_metadef_tag', target,
      async handler(rc) {
        const b = validate(TAG_SCHEMA, rc.body, 'tag', ['created_at', 'updated_at']);
        const ns = nsOf(rc);
        const name = rc.params.tag!;
        const row = await getMember('tag', ns.namespace, name);
        const next: TagRow = { ...row, name: b.name as string, updated_at: now() };
        await replaceMember('tag', name, next);
        return renderTag(next);
      },
    }),
    route({
      method: 'DELETE', path: `${base}/tags/:tag`, rule: 'delete_metadef_tag', target, status: 204,
      async handler(rc) {
        await deleteMember('tag', nsOf(rc).namespace, rc.params.tag!);
      },
    }),
  ];
}
