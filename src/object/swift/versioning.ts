// Object versioning, as Swift's versioned_writes middleware (both modes).
//
// The older mode: a container's X-Versions-Location (stack) or
// X-History-Location (history) names another container of the account
// (kept in the container's sysmeta, shown back on GET/HEAD). A PUT over an
// existing object first copies it there as `<len(name) as 3 hex digits>
// <name>/<its timestamp>` (a store copy: the bytes are shared, not copied).
// A DELETE in stack mode restores the newest copy in place of the object
// and removes that copy (no copy: the object goes); in history mode it
// copies the object there, writes a delete marker, and removes the object.
// A versions container that does not exist is Swift's 412.
//
// The newer mode: `X-Versions-Enabled: true` on a container keeps every
// version of every object written while it is on, in an internal container
// of the account (`versions/<container>`, hidden from listings): each
// object's versions are named by its name and the inverted timestamp of the
// write, so a prefix walk lists them newest first. Objects answer with
// X-Object-Version-Id (their write's timestamp); `?version-id=<id>` reads,
// heads or deletes one version; a DELETE without it leaves a delete marker as
// the newest version (the object is then absent); deleting the newest
// version makes the one before it current again. `GET <container>?versions`
// lists every version (name, version_id, is_latest, and delete markers as
// content_type application/x-deleted;swift_versions_deleted=1), with
// prefix/marker/version_marker/limit.
import { escapeXml } from '../../common/text.ts';
import type { ContainerInfo, ObjectEntry, ObjectInfo } from '../store.ts';
import { ObjectStoreError, swiftTimestamp } from '../store.ts';
import { checkContainerAccess } from './access.ts';
import { loadContainer, loadObject } from './container.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { header, headerValue, httpDate, listingDate } from './headers.ts';
import { listingFormat, listOptions } from './listing.ts';
import type { SwiftMiddleware, SwiftRequest } from './request.ts';
import { sendObject } from './object.ts';
import { isSuccess } from './subrequest.ts';
import {
  DELETE_MARKER_CONTENT_TYPE, internalTs, SEP, splitVersionName, truthy, VERSION_ID, versionName, VERSIONS_ENABLED, versionsContainerName,
} from './versions-layout.ts';

export const VERSIONS_LOCATION = 'versions-location';
export const VERSIONS_MODE = 'versions-mode';


/** `%03x<name>/`: the legacy modes' prefix of an object's copies. */
export const legacyPrefix = (name: string) => `${Buffer.byteLength(name, 'utf8').toString(16).padStart(3, '0')}${name}/`;

export function versioningMiddleware(): SwiftMiddleware {
  const self: SwiftMiddleware = async (sr, next) => {
    if (sr.container === undefined) return next();
    if (sr.object === undefined) return containerStep(sr, next);
    const c = await loadContainer(sr);
    if (!c) return next();
    if (truthy(c.sysmeta[VERSIONS_ENABLED]) || sr.query['version-id'] !== undefined || c.sysmeta[VERSIONS_ENABLED] !== undefined) {
      return objectVersions(sr, c, next);
    }
    const location = c.sysmeta[VERSIONS_LOCATION];
    if (!location || (sr.method !== 'PUT' && sr.method !== 'DELETE')) return next();
    if (sr.method === 'PUT') {
      await copyCurrent(sr, c, location);
      return next();
    }
    if (c.sysmeta[VERSIONS_MODE] === 'history') {
      await copyCurrent(sr, c, location);
      const vc = await versionsContainer(sr, location);
      await sr.ctx.store.putObject(vc, `${legacyPrefix(sr.object)}${internalTs(String(Date.now() / 1000))}`, emptyBody(), {
        size: 0, contentType: DELETE_MARKER_CONTENT_TYPE,
      });
      return next();
    }
    return popVersion(sr, c, location, next);
  };
  return self;
}

async function* emptyBody(): AsyncGenerator<Buffer> {}

