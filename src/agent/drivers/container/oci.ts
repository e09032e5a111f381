// OCI image archives: reading an image out of an OCI layout tar or a `docker
// save` tar (digests verified), unpacking a layer into a directory in
// overlayfs form (whiteouts become 0:0 character devices, opaque directories
// get the overlay xattr), and turning an overlay upper directory back into a
// layer.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { runOk } from '../../exec.ts';
import { readTar, TarFormatError, TarWriter, type TarEntry } from '../../../common/tar.ts';

export interface OciImageConfig {
  architecture?: string;
  os?: string;
  config?: {
    Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string; User?: string;
    StopSignal?: string; Labels?: Record<string, string> | null; ExposedPorts?: Record<string, unknown> | null;
  };
  rootfs?: { type: string; diff_ids: string[] };
  history?: Array<Record<string, unknown>>;
  created?: string;
}

export interface ArchiveLayer {
  /** sha256:… of the blob as stored in the archive (compressed or not). */
  digest: string;
  /** sha256:… of the uncompressed tar (from the image config). */
  diffId: string;
  mediaType: string;
  size: number;
  /** Where the blob's bytes sit inside the archive file. */
  offset: number;
}

export interface ArchiveImage {
  config: OciImageConfig;
  /** The image config as stored (its digest is the image id). */
  configRaw: Buffer;
  configDigest: string;
  /** Bottom layer first. */
  layers: ArchiveLayer[];
}

export class ImageFormatError extends Error {}

const SMALL = 4 << 20;
const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
} as const;

interface Member { offset: number; size: number; sha256: string; data: Buffer | null }

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function parseJson<T>(b: Buffer | null | undefined, what: string): T {
  if (!b) throw new ImageFormatError(`${what} is missing from the archive`);
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch {
    throw new ImageFormatError(`${what} is not valid JSON`);
  }
}

function normName(n: string): string {
  return n.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
}

/** Reads every member of an (uncompressed) archive: offsets, sizes, sha256, and the bytes of small members. */
async function indexArchive(path: string): Promise<Map<string, Member>> {
  const members = new Map<string, Member>();
  const head = Buffer.alloc(2);
  const fh = await fsp.open(path, 'r');
  try {
    await fh.read(head, 0, 2, 0);
  } finally {
    await fh.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) throw new ImageFormatError('the image archive is gzip-compressed; upload the plain tar (OCI layout or docker save)');
  try {
    for await (const e of readTar(createReadStream(path, { highWaterMark: 1 << 20 }))) {
      if (e.type !== 'file') continue;
      const h = createHash('sha256');
      const keep = e.size <= SMALL ? [] as Buffer[] : null;
      for await (const c of e.body()) {
        h.update(c);
        keep?.push(Buffer.from(c));
      }
      members.set(normName(e.name), { offset: e.offset, size: e.size, sha256: h.digest('hex'), data: keep ? Buffer.concat(keep) : null });
    }
  } catch (err) {
    throw err instanceof TarFormatError ? new ImageFormatError(`the image archive is damaged: ${err.message}`) : err;
  }
  return members;
}

interface Descriptor { mediaType?: string; digest: string; size?: number; platform?: { architecture?: string; os?: string } }

function blobOf(members: Map<string, Member>, d: Descriptor, what: string): Member {
  const m = /^(sha256):([0-9a-f]{64})$/.exec(d?.digest ?? '');
  if (!m) throw new ImageFormatError(`${what} has an unsupported digest '${String(d?.digest).slice(0, 80)}'`);
  const blob = members.get(`blobs/${m[1]}/${m[2]}`);
  if (!blob) throw new ImageFormatError(`${what} ${d.digest} is missing from the archive`);
  if (blob.sha256 !== m[2]) throw new ImageFormatError(`${what} ${d.digest} does not match its content`);
  if (d.size !== undefined && d.size !== blob.size) throw new ImageFormatError(`${what} ${d.digest} has the wrong size`);
  return blob;
}

