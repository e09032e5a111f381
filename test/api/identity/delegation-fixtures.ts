// Users, projects and role assignments written straight to the database, so the
// credential, application credential and trust tests do not depend on the
// user/project/role routes.
import { hexId, nowIso } from '../../../src/common/ids.ts';
import { hashPassword } from '../../../src/identity/passwords.ts';
import type { Cloud } from '../../harness.ts';

export interface User { id: string; name: string; password: string }
export interface UserWithToken extends User { token: string }

export interface Fixtures {
  user(name?: string): Promise<User>;
  /** A new user holding the roles named on the project, with its project token. */
  userOn(projectId: string, roles?: string[]): Promise<UserWithToken>;
  project(name?: string): Promise<string>;
  role(name?: string): Promise<string>;
  roleId(name: string): Promise<string>;
  grant(userId: string, projectId: string, roleId: string): Promise<void>;
  revokeGrant(userId: string, projectId: string, roleId: string): Promise<void>;
  /** A password token of the user, scoped to the project when given. */
  token(user: { name: string; password: string }, projectId?: string): Promise<string>;
}

let password: Promise<{ plain: string; hash: string }> | undefined;

export function fixtures(cloud: Cloud): Fixtures {
  const db = cloud.server.database.db;
  // One argon2 hash for every fixture user keeps the tests fast.
  password ??= (async () => ({ plain: 'fixture-pass-1', hash: await hashPassword('fixture-pass-1') }))();
  const rnd = () => hexId().slice(0, 8);
  const fx: Fixtures = {
    async user(name = `u-${rnd()}`) {
      const pw = await password!;
      const id = hexId();
      await db.insertInto('identity_users').values({
        id, name, domain_id: 'default', enabled: 1, default_project_id: null, password_hash: pw.hash,
        password_created_at: nowIso(), password_expires_at: null, options: '{}', extra: '{}', failed_auth_count: 0,
        failed_auth_at: null, last_active_at: null, created_at: nowIso(),
      }).execute();
      return { id, name, password: pw.plain };
    },
    async userOn(projectId, roles = ['member']) {
      const user = await fx.user();
      for (const role of roles) await fx.grant(user.id, projectId, await fx.roleId(role));
      return { ...user, token: await fx.token(user, projectId) };
    },
    async project(name = `p-${rnd()}`) {
      const id = hexId();
      await db.insertInto('identity_projects').values({
        id, name, domain_id: 'default', parent_id: null, description: '', enabled: 1, extra: '{}', created_at: nowIso(),
      }).execute();
      return id;
    },
    async role(name = `r-${rnd()}`) {
      const id = hexId();
      await db.insertInto('identity_roles').values({ id, name, domain_id: '', description: '', options: '{}', extra: '{}' }).execute();
      return id;
    },
    async roleId(name) {
      return (await db.selectFrom('identity_roles').select('id').where('name', '=', name).where('domain_id', '=', '').executeTakeFirstOrThrow()).id;
    },
    async grant(userId, projectId, roleId) {
      await db.insertInto('identity_assignments').values({ type: 'UserProject', actor_id: userId, target_id: projectId, role_id: roleId, inherited: 0 }).execute();
    },
    async revokeGrant(userId, projectId, roleId) {
      await db.deleteFrom('identity_assignments').where('actor_id', '=', userId).where('target_id', '=', projectId).where('role_id', '=', roleId).execute();
    },
    token: (user, projectId) => cloud.login(user.name, user.password, projectId),
  };
  return fx;
}
