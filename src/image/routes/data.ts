// Image data: PUT/GET /v2/images/{id}/file (streamed both ways, never held in
// memory), and the interoperable import: PUT /v2/images/{id}/stage then
// POST /v2/images/{id}/import with the glance-direct method.
import { Readable } from 'node:stream';
import { ApiError, forbidden, notFound } from '../../common/errors.ts';
import { singleRange } from '../../http/range.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ImageContext } from '../context.ts';
import { importImage, missingData, stageImageData, uploadImageData } from '../data.ts';
import { imageTargetLoader, targetImage } from '../http.ts';
import { isAdminCred } from '../images.ts';

const OCTET = 'application/octet-stream';

/** The upload stream of a request, after checking its media type (415 otherwise). */
function uploadStream(rc: RouteContext): Readable {
  const type = String(rc.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== OCTET) throw new ApiError('UnsupportedMediaType', `Invalid content type ${type || 'None'}`);
  // An empty body is never handed to the parser.
  return rc.body instanceof Readable ? rc.body : Readable.from([]);
}

/** x-openstack-image-size, else Content-Length (Glance's _get_image_size). */
function sizeHint(rc: RouteContext): number | undefined {
  const raw = rc.req.headers['x-openstack-image-size'] ?? rc.req.headers['content-length'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new ApiError('BadRequest', 'Invalid or missing image size in request headers.');
  return n;
}

/**
 * A single byte range of a Range header (http/range.ts), clipped to the size,
 * end inclusive; undefined when absent, unusable or unsatisfiable (the whole
 * data is sent then).
 */
function byteRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  const range = singleRange(header, size);
  return range && range !== 'unsatisfiable' ? { start: range.start, end: range.end - 1 } : undefined;
}

export function dataRoutes(ictx: ImageContext): Route[] {
  const target = imageTargetLoader(ictx);
  return [
    route({
      method: 'PUT', path: '/v2/images/:image_id/file', rule: 'upload_image', target, status: 204,
      async handler(rc) {
        const data = uploadStream(rc);
        await uploadImageData(ictx, targetImage(rc), data, sizeHint(rc));
      },
    }),
    route({
      method: 'GET', path: '/v2/images/:image_id/file', rule: 'download_image', target,
      async handler(rc) {
        const img = targetImage(rc);
        if (img.status === 'deactivated' && !isAdminCred(rc.cred!)) {
          throw forbidden('The requested image has been deactivated. Image data download is forbidden.');
        }
        if (!img.location) {
          // no data yet (queued): Glance's 204
          rc.reply.code(204);
          return undefined;
        }
        const size = await ictx.store.size(img.location);
        if (size === undefined) throw missingData(img.id);
        const range = byteRange(rc.req.headers.range, size);
        rc.reply.header('Content-Type', OCTET);
        if (img.checksum) rc.reply.header('Content-MD5', img.checksum);
        if (range) {
          rc.reply.code(206);
          rc.reply.header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
          rc.reply.header('Content-Length', String(range.end - range.start + 1));
        } else {
          rc.reply.header('Content-Length', String(size));
        }
        return rc.reply.send(ictx.store.open(img.location, range));
      },
    }),
    route({
      method: 'PUT', path: '/v2/images/:image_id/stage', rule: 'modify_image', target, status: 204,
      async handler(rc) {
        if (!ictx.config.importMethods.includes('glance-direct')) throw notFound("'glance-direct' method is not available at this site.");
        const data = uploadStream(rc);
        await stageImageData(ictx, targetImage(rc), data, sizeHint(rc));
      },
    }),
    route({
      method: 'POST', path: '/v2/images/:image_id/import', rule: 'modify_image', target, status: 202,
      async handler(rc) {
        await importImage(ictx, targetImage(rc), rc.body);
      },
    }),
  ];
}
