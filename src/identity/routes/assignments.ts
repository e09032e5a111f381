// Role grants and the role assignment report:
//   /v3/{projects,domains}/{id}/{users,groups}/{id}/roles[/{role_id}]
//   /v3/system/{users,groups}/{id}/roles[/{role_id}]
//   /v3/OS-INHERIT/domains/{id}/{users,groups}/{id}/roles[/{role_id}]/inherited_to_projects
//   /v3/OS-INHERIT/projects/{id}/{users,groups}/{id}/roles/{role_id}/inherited_to_projects
//   /v3/role_assignments (Keystone's filters, effective, include_names, include_subtree)
// Tokens carry their roles, so removing a grant revokes the tokens it fed.
import type { FastifyRequest } from 'fastify';
import { badRequest, forbidden, notFound } from '../../common/errors.ts';
import type { Target } from '../../http/policy.ts';
import type { Route, RouteContext } from '../../http/service.ts';
import { AssignmentType, SYSTEM_ALL } from '../assignments.ts';
import type { IdentityContext } from '../context.ts';
import { listLinks, queryString, renderList, v3Url } from '../http.ts';
import { ignoreDuplicate } from '../../db/unique.ts';
import { getDomain, getGroup, getProject, getRole, getUser, missing, mustGet } from '../lookup.ts';
import { renderRole } from './role-view.ts';

type ActorKind = 'user' | 'group';
type TargetKind = 'project' | 'domain' | 'system';
interface AssignmentRow { type: string; actor_id: string; target_id: string; role_id: string; inherited: number }

const USER_TYPES: string[] = [AssignmentType.UserProject, AssignmentType.UserDomain];
const GROUP_TYPES: string[] = [AssignmentType.GroupProject, AssignmentType.GroupDomain];
const PROJECT_TYPES: string[] = [AssignmentType.UserProject, AssignmentType.GroupProject];
const DOMAIN_TYPES: string[] = [AssignmentType.UserDomain, AssignmentType.GroupDomain];

const typeOf = (actor: ActorKind, target: TargetKind): string =>
  `${actor === 'user' ? 'User' : 'Group'}${target === 'project' ? 'Project' : target === 'domain' ? 'Domain' : 'System'}`;

const assignmentMissing = (roleId: string, actorId: string, targetId: string) =>
  notFound(`Could not find role assignment with role: ${roleId}, user or group: ${actorId}, project, domain, or system: ${targetId}.`);

// ---------------------------------------------------------------------------
// Revocation: which tokens a removed grant (or a removed role) fed.

async function membersOf(ctx: IdentityContext, groupId: string): Promise<string[]> {
  const rows = await ctx.db.selectFrom('identity_group_members').select('user_id').where('group_id', '=', groupId).execute();
  return rows.map((r) => r.user_id);
}

async function descendantsOf(ctx: IdentityContext, projectId: string): Promise<string[]> {
  const out: string[] = [];
  let frontier = [projectId];
  const seen = new Set(frontier);
  while (frontier.length > 0) {
    const rows = await ctx.db.selectFrom('identity_projects').select('id').where('parent_id', 'in', frontier).execute();
    frontier = rows.map((r) => r.id).filter((id) => !seen.has(id));
    for (const id of frontier) {
      seen.add(id);
      out.push(id);
    }
  }
  return out;
}

/** Revokes the tokens of every user an assignment gave roles to, on the scopes it gave them on. */
export async function revokeAssignment(ctx: IdentityContext, a: AssignmentRow): Promise<void> {
  const users = a.type.startsWith('Group') ? await membersOf(ctx, a.actor_id) : [a.actor_id];
  if (users.length === 0) return;
  const events: Array<{ projectId?: string; domainId?: string }> = [];
  if (a.type.endsWith('System')) events.push({});
  else if (a.type.endsWith('Domain')) events.push({ domainId: a.target_id });
  else if (a.inherited !== 1) events.push({ projectId: a.target_id });
  else for (const projectId of await descendantsOf(ctx, a.target_id)) events.push({ projectId });
  for (const userId of users) for (const e of events) await ctx.revocations.revoke(ctx.db, { userId, ...e });
}

