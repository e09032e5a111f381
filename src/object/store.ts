// ObjectStore: the one in-process way to accounts, containers and objects, for
// every API that keeps bytes (Swift, S3, the OCI registry, Glance's object
// store). Records are SQL rows (schema.ts), bytes are backend blobs
// (backend.ts).
//
// Crash safety, the whole of it:
// - a blob is named in the database (`pending`, owned by this replica) before
//   a byte of it is written (small writes take ids reserved ahead in batches:
//   `reserved` rows, pending alike, and ready files; unused ones removed at
//   stop or at the next start);
// - the one transaction that makes an object visible makes its blob `live` (or
//   adds references to existing blobs: copy, compose), and turns the blobs of
//   the object it replaces or removes whose last reference went into `garbage`;
// - files of garbage blobs are removed after the commit, then their rows;
// - start() removes this replica's pending and reserved blobs and every
//   garbage blob.
// A kill -9 at any moment leaves the old object or the new one, whole, and no
// file that no row names (`audit()` reports any, and any blob whose bytes no
// longer match their checksums).
//
// Names: the store takes names as given (the APIs check them against their own
// rules first). Listings walk the (container, name) key in byte order with
// keyset bounds (marker, end_marker, prefix): no scan, no OFFSET.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import { isPostgres } from '../db/migration-helpers.ts';
import { BlobCorruptError, ShortBodyError, TooLargeError, type ObjectBackend } from './backend.ts';
import type { ObjectTables } from './schema.ts';

/** Swift's max_file_size: the largest single object (5 GiB). */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * 1024;
/** Reads up to this size can be one buffer (readObjectBuffer), not a stream of blocks. */
export const SMALL_READ = 256 * 1024;
/** The storage policy every container has (one replica, this store). */
export const DEFAULT_POLICY = 'Policy-0';

/** Why a store call refused: each API maps the reason to its own status and body. */
export type StoreErrorReason =
  | 'ContainerNotFound' | 'ObjectNotFound' | 'ContainerNotEmpty' | 'ContainerExists'
  | 'PreconditionFailed' | 'EtagMismatch' | 'ShortBody' | 'TooLarge' | 'PartNotFound' | 'Corrupt';

