// Volumes and Glance images: the image metadata a volume made from an image
// keeps (Cinder's volume_glance_metadata), and os-volume_upload_image, which
// makes a queued Glance image that the volume host's agent fills with the
// volume's data (the spec's `upload`, protocol.ts; the agent PUTs the bytes to
// /agent/v1/images/{id}/file, which takes them because the volume is
// `uploading` to that image: ServerVolumes.uploading). The volume is
// `uploading` until the agent reports the image filled (lifecycle.ts), then
// back to available, or in-use for a forced upload of an attached volume.
import type { Kysely } from 'kysely';
import type { ImageRecord } from '../image/service.ts';
import { isAdmin } from '../http/policy.ts';
import type { RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { badRequest, invalidVolume } from './errors.ts';
import { mv } from './http.ts';
import { textOf } from './input.ts';
import { uploadOf } from './lifecycle.ts';
import type { VolumeTables } from './schema.ts';
import { typeSpecs } from './types.ts';
import { cinderTime, parseBoolean, type VolumeRow } from './view.ts';

type VDb = Kysely<VolumeTables>;

/** The image attributes Cinder copies to a volume made from it; its properties follow. */
const CORE = ['image_id', 'image_name', 'checksum', 'container_format', 'disk_format', 'min_disk', 'min_ram', 'size'] as const;

/** Cinder's volume_glance_metadata of an image: its core attributes (those set) and its properties, as strings. */
export function imageMetadataOf(img: ImageRecord): Record<string, string> {
  const core: Record<(typeof CORE)[number], unknown> = {
    image_id: img.id, image_name: img.name, checksum: img.checksum, container_format: img.container_format,
    disk_format: img.disk_format, min_disk: img.min_disk, min_ram: img.min_ram, size: img.size,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(img.properties)) if (v !== null && v !== undefined) out[k] = String(v);
  for (const [k, v] of Object.entries(core)) if (v !== null && v !== undefined) out[k] = String(v);
  return out;
}

const UPLOAD_FORMATS = ['raw', 'qcow2'];

/** os-volume_upload_image: the queued image made, the volume `uploading` with the upload in its spec. */
export async function uploadAction(ctx: VolumeContext, rc: RouteContext, row: VolumeRow, args: Record<string, unknown>): Promise<unknown> {
  const db = ctx.vdb;
  const images = ctx.images;
  if (!images) throw badRequest('The volume action os-volume_upload_image is not supported by this cloud: no image service.');
  const v = mv(rc);
  const imageName = textOf('image_name', args.image_name);
  if (!imageName) throw badRequest(`Invalid input for field/attribute image_name. Value: ${JSON.stringify(args.image_name ?? null)}. 'image_name' is a required property`);
  const bool = (k: string, d: boolean): boolean => {
    const x = args[k];
    if (x === undefined || x === null) return d;
    if (typeof x === 'boolean') return x;
    if (typeof x === 'string') return parseBoolean(k, x);
    throw badRequest(`Invalid input for field/attribute ${k}. Value: ${JSON.stringify(x)}. ${JSON.stringify(x)} is not a valid boolean.`);
  };
  const force = bool('force', false);
  const diskFormat = textOf('disk_format', args.disk_format) ?? 'raw';
  if (!UPLOAD_FORMATS.includes(diskFormat)) throw badRequest(`Invalid disk-format '${diskFormat}' is specified. Allowed disk-formats are ${UPLOAD_FORMATS.join(', ')}.`);
  const containerFormat = textOf('container_format', args.container_format) ?? 'bare';
  if (containerFormat !== 'bare') throw badRequest(`Invalid container-format '${containerFormat}' is specified. Allowed container-formats are bare.`);
  let visibility = 'private';
  let isProtected = false;
  if (v.ge('3.1')) {
    visibility = textOf('visibility', args.visibility) ?? 'private';
    if (!['public', 'private', 'shared', 'community'].includes(visibility)) throw badRequest(`Invalid visibility '${visibility}': public, private, shared or community.`);
    if (visibility === 'public') rc.enforce('volume_extension:volume_actions:upload_public', {});
    isProtected = bool('protected', false);
  }
  if (row.status !== 'available' && !(force && row.status === 'in-use')) {
    throw invalidVolume(`Volume ${row.id} status must be available${row.status === 'in-use' ? ' (or in-use with force)' : ''}, but current status is: ${row.status}.`);
  }
  if (!row.host) throw invalidVolume(`Volume ${row.id} is on no backend.`);
  // the image's properties: the volume's image metadata, but what describes the image itself
  const props: Record<string, string> = {};
  let minRam = 0;
  for (const m of await db.selectFrom('volume_image_metadata').selectAll().where('volume_id', '=', row.id).execute()) {
    if (m.key === 'min_ram') minRam = Number(m.value) || 0;
    else if (!(CORE as readonly string[]).includes(m.key)) props[m.key] = m.value;
  }
  const image = await images.createImage({
    name: imageName, disk_format: diskFormat, container_format: containerFormat, visibility, protected: isProtected,
    owner: row.project_id, min_disk: row.size, min_ram: minRam, properties: props,
  });
  const t = new Date().toISOString();
  const upload = JSON.stringify({ image_id: image.id, disk_format: diskFormat, status: row.status });
  const r = await db.updateTable('volume_volumes').set((eb) => ({ status: 'uploading', upload, version: eb('version', '+', 1), updated_at: t }))
    .where('id', '=', row.id).where('status', '=', row.status).where('version', '=', row.version).executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) {
    await images.deleteImage(image.id).catch(() => undefined);
    throw invalidVolume(`Volume ${row.id} changed while its upload was asked; try again.`);
  }
  const type = await db.selectFrom('volume_types').selectAll().where('id', '=', row.volume_type_id).executeTakeFirst();
  const volumeType = type ? {
    id: type.id, name: type.name, description: type.description, is_public: !!type.is_public, deleted: false,
    created_at: cinderTime(type.created_at), updated_at: cinderTime(type.updated_at), deleted_at: null,
    qos_specs_id: type.qos_specs_id, extra_specs: isAdmin(rc.cred!) ? await typeSpecs(ctx, type.id) : {},
  } : null;
  return {
    'os-volume_upload_image': {
      id: row.id, updated_at: cinderTime(t), status: 'uploading', display_description: row.description, size: row.size,
      volume_type: volumeType, image_id: image.id, container_format: containerFormat, disk_format: diskFormat, image_name: imageName,
      ...(v.ge('3.1') ? { visibility, protected: isProtected } : {}),
    },
  };
}

/** Whether a volume is `uploading` into `imageId` (the agent's PUT of the image's bytes is taken then only). */
export async function uploadingTo(db: VDb, imageId: string): Promise<boolean> {
  const rows = await db.selectFrom('volume_volumes').select('upload').where('status', '=', 'uploading').where('upload', 'is not', null).execute();
  return rows.some((r) => uploadOf(r)?.image_id === imageId);
}