/** Container PUT/POST: the versioning headers checked and kept; GET/HEAD: shown. */
async function containerStep(sr: SwiftRequest, next: () => Promise<unknown>): Promise<unknown> {
  if (sr.method === 'PUT' || sr.method === 'POST') {
    const change = containerChange(sr);
    const body = await next();
    if (Object.keys(change).length && sr.reply.statusCode < 300) {
      const c = await sr.ctx.store.getContainer(sr.project, sr.container!);
      if (c) sr.containerInfo = await sr.ctx.store.updateContainer(c, { sysmeta: change });
    }
    return body;
  }
  if (sr.method === 'GET' && sr.query.versions !== undefined) {
    const c = await loadContainer(sr);
    if (c && c.sysmeta[VERSIONS_ENABLED] !== undefined) return listVersions(sr, c);
  }
  if (sr.method === 'DELETE') {
    const c = await loadContainer(sr);
    if (c && c.sysmeta[VERSIONS_ENABLED] !== undefined) {
      const vc = await sr.ctx.store.getContainer(sr.project, versionsContainerName(c.name), { internal: true });
      if (vc && vc.objectCount > 0) {
        await checkContainerAccess(sr, c, 'write-object');
        throw swiftError(409, 'There was a conflict when trying to complete your request.');
      }
      const body = await next();
      if (vc) await sr.ctx.store.deleteContainer(vc).catch(() => undefined);
      return body;
    }
  }
  const body = await next();
  if ((sr.method === 'GET' || sr.method === 'HEAD') && sr.reply.statusCode < 300) {
    const c = sr.containerInfo;
    if (c) {
      const loc = c.sysmeta[VERSIONS_LOCATION];
      if (loc) sr.reply.header(c.sysmeta[VERSIONS_MODE] === 'history' ? 'X-History-Location' : 'X-Versions-Location', headerValue(loc));
      if (c.sysmeta[VERSIONS_ENABLED] !== undefined) sr.reply.header('X-Versions-Enabled', truthy(c.sysmeta[VERSIONS_ENABLED]) ? 'True' : 'False');
    }
  }
  return body;
}

/** The sysmeta a container PUT/POST sets (null removes), after Swift's checks. */
function containerChange(sr: SwiftRequest): Record<string, string | null> {
  const h = sr.headers;
  let versions = header(h, 'x-versions-location');
  let history = header(h, 'x-history-location');
  const change: Record<string, string | null> = {};
  if (versions !== undefined && history !== undefined) {
    if (!history) history = undefined;
    else if (versions) throw swiftError(400, 'Only one of X-Versions-Location or X-History-Location may be specified');
    else versions = undefined;
  }
  let remove = !!header(h, 'x-remove-versions-location') || !!header(h, 'x-remove-history-location');
  if (versions !== undefined || history !== undefined) {
    const value = (versions ?? history)!;
    if (!value) remove = true;
    else {
      if (truthy(header(h, 'x-versions-enabled'))) throw swiftError(400, 'Cannot enable object versioning on a container configured as X-Versions-Location or X-History-Location');
      let location: string;
      try {
        location = decodeURIComponent(value);
      } catch {
        location = value;
      }
      if (location.includes('/')) throw swiftError(412, 'Container name cannot contain slashes');
      change[VERSIONS_LOCATION] = location;
      change[VERSIONS_MODE] = versions !== undefined ? 'stack' : 'history';
      remove = false;
    }
  }
  if (remove) {
    change[VERSIONS_LOCATION] = null;
    change[VERSIONS_MODE] = null;
  }
  const enabled = header(h, 'x-versions-enabled');
  if (enabled !== undefined) {
    const on = truthy(enabled);
    if (on && (sr.containerInfo?.sysmeta[VERSIONS_LOCATION] || change[VERSIONS_LOCATION])) {
      throw swiftError(400, 'Cannot enable object versioning on a container configured as X-Versions-Location or X-History-Location');
    }
    change[VERSIONS_ENABLED] = on ? 'true' : 'false';
  }
  return change;
}

async function versionsContainer(sr: SwiftRequest, location: string): Promise<ContainerInfo> {
  const vc = await sr.ctx.store.getContainer(sr.project, location);
  if (!vc) throw swiftStatus(412);
  return vc;
}

/** Copies the object (if any) to the versions container under its timestamp. */
async function copyCurrent(sr: SwiftRequest, c: ContainerInfo, location: string): Promise<void> {
  await checkContainerAccess(sr, c, 'write-object');
  const cur = await sr.ctx.store.headObject(c, sr.object!);
  if (!cur) return;
  const vc = await versionsContainer(sr, location);
  try {
    await sr.ctx.store.copyObject({ container: c, name: sr.object! }, { container: vc, name: `${legacyPrefix(sr.object!)}${internalTs(cur.timestamp)}` });
  } catch (e) {
    if (e instanceof ObjectStoreError && e.reason === 'ObjectNotFound') return;
    throw e;
  }
}

