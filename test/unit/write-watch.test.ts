import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Kysely, sql } from 'kysely';
import { sqliteDialect } from '../../src/db/sqlite.ts';
import { migrate, type Db } from '../../src/db/database.ts';
import { WriteWatch } from '../../src/db/write-watch.ts';
import { IdentityReadCache } from '../../src/identity/read-cache.ts';

async function watchedDb(): Promise<{ db: Db; writes: WriteWatch }> {
  const writes = new WriteWatch();
  const db = new Kysely<any>({ dialect: sqliteDialect(':memory:'), plugins: [writes] }) as Db;
  await migrate(db);
  return { db, writes };
}

test('the write watch counts writes by table prefix, not reads', async () => {
  const { db, writes } = await watchedDb();
  const g0 = writes.generation('identity_');
  await db.selectFrom('identity_roles').selectAll().execute();
  assert.equal(writes.generation('identity_'), g0, 'a read changes nothing');
  await db.insertInto('identity_roles').values({ id: 'r1', name: 'x', domain_id: '', description: '', options: '{}', extra: '{}' }).execute();
  const g1 = writes.generation('identity_');
  assert.ok(g1 > g0, 'an insert bumps');
  await db.updateTable('identity_roles').set({ name: 'y' }).where('id', '=', 'r1').execute();
  const g2 = writes.generation('identity_');
  assert.ok(g2 > g1, 'an update bumps');
  const other = writes.generation('compute_');
  await db.deleteFrom('identity_roles').where('id', '=', 'r1').execute();
  assert.ok(writes.generation('identity_') > g2, 'a delete bumps');
  assert.equal(writes.generation('compute_'), other, 'another prefix is untouched');
  await sql`DELETE FROM identity_roles`.execute(db);
  assert.ok(writes.generation('compute_') > other, 'raw SQL counts as a write to every table');
});

test('the identity read cache answers from memory until an identity table is written', async () => {
  const { db, writes } = await watchedDb();
  const now = new Date().toISOString();
  await db.insertInto('identity_domains').values({ id: 'd', name: 'D', description: '', enabled: 1, extra: '{}', created_at: now }).execute();
  await db.insertInto('identity_projects').values({ id: 'p', name: 'P', domain_id: 'd', parent_id: null, description: '', enabled: 1, extra: '{}', created_at: now }).execute();
  await db.insertInto('identity_roles').values({ id: 'r', name: 'member', domain_id: '', description: '', options: '{}', extra: '{}' }).execute();
  const cache = new IdentityReadCache({ writes, db });
  assert.deepEqual(await cache.roles(db, 'u', { projectId: 'p' }), []);
  await db.insertInto('identity_assignments').values({ type: 'UserProject', actor_id: 'u', target_id: 'p', role_id: 'r', inherited: 0 }).execute();
  assert.deepEqual((await cache.roles(db, 'u', { projectId: 'p' })).map((r) => r.name), ['member'], 'a grant is seen at once');
  const first = await cache.roles(db, 'u', { projectId: 'p' });
  assert.equal(await cache.roles(db, 'u', { projectId: 'p' }), first, 'unchanged data: the cached answer');
  await db.deleteFrom('identity_assignments').execute();
  assert.deepEqual(await cache.roles(db, 'u', { projectId: 'p' }), [], 'a revoked grant is seen at once');
  const uncached = new IdentityReadCache(null);
  assert.notEqual(await uncached.roles(db, 'u', { projectId: 'p' }), await uncached.roles(db, 'u', { projectId: 'p' }), 'without a watch every call resolves');
});

