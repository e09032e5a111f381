// Image data: the streamed upload (PUT file), the glance-direct stage and
// import, and recovery after a restart. Statuses move by compare-and-set:
//   upload:  queued -> saving -> active        (failure: back to queued)
//   stage:   queued -> uploading               (failure: back to queued)
//   import:  uploading -> importing -> active  (failure: back to queued)
// Whatever fails, the store keeps no partial data (see store.ts) and the image
// is left queued with no size, ready for another upload, as Glance does.
import type { Readable } from 'node:stream';
import { ApiError, badRequest, conflict } from '../common/errors.ts';
import type { ImageContext } from './context.ts';
import { objectBody } from './http.ts';
import { loadImage, setStatus, type ImageRecord } from './images.ts';
import { CONTAINER_IMAGE_FORMATS, ContainerArchiveInspector, DiskInspector, InvalidImageDataError } from './inspect.ts';
import { TooLargeError, type DataInspector } from './store.ts';

export const stagingKey = (id: string) => `staging/${id}`;

const transition = (from: string, to: string) => conflict(`Image status transition from ${from} to ${to} is not allowed`);

function requireFormats(img: ImageRecord): void {
  const missing = (['disk_format', 'container_format'] as const).filter((k) => !img[k]);
  if (missing.length === 1) throw badRequest(`Property ${missing[0]} must be set prior to saving data.`);
  if (missing.length > 1) throw badRequest(`Properties ${missing.join(', ')} must be set prior to saving data.`);
}

function checkSizeHint(ictx: ImageContext, sizeHint: number | undefined): void {
  if (sizeHint !== undefined && sizeHint > ictx.config.sizeCap) {
    throw new ApiError('PayloadTooLarge', `The incoming image is too large: ${sizeHint} bytes exceeds the limit of ${ictx.config.sizeCap} bytes.`, { Connection: 'close' });
  }
}

/** Maps a failed put to Glance's answer. */
function putError(e: unknown, what: string): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof TooLargeError) return new ApiError('PayloadTooLarge', e.message, { Connection: 'close' });
  if (e instanceof InvalidImageDataError) return new ApiError('UnsupportedMediaType', e.message, { Connection: 'close' });
  return badRequest(`The ${what} could not be read: the upload was interrupted.`);
}

interface Inspection { inspector: DataInspector; virtualSize(): number | null }

function inspectionFor(img: ImageRecord): Inspection {
  if (img.container_format && CONTAINER_IMAGE_FORMATS.has(img.container_format)) {
    return { inspector: new ContainerArchiveInspector(), virtualSize: () => null };
  }
  const disk = new DiskInspector(img.container_format === 'bare' ? img.disk_format : null);
  return { inspector: disk, virtualSize: () => disk.virtualSize() };
}

/** Streams data into the store as the image's data, then makes the image active. */
async function storeData(ictx: ImageContext, img: ImageRecord, data: Readable, from: string, what: string): Promise<ImageRecord> {
  const { inspector, virtualSize } = inspectionFor(img);
  let put;
  try {
    put = await ictx.store.put(img.id, data, { maxSize: ictx.config.sizeCap, inspector });
  } catch (e) {
    await setStatus(ictx.db, img.id, from, 'queued', { size: null, virtual_size: null });
    ictx.log.info({ image: img.id, err: (e as Error).message }, `image ${what} failed; image back to queued`);
    throw putError(e, what);
  }
  const ok = await setStatus(ictx.db, img.id, from, 'active', {
    size: put.size, virtual_size: virtualSize(), checksum: put.md5, os_hash_algo: 'sha512', os_hash_value: put.sha512,
    location: img.id,
  });
  if (!ok) {
    // Deleted (or otherwise moved on) while the data streamed in: keep nothing.
    await ictx.store.delete(img.id);
    throw new ApiError('Gone', `Image ${img.id} could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded.`);
  }
  return (await loadImage(ictx.db, img.id))!;
}

/** PUT /v2/images/{id}/file and uploadImageData(): queued -> saving -> active. */
export async function uploadImageData(ictx: ImageContext, img: ImageRecord, data: Readable, sizeHint?: number): Promise<ImageRecord> {
  if (img.status !== 'queued') throw transition(img.status, 'saving');
  checkSizeHint(ictx, sizeHint);
  requireFormats(img);
  if (!(await setStatus(ictx.db, img.id, 'queued', 'saving'))) {
    const now = await loadImage(ictx.db, img.id);
    throw transition(now?.status ?? 'deleted', 'saving');
  }
  return storeData(ictx, img, data, 'saving', 'image data');
}

/** PUT /v2/images/{id}/stage: queued -> uploading, the data kept in the staging area. */
export async function stageImageData(ictx: ImageContext, img: ImageRecord, data: Readable, sizeHint?: number): Promise<void> {
  if (img.status !== 'queued') throw transition(img.status, 'uploading');
  checkSizeHint(ictx, sizeHint);
  if (!(await setStatus(ictx.db, img.id, 'queued', 'uploading'))) throw transition('unknown', 'uploading');
  let size: number;
  try {
    size = (await ictx.store.put(stagingKey(img.id), data, { maxSize: ictx.config.sizeCap })).size;
  } catch (e) {
    await setStatus(ictx.db, img.id, 'uploading', 'queued', { size: null, virtual_size: null });
    throw putError(e, 'staged image data');
  }
  if (!(await setStatus(ictx.db, img.id, 'uploading', 'uploading', { size }))) {
    await ictx.store.delete(stagingKey(img.id));
    throw new ApiError('Gone', `Image ${img.id} could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded.`);
  }
}

