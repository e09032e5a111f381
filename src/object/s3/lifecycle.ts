// Bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration (`?lifecycle`,
// the bucket owner's), kept as the bucket's sysmeta `s3-lifecycle` (rules as
// JSON). Expiration (Days, Date) is applied through the object store's own
// expiry, the one Swift's X-Delete-At uses: an object a rule matches (its
// prefix, tags, size bounds; Enabled) gets the earliest of their expiry
// times as its delete-at, marked in its sysmeta `s3-lifecycle-rule` with the
// rule's ID so that a changed or deleted configuration moves or clears only
// what a rule set (an X-Delete-At set through Swift is left alone). Objects
// are matched when written through S3 (PutObject, CopyObject,
// CompleteMultipartUpload, a tagging change) and, after a configuration is
// put or deleted, by a walk of the bucket in the background.
// AbortIncompleteMultipartUpload gives an upload started afterwards, and its
// parts, the delete-at of its initiation plus the days. Days count as S3
// counts them: from the object's creation, rounded up to the next midnight
// UTC. Not served (NotImplemented): transitions (one storage class),
// noncurrent-version expiration and ExpiredObjectDeleteMarker.
import type { Logger } from 'pino';
import type { ContainerInfo, Meta, ObjectInfo, ObjectStore } from '../store.ts';
import { timestampDate } from '../store.ts';
import { check } from './access.ts';
import { loadBucket, sysmetaJson, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import { tagsOf, type Tags } from './headers.ts';
import type { S3Request } from './request.ts';
import { many, node, parseXml, text, xmlDocument, type XmlNode } from './xml.ts';

/** The bucket sysmeta holding its lifecycle rules. */
export const LIFECYCLE = 's3-lifecycle';
/** The object sysmeta naming the rule whose expiration its delete-at is. */
export const LIFECYCLE_RULE = 's3-lifecycle-rule';

interface Filter { prefix: string; tags: Tags; greaterThan?: number; lessThan?: number }

interface Rule {
  id: string;
  enabled: boolean;
  /** The rule's Prefix outside a Filter (the older form). */
  legacyPrefix: boolean;
  filter: Filter;
  days?: number;
  /** Unix seconds (midnight UTC). */
  date?: number;
  abortDays?: number;
}

const DAY = 86400;
const MAX_RULES = 1000;

export const rulesOf = (b: ContainerInfo): Rule[] | null => sysmetaJson<Rule[]>(b, LIFECYCLE);

const positive = (v: string | undefined, what: string): number => {
  if (v === undefined || !/^\d{1,9}$/.test(v) || Number(v) < 1) throw s3Error('InvalidArgument', `'${what}' must be a positive integer`);
  return Number(v);
};

function tagList(v: unknown): Tags {
  return ((v as unknown[] | undefined) ?? []).map((t) => {
    const n = node(t);
    const k = text(n?.Key);
    const value = n && n.Value === '' ? '' : text(n?.Value);
    if (k === undefined || value === undefined) throw s3Error('MalformedXML');
    return [k, value];
  });
}

function parseFilter(v: unknown): Filter {
  const f = node(v);
  if (!f) throw s3Error('MalformedXML');
  const and = f.And !== undefined ? node(f.And) : undefined;
  const parts = ['Prefix', 'Tag', 'And', 'ObjectSizeGreaterThan', 'ObjectSizeLessThan'].filter((k) => f[k] !== undefined);
  if (parts.length > 1) throw s3Error('MalformedXML');
  const src = and ?? f;
  const out: Filter = { prefix: text(src.Prefix) ?? '', tags: tagList(src.Tag) };
  if (!and && out.tags.length > 1) throw s3Error('MalformedXML');
  const gt = text(src.ObjectSizeGreaterThan);
  const lt = text(src.ObjectSizeLessThan);
  if (gt !== undefined) out.greaterThan = positive(gt, 'ObjectSizeGreaterThan');
  if (lt !== undefined) out.lessThan = positive(lt, 'ObjectSizeLessThan');
  return out;
}

function parseRule(v: unknown): Rule {
  const n = node(v);
  if (!n) throw s3Error('MalformedXML');
  const status = text(n.Status);
  if (status !== 'Enabled' && status !== 'Disabled') throw s3Error('MalformedXML');
  for (const k of ['Transition', 'NoncurrentVersionTransition']) if (n[k] !== undefined) throw s3Error('NotImplemented', 'Lifecycle transitions are not implemented: there is one storage class.');
  if (n.NoncurrentVersionExpiration !== undefined) throw s3Error('NotImplemented', 'NoncurrentVersionExpiration is not implemented.');
  if (n.Filter !== undefined && n.Prefix !== undefined) throw s3Error('MalformedXML');
  const id = text(n.ID) ?? '';
  if (id.length > 255) throw s3Error('InvalidArgument', 'ID length should not exceed allowed limit of 255');
  const rule: Rule = {
    id, enabled: status === 'Enabled', legacyPrefix: n.Prefix !== undefined,
    filter: n.Filter !== undefined ? parseFilter(n.Filter) : { prefix: text(n.Prefix) ?? '', tags: [] },
  };
  const exp = n.Expiration !== undefined ? node(n.Expiration) : undefined;
  if (n.Expiration !== undefined && !exp) throw s3Error('MalformedXML');
  if (exp) {
    if (text(exp.ExpiredObjectDeleteMarker) === 'true') throw s3Error('NotImplemented', 'ExpiredObjectDeleteMarker is not implemented.');
    const days = text(exp.Days);
    const date = text(exp.Date);
    if ((days === undefined) === (date === undefined)) throw s3Error('MalformedXML');
    if (days !== undefined) rule.days = positive(days, 'Days');
    if (date !== undefined) {
      const t = Date.parse(date);
      if (Number.isNaN(t)) throw s3Error('MalformedXML');
      if (t % (DAY * 1000) !== 0) throw s3Error('InvalidArgument', "'Date' must be at midnight GMT");
      rule.date = t / 1000;
    }
  }
  if (n.AbortIncompleteMultipartUpload !== undefined) {
    if (rule.filter.tags.length) throw s3Error('InvalidRequest', 'Tag-based filter cannot be used with AbortIncompleteMultipartUpload action');
    rule.abortDays = positive(text(node(n.AbortIncompleteMultipartUpload)?.DaysAfterInitiation), 'DaysAfterInitiation');
  }
  if (rule.days === undefined && rule.date === undefined && rule.abortDays === undefined) throw s3Error('InvalidRequest', 'At least one action needs to be specified in a rule');
  return rule;
}

const matches = (f: Filter, key: string, size: number, tags: Tags): boolean =>
  key.startsWith(f.prefix)
  && f.tags.every(([k, v]) => tags.some(([tk, tv]) => tk === k && tv === v))
  && (f.greaterThan === undefined || size > f.greaterThan)
  && (f.lessThan === undefined || size < f.lessThan);

/** The earliest expiration the rules give an object created at `created` (unix seconds), with its rule; null when none applies. */
export function expirationOf(rules: Rule[], key: string, size: number, tags: Tags, created: number): { at: number; rule: string } | null {
  let best: { at: number; rule: string } | null = null;
  for (const r of rules) {
    if (!r.enabled || !matches(r.filter, key, size, tags)) continue;
    const at = r.date ?? (r.days !== undefined ? Math.ceil((created + r.days * DAY) / DAY) * DAY : undefined);
    if (at !== undefined && (!best || at < best.at)) best = { at, rule: r.id };
  }
  return best;
}

/** The delete-at an upload begun now gets from the abort rules (its parts get the same), or undefined. */
export function abortDeadline(b: ContainerInfo, key: string, now = Date.now() / 1000): { at: number; rule: string } | undefined {
  let best: { at: number; rule: string } | undefined;
  for (const r of rulesOf(b) ?? []) {
    if (!r.enabled || r.abortDays === undefined || !key.startsWith(r.filter.prefix)) continue;
    const at = Math.ceil((now + r.abortDays * DAY) / DAY) * DAY;
    if (!best || at < best.at) best = { at, rule: r.id };
  }
  return best;
}

/**
 * Gives `o` the delete-at its bucket's rules call for (or takes back one a
 * rule had set), without changing its timestamp; an X-Delete-At the owner
 * set through Swift is kept. The object as it now is.
 */
export async function applyLifecycle(store: ObjectStore, b: ContainerInfo, o: ObjectInfo): Promise<ObjectInfo> {
  const ruled = o.sysmeta[LIFECYCLE_RULE] !== undefined;
  if (o.deleteAt !== null && !ruled) return o;
  const rules = rulesOf(b);
  if (!rules && !ruled) return o;
  const exp = rules ? expirationOf(rules, o.name, o.size, tagsOf(o), Math.floor(timestampDate(o.timestamp).getTime() / 1000)) : null;
  if (exp && o.deleteAt === exp.at && o.sysmeta[LIFECYCLE_RULE] === exp.rule) return o;
  if (!exp && !ruled) return o;
  const sysmeta: Meta = { ...o.sysmeta };
  delete sysmeta[LIFECYCLE_RULE];
  if (exp) sysmeta[LIFECYCLE_RULE] = exp.rule;
  return store.updateObject(b, o.name, { sysmeta, deleteAt: exp ? exp.at : null }, { keepTimestamp: true }).catch(() => o);
}

/** S3's `x-amz-expiration` of an object a rule expires. */
export function expirationHeader(o: ObjectInfo): Record<string, string> {
  const rule = o.sysmeta[LIFECYCLE_RULE];
  if (rule === undefined || o.deleteAt === null) return {};
  return { 'x-amz-expiration': `expiry-date="${new Date(o.deleteAt * 1000).toUTCString()}", rule-id="${rule.replace(/["\\]/g, '')}"` };
}

/** Applies the bucket's rules to every object in it (after a configuration changed), page by page. */
async function walk(store: ObjectStore, log: Logger, b: ContainerInfo): Promise<void> {
  let marker: string | undefined;
  let changed = 0;
  for (;;) {
    const fresh = await store.getContainer(b.project, b.name);
    if (!fresh || fresh.id !== b.id) return;
    const page = await store.listObjects(fresh, { marker, limit: 1000 });
    for (const e of page) {
      if (e.kind !== 'object') continue;
      const o = await store.headObject(fresh, e.name);
      if (o && (await applyLifecycle(store, fresh, o)) !== o) changed++;
    }
    if (page.length < 1000) break;
    marker = page[page.length - 1]!.name;
  }
  log.info({ bucket: b.name, project: b.project, changed }, 's3: lifecycle rules applied to the bucket');
}

function startWalk(ctx: S3Context, b: ContainerInfo): void {
  void walk(ctx.store, ctx.log, b).catch((err: unknown) => ctx.log.error({ err, bucket: b.name }, 's3: applying lifecycle rules failed'));
}

export async function putBucketLifecycle(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const doc = node(parseXml(await r.smallBody(256 * 1024)).LifecycleConfiguration);
  const items = doc?.Rule as unknown[] | undefined;
  if (!doc || !items || items.length === 0) throw s3Error('MalformedXML');
  if (items.length > MAX_RULES) throw s3Error('InvalidRequest', `The number of lifecycle rules should not exceed allowed limit of ${MAX_RULES} rules`);
  const rules = items.map(parseRule);
  const ids = rules.map((x) => x.id).filter((id) => id !== '');
  if (new Set(ids).size !== ids.length) throw s3Error('InvalidArgument', 'Rule ID must be unique. Found same ID for more than one rule');
  startWalk(ctx, await ctx.store.updateContainer(b, { sysmeta: { [LIFECYCLE]: JSON.stringify(rules) } }));
}

export async function getBucketLifecycle(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  const rules = rulesOf(b);
  if (!rules) throw s3Error('NoSuchLifecycleConfiguration', undefined, [['BucketName', b.name]]);
  const xml = rules.map((rule): XmlNode => {
    const f = rule.filter;
    const tags = f.tags.map(([k, v]): XmlNode => [['Key', k], ['Value', v]]);
    const bounds: XmlNode = [['ObjectSizeGreaterThan', f.greaterThan], ['ObjectSizeLessThan', f.lessThan]];
    const many_ = tags.length + (f.prefix ? 1 : 0) + bounds.filter(([, v]) => v !== undefined).length > 1;
    const filter: XmlNode = many_
      ? [['And', [['Prefix', f.prefix || undefined], ['Tag', many(tags)], ...bounds]]]
      : [['Prefix', f.prefix || (tags.length || f.greaterThan !== undefined || f.lessThan !== undefined ? undefined : '')], ['Tag', tags[0]], ...bounds];
    return [
      ['ID', rule.id || undefined],
      ...(rule.legacyPrefix ? [['Prefix', f.prefix] as const] : [['Filter', filter] as const]),
      ['Status', rule.enabled ? 'Enabled' : 'Disabled'],
      ...(rule.days !== undefined || rule.date !== undefined
        ? [['Expiration', [['Days', rule.days], ['Date', rule.date !== undefined ? new Date(rule.date * 1000).toISOString() : undefined]]] as const] : []),
      ...(rule.abortDays !== undefined ? [['AbortIncompleteMultipartUpload', [['DaysAfterInitiation', rule.abortDays]]] as const] : []),
    ];
  });
  return r.xml(xmlDocument('LifecycleConfiguration', [['Rule', many(xml)]]));
}

export async function deleteBucketLifecycle(ctx: S3Context, r: S3Request): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'owner');
  startWalk(ctx, await ctx.store.updateContainer(b, { sysmeta: { [LIFECYCLE]: null } }));
  r.reply.code(204);
}
