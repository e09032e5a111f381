// The object store's records (migrations 06xx). Bytes live in the backend as
// blobs; these rows say which blobs make which object.
//
// - object_accounts: one per project that ever had a container (Swift's
//   account): its metadata, ACL and sysmeta.
// - object_containers: a container of a project; `internal` ones (the
//   registry's, S3's multipart parts) are never listed by Swift or S3. Counters
//   (`object_count`, `bytes_used`) move in the transaction that changes an
//   object.
// - object_objects: keyed (container_id, name) — listings walk this key, never
//   scan; `segments` lists the blobs that make the bytes in order.
// - object_blobs: every blob the backend holds or may hold: `pending` (named
//   before it is written; made live by the transaction that makes its object
//   visible), `reserved` (named ahead in a batch for a small write, its empty
//   file ready; handed to one write, it is pending alike), `live` (referenced
//   `refs` times by objects), `garbage` (no more references; its file is
//   removed after the commit). At start the store removes its pending, reserved
//   and garbage blobs, so a crash leaves no orphan.
//
// Names are compared byte-wise (UTF-8 order, as Swift lists): PostgreSQL's
// name columns are COLLATE "C"; SQLite's default collation is already binary.
import { sql, type Generated, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { isPostgres } from '../db/migration-helpers.ts';

export interface ObjectTables {
  object_accounts: {
    project_id: string;
    /** User metadata (X-Account-Meta-*): JSON object, lowercase keys without the prefix. */
    metadata: string;
    /** Other APIs' bookkeeping: JSON object. */
    sysmeta: string;
    /** Swift's account ACL (X-Account-Access-Control) as JSON; null when none. */
    acl: string | null;
    created_at: string;
    updated_at: string;
  };
  object_containers: {
    id: Generated<number>;
    project_id: string;
    name: string;
    /** 1: the store's internal container of another API, hidden from Swift and S3 listings. */
    internal: number;
    metadata: string;
    sysmeta: string;
    read_acl: string | null;
    write_acl: string | null;
    policy: string;
    object_count: number;
    bytes_used: number;
    /** Swift timestamps (seconds with five decimals, as text of fixed width). */
    created_at: string;
    updated_at: string;
  };
  object_objects: {
    container_id: number;
    name: string;
    size: number;
    etag: string;
    content_type: string;
    metadata: string;
    sysmeta: string;
    /** The object's X-Timestamp (its Last-Modified). */
    timestamp: string;
    /** Unix seconds after which the object is gone (X-Delete-At); null: never. */
    delete_at: number | null;
    /** The blobs that make the bytes, in order: JSON `[[blobId, size], ...]`. */
    segments: string;
  };
  object_blobs: {
    id: string;
    size: number;
    md5: string | null;
    refs: number;
    /** pending, reserved, live or garbage. */
    state: string;
    /** The replica that wrote it (a pending or reserved blob is removed at that replica's next start). */
    owner: string;
    created_at: string;
  };
}

const text = 'text';

/** A name column ordered byte-wise on either database. */
function nameColumn(db: Kysely<any>) {
  return isPostgres(db) ? sql`text collate "C"` : sql`text`;
}

export const objectMigrations: Record<string, Migration> = {
  '0600_object': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      const name = nameColumn(db);
      await s.createTable('object_accounts')
        .addColumn('project_id', text, (c) => c.primaryKey())
        .addColumn('metadata', text, (c) => c.notNull()).addColumn('sysmeta', text, (c) => c.notNull())
        .addColumn('acl', text)
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      const containers = isPostgres(db)
        ? s.createTable('object_containers').addColumn('id', 'serial', (c) => c.primaryKey())
        : s.createTable('object_containers').addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
      await containers
        .addColumn('project_id', text, (c) => c.notNull())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('internal', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('metadata', text, (c) => c.notNull()).addColumn('sysmeta', text, (c) => c.notNull())
        .addColumn('read_acl', text).addColumn('write_acl', text)
        .addColumn('policy', text, (c) => c.notNull())
        .addColumn('object_count', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes_used', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addUniqueConstraint('object_containers_name', ['project_id', 'internal', 'name'])
        .execute();
      await s.createTable('object_objects')
        .addColumn('container_id', 'integer', (c) => c.notNull())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('etag', text, (c) => c.notNull())
        .addColumn('content_type', text, (c) => c.notNull())
        .addColumn('metadata', text, (c) => c.notNull()).addColumn('sysmeta', text, (c) => c.notNull())
        .addColumn('timestamp', text, (c) => c.notNull())
        .addColumn('delete_at', 'bigint')
        .addColumn('segments', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('object_objects_pk', ['container_id', 'name'])
        .execute();
      await s.createIndex('object_objects_delete_at').on('object_objects').column('delete_at').where(sql.ref('delete_at'), 'is not', null).execute();
      await s.createTable('object_blobs')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('md5', text)
        .addColumn('refs', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('state', text, (c) => c.notNull())
        .addColumn('owner', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull())
        .execute();
      await s.createIndex('object_blobs_state').on('object_blobs').columns(['state', 'owner']).where(sql.ref('state'), '!=', 'live').execute();
    },
  },
  // S3's one bucket namespace finds a container by name across projects (findContainer)
  '0601_object_container_names': {
    async up(db: Kysely<any>) {
      await db.schema.createIndex('object_containers_by_name').on('object_containers').columns(['name', 'internal', 'id']).execute();
    },
  },
};
