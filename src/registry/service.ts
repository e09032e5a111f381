// The OCI registry (OCI Distribution Spec 1.1, Docker Registry HTTP API v2)
// under /v2, the prefix the spec fixes. Repositories are `<project>/<name>`:
// a project (by name in the caller's domain, or by id) and a path inside it;
// blobs and manifests are objects in the project's internal container of the
// object store (storage.ts). Access: access.ts; tokens: token-endpoint.ts.
//
// Repository names hold slashes, so one Fastify route per method takes
// `/v2/*` and the endpoint is matched from the end of the path (names.ts);
// ENDPOINTS below is the table of those endpoints, each with the action it
// needs (pull, push, delete) beside its handler.
//
// Public repositories (readable by anyone, without credentials) are marked by
// a Stratus extension: PUT /v2/_stratus/repositories/<project>/<name> with
// `{"public": true}` (a project member), GET to read it. `_stratus` cannot be
// the first component of a repository name (the spec's names start with
// [a-z0-9]), so the path is free.
//
// For the server's wiring and the CLI:
//   createRegistry(deps)                       the service; its gc(options) collects now
//   collectRegistryGarbage(db, storage, opts)  one collection without a running server (`stratus registry gc`)
//   RegistryStorage                            what the registry needs of the object store (storage.ts)
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { ApiError } from '../common/errors.ts';
import type { Db } from '../db/database.ts';
import { keystoneTokens, type Authenticator, type Credentials, type TokenValidator } from '../http/auth.ts';
import { PUBLIC } from '../http/policy.ts';
import { singleRange } from '../http/range.ts';
import type { Route, Service } from '../http/service.ts';
import type { BasicAuthenticator, BasicLogin } from '../identity/basic-auth.ts';
import { getProject } from '../identity/lookup.ts';
import type { ImageService } from '../image/service.ts';
import { accessOf, authorize, bearerCredentials, challenge, type Authorized } from './access.ts';
import { rangeHeaders, RegistryCore, type RepoRow } from './core.ts';
import { RegistryError, regError, renderRegistryError } from './errors.ts';
import { collectGarbage, type GcOptions, type GcResult } from './gc.ts';
import { IMAGE_PREFIX, RegistryImages } from './images.ts';
import { MAX_MANIFEST } from './manifest.ts';
import { COMPONENT_RE, isDigest, looksLikeDigest, matchPath, parseDigest, parseName, TAG_RE, type RegistryPath, type RepoName } from './names.ts';
import type { RegistryStorage } from './storage.ts';
import { issueOAuthToken, issueRegistryToken } from './token-endpoint.ts';
import { TokenSigner, type Action } from './token.ts';

export const PREFIX = '/v2';

export type { GcOptions, GcResult, RegistryStorage };

export function collectRegistryGarbage(db: Db, storage: RegistryStorage, o: GcOptions = {}): Promise<GcResult> {
  return collectGarbage(new RegistryCore(db, storage), o);
}

export interface RegistryDeps {
  db: Db;
  log: Logger;
  storage: RegistryStorage;
  /** Keystone token validation (X-Auth-Token is accepted beside the registry's bearer tokens). */
  authenticate: TokenValidator;
  basicAuth: BasicAuthenticator;
  /** The login a refresh token stands for (identity's refreshLogin): the token endpoint's refresh_token grant. */
  refreshLogin: (refreshToken: string) => Promise<BasicLogin>;
  /** The image service: a Glance image per pushed tag (images.ts); none without it. */
  images?: ImageService;
  /** The URL clients reach the server at (the token realm); the request's Host when unset. */
  publicUrl?: string;
  /** How often garbage collection runs (ms); 0: only at start and on demand. Default one hour. */
  gcIntervalMs?: number;
}

export interface RegistryService {
  service: Service;
  /** Loads the token key, starts garbage collection (now in the background, then periodically). */
  start(): Promise<void>;
  /** Stops the periodic collection and waits for one in progress. */
  stop(): Promise<void>;
  gc(o?: GcOptions): Promise<GcResult>;
}