/** Stack mode DELETE: the newest copy goes back in place of the object. */
async function popVersion(sr: SwiftRequest, c: ContainerInfo, location: string, next: () => Promise<unknown>): Promise<unknown> {
  const store = sr.ctx.store;
  const vc = await store.getContainer(sr.project, location);
  if (!vc) return next();
  const prefix = legacyPrefix(sr.object!);
  let marker: string | undefined;
  let authed = false;
  for (;;) {
    const page = await store.listObjects(vc, { prefix, marker, limit: 100, reverse: true });
    const objects = page.filter((e) => e.kind === 'object');
    for (let i = 0; i < objects.length; i++) {
      const v = objects[i]!;
      if (v.kind !== 'object') continue;
      if (!authed) {
        await checkContainerAccess(sr, c, 'write-object');
        authed = true;
      }
      if (v.contentType === DELETE_MARKER_CONTENT_TYPE) {
        const cur = await store.headObject(c, sr.object!);
        if (cur) return next();
        // the object is deleted already: restore the version before the marker, drop the marker
        for (const w of objects.slice(i + 1)) {
          if (w.kind !== 'object') continue;
          if (w.contentType === DELETE_MARKER_CONTENT_TYPE) break;
          if (await restore(sr, c, vc, w.name)) break;
        }
        await store.deleteObject(vc, v.name);
        sr.reply.code(204);
        return undefined;
      }
      if (await restore(sr, c, vc, v.name)) {
        sr.reply.code(204);
        return undefined;
      }
    }
    if (page.length < 100) break;
    marker = page[page.length - 1]!.name;
  }
  return next();
}

/** Copies a version back in place of the object and removes the version; false when it went meanwhile. */
async function restore(sr: SwiftRequest, c: ContainerInfo, vc: ContainerInfo, name: string): Promise<boolean> {
  try {
    await sr.ctx.store.copyObject({ container: vc, name }, { container: c, name: sr.object! });
  } catch (e) {
    if (e instanceof ObjectStoreError && e.reason === 'ObjectNotFound') return false;
    throw e;
  }
  await sr.ctx.store.deleteObject(vc, name);
  return true;
}

// ---- X-Versions-Enabled


async function internalContainer(sr: SwiftRequest, c: ContainerInfo, create: boolean): Promise<ContainerInfo | null> {
  const store = sr.ctx.store;
  const got = await store.getContainer(sr.project, versionsContainerName(c.name), { internal: true });
  if (got || !create) return got;
  return (await store.createContainer(sr.project, versionsContainerName(c.name), { internal: true })).container;
}

async function objectVersions(sr: SwiftRequest, c: ContainerInfo, next: () => Promise<unknown>): Promise<unknown> {
  const enabled = truthy(c.sysmeta[VERSIONS_ENABLED]);
  const id = sr.query['version-id'];
  const store = sr.ctx.store;
  if (id !== undefined) {
    if (!['GET', 'HEAD', 'DELETE', 'PUT', 'POST'].includes(sr.method)) return next();
    if (sr.method === 'PUT') throw swiftError(400, 'version-id is not allowed on PUT');
    if (id !== 'null' && !/^\d{10}\.\d{5}$/.test(id)) throw swiftError(400, 'Invalid version-id');
    await checkContainerAccess(sr, c, sr.method === 'GET' || sr.method === 'HEAD' ? 'read-object' : 'write-object');
    return oneVersion(sr, c, id, next);
  }
  if (sr.method === 'PUT' && enabled) {
    await checkContainerAccess(sr, c, 'write-object');
    const cur = await store.headObject(c, sr.object!);
    if (cur && !cur.sysmeta[VERSION_ID]) await keepUnversioned(sr, c, cur);
    // The version's id is chosen before the write and recorded with the object (and with its copy).
    const id = internalTs(swiftTimestamp());
    sr.sysmeta = { ...sr.sysmeta, [VERSION_ID]: id };
    const body = await next();
    if (isSuccess(sr.reply.statusCode)) {
      const vc = (await internalContainer(sr, c, true))!;
      try {
        await store.copyObject({ container: c, name: sr.object! }, { container: vc, name: versionName(sr.object!, id) });
      } catch (e) {
        if (!(e instanceof ObjectStoreError && e.reason === 'ObjectNotFound')) throw e;
      }
      sr.reply.header('X-Object-Version-Id', id);
    }
    return body;
  }
  if (sr.method === 'DELETE' && enabled) {
    await checkContainerAccess(sr, c, 'write-object');
    const vc = (await internalContainer(sr, c, true))!;
    const cur = await store.headObject(c, sr.object!);
    if (cur && !cur.sysmeta[VERSION_ID]) await keepUnversioned(sr, c, cur);
    const markerId = nextTs(cur?.timestamp);
    await store.putObject(vc, versionName(sr.object!, markerId), emptyBody(), { size: 0, contentType: DELETE_MARKER_CONTENT_TYPE, sysmeta: { [VERSION_ID]: markerId } });
    if (cur) await store.deleteObject(c, sr.object!);
    sr.reply.code(204).header('X-Object-Version-Id', markerId).header('Content-Type', 'text/html; charset=UTF-8');
    return undefined;
  }
  if (sr.method === 'GET' || sr.method === 'HEAD') {
    const cur = await loadObject(sr);
    const body = await next();
    if (cur && (isSuccess(sr.reply.statusCode) || sr.reply.statusCode === 304)) {
      sr.reply.header('X-Object-Version-Id', cur.sysmeta[VERSION_ID] ?? 'null');
    }
    return body;
  }
  return next();
}