/** Runs the import of staged data in the background: importing -> active, or back to queued. */
function runImport(ictx: ImageContext, img: ImageRecord): void {
  const job = (async () => {
    const staged = ictx.store.open(stagingKey(img.id));
    try {
      await storeData(ictx, img, staged, 'importing', 'staged image data');
      ictx.log.info({ image: img.id }, 'glance-direct import done');
    } catch (e) {
      ictx.log.warn({ image: img.id, err: (e as Error).message }, 'glance-direct import failed');
    } finally {
      staged.destroy();
      await ictx.store.delete(stagingKey(img.id)).catch(() => {});
    }
  })();
  ictx.background.add(job);
  void job.finally(() => ictx.background.delete(job));
}

/** POST /v2/images/{id}/import with method glance-direct: 202, then importing -> active. */
export async function importImage(ictx: ImageContext, img: ImageRecord, body: unknown): Promise<void> {
  const b = objectBody(body, 'Body expected in request.') as { method?: { name?: unknown }; all_stores?: unknown; all_stores_must_succeed?: unknown; stores?: unknown };
  if (!b.method || typeof b.method !== 'object') throw badRequest("Import request requires a 'method' field.");
  if (b.method.name === undefined) throw badRequest("Import request requires a 'name' field.");
  const method = b.method.name;
  if (typeof method !== 'string' || !ictx.config.importMethods.includes(method)) throw badRequest(`Unknown import method name '${String(method)}'.`);
  if (b.all_stores_must_succeed !== undefined && typeof b.all_stores_must_succeed !== 'boolean') {
    throw badRequest("'all_stores_must_succeed' must be boolean value only");
  }
  if (b.all_stores !== undefined && typeof b.all_stores !== 'boolean') throw badRequest("'all_stores' must be boolean value only");
  if (b.stores !== undefined) throw badRequest('Stores parameter and x-image-meta-store header can only be specified when multistore is enabled.');
  if (b.all_stores_must_succeed === false) throw badRequest('All_stores_must_succeed can only be set with enabled_backends');
  if (img.status === 'active') throw conflict('Image with status active cannot be target for import');
  if (img.status !== 'uploading') throw conflict("Image needs to be staged before 'glance-direct' method can be used");
  if (!img.container_format) throw conflict("'container_format' needs to be set before import");
  if (!img.disk_format) throw conflict("'disk_format' needs to be set before import");
  if (!(await setStatus(ictx.db, img.id, 'uploading', 'importing'))) {
    throw conflict(`New operation on image '${img.id}' is not permitted as prior operation is still in progress`);
  }
  runImport(ictx, { ...img, status: 'importing' });
}

/**
 * An image that has data (its record says so) whose bytes this replica's store
 * does not hold: the image directory is not shared between the replicas, or
 * the file was lost. A 503 (the data may be reachable through another replica
 * or once the storage is back), never an empty 204 for an active image.
 */
export const missingData = (id: string) => new ApiError('Unavailable',
  `The data of image ${id} is not in this replica's image store. Several replicas need one image store on shared storage (--image-dir).`);

/** Opens the data of an image that has some (active or deactivated). */
export function openImageData(ictx: ImageContext, img: ImageRecord, range?: { start: number; end: number }): Readable {
  if (!img.location) throw new ApiError('NotFound', `Image ${img.id} has no data.`);
  return ictx.store.open(img.location, range);
}

/** Removes an image's data and staged data. */
export async function deleteImageData(ictx: ImageContext, img: ImageRecord): Promise<void> {
  await ictx.store.delete(img.location ?? img.id);
  await ictx.store.delete(stagingKey(img.id));
}

/**
 * After a restart: partial writes are gone (store.recover), so an image caught
 * saving goes back to queued; a staged image whose import was running imports
 * again; staging without its data goes back to queued.
 */
export async function recoverImages(ictx: ImageContext): Promise<void> {
  await ictx.store.recover();
  const stuck = await ictx.db.selectFrom('image_images').select(['id', 'status'])
    .where('status', 'in', ['saving', 'uploading', 'importing']).where('deleted_at', 'is', null).execute();
  for (const row of stuck) {
    if (row.status === 'saving') {
      await setStatus(ictx.db, row.id, 'saving', 'queued', { size: null, virtual_size: null });
      ictx.log.info({ image: row.id }, 'upload interrupted by a restart; image back to queued');
      continue;
    }
    const staged = await ictx.store.size(stagingKey(row.id));
    if (staged === undefined) {
      await setStatus(ictx.db, row.id, row.status, 'queued', { size: null, virtual_size: null });
      ictx.log.info({ image: row.id }, 'staged data lost by a restart; image back to queued');
    } else if (row.status === 'importing') {
      const img = await loadImage(ictx.db, row.id);
      if (img) runImport(ictx, img);
    }
  }
}