/**
 * Prepares, before a role or one of its inference rules goes away, the
 * revocation of the tokens that hold the role or got roles through it; run the
 * returned function once the change is made. Tokens carry global roles, so one
 * role event covers a global role; a domain-specific role is never in a token,
 * so the holders of its assignments (and of the domain roles implying it) lose theirs.
 */
export async function revokeHoldersOf(ctx: IdentityContext, roleId: string): Promise<() => Promise<void>> {
  const role = await getRole(ctx.db, roleId);
  if (!role) return async () => {};
  if (role.domain_id === '') return () => ctx.revocations.revoke(ctx.db, { roleId });
  const priors = new Set([roleId]);
  let frontier = [roleId];
  while (frontier.length > 0) {
    const rows = await ctx.db.selectFrom('identity_implied_roles').select('prior_role_id').where('implied_role_id', 'in', frontier).execute();
    frontier = rows.map((r) => r.prior_role_id).filter((id) => !priors.has(id));
    for (const id of frontier) priors.add(id);
  }
  const rows = await ctx.db.selectFrom('identity_assignments').selectAll().where('role_id', 'in', [...priors]).execute();
  return async () => {
    for (const a of rows) await revokeAssignment(ctx, a);
  };
}

// ---------------------------------------------------------------------------
// Grants.

interface GrantSpec { actor: ActorKind; target: TargetKind; inherited: boolean }

function grantPaths(s: GrantSpec): { list: string; one: string } {
  const actor = `${s.actor}s/:${s.actor}_id`;
  if (s.target === 'system') return { list: `/v3/system/${actor}/roles`, one: `/v3/system/${actor}/roles/:role_id` };
  const base = `/v3${s.inherited ? '/OS-INHERIT' : ''}/${s.target}s/:${s.target}_id/${actor}/roles`;
  return s.inherited
    ? { list: `${base}/inherited_to_projects`, one: `${base}/:role_id/inherited_to_projects` }
    : { list: base, one: `${base}/:role_id` };
}

type Verb = 'list' | 'check' | 'create' | 'revoke';
function grantRule(s: GrantSpec, verb: Verb): string {
  if (s.target !== 'system') return `identity:${verb}_grant${verb === 'list' ? 's' : ''}`;
  return `identity:${verb}_system_grant${verb === 'list' ? 's' : ''}_for_${s.actor}`;
}