function pickManifest(members: Map<string, Member>, index: { manifests?: Descriptor[] }, depth = 0): Descriptor {
  const list = index.manifests ?? [];
  if (!list.length) throw new ImageFormatError('the image index lists no manifest');
  const ok = (d: Descriptor) => !d.platform || ((d.platform.os ?? 'linux') === 'linux' && ['amd64', undefined].includes(d.platform.architecture));
  const d = list.find(ok);
  if (!d) throw new ImageFormatError('the image has no linux/amd64 manifest');
  if (d.mediaType === MEDIA.index || d.mediaType === MEDIA.dockerList) {
    if (depth > 3) throw new ImageFormatError('image indexes nest too deeply');
    return pickManifest(members, parseJson(blobOf(members, d, 'image index').data, 'image index'), depth + 1);
  }
  return d;
}

/** Reads an image out of an OCI layout tar or a docker-save tar, verifying every digest it can. */
export async function inspectArchive(path: string): Promise<ArchiveImage> {
  const members = await indexArchive(path);
  let configBlob: Member;
  let layerBlobs: Array<{ blob: Member; mediaType: string; digest: string }>;
  if (members.has('index.json')) {
    const index = parseJson<{ manifests?: Descriptor[] }>(members.get('index.json')!.data, 'index.json');
    const md = pickManifest(members, index);
    const manifest = parseJson<{ config?: Descriptor; layers?: Descriptor[] }>(blobOf(members, md, 'image manifest').data, 'image manifest');
    if (!manifest.config) throw new ImageFormatError('the image manifest names no config');
    configBlob = blobOf(members, manifest.config, 'image config');
    layerBlobs = (manifest.layers ?? []).map((l, i) => ({ blob: blobOf(members, l, `layer ${i}`), mediaType: l.mediaType ?? MEDIA.layerGzip, digest: l.digest }));
  } else if (members.has('manifest.json')) {
    const list = parseJson<Array<{ Config?: string; Layers?: string[] }>>(members.get('manifest.json')!.data, 'manifest.json');
    const m = Array.isArray(list) ? list[0] : undefined;
    if (!m?.Config) throw new ImageFormatError('manifest.json names no image');
    const cfg = members.get(normName(m.Config));
    if (!cfg) throw new ImageFormatError(`${m.Config} is missing from the archive`);
    const named = /([0-9a-f]{64})(\.json)?$/.exec(m.Config);
    if (named && named[1] !== cfg.sha256) throw new ImageFormatError('the image config does not match its digest');
    configBlob = cfg;
    layerBlobs = (m.Layers ?? []).map((name, i) => {
      const blob = members.get(normName(name));
      if (!blob) throw new ImageFormatError(`layer ${i} (${name}) is missing from the archive`);
      return { blob, mediaType: MEDIA.layerTar, digest: `sha256:${blob.sha256}` };
    });
  } else {
    throw new ImageFormatError('not a container image: the archive has neither index.json (OCI layout) nor manifest.json (docker save)');
  }
  const config = parseJson<OciImageConfig>(configBlob.data, 'image config');
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layerBlobs.length) throw new ImageFormatError(`the image config lists ${diffIds.length} layers, the manifest ${layerBlobs.length}`);
  if (config.os && config.os !== 'linux') throw new ImageFormatError(`the image is for ${config.os}, not linux`);
  for (const d of diffIds) if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new ImageFormatError(`unsupported layer diff id '${String(d).slice(0, 80)}'`);
  return {
    config, configRaw: configBlob.data!, configDigest: `sha256:${configBlob.sha256}`,
    layers: layerBlobs.map((l, i) => ({ digest: l.digest, diffId: diffIds[i]!, mediaType: l.mediaType, size: l.blob.size, offset: l.blob.offset })),
  };
}

async function* hashing(src: AsyncIterable<Buffer>, h: Hash): AsyncGenerator<Buffer> {
  for await (const c of src) {
    h.update(c);
    yield c;
  }
}