/** What an endpoint handler gets: the request, the caller's access to the repository, the repository (absent until first push). */
interface EndpointContext {
  req: FastifyRequest;
  reply: FastifyReply;
  cred: Credentials | null;
  name: RepoName;
  access: Authorized;
  path: RegistryPath;
  /** The repository when it exists. */
  repo: RepoRow | undefined;
  query: Record<string, string | string[] | undefined>;
}

interface Endpoint {
  method: 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';
  kind: RegistryPath['kind'];
  action: Action;
  handler(ec: EndpointContext): Promise<unknown>;
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const many = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** A token request's form body (at most 64 KiB; a larger one is read to its end and refused, so the answer reaches the client). */
async function formBody(req: FastifyRequest): Promise<string> {
  try {
    return (await readAll(bodyStream(req), 64 * 1024)).toString('utf8');
  } catch (err) {
    if (err instanceof RegistryError && err.registryCode === 'SIZE_INVALID') throw new RegistryError('UNSUPPORTED', 'the token request is too large', { status: 'BadRequest' });
    throw err;
  }
}

/** A Content-Range (`<start>-<end>`) header; undefined when absent, 416 when malformed. */
function contentRange(req: FastifyRequest): { start: number; end: number } | undefined {
  const h = req.headers['content-range'];
  if (h === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(String(h).trim());
  if (!m || Number(m[2]) < Number(m[1])) throw new RegistryError('BLOB_UPLOAD_INVALID', `invalid Content-Range ${JSON.stringify(h)}`, { status: 'RangeNotSatisfiable' });
  return { start: Number(m[1]), end: Number(m[2]) };
}

const contentLength = (req: FastifyRequest): number | undefined => {
  const h = req.headers['content-length'];
  return h === undefined ? undefined : Number(h);
};

/** The request body as the raw stream (the registry's scope hands every body over unparsed); undefined when there is none. */
const bodyStream = (req: FastifyRequest): Readable | undefined => {
  const b = req.body as Readable | undefined;
  return b && typeof b.pipe === 'function' ? b : undefined;
};

/** A small body (a manifest), whole; beyond `limit` bytes SIZE_INVALID (413), the rest drained so the answer reaches the client. */
function readAll(s: Readable | undefined, limit: number): Promise<Buffer> {
  if (!s) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    s.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    s.once('end', () => {
      if (size > limit) reject(new RegistryError('SIZE_INVALID', `manifest larger than ${limit} bytes`, { status: 'PayloadTooLarge' }));
      else resolve(Buffer.concat(chunks));
    });
    s.once('error', reject);
    s.once('close', () => { if (!s.readableEnded) reject(new RegistryError('MANIFEST_INVALID', 'the manifest upload ended early')); });
  });
}

/** A single `Range: bytes=a-b` (or `a-`, `-n`) against a size, end inclusive (http/range.ts); null when absent or not one range; 416 when unsatisfiable. */
function byteRange(req: FastifyRequest, size: number): { start: number; end: number } | null {
  const h = req.headers.range;
  const range = singleRange(typeof h === 'string' ? h : undefined, size);
  if (range === 'unsatisfiable') throw new ApiError('RangeNotSatisfiable', `range ${h} not satisfiable for ${size} bytes`, { 'Content-Range': `bytes */${size}` });
  return range && { start: range.start, end: range.end - 1 };
}

function pageSize(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new ApiError('BadRequest', `invalid n ${JSON.stringify(v)}: a non-negative integer expected`);
  return Number(v);
}

const MAX_PAGE = 1000;

/** The kind of endpoint a request's URL addresses (its errors' codes depend on it); null outside /v2/<name>/... */
function endpointKind(url: string): RegistryPath['kind'] | null {
  const path = url.split('?')[0]!;
  if (!path.startsWith(`${PREFIX}/`) || path.startsWith(`${PREFIX}/_`)) return null;
  return matchPath(path.slice(PREFIX.length + 1))?.kind ?? null;
}