function grantRoutes(ctx: IdentityContext, s: GrantSpec): Route[] {
  const db = ctx.db;
  const type = typeOf(s.actor, s.target);
  const paths = grantPaths(s);
  const actorOf = (rc: RouteContext) => rc.params[`${s.actor}_id`]!;
  const targetOf = (rc: RouteContext) => (s.target === 'system' ? SYSTEM_ALL : rc.params[`${s.target}_id`]!);

  /**
   * Loads what the grant names (404 for what is missing) and fills the policy
   * target: a domain's managers and readers act on grants only where the
   * actor, the target and the role (unless global) all belong to their domain.
   */
  const target = (withRole: boolean, allowMissingActor: boolean) => async (rc: RouteContext): Promise<Target> => {
    const roleId = rc.params.role_id;
    const role = withRole && roleId ? await mustGet(getRole(db, roleId), 'role', roleId) : undefined;
    const actorId = actorOf(rc);
    const actor = s.actor === 'user' ? await getUser(db, actorId) : await getGroup(db, actorId);
    if (!actor && !allowMissingActor) throw missing(s.actor, actorId);
    let domainId: string | null = null;
    if (s.target === 'project') domainId = (await mustGet(getProject(db, targetOf(rc)), 'project', targetOf(rc))).domain_id;
    else if (s.target === 'domain') domainId = (await mustGet(getDomain(db, targetOf(rc)), 'domain', targetOf(rc))).id;
    const inDomain = domainId !== null && actor?.domain_id === domainId && (!role || role.domain_id === '' || role.domain_id === domainId);
    return { domain_id: inDomain ? domainId : null };
  };
  const where = (rc: RouteContext) => db.selectFrom('identity_assignments').select('role_id')
    .where('type', '=', type).where('actor_id', '=', actorOf(rc)).where('target_id', '=', targetOf(rc))
    .where('inherited', '=', s.inherited ? 1 : 0);

  const routes: Route[] = [
    {
      method: 'GET', path: paths.one, rule: grantRule(s, 'check'), status: 204, target: target(true, false),
      async handler(rc) {
        const found = await where(rc).where('role_id', '=', rc.params.role_id!).executeTakeFirst();
        if (!found) throw assignmentMissing(rc.params.role_id!, actorOf(rc), targetOf(rc));
      },
    },
    {
      method: 'PUT', path: paths.one, rule: grantRule(s, 'create'), status: 204, target: target(true, false),
      async handler(rc) {
        const role = await mustGet(getRole(db, rc.params.role_id!), 'role', rc.params.role_id!);
        if (s.target === 'system' && role.domain_id !== '') {
          throw badRequest(`Role ${role.id} is a domain-specific role. Unable to use a domain-specific role in a system assignment.`);
        }
        if (s.target === 'project' && role.domain_id !== '') {
          const project = await mustGet(getProject(db, targetOf(rc)), 'project', targetOf(rc));
          if (project.domain_id !== role.domain_id) {
            throw forbidden(`Project ${project.id} must be in the same domain as the role ${role.id} being assigned.`);
          }
        }
        // Granting what is already granted succeeds quietly, as in Keystone.
        if (await where(rc).where('role_id', '=', role.id).executeTakeFirst()) return;
        await ignoreDuplicate(db.insertInto('identity_assignments').values({
          type, actor_id: actorOf(rc), target_id: targetOf(rc), role_id: role.id, inherited: s.inherited ? 1 : 0,
        }).execute());
      },
    },
    {
      method: 'DELETE', path: paths.one, rule: grantRule(s, 'revoke'), status: 204, target: target(true, true),
      async handler(rc) {
        const row: AssignmentRow = { type, actor_id: actorOf(rc), target_id: targetOf(rc), role_id: rc.params.role_id!, inherited: s.inherited ? 1 : 0 };
        const res = await db.deleteFrom('identity_assignments')
          .where('type', '=', row.type).where('actor_id', '=', row.actor_id).where('target_id', '=', row.target_id)
          .where('role_id', '=', row.role_id).where('inherited', '=', row.inherited).executeTakeFirst();
        if (Number(res.numDeletedRows) === 0) throw assignmentMissing(row.role_id, row.actor_id, row.target_id);
        await revokeAssignment(ctx, row);
      },
    },
  ];
  // Keystone lists inherited grants on domains only.
  if (!(s.inherited && s.target === 'project')) {
    routes.push({
      method: 'GET', path: paths.list, rule: grantRule(s, 'list'), target: target(false, false),
      async handler(rc) {
        const ids = (await where(rc).execute()).map((r) => r.role_id);
        const rows = ids.length ? await db.selectFrom('identity_roles').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
        return renderList(rc.req, 'roles', rows, renderRole);
      },
    });
  }
  return routes;
}

// ---------------------------------------------------------------------------
// GET /v3/role_assignments, following Keystone's assignment manager.

/** One assignment as Keystone's manager passes it around before formatting. */
interface Ref {
  user_id?: string;
  group_id?: string;
  project_id?: string;
  domain_id?: string;
  system?: true;
  role_id: string;
  inherited?: true;
  /** Where an expanded assignment came from: a group, a domain or parent project, a prior role. */
  indirect?: { group_id?: string; project_id?: string; domain_id?: string; role_id?: string };
}

const copyRef = (r: Ref): Ref => ({ ...r, ...(r.indirect ? { indirect: { ...r.indirect } } : {}) });
const sameRef = (a: Ref, b: Ref) => JSON.stringify(a) === JSON.stringify(b);

