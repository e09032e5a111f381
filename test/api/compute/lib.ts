// Helpers for the compute API tests: microversioned calls, users in fresh
// projects, and validation of response bodies against Tempest's own schemas.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Cloud, Reply } from '../../harness.ts';

export interface Nova {
  token: string;
  projectId: string;
  userId: string;
  call<T = any>(method: string, path: string, opts?: { body?: unknown; version?: string; headers?: Record<string, string> }): Promise<Reply<T>>;
}

/** A client of /compute/v2.1 for `token`; `version` sets OpenStack-API-Version. */
export function nova(cloud: Cloud, token: string, projectId: string, userId: string): Nova {
  return {
    token, projectId, userId,
    call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.version) headers['OpenStack-API-Version'] = `compute ${o.version}`;
      return cloud.call(method, `/compute/v2.1${path}`, { token, body: o.body, headers });
    },
  };
}

const rand = () => randomBytes(4).toString('hex');

/** The admin, as a Nova client. */
export async function adminNova(cloud: Cloud): Promise<Nova> {
  const r = await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': cloud.adminToken } });
  return nova(cloud, cloud.adminToken, r.body.token.project.id, r.body.token.user.id);
}

/** A new project with one user holding `roles` on it, logged in. */
export async function projectUser(cloud: Cloud, roles: string[] = ['member']): Promise<Nova> {
  const admin = cloud.adminToken;
  const p = await cloud.call('POST', '/identity/v3/projects', { token: admin, body: { project: { name: `p-${rand()}`, domain_id: 'default' } } });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  const name = `u-${rand()}`;
  const password = `pw-${rand()}-Aa1`;
  const u = await cloud.call('POST', '/identity/v3/users', { token: admin, body: { user: { name, password, domain_id: 'default' } } });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  const allRoles = (await cloud.call('GET', '/identity/v3/roles', { token: admin })).body.roles as Array<{ id: string; name: string }>;
  for (const role of roles) {
    const id = allRoles.find((r) => r.name === role)!.id;
    const a = await cloud.call('PUT', `/identity/v3/projects/${p.body.project.id}/users/${u.body.user.id}/roles/${id}`, { token: admin });
    assert.equal(a.status, 204);
  }
  const token = await cloud.login(name, password, p.body.project.id);
  return nova(cloud, token, p.body.project.id, u.body.user.id);
}

const PYTHON = '/usr/bin/python3';
const CHECKER = new URL('./tempest_schema.py', import.meta.url).pathname;

/** Collects response bodies and checks them all at once against Tempest's response schemas. */
export class TempestSchemas {
  private items: Array<{ module: string; name: string; status: number; body: unknown; label: string }> = [];
  /** `module` is relative to tempest.lib.api_schema.response.compute, e.g. 'v2_47.servers'. */
  add(module: string, name: string, reply: Reply, label = ''): void {
    this.items.push({ module, name, status: reply.status, body: reply.body === '' ? null : reply.body, label });
  }
  /** Asserts every collected body is valid; skips (returns false) when Tempest is not installed. */
  check(): boolean {
    if (!existsSync(PYTHON) || this.items.length === 0) return false;
    const r = spawnSync(PYTHON, [CHECKER], { input: JSON.stringify(this.items), env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
    if (r.status === 3) return false;
    assert.equal(r.status, 0, r.stderr);
    const errors = JSON.parse(r.stdout) as string[];
    assert.deepEqual(errors, []);
    this.items = [];
    return true;
  }
}
