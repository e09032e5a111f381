// Compute wire helpers: microversions, Nova's error envelope, links,
// pagination, query parsing and request validation.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static, type TObjectOptions, type TSchema, type TUnsafe } from 'typebox';
import { ApiError, badRequest, notFound } from '../../common/errors.ts';
import { objectOf } from '../../http/body.ts';
import { firstError } from '../../http/json-schema.ts';

export { objectOf };
import type { Route, RouteContext } from '../../http/service.ts';
import { askedVersion, Microversion, negotiate } from '../../http/microversion.ts';

export const PREFIX = '/compute';
/** The lowest and highest microversion this API implements fully. */
export const MIN_VERSION = '2.1';
export const MAX_VERSION = '2.96';

const VERSION_HEADER = 'OpenStack-API-Version';
const LEGACY_VERSION_HEADER = 'X-OpenStack-Nova-API-Version';

const versions = new WeakMap<FastifyRequest, Microversion>();

/** The microversion of a request (2.1 when none was asked). */
export function apiVersion(req: FastifyRequest): Microversion {
  return versions.get(req) ?? Microversion.of(MIN_VERSION);
}
export const mv = (rc: RouteContext): Microversion => apiVersion(rc.req);

/** Reads the microversion a client asks for, as microversion_parse does for Nova (the legacy header too). */
function requestedVersion(req: FastifyRequest): string | null {
  const modern = askedVersion(req, 'compute');
  if (modern !== null) return modern;
  const legacy = req.headers['x-openstack-nova-api-version'];
  if (legacy !== undefined) return (Array.isArray(legacy) ? legacy[legacy.length - 1]! : legacy).trim();
  return null;
}

/** Nova's fault names by status; anything else is a computeFault. */
const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod',
  409: 'conflictingRequest', 413: 'overLimit', 415: 'badMediaType', 429: 'overLimit', 501: 'notImplemented', 503: 'serviceUnavailable',
};

/** Nova's words for any policy refusal: the rule is named. */
export const novaPolicyRefusal = (rule: string): string => `Policy doesn't allow ${rule} to be performed.`;

export function renderComputeError(err: ApiError): unknown {
  // A missing or bad token is refused before Nova by keystonemiddleware, in its own envelope.
  if (err.status === 401) return { error: { code: 401, title: err.title, message: err.message } };
  return { [FAULT_NAMES[err.status] ?? 'computeFault']: { code: err.status, message: err.message } };
}

/** Parses the microversion of every /v2.1 request and answers with Nova's version headers. */
export function setupMicroversions(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Compute-Request-Id', req.id);
    const path = req.url.slice(PREFIX.length).split('?')[0]!;
    // Nova's router does not fold a trailing slash into a collection (GET /os-simple-tenant-usage/ is a 404).
    if (/\/os-simple-tenant-usage\/$/.test(path)) throw notFound('The resource could not be found.');
    if (!/^\/v2\.1(\/|$)/.test(path)) return;
    const n = negotiate(requestedVersion(req), MIN_VERSION, MAX_VERSION);
    if ('malformed' in n) throw new ApiError('BadRequest', `Version ${n.malformed} is not valid: must be of the form X.Y.`);
    if ('unserved' in n) {
      const v = Microversion.of(n.unserved);
      versions.set(req, v); // echoed in the 406's headers
      throw new ApiError('NotAcceptable', `Version ${v} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`);
    }
    versions.set(req, n.ok);
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode === 401) reply.header('WWW-Authenticate', `Keystone uri="${hostUrl(req)}/identity"`);
    const v = versions.get(req);
    if (v) {
      reply.header(VERSION_HEADER, `compute ${v}`);
      reply.header(LEGACY_VERSION_HEADER, String(v));
      reply.header('Vary', `${VERSION_HEADER}, ${LEGACY_VERSION_HEADER}`);
    }
    return payload;
  });
}

/** Limits a route to a microversion range; outside it the route does not exist (404), as in Nova. */
export function versioned(route: Route, min?: string, max?: string): Route {
  return { ...route, versions: { ...(min ? { min } : {}), ...(max ? { max } : {}) } };
}

/** The compute service's gate: a route asked for outside its microversion range does not exist. */
export function gateMicroversion(req: FastifyRequest, route: Route): void {
  if (!route.versions) return;
  const v = apiVersion(req);
  const { min, max } = route.versions;
  if ((min && v.lt(min)) || (max && v.cmp(max) > 0)) throw notFound('The resource could not be found.');
}

