// Helpers for the compute API tests: microversioned calls, users in fresh
// projects, and validation of response bodies against Tempest's own schemas.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tenant, type Cloud, type Reply } from '../../harness.ts';

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

/** The admin, as a Nova client. */
export async function adminNova(cloud: Cloud): Promise<Nova> {
  const r = await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': cloud.adminToken } });
  return nova(cloud, cloud.adminToken, r.body.token.project.id, r.body.token.user.id);
}

/** A new project with one user holding `roles` on it, logged in. */
export async function projectUser(cloud: Cloud, roles: string[] = ['member']): Promise<Nova> {
  const t = await tenant(cloud, roles);
  return nova(cloud, t.token, t.projectId, t.userId);
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
  /** Asserts bodies were collected and every one is valid; Tempest (python3-tempest, installed by bin/test) must be there. */
  check(): void {
    assert.ok(this.items.length > 0, 'no response bodies were collected');
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing`);
    const r = spawnSync(PYTHON, [CHECKER], { input: JSON.stringify(this.items), env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
    assert.notEqual(r.status, 3, 'Tempest is not installed (Debian\'s python3-tempest; bin/test installs it)');
    assert.equal(r.status, 0, r.stderr);
    const errors = JSON.parse(r.stdout) as string[];
    assert.deepEqual(errors, []);
    this.items = [];
  }
}
