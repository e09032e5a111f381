// The image service (Glance v2) under /image: its routes and policy, and the
// in-process interface the compute service and agents use (never HTTP to
// ourselves). Image bytes live in a store (store.ts: files under
// DATA_DIR/images), records in the database (schema.ts).
//
// For other services:
//   getImage(id)              the record (undefined when absent or deleted)
//   canSee(cred, image)       whether a caller may know the image (Glance's visibility rules)
//   listImages(cred, query)   GET /v2/images for that caller: Glance's query parameters
//                             (name, status, visibility, member_status, tag, limit, marker, sort...)
//   createImage(fields)       a queued image (e.g. a server snapshot), owner given
//   uploadImageData(id, s)    streams data in, as PUT /v2/images/{id}/file: queued -> saving -> active
//   openImageData(id)         a stream of the data of an active (or deactivated) image
//   imageDataPath(id)         the local file of that data when the store keeps files on this
//                             host (read it, never write or move it), else undefined
//   updateImage(id, changes)  sets attributes and extra properties (null removes a property)
//   deleteImage(id)           deletes the record and its data (protected images too)
//   addDataSource(prefix, s)  serves the data of images located under `<prefix>/` from s (the registry's images)
//   createSourcedImage(f, location, size)  an active image whose data such a source serves
// Errors are ApiErrors carrying Glance's status and message.
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ApiError, conflict, notFound } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import type { Credentials } from '../http/auth.ts';
import type { Service } from '../http/service.ts';
import { parseJsonBody } from '../http/server.ts';
import { defaultImageConfig, type ImageConfig, type ImageContext } from './context.ts';
import * as data from './data.ts';
import { renderImageError } from './http.ts';
import {
  canSee, createImageRecord, listImages, loadImage, markDeleted, newImageRecord, saveImage,
  type ImageListQuery, type ImageMember, type ImageRecord, type NewImageFields,
} from './images.ts';
import { schemaViolation } from './jsonschema.ts';
import { imageRules } from './policy.ts';
import { dataRoutes } from './routes/data.ts';
import { discoveryRoutes, PREFIX } from './routes/discovery.ts';
import { imagesRoutes } from './routes/images.ts';
import { membersRoutes } from './routes/members.ts';
import { metadefRoutes } from './routes/metadefs.ts';
import { IMAGE_SCHEMA } from './schemas.ts';
import { FileStore, SourcedStore, type ImageDataSource, type ImageStore } from './store.ts';

export type { ImageRecord, ImageMember, ImageListQuery, NewImageFields, ImageDataSource };

export interface ImageDeps {
  db: Db;
  log: Logger;
  dataDir: string;
  /** Defaults to files under DATA_DIR/images. */
  store?: ImageStore;
  config?: Partial<ImageConfig>;
}

/** Attributes updateImage may set; properties with a null value are removed. */
export interface ImageChanges {
  name?: string | null;
  visibility?: string;
  protected?: boolean;
  os_hidden?: boolean;
  min_disk?: number;
  min_ram?: number;
  disk_format?: string | null;
  container_format?: string | null;
  owner?: string | null;
  tags?: string[];
  properties?: Record<string, string | null>;
}

export interface ImageService {
  service: Service;
  /** Recovers interrupted uploads and imports. */
  start(): Promise<void>;
  /** Waits for imports in flight. */
  stop(): Promise<void>;
  getImage(id: string): Promise<ImageRecord | undefined>;
  canSee(cred: Credentials, image: ImageRecord): boolean;
  listImages(cred: Credentials, query?: ImageListQuery): Promise<ImageRecord[]>;
  createImage(fields: NewImageFields & { owner: string | null }): Promise<ImageRecord>;
  uploadImageData(id: string, stream: Readable, sizeHint?: number): Promise<ImageRecord>;
  openImageData(id: string): Readable;
  imageDataPath(id: string): Promise<string | undefined>;
  updateImage(id: string, changes: ImageChanges): Promise<ImageRecord>;
  deleteImage(id: string): Promise<void>;
  /** Data of images located under `<prefix>/...` comes from `source`, made when read (never kept by the store). */
  addDataSource(prefix: string, source: ImageDataSource): void;
  /** A new active image whose data a source serves: `location` under its prefix, `size` bytes (no checksum: the bytes are never all read here). */
  createSourcedImage(fields: NewImageFields & { owner: string | null }, location: string, size: number): Promise<ImageRecord>;
}

const JSON_PATCH_TYPES = ['application/openstack-images-v2.0-json-patch', 'application/openstack-images-v2.1-json-patch'];

