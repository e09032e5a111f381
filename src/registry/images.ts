// Pushed images boot: every tag of a container image gets a Glance image
// (`container_format=docker`, `disk_format=raw`, named `<project>/<name>:<tag>`,
// owned by the project, private, or community when the repository is public), whose data the image service asks of the
// registry when it is read: an OCI image layout tar assembled on the fly from
// the manifest, its config and its layers (the archive the agents' image store
// takes, src/agent/drivers/container/oci.ts), never stored twice. An index is
// resolved to its linux/amd64 image. `openstack server create --image
// <project>/<name>:<tag>` then runs it with the runc driver like any image.
//
// A re-push of the tag to another digest makes a new Glance image and deletes
// the old one (agents cache images by id: a new id is new content); deleting
// the tag or its manifest deletes its image. Artifacts (a manifest whose
// config is no image config) get none.
import { PassThrough, Transform, type TransformCallback, type Writable } from 'node:stream';
import type { Logger } from 'pino';
import { KeyedLock } from '../common/keyed-lock.ts';
import { TarWriter } from '../common/tar.ts';
import type { ImageDataSource, ImageService } from '../image/service.ts';
import type { RegistryCore, RepoRow } from './core.ts';
import { MediaType } from './manifest.ts';
import { isDigest } from './names.ts';

/** A public repository's images are community images (any project may boot them, unlisted by default); else private. */
const visibilityOf = (repo: RepoRow) => (repo.public ? 'community' : 'private');

/** The prefix of the image service's keys this module serves: `registry/<repository id>/<manifest digest>`. */
export const IMAGE_PREFIX = 'registry';

const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);
const INDEXES = new Set<string>([MediaType.ociIndex, MediaType.dockerList]);

interface Descriptor { mediaType?: string; digest: string; size: number; platform?: { os?: string; architecture?: string } }

/** What goes into the archive of one image, in order. */
interface Layout {
  projectId: string;
  manifest: { digest: string; mediaType: string; bytes: Buffer };
  config: { digest: string; bytes: Buffer };
  layers: Array<{ digest: string; size: number }>;
}

const TAR_BLOCK = 512;
const padded = (n: number) => Math.ceil(n / TAR_BLOCK) * TAR_BLOCK;

function archiveMembers(l: Layout): Array<{ name: string; size: number; dir?: boolean }> {
  const seen = new Set<string>();
  const files: Array<{ name: string; size: number; dir?: boolean }> = [{ name: 'blobs', size: 0, dir: true }, { name: 'blobs/sha256', size: 0, dir: true }];
  for (const x of l.layers) {
    if (seen.has(x.digest)) continue;
    seen.add(x.digest);
    files.push({ name: `blobs/sha256/${x.digest.slice(7)}`, size: x.size });
  }
  if (!seen.has(l.config.digest)) files.push({ name: `blobs/sha256/${l.config.digest.slice(7)}`, size: l.config.bytes.length });
  files.push({ name: `blobs/sha256/${l.manifest.digest.slice(7)}`, size: l.manifest.bytes.length });
  files.push({ name: 'index.json', size: indexJson(l).length });
  files.push({ name: 'oci-layout', size: OCI_LAYOUT.length });
  return files;
}

const OCI_LAYOUT = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
const indexJson = (l: Layout) => Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: MediaType.ociIndex,
  manifests: [{ mediaType: l.manifest.mediaType, digest: l.manifest.digest, size: l.manifest.bytes.length }],
}));

/** The archive's exact size: a 512-byte header per member, its bytes padded to 512, two zero blocks at the end. */
export function archiveSize(l: Layout): number {
  return archiveMembers(l).reduce((n, m) => n + TAR_BLOCK + padded(m.size), 0) + 2 * TAR_BLOCK;
}

/** Passes on only bytes [start, end] of what flows through; `complete` once past the end (later bytes are dropped). */
class Slice extends Transform {
  complete = false;
  private at = 0;
  private readonly start: number;
  private readonly last: number;
  constructor(range: { start: number; end: number }) {
    super();
    this.start = range.start;
    this.last = range.end;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    if (this.complete) return done();
    const from = this.at;
    this.at += chunk.length;
    const a = Math.max(this.start - from, 0);
    const b = Math.min(this.last + 1 - from, chunk.length);
    if (b > a) this.push(chunk.subarray(a, b));
    if (this.at > this.last) {
      this.complete = true;
      this.push(null);
    }
    done();
  }
}

export class RegistryImages {
  private readonly core: RegistryCore;
  private readonly images: ImageService;
  private readonly log: Logger;
  private readonly lock = new KeyedLock();

  constructor(core: RegistryCore, images: ImageService, log: Logger) {
    this.core = core;
    this.images = images;
    this.log = log;
  }

  /** The image service's data source of these images. */
  source(): ImageDataSource {
    return {
      open: (key, range) => {
        const out = new PassThrough();
        this.writeArchive(key, out, range).catch((e) => out.destroy(e as Error));
        return out;
      },
      size: async (key) => {
        const l = await this.layoutOf(key).catch(() => undefined);
        return l ? archiveSize(l) : undefined;
      },
    };
  }

  private async layoutOf(key: string): Promise<Layout> {
    const m = /^registry\/([0-9a-f]{32})\/(sha256:[0-9a-f]{64})$/.exec(key);
    if (!m) throw Object.assign(new Error(`no registry image ${key}`), { code: 'ENOENT' });
    const repo = await this.core.repoById(m[1]!);
    if (!repo) throw Object.assign(new Error(`repository of ${key} is gone`), { code: 'ENOENT' });
    const l = await this.layout(repo, m[2]!);
    if (!l) throw Object.assign(new Error(`${key} is no container image`), { code: 'ENOENT' });
    return l;
  }

