// Fixtures for the role and assignment tests, written straight to the database
// so the tests do not depend on the project, user and group routes.
import { hexId, nowIso } from '../../../src/common/ids.ts';
import { hashPassword } from '../../../src/identity/passwords.ts';
import type { Cloud } from '../../harness.ts';
import { V3 } from './lib.ts';

export function fixtures(cloud: Cloud) {
  const db = () => cloud.server.database.db;
  const now = nowIso();
  return {
    async domain(): Promise<string> {
      const id = hexId();
      await db().insertInto('identity_domains').values({ id, name: `d-${id.slice(0, 8)}`, description: '', enabled: 1, extra: '{}', created_at: now }).execute();
      return id;
    },
    async project(domainId = 'default', parentId: string | null = null): Promise<string> {
      const id = hexId();
      await db().insertInto('identity_projects').values({
        id, name: `p-${id.slice(0, 8)}`, domain_id: domainId, parent_id: parentId, description: '', enabled: 1, extra: '{}', created_at: now,
      }).execute();
      return id;
    },
    /** A user with a password; `login` issues its tokens. */
    async user(domainId = 'default'): Promise<{ id: string; name: string; password: string }> {
      const id = hexId();
      const name = `u-${id.slice(0, 8)}`;
      const password = `pw-${hexId()}`;
      await db().insertInto('identity_users').values({
        id, name, domain_id: domainId, enabled: 1, default_project_id: null, password_hash: await hashPassword(password),
        password_created_at: now, password_expires_at: null, options: '{}', extra: '{}', failed_auth_count: 0, failed_auth_at: null,
        last_active_at: null, created_at: now,
      }).execute();
      return { id, name, password };
    },
    async group(domainId = 'default', members: string[] = []): Promise<string> {
      const id = hexId();
      await db().insertInto('identity_groups').values({ id, name: `g-${id.slice(0, 8)}`, domain_id: domainId, description: '', extra: '{}', created_at: now }).execute();
      for (const m of members) await db().insertInto('identity_group_members').values({ group_id: id, user_id: m }).execute();
      return id;
    },
    async roleId(name: string): Promise<string> {
      return (await db().selectFrom('identity_roles').select('id').where('name', '=', name).where('domain_id', '=', '').executeTakeFirstOrThrow()).id;
    },
    /** Creates a role through the API, as the admin. */
    async role(extra: Record<string, unknown> = {}): Promise<{ id: string; name: string; domain_id: string | null }> {
      const r = await cloud.call('POST', `${V3}/roles`, { token: cloud.adminToken, body: { role: { name: `r-${hexId().slice(0, 10)}`, ...extra } } });
      if (r.status !== 201) throw new Error(`role create: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.role;
    },
    /** Issues a project- or domain-scoped (or unscoped) token for a user in any domain. */
    async login(u: { name: string; password: string }, domainId: string, scope?: { project?: string; domain?: string; system?: boolean }): Promise<string> {
      const r = await cloud.call('POST', `${V3}/auth/tokens`, {
        body: {
          auth: {
            identity: { methods: ['password'], password: { user: { name: u.name, domain: { id: domainId }, password: u.password } } },
            ...(scope?.project ? { scope: { project: { id: scope.project } } } : {}),
            ...(scope?.domain ? { scope: { domain: { id: scope.domain } } } : {}),
            ...(scope?.system ? { scope: { system: { all: true } } } : {}),
          },
        },
      });
      if (r.status !== 201) throw new Error(`login ${u.name}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.headers.get('x-subject-token')!;
    },
    /** Status of validating a token (as the admin). */
    async validate(token: string): Promise<number> {
      return (await cloud.call('GET', `${V3}/auth/tokens`, { token: cloud.adminToken, headers: { 'X-Subject-Token': token } })).status;
    },
  };
}