interface Filters {
  roleId?: string; userId?: string; groupId?: string; domainId?: string; projectId?: string;
  /** 'all' or nothing. */
  system?: string;
  /** undefined: both; true: only inherited; false: only direct. */
  inherited?: boolean;
  effective: boolean;
  includeSubtree: boolean;
}

/** Lazily read, per request, the parts of the database a listing needs. */
class Lister {
  private readonly ctx: IdentityContext;
  private projects?: Map<string, { id: string; parent_id: string | null; domain_id: string }>;
  private rules?: Map<string, string[]>;
  private roles?: Map<string, { id: string; name: string; domain_id: string }>;
  private readonly members = new Map<string, string[]>();
  constructor(ctx: IdentityContext) {
    this.ctx = ctx;
  }

  private async allProjects() {
    this.projects ??= new Map((await this.ctx.db.selectFrom('identity_projects').select(['id', 'parent_id', 'domain_id']).execute()).map((p) => [p.id, p]));
    return this.projects;
  }
  async project(id: string) {
    return (await this.allProjects()).get(id);
  }
  /** Every project below this one (not itself). */
  async subtree(id: string): Promise<string[]> {
    const all = [...(await this.allProjects()).values()];
    const out: string[] = [];
    const seen = new Set([id]);
    let frontier = [id];
    while (frontier.length > 0) {
      frontier = all.filter((p) => p.parent_id !== null && frontier.includes(p.parent_id) && !seen.has(p.id)).map((p) => p.id);
      for (const p of frontier) {
        seen.add(p);
        out.push(p);
      }
    }
    return out;
  }
  async parents(id: string): Promise<string[]> {
    const all = await this.allProjects();
    const out: string[] = [];
    let p = all.get(id);
    while (p?.parent_id && !out.includes(p.parent_id) && p.parent_id !== id) {
      out.push(p.parent_id);
      p = all.get(p.parent_id);
    }
    return out;
  }
  async projectsInDomain(domainId: string): Promise<string[]> {
    return [...(await this.allProjects()).values()].filter((p) => p.domain_id === domainId).map((p) => p.id);
  }
  async membersOf(groupId: string): Promise<string[]> {
    let m = this.members.get(groupId);
    if (!m) {
      m = await membersOf(this.ctx, groupId);
      this.members.set(groupId, m);
    }
    return m;
  }
  async implied(roleId: string): Promise<string[]> {
    if (!this.rules) {
      this.rules = new Map();
      for (const r of await this.ctx.db.selectFrom('identity_implied_roles').selectAll().execute()) {
        const list = this.rules.get(r.prior_role_id) ?? [];
        list.push(r.implied_role_id);
        this.rules.set(r.prior_role_id, list);
      }
    }
    return this.rules.get(roleId) ?? [];
  }
  async role(id: string) {
    this.roles ??= new Map((await this.ctx.db.selectFrom('identity_roles').select(['id', 'name', 'domain_id']).execute()).map((r) => [r.id, r]));
    return this.roles.get(id);
  }

