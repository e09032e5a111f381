// Tar archives (OCI image archives and layers), read and written through
// tar-stream: the one module that parses tar, used by the image service (an
// upload inspected in flight) and by the agent (image archives and layers).
// Reading streams entries out of any byte stream and never holds an archive
// in memory; whatever is malformed (bad checksum, truncation, a header tar
// cannot make sense of) fails with TarFormatError. The entries' names are
// handed over as written: what a name may mean on disk is the extractor's
// business. Writing produces reproducible archives (callers pick mtime, owner
// and order).
import type { Writable } from 'node:stream';
import { extract, pack, type Header } from 'tar-stream';

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

export interface TarEntry extends TarHeader {
  /** Offset of the entry's data in the archive. */
  offset: number;
  /**
   * The entry's data (nothing for entries other than files). Read it to the
   * end or not at all (drain() or the next entry skips it): stopping half-way
   * abandons the archive.
   */
  body(): AsyncGenerator<Buffer>;
  drain(): Promise<void>;
}

/** The archive is not a tar archive, or a damaged one. */
export class TarFormatError extends Error {}

const BLOCK = 512;

/** tar-stream's entry kinds; the others (sparse files, volume headers...) are skipped, as tar does. */
const FROM_STREAM: Partial<Record<string, TarType>> = {
  file: 'file', 'contiguous-file': 'file', link: 'link', symlink: 'symlink',
  'character-device': 'char', 'block-device': 'block', directory: 'dir', fifo: 'fifo',
};
const TO_STREAM: Record<TarType, Header['type']> = {
  file: 'file', link: 'link', symlink: 'symlink', char: 'character-device', block: 'block-device', dir: 'directory', fifo: 'fifo',
};
/** File-type bits for the mode handed to tar-stream, which takes a mode of 0 as "use the default" (0o644). */
const MODE_TYPE: Record<TarType, number> = { file: 0o100000, link: 0o100000, symlink: 0o120000, char: 0o020000, block: 0o060000, dir: 0o040000, fifo: 0o010000 };
/** Largest id the ustar header holds as tar-stream writes it (6 octal digits); beyond, a pax record. */
const MAX_USTAR_ID = 0o777777;

const asBuffer = (c: Buffer | Uint8Array | string) =>
  typeof c === 'string' ? Buffer.from(c) : Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);

/** tar-stream reports damage with plain Errors; everything it says about the bytes becomes a TarFormatError. */
function formatError(e: unknown): Error {
  if (e instanceof TarFormatError) return e;
  const msg = (e instanceof Error ? e.message : String(e))
    .replace(/^Invalid tar header\. Maybe the tar is corrupted or it needs to be gunzipped\?$/, 'bad header checksum')
    .replace(/\.$/, '');
  return new TarFormatError(`tar: ${msg.charAt(0).toLowerCase()}${msg.slice(1)}`);
}

/** A non-negative integer header field, from the pax record when there is one. */
function field(name: string, value: number, pax: Record<string, string> | null, key?: string): number {
  const raw = key !== undefined && pax?.[key] !== undefined ? Number(pax[key]) : value;
  const v = key === 'mtime' ? Math.floor(raw) : raw;
  if (!Number.isSafeInteger(v) || v < 0) throw new TarFormatError(`tar: entry has an invalid ${name}`);
  return v;
}

async function drainStream(s: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of s) { /* skip */ }
}

