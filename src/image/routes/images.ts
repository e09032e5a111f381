// /v2/images: create, list, show, update (JSON patch), delete, deactivate and
// reactivate, and tags. Checks follow Glance's order: the request body
// (400/403 for read-only or reserved attributes), then policy, then the
// image's state.
import { ApiError, badRequest, conflict, forbidden } from '../../common/errors.ts';
import type { Credentials } from '../../http/auth.ts';
import { objectOf } from '../../http/body.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ImageContext } from '../context.ts';
import { deleteImageData } from '../data.ts';
import { imageTargetLoader, noImage, objectBody, renderImage, targetImage } from '../http.ts';
import {
  createImageRecord, isAdminCred, listImages, loadImage, markDeleted, newImageRecord, QUOTAS, saveImage, setStatus,
  type ImageListQuery, type ImageRecord, type NewImageFields,
} from '../images.ts';
import { pyRepr, schemaViolation } from '../jsonschema.ts';
import { IMAGE_SCHEMA } from '../schemas.ts';
import { PREFIX } from './discovery.ts';

/** Attributes a request may never give (Glance's _disallowed_properties). */
const DISALLOWED = ['direct_url', 'self', 'file', 'schema', 'stores'];
/** Attributes only the service sets. */
const READONLY = ['created_at', 'updated_at', 'status', 'checksum', 'size', 'virtual_size', 'direct_url', 'self', 'file', 'schema', 'id', 'os_hash_algo', 'os_hash_value'];
const CREATE_READONLY = ['created_at', 'updated_at', 'status', 'checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size'];
const RESERVED = ['location', 'deleted', 'deleted_at'];
const RESERVED_NAMESPACE = 'os_glance';
/** Image attributes that are not extra properties. */
const BASE = ['checksum', 'created_at', 'container_format', 'disk_format', 'id', 'min_disk', 'min_ram', 'name', 'size',
  'virtual_size', 'status', 'tags', 'owner', 'updated_at', 'visibility', 'protected', 'os_hidden'];
/** Base attributes a patch may set. */
const SETTABLE = ['name', 'visibility', 'os_hidden', 'min_disk', 'min_ram', 'protected', 'owner', 'disk_format', 'container_format', 'tags'] as const;
type Settable = (typeof SETTABLE)[number];

const PATCH_TYPES: Record<string, 4 | 10> = {
  'application/openstack-images-v2.0-json-patch': 4,
  'application/openstack-images-v2.1-json-patch': 10,
};

const schemaError = (msg: string) => badRequest(`Provided object does not match schema 'image': ${msg}`);
const readOnly = (k: string) => forbidden(`Attribute '${k}' is read-only.`);
const reserved = (k: string) => forbidden(`Attribute '${k}' is reserved.`);

function checkNonNegative(key: 'min_ram' | 'min_disk', v: unknown): void {
  if (typeof v === 'number' && v < 0) throw badRequest(`Invalid value '${v}' for parameter '${key}': Cannot be a negative value.`);
}

function checkPropertyQuota(props: Record<string, unknown>): void {
  const n = Object.keys(props).length;
  if (n > QUOTAS.properties) {
    throw new ApiError('PayloadTooLarge', `The limit has been exceeded on the number of allowed image properties. Attempted: ${n}, Maximum: ${QUOTAS.properties}`);
  }
}

function checkTagQuota(tags: string[]): void {
  if (tags.length > QUOTAS.tags) {
    throw new ApiError('PayloadTooLarge', `The limit has been exceeded on the number of allowed image tags. Attempted: ${tags.length}, Maximum: ${QUOTAS.tags}`);
  }
}

/**
 * Validates a create body as Glance's deserializer does and splits it into
 * image attributes and extra properties. Throws 400/403/413.
 */