  /** The assignment table read as Keystone's driver does (project and domain assignments only). */
  async query(f: { roleId?: string; userId?: string; groupIds?: string[]; domainId?: string; projectIds?: string[]; inherited?: boolean }): Promise<Ref[]> {
    const actorTypes = f.userId ? USER_TYPES : f.groupIds?.length ? GROUP_TYPES : [];
    const targetTypes = f.projectIds?.length ? PROJECT_TYPES : f.domainId ? DOMAIN_TYPES : [];
    let types = actorTypes.length && targetTypes.length ? actorTypes.filter((t) => targetTypes.includes(t)) : actorTypes.length ? actorTypes : targetTypes;
    if (types.length === 0) types = [...USER_TYPES, ...GROUP_TYPES];
    const actors = f.groupIds?.length ? f.groupIds : f.userId ? [f.userId] : undefined;
    const targets = f.projectIds?.length ? f.projectIds : f.domainId ? [f.domainId] : undefined;
    let q = this.ctx.db.selectFrom('identity_assignments').selectAll().where('type', 'in', types);
    if (f.roleId) q = q.where('role_id', '=', f.roleId);
    if (actors) q = q.where('actor_id', 'in', actors);
    if (targets) q = q.where('target_id', 'in', targets);
    if (f.inherited !== undefined) q = q.where('inherited', '=', f.inherited ? 1 : 0);
    const rows = await q.execute();
    return rows.map((a) => {
      const ref: Ref = { role_id: a.role_id };
      if (a.type.startsWith('User')) ref.user_id = a.actor_id;
      else ref.group_id = a.actor_id;
      if (a.type.endsWith('Project')) ref.project_id = a.target_id;
      else ref.domain_id = a.target_id;
      if (a.inherited === 1) ref.inherited = true;
      return ref;
    });
  }

  async systemRefs(f: Filters): Promise<Ref[]> {
    let q = this.ctx.db.selectFrom('identity_assignments').selectAll().where('target_id', '=', SYSTEM_ALL);
    if (f.userId) q = q.where('type', '=', AssignmentType.UserSystem).where('actor_id', '=', f.userId);
    else if (f.groupId) q = q.where('type', '=', AssignmentType.GroupSystem).where('actor_id', '=', f.groupId);
    else q = q.where('type', 'in', [AssignmentType.UserSystem, AssignmentType.GroupSystem]);
    if (f.roleId) q = q.where('role_id', '=', f.roleId);
    return (await q.execute()).map((a) => ({
      ...(a.type === AssignmentType.UserSystem ? { user_id: a.actor_id } : { group_id: a.actor_id }),
      role_id: a.role_id, system: true as const,
    }));
  }

  async list(f: Filters): Promise<Ref[]> {
    const subtree = f.projectId && f.includeSubtree ? await this.subtree(f.projectId) : undefined;
    return f.effective ? this.effective(f, subtree) : this.direct(f, subtree);
  }

  private async direct(f: Filters, subtree?: string[]): Promise<Ref[]> {
    const projectIds = f.projectId ? [...(subtree ?? []), f.projectId] : undefined;
    const refs = f.system ? [] : await this.query({
      roleId: f.roleId, userId: f.userId, groupIds: f.groupId ? [f.groupId] : undefined,
      domainId: f.domainId, projectIds, inherited: f.inherited,
    });
    if (f.system || (!f.projectId && !f.domainId)) refs.push(...(await this.systemRefs(f)));
    return refs;
  }

  /** Assignments that may affect the actor on the target: direct ones, and inherited ones from the domain or parents. */
  private async forActor(o: { userId?: string; groupIds?: string[]; projectId?: string; subtree?: string[]; domainId?: string; inherited?: boolean }): Promise<Ref[]> {
    const projectIds = o.projectId ? [...(o.subtree ?? []), o.projectId] : undefined;
    const refs: Ref[] = [];
    if (o.inherited !== true) {
      refs.push(...(await this.query({ domainId: o.domainId, projectIds, userId: o.userId, groupIds: o.groupIds, inherited: false })));
    }
    if (o.inherited !== false) {
      if (o.projectId) {
        const project = await this.project(o.projectId);
        if (project) {
          refs.push(...(await this.query({ domainId: project.domain_id, userId: o.userId, groupIds: o.groupIds, inherited: true })));
        }
        const sources = await this.parents(o.projectId);
        if (o.subtree) sources.push(...projectIds!);
        if (sources.length) refs.push(...(await this.query({ projectIds: sources, userId: o.userId, groupIds: o.groupIds, inherited: true })));
      } else {
        refs.push(...(await this.query({ userId: o.userId, groupIds: o.groupIds, inherited: true })));
      }
    }
    return refs;
  }