test('cached users, domains and projects follow every identity write', async () => {
  const { db, writes } = await watchedDb();
  const now = new Date().toISOString();
  await db.insertInto('identity_domains').values({ id: 'd', name: 'D', description: '', enabled: 1, extra: '{}', created_at: now }).execute();
  await db.insertInto('identity_projects').values({ id: 'p', name: 'P', domain_id: 'd', parent_id: null, description: '', enabled: 1, extra: '{}', created_at: now }).execute();
  const cache = new IdentityReadCache({ writes, db });
  assert.equal((await cache.project(db, 'p'))?.enabled, 1);
  assert.equal(await cache.project(db, 'p'), await cache.project(db, 'p'), 'unchanged data: the cached row');
  assert.equal(await cache.userByName(db, 'd', 'ann'), undefined, 'a missing row is answered too');
  await db.insertInto('identity_users').values({
    id: 'u1', name: 'ann', domain_id: 'd', enabled: 1, default_project_id: null, password_hash: 'x', password_created_at: now, password_expires_at: null,
    options: '{}', extra: '{}', failed_auth_count: 0, failed_auth_at: null, last_active_at: null, created_at: now,
  }).execute();
  assert.equal((await cache.userByName(db, 'd', 'ann'))?.id, 'u1', 'a remembered miss is forgotten once the user is created');
  await db.updateTable('identity_users').set({ name: 'bea' }).where('id', '=', 'u1').execute();
  assert.equal(await cache.userByName(db, 'd', 'ann'), undefined, 'the old name no longer finds the user');
  assert.equal((await cache.userByName(db, 'd', 'bea'))?.id, 'u1');
  assert.equal((await cache.projectByName(db, 'd', 'P'))?.id, 'p');
  await db.updateTable('identity_projects').set({ name: 'Q' }).where('id', '=', 'p').execute();
  assert.equal(await cache.projectByName(db, 'd', 'P'), undefined, 'a renamed project is seen at once');
  assert.equal((await cache.domainByName(db, 'D'))?.id, 'd');
  await db.updateTable('identity_projects').set({ enabled: 0 }).where('id', '=', 'p').execute();
  assert.equal((await cache.project(db, 'p'))?.enabled, 0, 'a disabled project is seen at once');
  await db.updateTable('identity_domains').set({ enabled: 0 }).where('id', '=', 'd').execute();
  assert.equal((await cache.domain(db, 'd'))?.enabled, 0, 'a disabled domain is seen at once');
});

test('a row loaded across an identity write is not kept, even when a later read has already started afresh', async () => {
  const { db, writes } = await watchedDb();
  const now = new Date().toISOString();
  await db.insertInto('identity_domains').values({ id: 'd', name: 'D', description: '', enabled: 1, extra: '{}', created_at: now }).execute();
  await db.insertInto('identity_projects').values({ id: 'p', name: 'P', domain_id: 'd', parent_id: null, description: '', enabled: 1, extra: '{}', created_at: now }).execute();
  const cache = new IdentityReadCache({ writes, db });
  // Read A loads through a query that answers only when the test says, with the row as it was before the write.
  const before = await db.selectFrom('identity_projects').selectAll().where('id', '=', 'p').executeTakeFirst();
  let answer!: (row: unknown) => void;
  const chain = { selectAll: () => chain, where: () => chain, executeTakeFirst: () => new Promise((r) => { answer = r; }) };
  const readA = cache.project({ selectFrom: () => chain } as unknown as typeof db, 'p');
  await db.updateTable('identity_projects').set({ enabled: 0 }).where('id', '=', 'p').execute();
  const readB = await cache.project(db, 'p'); // starts after the write: forgets everything, loads afresh
  assert.equal(readB?.enabled, 0);
  answer(before);
  assert.equal((await readA)?.enabled, 1, 'A answers what it loaded');
  assert.equal(await cache.project(db, 'p'), readB, "A's row, loaded across the write, did not replace B's");
});

test("another connection's commit to the same SQLite file empties the cache; a read does not", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'state.db');
  const writes = new WriteWatch();
  const db = new Kysely<any>({ dialect: sqliteDialect(file), plugins: [writes] }) as Db;
  t.after(() => db.destroy());
  await migrate(db);
  const now = new Date().toISOString();
  await db.insertInto('identity_domains').values({ id: 'd', name: 'D', description: '', enabled: 1, extra: '{}', created_at: now }).execute();
  const cache = new IdentityReadCache({ writes, db });
  const first = await cache.domain(db, 'd');
  assert.equal(first?.enabled, 1);
  const other = new DatabaseSync(file);
  t.after(() => other.close());
  other.prepare('SELECT * FROM identity_domains').all();
  assert.equal(await cache.domain(db, 'd'), first, "another connection's read: the cached row");
  const g = writes.generation('identity_');
  other.prepare("UPDATE identity_domains SET enabled = 0 WHERE id = 'd'").run();
  assert.equal(writes.generation('identity_'), g, 'this process saw no write of its own');
  assert.equal((await cache.domain(db, 'd'))?.enabled, 0, "another connection's commit is seen at once");
  const second = await cache.domain(db, 'd');
  assert.equal(await cache.domain(db, 'd'), second, 'cached again once nothing else commits');
  assert.equal(writes.generation('identity_'), g, "reading the commit count is not counted as this process's write");
});
