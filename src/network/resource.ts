// What every Neutron resource shares: the standard attributes (project_id and
// tenant_id, description, revision_number, created_at/updated_at, tags), the
// revision check of `If-Match: revision_number=N`, finding a row the caller
// may see (404 otherwise), and the routes every collection has alike: list
// (through list.ts), show, and the tags sub-resource (standard-attr-tag).
import { Type, type Static, type TSchema } from 'typebox';
import { Reverter } from '../common/revert.ts';
import type { Kysely, SelectQueryBuilder } from 'kysely';
import { nowIso } from '../common/ids.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { badRequest, NeutronError, notFound, revisionMismatch, type ResourceKind } from './errors.ts';
import { listAnswer, selectFields, type AttrKind, type View } from './list.ts';
import { ownerOnly } from './policy.ts';
import type { NetworkTables } from './schema.ts';

export type TableName = keyof NetworkTables;
export interface StandardRow { id: string; project_id: string; description: string; revision_number: number; created_at: string; updated_at: string }

/** Neutron's timestamps: seconds, UTC, `Z`. */
export const neutronTime = (iso: string): string => `${iso.slice(0, 19)}Z`;

export function standardView(row: StandardRow, tags: string[]): View {
  return {
    id: row.id, project_id: row.project_id, tenant_id: row.project_id, description: row.description,
    revision_number: row.revision_number, created_at: neutronTime(row.created_at), updated_at: neutronTime(row.updated_at), tags,
  };
}

/** The standard columns of a new row. */
export function newStandard(id: string, projectId: string, description: string | undefined): StandardRow {
  const now = nowIso();
  return { id, project_id: projectId, description: description ?? '', revision_number: 0, created_at: now, updated_at: now };
}

export async function tagsOf(db: Kysely<any>, type: string, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db.selectFrom('network_tags').select(['resource_id', 'tag'])
      .where('resource_type', '=', type).where('resource_id', 'in', ids.slice(i, i + 500)).orderBy('tag').execute();
    for (const r of rows) out.get(r.resource_id)?.push(r.tag);
  }
  return out;
}

/** The revision a request is constrained to by `If-Match: revision_number=N`, or null. */
export function ifMatchRevision(rc: RouteContext): number | null {
  const h = rc.req.headers['if-match'];
  if (h === undefined) return null;
  const text = Array.isArray(h) ? h.join(',') : h;
  for (const part of text.split(',')) {
    const m = /^\s*revision_number=(\d+)\s*$/.exec(part);
    if (m) return Number(m[1]);
  }
  if (/revision_number/.test(text)) throw badRequest(`If-Match header must be of the form revision_number=N: ${text}`);
  return null;
}

/**
 * Bumps a row's revision and updated_at, inside the caller's transaction,
 * checked against the revision the request is constrained to (412 when it
 * moved on). The bump comes first so the row is locked for the rest of the
 * change.
 */
export async function bumpRevision(tx: Kysely<any>, table: TableName, id: string, expected: number | null, kind: ResourceKind): Promise<void> {
  let q = tx.updateTable(table).set((eb: any) => ({ revision_number: eb('revision_number', '+', 1), updated_at: nowIso() })).where('id', '=', id);
  if (expected !== null) q = q.where('revision_number', '=', expected);
  const r = await q.executeTakeFirst();
  if (Number(r.numUpdatedRows) === 1) return;
  const now = await tx.selectFrom(table).select('revision_number').where('id', '=', id).executeTakeFirst();
  if (!now) throw notFound[kind](id);
  throw revisionMismatch(expected!, now.revision_number);
}

/** A resource kind as the shared routes see it. */
export interface ResourceDef<Row extends StandardRow> {
  kind: ResourceKind;
  table: TableName;
  /** The singular body key ('network') and the collection ('networks', also the URL segment and tag type). */
  resource: string;
  collection: string;
  /** The URL segment when it differs from the collection ('security-groups'). */
  path?: string;
  attrs: Record<string, AttrKind>;
  /** Narrows a select of the table to what the caller may see (the admin: everything). */
  visible(q: SelectQueryBuilder<any, any, any>, cred: Credentials): SelectQueryBuilder<any, any, any>;
  /** The views of rows, for this caller (admin-only attributes only for admins). */
  views(rows: Row[], cred: Credentials): Promise<View[]>;
}

export const urlOf = (def: ResourceDef<any>): string => `/v2.0/${def.path ?? def.collection}`;

