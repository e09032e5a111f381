// Helpers for the placement API tests: microversioned calls as the admin and
// checks of Placement's error envelope.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Cloud, Reply } from '../../harness.ts';

export const LATEST = '1.29';

export type PlacementCall = <T = any>(method: string, path: string, o?: { body?: unknown; version?: string | null; token?: string }) => Promise<Reply<T>>;

/** Calls /placement as the admin (or `token`), at `version` (LATEST unless said; null sends no header). */
export function placement(cloud: Cloud): PlacementCall {
  return (method, path, o = {}) => {
    const version = o.version === undefined ? LATEST : o.version;
    const headers: Record<string, string> = version === null ? {} : { 'OpenStack-API-Version': `placement ${version}` };
    return cloud.call(method, `/placement${path}`, { token: o.token ?? cloud.adminToken, body: o.body, headers });
  };
}

/** Asserts Placement's error envelope with `status` (and `code` when given). */
export function assertError(r: Reply, status: number, code?: string, detail?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  const e = r.body?.errors?.[0];
  assert.ok(e, `an errors envelope: ${JSON.stringify(r.body)}`);
  assert.equal(e.status, status);
  assert.equal(typeof e.title, 'string');
  assert.equal(typeof e.detail, 'string');
  assert.match(e.request_id, /^req-/);
  if (code) assert.equal(e.code, code);
  if (detail) assert.match(e.detail, detail);
}

/** A new provider with the given inventories (class -> total or fields); returns its uuid. */
export async function makeProvider(call: PlacementCall, name: string, inventories: Record<string, number | Record<string, number>> = {}): Promise<string> {
  const uuid = randomUUID();
  const r = await call('POST', '/resource_providers', { body: { name, uuid } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  if (Object.keys(inventories).length) {
    const inv = Object.fromEntries(Object.entries(inventories).map(([rc, v]) => [rc, typeof v === 'number' ? { total: v } : v]));
    const put = await call('PUT', `/resource_providers/${uuid}/inventories`, { body: { resource_provider_generation: 0, inventories: inv } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
  }
  return uuid;
}