/** Streams the entries of an uncompressed tar archive. */
export async function* readTar(src: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarEntry> {
  // Archives written by old tars carry no ustar magic; the checksum still has to hold.
  const ex = extract({ allowUnknownFormat: true } as Parameters<typeof extract>[0]);
  let srcError: unknown = null;
  void (async () => {
    try {
      for await (const c of src) {
        if (ex.destroying) return;
        if (!ex.write(asBuffer(c))) {
          await new Promise<void>((resolve) => {
            const done = () => { ex.off('drain', done); ex.off('close', done); resolve(); };
            ex.on('drain', done);
            ex.on('close', done);
          });
        }
      }
      ex.end(null);
    } catch (e) {
      // The source's own failure (a read error, a corrupt gzip stream) reaches the reader as it is.
      srcError = e;
      ex.destroy(e as Error);
    }
  })();
  const fail = (e: unknown) => (e === srcError ? e : formatError(e));
  let finished = false;
  try {
    for await (const s of ex) {
      const h = s.header;
      // tar-stream hands over a size it could not read (a base-256 field with
      // a bad lead byte) as is, and the entry's data would never end.
      const size = field('size', h.size, null);
      const type = FROM_STREAM[h.type ?? ''];
      if (!type) {
        await drainStream(s);
        continue;
      }
      // tar-stream neither skips nor ends the data of a directory; tar writes none.
      if (type === 'dir' && size > 0) throw new TarFormatError('tar: a directory entry carries data');
      const pax = (h.pax ?? null) as Record<string, string> | null;
      let consumed = false;
      const body = async function* (): AsyncGenerator<Buffer> {
        if (consumed) throw new Error('tar: entry body read twice');
        consumed = true;
        try {
          if (type !== 'file') await drainStream(s);
          else for await (const c of s) yield c as Buffer;
        } catch (e) {
          throw fail(e);
        }
      };
      const entry: TarEntry = {
        name: type === 'dir' ? h.name.replace(/\/+$/, '') : h.name,
        type,
        linkname: h.linkname ?? '',
        offset: s.offset + BLOCK,
        mode: field('mode', h.mode, null) & 0o7777,
        uid: field('uid', h.uid, pax, 'uid'),
        gid: field('gid', h.gid, pax, 'gid'),
        size: type === 'file' ? size : 0,
        mtime: field('mtime', h.mtime.getTime() / 1000, pax, 'mtime'),
        devmajor: field('device number', h.devmajor, null),
        devminor: field('device number', h.devminor, null),
        body,
        async drain() {
          if (!consumed) for await (const _ of body()) { /* skip */ }
        },
      };
      yield entry;
      await entry.drain();
    }
    finished = true;
  } catch (e) {
    throw fail(e);
  } finally {
    // An early stop (the caller's error or break) abandons the archive.
    if (!finished) ex.destroy();
  }
}

export type TarBody = Buffer | AsyncIterable<Buffer | Uint8Array>;

/** Writes a tar archive to a stream; honours backpressure. */
export class TarWriter {
  private readonly out: Writable;
  private readonly pack = pack();
  private readonly pumped: Promise<void>;
  private closed = false;
  constructor(out: Writable) {
    this.out = out;
    this.pumped = (async () => {
      for await (const c of this.pack) await this.write(c as Buffer);
    })();
    // A failed destination stops the entry being written (which then reports it).
    this.pumped.catch((e: Error) => this.pack.destroy(e));
  }
  private async write(b: Buffer): Promise<void> {
    if (!this.out.write(b)) await new Promise<void>((resolve, reject) => {
      const onDrain = () => { this.out.off('error', onError); resolve(); };
      const onError = (e: Error) => { this.out.off('drain', onDrain); reject(e); };
      this.out.once('drain', onDrain);
      this.out.once('error', onError);
    });
  }
  async add(h: Partial<TarHeader> & { name: string; type: TarType }, body?: TarBody): Promise<void> {
    if (this.closed) throw new Error('tar: writer finished');
    const size = h.type === 'file' ? (h.size ?? (Buffer.isBuffer(body) ? body.length : 0)) : 0;
    const uid = h.uid ?? 0;
    const gid = h.gid ?? 0;
    const pax: Record<string, string> = {};
    if (uid > MAX_USTAR_ID) pax.uid = String(uid);
    if (gid > MAX_USTAR_ID) pax.gid = String(gid);
    const header: Header = {
      name: h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name,
      type: TO_STREAM[h.type],
      mode: ((h.mode ?? (h.type === 'dir' ? 0o755 : 0o644)) & 0o7777) | MODE_TYPE[h.type],
      uid: Math.min(uid, MAX_USTAR_ID), gid: Math.min(gid, MAX_USTAR_ID), uname: '', gname: '',
      size, mtime: new Date((h.mtime ?? 0) * 1000), linkname: h.linkname ?? '',
      devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
      pax: Object.keys(pax).length ? pax : null,
    };
    await new Promise<void>((resolve, reject) => {
      const sink = this.pack.entry(header, (err) => (err ? reject(err) : resolve()));
      (async () => {
        let written = 0;
        if (size > 0 && body) {
          for await (const c of Buffer.isBuffer(body) ? [body] : body) {
            const buf = asBuffer(c);
            written += buf.length;
            if (written > size) throw new Error(`tar: ${h.name} grew while being archived`);
            if (!sink.write(buf)) {
              await new Promise<void>((r) => {
                const done = () => { sink.off('drain', done); sink.off('close', done); r(); };
                sink.on('drain', done);
                sink.on('close', done);
              });
            }
          }
        }
        if (written !== size) throw new Error(`tar: ${h.name}: expected ${size} bytes, got ${written}`);
        sink.end(null);
      })().catch((e: Error) => sink.destroy(e));
    });
  }
  /** Writes the end-of-archive blocks and ends the stream. */
  async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pack.finalize();
    await this.pumped;
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }
}