/** The layer's uncompressed bytes, from a byte range of a file; the digests are checked once the stream ends. */
async function* layerStream(file: string, offset: number, size: number, digests: { compressed: Hash; plain: Hash }): AsyncGenerator<Buffer> {
  const raw = size === 0 ? (async function* () { /* empty */ })() : hashing(createReadStream(file, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 }), digests.compressed);
  const first: Buffer[] = [];
  let magic = Buffer.alloc(0);
  const it = raw[Symbol.asyncIterator]();
  while (magic.length < 4) {
    const r = await it.next();
    if (r.done) break;
    first.push(r.value);
    magic = Buffer.concat(first);
  }
  const rest = (async function* () {
    yield* first;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  if (magic[0] === 0x28 && magic[1] === 0xb5 && magic[2] === 0x2f && magic[3] === 0xfd) throw new ImageFormatError('zstd-compressed layers are not supported; use gzip or plain tar layers');
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    const gunzip = createGunzip();
    const pump = (async () => {
      try {
        // A reader that stopped early (a refused entry) destroyed gunzip: stop reading the file too.
        for await (const c of rest) {
          if (gunzip.destroyed) break;
          if (!gunzip.write(c)) {
            await new Promise<void>((r) => {
              const done = () => { gunzip.off('drain', done); gunzip.off('close', done); r(); };
              gunzip.on('drain', done);
              gunzip.on('close', done);
            });
          }
        }
        if (!gunzip.destroyed) gunzip.end();
      } catch (err) {
        gunzip.destroy(err as Error);
      }
    })();
    yield* hashing(gunzip, digests.plain);
    await pump;
  } else {
    yield* hashing(rest, digests.plain);
  }
}

/** Splits and checks a layer path (a leading '/' means the layer root, as in docker); null for the layer root. */
function safeParts(name: string): string[] | null {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ImageFormatError(`layer entry '${name.slice(0, 200)}' escapes the root`);
  return parts.length ? parts : null;
}

/** Whether `abs` (below a real root) exists and is reached through no symbolic link. */
async function reachedDirectly(abs: string): Promise<boolean> {
  return (await fsp.realpath(abs).catch(() => null)) === abs;
}

