// The registry's bytes in the object store: a stream larger than a segment is
// written as several objects composed into one; composes and copies share bytes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { migrate, openDatabase, type Database } from '../../../src/db/database.ts';
import { createObjectService, type ObjectService } from '../../../src/object/service.ts';
import { ObjectRegistryStorage, REGISTRY_CONTAINER } from '../../../src/registry/storage.ts';
import { freshPostgres } from '../../harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'stratus-registry-storage-'));
let database: Database;
let objects: ObjectService;
let drop: (() => Promise<void>) | undefined;
test.before(async () => {
  const pg = process.env.STRATUS_TEST_DATABASE ? await freshPostgres(process.env.STRATUS_TEST_DATABASE) : undefined;
  drop = pg?.drop;
  database = await openDatabase(pg?.url ?? join(dir, 'db.sqlite'));
  await migrate(database.db);
  objects = createObjectService({ db: database.db, log: pino({ level: 'silent' }), dataDir: dir, config: { fsync: false } });
  await objects.start();
});
after(async () => {
  await objects.stop();
  await database.close();
  await drop?.();
  rmSync(dir, { recursive: true, force: true });
});

const read = async (s: Readable | undefined) => {
  assert.ok(s);
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
};

test('puts in segments, ranges, compose, copy across projects, list, delete', async () => {
  const s = new ObjectRegistryStorage(objects.store, { segment: 64 * 1024 });
  const data = randomBytes(200_000);
  assert.deepEqual(await s.put('p1', 'uploads/u/000000', Readable.from([data])), { size: data.length });
  assert.ok((await read(await s.open('p1', 'uploads/u/000000'))).equals(data));
  assert.ok((await read(await s.open('p1', 'uploads/u/000000', { start: 65_000, end: 70_000 }))).equals(data.subarray(65_000, 70_001)));
  assert.deepEqual((await s.list('p1', 'uploads/')).map((o) => o.key), ['uploads/u/000000'], 'no segment left behind');
  await s.put('p1', 'uploads/u/000001', Readable.from([Buffer.from('tail')]));
  assert.deepEqual(await s.compose('p1', 'blobs/sha256:x', ['uploads/u/000000', 'uploads/u/000001']), { size: data.length + 4 });
  assert.deepEqual((await s.list('p1', 'uploads/')).map((o) => o.key), [], 'the parts are consumed');
  await s.copy('p1', 'blobs/sha256:x', 'p2', 'blobs/sha256:x');
  assert.ok((await read(await s.open('p2', 'blobs/sha256:x'))).equals(Buffer.concat([data, Buffer.from('tail')])));
  assert.equal(await s.size('p2', 'blobs/sha256:x'), data.length + 4);
  await s.put('p1', 'blobs/empty', Readable.from([]));
  assert.equal(await s.size('p1', 'blobs/empty'), 0);
  await s.delete('p1', 'blobs/sha256:x');
  await s.delete('p1', 'blobs/sha256:x');
  assert.equal(await s.open('p1', 'blobs/sha256:x'), undefined);
  assert.equal(await s.size('p1', 'blobs/sha256:x'), undefined);
  // the container is internal: no Swift listing shows it
  assert.deepEqual((await objects.store.listContainers('p1', { limit: 10 })).map((c) => c.name), []);
  assert.ok(await objects.store.getContainer('p1', REGISTRY_CONTAINER, { internal: true }));
});
