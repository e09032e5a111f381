// Role resolution: which roles a user effectively holds on a project, a domain
// or the system, through direct and group assignments, inheritance from
// domains and parent projects (OS-INHERIT), and implied roles.
import { compareText } from '../common/text.ts';
import type { Db } from '../db/database.ts';
import type { Named } from './tokens/token.ts';

export const AssignmentType = {
  UserProject: 'UserProject',
  GroupProject: 'GroupProject',
  UserDomain: 'UserDomain',
  GroupDomain: 'GroupDomain',
  UserSystem: 'UserSystem',
  GroupSystem: 'GroupSystem',
} as const;
export type AssignmentType = (typeof AssignmentType)[keyof typeof AssignmentType];

/** The target id of system assignments. */
export const SYSTEM_ALL = 'system';

export type ScopeTarget = { projectId: string } | { domainId: string } | { system: true };

export async function groupIdsOf(db: Db, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('identity_group_members').select('group_id').where('user_id', '=', userId).execute();
  return rows.map((r) => r.group_id);
}

/** The project's ancestors, nearest first. */
export async function ancestorsOf(db: Db, projectId: string): Promise<Array<{ id: string; domain_id: string }>> {
  const out: Array<{ id: string; domain_id: string }> = [];
  let current = await db.selectFrom('identity_projects').select(['id', 'parent_id', 'domain_id']).where('id', '=', projectId).executeTakeFirst();
  const seen = new Set<string>();
  while (current?.parent_id && !seen.has(current.parent_id)) {
    seen.add(current.parent_id);
    current = await db.selectFrom('identity_projects').select(['id', 'parent_id', 'domain_id']).where('id', '=', current.parent_id).executeTakeFirst();
    if (current) out.push({ id: current.id, domain_id: current.domain_id });
  }
  return out;
}

/** Adds every role implied (transitively) by the given roles. */
export async function withImplied(db: Db, roleIds: Iterable<string>): Promise<Set<string>> {
  const all = new Set(roleIds);
  let frontier = [...all];
  while (frontier.length > 0) {
    const rows = await db.selectFrom('identity_implied_roles').select('implied_role_id').where('prior_role_id', 'in', frontier).execute();
    frontier = rows.map((r) => r.implied_role_id).filter((id) => !all.has(id));
    for (const id of frontier) all.add(id);
  }
  return all;
}

/** Role ids assigned (before implication) to the user on the target, directly, by group and by inheritance. */
export async function assignedRoleIds(db: Db, userId: string, target: ScopeTarget, groupIds?: string[]): Promise<Set<string>> {
  const groups = groupIds ?? (await groupIdsOf(db, userId));
  const actors = [userId, ...groups];
  const q = db.selectFrom('identity_assignments').select('role_id').where('actor_id', 'in', actors);
  let rows: Array<{ role_id: string }>;
  if ('projectId' in target) {
    const project = await db.selectFrom('identity_projects').select('domain_id').where('id', '=', target.projectId).executeTakeFirst();
    if (!project) return new Set();
    const ancestors = await ancestorsOf(db, target.projectId);
    rows = await q
      .where((eb) => eb.or([
        eb.and([eb('target_id', '=', target.projectId), eb('inherited', '=', 0), eb('type', 'in', ['UserProject', 'GroupProject'])]),
        eb.and([eb('target_id', '=', project.domain_id), eb('inherited', '=', 1), eb('type', 'in', ['UserDomain', 'GroupDomain'])]),
        ...(ancestors.length > 0
          ? [eb.and([eb('target_id', 'in', ancestors.map((a) => a.id)), eb('inherited', '=', 1), eb('type', 'in', ['UserProject', 'GroupProject'])])]
          : []),
      ]))
      .execute();
  } else if ('domainId' in target) {
    rows = await q.where('target_id', '=', target.domainId).where('inherited', '=', 0).where('type', 'in', ['UserDomain', 'GroupDomain']).execute();
  } else {
    rows = await q.where('target_id', '=', SYSTEM_ALL).where('type', 'in', ['UserSystem', 'GroupSystem']).execute();
  }
  return new Set(rows.map((r) => r.role_id));
}

/**
 * The roles a token for this user and target carries: assigned roles plus the
 * roles they imply, less domain-specific roles (which only ever imply others).
 */
export async function effectiveRoles(db: Db, userId: string, target: ScopeTarget): Promise<Named[]> {
  const ids = await withImplied(db, await assignedRoleIds(db, userId, target));
  return namedGlobalRoles(db, ids);
}

export async function namedGlobalRoles(db: Db, ids: Iterable<string>): Promise<Named[]> {
  const list = [...ids];
  if (list.length === 0) return [];
  const rows = await db.selectFrom('identity_roles').select(['id', 'name', 'domain_id']).where('id', 'in', list).execute();
  return rows.filter((r) => r.domain_id === '').map((r) => ({ id: r.id, name: r.name })).sort((a, b) => compareText(a.name, b.name));
}

/**
 * Ids of the projects on which the user holds a role: directly or through a
 * group, or inherited from a domain or an ancestor project (Keystone's
 * list_projects_for_user). Disabled projects are included.
 */
export async function projectIdsForUser(db: Db, userId: string): Promise<Set<string>> {
  const actors = [userId, ...(await groupIdsOf(db, userId))];
  const rows = await db.selectFrom('identity_assignments').select(['type', 'target_id', 'inherited'])
    .where('actor_id', 'in', actors)
    .where('type', 'in', [AssignmentType.UserProject, AssignmentType.GroupProject, AssignmentType.UserDomain, AssignmentType.GroupDomain])
    .execute();
  const direct = new Set<string>();
  const fromProjects: string[] = [];
  const fromDomains: string[] = [];
  for (const r of rows) {
    const onProject = r.type === AssignmentType.UserProject || r.type === AssignmentType.GroupProject;
    if (onProject && r.inherited === 0) direct.add(r.target_id);
    else if (onProject) fromProjects.push(r.target_id);
    else if (r.inherited === 1) fromDomains.push(r.target_id);
  }
  const out = new Set<string>();
  if (direct.size > 0) {
    for (const p of await db.selectFrom('identity_projects').select('id').where('id', 'in', [...direct]).execute()) out.add(p.id);
  }
  if (fromDomains.length > 0) {
    for (const p of await db.selectFrom('identity_projects').select('id').where('domain_id', 'in', fromDomains).execute()) out.add(p.id);
  }
  // Inherited from a project: its whole subtree, not the project itself.
  const seen = new Set<string>();
  let frontier = fromProjects;
  while (frontier.length > 0) {
    const children = await db.selectFrom('identity_projects').select('id').where('parent_id', 'in', frontier).execute();
    frontier = children.map((c) => c.id).filter((id) => !seen.has(id));
    for (const id of frontier) {
      seen.add(id);
      out.add(id);
    }
  }
  return out;
}