/** Errors of the file system that a layer's own names cause (too long, a file where a directory is needed...). */
const ENTRY_ERRORS = new Set(['ENAMETOOLONG', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ELOOP', 'EINVAL', 'ERR_OUT_OF_RANGE']);

/** A damaged layer (tar or gzip) or an entry the file system refuses, as the image's fault. */
function layerError(err: unknown, layer: ArchiveLayer, entry: string | null): unknown {
  if (err instanceof ImageFormatError) return err;
  if (err instanceof TarFormatError) return new ImageFormatError(`layer ${layer.digest}: ${err.message}`);
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('Z_') || code === 'ERR_ZLIB_INITIALIZATION_FAILED') return new ImageFormatError(`layer ${layer.digest}: the gzip stream is corrupt`);
  if (entry !== null && ENTRY_ERRORS.has(code)) return new ImageFormatError(`layer entry '${entry.slice(0, 200)}' cannot be unpacked (${code})`);
  return err;
}

/**
 * Unpacks one layer (a byte range of an archive file) into `dest` in overlayfs
 * form. The compressed digest and the diff id are verified; on any error the
 * caller discards `dest`. `lowers` (top first) resolve hard links to files of
 * lower layers, which are copied.
 *
 * Nothing is written outside `dest`: names are taken relative to it and may
 * not climb out with '..'; every directory on the way to an entry is checked
 * to be a real directory (not a symbolic link) when the entry is written, and
 * once more for what is done after the whole layer was read (device nodes,
 * whiteouts, opaque markers, directory owners and modes); hard links resolve
 * through no symbolic link.
 */
export async function unpackLayer(file: string, layer: ArchiveLayer, dest: string, lowers: string[]): Promise<void> {
  const digests = { compressed: createHash('sha256'), plain: createHash('sha256') };
  await fsp.mkdir(dest, { recursive: true });
  const root = await fsp.realpath(dest);
  const lowerRoots = await Promise.all(lowers.map((l) => fsp.realpath(l)));
  /** Directories (relative) checked to be real ones since they last changed. */
  const goodDirs = new Set<string>(['']);
  const dirMeta: Array<{ path: string; e: TarEntry }> = [];
  const opaque: string[] = [];
  /** Device nodes, fifos and whiteouts, made once the layer's digests are checked; by relative path. */
  const nodes = new Map<string, { kind: 'c' | 'b' | 'p'; major: number; minor: number; e: TarEntry | null }>();
  const under = (rel: string, p: string) => p === rel || p.startsWith(`${rel}/`);

  const ensureParent = async (parts: string[]) => {
    let rel = '';
    for (const p of parts.slice(0, -1)) {
      const next = rel ? `${rel}/${p}` : p;
      if (!goodDirs.has(next)) {
        const abs = join(root, next);
        const st = await fsp.lstat(abs).catch(() => null);
        if (!st) await fsp.mkdir(abs, { mode: 0o755 });
        else if (!st.isDirectory()) throw new ImageFormatError(`layer entry under '${next.slice(0, 200)}', which is not a directory`);
        goodDirs.add(next);
      }
      rel = next;
    }
  };
  /** Makes room for an entry at `rel`: what was there goes (a directory stays when keepDir), and so does a pending node. */
  const clear = async (rel: string, keepDir: boolean) => {
    for (const k of nodes.keys()) if (under(rel, k)) nodes.delete(k);
    const abs = join(root, rel);
    const st = await fsp.lstat(abs).catch(() => null);
    if (!st) return;
    if (keepDir && st.isDirectory()) return;
    await fsp.rm(abs, { recursive: true, force: true });
    for (const d of goodDirs) if (under(rel, d)) goodDirs.delete(d);
  };
  /** The file a hard link names: in this layer, else a regular file of a lower one. */
  const linkTarget = async (tparts: string[], rel: string): Promise<{ path: string; lower: boolean } | null> => {
    const parent = tparts.slice(0, -1);
    const inLayer = join(root, ...tparts);
    if (await reachedDirectly(join(root, ...parent))) {
      const st = await fsp.lstat(inLayer).catch(() => null);
      if (st && !st.isDirectory()) return { path: inLayer, lower: false };
    } else if (await fsp.lstat(join(root, ...parent)).then(() => true, () => false)) {
      throw new ImageFormatError(`hard link '${rel.slice(0, 200)}' points through a symbolic link`);
    }
    for (const l of lowerRoots) {
      const p = join(l, ...tparts);
      if (!(await reachedDirectly(join(l, ...parent)))) continue;
      const s = await fsp.lstat(p).catch(() => null);
      if (s?.isFile()) return { path: p, lower: true };
    }
    return null;
  };

  let current: string | null = null;
  try {
    for await (const e of readTar(layerStream(file, layer.offset, layer.size, digests))) {
      current = e.name;
      const parts = safeParts(e.name);
      if (!parts) {
        if (e.type === 'dir') dirMeta.push({ path: root, e });
        continue;
      }
      await ensureParent(parts);
      const base = parts[parts.length - 1]!;
      const parentRel = parts.slice(0, -1).join('/');
      if (base === '.wh..wh..opq') {
        opaque.push(join(root, parentRel));
        continue;
      }
      if (base.startsWith('.wh.')) {
        const hidden = base.slice(4);
        if (hidden === '' || hidden === '.' || hidden === '..') throw new ImageFormatError(`layer entry '${e.name.slice(0, 200)}' is not a valid whiteout`);
        const target = parentRel ? `${parentRel}/${hidden}` : hidden;
        await clear(target, false);
        nodes.set(target, { kind: 'c', major: 0, minor: 0, e: null });
        continue;
      }
      const abs = join(root, ...parts);
      const rel = parts.join('/');
      switch (e.type) {
        case 'dir':
          await clear(rel, true);
          await fsp.mkdir(abs, { recursive: true, mode: 0o755 });
          goodDirs.add(rel);
          dirMeta.push({ path: abs, e });
          break;
        case 'file': {
          await clear(rel, false);
          // 'wx' (O_EXCL): never through a symbolic link at the last component.
          const fh = await fsp.open(abs, 'wx', 0o600);
          try {
            for await (const c of e.body()) await fh.write(c);
          } finally {
            await fh.close();
          }
          await fsp.lchown(abs, e.uid, e.gid);
          await fsp.chmod(abs, e.mode);
          await fsp.utimes(abs, e.mtime, e.mtime);
          break;
        }
        case 'symlink':
          if (e.linkname === '') throw new ImageFormatError(`symbolic link '${rel.slice(0, 200)}' has no target`);
          await clear(rel, false);
          await fsp.symlink(e.linkname, abs);
          await fsp.lchown(abs, e.uid, e.gid);
          await fsp.lutimes(abs, e.mtime, e.mtime);
          break;
        case 'link': {
          const tparts = safeParts(e.linkname);
          if (!tparts) throw new ImageFormatError(`hard link '${rel.slice(0, 200)}' has no target`);
          await clear(rel, false);
          const target = await linkTarget(tparts, rel);
          if (!target) throw new ImageFormatError(`hard link '${rel.slice(0, 200)}' points to a missing file`);
          if (!target.lower) {
            await fsp.link(target.path, abs);
          } else {
            await fsp.copyFile(target.path, abs);
            const s = await fsp.lstat(target.path);
            await fsp.lchown(abs, s.uid, s.gid);
            await fsp.chmod(abs, s.mode & 0o7777);
          }
          break;
        }
        case 'char':
        case 'block':
        case 'fifo':
          // Linux device numbers: 12-bit major, 20-bit minor.
          if (e.devmajor > 0xfff || e.devminor > 0xfffff) throw new ImageFormatError(`layer entry '${rel.slice(0, 200)}' has an invalid device number`);
          await clear(rel, false);
          nodes.set(rel, { kind: e.type === 'char' ? 'c' : e.type === 'block' ? 'b' : 'p', major: e.devmajor, minor: e.devminor, e });
          break;
      }
    }
    current = null;
  } catch (err) {
    throw layerError(err, layer, current);
  }
  const plain = `sha256:${digests.plain.digest('hex')}`;
  const compressed = `sha256:${digests.compressed.digest('hex')}`;
  if (compressed !== layer.digest) throw new ImageFormatError(`layer ${layer.digest} does not match its content`);
  if (plain !== layer.diffId) throw new ImageFormatError(`layer ${layer.digest}: its uncompressed content does not match diff id ${layer.diffId}`);
  // Later entries may have replaced a directory on the way with a symbolic
  // link: each path is checked again before it is touched.
  for (const [rel, n] of nodes) {
    const abs = join(root, rel);
    if (!(await reachedDirectly(dirname(abs)))) throw new ImageFormatError(`layer entry '${rel.slice(0, 200)}' lies under a symbolic link`);
    await runOk('mknod', n.kind === 'p' ? [abs, 'p'] : [abs, n.kind, String(n.major), String(n.minor)]);
    if (n.e) {
      await fsp.lchown(abs, n.e.uid, n.e.gid);
      await fsp.chmod(abs, n.e.mode);
    }
  }
  for (const dir of opaque) {
    if (await reachedDirectly(dir)) await runOk('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir]);
  }
  for (const { path, e } of dirMeta.reverse()) {
    if (!(await reachedDirectly(path)) || !(await fsp.lstat(path)).isDirectory()) continue;
    await fsp.lchown(path, e.uid, e.gid);
    await fsp.chmod(path, e.mode);
    await fsp.utimes(path, e.mtime, e.mtime);
  }
}

/** Paths (relative, '/'-separated) that are not part of a snapshot: mount points runc makes for us. */
export const SNAPSHOT_SKIP = new Set(['mnt/config']);

/**
 * Writes an overlayfs upper directory as a layer: whiteout devices become
 * `.wh.` files, opaque directories get `.wh..wh..opq`. Reproducible order.
 */
export async function writeUpperLayer(upper: string, tar: TarWriter): Promise<void> {
  const opaqueDirs = await opaqueDirsBelow(upper);
  const walk = async (rel: string): Promise<void> => {
    const abs = rel ? join(upper, rel) : upper;
    const names = (await fsp.readdir(abs)).sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const p = join(upper, childRel);
      const st = await fsp.lstat(p);
      const common = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isCharacterDevice() && st.rdev === 0) {
        await tar.add({ name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: common.mtime });
      } else if (st.isDirectory()) {
        if (SNAPSHOT_SKIP.has(childRel) && (await fsp.readdir(p)).length === 0) continue;
        await tar.add({ name: childRel, type: 'dir', ...common });
        if (opaqueDirs.has(p)) await tar.add({ name: `${childRel}/.wh..wh..opq`, type: 'file', mode: 0o644, mtime: common.mtime });
        await walk(childRel);
      } else if (st.isSymbolicLink()) {
        await tar.add({ name: childRel, type: 'symlink', linkname: await fsp.readlink(p), ...common });
      } else if (st.isFile()) {
        // an empty file is never read: a stream opened for it would keep its fd (and a deleted disk busy) until GC
        await tar.add({ name: childRel, type: 'file', size: st.size, ...common }, st.size > 0 ? createReadStream(p) : undefined);
      } else if (st.isFIFO()) {
        await tar.add({ name: childRel, type: 'fifo', ...common });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await tar.add({ name: childRel, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00), ...common });
      }
    }
  };
  await walk('');
}

