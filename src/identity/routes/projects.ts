// /v3/projects: projects, their hierarchy and tags. As in Keystone, a domain is
// also a project "acting as a domain" (is_domain: true): it can be created,
// read, updated and deleted here, and is listed with ?is_domain=true.
//
// A project's resource options (only `immutable` exists) are kept in its extra
// JSON under the key "options", a name no free-form attribute can take.
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { hexId, nowIso } from '../../common/ids.ts';
import { type Route, type RouteContext, route } from '../../http/service.ts';
import { projectIdsForUser } from '../assignments.ts';
import type { IdentityContext } from '../context.ts';
import { extraOf, listLinks, patchFlag, patchText, queryBool, queryString, selfLink, splitExtra, v3Url, withListFilters } from '../http.ts';
import { conflictOnDuplicate, ignoreDuplicate } from '../../db/unique.ts';
import { getDomain, getProject, missing } from '../lookup.ts';
import { deleteDomainCascade } from './domains.ts';

export type ProjectRow = NonNullable<Awaited<ReturnType<typeof getProject>>>;
type DomainRow = NonNullable<Awaited<ReturnType<typeof getDomain>>>;
type Found = { kind: 'project'; row: ProjectRow } | { kind: 'domain'; row: DomainRow };

/** Keystone's max_project_tree_depth: projects nest at most this deep below their domain. */
const MAX_DEPTH = 5;
const MAX_TAGS = 80;

const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '\\S' });
const Tag = Type.String({ minLength: 1, maxLength: 255, pattern: '^[^,/]*$' });
const Tags = Type.Array(Tag, { maxItems: MAX_TAGS, uniqueItems: true });
const Nullable = <T extends Parameters<typeof Type.Optional>[0]>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const Options = Type.Object({ immutable: Nullable(Type.Boolean()) }, { additionalProperties: false });
const Id = Type.String({ minLength: 1, maxLength: 64 });

const ProjectBody = Type.Object({
  project: Type.Object({
    name: Name,
    description: Nullable(Type.String()),
    domain_id: Nullable(Id),
    parent_id: Nullable(Id),
    enabled: Type.Optional(Type.Boolean()),
    is_domain: Type.Optional(Type.Boolean()),
    tags: Type.Optional(Tags),
    options: Type.Optional(Options),
  }, { additionalProperties: true }),
});
const ProjectPatch = Type.Object({
  project: Type.Object({
    // named only so the handler can refuse a change of id (any value validates, as before)
    id: Type.Optional(Type.Unknown()),
    name: Type.Optional(Name),
    description: Nullable(Type.String()),
    domain_id: Nullable(Type.String()),
    parent_id: Nullable(Type.String()),
    enabled: Type.Optional(Type.Boolean()),
    is_domain: Type.Optional(Type.Boolean()),
    tags: Type.Optional(Tags),
    options: Type.Optional(Options),
  }, { additionalProperties: true, minProperties: 1 }),
});
const TagsBody = Type.Object({ tags: Tags }, { additionalProperties: false });

const KNOWN = ['id', 'name', 'description', 'domain_id', 'parent_id', 'enabled', 'is_domain', 'tags', 'options', 'links'];

type Options = { immutable?: boolean };

function projectExtra(p: ProjectRow): { extra: Record<string, unknown>; options: Options } {
  const { options, ...extra } = extraOf(p.extra);
  return { extra, options: (options && typeof options === 'object' ? options : {}) as Options };
}

export function renderProject(req: FastifyRequest, p: ProjectRow, tags: string[]) {
  const { extra, options } = projectExtra(p);
  return {
    ...extra, id: p.id, name: p.name, domain_id: p.domain_id, description: p.description, enabled: p.enabled === 1,
    parent_id: p.parent_id ?? p.domain_id, is_domain: false, tags, options, links: selfLink(req, `/projects/${p.id}`),
  };
}

/** A domain, rendered as the project acting as that domain. */
function renderDomainProject(req: FastifyRequest, d: DomainRow) {
  const { tags, options: _o, ...extra } = extraOf(d.extra);
  return {
    ...extra, id: d.id, name: d.name, domain_id: null, description: d.description, enabled: d.enabled === 1,
    parent_id: null, is_domain: true, tags: Array.isArray(tags) ? tags : [], options: {}, links: selfLink(req, `/projects/${d.id}`),
  };
}

