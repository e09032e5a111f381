// A Swift request as the API's pipeline sees it: the path split into account,
// container and object (decoded, checked against Swift's naming rules), the
// caller, and what middleware decided. Middleware modules (tempurl, formpost,
// large objects, versioning, quotas, CORS, static web, bulk...) are functions
// `(sr, next) => ...` run in order around the core handlers (pipeline.ts), as
// Swift's proxy pipeline runs its middleware around the proxy app.
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Credentials } from '../../http/auth.ts';
import type { ContainerInfo, ObjectInfo, ObjectStore } from '../store.ts';
import { swiftError, swiftStatus } from './errors.ts';
import { MAX_ACCOUNT_NAME_LENGTH, MAX_CONTAINER_NAME_LENGTH, MAX_OBJECT_NAME_LENGTH } from './headers.ts';
import type { AccessLevel } from './acl.ts';

/** What the Swift API's handlers and middleware share. */
export interface SwiftContext {
  store: ObjectStore;
  log: Logger;
}

export interface SwiftRequest {
  req: FastifyRequest;
  reply: FastifyReply;
  ctx: SwiftContext;
  /** The request method (COPY and OPTIONS included). */
  method: string;
  /** `AUTH_<project id>`. */
  account: string;
  /** The project that owns the account. */
  project: string;
  /** Decoded; undefined for an account request. */
  container?: string;
  /** Decoded, slashes kept; undefined for an account or container request. */
  object?: string;
  /** The query string's parameters (the first of repeated ones), decoded. */
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The request's Content-Type (Swift keeps it as given; the body is never parsed by the server). */
  contentType: string | undefined;
  /** The caller by Keystone token; null: anonymous. */
  cred: Credentials | null;
  /**
   * Set by middleware that authorized the request by other means (a TempURL
   * signature, a FormPost signature): ACLs are not checked then.
   */
  authorized?: boolean;
  /** The caller's access to the account: computed by the core before its handlers run. */
  level?: AccessLevel;
  /** The container record once loaded (cached for the request). */
  containerInfo?: ContainerInfo | null;
  /**
   * Set by middleware: the object sysmeta an object PUT or POST records (a
   * POST replaces the object's sysmeta with it); e.g. X-Object-Manifest.
   */
  sysmeta?: Record<string, string>;
  /** The object record once a middleware loaded it (cached for the request: the core's GET/HEAD reuses it). */
  objectInfo?: ObjectInfo | null;
}

export type TempUrlScope = 'account' | 'container';

/** Requests a TempURL authorized, and for which scope (its large-object segments, static-web pages and symlink targets stay inside it). */
export const tempUrlGrants = new WeakMap<SwiftRequest, { scope: TempUrlScope; container: string }>();
export const tempUrlGrant = (sr: SwiftRequest) => tempUrlGrants.get(sr);

/** The next step of the pipeline: what it answers (a body, or undefined when it used the reply). */
export type SwiftNext = () => Promise<unknown>;
export type SwiftMiddleware = (sr: SwiftRequest, next: SwiftNext) => Promise<unknown>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Percent-decodes a path part as the bytes it names, read as UTF-8 (raw
 * non-ASCII characters are the request line's bytes, read as latin1; an
 * escape that is not two hex digits stays as written); null when the bytes
 * are not UTF-8. The one percent-decoding of the object APIs' paths: Swift's
 * (decodePath), S3's, the static web's labels.
 */
export function percentDecode(raw: string): string | null {
  if (!raw.includes('%') && !/[^\x00-\x7f]/.test(raw)) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(raw[i]!, 'latin1')) bytes.push(b);
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

/** Percent-decodes a path part; 412 when it is not UTF-8 (Swift's check_utf8). */
export function decodePath(raw: string): string {
  const decoded = percentDecode(raw);
  if (decoded === null) throw swiftError(412, 'Invalid UTF8 or contains NULL');
  return decoded;
}

export interface SwiftPath { version: string; account: string; container?: string; object?: string }

/**
 * Splits `/v1/<account>[/<container>[/<object...>]]` (after the service
 * prefix) as Swift's split_path does after decoding: a `%2F` in a container
 * part splits it; an empty container or account, or `.`/`..` as one, is not a
 * path (404); names too long are 400s.
 */
export function splitSwiftPath(rawPath: string): SwiftPath {
  const path = decodePath(rawPath);
  if (path.includes('\u0000')) throw swiftError(412, 'Invalid UTF8 or contains NULL');
  const m = /^\/(v1(?:\.0)?)\/([^/]*)(?:\/([^/]*)(?:\/(.*))?)?$/s.exec(path);
  if (!m) throw swiftStatus(404);
  const [, version, account, container, object] = m;
  if (!account || account === '.' || account === '..') throw swiftStatus(404);
  if (container !== undefined && (container === '.' || container === '..')) throw swiftStatus(404);
  if (container === '' && object !== undefined && object !== '') throw swiftStatus(404);
  if (account.length > MAX_ACCOUNT_NAME_LENGTH) throw swiftError(400, `Account name length of ${account.length} longer than ${MAX_ACCOUNT_NAME_LENGTH}`);
  const out: SwiftPath = { version: version!, account };
  if (container) {
    const n = Buffer.byteLength(container);
    if (n > MAX_CONTAINER_NAME_LENGTH) throw swiftError(400, `Container name length of ${n} longer than ${MAX_CONTAINER_NAME_LENGTH}`);
    out.container = container;
    if (object) {
      const on = Buffer.byteLength(object);
      if (on > MAX_OBJECT_NAME_LENGTH) throw swiftError(400, `Object name length of ${on} longer than ${MAX_OBJECT_NAME_LENGTH}`);
      out.object = object;
    }
  }
  return out;
}

/**
 * `container/object` of a header naming an object of the account
 * (X-Copy-From, Destination, X-Symlink-Target), percent-decoded: Swift's
 * check_path_header, a 412 unless both parts are there.
 */
export function containerObjectPath(value: string, headerName: string): { container: string; object: string } {
  const refused = () => swiftError(412, `${headerName} header must be of the form <container name>/<object name>`);
  let v: string;
  try {
    v = decodePath(value);
  } catch {
    throw refused();
  }
  v = v.replace(/^\//, '');
  const at = v.indexOf('/');
  if (at <= 0 || at === v.length - 1) throw refused();
  const object = v.slice(at + 1);
  if (Buffer.byteLength(object) > MAX_OBJECT_NAME_LENGTH) throw swiftError(400, `Object name length of ${Buffer.byteLength(object)} longer than ${MAX_OBJECT_NAME_LENGTH}`);
  return { container: v.slice(0, at), object };
}

/** The project of an `AUTH_<project>` account; null for any other form (Swift: the reseller prefix does not match). */
export function projectOfAccount(account: string): string | null {
  return account.startsWith('AUTH_') && account.length > 5 ? account.slice(5) : null;
}

/** The query string's parameters, decoded (a parameter that is not UTF-8 is a 400, as Swift's get_param). */
export function parseQuery(url: string): Record<string, string> {
  const q = url.indexOf('?');
  const out: Record<string, string> = {};
  if (q < 0) return out;
  for (const part of url.slice(q + 1).split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    let key: string;
    let value: string;
    try {
      key = decodePath(k.replace(/\+/g, ' '));
      value = decodePath(v.replace(/\+/g, ' '));
    } catch {
      throw swiftError(400, `"${k}" parameter not valid UTF-8`);
    }
    if (value.includes('\u0000') || key.includes('\u0000')) throw swiftError(412, 'Invalid UTF8 or contains NULL');
    if (!(key in out)) out[key] = value;
  }
  return out;
}