/** Directories below `root` that carry the overlay opaque xattr (one getfattr for the whole tree). */
async function opaqueDirsBelow(root: string): Promise<Set<string>> {
  const r = await runOk('getfattr', ['-R', '-P', '--absolute-names', '-d', '-m', '^trusted\\.overlay\\.opaque$', root]);
  const out = new Set<string>();
  let file: string | null = null;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8).replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    else if (file && /^trusted\.overlay\.opaque="y"$/.test(line)) out.add(file);
  }
  return out;
}

/** A blob to put in an archive: its descriptor and a way to read its bytes. */
export interface BlobSource { digest: string; size: number; mediaType: string; read(): AsyncIterable<Buffer> }

export function fileRange(file: string, offset: number, size: number): () => AsyncIterable<Buffer> {
  return () => (size === 0 ? (async function* () { /* empty */ })() : createReadStream(file, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 }));
}

/**
 * Builds a layer blob in `file` (gzip, reproducible): `fill` adds the entries.
 * Returns its descriptor and diff id.
 */
export async function buildLayerBlob(file: string, fill: (tar: TarWriter) => Promise<void>): Promise<{ digest: string; diffId: string; size: number; mediaType: string }> {
  const plain = createHash('sha256');
  const compressed = createHash('sha256');
  let size = 0;
  const tee = (h: Hash, count: boolean) => new Transform({
    transform(c: Buffer, _e, cb) {
      h.update(c);
      if (count) size += c.length;
      cb(null, c);
    },
  });
  const head = tee(plain, false);
  const done = pipeline(head, createGzip({ level: 6 }), tee(compressed, true), createWriteStream(file));
  const tar = new TarWriter(head);
  try {
    await fill(tar);
    await tar.finish();
  } catch (err) {
    head.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  await done;
  return { digest: `sha256:${compressed.digest('hex')}`, diffId: `sha256:${plain.digest('hex')}`, size, mediaType: MEDIA.layerGzip };
}

/** Writes an OCI image layout as one tar (what `skopeo copy … oci-archive:` produces). */
export async function writeOciArchive(out: Writable, image: { configRaw: Buffer; layers: BlobSource[]; refName?: string }): Promise<void> {
  const configDigest = `sha256:${sha256(image.configRaw)}`;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: configDigest, size: image.configRaw.length },
    layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }));
  const manifestDigest = `sha256:${sha256(manifest)}`;
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA.index,
    manifests: [{
      mediaType: MEDIA.manifest, digest: manifestDigest, size: manifest.length,
      ...(image.refName ? { annotations: { 'org.opencontainers.image.ref.name': image.refName } } : {}),
    }],
  }));
  const tar = new TarWriter(out);
  await tar.add({ name: 'blobs', type: 'dir' });
  await tar.add({ name: 'blobs/sha256', type: 'dir' });
  const seen = new Set<string>();
  for (const l of image.layers) {
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    await tar.add({ name: `blobs/sha256/${l.digest.slice(7)}`, type: 'file', size: l.size }, l.read());
  }
  await tar.add({ name: `blobs/sha256/${configDigest.slice(7)}`, type: 'file' }, image.configRaw);
  await tar.add({ name: `blobs/sha256/${manifestDigest.slice(7)}`, type: 'file' }, manifest);
  await tar.add({ name: 'index.json', type: 'file' }, index);
  await tar.add({ name: 'oci-layout', type: 'file' }, Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  await tar.finish();
}
