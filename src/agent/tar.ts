// A small tar reader and writer (POSIX ustar + pax + GNU long names), enough
// for OCI image layers: the reader streams entries out of any byte stream, the
// writer produces reproducible archives (callers pick mtime, owner and order).
import type { Writable } from 'node:stream';

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
  /** The entry's data; must be consumed (or skipped with drain()) before the next entry is read. */
  body(): AsyncGenerator<Buffer>;
  drain(): Promise<void>;
}

const BLOCK = 512;

const TYPES: Record<string, TarType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };
const FLAGS: Record<TarType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** Reads exact byte counts out of an async iterable of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;
  private done = false;
  /** Bytes handed out so far: the stream offset of the next byte. */
  position = 0;
  constructor(src: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const b = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (b.length) {
        this.chunks.push(b);
        this.buffered += b.length;
      }
    }
    return this.buffered >= n;
  }
  private take(n: number): Buffer {
    this.position += n;
    const head = this.chunks[0]!;
    if (head.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return head;
    }
    if (head.length > n) {
      this.chunks[0] = head.subarray(n);
      this.buffered -= n;
      return head.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
  /** Exactly n bytes, or null at a clean end of stream; throws on a short read. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.buffered === 0) return null;
      throw new Error('tar: unexpected end of archive');
    }
    return this.take(n);
  }
  /** n bytes as they arrive. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) throw new Error('tar: unexpected end of archive');
      const head = this.chunks[0]!;
      const k = Math.min(head.length, left);
      left -= k;
      yield this.take(k);
    }
  }
  /** Whatever is left (the tail after the end-of-archive blocks), discarded. */
  async drainAll(): Promise<void> {
    while (!this.done) await this.fill(this.buffered + (1 << 20));
    this.chunks = [];
    this.buffered = 0;
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

function num(b: Buffer, off: number, len: number): number {
  // GNU base-256 for large values
  if (b[off]! & 0x80) {
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = cstr(b, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === num(h, 148, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(32, off);
    if (sp < 0) break;
    const len = parseInt(data.subarray(off, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = data.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

/** Streams the entries of an uncompressed tar archive. */
export async function* readTar(src: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(src);
  let globalPax: Record<string, string> = {};
  let pax: Record<string, string> = {};
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    const h = await r.read(BLOCK);
    if (!h) return;
    if (h.every((x) => x === 0)) {
      await r.drainAll();
      return;
    }
    if (!checksumOk(h)) throw new Error('tar: bad header checksum');
    const flag = String.fromCharCode(h[156]!);
    const size = num(h, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const data = (await r.read(padded))?.subarray(0, size) ?? Buffer.alloc(0);
      if (flag === 'x') pax = { ...pax, ...parsePax(data) };
      else if (flag === 'g') globalPax = { ...globalPax, ...parsePax(data) };
      else if (flag === 'L') longName = cstr(data, 0, data.length);
      else longLink = cstr(data, 0, data.length);
      continue;
    }
    const type = TYPES[flag];
    const p = { ...globalPax, ...pax };
    const magic = h.subarray(257, 263).toString('latin1');
    const prefix = magic.startsWith('ustar') ? cstr(h, 345, 155) : '';
    let name = longName ?? p.path ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    const linkname = longLink ?? p.linkpath ?? cstr(h, 157, 100);
    pax = {};
    longName = null;
    longLink = null;
    const realSize = p.size !== undefined ? Number(p.size) : size;
    const realPadded = Math.ceil(realSize / BLOCK) * BLOCK;
    if (!type) {
      // unknown entry kinds (sparse files, volume headers...) are skipped
      for await (const _ of r.stream(realPadded)) { /* skip */ }
      continue;
    }
    if (type === 'dir') name = name.replace(/\/+$/, '');
    let consumed = false;
    const dataSize = type === 'file' ? realSize : 0;
    const skipRest = realPadded - (type === 'file' ? realSize : 0);
    const body = async function* (): AsyncGenerator<Buffer> {
      if (consumed) throw new Error('tar: entry body read twice');
      consumed = true;
      if (dataSize > 0) yield* r.stream(dataSize);
      if (skipRest > 0) for await (const _ of r.stream(skipRest)) { /* padding */ }
    };
    const entry: TarEntry = {
      name, type, linkname, offset: r.position,
      mode: num(h, 100, 8) & 0o7777,
      uid: p.uid !== undefined ? Number(p.uid) : num(h, 108, 8),
      gid: p.gid !== undefined ? Number(p.gid) : num(h, 116, 8),
      size: dataSize,
      mtime: p.mtime !== undefined ? Math.floor(Number(p.mtime)) : num(h, 136, 12),
      devmajor: num(h, 329, 8),
      devminor: num(h, 337, 8),
      body,
      async drain() {
        if (!consumed) for await (const _ of body()) { /* skip */ }
      },
    };
    yield entry;
    await entry.drain();
  }
}

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  let total = len + String(len).length;
  if (String(total).length !== String(len).length) total = len + String(total).length;
  return Buffer.from(`${total}${body}`, 'utf8');
}

function header(h: Omit<TarHeader, 'type'>, flag: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  b.write(octal(h.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(h.uid, 8), 108, 'ascii');
  b.write(octal(h.gid, 8), 116, 'ascii');
  b.write(octal(h.size, 12), 124, 'ascii');
  b.write(octal(h.mtime, 12), 136, 'ascii');
  b.write('        ', 148, 'ascii');
  b.write(flag, 156, 'ascii');
  b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 'latin1');
  b.write(octal(h.devmajor, 8), 329, 'ascii');
  b.write(octal(h.devminor, 8), 337, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return b;
}

export type TarBody = Buffer | AsyncIterable<Buffer | Uint8Array>;

/** Writes a tar archive to a stream; honours backpressure. */
export class TarWriter {
  private readonly out: Writable;
  private closed = false;
  constructor(out: Writable) {
    this.out = out;
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
    const full = {
      name: h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name,
      linkname: h.linkname ?? '', mode: h.mode ?? (h.type === 'dir' ? 0o755 : 0o644), uid: h.uid ?? 0, gid: h.gid ?? 0,
      size, mtime: h.mtime ?? 0, devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
    };
    const records: Buffer[] = [];
    if (Buffer.byteLength(full.name) > 100) records.push(paxRecord('path', full.name));
    if (Buffer.byteLength(full.linkname) > 100) records.push(paxRecord('linkpath', full.linkname));
    if (size > 0o77777777777) records.push(paxRecord('size', String(size)));
    if (full.uid > 0o7777777) records.push(paxRecord('uid', String(full.uid)));
    if (full.gid > 0o7777777) records.push(paxRecord('gid', String(full.gid)));
    if (records.length) {
      const data = Buffer.concat(records);
      await this.write(header({ ...full, name: 'PaxHeaders/' + full.name.slice(-80).replace(/^\/+/, ''), linkname: '', size: data.length, uid: 0, gid: 0, mode: 0o644 }, 'x'));
      await this.write(Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]));
    }
    const clipped = {
      ...full,
      name: Buffer.byteLength(full.name) > 100 ? Buffer.from(full.name).subarray(0, 100).toString('latin1') : full.name,
      linkname: Buffer.byteLength(full.linkname) > 100 ? '' : full.linkname,
      size: Math.min(size, 0o77777777777), uid: Math.min(full.uid, 0o7777777), gid: Math.min(full.gid, 0o7777777),
    };
    await this.write(header(clipped, FLAGS[h.type]));
    if (size > 0) {
      let written = 0;
      if (Buffer.isBuffer(body)) {
        await this.write(body);
        written = body.length;
      } else if (body) {
        for await (const c of body) {
          const buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
          written += buf.length;
          if (written > size) throw new Error(`tar: ${h.name} grew while being archived`);
          await this.write(buf);
        }
      }
      if (written !== size) throw new Error(`tar: ${h.name}: expected ${size} bytes, got ${written}`);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad) await this.write(Buffer.alloc(pad));
    }
  }
  /** Writes the end-of-archive blocks and ends the stream. */
  async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.write(Buffer.alloc(BLOCK * 2));
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }
}
