// How the compute API sees images: through the image service's in-process
// interface (getImage, canSee, listImages, createImage, updateImage,
// deleteImage), never over HTTP.
// The image service owns the data; this module only adapts it to what Nova
// needs (visibility to the caller, status, formats, sizes, properties).
import type { Credentials } from '../../http/auth.ts';
import type { ImageRecord, ImageService } from '../../image/service.ts';

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
  /** `hidden`: Glance's os_hidden (left out of image lists; a migration's copy of a disk). */
  createSnapshot(cred: Credentials, spec: { name: string; properties: Record<string, string>; containerFormat: string; diskFormat: string; minDisk: number; minRam: number; hidden?: boolean }): Promise<ImageInfo>;
  delete(cred: Credentials, id: string): Promise<void>;
  /** The image whoever owns it (for housekeeping, not for callers). */
  getRecord(id: string): Promise<ImageInfo | undefined>;
  deleteById(id: string): Promise<void>;
  /** Replaces (or merges into) an image's free-form properties. */
  setProperties(cred: Credentials, id: string, props: Record<string, string | null>, replace: boolean): Promise<ImageInfo>;
  /** Whether images can be created (snapshots). */
  readonly available: boolean;
}

/** An image record as Nova needs it; properties with a null value are left out. */
export function toImageInfo(r: ImageRecord): ImageInfo {
  const props: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.properties ?? {})) if (v !== null && v !== undefined) props[k] = String(v);
  return {
    id: r.id, name: r.name, status: r.status, visibility: r.visibility, owner: r.owner, minDisk: r.min_disk, minRam: r.min_ram,
    size: r.size, diskFormat: r.disk_format, containerFormat: r.container_format, createdAt: r.created_at, updatedAt: r.updated_at,
    protected: r.protected, properties: props,
  };
}

/** The image service's in-process calls, seen as Nova needs them. */
export function imageAccess(images: ImageService): ImageAccess {
  const load = async (cred: Credentials, id: string) => {
    const row = await images.getImage(id);
    return row && images.canSee(cred, row) ? row : undefined;
  };
  return {
    available: true,
    async get(cred, id) {
      const row = await load(cred, id);
      return row ? toImageInfo(row) : undefined;
    },
    async list(cred) {
      return (await images.listImages(cred, {})).filter((r) => images.canSee(cred, r)).map(toImageInfo);
    },
    async createSnapshot(cred, spec) {
      const row = await images.createImage({
        name: spec.name, container_format: spec.containerFormat, disk_format: spec.diskFormat, visibility: 'private',
        min_disk: spec.minDisk, min_ram: spec.minRam, owner: cred.projectId, properties: spec.properties, os_hidden: spec.hidden ?? false,
      });
      return toImageInfo(row);
    },
    async delete(_cred, id) {
      await images.deleteImage(id);
    },
    async getRecord(id) {
      const row = await images.getImage(id);
      return row ? toImageInfo(row) : undefined;
    },
    async deleteById(id) {
      await images.deleteImage(id);
    },
    async setProperties(cred, id, props, replace) {
      const changes: Record<string, string | null> = { ...props };
      if (replace) {
        const row = await load(cred, id);
        for (const k of Object.keys(row?.properties ?? {})) if (!(k in changes)) changes[k] = null;
      }
      return toImageInfo(await images.updateImage(id, { properties: changes }));
    },
  };
}