  /** The image a manifest digest names in the repository (an index: its linux/amd64 image); null when it is none. */
  async layout(repo: RepoRow, digest: string, depth = 0): Promise<Layout | null> {
    const row = await this.core.manifest(repo, digest);
    if (!row) return null;
    const bytes = await this.core.manifestBytes(repo, row.digest);
    const doc = JSON.parse(bytes.toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    if (INDEXES.has(row.media_type)) {
      if (depth > 3) return null;
      const pick = (doc.manifests ?? []).find((d) => !d.platform || ((d.platform.os ?? 'linux') === 'linux' && (d.platform.architecture ?? 'amd64') === 'amd64'));
      return pick && isDigest(pick.digest) ? this.layout(repo, pick.digest, depth + 1) : null;
    }
    if (!doc.config || !IMAGE_CONFIGS.has(doc.config.mediaType ?? '')) return null;
    const configStream = await this.core.openBlob(repo.project_id, doc.config.digest);
    const chunks: Buffer[] = [];
    for await (const c of configStream) chunks.push(c as Buffer);
    const layers: Layout['layers'] = [];
    for (const l of doc.layers ?? []) {
      const size = await this.core.blobSize(repo.project_id, l.digest);
      if (size === undefined) return null;
      layers.push({ digest: l.digest, size });
    }
    return {
      projectId: repo.project_id,
      manifest: { digest: row.digest, mediaType: row.media_type, bytes },
      config: { digest: doc.config.digest, bytes: Buffer.concat(chunks) },
      layers,
    };
  }

  private async writeArchive(key: string, out: PassThrough, range?: { start: number; end: number }): Promise<void> {
    const l = await this.layoutOf(key);
    const slice = range ? new Slice(range) : undefined;
    slice?.pipe(out);
    const sink: Writable = slice ?? out;
    const tar = new TarWriter(sink);
    const seen = new Set<string>();
    for (const m of archiveMembers(l)) {
      // a reader gone, or a range already served: stop reading blobs
      if (out.destroyed || slice?.complete) return;
      if (m.dir) {
        await tar.add({ name: m.name, type: 'dir' });
      } else if (m.name === 'index.json') {
        await tar.add({ name: m.name, type: 'file' }, indexJson(l));
      } else if (m.name === 'oci-layout') {
        await tar.add({ name: m.name, type: 'file' }, OCI_LAYOUT);
      } else {
        const digest = `sha256:${m.name.slice('blobs/sha256/'.length)}`;
        if (seen.has(digest)) continue;
        seen.add(digest);
        if (digest === l.manifest.digest) await tar.add({ name: m.name, type: 'file' }, l.manifest.bytes);
        else if (digest === l.config.digest && !l.layers.some((x) => x.digest === digest)) await tar.add({ name: m.name, type: 'file' }, l.config.bytes);
        else await tar.add({ name: m.name, type: 'file', size: m.size }, await this.core.openBlob(l.projectId, digest));
      }
    }
    await tar.finish();
    if (!slice?.complete) sink.end();
  }

  /**
   * After a push: the Glance image of each tag names the tag's manifest
   * (made, or replaced when the tag moved). Failures are logged, never the push's.
   */
  async tagged(repo: RepoRow, label: string, tags: string[]): Promise<void> {
    for (const tag of tags) {
      await this.lock.run(`${repo.id}:${tag}`, () => this.syncTag(repo, label, tag)).catch((err) => {
        this.log.warn({ err, repository: `${label}/${repo.path}`, tag }, 'registry: the Glance image of a tag could not be made');
      });
    }
  }

  private async syncTag(repo: RepoRow, label: string, tag: string): Promise<void> {
    const row = await this.core.tag(repo, tag);
    if (!row) return;
    const current = row.image_id ? await this.images.getImage(row.image_id) : undefined;
    if (current && current.properties.stratus_registry_digest === row.digest) return;
    const layout = await this.layout(repo, row.digest);
    let made: string | null = null;
    if (layout) {
      const name = `${label}/${repo.path}:${tag}`;
      const img = await this.images.createSourcedImage({
        name, owner: repo.project_id, visibility: visibilityOf(repo), container_format: 'docker', disk_format: 'raw',
        properties: { stratus_registry_image: name, stratus_registry_digest: row.digest },
      }, `${IMAGE_PREFIX}/${repo.id}/${row.digest}`, archiveSize(layout));
      made = img.id;
    }
    if (!(await this.core.setTagImage(repo, tag, row.digest, made))) {
      // the tag moved or went meanwhile: this image is nobody's
      if (made) await this.images.deleteImage(made);
      return;
    }
    if (current) await this.dropImages([current.id]);
  }

  /** After a repository's visibility changed: its tags' images follow (community for a public repository). */
  async visibilityChanged(repo: RepoRow): Promise<void> {
    for (const id of await this.core.tagImages(repo)) {
      await this.images.updateImage(id, { visibility: visibilityOf(repo) }).catch((err) => {
        if ((err as { status?: number }).status !== 404) this.log.warn({ err, image: id }, 'registry: a tag\'s Glance image could not follow the repository\'s visibility');
      });
    }
  }

  /** Deletes the Glance images of removed tags. */
  async dropImages(ids: string[]): Promise<void> {
    for (const id of ids) {
      await this.images.deleteImage(id).catch((err) => {
        if ((err as { status?: number }).status !== 404) this.log.warn({ err, image: id }, 'registry: a tag\'s Glance image could not be deleted');
      });
    }
  }
}
