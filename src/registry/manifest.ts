// Manifests the registry accepts, checked as JSON against a schema per media
// type: OCI image manifest and index, Docker schema 2 manifest and manifest
// list (schema 1 is refused, as current registries do). What a manifest
// references is what must exist before it is accepted, and what garbage
// collection keeps.
import { firstError } from '../http/json-schema.ts';
import { regError } from './errors.ts';
import { DIGEST_RE } from './names.ts';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;
const KNOWN = new Set<string>(Object.values(MediaType));
const INDEXES = new Set<string>([MediaType.ociIndex, MediaType.dockerList]);

/** A manifest larger than this is refused (the spec wants at least 4 MB accepted). */
export const MAX_MANIFEST = 4 * 1024 * 1024;

const annotations = { type: 'object', additionalProperties: { type: 'string' } };
const descriptor = {
  type: 'object',
  required: ['mediaType', 'digest', 'size'],
  properties: {
    mediaType: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$' },
    digest: { type: 'string', pattern: '^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$' },
    size: { type: 'integer', minimum: 0 },
    urls: { type: 'array', items: { type: 'string' } },
    annotations,
    data: { type: 'string' },
    artifactType: { type: 'string' },
    platform: {
      type: 'object', required: ['architecture', 'os'],
      properties: { architecture: { type: 'string' }, os: { type: 'string' }, variant: { type: 'string' }, 'os.version': { type: 'string' }, 'os.features': { type: 'array', items: { type: 'string' } } },
    },
  },
};
const imageManifest = {
  type: 'object',
  required: ['schemaVersion', 'config', 'layers'],
  properties: {
    schemaVersion: { const: 2 }, mediaType: { type: 'string' }, artifactType: { type: 'string' },
    config: descriptor, layers: { type: 'array', items: descriptor }, subject: descriptor, annotations,
  },
};
const imageIndex = {
  type: 'object',
  required: ['schemaVersion', 'manifests'],
  properties: {
    schemaVersion: { const: 2 }, mediaType: { type: 'string' }, artifactType: { type: 'string' },
    manifests: { type: 'array', items: descriptor }, subject: descriptor, annotations,
  },
};

interface Descriptor { mediaType: string; digest: string; size: number; urls?: string[]; annotations?: Record<string, string>; artifactType?: string }

export interface ParsedManifest {
  mediaType: string;
  /** Blobs (config, layers) that must exist in the repository. */
  blobs: Array<{ digest: string; size: number }>;
  /** Manifests (an index's entries) that must exist in the repository. */
  manifests: Array<{ digest: string; size: number }>;
  subject: string | null;
  /** For the referrers list: artifactType, else an image manifest's config mediaType. */
  artifactType: string | null;
  annotations: Record<string, string> | null;
  /** An image manifest's config and layers, in order (for images made from it). */
  config?: Descriptor;
  layers?: Descriptor[];
}

/** Layers a client may leave out of the registry (Windows' foreign layers): not required to exist when they name URLs. */
const FOREIGN = /(foreign|nondistributable)/;

/** Parses and checks a manifest; MANIFEST_INVALID (400) with the reason when it is not one this registry keeps. */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: Record<string, any>;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw regError('MANIFEST_INVALID', 'manifest invalid: not JSON');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw regError('MANIFEST_INVALID', 'manifest invalid: not a JSON object');
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const header = contentType?.split(';')[0]!.trim().toLowerCase() || undefined;
  if (declared && header && KNOWN.has(header) && declared !== header) {
    throw regError('MANIFEST_INVALID', `manifest invalid: mediaType ${declared} does not match Content-Type ${header}`);
  }
  const mediaType = declared ?? header;
  if (doc.schemaVersion === 1) throw regError('MANIFEST_INVALID', 'manifest invalid: Docker schema 1 manifests are not supported');
  if (!mediaType || !KNOWN.has(mediaType)) {
    throw regError('MANIFEST_INVALID', `manifest invalid: unsupported media type ${JSON.stringify(mediaType ?? '')}; expected one of ${[...KNOWN].join(', ')}`);
  }
  const index = INDEXES.has(mediaType);
  const err = firstError(index ? imageIndex : imageManifest, doc);
  if (err) {
    const at = err.path.length ? err.path.join('/') : 'manifest';
    throw regError('MANIFEST_INVALID', `manifest invalid: ${at} ${err.message}`, { path: err.path.join('/'), reason: err.message });
  }
  const checkDigest = (d: Descriptor, where: string) => {
    if (!DIGEST_RE.test(d.digest)) throw regError('MANIFEST_INVALID', `manifest invalid: ${where} has an unsupported digest ${d.digest}`);
  };
  const subject = doc.subject ? (doc.subject as Descriptor).digest : null;
  if (doc.subject) checkDigest(doc.subject, 'subject');
  const annotations = doc.annotations && Object.keys(doc.annotations).length ? doc.annotations as Record<string, string> : null;
  if (index) {
    const manifests = (doc.manifests as Descriptor[]);
    manifests.forEach((m, i) => checkDigest(m, `manifests/${i}`));
    return {
      mediaType, blobs: [], manifests: manifests.map((m) => ({ digest: m.digest, size: m.size })), subject,
      artifactType: typeof doc.artifactType === 'string' ? doc.artifactType : null, annotations,
    };
  }
  const config = doc.config as Descriptor;
  const layers = doc.layers as Descriptor[];
  checkDigest(config, 'config');
  layers.forEach((l, i) => checkDigest(l, `layers/${i}`));
  const blobs = [config, ...layers.filter((l) => !(l.urls?.length && FOREIGN.test(l.mediaType)))].map((d) => ({ digest: d.digest, size: d.size }));
  return {
    mediaType, blobs, manifests: [], subject,
    artifactType: typeof doc.artifactType === 'string' && doc.artifactType ? doc.artifactType : config.mediaType,
    annotations, config, layers,
  };
}
