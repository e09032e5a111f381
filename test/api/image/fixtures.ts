// Projects and users for image API tests, made through the identity API.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Cloud } from '../../harness.ts';

export interface Tenant { projectId: string; userId: string; token: string }

/** A new project with a user holding the member role on it, and that user's project token. */
export async function tenant(cloud: Cloud, role = 'member'): Promise<Tenant> {
  const name = `t-${randomBytes(4).toString('hex')}`;
  const admin = (method: string, path: string, body?: unknown) =>
    cloud.call(method, `/identity/v3${path}`, { token: cloud.adminToken, body });
  const p = await admin('POST', '/projects', { project: { name, domain_id: 'default' } });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  const u = await admin('POST', '/users', { user: { name, domain_id: 'default', password: 'secret-pw-1', default_project_id: p.body.project.id } });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  const roles = await admin('GET', `/roles?name=${role}`);
  const roleId = roles.body.roles[0].id;
  assert.equal((await admin('PUT', `/projects/${p.body.project.id}/users/${u.body.user.id}/roles/${roleId}`)).status, 204);
  const token = await cloud.login(name, 'secret-pw-1', p.body.project.id);
  return { projectId: p.body.project.id, userId: u.body.user.id, token };
}

export const PATCH = { 'Content-Type': 'application/openstack-images-v2.1-json-patch' };