// ---- links

export function hostUrl(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}`;
}
/** The versioned endpoint, e.g. http://h/compute/v2.1 */
export const endpoint = (req: FastifyRequest): string => `${hostUrl(req)}${PREFIX}/v2.1`;

/** Nova's self + bookmark links of a resource in `collection`. */
export function links(req: FastifyRequest, collection: string, id: string | number) {
  return [
    { rel: 'self', href: `${endpoint(req)}/${collection}/${id}` },
    { rel: 'bookmark', href: `${hostUrl(req)}${PREFIX}/${collection}/${id}` },
  ];
}
export const bookmark = (req: FastifyRequest, collection: string, id: string | number) =>
  `${hostUrl(req)}${PREFIX}/${collection}/${id}`;

/** The `next` link of a page, when the page is full (Nova's _get_collection_links). */
export function nextLinks(req: FastifyRequest, collection: string, page: { length: number }, lastId: string | undefined, limit: number) {
  if (!limit || page.length !== limit || lastId === undefined) return undefined;
  const url = new URL(req.url, 'http://x');
  const params = new URLSearchParams();
  const keys = [...new Set([...url.searchParams.keys()])].sort();
  for (const k of keys) if (k !== 'marker') params.set(k, url.searchParams.getAll(k).at(-1)!);
  params.set('marker', lastId);
  return [{ rel: 'next', href: `${endpoint(req)}/${collection}?${params.toString()}` }];
}

// ---- query parameters

export function q(rc: RouteContext, name: string): string | undefined {
  const v = rc.query[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}
export function qAll(rc: RouteContext, name: string): string[] {
  const v = rc.query[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}
export const has = (rc: RouteContext, name: string): boolean => rc.query[name] !== undefined;

/** oslo's bool_from_string: true for 1/t/true/on/y/yes; strict raises on anything unknown. */
export function boolFrom(v: unknown, strict = false, dflt = false): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v ?? '').trim().toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(s)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(s)) return false;
  if (strict) throw badRequest(`Unrecognized value '${String(v)}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'`);
  return dflt;
}

export const MAX_LIMIT = 1000;

/** limit and marker, as Nova's get_limit_and_marker (limit capped at max_limit; 0 is an empty page). */
export function pageParams(rc: RouteContext): { limit: number; marker: string | undefined } {
  let limit = MAX_LIMIT;
  const raw = q(rc, 'limit');
  if (raw !== undefined) {
    if (!/^\d+$/.test(raw)) throw badRequest(`Invalid input for query parameters limit. Value: ${raw}. '${raw}' does not match '^[0-9]*$'`);
    limit = Math.min(Number(raw), MAX_LIMIT);
  }
  return { limit, marker: q(rc, 'marker') };
}

/** Rejects unknown query parameters (Nova does from 2.75 on many routes). */
export function strictQuery(rc: RouteContext, allowed: readonly string[]): void {
  for (const k of Object.keys(rc.query)) {
    if (!allowed.includes(k)) throw badRequest(`Invalid input for query parameters ${k}. Value: ${String(rc.query[k])}. Additional properties are not allowed ('${k}' was unexpected)`);
  }
}

// ---- request bodies

/**
 * Validates a request body against a schema and returns it typed from the
 * schema; a failure is Nova's 400 with the offending field (the message Nova's
 * validators give, which a route schema's generic 400 would not).
 */
export function validate<S extends TSchema>(schema: S, value: unknown): Static<S> {
  const e = firstError(schema, value);
  if (!e) return value as Static<S>;
  const where = `Invalid input for field/attribute ${e.path.at(-1) || 'body'}. Value: ${preview(e.value)}.`;
  if (e.unexpected) {
    throw badRequest(`${where} Additional properties are not allowed (${e.unexpected.map((x) => `'${x}'`).join(', ')} ${e.unexpected.length > 1 ? 'were' : 'was'} unexpected)`);
  }
  if (e.missing !== undefined) throw badRequest(`${where} '${e.missing}' is a required property`);
  throw badRequest(`${where} ${e.message}`);
}

function preview(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/**
 * An object of any keys matching `pattern` and nothing else, each valued as
 * `value` (JSON Schema's patternProperties), typed as the record it is.
 */
export function keyedBy<V extends TSchema>(pattern: string, value: V, opts: TObjectOptions = {}): TUnsafe<Record<string, Static<V>>> {
  return Type.Unsafe<Record<string, Static<V>>>(Type.Object({}, { ...opts, patternProperties: { [pattern]: value }, additionalProperties: false }));
}

/** The body of a POST .../action: exactly one action name and its argument (validated by the action). */
export function actionOf(body: unknown): [string, unknown] {
  const obj = objectOf(body);
  const keys = obj ? Object.keys(obj) : [];
  if (!obj || keys.length !== 1) throw badRequest('Malformed request body');
  return [keys[0]!, obj[keys[0]!]];
}

// ---- names and text

// Printable characters: no control (C*) characters and no line/paragraph separators.
const NON_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/u;
const EDGE_SPACE = /^[\p{C}\p{Z}]|[\p{C}\p{Z}]$/u;

/** Nova's 'name' format: printable, not starting or ending with whitespace. */
export function isValidName(s: string, allowEdgeSpaces = false): boolean {
  if (NON_PRINTABLE.test(s)) return false;
  if (!allowEdgeSpaces && EDGE_SPACE.test(s)) return false;
  return s.trim().length > 0 || s.length === 0;
}
export function checkName(field: string, s: unknown, opts: { max?: number; allowEdgeSpaces?: boolean } = {}): string {
  const max = opts.max ?? 255;
  if (typeof s !== 'string') throw badRequest(`Invalid input for field/attribute ${field}. Value: ${preview(s)}. ${preview(s)} is not of type 'string'`);
  if (s.length < 1 || s.length > max) throw badRequest(`Invalid input for field/attribute ${field}. Value: ${preview(s)}. Expected a string of length 1 to ${max}.`);
  if (!isValidName(s, opts.allowEdgeSpaces)) {
    throw badRequest(`Invalid input for field/attribute ${field}. Value: ${preview(s)}. '${s}' does not match the 'name' format: printable characters. Can not start or end with whitespace.`);
  }
  return s;
}
/** Nova's description pattern: printable characters only. */
export const isPrintable = (s: string): boolean => !NON_PRINTABLE.test(s);

// ---- times

/** Nova's utils.isotime: 2012-08-20T21:11:09Z */
export const isoTime = (iso: string): string => new Date(iso).toISOString().replace(/\.\d{3}Z$/, 'Z');
/** A naive datetime as Python prints it: 2013-09-23T13:53:12.774000 */
export const naiveTime = (iso: string | null | undefined): string | null =>
  iso ? new Date(iso).toISOString().replace(/\.(\d{3})Z$/, '.$1000') : null;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Parses an ISO-8601 query value (changes-since and friends) or fails with 400, as Nova's date-time format does. */
export function parseTime(field: string, s: string): string {
  const bad = () => badRequest(`Invalid input for query parameters ${field}. Value: ${s}. '${s}' is not a 'date-time'`);
  const m = ISO_8601.exec(s.trim());
  if (!m) throw bad();
  let t = s.trim().replace(' ', 'T').replace(',', '.');
  if (/T\d{2}$/.test(t)) t += ':00';
  if (!/[zZ]|[+-]\d{2}(:?\d{2})?$/.test(t.slice(10))) t += /T/.test(t) ? 'Z' : 'T00:00:00Z';
  t = t.replace(/([+-]\d{2})(\d{2})$/, '$1:$2').replace(/([+-]\d{2})$/, '$1:00');
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw bad();
  return new Date(ms).toISOString();
}

export const isUuid = (s: string): boolean => /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(s);

/** Checks an access IP (accessIPv4/accessIPv6) and returns it as Nova stores it (IPv6 compressed). */
export function accessIp(field: 'accessIPv4' | 'accessIPv6', value: string): string {
  if (value === '') return '';
  const bad = () => badRequest(`Invalid input for field/attribute ${field}. Value: ${value}. '${value}' is not a '${field === 'accessIPv4' ? 'ipv4' : 'ipv6'}'`);
  if (field === 'accessIPv4') {
    const parts = value.split('.');
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw bad();
    return value;
  }
  if (!value.includes(':') || /[^0-9a-fA-F:.]/.test(value)) throw bad();
  try {
    return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  } catch {
    throw bad();
  }
}
