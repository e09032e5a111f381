// Helpers for the block-storage API tests: calls under /volume/v3 (with the
// caller's project in the path, or project-less) and checks of Cinder's
// fault envelope.
import assert from 'node:assert/strict';
import type { Cloud, Reply } from '../../harness.ts';

export interface Caller { token: string; projectId: string }
export type VolCall = <T = any>(method: string, path: string, o?: { body?: unknown; as?: Caller; version?: string; headers?: Record<string, string>; projectless?: boolean }) => Promise<Reply<T>>;

/** Calls /volume/v3/{project_id}{path} as `as` (the admin by default), at microversion `version` when given. */
export function cinder(cloud: Cloud, admin: () => Caller): VolCall {
  return (method, path, o = {}) => {
    const who = o.as ?? admin();
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.version) headers['OpenStack-API-Version'] = `volume ${o.version}`;
    const base = o.projectless ? '/volume/v3' : `/volume/v3/${who.projectId}`;
    return cloud.call(method, `${base}${path}`, { token: who.token, body: o.body, headers });
  };
}

/** Asserts Cinder's fault envelope: `{name: {code, message}}` with `status`. */
export function assertFault(r: Reply, status: number, name: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  const f = r.body?.[name];
  assert.ok(f, `a ${name} envelope: ${JSON.stringify(r.body)}`);
  assert.deepEqual(Object.keys(r.body), [name]);
  assert.equal(f.code, status);
  assert.equal(typeof f.message, 'string');
  if (message) assert.match(f.message, message);
}