  private async effective(f: Filters, subtree?: string[]): Promise<Ref[]> {
    if (f.groupId || (f.domainId && f.inherited)) return [];
    const inherited = f.domainId ? false : f.inherited;
    const scope = { projectId: f.projectId, subtree, domainId: f.domainId, inherited };
    const found = await this.forActor({ ...scope, userId: f.userId });
    if (f.userId) {
      const groups = (await this.ctx.db.selectFrom('identity_group_members').select('group_id').where('user_id', '=', f.userId).execute()).map((g) => g.group_id);
      if (groups.length) found.push(...(await this.forActor({ ...scope, groupIds: groups })));
    }
    let refs: Ref[] = [];
    for (const ref of found) refs.push(...(await this.expand(ref, f.userId, f.projectId, subtree)));
    refs = await this.addImplied(refs);
    const global: Ref[] = [];
    for (const ref of refs) if ((await this.role(ref.role_id))?.domain_id === '') global.push(ref);
    return f.roleId ? global.filter((r) => r.role_id === f.roleId) : global;
  }

  /** A group assignment becomes one per member; an inherited one, one per project it reaches. */
  private async expand(ref: Ref, userId?: string, projectId?: string, subtree?: string[]): Promise<Ref[]> {
    const forUsers = async (r: Ref): Promise<Ref[]> => {
      const users = userId ? [userId] : await this.membersOf(r.group_id!);
      return users.map((u) => {
        const c = copyRef(r);
        c.user_id = u;
        c.indirect = { ...c.indirect, group_id: c.group_id! };
        delete c.group_id;
        return c;
      });
    };
    if (ref.inherited) {
      let projectIds: string[];
      if (projectId) {
        projectIds = [projectId, ...(subtree ?? [])];
        if (subtree?.length && ref.project_id && projectIds.includes(ref.project_id)) projectIds = await this.subtree(ref.project_id);
      } else if (ref.domain_id) {
        projectIds = await this.projectsInDomain(ref.domain_id);
      } else {
        projectIds = await this.subtree(ref.project_id!);
      }
      const onProject = (r: Ref, pid: string): Ref => {
        const c = copyRef(r);
        const indirect = { ...c.indirect };
        if (c.project_id) indirect.project_id = c.project_id;
        else indirect.domain_id = c.domain_id!;
        delete c.project_id;
        delete c.domain_id;
        delete c.inherited;
        c.indirect = indirect;
        c.project_id = pid;
        return c;
      };
      const bases = ref.group_id ? await forUsers(ref) : [ref];
      return bases.flatMap((b) => projectIds.map((pid) => onProject(b, pid)));
    }
    if (ref.group_id) return forUsers(ref);
    return [ref];
  }

  /** Adds, for each assignment, one per role its role implies (transitively), naming the prior role. */
  private async addImplied(refs: Ref[]): Promise<Ref[]> {
    const results = [...refs];
    const toCheck = [...refs];
    const checked: Ref[] = [];
    while (toCheck.length > 0) {
      const next = toCheck.pop()!;
      checked.push(next);
      for (const implied of await this.implied(next.role_id)) {
        const c = copyRef(next);
        c.role_id = implied;
        c.indirect = { ...c.indirect, role_id: next.role_id };
        if (checked.some((x) => sameRef(x, c))) continue;
        results.push(c);
        toCheck.push(c);
      }
    }
    return results;
  }
}

interface Names {
  domains: Map<string, string>;
  users: Map<string, { name: string; domain_id: string }>;
  groups: Map<string, { name: string; domain_id: string }>;
  projects: Map<string, { name: string; domain_id: string }>;
  roles: Map<string, { name: string; domain_id: string }>;
}

