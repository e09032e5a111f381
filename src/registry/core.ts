// What the registry does with repositories, blobs, uploads and manifests,
// over its records (schema.ts) and the object store (storage.ts). The HTTP
// routes (service.ts) check access and speak the wire format; this module
// keeps the rules:
//   - a blob is accepted only when its bytes hash to the digest the client
//     named (sha256, computed while the bytes stream into the store, never
//     buffered whole); chunks of a session are stored as they come and
//     composed on completion, the hash kept running in memory between
//     chunks (re-read from the chunks when another replica took the session);
//   - a manifest is kept byte for byte; its digest is the sha256 of those
//     bytes; everything it references must exist in the repository;
//   - garbage collection (gc.ts) removes what no manifest references.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { hexId, nowIso, uuid } from '../common/ids.ts';
import type { Db } from '../db/database.ts';
import { RegistryError, regError } from './errors.ts';
import { MAX_MANIFEST, MediaType, parseManifest, type ParsedManifest } from './manifest.ts';
import { isDigest } from './names.ts';
import { blobKey, manifestKey, partKey, type RegistryStorage } from './storage.ts';

export interface RepoRow { id: string; project_id: string; path: string; public: number }
export interface UploadRow { id: string; repository_id: string; project_id: string; size: number; parts: number; created_at: string }
export interface ManifestRow { repository_id: string; digest: string; media_type: string; size: number; artifact_type: string | null; subject: string | null; annotations: string | null }

