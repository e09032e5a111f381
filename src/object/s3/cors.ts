// Bucket CORS: PutBucketCors, GetBucketCors, DeleteBucketCors (`?cors`, the
// bucket owner's), kept as the bucket's sysmeta `s3-cors` (the rules as
// JSON); the preflight OPTIONS of a bucket or object answered from them
// (the first rule whose origin, method and every requested header match;
// none: 403 AccessForbidden, as S3), and the Access-Control-* headers of an
// actual request whose Origin and method a rule allows.
import type { ContainerInfo } from '../store.ts';
import { check } from './access.ts';
import { addressable, loadBucket, sysmetaJson, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import type { S3Request } from './request.ts';
import { many, node, parseXml, text, xmlDocument, type XmlNode } from './xml.ts';

/** The bucket sysmeta holding its CORS rules. */
export const CORS = 's3-cors';

interface CorsRule {
  id?: string;
  origins: string[];
  methods: string[];
  headers: string[];
  expose: string[];
  maxAge?: number;
}

const METHODS = ['GET', 'PUT', 'HEAD', 'POST', 'DELETE'];
const MAX_RULES = 100;

const strings = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((x) => text(x)).filter((x): x is string => x !== undefined);

/** A pattern with at most one `*` (S3's wildcard), matched whole; case-insensitively for headers. */
function wildcard(pattern: string, value: string, caseless = false): boolean {
  const [p, v] = caseless ? [pattern.toLowerCase(), value.toLowerCase()] : [pattern, value];
  const star = p.indexOf('*');
  if (star < 0) return p === v;
  const head = p.slice(0, star);
  const tail = p.slice(star + 1);
  return v.length >= head.length + tail.length && v.startsWith(head) && v.endsWith(tail);
}

export const rulesOf = (b: ContainerInfo): CorsRule[] | null => sysmetaJson<CorsRule[]>(b, CORS);

/** The first rule allowing `origin`, `method` and every one of `headers`. */
function matching(rules: CorsRule[], origin: string, method: string, headers: string[]): CorsRule | undefined {
  return rules.find((rule) => rule.origins.some((o) => wildcard(o, origin))
    && rule.methods.includes(method)
    && headers.every((h) => rule.headers.some((a) => wildcard(a, h, true))));
}

function allowHeaders(rule: CorsRule, origin: string): Record<string, string> {
  const any = rule.origins.includes('*');
  const h: Record<string, string> = {
    'access-control-allow-origin': any ? '*' : origin,
    'access-control-allow-methods': rule.methods.join(', '),
    vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
  };
  if (!any) h['access-control-allow-credentials'] = 'true';
  if (rule.expose.length) h['access-control-expose-headers'] = rule.expose.join(', ');
  if (rule.maxAge !== undefined) h['access-control-max-age'] = String(rule.maxAge);
  return h;
}

export async function putBucketCors(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const doc = node(parseXml(await r.smallBody(64 * 1024)).CORSConfiguration);
  const items = doc?.CORSRule as unknown[] | undefined;
  if (!doc || !items || items.length === 0) throw s3Error('MalformedXML');
  if (items.length > MAX_RULES) throw s3Error('InvalidRequest', `The number of CORS rules should not exceed allowed limit of ${MAX_RULES} rules.`);
  const rules = items.map((item): CorsRule => {
    const n = node(item);
    if (!n) throw s3Error('MalformedXML');
    const rule: CorsRule = { origins: strings(n.AllowedOrigin), methods: strings(n.AllowedMethod), headers: strings(n.AllowedHeader), expose: strings(n.ExposeHeader) };
    if (!rule.origins.length || !rule.methods.length) throw s3Error('MalformedXML');
    for (const m of rule.methods) if (!METHODS.includes(m)) throw s3Error('InvalidRequest', `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`);
    for (const o of rule.origins) if (o.split('*').length > 2) throw s3Error('InvalidRequest', `AllowedOrigin "${o}" can not have more than one wildcard.`);
    for (const h of rule.headers) if (h.split('*').length > 2) throw s3Error('InvalidRequest', `AllowedHeader "${h}" can not have more than one wildcard.`);
    const id = text(n.ID);
    if (id !== undefined) rule.id = id;
    const age = text(n.MaxAgeSeconds);
    if (age !== undefined) {
      if (!/^\d{1,9}$/.test(age)) throw s3Error('MalformedXML');
      rule.maxAge = Number(age);
    }
    return rule;
  });
  await ctx.store.updateContainer(b, { sysmeta: { [CORS]: JSON.stringify(rules) } });
}

export async function getBucketCors(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const rules = rulesOf(b);
  if (!rules) throw s3Error('NoSuchCORSConfiguration', undefined, [['BucketName', b.name]]);
  const xml: XmlNode[] = rules.map((rule) => [
    ['ID', rule.id], ['AllowedHeader', many(rule.headers)], ['AllowedMethod', many(rule.methods)], ['AllowedOrigin', many(rule.origins)],
    ['ExposeHeader', many(rule.expose)], ['MaxAgeSeconds', rule.maxAge],
  ]);
  return r.xml(xmlDocument('CORSConfiguration', [['CORSRule', many(xml)]]));
}

export async function deleteBucketCors(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  await ctx.store.updateContainer(b, { sysmeta: { [CORS]: null } });
  r.reply.code(204);
}

/** A preflight OPTIONS of a bucket or an object: allowed by a rule, or S3's refusal. */
export async function preflight(ctx: S3Context, r: S3Request): Promise<void> {
  const origin = r.header('origin');
  if (!origin) throw s3Error('BadRequest', 'Insufficient information. Origin request header needed.');
  const method = r.header('access-control-request-method');
  if (!method || !METHODS.includes(method)) throw s3Error('BadRequest', `Invalid Access-Control-Request-Method: ${method ?? 'null'}`);
  const b = addressable(r.bucket) ? await ctx.store.findContainer(r.bucket) : null;
  if (!b) throw s3Error('AccessForbidden', 'CORSResponse: Bucket not found');
  const rules = rulesOf(b);
  if (!rules) throw s3Error('AccessForbidden', 'CORSResponse: CORS is not enabled for this bucket.');
  const requested = (r.header('access-control-request-headers') ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
  const rule = matching(rules, origin, method, requested);
  if (!rule) throw s3Error('AccessForbidden');
  r.reply.headers(allowHeaders(rule, origin));
  if (requested.length) r.reply.header('access-control-allow-headers', requested.join(', ').toLowerCase());
}

/** The Access-Control-* headers of an actual request with an Origin that a rule of its bucket allows (set before the operation runs, so errors carry them too). */
export async function actualRequestHeaders(ctx: S3Context, r: S3Request): Promise<void> {
  const origin = r.header('origin');
  if (!origin || r.bucket === '' || !addressable(r.bucket)) return;
  const b = await ctx.store.findContainer(r.bucket);
  const rules = b ? rulesOf(b) : null;
  const rule = rules ? matching(rules, origin, r.req.method, []) : undefined;
  if (rule) r.reply.headers(allowHeaders(rule, origin));
}