async function loadNames(ctx: IdentityContext, refs: Ref[]): Promise<Names> {
  const db = ctx.db;
  const ids = (k: 'user_id' | 'group_id' | 'project_id' | 'domain_id' | 'role_id') => [...new Set(refs.map((r) => r[k]).filter((v): v is string => !!v))];
  const byId = <T extends { id: string }>(rows: T[]) => new Map(rows.map((r) => [r.id, r]));
  const userIds = ids('user_id');
  const groupIds = ids('group_id');
  const projectIds = ids('project_id');
  const roleIds = ids('role_id');
  const users = byId(userIds.length ? await db.selectFrom('identity_users').select(['id', 'name', 'domain_id']).where('id', 'in', userIds).execute() : []);
  const groups = byId(groupIds.length ? await db.selectFrom('identity_groups').select(['id', 'name', 'domain_id']).where('id', 'in', groupIds).execute() : []);
  const projects = byId(projectIds.length ? await db.selectFrom('identity_projects').select(['id', 'name', 'domain_id']).where('id', 'in', projectIds).execute() : []);
  const roles = byId(roleIds.length ? await db.selectFrom('identity_roles').select(['id', 'name', 'domain_id']).where('id', 'in', roleIds).execute() : []);
  const domainIds = new Set(ids('domain_id'));
  for (const m of [users, groups, projects, roles]) for (const r of m.values()) if (r.domain_id) domainIds.add(r.domain_id);
  const domains = domainIds.size
    ? new Map((await db.selectFrom('identity_domains').select(['id', 'name']).where('id', 'in', [...domainIds]).execute()).map((d) => [d.id, d.name]))
    : new Map<string, string>();
  return { domains, users, groups, projects, roles };
}

/** Keystone's wire shape of one assignment, with the URL of the grant behind it. */
function formatRef(req: FastifyRequest, ref: Ref, names?: Names) {
  const links: Record<string, string> = {};
  const out: Record<string, unknown> = { links };
  const scope: Record<string, unknown> = {};
  const domainName = (id: string) => names?.domains.get(id) ?? '';
  let link = '';
  let inherited = ref.inherited === true;
  if (ref.project_id) {
    const p = names?.projects.get(ref.project_id);
    scope.project = names
      ? { id: ref.project_id, name: p?.name ?? '', domain: { id: p?.domain_id ?? '', name: domainName(p?.domain_id ?? '') } }
      : { id: ref.project_id };
    if (ref.indirect?.domain_id) {
      inherited = true;
      link = `/domains/${ref.indirect.domain_id}`;
    } else if (ref.indirect?.project_id) {
      inherited = true;
      link = `/projects/${ref.indirect.project_id}`;
    } else {
      link = `/projects/${ref.project_id}`;
    }
  } else if (ref.domain_id) {
    scope.domain = names ? { id: ref.domain_id, name: domainName(ref.domain_id) } : { id: ref.domain_id };
    link = `/domains/${ref.domain_id}`;
  } else if (ref.system) {
    scope.system = { all: true };
    link = '/system';
  }
  out.scope = scope;
  const actor = (id: string, row: { name: string; domain_id: string } | undefined) =>
    names ? { id, name: row?.name ?? '', domain: { id: row?.domain_id ?? '', name: row ? domainName(row.domain_id) : '' } } : { id };
  if (ref.user_id) {
    out.user = actor(ref.user_id, names?.users.get(ref.user_id));
    if (ref.indirect?.group_id) {
      links.membership = v3Url(req, `/groups/${ref.indirect.group_id}/users/${ref.user_id}`);
      link += `/groups/${ref.indirect.group_id}`;
    } else {
      link += `/users/${ref.user_id}`;
    }
  } else if (ref.group_id) {
    out.group = actor(ref.group_id, names?.groups.get(ref.group_id));
    link += `/groups/${ref.group_id}`;
  }
  const role = names?.roles.get(ref.role_id);
  out.role = names
    ? { id: ref.role_id, name: role?.name ?? '', ...(role?.domain_id ? { domain: { id: role.domain_id, name: domainName(role.domain_id) } } : {}) }
    : { id: ref.role_id };
  let priorLink = '';
  if (ref.indirect?.role_id) {
    link += `/roles/${ref.indirect.role_id}`;
    // Keystone's own (odd) form of this link, kept for compatibility.
    priorLink = `/prior_role/${ref.role_id}/implies/${ref.indirect.role_id}`;
  } else {
    link += `/roles/${ref.role_id}`;
  }
  if (inherited) {
    scope['OS-INHERIT:inherited_to'] = 'projects';
    link = `/OS-INHERIT${link}/inherited_to_projects`;
  }
  links.assignment = v3Url(req, link);
  if (priorLink) links.prior_role = v3Url(req, priorLink);
  return out;
}

