// Glance wire helpers: the error envelope, the image and member views, and the
// target loader that finds the image a route is about.
import type { FastifyRequest } from 'fastify';
import { ApiError, badRequest, notFound } from '../common/errors.ts';
import { objectOf } from '../http/body.ts';
import type { RouteContext } from '../http/service.ts';
import type { Target } from '../http/policy.ts';
import { canSee, loadImage, type ImageMember, type ImageRecord } from './images.ts';
import type { ImageContext } from './context.ts';

/** Glance's errors as webob renders them for a JSON client: {"message", "code": "404 Not Found", "title"}. */
export function renderImageError(err: ApiError): unknown {
  return { message: err.message, code: `${err.status} ${err.title}`, title: err.title };
}

/** Glance's time format: 2014-05-05T17:15:10Z. */
export const glanceTime = (iso: string): string => new Date(iso).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The image as Glance renders it: extra properties at the top level beside the base attributes. */
export function renderImage(img: ImageRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(img.properties)) {
    if (k === 'os_glance_stage_host' || k === 'os_glance_hash_op_host') continue;
    view[k] = v;
  }
  Object.assign(view, {
    name: img.name, disk_format: img.disk_format, container_format: img.container_format, visibility: img.visibility,
    size: img.size, virtual_size: img.virtual_size, status: img.status, checksum: img.checksum,
    protected: img.protected, min_ram: img.min_ram, min_disk: img.min_disk, owner: img.owner, os_hidden: img.os_hidden,
    os_hash_algo: img.os_hash_algo, os_hash_value: img.os_hash_value,
    id: img.id, created_at: glanceTime(img.created_at), updated_at: glanceTime(img.updated_at),
    tags: [...img.tags],
    self: `/v2/images/${img.id}`, file: `/v2/images/${img.id}/file`, schema: '/v2/schemas/image',
  });
  return view;
}

export function renderMember(m: ImageMember): Record<string, unknown> {
  return {
    member_id: m.member_id, image_id: m.image_id, status: m.status,
    created_at: glanceTime(m.created_at), updated_at: glanceTime(m.updated_at), schema: '/v2/schemas/member',
  };
}

/** A request body that must be a JSON object: Glance's 400s for none and for any other JSON value (`notObject`). */
export function objectBody(body: unknown, notObject: string): Record<string, unknown> {
  if (body === undefined || body === null) throw badRequest('Body expected in request.');
  const obj = objectOf(body);
  if (!obj) throw badRequest(notObject);
  return obj;
}

export const noImage = (id: string) => notFound(`No image found with ID ${id}`);

/** The policy target of an image: its owner project, visibility, and whether the caller is one of its members. */
export function imageTarget(img: ImageRecord, rc: RouteContext): Target {
  const pid = rc.cred?.projectId ?? null;
  const member = pid !== null && img.members.some((m) => m.member_id === pid) ? pid : undefined;
  return { project_id: img.owner, owner: img.owner, visibility: img.visibility, member_id: member, image_id: img.id };
}

const loaded = new WeakMap<FastifyRequest, ImageRecord>();

/**
 * A route `target` that loads the image named by :image_id; an image the
 * caller may not see is a 404, as Glance hides it (so a failing rule after it
 * is a 403 only for images the caller can see).
 */
export function imageTargetLoader(ictx: ImageContext, extra?: (rc: RouteContext, img: ImageRecord) => Target) {
  return async (rc: RouteContext): Promise<Target> => {
    const id = rc.params.image_id ?? '';
    const img = await loadImage(ictx.db, id);
    if (!img || !rc.cred || !canSee(rc.cred, img)) throw noImage(id);
    loaded.set(rc.req, img);
    return { ...imageTarget(img, rc), ...(extra ? extra(rc, img) : {}) };
  };
}

/** The image the route's target loader found. */
export function targetImage(rc: RouteContext): ImageRecord {
  const img = loaded.get(rc.req);
  if (!img) throw new ApiError('Internal', 'An unexpected error prevented the server from fulfilling your request.');
  return img;
}
