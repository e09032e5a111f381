// Helpers shared by the identity API tests.
import assert from 'node:assert/strict';
import { uniqueName, type Cloud, type Reply, type Tenant } from '../../harness.ts';
import { fixtures } from './delegation-fixtures.ts';

export const V3 = '/identity/v3';

/** Calls `${V3}${path}` with the admin's token. */
export const adminApi = (cloud: Cloud) => (method: string, path: string, body?: unknown) =>
  cloud.call(method, `${V3}${path}`, { token: cloud.adminToken, body });

export type Resource = 'domain' | 'project' | 'user' | 'group';

/** POSTs a `kind` with a unique name (unless `body` names it), as `token` or else the admin. */
export const createResource = (cloud: Cloud, kind: Resource, body: Record<string, unknown> = {}, token = cloud.adminToken): Promise<Reply> =>
  cloud.call('POST', `${V3}/${kind}s`, { token, body: { [kind]: { name: uniqueName(kind), ...body } } });

/** createResource as the admin, which must answer 201; the created `kind`. */
export async function mustCreateResource(cloud: Cloud, kind: Resource, body: Record<string, unknown> = {}) {
  const r = await createResource(cloud, kind, body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body[kind];
}

/** The same shape as the harness's API-made tenant. */
export type ProjectUser = Tenant;

/**
 * A fresh project and a user holding `role` on it, written straight to the
 * database so a test does not depend on another area's routes, and that
 * user's project token.
 */
export async function projectUser(cloud: Cloud, role: 'member' | 'reader' | 'admin' = 'member'): Promise<ProjectUser> {
  const fx = fixtures(cloud);
  const projectId = await fx.project();
  const user = await fx.userOn(projectId, [role]);
  return { userId: user.id, projectId, token: user.token };
}