export class Resources<Row extends StandardRow> {
  readonly def: ResourceDef<Row>;
  private readonly ctx: NetworkContext;
  constructor(ctx: NetworkContext, def: ResourceDef<Row>) {
    this.ctx = ctx;
    this.def = def;
  }
  private get db(): Kysely<any> {
    return this.ctx.db as unknown as Kysely<any>;
  }
  /** The rows the caller may see, oldest first. */
  async rows(cred: Credentials, narrow?: (q: SelectQueryBuilder<any, any, any>) => SelectQueryBuilder<any, any, any>): Promise<Row[]> {
    let q = this.db.selectFrom(this.def.table).selectAll(this.def.table);
    if (!isAdmin(cred)) q = this.def.visible(q, cred);
    if (narrow) q = narrow(q);
    return await q.orderBy(`${this.def.table}.created_at`).orderBy(`${this.def.table}.id`).execute() as Row[];
  }
  /** A row the caller may see; its kind's 404 otherwise. */
  async find(cred: Credentials, id: string, db: Kysely<any> = this.db): Promise<Row> {
    let q = db.selectFrom(this.def.table).selectAll(this.def.table).where(`${this.def.table}.id`, '=', id);
    if (!isAdmin(cred)) q = this.def.visible(q, cred);
    const row = await q.executeTakeFirst() as Row | undefined;
    if (!row) throw notFound[this.def.kind](id);
    return row;
  }
  /** A row the caller may change: visible (404) and its own unless admin (403). */
  async findOwn(cred: Credentials, id: string, action: string, db: Kysely<any> = this.db): Promise<Row> {
    const row = await this.find(cred, id, db);
    ownerOnly(cred, action, row.project_id);
    return row;
  }
  async view(cred: Credentials, id: string, db?: Kysely<any>): Promise<View> {
    const [v] = await this.def.views([await this.find(cred, id, db)], cred);
    return v!;
  }
  async tags(ids: string[]): Promise<Map<string, string[]>> {
    return tagsOf(this.db, this.def.collection, ids);
  }

  /** GET list and show, and the tags sub-resource. */
  routes(): Route[] {
    const d = this.def;
    const self = this;
    const base = urlOf(d);
    const spec = { collection: d.collection, attrs: d.attrs, notFound: (id: string) => notFound[d.kind](id) };
    const TagBody = Type.Object({ tags: Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 50 }) }, { additionalProperties: false });
    const checkTag = (tag: string) => {
      if (tag.length === 0 || tag.length > 255 || tag.includes(',')) throw badRequest(`Invalid input for tags. Reason: '${tag}' is not a valid tag.`);
    };
    const setTags = async (rc: RouteContext, id: string, tags: string[] | null, add?: string, remove?: string) => {
      const cred = rc.cred!;
      const expected = ifMatchRevision(rc);
      await this.db.transaction().execute(async (tx) => {
        await this.findOwn(cred, id, `update_${d.collection}_tags`, tx);
        if (remove !== undefined) {
          const gone = await tx.deleteFrom('network_tags').where('resource_type', '=', d.collection).where('resource_id', '=', id).where('tag', '=', remove).executeTakeFirst();
          if (Number(gone.numDeletedRows) === 0) throw new NeutronError('NotFound', 'TagNotFound', `Tag ${remove} could not be found for ${d.resource} ${id}.`);
        }
        if (tags !== null) {
          await tx.deleteFrom('network_tags').where('resource_type', '=', d.collection).where('resource_id', '=', id).execute();
          const uniq = [...new Set(tags)];
          if (uniq.length) await tx.insertInto('network_tags').values(uniq.map((tag) => ({ resource_type: d.collection, resource_id: id, tag }))).execute();
        }
        if (add !== undefined) {
          const there = await tx.selectFrom('network_tags').select('tag').where('resource_type', '=', d.collection).where('resource_id', '=', id).where('tag', '=', add).executeTakeFirst();
          if (!there) await tx.insertInto('network_tags').values({ resource_type: d.collection, resource_id: id, tag: add }).execute();
        }
        await bumpRevision(tx, d.table, id, expected, d.kind);
      });
    };
    return [
      route({
        method: 'GET', path: base, rule: `get_${d.resource}`,
        handler: async (rc) => listAnswer(rc, spec, await d.views(await this.rows(rc.cred!), rc.cred!)),
      }),
      route({
        method: 'GET', path: `${base}/:id`, rule: `get_${d.resource}`,
        handler: async (rc) => ({ [d.resource]: selectFields(rc.query, await this.view(rc.cred!, rc.params.id!)) }),
      }),
      route({
        method: 'GET', path: `${base}/:id/tags`, rule: `get_${d.collection}_tags`,
        handler: async (rc) => ({ tags: (await this.view(rc.cred!, rc.params.id!)).tags }),
      }),
      route({
        method: 'GET', path: `${base}/:id/tags/:tag`, rule: `get_${d.collection}_tags`, status: 204,
        async handler(rc) {
          const tags = (await self.view(rc.cred!, rc.params.id!)).tags as string[];
          if (!tags.includes(rc.params.tag!)) throw new NeutronError('NotFound', 'TagNotFound', `Tag ${rc.params.tag} could not be found for ${d.resource} ${rc.params.id}.`);
        },
      }),
      route({
        method: 'PUT', path: `${base}/:id/tags`, rule: `update_${d.collection}_tags`, schema: { body: TagBody },
        async handler(rc) {
          rc.body.tags.forEach(checkTag);
          await setTags(rc, rc.params.id!, rc.body.tags);
          return { tags: (await self.view(rc.cred!, rc.params.id!)).tags };
        },
      }),
      route({
        method: 'PUT', path: `${base}/:id/tags/:tag`, rule: `create_${d.collection}_tags`, status: 201,
        async handler(rc) {
          checkTag(rc.params.tag!);
          await setTags(rc, rc.params.id!, null, rc.params.tag!);
        },
      }),
      route({
        method: 'DELETE', path: `${base}/:id/tags`, rule: `delete_${d.collection}_tags`, status: 204,
        handler: async (rc) => { await setTags(rc, rc.params.id!, []); },
      }),
      route({
        method: 'DELETE', path: `${base}/:id/tags/:tag`, rule: `delete_${d.collection}_tags`, status: 204,
        handler: async (rc) => { await setTags(rc, rc.params.id!, null, undefined, rc.params.tag!); },
      }),
    ];
  }
}

