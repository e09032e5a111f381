// Test fixtures written straight to the database, so a test does not depend on
// another area's routes: a user with a role on a fresh project.
import { hexId, nowIso } from '../../../src/common/ids.ts';
import { hashPassword } from '../../../src/identity/passwords.ts';
import type { Cloud } from '../../harness.ts';

export async function projectUser(cloud: Cloud, role: 'member' | 'reader' | 'admin' = 'member'): Promise<{ userId: string; projectId: string; token: string }> {
  const db = cloud.server.database.db;
  const now = nowIso();
  const projectId = hexId();
  const userId = hexId();
  const name = `u-${userId.slice(0, 8)}`;
  const password = `pw-${hexId()}`;
  await db.insertInto('identity_projects').values({
    id: projectId, name: `p-${projectId.slice(0, 8)}`, domain_id: 'default', parent_id: null, description: '', enabled: 1, extra: '{}', created_at: now,
  }).execute();
  await db.insertInto('identity_users').values({
    id: userId, name, domain_id: 'default', enabled: 1, default_project_id: null, password_hash: await hashPassword(password),
    password_created_at: now, password_expires_at: null, options: '{}', extra: '{}', failed_auth_count: 0, failed_auth_at: null,
    last_active_at: null, created_at: now,
  }).execute();
  const roleRow = await db.selectFrom('identity_roles').select('id').where('name', '=', role).where('domain_id', '=', '').executeTakeFirstOrThrow();
  await db.insertInto('identity_assignments').values({ type: 'UserProject', actor_id: userId, target_id: projectId, role_id: roleRow.id, inherited: 0 }).execute();
  return { userId, projectId, token: await cloud.login(name, password, projectId) };
}
