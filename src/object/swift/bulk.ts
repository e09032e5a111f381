// Bulk operations, as Swift's bulk middleware.
//
// `?bulk-delete` (POST or DELETE, any path of the account): the body lists
// URL-quoted `container/object` or `container` names, one a line; objects
// are deleted first, then containers, each as the caller's own DELETE (so
// ACLs and versioning apply). `?extract-archive=tar|tar.gz|tar.bz2` (PUT to
// the account, a container or a container/prefix): each file of the archive
// becomes an object (`<container>/<object>` below the path), containers
// created as needed, each as the caller's own PUT (ACLs, quotas); the
// request's X-Object-Meta-* and X-Delete-At/-After go to every object. The
// archive is read as it arrives (src/common/tar.ts; gzip by zlib, bzip2 by
// the host's bzip2). Both answer 200 with the outcome in the body, in the
// format Accept asks (text/plain, JSON or XML): `Response Status`, counts,
// and `Errors` as [name, status] pairs, as Swift does (without its
// whitespace heartbeats: the answer is sent at the end).
import { spawn } from 'node:child_process';
import type { IncomingHttpHeaders } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { readTar, TarFormatError } from '../../common/tar.ts';
import { ApiError } from '../../common/errors.ts';
import { quote, readDeleteList, renderBulk, statusLine, type BulkResult } from './bulk-format.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { bestFormat, header } from './headers.ts';
import { BULK_LIMITS, DEFAULT_CONSTRAINTS } from './info.ts';
import type { SwiftMiddleware, SwiftRequest } from './request.ts';
import { discard, isSuccess, type Subrequests } from './subrequest.ts';

/** The host has no bzip2: tar.bz2 cannot be read here. */
class Bzip2Missing extends Error {}

const ARCHIVES: Record<string, '' | 'gz' | 'bz2'> = { tar: '', 'tar.gz': 'gz', 'tar.bz2': 'bz2' };

export function bulkMiddleware(sub: Subrequests): SwiftMiddleware {
  const self: SwiftMiddleware = async (sr, next) => {
    const extract = sr.query['extract-archive'];
    if (extract !== undefined && sr.method === 'PUT') {
      const type = ARCHIVES[extract.toLowerCase().replace(/^\.+|\.+$/g, '')];
      if (type === undefined) throw swiftError(400, 'Unsupported archive format');
      return answer(sr, 'extract', (format) => extractArchive(sr, type, sub, self, format));
    }
    if (sr.query['bulk-delete'] !== undefined && (sr.method === 'POST' || sr.method === 'DELETE')) {
      return answer(sr, 'delete', (format) => bulkDelete(sr, sub, self, format));
    }
    return next();
  };
  return self;
}

type Outcome = { result: BulkResult; errors: Array<[string, string]> };

async function answer(sr: SwiftRequest, root: 'delete' | 'extract', run: (format: string | null) => Promise<Outcome>): Promise<string> {
  const format = bestFormat(header(sr.headers, 'accept'));
  const { result, errors } = await run(format);
  sr.reply.code(200);
  if (format) sr.reply.header('Content-Type', format);
  else sr.reply.header('Content-Type', 'text/plain');
  return renderBulk(format ?? 'text/plain', result, errors, root);
}

/** Swift's HTTPException inside the operation: its status and body go into the answer's body. */
function failed(result: BulkResult, e: unknown): void {
  if (e instanceof ApiError) {
    result['Response Status'] = statusLine(e.status);
    result['Response Body'] = e.message;
    return;
  }
  throw e;
}

const lengthRequired = () => swiftStatus(411);

async function bulkDelete(sr: SwiftRequest, sub: Subrequests, self: SwiftMiddleware, format: string | null): Promise<Outcome> {
  const result: BulkResult = { 'Response Status': '200 OK', 'Response Body': '', 'Number Deleted': 0, 'Number Not Found': 0 };
  const errors: Array<[string, string]> = [];
  try {
    if (!format) throw swiftStatus(406);
    const ct = sr.contentType;
    if (ct && !ct.startsWith('text/plain')) throw swiftStatus(406);
    if (header(sr.headers, 'content-length') === undefined && !/chunked/i.test(header(sr.headers, 'transfer-encoding') ?? '')) throw lengthRequired();
    const names = await readDeleteList((sr.req.body as Readable | undefined) ?? Readable.from([]));
    const objects = names.filter((n) => n.replace(/^\/+|\/+$/g, '').includes('/'));
    const containers = names.filter((n) => !n.replace(/^\/+|\/+$/g, '').includes('/'));
    let badGateway = false;
    for (const name of [...objects, ...containers]) {
      const path = name.replace(/^\/+/, '');
      const slash = path.indexOf('/');
      const container = slash < 0 ? path : path.slice(0, slash);
      const object = slash < 0 ? undefined : path.slice(slash + 1);
      const a = await sub.run(self, sr, { method: 'DELETE', container, object: object || undefined, headers: {}, query: {} });
      discard(a.body);
      if (isSuccess(a.status)) result['Number Deleted'] = Number(result['Number Deleted']) + 1;
      else if (a.status === 404) result['Number Not Found'] = Number(result['Number Not Found']) + 1;
      else {
        if (a.status >= 500) badGateway = true;
        errors.push([quote(name), statusLine(a.status)]);
      }
      if (errors.length >= BULK_LIMITS.max_failed_deletes) throw swiftError(400, 'Max delete failures exceeded');
    }
    if (errors.length) result['Response Status'] = statusLine(badGateway ? 502 : 400);
    else if (!Number(result['Number Deleted']) && !Number(result['Number Not Found'])) {
      result['Response Status'] = statusLine(400);
      result['Response Body'] = 'Invalid bulk delete.';
    }
  } catch (e) {
    failed(result, e);
  }
  return { result, errors };
}