/** The project a new row belongs to: the caller's, or (admin only) the one the body names. */
export function projectFor(cred: Credentials, body: { project_id?: string; tenant_id?: string }, action: string): string {
  const asked = body.project_id ?? body.tenant_id;
  if (body.project_id !== undefined && body.tenant_id !== undefined && body.project_id !== body.tenant_id) {
    throw badRequest("'project_id' and 'tenant_id' do not match");
  }
  if (asked === undefined || asked === cred.projectId) {
    if (cred.projectId === null) throw badRequest('Running without keystone AuthN requires that tenant_id is specified');
    return cred.projectId;
  }
  ownerOnly(cred, action, asked);
  return asked;
}

/** Boolean columns are integers on both databases. */
export const bool = (n: number): boolean => n !== 0;
export const int = (b: boolean): number => (b ? 1 : 0);

/**
 * The POST route of a collection: one resource (`{"network": {...}}`) or
 * several at once (`{"networks": [...]}`, Neutron's bulk create). A bulk
 * create is all or nothing: each item is created in turn and, when one
 * fails, those made before it are removed again (Neutron's emulated bulk).
 */
export function createRoute<I extends TSchema>(o: {
  def: ResourceDef<any>; rule: string; item: I;
  create(rc: RouteContext, body: Static<I>): Promise<string>;
  undo(id: string): Promise<unknown>;
  view(cred: Credentials, id: string): Promise<View>;
}): Route {
  const { resource, collection } = o.def;
  const body = Type.Union([
    Type.Object({ [resource]: o.item }, { additionalProperties: false }),
    Type.Object({ [collection]: Type.Array(o.item, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
  ]);
  return route({
    method: 'POST', path: urlOf(o.def), rule: o.rule, schema: { body }, status: 201,
    async handler(rc) {
      const b = rc.body as Record<string, unknown>;
      const cred = rc.cred!;
      if (!Object.hasOwn(b, collection)) return { [resource]: await o.view(cred, await o.create(rc, b[resource] as Static<I>)) };
      const revert = new Reverter();
      const ids: string[] = [];
      try {
        for (const item of b[collection] as Array<Static<I>>) {
          const id = await o.create(rc, item);
          ids.push(id);
          revert.add(() => o.undo(id));
        }
      } catch (e) {
        await revert.fail();
        throw e;
      }
      revert.success();
      return { [collection]: await Promise.all(ids.map((id) => o.view(cred, id))) };
    },
  });
}
