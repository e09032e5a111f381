// The embedded object backend: each blob one file under the object directory
// (DATA_DIR/objects unless --object-dir names another), in one of 256
// subdirectories by the first two characters of its id.
//
// A write streams into `.tmp-<id>` beside the final name, hashing as it goes,
// then appends the blob's checksums, fdatasyncs, renames to `<id>` and fsyncs
// the directory (concurrent writes into one directory share one directory
// fsync). A small blob (up to 1 MiB declared) reserved ahead (reserve(): empty
// files created in batches, one directory fsync per batch, their descriptors
// kept open with O_DSYNC) is written in place instead: its bytes and checksums
// in one synchronous write, no fdatasync, rename nor directory fsync. A blob is
//
//   [data][CRC-32 of each 64 KiB block of data, 4 bytes big-endian each][footer]
//   footer: "SOB1", block size (u32 BE), block count (u32 BE), CRC-32 of the CRC list (u32 BE)
//
// so a ranged read checks exactly the blocks it touches, and every read checks
// what it returns. The data size is the store's record (the database), not the
// file's: a file of another length is corrupt.
import { createHash } from 'node:crypto';
import { closeSync, constants, mkdirSync, open as openCb, openSync, read as readCb, writev as writevCb } from 'node:fs';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { BlobCorruptError, ShortBodyError, TooLargeError, type BlobWriteOptions, type BlobWritten, type ByteRange, type ObjectBackend } from './backend.ts';

export const BLOCK_SIZE = 64 * 1024;
const MAGIC = 0x534f4231; // "SOB1"
const FOOTER = 16;
/** Data gathered before one write to the file. */
const WRITE_BATCH = 1024 * 1024;
/** Blocks read and checked at a time. */
const READ_BLOCKS = 16;

const writevFd = promisify(writevCb);
const openFd = promisify(openCb);
const readFd = promisify(readCb);

/** Blob ids are ours (hex); anything else is refused before it reaches a path. */
const BLOB_ID = /^[0-9a-f]{8,64}$/;

/**
 * One fsync of a directory serves every caller that asked before it started:
 * callers arriving while one runs wait for the next, which they share.
 */
class DirSyncer {
  private readonly state = new Map<string, { running: Promise<void> | null; next: Promise<void> | null }>();