/** The archive's bytes, decompressed as they arrive. */
function decompress(body: Readable, type: '' | 'gz' | 'bz2'): AsyncIterable<Buffer> {
  if (type === '') return body;
  if (type === 'gz') {
    const z = createGunzip();
    body.on('error', (e) => z.destroy(e));
    return body.pipe(z);
  }
  const child = spawn('bzip2', ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdin.on('error', () => { /* the child's exit says what went wrong */ });
  body.on('error', (e) => { child.kill(); out.destroy(e); });
  body.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new TarFormatError(`bzip2: ${stderr.trim().split('\n').pop() || `exit ${code}`}`));
  });
  child.on('error', (e) => out.destroy((e as NodeJS.ErrnoException).code === 'ENOENT' ? new Bzip2Missing() : e));
  return out;
}

/** Object headers an extracted file takes from the request. */
function carriedHeaders(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (k === 'x-delete-at' || k === 'x-delete-after' || k.startsWith('x-object-meta-')) out[k] = v;
  }
  return out;
}

async function extractArchive(sr: SwiftRequest, type: '' | 'gz' | 'bz2', sub: Subrequests, self: SwiftMiddleware, format: string | null): Promise<Outcome> {
  const result: BulkResult = { 'Response Status': '201 Created', 'Response Body': '', 'Number Files Created': 0 };
  const errors: Array<[string, string]> = [];
  const maxPath = DEFAULT_CONSTRAINTS.max_object_name_length + DEFAULT_CONSTRAINTS.max_container_name_length + 2;
  try {
    if (!format) throw swiftStatus(406);
    if (header(sr.headers, 'content-length') === undefined && !/chunked/i.test(header(sr.headers, 'transfer-encoding') ?? '')) throw lengthRequired();
    const base = [sr.container, sr.object].filter((p) => p !== undefined && p !== '').join('/').replace(/\/+$/, '');
    const accessed = new Set<string>();
    let created = 0;
    let failedType = 400;
    const carried = carriedHeaders(sr.headers);
    const body = (sr.req.body as Readable | undefined) ?? Readable.from([]);
    try {
      for await (const entry of readTar(decompress(body, type))) {
        if (errors.length >= BULK_LIMITS.max_failed_extractions) break;
        if (entry.type !== 'file') continue;
        let path = entry.name;
        if (path.startsWith('./')) path = path.slice(2);
        path = path.replace(/^\/+/, '');
        if (base) path = `${base}/${path}`;
        if (!path.includes('/')) continue;
        const slash = path.indexOf('/');
        const container = path.slice(0, slash);
        const object = path.slice(slash + 1);
        const shown = quote(path.slice(0, maxPath));
        if (entry.size > DEFAULT_CONSTRAINTS.max_file_size) {
          errors.push([shown, statusLine(413)]);
          continue;
        }
        let containerFailure: [string, string] | null = null;
        if (!accessed.has(container)) {
          const head = await sub.run(self, sr, { method: 'HEAD', container, headers: {}, query: {} });
          discard(head.body);
          if (head.status === 404) {
            const put = await sub.run(self, sr, { method: 'PUT', container, headers: {}, query: {} });
            discard(put.body);
            if (isSuccess(put.status)) {
              created++;
              if (created > BULK_LIMITS.max_containers_per_extraction) {
                throw swiftError(400, `More than ${BULK_LIMITS.max_containers_per_extraction} containers to create from tar.`);
              }
            } else {
              containerFailure = [quote(`/${sr.account}/${container}`.slice(0, maxPath)), statusLine(put.status)];
              if (put.status === 401) throw swiftStatus(401);
            }
          } else if (!isSuccess(head.status)) {
            containerFailure = [quote(`/${sr.account}/${container}`.slice(0, maxPath)), statusLine(head.status)];
            if (head.status === 401) throw swiftStatus(401);
          }
        }
        if (!object.replace(/\//g, '')) {
          errors.push([shown, statusLine(400)]);
          continue;
        }
        const put = await sub.run(self, sr, {
          method: 'PUT', container, object, query: {},
          headers: { ...carried, 'content-length': String(entry.size) },
          body: Readable.from(entry.body(), { objectMode: false }),
        });
        discard(put.body);
        accessed.add(container);
        if (isSuccess(put.status)) {
          result['Number Files Created'] = Number(result['Number Files Created']) + 1;
        } else {
          if (containerFailure) errors.push(containerFailure);
          if (put.status === 401) {
            errors.push([shown, statusLine(401)]);
            throw swiftStatus(401);
          }
          if (put.status >= 500) failedType = 502;
          errors.push([shown, statusLine(put.status)]);
        }
      }
    } catch (e) {
      if (e instanceof Bzip2Missing) {
        result['Response Status'] = statusLine(501);
        result['Response Body'] = 'tar.bz2 archives need bzip2 on the server';
        return { result, errors };
      }
      if (e instanceof TarFormatError || (e as NodeJS.ErrnoException)?.code?.startsWith?.('Z_')) {
        result['Response Status'] = statusLine(400);
        result['Response Body'] = `Invalid Tar File: ${(e as Error).message}`;
        return { result, errors };
      }
      throw e;
    }
    if (errors.length) result['Response Status'] = statusLine(failedType);
    else if (!Number(result['Number Files Created'])) {
      result['Response Status'] = statusLine(400);
      result['Response Body'] = 'Invalid Tar File: No Valid Files';
    }
  } catch (e) {
    failed(result, e);
  }
  return { result, errors };
}
