// The routes compute adds to the agent API (/agent/v1): image records and
// bytes for the agents' image stores, and the upload of a snapshot into the
// queued image of a pending snapshot request or of a volume's upload
// (os-volume_upload_image: the volume `uploading` into it).
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ApiError } from '../../common/errors.ts';
import { parseJsonObject } from '../../common/json.ts';
import type { Db } from '../../db/database.ts';
import { AGENT_RULE } from '../../fleet/api.ts';
import type { Route } from '../../http/service.ts';
import type { ImageService } from '../../image/service.ts';
import type { ServerVolumes } from '../../volume/service.ts';
import { agentImage } from './desired.ts';

export function agentImageRoutes(db: Db, images: ImageService, volumes?: Pick<ServerVolumes, 'uploading'>): Route[] {
  const image = async (id: string) => {
    const img = await images.getImage(id);
    if (!img) throw new ApiError('NotFound', `Image ${id} could not be found.`);
    return img;
  };
  return [
    {
      method: 'GET', path: '/v1/images/:image_id', rule: AGENT_RULE,
      handler: async (rc) => agentImage(await image(rc.params.image_id!)),
    },
    {
      method: 'GET', path: '/v1/images/:image_id/file', rule: AGENT_RULE,
      async handler(rc) {
        const img = await image(rc.params.image_id!);
        if (img.status !== 'active') throw new ApiError('Conflict', `Image ${img.id} is ${img.status}, not active.`);
        // checked before the answer starts: a stream failing after its headers went out is a broken download, not an error the agent can read
        const path = await images.imageDataPath(img.id);
        if (path && !(await stat(path).then((s) => s.isFile(), () => false))) {
          // transient for the agent: another replica (or this one, once its storage is back) may have the data
          throw new ApiError('Unavailable', `The data of image ${img.id} is not in this replica's image store.`);
        }
        rc.reply.header('content-type', 'application/octet-stream');
        if (img.size !== null) rc.reply.header('content-length', String(img.size));
        return rc.reply.send(images.openImageData(img.id));
      },
    },
    {
      method: 'PUT', path: '/v1/images/:image_id/file', rule: AGENT_RULE, status: 204,
      async handler(rc) {
        const body = rc.body as NodeJS.ReadableStream | undefined;
        if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') throw new ApiError('BadRequest', 'Send the image data as application/octet-stream.');
        const imageId = rc.params.image_id!;
        const pending = await db.selectFrom('compute_server_requests').select(['id', 'args']).where('kind', '=', 'snapshot').where('status', '=', 'pending').execute();
        if (!pending.some((p) => parseJsonObject(p.args).image_id === imageId) && !(await volumes?.uploading(imageId))) throw new ApiError('Forbidden', `No pending snapshot uploads to image ${imageId}.`);
        const len = rc.req.headers['content-length'];
        await images.uploadImageData(imageId, body as Readable, len ? Number(len) : undefined);
      },
    },
  ];
}