/** An object written before versioning was on (the "null" version) is kept among the versions, under its own time, before it is replaced or deleted (as the S3 API does: obj-s3's s3/versioning.ts keeps the same layout). */
async function keepUnversioned(sr: SwiftRequest, c: ContainerInfo, cur: ObjectInfo): Promise<void> {
  const vc = (await internalContainer(sr, c, true))!;
  const id = internalTs(cur.timestamp);
  await sr.ctx.store.copyObject({ container: c, name: sr.object! }, { container: vc, name: versionName(sr.object!, id) }, {
    derive: (o) => ({ sysmeta: { ...o.sysmeta, [VERSION_ID]: id }, deleteAt: null }),
  }).catch((e: unknown) => { if (!(e instanceof ObjectStoreError && e.reason === 'ObjectNotFound')) throw e; });
}

let lastMarker = 0;
/** A timestamp for a delete marker: now, and after the object's own. */
function nextTs(after: string | undefined): string {
  let t = Math.max(Date.now() / 1000, after ? Number(after) + 0.00001 : 0, lastMarker + 0.00001);
  t = Math.round(t * 100000) / 100000;
  lastMarker = t;
  return internalTs(String(t));
}

async function oneVersion(sr: SwiftRequest, c: ContainerInfo, id: string, next: () => Promise<unknown>): Promise<unknown> {
  const store = sr.ctx.store;
  const vc = await internalContainer(sr, c, false);
  const cur = await store.headObject(c, sr.object!);
  const curIsUnversioned = !!cur && !cur.sysmeta[VERSION_ID];
  if (id === 'null') {
    if (!curIsUnversioned) throw swiftStatus(404);
    if (sr.method === 'DELETE' || sr.method === 'GET' || sr.method === 'HEAD' || sr.method === 'POST') {
      const q = { ...sr.query };
      delete q['version-id'];
      sr.query = q;
      const body = await next();
      if (sr.method !== 'DELETE' && sr.method !== 'POST') sr.reply.header('X-Object-Version-Id', 'null');
      return body;
    }
  }
  if (!vc) throw swiftStatus(404);
  const vname = versionName(sr.object!, id);
  const v = await store.headObject(vc, vname);
  if (!v) throw swiftStatus(404);
  if (sr.method === 'POST') throw swiftError(400, 'POST to a version is not allowed');
  if (sr.method === 'DELETE') {
    await store.deleteObject(vc, vname);
    const isCurrent = !!cur && cur.sysmeta[VERSION_ID] === id;
    if (isCurrent || v.contentType === DELETE_MARKER_CONTENT_TYPE) {
      // the newest version went: the one before it becomes current (or nothing, when that is a marker)
      await restoreLatest(sr, c, vc, isCurrent ? cur : null);
    }
    sr.reply.code(204).header('X-Object-Version-Id', id).header('Content-Type', 'text/html; charset=UTF-8');
    return undefined;
  }
  if (v.contentType === DELETE_MARKER_CONTENT_TYPE) {
    throw swiftStatus(404, { 'X-Object-Version-Id': id, 'Content-Type': DELETE_MARKER_CONTENT_TYPE });
  }
  const body = sendObject(sr, v);
  sr.reply.header('X-Object-Version-Id', id).header('Last-Modified', httpDate(id)).header('X-Timestamp', id);
  return body;
}

