// Symlinks, as Swift's symlink middleware: a zero-byte object PUT with
// `X-Symlink-Target: <container>/<object>` (and `X-Symlink-Target-Account`
// for another account) keeps its target in sysmeta; a GET or HEAD of it is
// one of the target (its bytes and metadata, `Content-Location` naming it),
// through chains of up to SYMLOOP_MAX links (then 409), with the caller's
// read access checked on every container passed (a TempURL's scope too);
// `?symlink=get` answers the link itself with its X-Symlink-* headers. A
// static link (`X-Symlink-Target-Etag`) is checked when made (the target
// exists with that ETag, else 409; its size kept as X-Symlink-Target-Bytes,
// its content type the link's unless given) and when read (409 once the
// target changed). A POST applies its metadata to the link and answers 307
// with the target's Location; a POST with X-Symlink-Target is a 400. DELETE
// removes the link only; COPY (or X-Copy-From) copies the target, or with
// `?symlink=get` the link itself (object.ts). JSON container listings carry
// `symlink_path` (and `symlink_etag`, `symlink_bytes`) for links
// (listing.ts). A GET of a version (`?version-id=`) answers the version as
// stored, without following it.
import { ApiError } from '../../common/errors.ts';
import type { Meta } from '../store.ts';
import { checkContainerAccess } from './access.ts';
import { loadContainer, loadObject } from './container.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { header } from './headers.ts';
import {
  isSymlink, quotePath, SYMLINK_ACCOUNT, SYMLINK_BYTES, SYMLINK_ETAG, SYMLINK_TARGET, SYMLOOP_MAX, targetPath, unquoteEtag, symlinkHeaders,
} from './symlink-meta.ts';
import { containerObjectPath, decodePath, projectOfAccount, tempUrlGrant, type SwiftMiddleware, type SwiftRequest } from './request.ts';

const FORM = 'X-Symlink-Target header must be of the form <container name>/<object name>';

/** Points `sr` at the target a link's sysmeta names (the caches of the old target dropped). */
function retarget(sr: SwiftRequest, sysmeta: Meta): void {
  const { container, object } = containerObjectPath(sysmeta[SYMLINK_TARGET]!, 'X-Symlink-Target');
  const account = sysmeta[SYMLINK_ACCOUNT] !== undefined ? decodePath(sysmeta[SYMLINK_ACCOUNT]) : sr.account;
  const grant = tempUrlGrant(sr);
  // A TempURL grants its account, or its container, and nothing beyond (Swift: 401).
  if (grant && (account !== sr.account || (grant.scope === 'container' && container !== grant.container))) throw swiftStatus(401);
  if (account !== sr.account) {
    const project = projectOfAccount(account);
    if (!project) throw swiftStatus(sr.cred ? 403 : 401);
    sr.account = account;
    sr.project = project;
    sr.level = undefined;
  }
  sr.container = container;
  sr.object = object;
  sr.containerInfo = undefined;
  sr.objectInfo = undefined;
}

const conflict = (message: string, location: string | undefined): ApiError =>
  swiftError(409, message, location ? { 'Content-Location': location } : {});

/**
 * Follows the links from `sr`'s object, pointing `sr` at the object finally
 * named (loaded into `sr.objectInfo`; null when it does not exist), checking
 * the caller's read access at every step and static links' ETags; with
 * `softLinks` false only static links are followed (a static link's own
 * check). Returns the path of the last target (Content-Location), undefined
 * when `sr` named no link.
 */
export async function followSymlinks(sr: SwiftRequest, softLinks = true, expectEtag?: string): Promise<string | undefined> {
  let location: string | undefined;
  let expected = expectEtag;
  let soft = softLinks;
  for (let hops = 0; ; hops++) {
    const c = await loadContainer(sr);
    await checkContainerAccess(sr, c, 'read-object');
    const o = c ? await loadObject(sr) : null;
    if (!o) return location;
    const linkEtag = o.sysmeta[SYMLINK_ETAG];
    if (!isSymlink(o) || (!soft && linkEtag === undefined)) {
      const etag = unquoteEtag(o.etag);
      if (expected !== undefined && etag !== expected) {
        throw conflict(`Object Etag '${etag}' does not match X-Symlink-Target-Etag header '${expected}'`, location);
      }
      return location;
    }
    if (expected !== undefined && (linkEtag ?? o.etag) !== expected) throw conflict('X-Symlink-Target-Etag headers do not match', location);
    if (hops >= SYMLOOP_MAX) throw swiftError(409, `Too many levels of symbolic links, maximum allowed is ${SYMLOOP_MAX}`);
    location = targetPath(sr.account, o.sysmeta);
    expected = linkEtag;
    soft = true;
    retarget(sr, o.sysmeta);
  }
}

