// How the compute API sees images: through the image service's in-process
// interface (getImage, listImages, canSee, createImage, ...), never over HTTP.
// The image service owns the data; this module only adapts it to what Nova
// needs (visibility to the caller, status, formats, sizes, properties).
import type { Credentials } from '../../http/auth.ts';
import type { ImageService } from '../../image/service.ts';

export interface ImageInfo {
  id: string;
  name: string | null;
  status: string;
  visibility: string;
  owner: string | null;
  minDisk: number;
  minRam: number;
  size: number | null;
  diskFormat: string | null;
  containerFormat: string | null;
  createdAt: string;
  updatedAt: string;
  protected: boolean;
  /** Free-form properties (Glance's additional properties). */
  properties: Record<string, string>;
}

export interface ImageAccess {
  /** The image if it exists and the caller may see it. */
  get(cred: Credentials, id: string): Promise<ImageInfo | undefined>;
  /** The images the caller may see. */
  list(cred: Credentials): Promise<ImageInfo[]>;
  /** Records a new (queued) image owned by the caller's project, as a snapshot of a server. */
  createSnapshot(cred: Credentials, spec: { name: string; properties: Record<string, string>; containerFormat: string; diskFormat: string; minDisk: number; minRam: number }): Promise<ImageInfo>;
  delete(cred: Credentials, id: string): Promise<void>;
  /** Replaces (or merges into) an image's free-form properties. */
  setProperties(cred: Credentials, id: string, props: Record<string, string | null>, replace: boolean): Promise<ImageInfo>;
  /** False until the image service offers the calls above. */
  readonly available: boolean;
}

const KNOWN = new Set(['id', 'name', 'status', 'visibility', 'owner', 'min_disk', 'min_ram', 'size', 'virtual_size', 'disk_format',
  'container_format', 'created_at', 'updated_at', 'protected', 'checksum', 'os_hash_algo', 'os_hash_value', 'tags', 'locations',
  'direct_url', 'file', 'schema', 'self', 'extra', 'properties', 'deleted', 'deleted_at', 'os_hidden', 'stores', 'store',
  'location', 'path', 'members', 'is_public']);

/** Normalises whatever row shape the image service hands out. */
export function toImageInfo(r: any): ImageInfo {
  const props: Record<string, string> = {};
  const addAll = (o: unknown) => {
    if (!o) return;
    const obj = typeof o === 'string' ? safeJson(o) : o;
    if (obj && typeof obj === 'object') for (const [k, v] of Object.entries(obj as object)) if (v !== null && v !== undefined) props[k] = String(v);
  };
  addAll(r.properties);
  addAll(r.extra);
  for (const [k, v] of Object.entries(r)) if (!KNOWN.has(k) && v !== null && v !== undefined && typeof v !== 'object') props[k] = String(v);
  return {
    id: String(r.id), name: r.name ?? null, status: String(r.status ?? 'queued'), visibility: String(r.visibility ?? 'shared'),
    owner: r.owner ?? null, minDisk: Number(r.min_disk ?? r.minDisk ?? 0), minRam: Number(r.min_ram ?? r.minRam ?? 0),
    size: r.size === null || r.size === undefined ? null : Number(r.size), diskFormat: r.disk_format ?? r.diskFormat ?? null,
    containerFormat: r.container_format ?? r.containerFormat ?? null, createdAt: String(r.created_at ?? r.createdAt ?? new Date(0).toISOString()),
    updatedAt: String(r.updated_at ?? r.updatedAt ?? r.created_at ?? new Date(0).toISOString()), protected: r.protected === true || r.protected === 1,
    properties: props,
  };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/**
 * Adapts the image service's in-process calls (getImage(id), canSee(cred, image),
 * listImages(cred, query), createImage(fields), updateImage(id, changes),
 * deleteImage(id)); missing ones behave as "no image".
 */
export function imageAccess(service: ImageService): ImageAccess {
  const s = service as unknown as Record<string, any>;
  const fn = (name: string) => (typeof s[name] === 'function' ? (s[name] as (...a: any[]) => any).bind(service) : undefined);
  const getImage = fn('getImage');
  const listImages = fn('listImages');
  const canSee = fn('canSee');
  const createImage = fn('createImage');
  const deleteImage = fn('deleteImage');
  const updateImage = fn('updateImage');
  const visible = (cred: Credentials, row: any) => (canSee ? Boolean(canSee(cred, row)) : row.status !== 'deleted');
  const load = async (cred: Credentials, id: string) => {
    if (!getImage) return undefined;
    const row = await getImage(id);
    return row && visible(cred, row) ? row : undefined;
  };
  return {
    available: Boolean(getImage && createImage),
    async get(cred, id) {
      const row = await load(cred, id);
      return row ? toImageInfo(row) : undefined;
    },
    async list(cred) {
      if (!listImages) return [];
      const rows = (await listImages(cred, {})) as any[];
      return (rows ?? []).filter((r) => visible(cred, r)).map(toImageInfo);
    },
    async createSnapshot(cred, spec) {
      if (!createImage) throw new Error('the image service cannot create images');
      const row = await createImage({
        name: spec.name, container_format: spec.containerFormat, disk_format: spec.diskFormat, visibility: 'private',
        min_disk: spec.minDisk, min_ram: spec.minRam, owner: cred.projectId, properties: spec.properties,
      });
      return toImageInfo(row);
    },
    async delete(_cred, id) {
      if (!deleteImage) throw new Error('the image service cannot delete images');
      await deleteImage(id);
    },
    async setProperties(cred, id, props, replace) {
      if (!updateImage) throw new Error('the image service cannot update images');
      const changes: Record<string, string | null> = { ...props };
      if (replace) {
        const row = await load(cred, id);
        for (const k of Object.keys(row?.properties ?? {})) if (!(k in changes)) changes[k] = null;
      }
      return toImageInfo(await updateImage(id, { properties: changes }));
    },
  };
}