/** After the newest version of an object is removed: the newest remaining one becomes current, unless it is a marker. */
async function restoreLatest(sr: SwiftRequest, c: ContainerInfo, vc: ContainerInfo, removedCurrent: ObjectInfo | null): Promise<void> {
  const store = sr.ctx.store;
  const cur = await store.headObject(c, sr.object!);
  if (cur && !removedCurrent) return;
  const [latest] = (await store.listObjects(vc, { prefix: `${sr.object!}${SEP}`, limit: 1 })).filter((e) => e.kind === 'object');
  if (!latest || latest.kind !== 'object' || latest.contentType === DELETE_MARKER_CONTENT_TYPE) {
    if (removedCurrent) await store.deleteObject(c, sr.object!);
    return;
  }
  await store.copyObject({ container: vc, name: latest.name }, { container: c, name: sr.object! });
}

async function listVersions(sr: SwiftRequest, c: ContainerInfo): Promise<unknown> {
  await checkContainerAccess(sr, c, 'list');
  const store = sr.ctx.store;
  const vc = await internalContainer(sr, c, false);
  // the listing's parameters as every Swift listing reads them (400/412 for a bad limit)
  const { limit, prefix = '', marker } = listOptions(sr.query);
  // Versions of a name come newest first, its "null" version (an unversioned current object) last.
  const vmarker = marker && sr.query.version_marker && sr.query.version_marker !== 'null' ? sr.query.version_marker : undefined;
  interface Entry { name: string; version_id: string; is_latest: boolean; bytes: number; hash: string; content_type: string; last_modified: string }
  const versioned = vc
    ? await store.listObjects(vc, { prefix: prefix || undefined, marker: marker && (vmarker ? versionName(marker, vmarker) : `${marker}${SEP}\uffff`), limit })
    : [];
  const nulls: Array<Extract<ObjectEntry, { kind: 'object' }>> = [];
  // the marker's own null version still follows a version marker
  if (marker && vmarker) {
    const o = await store.headObject(c, marker);
    if (o && !o.sysmeta[VERSION_ID] && (!prefix || marker.startsWith(prefix))) {
      nulls.push({ kind: 'object', name: marker, size: o.size, etag: o.etag, contentType: o.contentType, timestamp: o.timestamp, sysmeta: o.sysmeta });
    }
  }
  for (const e of await store.listObjects(c, { prefix: prefix || undefined, marker, limit })) {
    if (e.kind === 'object' && !e.sysmeta[VERSION_ID]) nulls.push(e);
  }
  const currentIsNull = new Set(nulls.map((e) => e.name));
  const out: Entry[] = [];
  const seen = new Set<string>();
  for (const e of versioned) {
    if (e.kind !== 'object') continue;
    const v = splitVersionName(e.name);
    if (!v) continue;
    const latest = !seen.has(v.name) && !currentIsNull.has(v.name) && !(marker === v.name && vmarker);
    seen.add(v.name);
    out.push({ name: v.name, version_id: v.id, is_latest: latest, bytes: e.size, hash: e.etag, content_type: e.contentType, last_modified: listingDate(v.id) });
  }
  for (const e of nulls) {
    out.push({ name: e.name, version_id: 'null', is_latest: true, bytes: e.size, hash: e.etag, content_type: e.contentType, last_modified: listingDate(e.timestamp) });
  }
  const byName = (a: Entry, b: Entry) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
  out.sort(byName);
  const page = out.slice(0, limit);
  const format = listingFormat(sr.query, header(sr.headers, 'accept'));
  if (!page.length) {
    sr.reply.code(204).header('Content-Type', format === 'json' ? 'application/json; charset=utf-8' : format === 'xml' ? 'application/xml; charset=utf-8' : 'text/plain; charset=utf-8');
    return undefined;
  }
  if (format === 'json') {
    sr.reply.code(200).header('Content-Type', 'application/json; charset=utf-8');
    return JSON.stringify(page);
  }
  if (format === 'xml') {
    let x = `<?xml version="1.0" encoding="UTF-8"?>\n<container name="${escapeXml(c.name)}">`;
    for (const e of page) {
      x += `<object><name>${escapeXml(e.name)}</name><version_id>${e.version_id}</version_id><is_latest>${e.is_latest}</is_latest><hash>${e.hash}</hash>`
        + `<bytes>${e.bytes}</bytes><content_type>${escapeXml(e.content_type)}</content_type><last_modified>${e.last_modified}</last_modified></object>`;
    }
    sr.reply.code(200).header('Content-Type', 'application/xml; charset=utf-8');
    return `${x}</container>`;
  }
  sr.reply.code(200).header('Content-Type', 'text/plain; charset=utf-8');
  return page.map((e) => `${e.name}\n`).join('');
}

