// Names the distribution spec fixes: repository names, tags, digests, and the
// registry paths under /v2 (a repository name holds slashes, so the routes are
// matched here from the end of the path).
import { regError } from './errors.ts';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
/** The spec's `<name>`: slash-separated components. */
export const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
export const COMPONENT_RE = new RegExp(`^${COMPONENT}$`);
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** The digests this registry computes and accepts: sha256 (sha512 is accepted as a reference, never produced). */
export const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
/** What the spec calls a digest at all: `algorithm:encoded` (an unsupported algorithm is DIGEST_INVALID, a malformed one too). */
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** Client-facing names stay within what clients accept (255 with the host; the spec's note). */
export const MAX_NAME = 200;

export const isDigest = (s: string): boolean => DIGEST_RE.test(s);
export const looksLikeDigest = (s: string): boolean => ANY_DIGEST_RE.test(s) && s.includes(':');

/** A digest given by a client: a supported one, else DIGEST_INVALID (400). */
export function parseDigest(s: string | undefined): string {
  if (s === undefined || !DIGEST_RE.test(s)) throw regError('DIGEST_INVALID', `invalid digest ${JSON.stringify(s ?? '')}: sha256 (or sha512) and lower-case hex expected`);
  return s;
}

/** A repository name split into its project reference (id or name) and the path inside the project. */
export interface RepoName {
  /** As the client wrote it. */
  full: string;
  /** The first component: the project's name (in the caller's domain) or id. */
  project: string;
  /** The rest: the repository inside the project. */
  path: string;
}

export function parseName(full: string): RepoName {
  if (full.length > MAX_NAME || !NAME_RE.test(full)) throw regError('NAME_INVALID', `invalid repository name ${JSON.stringify(full.slice(0, MAX_NAME))}`);
  const slash = full.indexOf('/');
  if (slash < 0) throw regError('NAME_INVALID', `repository name ${JSON.stringify(full)} must be <project>/<name>`);
  return { full, project: full.slice(0, slash), path: full.slice(slash + 1) };
}

/** The registry endpoints under /v2/<name>/..., matched from the end of the path. */
export type RegistryPath =
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; uuid: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

/** The endpoint a path after /v2/ names; null when it names none. */
export function matchPath(rest: string): RegistryPath | null {
  let m: RegExpExecArray | null;
  if ((m = /^(.+)\/manifests\/([^/]+)$/.exec(rest))) return { kind: 'manifest', name: m[1]!, reference: m[2]! };
  if ((m = /^(.+)\/blobs\/uploads\/?$/.exec(rest))) return { kind: 'uploads', name: m[1]! };
  if ((m = /^(.+)\/blobs\/uploads\/([^/]+)$/.exec(rest))) return { kind: 'upload', name: m[1]!, uuid: m[2]! };
  if ((m = /^(.+)\/blobs\/([^/]+)$/.exec(rest))) return { kind: 'blob', name: m[1]!, digest: m[2]! };
  if ((m = /^(.+)\/tags\/list$/.exec(rest))) return { kind: 'tags', name: m[1]! };
  if ((m = /^(.+)\/referrers\/([^/]+)$/.exec(rest))) return { kind: 'referrers', name: m[1]!, digest: m[2]! };
  return null;
}