  sync(dir: string): Promise<void> {
    let s = this.state.get(dir);
    if (!s) this.state.set(dir, (s = { running: null, next: null }));
    const st = s;
    if (st.next) return st.next;
    if (!st.running) {
      st.running = fsyncDir(dir).finally(() => {
        st.running = null;
        if (!st.next) this.state.delete(dir);
      });
      return st.running;
    }
    st.next = st.running.catch(() => undefined).then(() => {
      st.next = null;
      st.running = fsyncDir(dir).finally(() => {
        st.running = null;
        if (!st.next) this.state.delete(dir);
      });
      return st.running;
    });
    return st.next;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class FileBackend implements ObjectBackend {
  readonly root: string;
  private readonly dirs = new DirSyncer();
  /** Reserved blobs are written whole in one synchronous write: up to this many bytes. */
  readonly reserveUpTo = WRITE_BATCH;
  /** Blobs made ready by reserve(): their empty files' descriptors. */
  private readonly reserved = new Map<string, number>();
  /** fsync on (the default); tests of logic only may turn it off. */
  private readonly durable: boolean;

  constructor(root: string, o: { fsync?: boolean } = {}) {
    this.root = root;
    this.durable = o.fsync ?? true;
    mkdirSync(root, { recursive: true, mode: 0o700 });
    for (let i = 0; i < 256; i++) mkdirSync(join(root, i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 });
  }

  private dirOf(id: string): string {
    if (!BLOB_ID.test(id)) throw new Error(`bad blob id ${JSON.stringify(id)}`);
    return join(this.root, id.slice(0, 2));
  }

  pathOf(id: string): string {
    return join(this.dirOf(id), id);
  }

  async reserve(ids: readonly string[]): Promise<void> {
    // O_DSYNC: a write returns once its bytes (and the size) are on disk, no separate fdatasync.
    // Created on this thread: a creation is microseconds, a thread-pool trip each costs more.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (this.durable ? constants.O_DSYNC : 0);
    const made: Array<[string, number]> = [];
    try {
      for (const id of ids) made.push([id, openSync(this.pathOf(id), flags, 0o600)]);
      // the names are durable before any write relies on them
      if (this.durable) await Promise.all([...new Set(ids.map((id) => this.dirOf(id)))].map((d) => this.dirs.sync(d)));
    } catch (err) {
      for (const [id, fd] of made) {
        closeQuietly(fd);
        await unlink(this.pathOf(id)).catch(() => undefined);
      }
      throw err;
    }
    for (const [id, fd] of made) this.reserved.set(id, fd);
  }

  async write(id: string, source: Readable | AsyncIterable<Buffer | Uint8Array>, o: BlobWriteOptions): Promise<BlobWritten> {
    const dir = this.dirOf(id);
    // a reserved blob is written in place: its empty file's name is durable already
    const held = this.reserved.get(id);
    if (held !== undefined) this.reserved.delete(id);
    const tmp = held !== undefined ? join(dir, id) : join(dir, `.tmp-${id}`);
    const limit = Math.min(o.maxSize, o.expectedSize ?? Infinity);
    const md5 = createHash('md5');
    const crcs: number[] = [];
    let blockCrc = 0;
    let blockFill = 0;
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const fh = held === undefined ? await open(tmp, 'wx', 0o600) : null;
    let ok = false;
    try {
      const flush = async () => {
        if (!pendingBytes) return;
        const bufs = pending;
        const n = pendingBytes;
        pending = [];
        pendingBytes = 0;
        const written = (fh ? await fh.writev(bufs) : await writevFd(held!, bufs)).bytesWritten;
        if (written !== n) throw new Error(`a short write to blob ${id}`);
      };
      for await (const raw of source) {
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        if (!chunk.length) continue;
        size += chunk.length;
        if (size > limit) throw new TooLargeError(limit);
        md5.update(chunk);
        // the CRC of each 64 KiB block
        let off = 0;
        while (off < chunk.length) {
          const take = Math.min(BLOCK_SIZE - blockFill, chunk.length - off);
          blockCrc = crc32(chunk.subarray(off, off + take), blockCrc);
          blockFill += take;
          off += take;
          if (blockFill === BLOCK_SIZE) {
            crcs.push(blockCrc);
            blockCrc = 0;
            blockFill = 0;
          }
        }
        pending.push(chunk);
        pendingBytes += chunk.length;
        // a reserved blob (no more than reserveUpTo bytes) is written whole, in one synchronous write
        if (held === undefined && pendingBytes >= WRITE_BATCH) await flush();
      }
      if (o.expectedSize !== undefined && size < o.expectedSize) throw new ShortBodyError(size, o.expectedSize);
      if (blockFill) crcs.push(blockCrc);
      const trailer = Buffer.allocUnsafe(crcs.length * 4 + FOOTER);
      for (let i = 0; i < crcs.length; i++) trailer.writeUInt32BE(crcs[i]!, i * 4);
      const list = trailer.subarray(0, crcs.length * 4);
      const f = crcs.length * 4;
      trailer.writeUInt32BE(MAGIC, f);
      trailer.writeUInt32BE(BLOCK_SIZE, f + 4);
      trailer.writeUInt32BE(crcs.length, f + 8);
      trailer.writeUInt32BE(crc32(list), f + 12);
      pending.push(trailer);
      pendingBytes += trailer.length;
      await flush();
      // a reserved blob's write was synchronous (O_DSYNC)
      if (this.durable && fh) await fh.datasync();
      ok = true;
    } finally {
      if (fh) await fh.close().catch(() => undefined);
      else closeQuietly(held!);
      if (!ok) await unlink(tmp).catch(() => undefined);
    }
    if (held !== undefined) return { size, md5: md5.digest('hex') };
    try {
      await rename(tmp, join(dir, id));
      if (this.durable) await this.dirs.sync(dir);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      await unlink(join(dir, id)).catch(() => undefined);
      throw err;
    }
    return { size, md5: md5.digest('hex') };
  }

  read(id: string, size: number, range?: ByteRange): Readable {
    return Readable.from(this.blocks(id, size, range ?? { start: 0, end: size }), { objectMode: false, highWaterMark: BLOCK_SIZE });
  }

  private async *blocks(id: string, size: number, range: ByteRange): AsyncGenerator<Buffer> {
    const start = Math.max(0, range.start);
    const end = Math.min(size, range.end);
    if (end <= start) {
      // nothing to return, but a missing blob is still worth knowing of
      if (size === 0) await this.checkFooter(id, size);
      return;
    }
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(id), 'r');
    } catch (err) {
      throw new BlobCorruptError(id, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the blob file is missing' : `cannot open: ${(err as Error).message}`);
    }
    try {
      const first = Math.floor(start / BLOCK_SIZE);
      const last = Math.floor((end - 1) / BLOCK_SIZE);
      const nblocks = Math.ceil(size / BLOCK_SIZE);
      // the CRCs of the blocks read, and the footer (its block count must match the size)
      const crcBuf = Buffer.allocUnsafe((last - first + 1) * 4);
      await readFully(fh, id, crcBuf, size + first * 4);
      const footer = Buffer.allocUnsafe(FOOTER);
      await readFully(fh, id, footer, size + nblocks * 4);
      if (footer.readUInt32BE(0) !== MAGIC || footer.readUInt32BE(4) !== BLOCK_SIZE || footer.readUInt32BE(8) !== nblocks) {
        throw new BlobCorruptError(id, 'the checksum footer does not match the recorded size');
      }
      for (let b = first; b <= last; b += READ_BLOCKS) {
        const upto = Math.min(last, b + READ_BLOCKS - 1);
        const from = b * BLOCK_SIZE;
        const to = Math.min(size, (upto + 1) * BLOCK_SIZE);
        const buf = Buffer.allocUnsafe(to - from);
        await readFully(fh, id, buf, from);
        for (let k = b; k <= upto; k++) {
          const s = (k - b) * BLOCK_SIZE;
          const blk = buf.subarray(s, Math.min(buf.length, s + BLOCK_SIZE));
          if (crc32(blk) !== crcBuf.readUInt32BE((k - first) * 4)) throw new BlobCorruptError(id, `block ${k} does not match its checksum`);
        }
        yield buf.subarray(Math.max(0, start - from), Math.min(buf.length, end - from));
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** A small blob in one read of its file (data, CRCs and footer), every block checked. */
  private async readWhole(id: string, size: number, range: ByteRange): Promise<Buffer> {
    const nblocks = Math.ceil(size / BLOCK_SIZE);
    const buf = Buffer.allocUnsafe(size + nblocks * 4 + FOOTER);
    let fd: number;
    try {
      fd = await openFd(this.pathOf(id), 'r');
    } catch (err) {
      throw missing(id, err);
    }
    try {
      for (let off = 0; off < buf.length;) {
        const { bytesRead } = await readFd(fd, buf, off, buf.length - off, off);
        if (bytesRead === 0) throw new BlobCorruptError(id, 'the blob file is shorter than its record');
        off += bytesRead;
      }
    } finally {
      // closed on this thread: no thread-pool trip for a descriptor that wrote nothing
      closeQuietly(fd);
    }
    const f = size + nblocks * 4;
    if (buf.readUInt32BE(f) !== MAGIC || buf.readUInt32BE(f + 4) !== BLOCK_SIZE || buf.readUInt32BE(f + 8) !== nblocks) {
      throw new BlobCorruptError(id, 'the checksum footer does not match the recorded size');
    }
    const first = Math.floor(range.start / BLOCK_SIZE);
    const last = Math.floor((Math.max(range.start, range.end - 1)) / BLOCK_SIZE);
    for (let k = first; k <= last && k < nblocks; k++) {
      const blk = buf.subarray(k * BLOCK_SIZE, Math.min(size, (k + 1) * BLOCK_SIZE));
      if (crc32(blk) !== buf.readUInt32BE(size + k * 4)) throw new BlobCorruptError(id, `block ${k} does not match its checksum`);
    }
    return buf.subarray(Math.max(0, range.start), Math.min(size, range.end));
  }

  private async checkFooter(id: string, size: number): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(id), 'r');
    } catch {
      throw new BlobCorruptError(id, 'the blob file is missing');
    }
    try {
      const footer = Buffer.allocUnsafe(FOOTER);
      await readFully(fh, id, footer, size + Math.ceil(size / BLOCK_SIZE) * 4);
      if (footer.readUInt32BE(0) !== MAGIC) throw new BlobCorruptError(id, 'the checksum footer is damaged');
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async verify(id: string, size: number): Promise<{ ok: true; md5: string } | { ok: false; reason: string }> {
    const md5 = createHash('md5');
    try {
      const fh = await open(this.pathOf(id), 'r').catch(() => null);
      if (!fh) return { ok: false, reason: 'the blob file is missing' };
      try {
        const st = await fh.stat();
        const nblocks = Math.ceil(size / BLOCK_SIZE);
        if (st.size !== size + nblocks * 4 + FOOTER) return { ok: false, reason: `the file holds ${st.size} bytes, not the ${size + nblocks * 4 + FOOTER} its record implies` };
        const trailer = Buffer.allocUnsafe(nblocks * 4 + FOOTER);
        await readFully(fh, id, trailer, size);
        const f = nblocks * 4;
        if (trailer.readUInt32BE(f) !== MAGIC || trailer.readUInt32BE(f + 8) !== nblocks || trailer.readUInt32BE(f + 12) !== crc32(trailer.subarray(0, f))) {
          return { ok: false, reason: 'the checksum footer is damaged' };
        }
      } finally {
        await fh.close();
      }
      for await (const chunk of this.blocks(id, size, { start: 0, end: size })) md5.update(chunk);
    } catch (err) {
      return { ok: false, reason: err instanceof BlobCorruptError ? err.message.replace(/^blob \S+: /, '') : String((err as Error).message) };
    }
    return { ok: true, md5: md5.digest('hex') };
  }

  async remove(ids: readonly string[]): Promise<void> {
    await Promise.all(ids.map(async (id) => {
      const dir = this.dirOf(id);
      const held = this.reserved.get(id);
      if (held !== undefined) {
        this.reserved.delete(id);
        closeQuietly(held);
      }
      // the blob, else (a write cut short) its temporary file
      const gone = await unlink(join(dir, id)).then(() => true, () => false);
      if (!gone) await unlink(join(dir, `.tmp-${id}`)).catch(() => undefined);
    }));
  }

  async readSmall(id: string, size: number, range?: ByteRange): Promise<Buffer> {
    if (size <= READ_BLOCKS * BLOCK_SIZE) return this.readWhole(id, size, range ?? { start: 0, end: size });
    const chunks: Buffer[] = [];
    for await (const c of this.blocks(id, size, range ?? { start: 0, end: size })) chunks.push(c);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  async *list(): AsyncIterable<string> {
    for (let i = 0; i < 256; i++) {
      const dir = join(this.root, i.toString(16).padStart(2, '0'));
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const n of names) yield n.startsWith('.tmp-') ? n.slice(5) : n;
    }
  }

  async recover(): Promise<void> {
    // temporary files belong to a pending blob row; the store removes them with it
  }
}

function missing(id: string, err: unknown): BlobCorruptError {
  return new BlobCorruptError(id, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the blob file is missing' : `cannot open: ${(err as Error).message}`);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing is lost: a read, or a write whose bytes were synced
  }
}

async function readFully(fh: FileHandle, id: string, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new BlobCorruptError(id, 'the blob file is shorter than its record');
    off += bytesRead;
  }
}