export async function tagsOf(ctx: IdentityContext, projectIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(projectIds.map((id) => [id, []]));
  if (projectIds.length === 0) return out;
  // Beyond a few hundred ids, reading every tag is cheaper than a huge IN list.
  let q = ctx.db.selectFrom('identity_project_tags').selectAll().orderBy('tag');
  if (projectIds.length <= 500) q = q.where('project_id', 'in', projectIds);
  for (const r of await q.execute()) out.get(r.project_id)?.push(r.tag);
  return out;
}

async function renderWithTags(ctx: IdentityContext, req: FastifyRequest, p: ProjectRow) {
  return renderProject(req, p, (await tagsOf(ctx, [p.id])).get(p.id)!);
}

/** Keystone's message when a write would break an immutable project. */
const immutableError = (kind: string, id: string) =>
  forbidden(`Unable to update immutable ${kind} resource: \`${id}\`. Set resource option "immutable" to false first.`);

const domainNameConflict = (name: string) =>
  conflict(`Conflict occurred attempting to store project - it is not permitted to have two projects acting as domains with the same name: ${name}.`);
const nameConflict = (name: string, id: string) =>
  conflict(`Conflict occurred attempting to store project - it is not permitted to have two projects with either the same name or same id in the same domain: name is ${name}, project id ${id}.`);

/** Parses a comma-separated tag filter. */
function tagList(rc: RouteContext, name: string): string[] | undefined {
  const v = queryString(rc, name);
  return v === undefined ? undefined : v.split(',').map((t) => t.trim()).filter((t) => t !== '');
}

function tagFilter(rc: RouteContext): ((tags: string[]) => boolean) | undefined {
  const all = tagList(rc, 'tags');
  const any = tagList(rc, 'tags-any');
  const notAll = tagList(rc, 'not-tags');
  const notAny = tagList(rc, 'not-tags-any');
  if (!all && !any && !notAll && !notAny) return undefined;
  return (tags) => {
    const has = new Set(tags);
    if (all && !all.every((t) => has.has(t))) return false;
    if (any && !any.some((t) => has.has(t))) return false;
    if (notAll && notAll.length > 0 && notAll.every((t) => has.has(t))) return false;
    if (notAny && notAny.some((t) => has.has(t))) return false;
    return true;
  };
}