/** Hashes (sha256) and counts the bytes flowing through. */
export class Hasher extends Transform {
  size = 0;
  readonly hash: Hash;
  constructor(hash?: Hash) {
    super();
    this.hash = hash ?? createHash('sha256');
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/**
 * Pipes a request body through a hasher into the store. The source is piped,
 * not pipelined (the request still has to carry the answer), and a source that
 * closes before its end fails the put.
 */
function metered(source: Readable, hasher: Hasher): Readable {
  let ended = false;
  source.on('end', () => { ended = true; });
  source.on('close', () => { if (!ended) hasher.destroy(new Error('the upload ended early')); });
  source.on('error', (e) => hasher.destroy(e));
  source.pipe(hasher);
  // its reader (the store's put) sees the error, also one raised before it starts reading
  hasher.on('error', () => undefined);
  return hasher;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const digestOf = (b: Buffer, algorithm: string) => `${algorithm}:${createHash(algorithm).update(b).digest('hex')}`;

export class RegistryCore {
  readonly db: Db;
  readonly storage: RegistryStorage;
  /** Running hashes of upload sessions on this replica, by upload id (the size they cover). */
  private readonly running = new Map<string, { hash: Hash; size: number }>();

  constructor(db: Db, storage: RegistryStorage) {
    this.db = db;
    this.storage = storage;
  }

  // --- repositories -------------------------------------------------------

  async repo(projectId: string, path: string): Promise<RepoRow | undefined> {
    return this.db.selectFrom('registry_repositories').select(['id', 'project_id', 'path', 'public'])
      .where('project_id', '=', projectId).where('path', '=', path).executeTakeFirst();
  }

  /** The repository, made on first push. */
  async ensureRepo(projectId: string, path: string): Promise<RepoRow> {
    const found = await this.repo(projectId, path);
    if (found) return found;
    const now = nowIso();
    await this.db.insertInto('registry_repositories').values({ id: hexId(), project_id: projectId, path, public: 0, created_at: now, updated_at: now })
      .onConflict((oc) => oc.columns(['project_id', 'path']).doNothing()).execute();
    return (await this.repo(projectId, path))!;
  }

  async setPublic(projectId: string, path: string, pub: boolean): Promise<RepoRow> {
    const repo = await this.ensureRepo(projectId, path);
    await this.db.updateTable('registry_repositories').set({ public: pub ? 1 : 0, updated_at: nowIso() }).where('id', '=', repo.id).execute();
    return { ...repo, public: pub ? 1 : 0 };
  }

  // --- blobs --------------------------------------------------------------

  /** The blob's size when the repository has it (linked to it). */
  async blobInRepo(repo: RepoRow, digest: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('registry_repository_blobs as l')
      .innerJoin('registry_blobs as b', (j) => j.onRef('b.digest', '=', 'l.digest').on('b.project_id', '=', repo.project_id))
      .select('b.size').where('l.repository_id', '=', repo.id).where('l.digest', '=', digest).executeTakeFirst();
    return row?.size;
  }

  async openBlob(projectId: string, digest: string, range?: { start: number; end: number }): Promise<Readable> {
    const s = await this.storage.open(projectId, blobKey(digest), range);
    if (!s) throw regError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
    return s;
  }

  private async link(repoId: string, digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    const now = nowIso();
    await this.db.insertInto('registry_repository_blobs').values([...new Set(digests)].map((digest) => ({ repository_id: repoId, digest, created_at: now })))
      .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()).execute();
  }

  /** Removes the blob from the repository (its bytes go once nothing else holds them: gc). */
  async unlinkBlob(repo: RepoRow, digest: string): Promise<boolean> {
    const r = await this.db.deleteFrom('registry_repository_blobs').where('repository_id', '=', repo.id).where('digest', '=', digest).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * Mounts a blob of another repository (which the caller may pull) into this
   * one: a link within the project, a reference-copy across projects. False
   * when the source does not have it.
   */
  async mount(repo: RepoRow, from: RepoRow, digest: string): Promise<boolean> {
    const size = await this.blobInRepo(from, digest);
    if (size === undefined) return false;
    if (from.project_id !== repo.project_id) {
      const have = await this.db.selectFrom('registry_blobs').select('digest').where('project_id', '=', repo.project_id).where('digest', '=', digest).executeTakeFirst();
      if (!have) {
        await this.storage.copy(from.project_id, blobKey(digest), repo.project_id, blobKey(digest));
        await this.db.insertInto('registry_blobs').values({ project_id: repo.project_id, digest, size, created_at: nowIso() })
          .onConflict((oc) => oc.columns(['project_id', 'digest']).doNothing()).execute();
      }
    }
    await this.link(repo.id, [digest]);
    return true;
  }

  // --- uploads ------------------------------------------------------------

  async startUpload(repo: RepoRow): Promise<UploadRow> {
    const now = nowIso();
    const row: UploadRow & { updated_at: string } = { id: uuid(), repository_id: repo.id, project_id: repo.project_id, size: 0, parts: 0, created_at: now, updated_at: now };
    await this.db.insertInto('registry_uploads').values(row).execute();
    return row;
  }

  async upload(repo: RepoRow, id: string): Promise<UploadRow> {
    const row = /^[0-9a-f-]{36}$/.test(id)
      ? await this.db.selectFrom('registry_uploads').select(['id', 'repository_id', 'project_id', 'size', 'parts', 'created_at']).where('id', '=', id).where('repository_id', '=', repo.id).executeTakeFirst()
      : undefined;
    if (!row) throw regError('BLOB_UPLOAD_UNKNOWN', `blob upload unknown to registry: ${id}`);
    return row;
  }

  /**
   * Appends a chunk to an upload session: stored as the session's next part,
   * hashed as it streams. `start` (from Content-Range) must be where the
   * session stands, else 416. The session's new size.
   */
  async appendChunk(up: UploadRow, body: Readable, range?: { start: number; end: number }, length?: number): Promise<number> {
    if (range && range.start !== up.size) {
      body.resume();
      throw new RegistryError('BLOB_UPLOAD_INVALID', `chunk out of order: the upload stands at ${up.size} bytes, the chunk starts at ${range.start}`, { status: 'RangeNotSatisfiable', headers: rangeHeaders(up) });
    }
    if (range && length !== undefined && range.end - range.start + 1 !== length) {
      body.resume();
      throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range ${range.start}-${range.end} does not match Content-Length ${length}`, { status: 'RangeNotSatisfiable', headers: rangeHeaders(up) });
    }
    // the running hash covers the session only when it stands where the session does (else re-read at completion)
    const running = this.running.get(up.id);
    const continuing = running !== undefined && running.size === up.size;
    const hashable = continuing || up.size === 0;
    const hasher = new Hasher(continuing ? running.hash : undefined);
    this.running.delete(up.id);
    // written under a name of its own, made the session's next part only once the session took it (a chunk racing for the same offset never overwrites it)
    const key = `${partKey(up.id, up.parts)}.${randomBytes(6).toString('hex')}`;
    let size: number;
    try {
      size = (await this.storage.put(up.project_id, key, metered(body, hasher))).size;
    } catch (e) {
      this.running.delete(up.id);
      await this.storage.delete(up.project_id, key).catch(() => undefined);
      throw regError('BLOB_UPLOAD_INVALID', `the chunk could not be stored: ${(e as Error).message}`);
    }
    if (range && size !== range.end - range.start + 1) {
      this.running.delete(up.id);
      await this.storage.delete(up.project_id, key);
      throw new RegistryError('SIZE_INVALID', `the chunk holds ${size} bytes, Content-Range said ${range.end - range.start + 1}`);
    }
    if (size === 0) {
      await this.storage.delete(up.project_id, key);
      if (hashable) this.running.set(up.id, { hash: hasher.hash, size: up.size });
      return up.size;
    }
    // compare-and-set: a concurrent chunk of the same session makes this one out of order
    const r = await this.db.updateTable('registry_uploads').set({ size: up.size + size, parts: up.parts + 1, updated_at: nowIso() })
      .where('id', '=', up.id).where('size', '=', up.size).where('parts', '=', up.parts).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      this.running.delete(up.id);
      await this.storage.delete(up.project_id, key);
      throw new RegistryError('BLOB_UPLOAD_INVALID', 'chunk out of order: the upload moved on', { status: 'RangeNotSatisfiable' });
    }
    await this.storage.copy(up.project_id, key, up.project_id, partKey(up.id, up.parts));
    await this.storage.delete(up.project_id, key);
    up.size += size;
    up.parts += 1;
    if (hashable) this.running.set(up.id, { hash: hasher.hash, size: up.size });
    return up.size;
  }

  /** The sha256 of everything the session holds: the running hash, else re-read from its chunks. */
  private async sessionDigest(up: UploadRow): Promise<string> {
    const running = this.running.get(up.id);
    if (running && running.size === up.size) return `sha256:${running.hash.copy().digest('hex')}`;
    const hash = createHash('sha256');
    for (let n = 0; n < up.parts; n++) {
      const s = await this.storage.open(up.project_id, partKey(up.id, n));
      if (!s) throw regError('BLOB_UPLOAD_INVALID', 'a chunk of the upload is missing');
      for await (const chunk of s) hash.update(chunk as Buffer);
    }
    return `sha256:${hash.digest('hex')}`;
  }

  /**
   * Completes a session (PUT ?digest=, optionally with a last chunk): the
   * digest checked against the bytes, the chunks composed into the blob (or
   * dropped when the project has it already), the blob linked to the
   * repository, the session gone.
   */
  async completeUpload(repo: RepoRow, up: UploadRow, digest: string, body?: Readable, range?: { start: number; end: number }, length?: number): Promise<{ size: number }> {
    if (body) await this.appendChunk(up, body, range, length);
    if (!digest.startsWith('sha256:')) throw regError('DIGEST_INVALID', 'only sha256 digests are computed by this registry');
    const actual = await this.sessionDigest(up);
    if (actual !== digest) {
      throw regError('DIGEST_INVALID', `provided digest ${digest} did not match uploaded content (${actual})`, { digest });
    }
    const parts = Array.from({ length: up.parts }, (_, n) => partKey(up.id, n));
    const have = await this.db.selectFrom('registry_blobs').select('size').where('project_id', '=', up.project_id).where('digest', '=', digest).executeTakeFirst();
    if (!have || (await this.storage.size(up.project_id, blobKey(digest))) === undefined) {
      if (parts.length === 0) await this.storage.put(up.project_id, blobKey(digest), Readable.from([]));
      else await this.storage.compose(up.project_id, blobKey(digest), parts);
      await this.db.insertInto('registry_blobs').values({ project_id: up.project_id, digest, size: up.size, created_at: nowIso() })
        .onConflict((oc) => oc.columns(['project_id', 'digest']).doNothing()).execute();
    }
    await this.link(repo.id, [digest]);
    await this.dropUpload(up);
    return { size: up.size };
  }

  /** Removes a session and its chunks. */
  async dropUpload(up: Pick<UploadRow, 'id' | 'project_id' | 'parts'>): Promise<void> {
    this.running.delete(up.id);
    await this.db.deleteFrom('registry_uploads').where('id', '=', up.id).execute();
    for (let n = 0; n < up.parts; n++) await this.storage.delete(up.project_id, partKey(up.id, n));
  }

  // --- manifests ----------------------------------------------------------

  /** The manifest a tag or digest names in the repository. */
  async manifest(repo: RepoRow, reference: string): Promise<ManifestRow | undefined> {
    let digest = reference;
    if (!isDigest(reference)) {
      const tag = await this.db.selectFrom('registry_tags').select('digest').where('repository_id', '=', repo.id).where('tag', '=', reference).executeTakeFirst();
      if (!tag) return undefined;
      digest = tag.digest;
    }
    return this.db.selectFrom('registry_manifests').select(['repository_id', 'digest', 'media_type', 'size', 'artifact_type', 'subject', 'annotations'])
      .where('repository_id', '=', repo.id).where('digest', '=', digest).executeTakeFirst();
  }

  async manifestBytes(repo: RepoRow, digest: string): Promise<Buffer> {
    const s = await this.storage.open(repo.project_id, manifestKey(digest));
    if (!s) throw regError('MANIFEST_UNKNOWN', `manifest unknown to registry: ${digest}`);
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * Stores a manifest under a tag or its digest (and any extra tags). Every
   * blob and manifest it references must be in the repository (or, for a
   * blob, in the project: then it is linked here).
   */
  async putManifest(repo: RepoRow, reference: string, bytes: Buffer, contentType: string | undefined, tags: string[]): Promise<{ digest: string; parsed: ParsedManifest }> {
    if (bytes.length > MAX_MANIFEST) throw new RegistryError('SIZE_INVALID', `manifest larger than ${MAX_MANIFEST} bytes`, { status: 'PayloadTooLarge' });
    const digest = sha256(bytes);
    if (isDigest(reference)) {
      const algorithm = reference.slice(0, reference.indexOf(':'));
      if (digestOf(bytes, algorithm) !== reference) throw regError('DIGEST_INVALID', `provided digest ${reference} did not match the manifest's content`, { digest: reference });
    }
    const parsed = parseManifest(bytes, contentType);
    const missing: Array<{ digest: string }> = [];
    const blobDigests = [...new Set(parsed.blobs.map((b) => b.digest))];
    if (blobDigests.length) {
      const rows = await this.db.selectFrom('registry_blobs').select(['digest', 'size']).where('project_id', '=', repo.project_id).where('digest', 'in', blobDigests).execute();
      const sizes = new Map(rows.map((r) => [r.digest, r.size]));
      for (const b of parsed.blobs) {
        if (!sizes.has(b.digest)) missing.push({ digest: b.digest });
        else if (sizes.get(b.digest) !== b.size) throw regError('MANIFEST_INVALID', `manifest invalid: blob ${b.digest} is ${sizes.get(b.digest)} bytes, the manifest says ${b.size}`);
      }
    }
    const manifestDigests = [...new Set(parsed.manifests.map((m) => m.digest))];
    if (manifestDigests.length) {
      const rows = await this.db.selectFrom('registry_manifests').select('digest').where('repository_id', '=', repo.id).where('digest', 'in', manifestDigests).execute();
      const have = new Set(rows.map((r) => r.digest));
      for (const d of manifestDigests) if (!have.has(d)) missing.push({ digest: d });
    }
    if (missing.length) {
      throw regError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.map((m) => m.digest).join(', ')}, unknown to the repository`, missing);
    }
    if ((await this.storage.size(repo.project_id, manifestKey(digest))) !== bytes.length) {
      await this.storage.put(repo.project_id, manifestKey(digest), Readable.from([bytes]));
    }
    const now = nowIso();
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('registry_manifests').values({
        repository_id: repo.id, digest, media_type: parsed.mediaType, size: bytes.length, artifact_type: parsed.artifactType,
        subject: parsed.subject, annotations: parsed.annotations ? JSON.stringify(parsed.annotations) : null, created_at: now,
      }).onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()).execute();
      const refs = [
        ...blobDigests.map((child) => ({ repository_id: repo.id, digest, child, kind: 'blob' })),
        ...manifestDigests.map((child) => ({ repository_id: repo.id, digest, child, kind: 'manifest' })),
      ];
      if (refs.length) await tx.insertInto('registry_manifest_refs').values(refs).onConflict((oc) => oc.columns(['repository_id', 'digest', 'child']).doNothing()).execute();
      // Referenced now: garbage collection keeps them. Touching them (a new row version with a fresh time) makes a
      // collection deleting them concurrently re-check its condition and skip them; one collected between the check
      // above and now is missing here, and the manifest is refused.
      if (blobDigests.length) {
        const touched = await tx.updateTable('registry_blobs').set({ created_at: now }).where('project_id', '=', repo.project_id).where('digest', 'in', blobDigests).executeTakeFirst();
        if (Number(touched.numUpdatedRows) !== blobDigests.length) {
          const still = new Set((await tx.selectFrom('registry_blobs').select('digest').where('project_id', '=', repo.project_id).where('digest', 'in', blobDigests).execute()).map((r) => r.digest));
          const gone = blobDigests.filter((d) => !still.has(d));
          throw regError('MANIFEST_BLOB_UNKNOWN', `manifest references ${gone.join(', ')}, unknown to the repository`, gone.map((digest) => ({ digest })));
        }
      }
      if (blobDigests.length) {
        await tx.insertInto('registry_repository_blobs').values(blobDigests.map((d) => ({ repository_id: repo.id, digest: d, created_at: now })))
          .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()).execute();
      }
      for (const tag of new Set([...(isDigest(reference) ? [] : [reference]), ...tags])) {
        await tx.insertInto('registry_tags').values({ repository_id: repo.id, tag, digest, updated_at: now, image_id: null })
          .onConflict((oc) => oc.columns(['repository_id', 'tag']).doUpdateSet({ digest, updated_at: now })).execute();
      }
    });
    return { digest, parsed };
  }

  /**
   * Deletes a manifest by digest: its tags and references go with it (its
   * bytes at the next gc). Null when the repository has no such manifest;
   * else the Glance images its tags had.
   */
  async deleteManifest(repo: RepoRow, digest: string): Promise<string[] | null> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.deleteFrom('registry_manifests').where('repository_id', '=', repo.id).where('digest', '=', digest).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return null;
      await tx.deleteFrom('registry_manifest_refs').where('repository_id', '=', repo.id).where('digest', '=', digest).execute();
      const tags = await tx.selectFrom('registry_tags').select('image_id').where('repository_id', '=', repo.id).where('digest', '=', digest).execute();
      await tx.deleteFrom('registry_tags').where('repository_id', '=', repo.id).where('digest', '=', digest).execute();
      return tags.flatMap((t) => (t.image_id ? [t.image_id] : []));
    });
  }

  /** Deletes a tag; null when there is none, else the Glance image it had (or undefined). */
  async deleteTag(repo: RepoRow, tag: string): Promise<{ imageId: string | null } | null> {
    const row = await this.tag(repo, tag);
    if (!row) return null;
    const r = await this.db.deleteFrom('registry_tags').where('repository_id', '=', repo.id).where('tag', '=', tag).where('digest', '=', row.digest).executeTakeFirst();
    return Number(r.numDeletedRows) > 0 ? { imageId: row.image_id } : null;
  }

  async tag(repo: RepoRow, tag: string): Promise<{ digest: string; image_id: string | null } | undefined> {
    return this.db.selectFrom('registry_tags').select(['digest', 'image_id']).where('repository_id', '=', repo.id).where('tag', '=', tag).executeTakeFirst();
  }

  /** Records the tag's Glance image, if the tag still names that digest; whether it did. */
  async setTagImage(repo: RepoRow, tag: string, digest: string, imageId: string | null): Promise<boolean> {
    const r = await this.db.updateTable('registry_tags').set({ image_id: imageId }).where('repository_id', '=', repo.id).where('tag', '=', tag).where('digest', '=', digest).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** The Glance images of the repository's tags. */
  async tagImages(repo: RepoRow): Promise<string[]> {
    const rows = await this.db.selectFrom('registry_tags').select('image_id').where('repository_id', '=', repo.id).where('image_id', 'is not', null).execute();
    return rows.map((r) => r.image_id!);
  }

  async repoById(id: string): Promise<RepoRow | undefined> {
    return this.db.selectFrom('registry_repositories').select(['id', 'project_id', 'path', 'public']).where('id', '=', id).executeTakeFirst();
  }

  async blobSize(projectId: string, digest: string): Promise<number | undefined> {
    return (await this.db.selectFrom('registry_blobs').select('size').where('project_id', '=', projectId).where('digest', '=', digest).executeTakeFirst())?.size;
  }

  /** Tags in ASCII order after `last`, at most `n`; whether more follow. */
  async tags(repo: RepoRow, n: number, last: string | undefined): Promise<{ tags: string[]; more: boolean }> {
    const rows = await this.db.selectFrom('registry_tags').select('tag').where('repository_id', '=', repo.id).execute();
    const all = rows.map((r) => r.tag).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).filter((t) => last === undefined || t > last);
    return { tags: all.slice(0, n), more: all.length > n };
  }

  async tagsOf(repo: RepoRow, digest: string): Promise<string[]> {
    const rows = await this.db.selectFrom('registry_tags').select('tag').where('repository_id', '=', repo.id).where('digest', '=', digest).execute();
    return rows.map((r) => r.tag);
  }

  /** A page of the referrers list of a digest: descriptors of the repository's manifests whose subject it is, in digest order after `last`, and whether more follow. */
  async referrers(repo: RepoRow, digest: string, artifactType: string | undefined, limit: number, last?: string): Promise<{ manifests: Array<Record<string, unknown>>; more: boolean }> {
    let q = this.db.selectFrom('registry_manifests').select(['digest', 'media_type', 'size', 'artifact_type', 'annotations'])
      .where('repository_id', '=', repo.id).where('subject', '=', digest);
    if (artifactType !== undefined) q = q.where('artifact_type', '=', artifactType);
    if (last !== undefined) q = q.where('digest', '>', last);
    const rows = await q.orderBy('digest').limit(limit + 1).execute();
    const more = rows.length > limit;
    return { more, manifests: rows.slice(0, limit).map((r) => {
      const d: Record<string, unknown> = { mediaType: r.media_type, size: r.size, digest: r.digest };
      if (r.artifact_type) d.artifactType = r.artifact_type;
      if (r.annotations) d.annotations = JSON.parse(r.annotations);
      return d;
    }) };
  }

  /** Repositories of these projects plus every public one, as `{project id, path}`, sorted by path within project. */
  async repositories(projectIds: string[]): Promise<RepoRow[]> {
    let q = this.db.selectFrom('registry_repositories').select(['id', 'project_id', 'path', 'public']);
    q = projectIds.length ? q.where((eb) => eb.or([eb('project_id', 'in', projectIds), eb('public', '=', 1)])) : q.where('public', '=', 1);
    return q.execute();
  }
}

export function rangeHeaders(up: Pick<UploadRow, 'size'>): Record<string, string> {
  return { Range: `0-${Math.max(up.size - 1, 0)}` };
}

export { MediaType };
