// Nova's image proxy (below 2.36; image metadata below 2.39): /images,
// /images/detail, /images/{id} and /images/{id}/metadata, served from the
// image service's data.
import type { FastifyRequest } from 'fastify';
import { ApiError, badRequest, forbidden, notFound } from '../../common/errors.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { hostUrl, isoTime, links, nextLinks, pageParams, parseTime, q, validate, versioned } from './http.ts';
import type { ImageInfo } from './images-access.ts';
import { projectLimits } from './quota.ts';
import { MetadataBody, metadataItem } from './servers.ts';

const STATUS: Record<string, string> = { active: 'ACTIVE', queued: 'SAVING', saving: 'SAVING', deleted: 'DELETED', pending_delete: 'DELETED', killed: 'ERROR' };
const PROGRESS: Record<string, number> = { queued: 25, saving: 50, active: 100 };

function imageLinks(req: FastifyRequest, id: string) {
  return [...links(req, 'images', id), { rel: 'alternate', type: 'application/vnd.openstack.image', href: `${hostUrl(req)}/image/images/${id}` }];
}

function brief(req: FastifyRequest, i: ImageInfo) {
  return { id: i.id, name: i.name, links: imageLinks(req, i.id) };
}

function detail(req: FastifyRequest, i: ImageInfo) {
  const out: Record<string, unknown> = {
    id: i.id, name: i.name, minRam: i.minRam, minDisk: i.minDisk, metadata: i.properties, created: isoTime(i.createdAt), updated: isoTime(i.updatedAt),
    status: STATUS[i.status] ?? 'UNKNOWN', progress: PROGRESS[i.status] ?? 0, 'OS-EXT-IMG-SIZE:size': i.size, links: imageLinks(req, i.id),
  };
  const server = i.properties.instance_uuid;
  if (server) out.server = { id: server, links: links(req, 'servers', server) };
  const adc = i.properties.auto_disk_config;
  if (adc !== undefined) out['OS-DCF:diskConfig'] = /^(1|t|true|on|y|yes)$/i.test(adc) ? 'AUTO' : 'MANUAL';
  return out;
}

