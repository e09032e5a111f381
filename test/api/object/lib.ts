// Helpers for the object-storage API tests: raw HTTP calls under
// /object/v1/AUTH_<project> with any body (bytes, streams) and headers.
import type { Cloud } from '../../harness.ts';
import { before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { migrate, openDatabase, type Database } from '../../../src/db/database.ts';
import { createObjectService, type ObjectService, type ObjectStore } from '../../../src/object/service.ts';
import { freshPostgres } from '../../harness.ts';

export interface SwiftReply { status: number; headers: Headers; text: string; bytes: Buffer; json: any }
export interface Who { token?: string; projectId: string }

export type SwiftCall = (method: string, path: string, o?: { as?: Who | null; account?: string; headers?: Record<string, string>; body?: string | Buffer | Uint8Array | ReadableStream; duplex?: boolean }) => Promise<SwiftReply>;

/** Calls /object/v1/AUTH_<project><path> as `as` (the token; null: anonymous), `account` overriding the project's. */
export function swift(cloud: Cloud, def: () => Who): SwiftCall {
  return async (method, path, o = {}) => {
    const who = o.as === undefined ? def() : o.as;
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (who?.token) headers['X-Auth-Token'] = who.token;
    const account = o.account ?? `AUTH_${who?.projectId ?? def().projectId}`;
    const init: RequestInit & { duplex?: string } = { method, headers, body: o.body as BodyInit | undefined };
    if (o.body instanceof ReadableStream) init.duplex = 'half';
    const r = await fetch(`${cloud.url}/object/v1/${account}${path}`, init);
    const bytes = Buffer.from(await r.arrayBuffer());
    const text = bytes.toString('utf8');
    let json: any;
    if ((r.headers.get('content-type') ?? '').includes('json') && text) json = JSON.parse(text);
    return { status: r.status, headers: r.headers, text, bytes, json };
  };
}

/** A percent-encoded path of a name (slashes kept). */
export const enc = (name: string): string => name.split('/').map(encodeURIComponent).join('/');

/**
 * An object store on a database of its own (a fresh PostgreSQL one when the
 * suite runs there; fsync off), started before the file's tests and removed
 * after them: for the stores built on it (Glance's, the registry's).
 */
export function objectStoreFixture(prefix: string): () => ObjectStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let database: Database | undefined;
  let objects: ObjectService | undefined;
  let drop: (() => Promise<void>) | undefined;
  before(async () => {
    const pg = process.env.STRATUS_TEST_DATABASE ? await freshPostgres(process.env.STRATUS_TEST_DATABASE) : undefined;
    drop = pg?.drop;
    database = await openDatabase(pg?.url ?? join(dir, 'db.sqlite'));
    await migrate(database.db);
    objects = createObjectService({ db: database.db, log: pino({ level: 'silent' }), dataDir: dir, config: { fsync: false } });
    await objects.start();
  });
  after(async () => {
    await objects?.stop();
    await database?.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => objects!.store;
}