/** Runs `fn` with `sr` pointing wherever `followSymlinks` took it, then points it back (the middleware before see the request as sent). */
async function atTarget(sr: SwiftRequest, fn: (location: string | undefined) => Promise<unknown>): Promise<unknown> {
  const saved = { account: sr.account, project: sr.project, container: sr.container, object: sr.object, level: sr.level, containerInfo: sr.containerInfo, objectInfo: sr.objectInfo };
  try {
    return await fn(await followSymlinks(sr));
  } finally {
    Object.assign(sr, saved);
  }
}

export function symlinkMiddleware(): SwiftMiddleware {
  return async (sr, next) => {
    if (sr.object === undefined) return next();
    const target = header(sr.headers, 'x-symlink-target');
    switch (sr.method) {
      case 'GET':
      case 'HEAD': {
        if (sr.query['version-id'] !== undefined) return next();
        if (sr.query.symlink === 'get') {
          const body = await next();
          const o = sr.objectInfo ?? await loadObject(sr);
          if (sr.reply.statusCode < 300 && o) sr.reply.headers(symlinkHeaders(o.sysmeta));
          return body;
        }
        return atTarget(sr, async (location) => {
          if (location === undefined) return next();
          sr.reply.header('Content-Location', location);
          try {
            return await next();
          } catch (e) {
            if (e instanceof ApiError) e.headers['Content-Location'] = location;
            throw e;
          }
        });
      }
      case 'PUT':
        if (target === undefined) return next();
        await prepareLink(sr, target);
        return next();
      case 'POST': {
        if (target !== undefined) throw swiftError(400, 'A PUT request is required to set a symlink target');
        const body = await next();
        if (sr.reply.statusCode >= 300) return body;
        const c = await loadContainer(sr);
        const o = c ? await sr.ctx.store.headObject(c, sr.object) : null;
        if (!o || !isSymlink(o)) return body;
        const etag = o.sysmeta[SYMLINK_ETAG];
        sr.reply.code(307).headers({ Location: targetPath(sr.account, o.sysmeta), 'Content-Type': 'text/html; charset=UTF-8', ...(etag !== undefined ? { 'X-Symlink-Target-Etag': etag } : {}) });
        return 'The requested POST was applied to a symlink. POST directly to the target to apply requested metadata.';
      }
      default:
        return next();
    }
  };
}

/** Checks a link's PUT and records its target as the object's sysmeta (a static link's target checked first). */
async function prepareLink(sr: SwiftRequest, target: string): Promise<void> {
  const len = header(sr.headers, 'content-length');
  if (len !== undefined && len !== '0') throw swiftError(400, 'Symlink requests require a zero byte body');
  if (len === undefined && sr.req.body) {
    for await (const chunk of sr.req.body as AsyncIterable<Buffer>) if (chunk.length) throw swiftError(400, 'Symlink requests require a zero byte body');
  }
  let raw = target;
  try {
    raw = decodePath(target);
  } catch { /* refused below */ }
  if (raw.startsWith('/')) throw swiftError(412, FORM);
  const { container, object } = containerObjectPath(target, 'X-Symlink-Target');
  const sysmeta: Meta = { [SYMLINK_TARGET]: quotePath(`${container}/${object}`) };
  let account = sr.account;
  const accountHeader = header(sr.headers, 'x-symlink-target-account');
  if (accountHeader !== undefined) {
    account = decodePath(accountHeader);
    if (!account) throw swiftError(412, 'Account name cannot be empty');
    if (account.includes('/')) throw swiftError(412, 'Account name cannot contain slashes');
    sysmeta[SYMLINK_ACCOUNT] = quotePath(account);
  }
  if (account === sr.account && container === sr.container && object === sr.object) throw swiftError(400, 'Symlink cannot target itself');
  const etag = unquoteEtag(header(sr.headers, 'x-symlink-target-etag'));
  if (etag && /[;"\\]/.test(etag)) throw swiftError(400, 'Bad X-Symlink-Target-Etag format');
  if (etag) {
    // the target as the caller may read it: it exists, with this ETag (following static links only)
    const t: SwiftRequest = { ...sr, containerInfo: undefined, objectInfo: undefined };
    const location = targetPath(sr.account, sysmeta);
    retarget(t, sysmeta);
    const last = await followSymlinks(t, false, etag);
    if (!t.objectInfo) throw conflict('X-Symlink-Target does not exist', last ?? location);
    sysmeta[SYMLINK_ETAG] = etag;
    sysmeta[SYMLINK_BYTES] = String(t.objectInfo.size);
    if (!sr.contentType?.trim()) sr.contentType = t.objectInfo.contentType;
  } else if (!sr.contentType?.trim()) {
    sr.contentType = 'application/symlink';
  }
  sr.sysmeta = { ...sr.sysmeta, ...sysmeta };
}