export function imageProxyRoutes(ctx: ComputeContext): Route[] {
  const load = async (rc: RouteContext) => {
    const img = await ctx.images.get(rc.cred!, rc.params.image_id!);
    if (!img) throw notFound('Image not found.');
    return img;
  };
  const list = async (rc: RouteContext) => {
    let rows = await ctx.images.list(rc.cred!);
    const name = q(rc, 'name');
    if (name !== undefined) rows = rows.filter((i) => i.name === name);
    const status = q(rc, 'status');
    if (status !== undefined) rows = rows.filter((i) => (STATUS[i.status] ?? 'UNKNOWN') === status.toUpperCase() || i.status === status.toLowerCase());
    const server = q(rc, 'server');
    if (server !== undefined) rows = rows.filter((i) => i.properties.instance_uuid === server.split('/').at(-1));
    const type = q(rc, 'type');
    if (type !== undefined) rows = rows.filter((i) => (i.properties.image_type ?? 'image') === type);
    for (const [param, key] of [['minRam', 'minRam'], ['minDisk', 'minDisk']] as const) {
      const raw = q(rc, param);
      if (raw === undefined) continue;
      if (!/^\d+$/.test(raw)) throw badRequest(`Invalid ${param} filter [${raw}]`);
      rows = rows.filter((i) => i[key] >= Number(raw));
    }
    const since = q(rc, 'changes-since');
    if (since !== undefined) {
      const t = parseTime('changes-since', since);
      rows = rows.filter((i) => i.updatedAt >= t);
    }
    rows.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
    const { limit, marker } = pageParams(rc);
    if (marker !== undefined) {
      const i = rows.findIndex((x) => x.id === marker);
      if (i < 0) throw badRequest(`marker [${marker}] not found`);
      rows = rows.slice(i + 1);
    }
    return { rows: rows.slice(0, limit), limit };
  };
  const setProps = async (rc: RouteContext, img: ImageInfo, props: Record<string, string>, replace: boolean) => {
    const next = replace ? props : { ...img.properties, ...props };
    const limit = (await projectLimits(ctx.db, rc.cred!.projectId ?? '')).metadata_items;
    if (limit >= 0 && Object.keys(next).length > limit) throw forbidden('Image metadata limit exceeded');
    try {
      return await ctx.images.setProperties(rc.cred!, img.id, props, replace);
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) throw forbidden(e.message);
      if (e instanceof ApiError && e.status === 404) throw notFound('Image not found.');
      throw e;
    }
  };
  const routes = ([
    route({
      method: 'GET', path: '/v2.1/images', rule: 'os_compute_api:images',
      async handler(rc) {
        const { rows, limit } = await list(rc);
        const next = nextLinks(rc.req, 'images', rows, rows.at(-1)?.id, limit);
        return { images: rows.map((i) => brief(rc.req, i)), ...(next ? { images_links: next } : {}) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/images/detail', rule: 'os_compute_api:images',
      async handler(rc) {
        const { rows, limit } = await list(rc);
        const next = nextLinks(rc.req, 'images/detail', rows, rows.at(-1)?.id, limit);
        return { images: rows.map((i) => detail(rc.req, i)), ...(next ? { images_links: next } : {}) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/images/:image_id', rule: 'os_compute_api:images',
      handler: async (rc) => ({ image: detail(rc.req, await load(rc)) }),
    }),
    route({
      method: 'DELETE', path: '/v2.1/images/:image_id', rule: 'os_compute_api:images', status: 204,
      async handler(rc) {
        const img = await load(rc);
        const cred = rc.cred!;
        if (img.owner !== cred.projectId && !cred.roles.has('admin')) throw forbidden('You are not allowed to delete the image.');
        if (img.protected) throw forbidden('Image is protected');
        try {
          await ctx.images.delete(cred, img.id);
        } catch (e) {
          if (e instanceof ApiError && e.status === 403) throw forbidden(e.message);
          if (e instanceof ApiError && e.status === 404) throw notFound('Image not found.');
          throw e;
        }
      },
    }),
  ] satisfies Route[]).map((r) => versioned(r, undefined, '2.35'));
  const meta = ([
    route({
      method: 'GET', path: '/v2.1/images/:image_id/metadata', rule: 'os_compute_api:images',
      handler: async (rc) => ({ metadata: (await load(rc)).properties }),
    }),
    route({
      method: ['POST', 'PUT'], path: '/v2.1/images/:image_id/metadata', rule: 'os_compute_api:images',
      async handler(rc) {
        const body = validate(MetadataBody, rc.body);
        const img = await load(rc);
        return { metadata: (await setProps(rc, img, body.metadata, rc.req.method === 'PUT')).properties };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/images/:image_id/metadata/:key', rule: 'os_compute_api:images',
      async handler(rc) {
        const img = await load(rc);
        const key = rc.params.key!;
        if (!(key in img.properties)) throw notFound(`Image ${img.id} has no metadata with key ${key}.`);
        return { meta: { [key]: img.properties[key] } };
      },
    }),
    route({
      method: 'PUT', path: '/v2.1/images/:image_id/metadata/:key', rule: 'os_compute_api:images',
      async handler(rc) {
        const meta = metadataItem(rc);
        const img = await load(rc);
        await setProps(rc, img, meta, false);
        return { meta };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/images/:image_id/metadata/:key', rule: 'os_compute_api:images', status: 204,
      async handler(rc) {
        const img = await load(rc);
        const key = rc.params.key!;
        if (!(key in img.properties)) throw notFound(`Image ${img.id} has no metadata with key ${key}.`);
        await ctx.images.setProperties(rc.cred!, img.id, { [key]: null }, false);
      },
    }),
  ] satisfies Route[]).map((r) => versioned(r, undefined, '2.38'));
  return [...routes, ...meta];
}