export class ObjectStoreError extends Error {
  readonly reason: StoreErrorReason;
  constructor(reason: StoreErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * User metadata: lowercase names (without the API's prefix) to values as the
 * HTTP header bytes came (latin1 text: a UTF-8 value is its bytes), so Swift
 * and S3 give back exactly what either was sent.
 */
export type Meta = Record<string, string>;
/** Metadata changes: a key with a string sets it, with null removes it. */
export type MetaChange = Record<string, string | null>;

export interface AccountInfo {
  project: string;
  /** False until the account's first container (Swift's autocreate): metadata then empty. */
  exists: boolean;
  metadata: Meta;
  sysmeta: Meta;
  /** X-Account-Access-Control as stored (JSON text); null when none. */
  acl: string | null;
  /** Visible (not internal) containers and what they hold. */
  containerCount: number;
  objectCount: number;
  bytesUsed: number;
  /** Swift timestamp of the account's creation; null while it does not exist. */
  createdAt: string | null;
  updatedAt: string | null;
}

export interface ContainerInfo {
  id: number;
  project: string;
  name: string;
  internal: boolean;
  metadata: Meta;
  sysmeta: Meta;
  readAcl: string | null;
  writeAcl: string | null;
  policy: string;
  objectCount: number;
  bytesUsed: number;
  /** Swift timestamps ("1700000000.12345"). */
  createdAt: string;
  updatedAt: string;
}

/** A blob's part of an object's bytes. */
export interface Segment { blob: string; size: number }

export interface ObjectInfo {
  containerId: number;
  name: string;
  size: number;
  etag: string;
  contentType: string;
  metadata: Meta;
  sysmeta: Meta;
  /** The X-Timestamp of the object's last write (Swift timestamp text). */
  timestamp: string;
  /** Unix seconds; null: never expires. */
  deleteAt: number | null;
  segments: Segment[];
}

/** A listing entry: an object, or with a delimiter the pseudo-directory that rolls several up. */
export type ObjectEntry =
  | { kind: 'object'; name: string; size: number; etag: string; contentType: string; timestamp: string; sysmeta: Meta }
  | { kind: 'subdir'; name: string };
export type ContainerEntry =
  | { kind: 'container'; name: string; objectCount: number; bytesUsed: number; timestamp: string; sysmeta: Meta }
  | { kind: 'subdir'; name: string };

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  /** Names after it (before it with reverse). */
  marker?: string;
  /** Names before it (after it with reverse). */
  endMarker?: string;
  /** At most this many entries (subdirs count). */
  limit: number;
  reverse?: boolean;
}

/** Conditions on the object a write replaces (checked in its transaction). */
export interface WriteConditions {
  /** '*': refuse when the object exists; ETags: refuse when its ETag is one of them. */
  ifNoneMatch?: '*' | string[];
  /** Refuse unless the object exists with one of these ETags ('*': exists at all). */
  ifMatch?: '*' | string[];
}

export interface ObjectAttributes {
  contentType?: string;
  metadata?: Meta;
  sysmeta?: Meta;
  deleteAt?: number | null;
}

export interface PutOptions extends ObjectAttributes, WriteConditions {
  /** The declared length; a shorter body is ShortBody, a longer one TooLarge. Absent: chunked. */
  size?: number;
  /** The MD5 (hex) the body must have; EtagMismatch when not. */
  md5?: string;
  /** The ETag to record (default: the MD5 of the bytes). */
  etag?: string;
  /** Upper bound of the size (default MAX_OBJECT_SIZE). */
  maxSize?: number;
}

export interface CopyOptions extends WriteConditions {
  /** What the copy's attributes are, given the source's (default: the source's). */
  derive?(src: ObjectInfo): ObjectAttributes & { etag?: string };
}

export interface ComposeOptions extends ObjectAttributes, WriteConditions {
  /** The composite's ETag (S3's md5-of-md5s-N, SLO's), the API's to compute. */
  etag: string;
  /** Remove the part objects in the same transaction (S3 multipart completion). */
  removeParts?: boolean;
}

export interface AuditReport {
  blobsChecked: number;
  corrupt: Array<{ blob: string; reason: string; objects: string[] }>;
  /** Files no row names. */
  orphanFiles: string[];
  /** Live rows whose file is missing. */
  missingFiles: string[];
}

type Tx = Kysely<ObjectTables> | Transaction<ObjectTables>;
type ObjRow = ObjectTables['object_objects'];
type ContRow = Selectable<ObjectTables['object_containers']>;

const EMPTY: Meta = Object.freeze({}) as Meta;
const parseMeta = (s: string | null): Meta => {
  if (!s || s === '{}') return EMPTY;
  try {
    const v = JSON.parse(s);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : EMPTY;
  } catch {
    return EMPTY;
  }
};
const metaText = (m: Meta | undefined): string => (m && Object.keys(m).length ? JSON.stringify(m) : '{}');

function applyChange(current: Meta, change: MetaChange | undefined): Meta {
  if (!change) return current;
  const out: Meta = { ...current };
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * The smallest string greater than every string that starts with `s` (byte
 * order of UTF-8 is code point order): its last code point plus one. Null
 * when there is none.
 */
export function successor(s: string): string | null {
  const cps = Array.from(s, (c) => c.codePointAt(0)!);
  while (cps.length) {
    let last = cps.pop()! + 1;
    if (last === 0xd800) last = 0xe000;
    if (last <= 0x10ffff) {
      cps.push(last);
      return String.fromCodePoint(...cps);
    }
  }
  return null;
}

let lastTs = 0;
/** A Swift timestamp ("1700000000.12345"), strictly increasing in this process. */
export function swiftTimestamp(): string {
  let n = Date.now() * 100;
  if (n <= lastTs) n = lastTs + 1;
  lastTs = n;
  return (n / 100000).toFixed(5).padStart(16, '0');
}

/** A Swift timestamp as a Date. */
export const timestampDate = (ts: string): Date => new Date(Math.floor(Number(ts) * 1000));

/**
 * A new blob id: its first two hex digits change every second, so the writes
 * in flight together land in one directory of the file backend and share its
 * fsync; the rest is random.
 */
const newBlobId = (prefix = (Math.floor(Date.now() / 1000) % 256).toString(16).padStart(2, '0')): string => prefix + randomBytes(15).toString('hex');

/** Blobs reserved ahead at a time (backends with reserve()), and how few left start the next batch. */
const RESERVE_BATCH = 64;
const RESERVE_LOW = 24;

function containerInfo(r: ContRow): ContainerInfo {
  return {
    id: r.id, project: r.project_id, name: r.name, internal: !!r.internal,
    metadata: parseMeta(r.metadata), sysmeta: parseMeta(r.sysmeta), readAcl: r.read_acl, writeAcl: r.write_acl,
    policy: r.policy, objectCount: Number(r.object_count), bytesUsed: Number(r.bytes_used), createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

function parseSegments(s: string): Segment[] {
  try {
    return (JSON.parse(s) as Array<[string, number]>).map(([blob, size]) => ({ blob, size }));
  } catch {
    return [];
  }
}
const segmentsText = (segs: Segment[]): string => JSON.stringify(segs.map((s) => [s.blob, s.size]));

function objectInfo(r: ObjRow): ObjectInfo {
  return {
    containerId: r.container_id, name: r.name, size: Number(r.size), etag: r.etag, contentType: r.content_type,
    metadata: parseMeta(r.metadata), sysmeta: parseMeta(r.sysmeta), timestamp: r.timestamp,
    deleteAt: r.delete_at === null ? null : Number(r.delete_at), segments: parseSegments(r.segments),
  };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const expired = (r: { delete_at: number | null }, now = nowSeconds()): boolean => r.delete_at !== null && Number(r.delete_at) <= now;

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || /UNIQUE constraint failed|PRIMARY KEY|duplicate key/i.test(err?.message ?? '');
}

function checkConditions(old: ObjRow | undefined, c: WriteConditions, now: number): void {
  const live = old && !expired(old, now) ? old : undefined;
  if (c.ifNoneMatch !== undefined) {
    if (c.ifNoneMatch === '*' ? !!live : !!live && c.ifNoneMatch.includes(live.etag)) {
      throw new ObjectStoreError('PreconditionFailed', 'the object exists (If-None-Match)');
    }
  }
  if (c.ifMatch !== undefined) {
    if (!live || (c.ifMatch !== '*' && !c.ifMatch.includes(live.etag))) {
      throw new ObjectStoreError('PreconditionFailed', 'the object does not match (If-Match)');
    }
  }
}

interface GroupItem {
  fn: (trx: Transaction<ObjectTables>) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface ObjectStoreOptions {
  db: Db;
  backend: ObjectBackend;
  log: Logger;
  /** Names this replica's pending blobs (host and data directory). */
  owner: string;
  /** Seconds between sweeps of expired objects (default 60; 0: never). */
  reapInterval?: number;
}

export class ObjectStore {
  readonly backend: ObjectBackend;
  private readonly db: Kysely<ObjectTables>;
  private readonly log: Logger;
  private readonly owner: string;
  private readonly pg: boolean;
  private readonly reapInterval: number;
  private reaper: NodeJS.Timeout | null = null;
  private reaping: Promise<void> | null = null;
  private readonly collecting = new Set<Promise<void>>();
  /** Blob ids reserved ahead (`reserved` rows, ready in the backend), handed to writes one each. */
  private spare: string[] = [];
  private reserving: Promise<void> | null = null;
  private stopped = false;
  /** Writes waiting for the next group commit (groupTx). */
  private group: GroupItem[] = [];
  private groupScheduled = false;

  constructor(o: ObjectStoreOptions) {
    this.db = o.db as unknown as Kysely<ObjectTables>;
    this.backend = o.backend;
    this.log = o.log;
    this.owner = o.owner;
    this.pg = isPostgres(o.db);
    this.reapInterval = o.reapInterval ?? 60;
  }

  // ---- life cycle

  /** Crash recovery (this replica's pending blobs, every garbage blob), then the expiry sweeps. */
  async start(): Promise<void> {
    const pending = await this.db.selectFrom('object_blobs').select('id').where('state', 'in', ['pending', 'reserved']).where('owner', '=', this.owner).execute();
    if (pending.length) {
      this.log.info({ blobs: pending.length }, 'object store: removing blobs of writes interrupted by a crash');
      await this.discard(pending.map((r) => r.id));
    }
    const garbage = await this.db.selectFrom('object_blobs').select('id').where('state', '=', 'garbage').execute();
    if (garbage.length) await this.collect(garbage.map((r) => r.id));
    await this.backend.recover();
    if (this.reapInterval > 0) {
      this.reaper = setInterval(() => { void this.reapExpired(); }, this.reapInterval * 1000);
      this.reaper.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = null;
    await this.reaping;
    await Promise.all(this.collecting);
    await this.reserving?.catch(() => undefined);
    const spare = this.spare;
    this.spare = [];
    if (spare.length) await this.discard(spare);
  }

  // ---- accounts

  async getAccount(project: string): Promise<AccountInfo> {
    const row = await this.db.selectFrom('object_accounts').selectAll().where('project_id', '=', project).executeTakeFirst();
    const agg = await this.db.selectFrom('object_containers')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('object_count').as('objects'), eb.fn.sum<number>('bytes_used').as('bytes')])
      .where('project_id', '=', project).where('internal', '=', 0).executeTakeFirst();
    return {
      project, exists: !!row,
      metadata: parseMeta(row?.metadata ?? null), sysmeta: parseMeta(row?.sysmeta ?? null), acl: row?.acl ?? null,
      containerCount: Number(agg?.n ?? 0), objectCount: Number(agg?.objects ?? 0), bytesUsed: Number(agg?.bytes ?? 0),
      createdAt: row?.created_at ?? null, updatedAt: row?.updated_at ?? null,
    };
  }

  /** Changes an account's metadata, sysmeta or ACL (creating its record if need be). */
  async updateAccount(project: string, change: { metadata?: MetaChange; sysmeta?: MetaChange; acl?: string | null }): Promise<void> {
    await this.tx(async (trx) => {
      await this.ensureAccount(trx, project);
      const row = await trx.selectFrom('object_accounts').selectAll().where('project_id', '=', project).executeTakeFirstOrThrow();
      await trx.updateTable('object_accounts').set({
        metadata: metaText(applyChange(parseMeta(row.metadata), change.metadata)),
        sysmeta: metaText(applyChange(parseMeta(row.sysmeta), change.sysmeta)),
        acl: change.acl === undefined ? row.acl : change.acl,
        updated_at: swiftTimestamp(),
      }).where('project_id', '=', project).execute();
    });
  }

  private async ensureAccount(trx: Tx, project: string): Promise<void> {
    const ts = swiftTimestamp();
    await trx.insertInto('object_accounts').values({ project_id: project, metadata: '{}', sysmeta: '{}', acl: null, created_at: ts, updated_at: ts })
      .onConflict((oc) => oc.column('project_id').doNothing()).execute();
  }

  // ---- containers

  async getContainer(project: string, name: string, o: { internal?: boolean } = {}): Promise<ContainerInfo | null> {
    const r = await this.db.selectFrom('object_containers').selectAll()
      .where('project_id', '=', project).where('internal', '=', o.internal ? 1 : 0).where('name', '=', name).executeTakeFirst();
    return r ? containerInfo(r) : null;
  }

  /**
   * The visible container named `name` in any project (the oldest when
   * several projects have one): S3's buckets are one namespace.
   */
  async findContainer(name: string): Promise<ContainerInfo | null> {
    const r = await this.db.selectFrom('object_containers').selectAll()
      .where('name', '=', name).where('internal', '=', 0).orderBy('id').limit(1).executeTakeFirst();
    return r ? containerInfo(r) : null;
  }

  /** Creates a container; an existing one is returned as it is (`created` false). */
  async createContainer(project: string, name: string, o: {
    internal?: boolean; metadata?: Meta; sysmeta?: Meta; readAcl?: string | null; writeAcl?: string | null; policy?: string;
  } = {}): Promise<{ container: ContainerInfo; created: boolean }> {
    const existing = await this.getContainer(project, name, o);
    if (existing) return { container: existing, created: false };
    const ts = swiftTimestamp();
    try {
      await this.tx(async (trx) => {
        await this.ensureAccount(trx, project);
        await trx.insertInto('object_containers').values({
          project_id: project, name, internal: o.internal ? 1 : 0, metadata: metaText(o.metadata), sysmeta: metaText(o.sysmeta),
          read_acl: o.readAcl ?? null, write_acl: o.writeAcl ?? null, policy: o.policy ?? DEFAULT_POLICY,
          object_count: 0, bytes_used: 0, created_at: ts, updated_at: ts,
        }).execute();
      });
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      const twin = await this.getContainer(project, name, o);
      if (twin) return { container: twin, created: false };
      throw e;
    }
    return { container: (await this.getContainer(project, name, o))!, created: true };
  }

  async updateContainer(c: ContainerInfo, change: { metadata?: MetaChange; sysmeta?: MetaChange; readAcl?: string | null; writeAcl?: string | null }): Promise<ContainerInfo> {
    return this.tx(async (trx) => {
      const row = await this.lockedContainer(trx, c.id);
      if (!row) throw new ObjectStoreError('ContainerNotFound', `container ${c.name} is gone`);
      const set = {
        metadata: metaText(applyChange(parseMeta(row.metadata), change.metadata)),
        sysmeta: metaText(applyChange(parseMeta(row.sysmeta), change.sysmeta)),
        read_acl: change.readAcl === undefined ? row.read_acl : change.readAcl,
        write_acl: change.writeAcl === undefined ? row.write_acl : change.writeAcl,
        updated_at: swiftTimestamp(),
      };
      await trx.updateTable('object_containers').set(set).where('id', '=', c.id).execute();
      return containerInfo({ ...row, ...set });
    });
  }

  /** Deletes an empty container (expired objects not yet swept do not count); ContainerNotEmpty otherwise. */
  async deleteContainer(c: ContainerInfo): Promise<void> {
    const attempt = () => this.db.deleteFrom('object_containers').where('id', '=', c.id).where('object_count', '=', 0).executeTakeFirst();
    let r = await attempt();
    if (Number(r.numDeletedRows) === 1) return;
    const still = await this.db.selectFrom('object_containers').select('object_count').where('id', '=', c.id).executeTakeFirst();
    if (!still) throw new ObjectStoreError('ContainerNotFound', `container ${c.name} is gone`);
    // the objects may all be expired: sweep them, then try again
    const live = await this.db.selectFrom('object_objects').select('name').where('container_id', '=', c.id)
      .where((eb) => eb.or([eb('delete_at', 'is', null), eb('delete_at', '>', nowSeconds())])).limit(1).executeTakeFirst();
    if (!live) {
      await this.reapContainer(c.id);
      r = await attempt();
      if (Number(r.numDeletedRows) === 1) return;
    }
    throw new ObjectStoreError('ContainerNotEmpty', `container ${c.name} is not empty`);
  }

  async listContainers(project: string, o: ListOptions & { internal?: boolean }): Promise<ContainerEntry[]> {
    const rows = await this.walk<ContRow>(o, (q) => {
      let s = this.db.selectFrom('object_containers').selectAll().where('project_id', '=', project).where('internal', '=', o.internal ? 1 : 0);
      if (q.gt !== undefined) s = s.where('name', '>', q.gt);
      if (q.ge !== undefined) s = s.where('name', '>=', q.ge);
      if (q.lt !== undefined) s = s.where('name', '<', q.lt);
      return s.orderBy('name', q.desc ? 'desc' : 'asc').limit(q.limit).execute();
    });
    return rows.map((r) => 'subdir' in r
      ? { kind: 'subdir', name: r.subdir }
      : { kind: 'container', name: r.name, objectCount: Number(r.object_count), bytesUsed: Number(r.bytes_used), timestamp: r.updated_at, sysmeta: parseMeta(r.sysmeta) });
  }

  // ---- objects

  /** An object, null when absent or expired. */
  async headObject(c: ContainerInfo, name: string): Promise<ObjectInfo | null> {
    const r = await this.db.selectFrom('object_objects').selectAll().where('container_id', '=', c.id).where('name', '=', name).executeTakeFirst();
    return r && !expired(r) ? objectInfo(r) : null;
  }

  /**
   * Streams `body` into a new object (replacing any of that name once whole).
   * ShortBody, TooLarge, EtagMismatch, PreconditionFailed, ContainerNotFound:
   * nothing stored.
   */
  async putObject(c: ContainerInfo, name: string, body: Readable | AsyncIterable<Buffer>, o: PutOptions = {}): Promise<ObjectInfo> {
    if (o.ifNoneMatch !== undefined || o.ifMatch !== undefined) {
      // refused before a byte is read when it can be; checked again in the transaction
      const cur = await this.db.selectFrom('object_objects').selectAll().where('container_id', '=', c.id).where('name', '=', name).executeTakeFirst();
      checkConditions(cur, o, nowSeconds());
    }
    const id = await this.pendingBlob(o.size !== undefined && o.size <= (this.backend.reserveUpTo ?? 0));
    let written;
    try {
      written = await this.backend.write(id, body, { expectedSize: o.size, maxSize: Math.min(o.maxSize ?? MAX_OBJECT_SIZE, MAX_OBJECT_SIZE) });
    } catch (err) {
      await this.discard([id]);
      if (err instanceof ShortBodyError) throw new ObjectStoreError('ShortBody', err.message);
      if (err instanceof TooLargeError) throw new ObjectStoreError('TooLarge', err.message);
      throw err;
    }
    if (o.md5 !== undefined && o.md5.toLowerCase() !== written.md5) {
      await this.discard([id]);
      throw new ObjectStoreError('EtagMismatch', 'the body does not match the ETag given');
    }
    const row: ObjRow = {
      container_id: c.id, name, size: written.size, etag: o.etag ?? written.md5, content_type: o.contentType ?? 'application/octet-stream',
      metadata: metaText(o.metadata), sysmeta: metaText(o.sysmeta), timestamp: swiftTimestamp(), delete_at: o.deleteAt ?? null,
      segments: segmentsText([{ blob: id, size: written.size }]),
    };
    let garbage: string[];
    try {
      garbage = await this.groupTx(async (trx) => {
        const g = await this.replace(trx, c, row, o);
        await trx.updateTable('object_blobs').set({ state: 'live', refs: 1, size: written.size, md5: written.md5 }).where('id', '=', id).execute();
        return g;
      });
    } catch (err) {
      await this.discard([id]);
      throw err;
    }
    this.collectLater(garbage);
    return objectInfo(row);
  }

  /**
   * A new blob id, named in a pending row: for a small write, one reserved
   * ahead when the backend reserves (a batch's rows inserted in one statement,
   * its files made ready together), else a row inserted now.
   */
  private async pendingBlob(small: boolean): Promise<string> {
    if (small && this.backend.reserve && !this.stopped) {
      if (this.spare.length <= RESERVE_LOW) this.reserveMore();
      const id = this.spare.pop();
      if (id) return id;
      // none ready yet (the first writes, or a burst): this write names its own rather than wait
    }
    const id = newBlobId();
    await this.db.insertInto('object_blobs').values({ id, size: 0, md5: null, refs: 0, state: 'pending', owner: this.owner, created_at: new Date().toISOString() }).execute();
    return id;
  }

  /** Starts reserving the next batch of blobs, unless one is under way. */
  private reserveMore(): void {
    if (this.reserving) return;
    const run = (async () => {
      // one directory for the batch: one fsync of it makes every name durable
      const prefix = randomBytes(1).toString('hex');
      const ids = Array.from({ length: RESERVE_BATCH }, () => newBlobId(prefix));
      const created_at = new Date().toISOString();
      await this.db.insertInto('object_blobs').values(ids.map((id) => ({ id, size: 0, md5: null, refs: 0, state: 'reserved', owner: this.owner, created_at }))).execute();
      try {
        await this.backend.reserve!(ids);
      } catch (err) {
        await this.discard(ids);
        throw err;
      }
      if (this.stopped) await this.discard(ids);
      else this.spare.push(...ids);
    })();
    this.reserving = run;
    run.then(() => undefined, (err) => { this.log.warn({ err }, 'object store: reserving blobs failed'); }).finally(() => {
      if (this.reserving === run) this.reserving = null;
    });
  }

  /** The object and a stream of its bytes (or of `range`, [start, end) in bytes), checksums verified as read. */
  async openObject(c: ContainerInfo, name: string, range?: { start: number; end: number }): Promise<{ object: ObjectInfo; stream: Readable } | null> {
    const object = await this.headObject(c, name);
    if (!object) return null;
    return { object, stream: this.readObject(object, range) };
  }

  /** A stream of an object's bytes (or `range`); errors (and logs bit rot) when a blob does not match its checksums. */
  readObject(object: ObjectInfo, range?: { start: number; end: number }): Readable {
    const start = Math.max(0, range?.start ?? 0);
    const end = Math.min(object.size, range?.end ?? object.size);
    const segs = object.segments;
    if (segs.length === 1) {
      const s = this.backend.read(segs[0]!.blob, segs[0]!.size, { start, end });
      s.on('error', (err) => { void this.noteReadError(err, object); });
      return s;
    }
    const self = this;
    async function* gen(): AsyncGenerator<Buffer> {
      let off = 0;
      for (const seg of segs) {
        const segStart = off;
        const segEnd = off + seg.size;
        off = segEnd;
        if (segEnd <= start || segStart >= end) continue;
        const r = self.backend.read(seg.blob, seg.size, { start: Math.max(0, start - segStart), end: Math.min(seg.size, end - segStart) });
        for await (const chunk of r) yield chunk as Buffer;
      }
    }
    const s = Readable.from(gen(), { objectMode: false });
    s.on('error', (err) => { void this.noteReadError(err, object); });
    return s;
  }

  /**
   * A small object's bytes (or `range` of them) at once, checked, when the
   * backend reads so (else null: use readObject). Throws ObjectStoreError
   * `Corrupt` (logged as bit rot) before anything is answered.
   */
  async readObjectBuffer(object: ObjectInfo, range?: { start: number; end: number }): Promise<Buffer | null> {
    const start = Math.max(0, range?.start ?? 0);
    const end = Math.min(object.size, range?.end ?? object.size);
    if (object.segments.length !== 1 || end - start > SMALL_READ || !this.backend.readSmall) return null;
    const seg = object.segments[0]!;
    try {
      return await this.backend.readSmall(seg.blob, seg.size, { start, end });
    } catch (err) {
      await this.noteReadError(err, object);
      if (err instanceof BlobCorruptError) throw new ObjectStoreError('Corrupt', 'the object\'s data does not match its checksums');
      throw err;
    }
  }

  private async noteReadError(err: unknown, object: ObjectInfo): Promise<void> {
    if (!(err instanceof BlobCorruptError)) return;
    // a blob removed under a read (the object replaced meanwhile) is not rot
    const row = await this.db.selectFrom('object_blobs').select('state').where('id', '=', err.blobId).executeTakeFirst().catch(() => undefined);
    if (row && row.state !== 'live') {
      this.log.info({ blob: err.blobId, object: object.name }, 'object store: object replaced during a read');
      return;
    }
    this.log.error({ blob: err.blobId, container_id: object.containerId, object: object.name, reason: err.message }, 'object store: bit rot: a blob does not match its checksums');
  }

  /** Changes an object's attributes (Swift POST): metadata replaced as given, a new timestamp (kept with keepTimestamp: S3 tagging, lifecycle). */
  async updateObject(c: ContainerInfo, name: string, attrs: ObjectAttributes, opts: { keepTimestamp?: boolean } = {}): Promise<ObjectInfo> {
    return this.tx(async (trx) => {
      const cur = await this.loadObject(trx, c.id, name);
      if (!cur || expired(cur)) throw new ObjectStoreError('ObjectNotFound', `object ${name} not found`);
      const set = {
        content_type: attrs.contentType ?? cur.content_type,
        metadata: attrs.metadata ? metaText(attrs.metadata) : cur.metadata,
        sysmeta: attrs.sysmeta ? metaText(attrs.sysmeta) : cur.sysmeta,
        delete_at: attrs.deleteAt === undefined ? cur.delete_at : attrs.deleteAt,
        timestamp: opts.keepTimestamp ? cur.timestamp : swiftTimestamp(),
      };
      await trx.updateTable('object_objects').set(set).where('container_id', '=', c.id).where('name', '=', name).execute();
      return objectInfo({ ...cur, ...set });
    });
  }

  /** Removes an object; the removed one, or null when there was none (an expired one is swept and counts as none). */
  async deleteObject(c: ContainerInfo, name: string, cond: WriteConditions = {}): Promise<ObjectInfo | null> {
    const now = nowSeconds();
    const { gone, garbage } = await this.groupTx(async (trx) => {
      const cur = await this.loadObject(trx, c.id, name);
      checkConditions(cur, cond, now);
      if (!cur) return { gone: null, garbage: [] as string[] };
      await trx.deleteFrom('object_objects').where('container_id', '=', c.id).where('name', '=', name).execute();
      const garbage = await this.release(trx, parseSegments(cur.segments));
      await this.count(trx, c.id, -1, -Number(cur.size));
      return { gone: cur, garbage };
    });
    this.collectLater(garbage);
    return gone && !expired(gone, now) ? objectInfo(gone) : null;
  }

  /**
   * A server-side copy: the destination references the source's blobs (no
   * byte is copied). ObjectNotFound when the source is absent.
   */
  async copyObject(src: { container: ContainerInfo; name: string }, dst: { container: ContainerInfo; name: string }, o: CopyOptions = {}): Promise<ObjectInfo> {
    const { row, garbage } = await this.tx(async (trx) => {
      const s = await this.loadObject(trx, src.container.id, src.name);
      if (!s || expired(s)) throw new ObjectStoreError('ObjectNotFound', `object ${src.name} not found`);
      const info = objectInfo(s);
      const d = o.derive?.(info) ?? {};
      const row: ObjRow = {
        container_id: dst.container.id, name: dst.name, size: info.size, etag: d.etag ?? info.etag,
        content_type: d.contentType ?? info.contentType, metadata: metaText(d.metadata ?? info.metadata), sysmeta: metaText(d.sysmeta ?? info.sysmeta),
        timestamp: swiftTimestamp(), delete_at: d.deleteAt === undefined ? null : d.deleteAt, segments: s.segments,
      };
      await this.reference(trx, info.segments);
      const garbage = await this.replace(trx, dst.container, row, o);
      return { row, garbage };
    });
    this.collectLater(garbage);
    return objectInfo(row);
  }

  /**
   * An object made of existing objects' bytes, in order (S3 multipart
   * completion, a static large object made whole): it references their blobs.
   * PartNotFound when one is missing.
   */
  async composeObject(dst: { container: ContainerInfo; name: string }, parts: Array<{ container: ContainerInfo; name: string }>, o: ComposeOptions): Promise<ObjectInfo> {
    const { row, garbage } = await this.tx(async (trx) => {
      const segs: Segment[] = [];
      const loaded: Array<{ c: ContainerInfo; r: ObjRow }> = [];
      for (const p of parts) {
        const r = await this.loadObject(trx, p.container.id, p.name);
        if (!r || expired(r)) throw new ObjectStoreError('PartNotFound', `part ${p.name} not found`);
        loaded.push({ c: p.container, r });
        segs.push(...parseSegments(r.segments));
      }
      const size = segs.reduce((n, s) => n + s.size, 0);
      if (size > MAX_OBJECT_SIZE * 1000) throw new ObjectStoreError('TooLarge', 'the composed object is too large');
      const row: ObjRow = {
        container_id: dst.container.id, name: dst.name, size, etag: o.etag, content_type: o.contentType ?? 'application/octet-stream',
        metadata: metaText(o.metadata), sysmeta: metaText(o.sysmeta), timestamp: swiftTimestamp(), delete_at: o.deleteAt ?? null,
        segments: segmentsText(segs),
      };
      await this.reference(trx, segs);
      let garbage = await this.replace(trx, dst.container, row, o);
      if (o.removeParts) {
        for (const { c, r } of loaded) {
          if (c.id === dst.container.id && r.name === dst.name) continue;
          const del = await trx.deleteFrom('object_objects').where('container_id', '=', c.id).where('name', '=', r.name).executeTakeFirst();
          if (Number(del.numDeletedRows) !== 1) continue;
          garbage = garbage.concat(await this.release(trx, parseSegments(r.segments)));
          await this.count(trx, c.id, -1, -Number(r.size));
        }
      }
      return { row, garbage };
    });
    this.collectLater(garbage);
    return objectInfo(row);
  }

  async listObjects(c: ContainerInfo, o: ListOptions): Promise<ObjectEntry[]> {
    const now = nowSeconds();
    const rows = await this.walk<ObjRow>(o, (q) => {
      let s = this.db.selectFrom('object_objects').select(['name', 'size', 'etag', 'content_type', 'timestamp', 'sysmeta', 'delete_at'])
        .where('container_id', '=', c.id);
      if (q.gt !== undefined) s = s.where('name', '>', q.gt);
      if (q.ge !== undefined) s = s.where('name', '>=', q.ge);
      if (q.lt !== undefined) s = s.where('name', '<', q.lt);
      return s.orderBy('name', q.desc ? 'desc' : 'asc').limit(q.limit).execute() as Promise<ObjRow[]>;
    }, (r) => !expired(r, now));
    return rows.map((r) => 'subdir' in r
      ? { kind: 'subdir', name: r.subdir }
      : { kind: 'object', name: r.name, size: Number(r.size), etag: r.etag, contentType: r.content_type, timestamp: r.timestamp, sysmeta: parseMeta(r.sysmeta) });
  }

  /**
   * Swift's listing walk over a name-ordered key: rows after `marker`, before
   * `end_marker`, within `prefix`; with a delimiter, each run of names sharing
   * the part up to the delimiter is one subdir entry and is skipped in one
   * bound (no row of it read beyond the first).
   */
  private async walk<R extends { name: string }>(
    o: ListOptions,
    query: (q: { gt?: string; ge?: string; lt?: string; desc: boolean; limit: number }) => Promise<R[]>,
    keep: (r: R) => boolean = () => true,
  ): Promise<Array<R | { subdir: string }>> {
    const prefix = o.prefix ?? '';
    const prefixEnd = prefix ? successor(prefix) ?? undefined : undefined;
    const out: Array<R | { subdir: string }> = [];
    const limit = Math.max(0, o.limit);
    const desc = !!o.reverse;
    // forward: lower bounds gt/ge, upper lt; reverse: upper bound lt (and gt as the far end)
    let gt: string | undefined;
    let ge: string | undefined;
    let lt: string | undefined;
    const minStr = (a: string | undefined, b: string | undefined) => (a === undefined ? b : b === undefined ? a : Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? a : b);
    if (!desc) {
      gt = o.marker || undefined;
      ge = prefix || undefined;
      lt = minStr(o.endMarker || undefined, prefixEnd);
    } else {
      // reverse: marker is the upper bound, end_marker the lower
      lt = minStr(o.marker || undefined, prefixEnd);
      gt = o.endMarker || undefined;
      ge = prefix || undefined;
    }
    while (out.length < limit) {
      const want = limit - out.length;
      const batch = await query({ gt, ge, lt, desc, limit: o.delimiter ? Math.min(want + 1, 1000) : want });
      if (!batch.length) break;
      let jumped = false;
      for (const r of batch) {
        if (o.delimiter) {
          const at = r.name.indexOf(o.delimiter, prefix.length);
          if (at >= 0) {
            const subdir = r.name.slice(0, at + o.delimiter.length);
            if (subdir !== o.marker) out.push({ subdir });
            if (!desc) {
              const next = successor(subdir);
              if (next === null) return out;
              ge = next;
              gt = undefined;
            } else {
              lt = subdir;
            }
            jumped = true;
            break;
          }
        }
        if (keep(r)) out.push(r);
        if (out.length >= limit) break;
        if (!desc) gt = r.name;
        else lt = r.name;
      }
      if (!jumped && batch.length < (o.delimiter ? Math.min(want + 1, 1000) : want)) break;
      if (!desc && ge !== undefined && gt !== undefined && !jumped) ge = undefined;
    }
    return out;
  }

  // ---- expiry

  /** Removes objects past their X-Delete-At (they are invisible from that second on already). */
  async reapExpired(): Promise<number> {
    if (this.reaping) {
      await this.reaping;
      return 0;
    }
    let n = 0;
    const run = (async () => {
      for (;;) {
        const rows = await this.db.selectFrom('object_objects').select(['container_id', 'name'])
          .where('delete_at', 'is not', null).where('delete_at', '<=', nowSeconds()).limit(100).execute();
        for (const r of rows) n += (await this.reapOne(r.container_id, r.name)) ? 1 : 0;
        if (rows.length < 100) break;
      }
    })().catch((err) => { this.log.warn({ err }, 'object store: expiry sweep failed'); });
    this.reaping = run;
    try {
      await run;
    } finally {
      this.reaping = null;
    }
    return n;
  }

  private async reapContainer(containerId: number): Promise<void> {
    const rows = await this.db.selectFrom('object_objects').select('name').where('container_id', '=', containerId)
      .where('delete_at', 'is not', null).where('delete_at', '<=', nowSeconds()).execute();
    for (const r of rows) await this.reapOne(containerId, r.name);
  }

  private async reapOne(containerId: number, name: string): Promise<boolean> {
    const garbage = await this.tx(async (trx) => {
      const cur = await this.loadObject(trx, containerId, name);
      if (!cur || !expired(cur)) return null;
      await trx.deleteFrom('object_objects').where('container_id', '=', containerId).where('name', '=', name).execute();
      const g = await this.release(trx, parseSegments(cur.segments));
      await this.count(trx, containerId, -1, -Number(cur.size));
      return g;
    });
    if (garbage) await this.collect(garbage);
    return garbage !== null;
  }

  // ---- audit

  /** Checks every live blob against its checksums and MD5, and finds files no row names and rows with no file. */
  async audit(o: { verify?: boolean } = {}): Promise<AuditReport> {
    const report: AuditReport = { blobsChecked: 0, corrupt: [], orphanFiles: [], missingFiles: [] };
    const known = new Map<string, { size: number; md5: string | null; state: string }>();
    // keyset pages (PostgreSQL's driver has no cursor here)
    for (let after = '';;) {
      const page = await this.db.selectFrom('object_blobs').select(['id', 'size', 'md5', 'state']).where('id', '>', after).orderBy('id').limit(1000).execute();
      for (const r of page) known.set(r.id, { size: Number(r.size), md5: r.md5, state: r.state });
      if (page.length < 1000) break;
      after = page[page.length - 1]!.id;
    }
    const present = new Set<string>();
    const candidates: string[] = [];
    for await (const id of this.backend.list()) {
      present.add(id);
      if (!known.has(id)) candidates.push(id);
    }
    // a write that began after the rows were read is no orphan: asked again
    for (let i = 0; i < candidates.length; i += 500) {
      const batch = candidates.slice(i, i + 500);
      const rows = new Set((await this.db.selectFrom('object_blobs').select('id').where('id', 'in', batch).execute()).map((r) => r.id));
      for (const id of batch) if (!rows.has(id)) report.orphanFiles.push(id);
    }
    const missing: string[] = [];
    const corrupt: Array<{ blob: string; reason: string }> = [];
    for (const [id, b] of known) {
      if (b.state !== 'live') continue;
      if (!present.has(id)) {
        missing.push(id);
        continue;
      }
      if (o.verify === false) continue;
      report.blobsChecked++;
      const v = await this.backend.verify(id, b.size);
      const reason = !v.ok ? v.reason : b.md5 && v.md5 !== b.md5 ? 'its MD5 does not match the recorded one' : null;
      if (reason) corrupt.push({ blob: id, reason });
    }
    // a blob released (its last object deleted) after the rows were read loses its file meanwhile: asked again, only a still live one is reported
    const live = await this.stillLive([...missing, ...corrupt.map((x) => x.blob)]);
    report.missingFiles = missing.filter((id) => live.has(id));
    for (const x of corrupt) if (live.has(x.blob)) report.corrupt.push({ ...x, objects: await this.objectsOf(x.blob) });
    return report;
  }

  /** Which of these blobs are live now. */
  private async stillLive(ids: string[]): Promise<Set<string>> {
    const live = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db.selectFrom('object_blobs').select('id').where('id', 'in', ids.slice(i, i + 500)).where('state', '=', 'live').execute();
      for (const r of rows) live.add(r.id);
    }
    return live;
  }

  private async objectsOf(blob: string): Promise<string[]> {
    const rows = await this.db.selectFrom('object_objects').innerJoin('object_containers', 'object_containers.id', 'object_objects.container_id')
      .select(['object_containers.project_id', 'object_containers.name as container', 'object_objects.name'])
      .where('object_objects.segments', 'like', `%"${blob}"%`).execute();
    return rows.map((r) => `${r.project_id}/${r.container}/${r.name}`);
  }

  // ---- internals

  private async tx<T>(fn: (trx: Transaction<ObjectTables>) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction().execute(fn);
      } catch (e) {
        // PostgreSQL: a concurrent twin inserted the same object name first; the retry sees it
        if (this.pg && attempt < 3 && isUniqueViolation(e)) continue;
        throw e;
      }
    }
  }

  /**
   * A transaction of a PUT's or DELETE's records, committed together with the
   * others that became ready in the same turn of the event loop (SQLite: one
   * writer at a time, so one commit serves them all); each runs in its own
   * savepoint, so one that fails (a condition, a vanished container) is undone
   * alone and the others commit. Each resolves only once the commit is done.
   * PostgreSQL takes each in its own transaction (concurrent writers there).
   */
  private groupTx<T>(fn: (trx: Transaction<ObjectTables>) => Promise<T>): Promise<T> {
    if (this.pg) return this.tx(fn);
    return new Promise<T>((resolve, reject) => {
      this.group.push({ fn, resolve, reject } as GroupItem);
      if (!this.groupScheduled) {
        this.groupScheduled = true;
        setImmediate(() => { void this.commitGroup(); });
      }
    });
  }

  private async commitGroup(): Promise<void> {
    const items = this.group;
    this.group = [];
    this.groupScheduled = false;
    if (items.length === 1) {
      const only = items[0]!;
      await this.tx(only.fn).then(only.resolve, only.reject);
      return;
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
    try {
      await this.db.transaction().execute(async (trx) => {
        for (const item of items) {
          await sql`savepoint object_write`.execute(trx);
          try {
            outcomes.push({ ok: true, value: await item.fn(trx) });
            await sql`release savepoint object_write`.execute(trx);
          } catch (err) {
            await sql`rollback to savepoint object_write`.execute(trx);
            await sql`release savepoint object_write`.execute(trx);
            outcomes.push({ ok: false, err });
          }
        }
      });
    } catch (err) {
      for (const item of items) item.reject(err);
      return;
    }
    items.forEach((item, i) => {
      const o = outcomes[i]!;
      if (o.ok) item.resolve(o.value);
      else item.reject(o.err);
    });
  }

  private async loadObject(trx: Tx, containerId: number, name: string): Promise<ObjRow | undefined> {
    let q = trx.selectFrom('object_objects').selectAll().where('container_id', '=', containerId).where('name', '=', name);
    if (this.pg) q = q.forUpdate();
    return q.executeTakeFirst();
  }

  private async lockedContainer(trx: Tx, id: number): Promise<ContRow | undefined> {
    let q = trx.selectFrom('object_containers').selectAll().where('id', '=', id);
    if (this.pg) q = q.forUpdate();
    return q.executeTakeFirst();
  }

  /** Writes `row` in place of whatever object has its name (conditions checked); the blobs left unreferenced. */
  private async replace(trx: Tx, c: ContainerInfo, row: ObjRow, cond: WriteConditions): Promise<string[]> {
    const old = await this.loadObject(trx, c.id, row.name);
    checkConditions(old, cond, nowSeconds());
    if (old) {
      await trx.updateTable('object_objects').set(row).where('container_id', '=', c.id).where('name', '=', row.name).execute();
    } else {
      await trx.insertInto('object_objects').values(row).execute();
    }
    const garbage = old ? await this.release(trx, parseSegments(old.segments)) : [];
    await this.count(trx, c.id, old ? 0 : 1, Number(row.size) - (old ? Number(old.size) : 0));
    return garbage;
  }

  /** Moves a container's counters; ContainerNotFound when it is gone (the transaction then undoes the write). */
  private async count(trx: Tx, containerId: number, objects: number, bytes: number): Promise<void> {
    const r = await trx.updateTable('object_containers')
      .set((eb) => ({ object_count: eb('object_count', '+', objects), bytes_used: eb('bytes_used', '+', bytes), updated_at: swiftTimestamp() }))
      .where('id', '=', containerId).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new ObjectStoreError('ContainerNotFound', 'the container is gone');
  }

  private async reference(trx: Tx, segs: Segment[]): Promise<void> {
    for (const [blob, n] of countBlobs(segs)) {
      const r = await trx.updateTable('object_blobs').set((eb) => ({ refs: eb('refs', '+', n) })).where('id', '=', blob).where('state', '=', 'live').executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new ObjectStoreError('Corrupt', `blob ${blob} is not live`);
    }
  }

  /** Drops one reference per segment; the blobs left with none become garbage (their ids returned). */
  private async release(trx: Tx, segs: Segment[]): Promise<string[]> {
    const counts = countBlobs(segs);
    if (!counts.size) return [];
    for (const [blob, n] of counts) {
      await trx.updateTable('object_blobs').set((eb) => ({ refs: eb('refs', '-', n) })).where('id', '=', blob).execute();
    }
    const gone = await trx.updateTable('object_blobs').set({ state: 'garbage' })
      .where('id', 'in', [...counts.keys()]).where('refs', '<=', 0).returning('id').execute();
    return gone.map((r) => r.id);
  }

  /** Garbage removed after the answer (a crash before leaves garbage rows, removed at the next start). */
  private collectLater(ids: string[]): void {
    if (!ids.length) return;
    const p = this.collect(ids).finally(() => this.collecting.delete(p));
    this.collecting.add(p);
  }

  /** Removes garbage blobs' files, then their rows. */
  private async collect(ids: string[]): Promise<void> {
    if (!ids.length) return;
    try {
      await this.backend.remove(ids);
      await this.db.deleteFrom('object_blobs').where('id', 'in', ids).where('state', '=', 'garbage').execute();
    } catch (err) {
      // left as garbage rows: the next start removes them
      this.log.warn({ err, blobs: ids.length }, 'object store: removing unreferenced blobs failed');
    }
  }

  /** Removes blobs that never became live (a failed or refused write). */
  private async discard(ids: string[]): Promise<void> {
    try {
      await this.backend.remove(ids);
      await this.db.deleteFrom('object_blobs').where('id', 'in', ids).where('state', 'in', ['pending', 'reserved']).execute();
    } catch (err) {
      this.log.warn({ err, blobs: ids.length }, 'object store: removing a failed write\'s blob failed');
    }
  }
}

function countBlobs(segs: Segment[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of segs) m.set(s.blob, (m.get(s.blob) ?? 0) + 1);
  return m;
}