export function parseCreateBody(body: unknown): NewImageFields {
  const b = { ...objectBody(body, 'Request body must be a JSON object.') };
  for (const k of DISALLOWED) if (k in b) throw readOnly(k);
  const err = schemaViolation(IMAGE_SCHEMA, b);
  if (err) throw schemaError(err);
  for (const k of CREATE_READONLY) if (k in b) throw readOnly(k);
  const fields: NewImageFields = {};
  const properties: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(b)) {
    if (BASE.includes(k)) {
      (fields as Record<string, unknown>)[k] = v;
      continue;
    }
    if ([...k].length > 255) throw badRequest('Custom property should not be greater than 255 characters.');
    if (RESERVED.includes(k) || k === 'locations') throw reserved(k);
    if (k.startsWith(RESERVED_NAMESPACE)) throw reserved(k);
    properties[k] = v as string | null;
  }
  checkNonNegative('min_ram', fields.min_ram);
  checkNonNegative('min_disk', fields.min_disk);
  fields.tags = [...new Set(fields.tags ?? [])];
  checkTagQuota(fields.tags);
  checkPropertyQuota(properties);
  fields.properties = properties;
  return fields;
}

// ------------------------------------------------------------------ patch

interface Change { op: 'add' | 'remove' | 'replace'; path: string[]; value?: unknown; draft: 4 | 10 }