export function createImageService(deps: ImageDeps): ImageService {
  const store = new SourcedStore(deps.store ?? new FileStore(join(deps.dataDir, 'images')));
  const ictx: ImageContext = {
    db: deps.db,
    log: deps.log,
    store,
    config: { ...defaultImageConfig, ...deps.config },
    background: new Set(),
  };

  const live = async (id: string): Promise<ImageRecord> => {
    const img = await loadImage(ictx.db, id);
    if (!img || img.deleted_at) throw notFound(`No image found with ID ${id}`);
    return img;
  };

  const service: Service = {
    name: 'image',
    prefix: PREFIX,
    routes: [...discoveryRoutes(ictx), ...imagesRoutes(ictx), ...dataRoutes(ictx), ...membersRoutes(ictx), ...metadefRoutes(ictx)],
    rules: imageRules,
    renderError: renderImageError,
    setup(app: FastifyInstance) {
      // Image data is handed to the route as the request stream itself: never buffered.
      app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
      // Data routes take octet-stream only: refuse anything else before a parser reads it (415, as Glance).
      app.addHook('preParsing', async (req) => {
        const url = req.routeOptions.url ?? '';
        if (req.method !== 'PUT' || !/\/(file|stage)$/.test(url)) return;
        const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
        if (type !== 'application/octet-stream' && hasBody) {
          throw new ApiError('UnsupportedMediaType', `Invalid content type ${type || 'None'}`);
        }
      });
      app.addContentTypeParser(JSON_PATCH_TYPES, { parseAs: 'string' }, parseJsonBody);
    },
  };

  return {
    service,
    async start() {
      await data.recoverImages(ictx);
    },
    async stop() {
      await Promise.allSettled([...ictx.background]);
    },
    async getImage(id) {
      const img = await loadImage(ictx.db, id);
      return img && !img.deleted_at ? img : undefined;
    },
    canSee,
    async listImages(cred, query = {}) {
      return (await listImages(ictx.db, cred, query)).images;
    },
    async createImage(fields) {
      const { properties, ...attrs } = fields;
      const err = schemaViolation(IMAGE_SCHEMA, { ...properties, ...attrs });
      if (err) throw new ApiError('BadRequest', `Provided object does not match schema 'image': ${err}`);
      return createImageRecord(ictx.db, newImageRecord(fields, fields.owner));
    },
    async uploadImageData(id, stream, sizeHint) {
      return data.uploadImageData(ictx, await live(id), stream, sizeHint);
    },
    openImageData(id) {
      // A stream at once (callers may pipe it straight away); a missing image errors it.
      const out = new PassThrough();
      live(id).then((img) => {
        if (!img.location) throw conflict(`Image ${id} has no data (status ${img.status}).`);
        const src = data.openImageData(ictx, img);
        src.on('error', (e) => out.destroy(e));
        src.pipe(out);
      }).catch((e) => out.destroy(e as Error));
      return out;
    },
    async imageDataPath(id) {
      const img = await live(id);
      if (!img.location || !ictx.store.localPath) return undefined;
      return ictx.store.localPath(img.location);
    },
    async updateImage(id, changes) {
      const img = await live(id);
      const { properties, ...attrs } = changes;
      const next: ImageRecord = { ...img, ...attrs, properties: { ...img.properties }, updated_at: new Date().toISOString() };
      for (const [k, v] of Object.entries(properties ?? {})) {
        if (v === null) delete next.properties[k];
        else next.properties[k] = v;
      }
      if (attrs.tags) next.tags = [...new Set(attrs.tags)].sort();
      const err = schemaViolation(IMAGE_SCHEMA, { ...next.properties, name: next.name, visibility: next.visibility, disk_format: next.disk_format, container_format: next.container_format });
      if (err) throw new ApiError('BadRequest', `Provided object does not match schema 'image': ${err}`);
      if (!(await saveImage(ictx.db, next, { tags: attrs.tags !== undefined }))) throw notFound(`No image found with ID ${id}`);
      return (await loadImage(ictx.db, id))!;
    },
    async deleteImage(id) {
      const img = await live(id);
      await markDeleted(ictx.db, id);
      await data.deleteImageData(ictx, img);
    },
    addDataSource(prefix, source) {
      store.addSource(prefix, source);
    },
    async createSourcedImage(fields, location, size) {
      if (!store.sourceOf(location)) throw new Error(`no image data source serves ${location}`);
      const { properties, ...attrs } = fields;
      const err = schemaViolation(IMAGE_SCHEMA, { ...properties, ...attrs });
      if (err) throw new ApiError('BadRequest', `Provided object does not match schema 'image': ${err}`);
      const rec = newImageRecord(fields, fields.owner);
      return createImageRecord(ictx.db, { ...rec, status: 'active', size, location });
    },
  };
}
