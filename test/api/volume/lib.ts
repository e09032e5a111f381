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

/**
 * Runs `meanwhile` when the next `db.transaction()` executes, before its body:
 * what a concurrent call commits between a route's checks and its transaction,
 * made deterministic. Returns the restore (also done by that first call).
 */
export function beforeNextTransaction(db: object, meanwhile: () => Promise<unknown>): () => void {
  const d = db as { transaction: () => { execute: (fn: unknown) => Promise<unknown> } };
  const orig = d.transaction;
  const restore = () => { delete (d as Partial<typeof d>).transaction; };
  if (Object.prototype.hasOwnProperty.call(d, 'transaction')) throw new Error('transaction is already patched');
  d.transaction = function () {
    restore();
    const b = orig.call(d);
    return { execute: async (fn: unknown) => { await meanwhile(); return b.execute(fn); } };
  };
  return restore;
}

/** The cloud's admin as a caller: its token and the admin project's id (the `{project_id}` of its paths). */
export async function adminCaller(c: Cloud): Promise<Caller> {
  const p = await c.server.database.db.selectFrom('identity_projects').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow();
  return { token: c.adminToken, projectId: p.id };
}