/** Keystone's key-only query flags: present and not "0" is true. */
function flag(rc: RouteContext, name: string): boolean {
  const v = queryString(rc, name);
  return v !== undefined && v !== '0';
}

function filtersOf(rc: RouteContext): Filters {
  const q = (name: string) => queryString(rc, name) || undefined;
  const f: Filters = {
    roleId: q('role.id'), userId: q('user.id'), groupId: q('group.id'),
    domainId: q('scope.domain.id'), projectId: q('scope.project.id'),
    effective: flag(rc, 'effective'), includeSubtree: flag(rc, 'include_subtree'),
  };
  const inheritedTo = queryString(rc, 'scope.OS-INHERIT:inherited_to');
  if (inheritedTo !== undefined) f.inherited = inheritedTo === 'projects';
  const system = q('scope.system');
  if (f.domainId && f.projectId) throw badRequest('Specify a domain or project, not both');
  if (f.domainId && system) throw badRequest('Specify system or domain, not both');
  if (f.projectId && system) throw badRequest('Specify system or project, not both');
  if (f.userId && f.groupId) throw badRequest('Specify a user or group, not both');
  if (f.effective && f.groupId) throw badRequest('Combining effective and group filter will always result in an empty list.');
  if (f.effective && f.inherited && f.domainId) {
    throw badRequest('Combining effective, domain and inherited filters will always result in an empty list.');
  }
  if (f.includeSubtree && !f.projectId) throw badRequest('scope.project.id must be specified if include_subtree is also specified');
  if (system === 'all') f.system = 'all';
  return f;
}

function roleAssignmentRoutes(ctx: IdentityContext): Route[] {
  return [{
    method: 'GET', path: '/v3/role_assignments', rule: 'identity:list_role_assignments',
    async target(rc) {
      const c = rc.cred!;
      const t: Target = { user_id: queryString(rc, 'user.id') ?? null, domain_id: c.domainId };
      const projectId = queryString(rc, 'scope.project.id');
      if (flag(rc, 'include_subtree') && projectId) {
        const project = await mustGet(getProject(ctx.db, projectId), 'project', projectId);
        t.project_id = project.id;
        t.domain_id = project.domain_id;
      }
      return t;
    },
    async handler(rc) {
      const f = filtersOf(rc);
      if (f.includeSubtree) rc.enforce('identity:list_role_assignments_for_tree', { project_id: f.projectId, domain_id: (await getProject(ctx.db, f.projectId!))?.domain_id ?? null });
      const lister = new Lister(ctx);
      let refs = await lister.list(f);
      // A domain-scoped caller sees the assignments of its domain only.
      const domainId = rc.cred!.domainId;
      if (domainId) {
        const kept: Ref[] = [];
        for (const r of refs) {
          if (r.domain_id === domainId || (r.project_id && (await lister.project(r.project_id))?.domain_id === domainId)) kept.push(r);
        }
        refs = kept;
      }
      const names = flag(rc, 'include_names') ? await loadNames(ctx, refs) : undefined;
      return { role_assignments: refs.map((r) => formatRef(rc.req, r, names)), links: listLinks(rc.req) };
    },
  }];
}

export function assignmentsRoutes(ctx: IdentityContext): Route[] {
  const specs: GrantSpec[] = [];
  for (const actor of ['user', 'group'] as const) {
    for (const target of ['project', 'domain', 'system'] as const) specs.push({ actor, target, inherited: false });
    for (const target of ['domain', 'project'] as const) specs.push({ actor, target, inherited: true });
  }
  return [...specs.flatMap((s) => grantRoutes(ctx, s)), ...roleAssignmentRoutes(ctx)];
}