function decodePointer(pointer: unknown): string[] {
  if (typeof pointer !== 'string') throw badRequest(`Pointer \`${String(pointer)}\` does not start with "/".`);
  if (!pointer.startsWith('/')) throw badRequest(`Pointer \`${pointer}\` does not start with "/".`);
  if (/\/\s*?\//.test(pointer.slice(1))) throw badRequest(`Pointer \`${pointer}\` contains adjacent "/".`);
  if (pointer.length > 1 && pointer.endsWith('/')) throw badRequest(`Pointer \`${pointer}\` end with "/".`);
  if (pointer.slice(1).trim() === '/') throw badRequest(`Pointer \`${pointer}\` does not contains valid token.`);
  if (/~[^01]/.test(pointer) || pointer.endsWith('~')) throw badRequest(`Pointer \`${pointer}\` contains "~" not part of a recognized escape sequence.`);
  return pointer.replace(/^\/+/, '').split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~').trim());
}

const OPS = ['add', 'remove', 'replace'] as const;

/** Glance's RequestDeserializer.update: the body as a list of validated changes. */
export function parsePatch(body: unknown, draft: 4 | 10): Change[] {
  if (body === undefined) throw badRequest('Body expected in request.');
  if (!Array.isArray(body)) throw badRequest('Request body must be a JSON array of operation objects.');
  return body.map((raw): Change => {
    const r = objectOf(raw);
    if (!r) throw badRequest('Operations must be JSON objects.');
    let op: Change['op'];
    let pointer: unknown;
    if (draft === 10) {
      if (r.op === undefined) throw badRequest(`Unable to find \`op\` in JSON Schema change. It must be one of the following: ${OPS.join(', ')}.`);
      if (!(OPS as readonly unknown[]).includes(r.op)) throw badRequest(`Invalid operation: \`${String(r.op)}\`. It must be one of the following: ${OPS.join(', ')}.`);
      op = r.op as Change['op'];
      if (!('path' in r)) throw badRequest("Unable to find 'path' in JSON Schema change");
      pointer = r.path;
    } else {
      const present = OPS.filter((o) => o in r);
      if (present.length > 1) throw badRequest('Operation objects must contain only one member named "add", "remove", or "replace".');
      if (present.length === 0) throw badRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".');
      op = present[0]!;
      pointer = r[op];
    }
    const path = decodePointer(pointer);
    const root = path[0]!;
    const depth = root === 'locations' ? (op === 'replace' ? 1 : 2) : 1;
    if (path.length !== depth) throw badRequest(`Invalid JSON pointer for this resource: '/${path.join('/')}'`);
    const change: Change = { op, path, draft };
    if (op !== 'remove') {
      if (!('value' in r)) throw badRequest(`Operation "${op}" requires a member named "value".`);
      change.value = r.value;
    }
    if (READONLY.includes(root)) throw readOnly(root);
    if (RESERVED.includes(root) || root.startsWith(RESERVED_NAMESPACE)) throw reserved(root);
    if (op !== 'remove' && path.length === 1) {
      const err = schemaViolation(IMAGE_SCHEMA, { [root]: change.value });
      if (err) throw schemaError(err);
    }
    return change;
  });
}

/** Applies validated changes to a copy of the image (Glance's _do_add/_do_replace/_do_remove). */
function applyChanges(rc: RouteContext, img: ImageRecord, changes: Change[]): ImageRecord {
  const next: ImageRecord = { ...img, properties: { ...img.properties }, tags: [...img.tags] };
  const cred = rc.cred!;
  for (const c of changes) {
    const root = c.path[0]!;
    if (root === 'locations') {
      throw forbidden(c.op === 'add' ? "It's not allowed to add locations if locations are invisible."
        : c.op === 'remove' ? "It's not allowed to remove locations if locations are invisible."
          : "It's not allowed to update locations if locations are invisible.");
    }
    const base = (SETTABLE as readonly string[]).includes(root);
    if (c.op === 'remove') {
      if (base || BASE.includes(root)) throw forbidden(`Property ${root} may not be removed.`);
      if (!(root in next.properties)) throw conflict(`Property ${root} does not exist.`);
      delete next.properties[root];
      continue;
    }
    if (c.op === 'replace' && !base && !(root in next.properties)) throw conflict(`Property ${root} does not exist.`);
    if (c.op === 'add' && c.draft === 4 && (base || root in next.properties)) throw conflict(`Property ${root} already present.`);
    if (!base) {
      next.properties[root] = c.value as string | null;
      continue;
    }
    setAttribute(rc, cred, img, next, root as Settable, c.value);
  }
  checkPropertyQuota(next.properties);
  return next;
}

function setAttribute(rc: RouteContext, cred: Credentials, img: ImageRecord, next: ImageRecord, key: Settable, value: unknown): void {
  switch (key) {
    case 'owner':
      if (!isAdminCred(cred)) throw forbidden("Owner can't be updated by non admin.");
      next.owner = value as string | null;
      return;
    case 'visibility':
      if (value === 'public') rc.enforce('publicize_image', { project_id: img.owner, owner: img.owner, visibility: value });
      if (value === 'community') rc.enforce('communitize_image', { project_id: img.owner, owner: img.owner, visibility: value });
      next.visibility = value as string;
      return;
    case 'disk_format':
    case 'container_format':
      if (!['queued', 'importing'].includes(img.status)) throw forbidden(`Attribute ${key} can be only replaced for a queued image.`);
      next[key] = value as string | null;
      return;
    case 'min_ram':
    case 'min_disk':
      checkNonNegative(key, value);
      next[key] = value as number;
      return;
    case 'tags': {
      const tags = [...new Set(value as string[])].sort();
      checkTagQuota(tags);
      next.tags = tags;
      return;
    }
    case 'name':
      next.name = value as string | null;
      return;
    case 'protected':
    case 'os_hidden':
      next[key] = value as boolean;
      return;
  }
}

/** The media type of a request without its parameters. */
const mediaType = (rc: RouteContext): string => String(rc.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

/** Glance's list links: `first` without the marker, `next` with the next page's marker. */
function listLinks(rc: RouteContext, nextMarker: string | undefined): { first: string; next?: string } {
  const raw = rc.req.url.includes('?') ? rc.req.url.slice(rc.req.url.indexOf('?') + 1) : '';
  const params = new URLSearchParams(raw);
  params.delete('marker');
  const query = params.toString();
  const links: { first: string; next?: string } = { first: query ? `/v2/images?${query}` : '/v2/images' };
  if (nextMarker !== undefined) {
    params.set('marker', nextMarker);
    links.next = `/v2/images?${params.toString()}`;
  }
  return links;
}

export function imagesRoutes(ictx: ImageContext): Route[] {
  const target = imageTargetLoader(ictx);
  /** Deactivate and reactivate: a no-op if already there, 403 unless the image is in `from`. */
  async function switchStatus(rc: RouteContext, from: string, to: string, verb: string): Promise<void> {
    const img = targetImage(rc);
    if (img.status === to) return;
    if (img.status !== from || !(await setStatus(ictx.db, img.id, from, to))) {
      throw forbidden(`Not allowed to ${verb} image in status '${img.status}'`);
    }
  }
  return [
    route({
      method: 'POST', path: '/v2/images', rule: 'add_image', status: 201,
      target: (rc) => {
        const b = objectOf(rc.body);
        const owner = b && 'owner' in b ? b.owner : rc.cred?.projectId;
        return { project_id: owner, owner, visibility: b?.visibility || 'shared' };
      },
      async handler(rc) {
        const fields = parseCreateBody(rc.body);
        const cred = rc.cred!;
        const owner = fields.owner !== undefined ? fields.owner : cred.projectId;
        const t = { project_id: owner, owner, visibility: fields.visibility ?? 'shared' };
        if (fields.visibility === 'public') rc.enforce('publicize_image', t);
        if (fields.visibility === 'community') rc.enforce('communitize_image', t);
        const rec = await createImageRecord(ictx.db, newImageRecord(fields, owner ?? null));
        rc.reply.header('Location', `${rc.req.protocol}://${rc.req.headers.host ?? 'localhost'}${PREFIX}/v2/images/${rec.id}`);
        rc.reply.header('OpenStack-image-import-methods', ictx.config.importMethods.join(','));
        return renderImage(rec);
      },
    }),
    route({
      method: 'GET', path: '/v2/images', rule: 'get_images',
      async handler(rc) {
        // GET /v2/images/ is show_image of an empty id in Glance: not found.
        if ((rc.req.url.split('?')[0] ?? '').endsWith('/')) throw noImage('');
        const { images, nextMarker } = await listImages(ictx.db, rc.cred!, rc.query as ImageListQuery);
        return { images: images.map(renderImage), ...listLinks(rc, nextMarker), schema: '/v2/schemas/images' };
      },
    }),
    route({
      method: 'GET', path: '/v2/images/:image_id', rule: 'get_image', target,
      handler: (rc) => renderImage(targetImage(rc)),
    }),
    route({
      method: 'PATCH', path: '/v2/images/:image_id', rule: 'modify_image', target,
      async handler(rc) {
        const draft = PATCH_TYPES[mediaType(rc)];
        if (draft === undefined) {
          const allowed = Object.keys(PATCH_TYPES).sort().join(', ');
          throw new ApiError('UnsupportedMediaType', `Image PATCH expects Content-Type one of: ${allowed}`, { 'Accept-Patch': allowed });
        }
        const changes = parsePatch(rc.body, draft);
        const img = targetImage(rc);
        if (changes.length === 0) return renderImage(img);
        const next = applyChanges(rc, img, changes);
        next.updated_at = new Date().toISOString();
        const tagsChanged = next.tags.join('\n') !== img.tags.join('\n');
        if (!(await saveImage(ictx.db, next, { tags: tagsChanged }))) throw noImage(img.id);
        return renderImage((await loadImage(ictx.db, img.id))!);
      },
    }),
    route({
      method: 'DELETE', path: '/v2/images/:image_id', rule: 'delete_image', target, status: 204,
      async handler(rc) {
        const img = targetImage(rc);
        if (img.protected) throw forbidden(`Image ${img.id} is protected and cannot be deleted.`);
        await markDeleted(ictx.db, img.id);
        await deleteImageData(ictx, img);
      },
    }),
    route({
      method: 'POST', path: '/v2/images/:image_id/actions/deactivate', rule: 'deactivate', target, status: 204,
      handler: (rc) => switchStatus(rc, 'active', 'deactivated', 'deactivate'),
    }),
    route({
      method: 'POST', path: '/v2/images/:image_id/actions/reactivate', rule: 'reactivate', target, status: 204,
      handler: (rc) => switchStatus(rc, 'deactivated', 'active', 'reactivate'),
    }),
    route({
      method: 'PUT', path: '/v2/images/:image_id/tags/:tag', rule: 'modify_image', target, status: 204,
      async handler(rc) {
        const img = targetImage(rc);
        const tag = rc.params.tag ?? '';
        const err = schemaViolation(IMAGE_SCHEMA, { tags: [tag] });
        if (err) throw schemaError(err);
        if (img.tags.includes(tag)) return;
        checkTagQuota([...img.tags, tag]);
        const next = { ...img, tags: [...img.tags, tag].sort(), updated_at: new Date().toISOString() };
        if (!(await saveImage(ictx.db, next, { tags: true }))) throw noImage(img.id);
      },
    }),
    route({
      method: 'DELETE', path: '/v2/images/:image_id/tags/:tag', rule: 'modify_image', target, status: 204,
      async handler(rc) {
        const img = targetImage(rc);
        const tag = rc.params.tag ?? '';
        if (!img.tags.includes(tag)) throw new ApiError('NotFound', `Tag ${pyRepr(tag)} not found on image ${img.id}.`);
        const next = { ...img, tags: img.tags.filter((t) => t !== tag), updated_at: new Date().toISOString() };
        if (!(await saveImage(ictx.db, next, { tags: true }))) throw noImage(img.id);
      },
    }),
  ];
}
