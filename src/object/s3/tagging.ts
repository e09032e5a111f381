// Object tagging: PutObjectTagging, GetObjectTagging, DeleteObjectTagging
// (`?tagging`, optionally of a version), and the `x-amz-tagging` header of
// PutObject, CreateMultipartUpload and CopyObject (with
// `x-amz-tagging-directive`). An object's tags are its sysmeta `s3-tagging`,
// kept as S3's header form (URL-encoded `k=v&k2=v2`); HEAD and GET say how
// many with `x-amz-tagging-count`. S3's limits: 10 tags, keys of up to 128
// characters, values of up to 256, no key twice (InvalidTag).
import type { ContainerInfo, ObjectInfo } from '../store.ts';
import { VERSION_ID } from '../swift/versions-layout.ts';
import { check } from './access.ts';
import { loadBucket, type S3Context } from './context.ts';
import { s3Error } from './errors.ts';
import { TAGGING, tagsOf, tagSysmeta, type Tags } from './headers.ts';
import type { S3Request } from './request.ts';
import { applyLifecycle } from './lifecycle.ts';
import { findVersion, stateOf, versionOf } from './versioning.ts';
import { many, node, parseXml, text, xmlDocument } from './xml.ts';


const MAX_TAGS = 10;
const MAX_KEY = 128;
const MAX_VALUE = 256;

const invalidTag = (message: string) => s3Error('InvalidTag', message);

/** Checks S3's limits on a tag set. */
function checkTags(tags: Tags): Tags {
  if (tags.length > MAX_TAGS) throw invalidTag('Object tags cannot be greater than 10');
  const seen = new Set<string>();
  for (const [k, v] of tags) {
    if ([...k].length === 0 || [...k].length > MAX_KEY) throw invalidTag('The TagKey you have provided is invalid');
    if ([...v].length > MAX_VALUE) throw invalidTag('The TagValue you have provided is invalid');
    if (seen.has(k)) throw invalidTag('Cannot provide multiple Tags with the same key');
    seen.add(k);
  }
  return tags;
}

/** The tags of an `x-amz-tagging` header (URL query form); undefined when the header is absent. */
export function headerTags(r: Pick<S3Request, 'header'>): Tags | undefined {
  const h = r.header('x-amz-tagging');
  if (h === undefined) return undefined;
  const tags: Tags = [...new URLSearchParams(h)];
  if (new Set(tags.map(([k]) => k)).size !== tags.length) {
    throw s3Error('InvalidArgument', "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.", [['ArgumentName', 'x-amz-tagging'], ['ArgumentValue', h]]);
  }
  return checkTags(tags);
}


/** The `x-amz-tagging-count` of an object with tags. */
export function taggingCountHeader(o: ObjectInfo): Record<string, string> {
  const n = tagsOf(o).length;
  return n ? { 'x-amz-tagging-count': String(n) } : {};
}

/** The copies of the object (or version) a tagging request names: the bucket's object and, when it is the current version, its version record too. */
async function targets(ctx: S3Context, r: S3Request, b: ContainerInfo): Promise<Array<{ c: ContainerInfo; o: ObjectInfo }>> {
  const versionId = r.query.get('versionId');
  if (versionId === undefined) {
    const o = await ctx.store.headObject(b, r.key);
    if (!o) throw s3Error('NoSuchKey', undefined, [['Key', r.key]]);
    const out = [{ c: b, o }];
    if (o.sysmeta[VERSION_ID]) {
      const found = await findVersion(ctx, b, r.key, o.sysmeta[VERSION_ID]);
      if (found && found.container.id !== b.id) out.push({ c: found.container, o: found.object });
    }
    return out;
  }
  const found = await findVersion(ctx, b, r.key, versionId);
  if (!found || found.deleteMarker) throw s3Error('NoSuchVersion', undefined, [['Key', r.key], ['VersionId', versionId]]);
  const out = [{ c: found.container, o: found.object }];
  if (found.current && found.container.id !== b.id) {
    const cur = await ctx.store.headObject(b, r.key);
    if (cur) out.push({ c: b, o: cur });
  }
  return out;
}

async function setTags(ctx: S3Context, r: S3Request, tags: Tags): Promise<void> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'write');
  const all = await targets(ctx, r, b);
  for (const { c, o } of all) {
    const sysmeta = { ...o.sysmeta };
    delete sysmeta[TAGGING];
    const tagged = await ctx.store.updateObject(c, o.name, { sysmeta: { ...sysmeta, ...tagSysmeta(tags) } }, { keepTimestamp: true });
    // a lifecycle rule filtering by tags may now match, or no longer
    if (c.id === b.id) await applyLifecycle(ctx.store, b, tagged);
  }
  if (stateOf(b) || all[0]!.o.sysmeta[VERSION_ID]) r.reply.header('x-amz-version-id', versionOf(all[0]!.o));
}

/** The tags of a Tagging document (PutObjectTagging's body, a POST form's `tagging` field). */
export function parseTagging(xml: string): Tags {
  const doc = node(parseXml(xml).Tagging);
  const set = doc ? node(doc.TagSet) : undefined;
  if (!set) throw s3Error('MalformedXML');
  const items = set.Tag === undefined ? [] : (set.Tag as unknown[]);
  const tags: Tags = items.map((t) => {
    const n = node(t);
    const k = text(n?.Key);
    const v = n && n.Value === '' ? '' : text(n?.Value);
    if (k === undefined || v === undefined) throw s3Error('MalformedXML');
    return [k, v];
  });
  return checkTags(tags);
}

export async function putObjectTagging(ctx: S3Context, r: S3Request): Promise<void> {
  await setTags(ctx, r, parseTagging(await r.smallBody()));
}

export async function deleteObjectTagging(ctx: S3Context, r: S3Request): Promise<void> {
  await setTags(ctx, r, []);
  r.reply.code(204);
}

export async function getObjectTagging(ctx: S3Context, r: S3Request): Promise<string> {
  const b = await loadBucket(ctx, r);
  await check(ctx.store, r, b, 'read');
  const { o } = (await targets(ctx, r, b))[0]!;
  if (stateOf(b) || o.sysmeta[VERSION_ID]) r.reply.header('x-amz-version-id', versionOf(o));
  return r.xml(xmlDocument('Tagging', [['TagSet', [['Tag', many(tagsOf(o).map(([k, v]) => [['Key', k], ['Value', v]]))]]]]));
}