export function createRegistry(deps: RegistryDeps): RegistryService {
  const core = new RegistryCore(deps.db, deps.storage);
  const signer = new TokenSigner();
  const log = deps.log.child({ component: 'registry' });
  const images = deps.images ? new RegistryImages(core, deps.images, log) : undefined;
  if (deps.images && images) deps.images.addDataSource(IMAGE_PREFIX, images.source());

  const blobLocation = (name: RepoName, digest: string) => `${PREFIX}/${name.full}/blobs/${digest}`;
  const uploadLocation = (name: RepoName, id: string) => `${PREFIX}/${name.full}/blobs/uploads/${id}`;
  const needRepo = (ec: EndpointContext, code: 'NAME_UNKNOWN' | 'BLOB_UNKNOWN' | 'MANIFEST_UNKNOWN' | 'BLOB_UPLOAD_UNKNOWN'): RepoRow => {
    if (!ec.repo) throw regError(code, code === 'NAME_UNKNOWN' ? `repository name not known to registry: ${ec.name.full}` : undefined);
    return ec.repo;
  };
  const pushRepo = async (ec: EndpointContext) => ec.repo ?? core.ensureRepo(ec.access.projectId, ec.name.path);

  async function sendBlob(ec: EndpointContext, digest: string) {
    const repo = needRepo(ec, 'BLOB_UNKNOWN');
    const size = await core.blobInRepo(repo, digest);
    if (size === undefined) throw regError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, { digest });
    const range = byteRange(ec.req, size);
    ec.reply.header('Docker-Content-Digest', digest).header('Accept-Ranges', 'bytes').header('Content-Type', 'application/octet-stream').header('ETag', `"${digest}"`);
    if (range) {
      ec.reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`).header('Content-Length', String(range.end - range.start + 1));
    } else {
      ec.reply.header('Content-Length', String(size));
    }
    if (ec.req.method === 'HEAD') return ec.reply.send();
    return ec.reply.send(await core.openBlob(repo.project_id, digest, range ?? undefined));
  }

  async function uploadAnswer(ec: EndpointContext, id: string, size: number, status: number) {
    ec.reply.code(status).headers({ Location: uploadLocation(ec.name, id), 'Docker-Upload-UUID': id, ...rangeHeaders({ size }), 'Content-Length': '0' });
    return ec.reply.send();
  }

  async function blobCreated(ec: EndpointContext, digest: string) {
    ec.reply.code(201).headers({ Location: blobLocation(ec.name, digest), 'Docker-Content-Digest': digest, 'Content-Length': '0' });
    return ec.reply.send();
  }

  const ENDPOINTS: Endpoint[] = [
    // manifests
    {
      method: 'GET', kind: 'manifest', action: 'pull',
      async handler(ec) {
        const ref = (ec.path as { reference: string }).reference;
        if (!isDigest(ref) && !TAG_RE.test(ref)) throw regError(looksLikeDigest(ref) ? 'DIGEST_INVALID' : 'MANIFEST_INVALID', `invalid reference ${JSON.stringify(ref)}`);
        const repo = needRepo(ec, 'MANIFEST_UNKNOWN');
        const m = await core.manifest(repo, ref);
        if (!m) throw regError('MANIFEST_UNKNOWN', `manifest unknown to registry: ${ref}`, { reference: ref });
        ec.reply.headers({ 'Content-Type': m.media_type, 'Docker-Content-Digest': m.digest, ETag: `"${m.digest}"`, 'Content-Length': String(m.size) });
        if (ec.req.method === 'HEAD') return ec.reply.send();
        return ec.reply.send(await core.manifestBytes(repo, m.digest));
      },
    },
    {
      method: 'PUT', kind: 'manifest', action: 'push',
      async handler(ec) {
        const ref = (ec.path as { reference: string }).reference;
        if (!isDigest(ref) && !TAG_RE.test(ref)) throw regError(looksLikeDigest(ref) ? 'DIGEST_INVALID' : 'MANIFEST_INVALID', `invalid tag or digest ${JSON.stringify(ref)}`);
        const tags = many(ec.query.tag);
        for (const t of tags) if (!TAG_RE.test(t)) throw regError('MANIFEST_INVALID', `invalid tag ${JSON.stringify(t)}`);
        const bytes = await readAll(bodyStream(ec.req), MAX_MANIFEST);
        const repo = await pushRepo(ec);
        const { digest, parsed } = await core.putManifest(repo, ref, bytes, ec.req.headers['content-type'], tags);
        const tagged = [...new Set([...(isDigest(ref) ? [] : [ref]), ...tags])];
        if (images && tagged.length) await images.tagged(repo, await projectLabel(repo.project_id), tagged);
        ec.reply.code(201).headers({ Location: `${PREFIX}/${ec.name.full}/manifests/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' });
        if (parsed.subject) ec.reply.header('OCI-Subject', parsed.subject);
        if (tags.length) ec.reply.header('OCI-Tag', tags.join(', '));
        return ec.reply.send();
      },
    },
    {
      method: 'DELETE', kind: 'manifest', action: 'delete',
      async handler(ec) {
        const ref = (ec.path as { reference: string }).reference;
        const repo = needRepo(ec, 'NAME_UNKNOWN');
        if (isDigest(ref)) {
          const gone = await core.deleteManifest(repo, ref);
          if (!gone) throw regError('MANIFEST_UNKNOWN', `manifest unknown to registry: ${ref}`);
          await images?.dropImages(gone);
        } else if (TAG_RE.test(ref)) {
          const gone = await core.deleteTag(repo, ref);
          if (!gone) throw regError('MANIFEST_UNKNOWN', `tag unknown to registry: ${ref}`);
          if (gone.imageId) await images?.dropImages([gone.imageId]);
        } else {
          throw regError(looksLikeDigest(ref) ? 'DIGEST_INVALID' : 'MANIFEST_INVALID', `invalid tag or digest ${JSON.stringify(ref)}`);
        }
        ec.reply.code(202).header('Content-Length', '0');
        return ec.reply.send();
      },
    },
    // blobs
    { method: 'GET', kind: 'blob', action: 'pull', handler: (ec) => sendBlob(ec, parseDigest((ec.path as { digest: string }).digest)) },
    {
      method: 'DELETE', kind: 'blob', action: 'delete',
      async handler(ec) {
        const digest = parseDigest((ec.path as { digest: string }).digest);
        const repo = needRepo(ec, 'BLOB_UNKNOWN');
        if (!(await core.unlinkBlob(repo, digest))) throw regError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, { digest });
        ec.reply.code(202).header('Content-Length', '0');
        return ec.reply.send();
      },
    },
    // uploads
    {
      method: 'POST', kind: 'uploads', action: 'push',
      async handler(ec) {
        const mount = one(ec.query.mount);
        const from = one(ec.query.from);
        const digestParam = one(ec.query.digest);
        const algorithm = one(ec.query['digest-algorithm']);
        if (algorithm !== undefined && algorithm !== 'sha256') throw regError('UNSUPPORTED', `digest algorithm ${JSON.stringify(algorithm)} is not supported: sha256 only`, { algorithm });
        const body = bodyStream(ec.req);
        if (mount !== undefined) {
          const digest = parseDigest(mount);
          // mount only from a repository the caller may pull; otherwise (or when it lacks the blob) a new session, as the spec says
          if (from !== undefined) {
            const mounted = await tryMount(ec, digest, from);
            if (mounted) return blobCreated(ec, digest);
          }
        }
        const repo = await pushRepo(ec);
        const up = await core.startUpload(repo);
        if (digestParam !== undefined && mount === undefined) {
          const digest = parseDigest(digestParam);
          try {
            await core.completeUpload(repo, up, digest, body ?? undefined, undefined, contentLength(ec.req));
          } catch (e) {
            await core.dropUpload(up);
            throw e;
          }
          return blobCreated(ec, digest);
        }
        body?.resume();
        return uploadAnswer(ec, up.id, 0, 202);
      },
    },
    {
      method: 'PATCH', kind: 'upload', action: 'push',
      async handler(ec) {
        const repo = needRepo(ec, 'BLOB_UPLOAD_UNKNOWN');
        const up = await core.upload(repo, (ec.path as { uuid: string }).uuid);
        const body = bodyStream(ec.req);
        const size = body ? await core.appendChunk(up, body, contentRange(ec.req), contentLength(ec.req)) : up.size;
        return uploadAnswer(ec, up.id, size, 202);
      },
    },
    {
      method: 'PUT', kind: 'upload', action: 'push',
      async handler(ec) {
        const repo = needRepo(ec, 'BLOB_UPLOAD_UNKNOWN');
        const up = await core.upload(repo, (ec.path as { uuid: string }).uuid);
        const digest = parseDigest(one(ec.query.digest));
        const body = bodyStream(ec.req);
        await core.completeUpload(repo, up, digest, body, body ? contentRange(ec.req) : undefined, contentLength(ec.req));
        return blobCreated(ec, digest);
      },
    },
    {
      method: 'GET', kind: 'upload', action: 'push',
      async handler(ec) {
        const repo = needRepo(ec, 'BLOB_UPLOAD_UNKNOWN');
        const up = await core.upload(repo, (ec.path as { uuid: string }).uuid);
        return uploadAnswer(ec, up.id, up.size, 204);
      },
    },
    {
      method: 'DELETE', kind: 'upload', action: 'push',
      async handler(ec) {
        const repo = needRepo(ec, 'BLOB_UPLOAD_UNKNOWN');
        const up = await core.upload(repo, (ec.path as { uuid: string }).uuid);
        await core.dropUpload(up);
        ec.reply.code(204);
        return ec.reply.send();
      },
    },
    // discovery
    {
      method: 'GET', kind: 'tags', action: 'pull',
      async handler(ec) {
        const repo = needRepo(ec, 'NAME_UNKNOWN');
        const n = pageSize(one(ec.query.n));
        const last = one(ec.query.last);
        const limit = Math.min(n ?? MAX_PAGE, MAX_PAGE);
        const { tags, more } = await core.tags(repo, limit, last);
        if (more && n !== 0 && tags.length) {
          ec.reply.header('Link', `<${PREFIX}/${ec.name.full}/tags/list?n=${limit}&last=${encodeURIComponent(tags[tags.length - 1]!)}>; rel="next"`);
        }
        return { name: ec.name.full, tags };
      },
    },
    {
      method: 'GET', kind: 'referrers', action: 'pull',
      async handler(ec) {
        const digest = (ec.path as { digest: string }).digest;
        if (!isDigest(digest)) throw regError('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
        const artifactType = one(ec.query.artifactType);
        // paginated as the tags list is (n, last: the last digest of the page before), the next page in a Link
        const n = pageSize(one(ec.query.n));
        const last = one(ec.query.last);
        const limit = Math.min(n ?? MAX_PAGE, MAX_PAGE);
        const { manifests, more } = ec.repo ? await core.referrers(ec.repo, digest, artifactType, limit, last) : { manifests: [], more: false };
        if (more && manifests.length) {
          const filter = artifactType !== undefined ? `&artifactType=${encodeURIComponent(artifactType)}` : '';
          ec.reply.header('Link', `<${PREFIX}/${ec.name.full}/referrers/${digest}?n=${limit}&last=${encodeURIComponent(String(manifests[manifests.length - 1]!.digest))}${filter}>; rel="next"`);
        }
        if (artifactType !== undefined) ec.reply.header('OCI-Filters-Applied', 'artifactType');
        // a Buffer, so no charset is added to the media type
        ec.reply.type('application/vnd.oci.image.index.v1+json');
        return ec.reply.send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })));
      },
    },
  ];

  /** A cross-repository mount when the caller may pull `from` and it has the blob; false otherwise. */
  async function tryMount(ec: EndpointContext, digest: string, from: string): Promise<boolean> {
    let fromName: RepoName;
    try {
      fromName = parseName(from);
    } catch {
      return false;
    }
    let fromAccess: Authorized;
    try {
      fromAccess = await authorize(deps.db, ec.req, deps.publicUrl, ec.cred, fromName, 'pull');
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return false;
      throw e;
    }
    const source = await core.repo(fromAccess.projectId, fromName.path);
    if (!source) return false;
    return core.mount(await pushRepo(ec), source, digest);
  }

  async function dispatch(req: FastifyRequest, reply: FastifyReply, cred: Credentials | null, rest: string): Promise<unknown> {
    const path = matchPath(rest);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (!path) {
      bodyStream(req)?.resume();
      throw regError('NAME_UNKNOWN', `no registry endpoint at ${PREFIX}/${rest.slice(0, 300)}`);
    }
    const endpoint = ENDPOINTS.find((e) => e.kind === path.kind && e.method === method);
    if (!endpoint) {
      bodyStream(req)?.resume();
      throw regError('UNSUPPORTED', `${req.method} is not supported on ${path.kind}`);
    }
    try {
      const name = parseName(path.name);
      const access = await authorize(deps.db, req, deps.publicUrl, cred, name, endpoint.action);
      const repo = await core.repo(access.projectId, name.path);
      return await endpoint.handler({ req, reply, cred, name, access, path, repo, query: (req.query ?? {}) as EndpointContext['query'] });
    } catch (e) {
      // a refused request's body is drained, so the connection can carry the answer and the next request
      const body = bodyStream(req);
      if (body && !body.readableEnded && !body.destroyed) body.resume();
      throw e;
    }
  }

  const projectLabel = async (projectId: string): Promise<string> => {
    const p = await getProject(deps.db, projectId);
    return p && COMPONENT_RE.test(p.name) ? p.name : projectId;
  };

  const tokenDeps = { db: deps.db, basicAuth: deps.basicAuth, refreshLogin: deps.refreshLogin, signer, log };
  const routes: Route[] = [
    {
      // Version check; a caller without credentials is told where to get a token (401).
      method: 'GET', path: '/', rule: 'registry:base',
      handler: () => ({}),
    },
    {
      method: 'GET', path: '/token', rule: PUBLIC,
      handler: (rc) => issueRegistryToken(tokenDeps, rc.req, many(rc.query.scope), one(rc.query.offline_token) === 'true'),
    },
    {
      // distribution's OAuth2 token request: grant_type=password or refresh_token (a form body)
      method: 'POST', path: '/token', rule: PUBLIC,
      handler: async (rc) => issueOAuthToken(tokenDeps, await formBody(rc.req)),
    },
    {
      // The repositories the caller can see: those of its projects (a token granted registry:catalog:*, or a Keystone token's project), and every public one.
      method: 'GET', path: '/_catalog', rule: PUBLIC,
      async handler(rc) {
        const access = accessOf(rc.cred);
        const projects = access ? (access.claims.catalog ?? []) : rc.cred?.projectId ? [rc.cred.projectId] : [];
        const rows = await core.repositories(projects);
        const labels = new Map<string, string>();
        for (const id of new Set(rows.map((r) => r.project_id))) labels.set(id, await projectLabel(id));
        const names = rows.map((r) => `${labels.get(r.project_id)}/${r.path}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const n = pageSize(one(rc.query.n));
        const last = one(rc.query.last);
        const after = last === undefined ? names : names.filter((x) => x > last);
        const limit = Math.min(n ?? MAX_PAGE, MAX_PAGE);
        const page = after.slice(0, limit);
        if (after.length > limit && page.length) {
          rc.reply.header('Link', `<${PREFIX}/_catalog?n=${limit}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`);
        }
        return { repositories: page };
      },
    },
    {
      // Stratus extension: a repository's visibility (public: anyone may pull it).
      method: ['GET', 'PUT'], path: '/_stratus/repositories/*', rule: PUBLIC,
      async handler(rc) {
        const name = parseName(rc.params['*'] ?? '');
        const put = rc.req.method === 'PUT';
        const access = await authorize(deps.db, rc.req, deps.publicUrl, rc.cred, name, put ? 'push' : 'pull');
        if (put) {
          let body: { public?: unknown } | null;
          try {
            body = JSON.parse((await readAll(bodyStream(rc.req), 64 * 1024)).toString('utf8'));
          } catch (e) {
            if (e instanceof ApiError) throw e;
            body = null;
          }
          if (typeof body?.public !== 'boolean') throw new ApiError('BadRequest', 'a body {"public": true|false} is expected');
          const repo = await core.setPublic(access.projectId, name.path, body.public);
          await images?.visibilityChanged(repo);
          return { name: name.full, public: repo.public === 1 };
        }
        const repo = await core.repo(access.projectId, name.path);
        if (!repo) throw regError('NAME_UNKNOWN', `repository name not known to registry: ${name.full}`);
        return { name: name.full, public: repo.public === 1 };
      },
    },
    {
      method: ['GET', 'PUT', 'PATCH', 'POST', 'DELETE'], path: '/*', rule: PUBLIC,
      handler: (rc) => dispatch(rc.req, rc.reply, rc.cred, rc.params['*'] ?? ''),
    },
  ];

  const bearer: Authenticator = {
    authenticate(req) {
      const h = req.headers.authorization;
      if (typeof h !== 'string' || !/^bearer /i.test(h)) return null;
      const claims = signer.verify(h.slice(7).trim());
      if (!claims) throw new RegistryError('UNAUTHORIZED', 'the bearer token is not valid or has expired');
      return bearerCredentials(claims);
    },
  };

  const service: Service = {
    name: 'registry',
    prefix: PREFIX,
    routes,
    rules: { 'registry:base': () => true },
    renderError: (err, req) => renderRegistryError(err, req ? endpointKind(req.url) : null),
    authenticators: [bearer, keystoneTokens(deps.authenticate)],
    setup(app: FastifyInstance) {
      // Bodies are blob bytes and manifests kept byte for byte: every body reaches the handler as the raw stream.
      app.removeAllContentTypeParsers();
      app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
      app.addHook('onRequest', async (_req, reply) => {
        reply.header('Docker-Distribution-API-Version', 'registry/2.0');
      });
      // every 401 says where to get a token
      app.addHook('onSend', async (req, reply, payload) => {
        if (reply.statusCode === 401 && !reply.hasHeader('www-authenticate')) reply.header('WWW-Authenticate', challenge(req, deps.publicUrl));
        return payload;
      });
    },
  };

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const gc = async (o?: GcOptions) => {
    const r = await collectGarbage(core, o);
    if (r.blobs || r.manifests || r.uploads || r.chunks) log.info({ ...r }, 'registry garbage collected');
    return r;
  };
  return {
    service,
    async start() {
      await signer.load(deps.db);
      // a first collection right away, in the background (it must not hold the server's start), then every interval
      const collect = () => {
        if (running) return;
        running = gc().catch((err) => log.warn({ err }, 'registry garbage collection failed')).finally(() => { running = undefined; });
      };
      collect();
      const every = deps.gcIntervalMs ?? 60 * 60 * 1000;
      if (every > 0) {
        timer = setInterval(collect, every);
        timer.unref();
      }
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
    gc,
  };
}

