// Swift containers (`/v1/AUTH_<project>/<container>`): PUT creates (201) or
// updates (202), POST sets metadata and ACLs (204), DELETE removes an empty
// one (204; 409 when not empty), GET lists its objects, HEAD its counters.
import { ObjectStoreError, type ContainerInfo, type ObjectInfo } from '../store.ts';
import { accountLevel, canWriteAccount, checkContainerAccess, denied, isSwiftOwner } from './access.ts';
import { cleanAcl } from './acl.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { applyMeta, checkMetaTotal, header, metaFromHeaders, metaHeaders } from './headers.ts';
import { listingFormat, listOptions, renderObjects } from './listing.ts';
import type { SwiftRequest } from './request.ts';

/** The request's container, loaded once per request. */
export async function loadContainer(sr: SwiftRequest): Promise<ContainerInfo | null> {
  if (sr.containerInfo !== undefined) return sr.containerInfo;
  sr.containerInfo = await sr.ctx.store.getContainer(sr.project, sr.container!);
  return sr.containerInfo;
}

/** The request's object, loaded once per request (the core's GET/HEAD reuses it). */
export async function loadObject(sr: SwiftRequest): Promise<ObjectInfo | null> {
  if (sr.objectInfo !== undefined) return sr.objectInfo;
  const c = await loadContainer(sr);
  sr.objectInfo = c ? await sr.ctx.store.headObject(c, sr.object!) : null;
  return sr.objectInfo;
}

export async function containerRequest(sr: SwiftRequest): Promise<unknown> {
  switch (sr.method) {
    case 'GET':
    case 'HEAD':
      return getContainer(sr);
    case 'PUT':
      return putContainer(sr);
    case 'POST':
      return postContainer(sr);
    case 'DELETE':
      return deleteContainer(sr);
    default:
      throw swiftStatus(405, { Allow: 'GET, HEAD, PUT, POST, DELETE' });
  }
}

export function containerHeaders(c: ContainerInfo, owner: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'X-Container-Object-Count': String(c.objectCount),
    'X-Container-Bytes-Used': String(c.bytesUsed),
    'X-Timestamp': c.createdAt,
    'X-PUT-Timestamp': c.createdAt,
    'X-Storage-Policy': c.policy,
    'Last-Modified': new Date(Math.ceil(Number(c.updatedAt)) * 1000).toUTCString(),
    'Accept-Ranges': 'bytes',
    ...metaHeaders('container', c.metadata),
  };
  if (owner) {
    if (c.readAcl) h['X-Container-Read'] = c.readAcl;
    if (c.writeAcl) h['X-Container-Write'] = c.writeAcl;
  }
  return h;
}

async function getContainer(sr: SwiftRequest): Promise<unknown> {
  const c = await loadContainer(sr);
  await checkContainerAccess(sr, c, 'list');
  if (!c) throw swiftStatus(404);
  const owner = isSwiftOwner(await accountLevel(sr));
  const format = listingFormat(sr.query, header(sr.headers, 'accept'));
  sr.reply.headers(containerHeaders(c, owner));
  if (sr.method === 'HEAD') {
    sr.reply.code(204).header('Content-Type', format === 'json' ? 'application/json; charset=utf-8' : format === 'xml' ? 'application/xml; charset=utf-8' : 'text/plain; charset=utf-8');
    return undefined;
  }
  const opts = listOptions(sr.query);
  // Swift's `path=`: the objects directly under a pseudo-directory
  if (sr.query.path !== undefined) {
    opts.prefix = sr.query.path ? (sr.query.path.endsWith('/') ? sr.query.path : `${sr.query.path}/`) : undefined;
    opts.delimiter = '/';
  }
  let entries = await sr.ctx.store.listObjects(c, opts);
  if (sr.query.path !== undefined) entries = entries.filter((e) => e.kind === 'object');
  const [type, body] = renderObjects(format, sr.account, c.name, entries);
  sr.reply.header('Content-Type', type);
  if (body === null) {
    sr.reply.code(204);
    return undefined;
  }
  return body;
}

/** The ACL headers of a request, cleaned; only an owner's are taken (Swift strips the others'). */
function aclChange(sr: SwiftRequest, owner: boolean): { readAcl?: string | null; writeAcl?: string | null } {
  const out: { readAcl?: string | null; writeAcl?: string | null } = {};
  if (!owner) return out;
  const read = header(sr.headers, 'x-container-read');
  const write = header(sr.headers, 'x-container-write');
  if (read !== undefined) out.readAcl = cleanAcl('X-Container-Read', read);
  if (write !== undefined) out.writeAcl = cleanAcl('X-Container-Write', write);
  if (header(sr.headers, 'x-remove-container-read') !== undefined) out.readAcl = null;
  if (header(sr.headers, 'x-remove-container-write') !== undefined) out.writeAcl = null;
  return out;
}

async function putContainer(sr: SwiftRequest): Promise<unknown> {
  const level = await accountLevel(sr);
  if (!canWriteAccount(level)) throw denied(sr);
  const change = metaFromHeaders(sr.headers, 'container');
  const acls = aclChange(sr, isSwiftOwner(level));
  const policy = header(sr.headers, 'x-storage-policy');
  if (policy !== undefined && policy !== '' && policy.toLowerCase() !== 'policy-0') throw swiftError(400, `Invalid X-Storage-Policy '${policy}'`);
  const existing = await loadContainer(sr);
  if (existing) {
    checkMetaTotal(applyMeta(existing.metadata, change));
    const updated = await sr.ctx.store.updateContainer(existing, { metadata: change, ...acls });
    sr.reply.code(202).headers({ 'Content-Type': 'text/html; charset=UTF-8' });
    void updated;
    return '';
  }
  const metadata = applyMeta({}, change);
  checkMetaTotal(metadata);
  const { created, container } = await sr.ctx.store.createContainer(sr.project, sr.container!, { metadata, readAcl: acls.readAcl ?? null, writeAcl: acls.writeAcl ?? null });
  if (!created) await sr.ctx.store.updateContainer(container, { metadata: change, ...acls });
  sr.reply.code(created ? 201 : 202).headers({ 'Content-Type': 'text/html; charset=UTF-8' });
  return '';
}

async function postContainer(sr: SwiftRequest): Promise<unknown> {
  const level = await accountLevel(sr);
  if (!canWriteAccount(level)) throw denied(sr);
  const c = await loadContainer(sr);
  if (!c) throw swiftStatus(404);
  const change = metaFromHeaders(sr.headers, 'container');
  checkMetaTotal(applyMeta(c.metadata, change));
  await sr.ctx.store.updateContainer(c, { metadata: change, ...aclChange(sr, isSwiftOwner(level)) });
  sr.reply.code(204);
  return undefined;
}

async function deleteContainer(sr: SwiftRequest): Promise<unknown> {
  const level = await accountLevel(sr);
  if (!canWriteAccount(level)) throw denied(sr);
  const c = await loadContainer(sr);
  if (!c) throw swiftStatus(404);
  try {
    await sr.ctx.store.deleteContainer(c);
  } catch (err) {
    if (err instanceof ObjectStoreError && err.reason === 'ContainerNotEmpty') {
      throw swiftStatus(409);
    }
    if (err instanceof ObjectStoreError && err.reason === 'ContainerNotFound') throw swiftStatus(404);
    throw err;
  }
  sr.reply.code(204);
  return undefined;
}