export function projectsRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;

  async function find(id: string): Promise<Found | undefined> {
    const row = await getProject(db, id);
    if (row) return { kind: 'project', row };
    const d = await getDomain(db, id);
    return d ? { kind: 'domain', row: d } : undefined;
  }
  async function mustFind(id: string): Promise<Found> {
    const f = await find(id);
    if (!f) throw missing('project', id);
    return f;
  }
  async function mustFindProject(id: string): Promise<ProjectRow> {
    const row = await getProject(db, id);
    if (!row) throw missing('project', id);
    return row;
  }
  /** Policy target of a project route: the project and its domain (a domain project is its own domain). */
  async function projectTarget(rc: RouteContext) {
    const f = await find(rc.params.project_id!);
    if (!f) return {};
    return { domain_id: f.kind === 'project' ? f.row.domain_id : f.row.id };
  }

  /** Parents, nearest first, up to (not including) the domain. */
  async function parentsOf(p: ProjectRow): Promise<ProjectRow[]> {
    const out: ProjectRow[] = [];
    const seen = new Set([p.id]);
    let parentId = p.parent_id;
    while (parentId && !seen.has(parentId)) {
      seen.add(parentId);
      const parent = await getProject(db, parentId);
      if (!parent) break;
      out.push(parent);
      parentId = parent.parent_id;
    }
    return out;
  }
  /** Every project below a project (or, for a domain, every project in it), breadth first. */
  async function subtreeOf(f: Found): Promise<ProjectRow[]> {
    const out: ProjectRow[] = [];
    const seen = new Set<string>([f.row.id]);
    let level = f.kind === 'domain'
      ? await db.selectFrom('identity_projects').selectAll().where('domain_id', '=', f.row.id).where('parent_id', 'is', null).orderBy('name').execute()
      : await db.selectFrom('identity_projects').selectAll().where('parent_id', '=', f.row.id).orderBy('name').execute();
    while (level.length > 0) {
      level = level.filter((p) => !seen.has(p.id));
      for (const p of level) seen.add(p.id);
      out.push(...level);
      if (level.length === 0) break;
      level = await db.selectFrom('identity_projects').selectAll().where('parent_id', 'in', level.map((p) => p.id)).orderBy('name').execute();
    }
    return out;
  }
  const hasChildren = async (id: string) =>
    !!(await db.selectFrom('identity_projects').select('id').where('parent_id', '=', id).executeTakeFirst());

  /** Adds parents/subtree to a rendered project, as asked by the query. */
  async function expand(rc: RouteContext, f: Found, body: Record<string, unknown>): Promise<void> {
    const parentsAsList = queryBool(rc, 'parents_as_list') === true;
    const parentsAsIds = queryBool(rc, 'parents_as_ids') === true;
    const subtreeAsList = queryBool(rc, 'subtree_as_list') === true;
    const subtreeAsIds = queryBool(rc, 'subtree_as_ids') === true;
    if (parentsAsList && parentsAsIds) throw badRequest('Cannot use parents_as_list and parents_as_ids query params at the same time.');
    if (subtreeAsList && subtreeAsIds) throw badRequest('Cannot use subtree_as_list and subtree_as_ids query params at the same time.');
    if (!parentsAsList && !parentsAsIds && !subtreeAsList && !subtreeAsIds) return;
    // The *_as_list forms show only projects the caller holds a role on, as Keystone does.
    const visible = parentsAsList || subtreeAsList ? await projectIdsForUser(db, rc.cred!.userId) : new Set<string>();
    const wrapAll = async (rows: ProjectRow[]) => {
      const shown = rows.filter((r) => visible.has(r.id));
      const tags = await tagsOf(ctx, shown.map((r) => r.id));
      return shown.map((r) => ({ project: renderProject(rc.req, r, tags.get(r.id)!) }));
    };
    if (parentsAsList || parentsAsIds) {
      const parents = f.kind === 'project' ? await parentsOf(f.row) : [];
      if (parentsAsList) body.parents = await wrapAll(parents);
      else if (f.kind === 'domain') body.parents = null;
      else {
        // {parent: {grandparent: {... {domain: null}}}}
        let nested: Record<string, unknown> = { [f.row.domain_id]: null };
        for (const p of [...parents].reverse()) nested = { [p.id]: nested };
        body.parents = nested;
      }
    }
    if (subtreeAsList || subtreeAsIds) {
      const subtree = await subtreeOf(f);
      if (subtreeAsList) body.subtree = await wrapAll(subtree);
      else {
        const byParent = new Map<string, ProjectRow[]>();
        for (const p of subtree) {
          const parent = p.parent_id ?? p.domain_id;
          byParent.set(parent, [...(byParent.get(parent) ?? []), p]);
        }
        const build = (id: string): Record<string, unknown> | null => {
          const kids = byParent.get(id);
          if (!kids) return null;
          return Object.fromEntries(kids.map((k) => [k.id, build(k.id)]));
        };
        body.subtree = build(f.row.id);
      }
    }
  }

  /** The domain a new project lands in: given, else its parent's, else the caller's domain scope, else Default. */
  async function domainForCreate(rc: RouteContext<Static<typeof ProjectBody>>): Promise<string | null> {
    const p = rc.body.project;
    if (p.is_domain === true) return null;
    if (typeof p.domain_id === 'string' && p.domain_id) return p.domain_id;
    if (typeof p.parent_id === 'string' && p.parent_id) {
      const parent = await find(p.parent_id);
      if (parent) return parent.kind === 'project' ? parent.row.domain_id : parent.row.id;
    }
    return rc.cred?.domainId ?? 'default';
  }

  async function createDomainProject(rc: RouteContext<Static<typeof ProjectBody>>) {
    const p = rc.body.project;
    rc.enforce('identity:create_domain', {});
    if (p.parent_id || p.domain_id) throw badRequest('only root projects are allowed to act as domains.');
    const tags: string[] | undefined = p.tags;
    const extra = splitExtra(p, KNOWN);
    const row: DomainRow = {
      id: hexId(), name: p.name.trim(), description: p.description ?? '', enabled: p.enabled === false ? 0 : 1,
      extra: JSON.stringify(tags ? { ...extra, tags } : extra), created_at: nowIso(),
    };
    await conflictOnDuplicate(db.insertInto('identity_domains').values(row).execute(), () => domainNameConflict(row.name));
    return { project: renderDomainProject(rc.req, row) };
  }

  async function createProject(rc: RouteContext<Static<typeof ProjectBody>>) {
    const p = rc.body.project;
    if (p.is_domain === true) return createDomainProject(rc);
    const domainId = (await domainForCreate(rc))!;
    const domain = await getDomain(db, domainId);
    if (!domain) throw badRequest(`Could not find domain: ${domainId}.`);
    let parentId: string | null = p.parent_id || null;
    if (parentId === domainId) parentId = null;
    // The whole branch above the new project must exist, be enabled and not be too deep.
    const branch: Array<{ id: string; enabled: number }> = [];
    if (parentId) {
      const parent = await find(parentId);
      if (!parent) throw badRequest(`Could not find project: ${parentId}.`);
      if (parent.kind === 'domain') {
        throw badRequest(`Cannot create project, the parent (${parentId}) is acting as a domain, but this project's domain id (${domainId}) does not match the parent's id.`);
      }
      if (parent.row.domain_id !== domainId) {
        throw badRequest(`Cannot create project, since it specifies its domain_id ${domainId}, but specifies a parent in a different domain (${parent.row.domain_id}).`);
      }
      branch.push(parent.row, ...(await parentsOf(parent.row)));
    }
    branch.push(domain);
    const disabled = branch.find((b) => b.enabled !== 1);
    if (disabled) throw badRequest(`cannot create a project in a branch containing a disabled project: ${disabled.id}`);
    if (branch.length > MAX_DEPTH) throw forbidden(`Max hierarchy depth reached for ${parentId} branch.`);

    const tags: string[] = (p.tags ?? []).map((t: string) => t.trim());
    const extra = splitExtra(p, KNOWN);
    const options = cleanOptions({}, p.options);
    const row: ProjectRow = {
      id: hexId(), name: p.name.trim(), domain_id: domainId, parent_id: parentId, description: p.description ?? '',
      enabled: p.enabled === false ? 0 : 1, extra: JSON.stringify(Object.keys(options).length ? { ...extra, options } : extra),
      created_at: nowIso(),
    };
    await conflictOnDuplicate(db.transaction().execute(async (tx) => {
      await tx.insertInto('identity_projects').values(row).execute();
      if (tags.length) await tx.insertInto('identity_project_tags').values([...new Set(tags)].map((tag) => ({ project_id: row.id, tag }))).execute();
    }), () => nameConflict(row.name, row.id));
    return { project: renderProject(rc.req, row, [...new Set(tags)].sort()) };
  }

  async function listProjects(rc: RouteContext) {
    const isDomain = queryBool(rc, 'is_domain');
    const domainId = queryString(rc, 'domain_id');
    const parentId = queryString(rc, 'parent_id');
    const byTags = tagFilter(rc);
    const scope = rc.cred!.domainId;
    if (isDomain === true) {
      // Projects acting as domains have no domain and no parent.
      if ((domainId !== undefined && domainId !== '') || (parentId !== undefined && parentId !== '') || scope) {
        return { projects: [], links: listLinks(rc.req) };
      }
      const q = withListFilters(db.selectFrom('identity_domains').selectAll().orderBy('name'), rc, ['name', 'enabled']);
      let projects = (await q.execute()).map((d) => renderDomainProject(rc.req, d));
      if (byTags) projects = projects.filter((p) => byTags(p.tags as string[]));
      return { projects, links: listLinks(rc.req) };
    }
    let q = withListFilters(db.selectFrom('identity_projects').selectAll().orderBy('name'), rc, ['name', 'enabled', 'domain_id']);
    // A domain-scoped caller sees the projects of that domain only.
    if (scope) q = q.where('domain_id', '=', scope);
    if (parentId !== undefined) {
      // Top-level projects are stored without a parent; their parent is their domain.
      q = q.where((eb) => eb.or([eb('parent_id', '=', parentId), eb.and([eb('parent_id', 'is', null), eb('domain_id', '=', parentId)])]));
    }
    const rows = await q.execute();
    const tags = await tagsOf(ctx, rows.map((r) => r.id));
    let shown = rows;
    if (byTags) shown = rows.filter((r) => byTags(tags.get(r.id)!));
    return { projects: shown.map((r) => renderProject(rc.req, r, tags.get(r.id)!)), links: listLinks(rc.req) };
  }

  async function updateDomainProject(rc: RouteContext<Static<typeof ProjectPatch>>, d: DomainRow) {
    const p = rc.body.project;
    if (p.is_domain === false) throw badRequest('Update of `is_domain` is not allowed.');
    if (p.parent_id) throw forbidden('Update of `parent_id` is not allowed.');
    if (p.domain_id) throw badRequest('Cannot change Domain ID');
    const current = extraOf(d.extra);
    const extra = { ...current, ...splitExtra(p, KNOWN), ...(p.tags ? { tags: p.tags } : {}) };
    const next: DomainRow = {
      ...d, name: p.name === undefined ? d.name : p.name.trim(),
      description: patchText(p.description, d.description),
      enabled: patchFlag(p.enabled, d.enabled), extra: JSON.stringify(extra),
    };
    await conflictOnDuplicate(db.updateTable('identity_domains').set(next).where('id', '=', d.id).execute(), () => domainNameConflict(next.name));
    if (d.enabled && !next.enabled) await ctx.revocations.revoke(db, { domainId: d.id });
    return { project: renderDomainProject(rc.req, next) };
  }

  async function updateProject(rc: RouteContext<Static<typeof ProjectPatch>>) {
    const id = rc.params.project_id!;
    const f = await mustFind(id);
    const p = rc.body.project;
    if (p.id !== undefined && p.id !== id) throw badRequest('Cannot change ID');
    if (f.kind === 'domain') {
      // A domain changed through its project view obeys the domain rules too.
      rc.enforce('identity:update_domain', { domain_id: f.row.id });
      return updateDomainProject(rc, f.row);
    }
    const current = f.row;
    const { extra: currentExtra, options: currentOptions } = projectExtra(current);
    if (currentOptions.immutable) {
      // Only making the project mutable again is allowed, and alone.
      const keys = Object.keys(p).filter((k) => k !== 'id');
      const opts = (p.options ?? {}) as Record<string, unknown>;
      if (keys.length !== 1 || keys[0] !== 'options' || !('immutable' in opts) || (opts.immutable !== false && opts.immutable !== null)) {
        throw immutableError('project', id);
      }
    }
    if (p.domain_id !== undefined && p.domain_id !== current.domain_id) throw badRequest('Cannot change Domain ID');
    if (p.parent_id !== undefined && (p.parent_id ?? current.domain_id) !== (current.parent_id ?? current.domain_id)) {
      throw forbidden('Update of `parent_id` is not allowed.');
    }
    if (p.is_domain === true) throw badRequest('Update of `is_domain` is not allowed.');
    const enabling = p.enabled === true && current.enabled === 0;
    const disabling = p.enabled === false && current.enabled === 1;
    if (enabling) {
      const disabledParent = (await parentsOf(current)).find((x) => x.enabled !== 1);
      const domain = await getDomain(db, current.domain_id);
      if (disabledParent || (domain && domain.enabled !== 1)) throw forbidden(`Cannot enable project ${id} since it has disabled parents`);
    }
    if (disabling && (await subtreeOf(f)).some((x) => x.enabled === 1)) {
      throw forbidden(`Cannot disable project ${id} since its subtree contains enabled projects.`);
    }
    const options = cleanOptions(currentOptions, p.options);
    const extra = { ...currentExtra, ...splitExtra(p, KNOWN) };
    const next: ProjectRow = {
      ...current, name: p.name === undefined ? current.name : p.name.trim(),
      description: patchText(p.description, current.description),
      enabled: patchFlag(p.enabled, current.enabled),
      extra: JSON.stringify(Object.keys(options).length ? { ...extra, options } : extra),
    };
    const tags: string[] | undefined = p.tags ? [...new Set<string>(p.tags.map((t: string) => t.trim()))] : undefined;
    await conflictOnDuplicate(db.transaction().execute(async (tx) => {
      await tx.updateTable('identity_projects').set(next).where('id', '=', id).execute();
      if (tags) await replaceTags(tx, id, tags);
    }), () => nameConflict(next.name, id));
    if (disabling) await ctx.revocations.revoke(db, { projectId: id });
    return { project: await renderWithTags(ctx, rc.req, next) };
  }

  async function deleteProject(rc: RouteContext) {
    const id = rc.params.project_id!;
    const f = await mustFind(id);
    if (f.kind === 'domain') {
      rc.enforce('identity:delete_domain', { domain_id: id });
      if (f.row.enabled) throw forbidden('Cannot delete a domain that is enabled, please disable it first.');
      await deleteDomainCascade(ctx, id);
      await ctx.revocations.revoke(db, { domainId: id });
      return;
    }
    if (projectExtra(f.row).options.immutable) {
      throw forbidden(`Unable to delete immutable project resource: \`${id}\`. Set resource option "immutable" to false first.`);
    }
    if (await hasChildren(id)) {
      throw forbidden(`Cannot delete the project ${id} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree.`);
    }
    const now = nowIso();
    await db.transaction().execute(async (tx) => {
      await tx.deleteFrom('identity_assignments').where('target_id', '=', id)
        .where('type', 'in', ['UserProject', 'GroupProject']).execute();
      await tx.deleteFrom('identity_project_tags').where('project_id', '=', id).execute();
      await tx.deleteFrom('identity_limits').where('project_id', '=', id).execute();
      await tx.deleteFrom('identity_credentials').where('project_id', '=', id).execute();
      await tx.deleteFrom('identity_app_credentials').where('project_id', '=', id).execute();
      await tx.updateTable('identity_trusts').set({ deleted_at: now }).where('project_id', '=', id).where('deleted_at', 'is', null).execute();
      await tx.deleteFrom('identity_project_endpoints').where('project_id', '=', id).execute();
      await tx.deleteFrom('identity_project_endpoint_groups').where('project_id', '=', id).execute();
      await tx.deleteFrom('identity_projects').where('id', '=', id).execute();
    });
    await ctx.revocations.revoke(db, { projectId: id });
  }

  // --- tags -----------------------------------------------------------------

  async function replaceTags(tx: Pick<IdentityContext['db'], 'deleteFrom' | 'insertInto'>, projectId: string, tags: string[]) {
    await tx.deleteFrom('identity_project_tags').where('project_id', '=', projectId).execute();
    if (tags.length) await tx.insertInto('identity_project_tags').values(tags.map((tag) => ({ project_id: projectId, tag }))).execute();
  }
  /** The project whose tags are changed: it must exist and be mutable. */
  async function mutableProject(id: string, verb: string): Promise<ProjectRow> {
    const row = await mustFindProject(id);
    if (projectExtra(row).options.immutable) {
      throw forbidden(`Cannot ${verb} project tags for ${id}, project is immutable. Set "immutable" option to false before creating project tags.`);
    }
    return row;
  }
  const tagsLinks = (rc: RouteContext) => ({ self: v3Url(rc.req, `/projects/${rc.params.project_id}/tags`) });

  const projectRule = (rule: string, extra: Partial<Route> = {}): Pick<Route, 'rule' | 'target'> & Partial<Route> => ({
    rule, target: projectTarget, ...extra,
  });

  return [
    route({
      method: 'POST', path: '/v3/projects', rule: 'identity:create_project', status: 201, schema: { body: ProjectBody },
      target: async (rc) => ({ domain_id: await domainForCreate(rc) }),
      handler: createProject,
    }),
    {
      method: 'GET', path: '/v3/projects', rule: 'identity:list_projects',
      target: (rc) => (rc.cred?.domainId ? { domain_id: rc.cred.domainId } : {}),
      handler: listProjects,
    },
    {
      method: 'GET', path: '/v3/projects/:project_id', ...projectRule('identity:get_project'),
      async handler(rc) {
        const f = await mustFind(rc.params.project_id!);
        const body: Record<string, unknown> = f.kind === 'project' ? await renderWithTags(ctx, rc.req, f.row) : renderDomainProject(rc.req, f.row);
        await expand(rc, f, body);
        return { project: body };
      },
    },
    route({ method: 'PATCH', path: '/v3/projects/:project_id', ...projectRule('identity:update_project'), schema: { body: ProjectPatch }, handler: updateProject }),
    { method: 'DELETE', path: '/v3/projects/:project_id', ...projectRule('identity:delete_project'), status: 204, handler: deleteProject },

    {
      method: 'GET', path: '/v3/projects/:project_id/tags', ...projectRule('identity:list_project_tags'),
      async handler(rc) {
        const row = await mustFindProject(rc.params.project_id!);
        return { tags: (await tagsOf(ctx, [row.id])).get(row.id), links: tagsLinks(rc) };
      },
    },
    route({
      method: 'PUT', path: '/v3/projects/:project_id/tags', ...projectRule('identity:update_project_tags'), schema: { body: TagsBody },
      async handler(rc) {
        const row = await mutableProject(rc.params.project_id!, 'update');
        const tags = [...new Set<string>(rc.body.tags.map((t: string) => t.trim()))];
        await db.transaction().execute((tx) => replaceTags(tx, row.id, tags));
        return { tags, links: tagsLinks(rc) };
      },
    }),
    {
      method: 'DELETE', path: '/v3/projects/:project_id/tags', ...projectRule('identity:delete_project_tags'), status: 204,
      async handler(rc) {
        const row = await mutableProject(rc.params.project_id!, 'update');
        await db.deleteFrom('identity_project_tags').where('project_id', '=', row.id).execute();
      },
    },
    {
      method: 'GET', path: '/v3/projects/:project_id/tags/:tag', ...projectRule('identity:get_project_tag'), status: 204,
      async handler(rc) {
        const row = await mustFindProject(rc.params.project_id!);
        const found = await db.selectFrom('identity_project_tags').select('tag').where('project_id', '=', row.id).where('tag', '=', rc.params.tag!).executeTakeFirst();
        if (!found) throw notFound(`Could not find project tag: ${rc.params.tag}.`);
      },
    },
    {
      method: 'PUT', path: '/v3/projects/:project_id/tags/:tag', ...projectRule('identity:create_project_tag'), status: 201,
      async handler(rc) {
        const row = await mutableProject(rc.params.project_id!, 'create');
        const tag = rc.params.tag!.trim();
        if (tag.length < 1 || tag.length > 255 || /[,/]/.test(tag)) {
          throw badRequest(`Invalid input for field 'tag': a tag is 1 to 255 characters long and contains no ',' or '/'.`);
        }
        const current = (await tagsOf(ctx, [row.id])).get(row.id)!;
        if (!current.includes(tag)) {
          if (current.length >= MAX_TAGS) throw badRequest(`Invalid input for field 'tags': a project has at most ${MAX_TAGS} tags.`);
          // A concurrent PUT of the same tag: the tag is there, which is what was asked.
          await ignoreDuplicate(db.insertInto('identity_project_tags').values({ project_id: row.id, tag }).execute());
        }
        rc.reply.header('Location', v3Url(rc.req, `/projects/${row.id}/tags/${encodeURIComponent(tag)}`));
      },
    },
    {
      method: 'DELETE', path: '/v3/projects/:project_id/tags/:tag', ...projectRule('identity:delete_project_tag'), status: 204,
      async handler(rc) {
        const row = await mutableProject(rc.params.project_id!, 'delete');
        const r = await db.deleteFrom('identity_project_tags').where('project_id', '=', row.id).where('tag', '=', rc.params.tag!).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound(`Could not find project tag: ${rc.params.tag}.`);
      },
    },
  ];
}

/** Merges resource options; a null value removes the option. */
function cleanOptions(current: Options, given: Record<string, unknown> | undefined): Options {
  const out: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(given ?? {})) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out as Options;
}
