// Malformed and hostile archives against both paths that read tar from
// uploads: the image service's in-flight inspector and the agent (image
// archive index, layer unpacking into a directory). Every case must end in
// success or in the error class its caller turns into a refusal
// (InvalidImageDataError: 415; ImageFormatError: a permanent build failure),
// never a crash or a hang, and unpacking must write nothing outside its
// directory. Cases are crafted, then mutated from a deterministic seed.
// Unpacking sets owners and makes device nodes: those cases run as root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { buildLayerBlob, fileRange, ImageFormatError, inspectArchive, unpackLayer, writeOciArchive } from '../../src/agent/drivers/container/oci.ts';
import { run } from '../../src/agent/exec.ts';
import { TarWriter, type TarHeader, type TarType } from '../../src/common/tar.ts';
import { ContainerArchiveInspector, InvalidImageDataError } from '../../src/image/inspect.ts';

const SEED = 0x5eed_7a12;
const asRoot = process.getuid?.() === 0;
const top = mkdtempSync(join(tmpdir(), 'stratus-tar-fuzz-'));
after(() => rmSync(top, { recursive: true, force: true }));

/** mulberry32: a small deterministic generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const int = (n: number) => Math.floor(rand() * n);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// --- raw archives, built by hand so that they can say what no writer would

const FLAG: Record<TarType | 'pax' | 'gnulong', string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6', pax: 'x', gnulong: 'L' };

interface Raw { name: string; type?: keyof typeof FLAG; body?: Buffer | string; linkname?: string; size?: Buffer; mode?: number; devmajor?: number; checksum?: 'bad' }

function header(r: Raw, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(r.name, 0, 100, 'utf8');
  h.write(`${(r.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  if (r.size) r.size.copy(h, 124);
  else h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write('00000000000\0', 136, 'ascii');
  h.write(FLAG[r.type ?? 'file'], 156, 'ascii');
  h.write(r.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar\u000000', 257, 'latin1');
  h.write(`${(r.devmajor ?? 0).toString(8).padStart(7, '0')}\0`, 329, 'ascii');
  h.write('0000000\0', 337, 'ascii');
  fixChecksum(h);
  if (r.checksum === 'bad') h[148] = h[148] === 0x37 ? 0x36 : 0x37;
  return h;
}

function fixChecksum(h: Buffer): void {
  h.fill(32, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

function rawTar(entries: Raw[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const r of entries) {
    const body = Buffer.from(r.body ?? '');
    parts.push(header(r, body.length), body, pad(body.length));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function paxRecords(records: Record<string, string>): string {
  return Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return `${len}${body}`;
  }).join('');
}

async function writerTar(entries: Array<Partial<TarHeader> & { name: string; type: TarType; body?: string }>): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const w = new TarWriter(out);
  for (const e of entries) await w.add(e, e.body !== undefined ? Buffer.from(e.body) : undefined);
  await w.finish();
  return Buffer.concat(chunks);
}

// --- mutations of a valid archive

function truncations(buf: Buffer, count: number): Buffer[] {
  const step = Math.max(1, Math.floor(buf.length / count));
  const out: Buffer[] = [];
  for (let at = 1; at < buf.length; at += step) out.push(buf.subarray(0, at));
  return out;
}

/** Garbage in one header's fields (size, mode, ids, type, names), checksum fixed so that the fields are read. */
function headerGarbage(buf: Buffer, headers: number[], count: number): Buffer[] {
  const ranges = [[0, 100], [100, 8], [108, 16], [124, 12], [136, 12], [156, 1], [157, 100], [257, 8], [329, 16], [345, 155]] as const;
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = Buffer.from(buf);
    const at = headers[int(headers.length)]!;
    const h = b.subarray(at, at + 512);
    const [off, len] = ranges[int(ranges.length)]!;
    for (let k = 0; k < 1 + int(len); k++) h[off + int(len)] = rand() < 0.5 ? int(256) : '0123456789/.\0 xLg'.charCodeAt(int(17));
    if (rand() < 0.9) fixChecksum(h);
    out.push(b);
  }
  return out;
}

function flips(buf: Buffer, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = Buffer.from(buf);
    for (let k = 0; k < 1 + int(4); k++) b[int(b.length)] = int(256);
    out.push(b);
  }
  return out;
}

/** Offsets of the headers of a well-formed archive. */
function headerOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at + 512 <= buf.length;) {
    const h = buf.subarray(at, at + 512);
    if (h.every((x) => x === 0)) break;
    out.push(at);
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

// --- the paths under test

/** Unpacks `data` as a layer whose digests match it (the archive's author controls both); returns the error, if any. */
async function unpackCase(n: number, data: Buffer, opts: { lower?: (dir: string, outside: string) => void } = {}): Promise<{ err: unknown; dest: string; outside: string }> {
  const dir = join(top, `case-${n}`);
  const outside = join(dir, 'outside');
  mkdirSync(outside, { recursive: true, mode: 0o700 });
  writeFileSync(join(outside, 'secret'), 'secret');
  const lower = join(dir, 'lower');
  mkdirSync(lower);
  writeFileSync(join(lower, 'base'), 'base');
  opts.lower?.(lower, outside);
  const file = join(dir, 'layer');
  writeFileSync(file, data);
  const plain = data[0] === 0x1f && data[1] === 0x8b ? (() => { try { return gunzipSync(data); } catch { return data; } })() : data;
  const layer = { digest: `sha256:${sha(data)}`, diffId: `sha256:${sha(plain)}`, mediaType: 'application/vnd.oci.image.layer.v1.tar', size: data.length, offset: 0 };
  const before = snapshot(dir);
  const dest = join(dir, 'dest');
  let err: unknown = null;
  await unpackLayer(file, layer, dest, [lower]).catch((e: unknown) => { err = e; });
  assert.deepEqual(snapshot(dir), before, `case ${n}: something changed outside the layer directory`);
  assert.deepEqual(readdirSync(top), [`case-${n}`], `case ${n}: something written beside the case directory`);
  if (data.includes('.wh..wh..opq')) {
    const opaque = await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', outside]);
    assert.notEqual(opaque.stdout, 'y', `case ${n}: an opaque marker outside`);
  }
  return { err, dest, outside };
}

/** Every path under `dir` except the layer directory, with its type, mode and size. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (p === join(dir, 'dest')) continue;
      const st = lstatSync(p);
      out.push(`${p.slice(dir.length)} ${st.mode.toString(8)} ${st.size} ${st.uid}:${st.gid} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

function expectFormatError(err: unknown, label: string): void {
  if (err === null) return;
  assert.ok(err instanceof ImageFormatError, `${label}: ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`);
  assert.ok((err as Error).message.length > 0);
}

async function inspectUpload(data: Buffer): Promise<unknown> {
  const insp = new ContainerArchiveInspector();
  try {
    for (let i = 0; i < data.length;) {
      const n = 1 + int(3000);
      insp.update(data.subarray(i, i + n));
      i += n;
    }
    await insp.finish();
    return null;
  } catch (e) {
    return e;
  }
}

let fileNo = 0;
async function indexCase(data: Buffer): Promise<unknown> {
  const file = join(top, `archive-${fileNo++}.tar`);
  writeFileSync(file, data);
  try {
    await inspectArchive(file);
    return null;
  } catch (e) {
    return e;
  } finally {
    rmSync(file, { force: true });
  }
}

// --- the cases

async function hostileLayers(outsideOf: (n: number) => string): Promise<Array<{ label: string; data: Buffer; refused: boolean; lower?: (dir: string, outside: string) => void }>> {
  const cases: Array<{ label: string; data: Buffer; refused: boolean; lower?: (dir: string, outside: string) => void }> = [];
  const add = (label: string, data: Buffer, refused: boolean, lower?: (dir: string, outside: string) => void) => cases.push({ label, data, refused, lower });
  const n = () => cases.length;
  add('dot-dot', rawTar([{ name: '../evil', body: 'x' }]), true);
  add('dot-dot deep', rawTar([{ name: 'a/../../evil', body: 'x' }]), true);
  add('absolute path (rooted at the layer)', rawTar([{ name: '/abs/file', body: 'x' }]), false);
  add('write through a symlink', rawTar([{ name: 'a', type: 'symlink', linkname: outsideOf(n()) }, { name: 'a/evil', body: 'x' }]), true);
  add('write through a relative symlink', rawTar([{ name: 'a', type: 'symlink', linkname: '../outside' }, { name: 'a/evil', body: 'x' }]), true);
  add('directory replaced by a symlink, then written through', rawTar([{ name: 'a', type: 'dir' }, { name: 'a', type: 'symlink', linkname: outsideOf(n()) }, { name: 'a/evil', body: 'x' }]), true);
  add('directory mode applied through a later symlink', rawTar([{ name: 'a', type: 'dir', mode: 0o777 }, { name: 'a', type: 'symlink', linkname: outsideOf(n()) }]), false);
  add('device node under a directory later a symlink', rawTar([{ name: 'a', type: 'dir' }, { name: 'a/null', type: 'char', devmajor: 1 }, { name: 'a', type: 'symlink', linkname: outsideOf(n()) }]), false);
  add('whiteout under a directory later a symlink', rawTar([{ name: 'a', type: 'dir' }, { name: 'a/.wh.secret' }, { name: 'a', type: 'symlink', linkname: outsideOf(n()) }]), false);
  add('opaque directory later a symlink', rawTar([{ name: 'a', type: 'dir' }, { name: 'a/.wh..wh..opq' }, { name: 'a', type: 'symlink', linkname: outsideOf(n()) }]), false);
  add('whiteout of ..', rawTar([{ name: '.wh...' }]), true);
  add('whiteout of .', rawTar([{ name: 'a/.wh..' }]), true);
  add('whiteout of nothing', rawTar([{ name: '.wh.' }]), true);
  add('hard link out with ..', rawTar([{ name: 'h', type: 'link', linkname: '../outside/secret' }]), true);
  add('hard link to an absolute path (rooted at the layer)', rawTar([{ name: 'h', type: 'link', linkname: '/etc/passwd' }]), true);
  add('hard link through a symlink of this layer', rawTar([{ name: 'l', type: 'symlink', linkname: outsideOf(n()) }, { name: 'h', type: 'link', linkname: 'l/secret' }]), true);
  add('hard link through a symlink of a lower layer', rawTar([{ name: 'h', type: 'link', linkname: 's/secret' }]), true, (lower, outside) => symlinkSync(outside, join(lower, 's')));
  add('hard link to a lower file', rawTar([{ name: 'h', type: 'link', linkname: 'base' }]), false);
  add('gnu long name with ..', rawTar([{ name: '././@LongLink', type: 'gnulong', body: '../../evil\0' }, { name: 'x', body: 'x' }]), true);
  add('pax path with ..', rawTar([{ name: 'PaxHeader', type: 'pax', body: paxRecords({ path: '../evil' }) }, { name: 'x', body: 'x' }]), true);
  add('pax huge size', rawTar([{ name: 'PaxHeader', type: 'pax', body: paxRecords({ size: '99999999999999999999999' }) }, { name: 'x', body: 'x' }]), true);
  add('pax negative size', rawTar([{ name: 'PaxHeader', type: 'pax', body: paxRecords({ size: '-1' }) }, { name: 'x', body: 'x' }]), true);
  add('pax garbage uid', rawTar([{ name: 'PaxHeader', type: 'pax', body: paxRecords({ uid: 'nobody' }) }, { name: 'x', body: 'x' }]), true);
  add('pax record longer than its header', rawTar([{ name: 'PaxHeader', type: 'pax', body: '999999999 path=x\n' }, { name: 'x', body: 'x' }]), false);
  const huge = Buffer.alloc(12, 0xff);
  huge[0] = 0x80;
  add('base-256 size of 2^88', rawTar([{ name: 'x', size: huge }]), true);
  add('base-256 negative size', rawTar([{ name: 'x', size: Buffer.alloc(12, 0xff) }]), true);
  add('non-octal size', rawTar([{ name: 'x', size: Buffer.from('9999999999\0\0') }]), true);
  add('bad checksum', rawTar([{ name: 'x', body: 'x', checksum: 'bad' }]), true);
  add('garbage header', Buffer.concat([Buffer.from(Array.from({ length: 512 }, () => int(256))), Buffer.alloc(1024)]), true);
  add('header cut short', rawTar([{ name: 'x', body: 'x' }], false).subarray(0, 300), true);
  add('body cut short', rawTar([{ name: 'x', body: 'x'.repeat(2000) }], false).subarray(0, 1000), true);
  add('gzip garbage', Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.from(Array.from({ length: 600 }, () => int(256)))]), true);
  const gz = gzipSync(rawTar([{ name: 'x', body: 'x'.repeat(5000) }]));
  add('gzip cut short', gz.subarray(0, gz.length - 9), true);
  add('directory with data', rawTar([{ name: 'd', type: 'dir', size: Buffer.from('00000001000\0') }, { name: 'x', body: 'x' }]), true);
  return cases;
}

/** A layer with what layers hold: directories, files, a long pax name, links, a whiteout, an opaque directory. */
function baseLayer(): Promise<Buffer> {
  return writerTar([
    { name: 'etc', type: 'dir' },
    { name: 'etc/passwd', type: 'file', body: 'root:x:0:0::/root:/bin/sh\n' },
    { name: 'etc/link', type: 'symlink', linkname: 'passwd' },
    { name: 'etc/hard', type: 'link', linkname: 'etc/passwd' },
    { name: `${'d'.repeat(90)}/${'f'.repeat(90)}`, type: 'file', body: 'long'.repeat(300) },
    { name: 'etc/.wh.gone', type: 'file', body: '' },
    { name: 'opq', type: 'dir' },
    { name: 'opq/.wh..wh..opq', type: 'file', body: '' },
  ]);
}

async function baseArchive(): Promise<Buffer> {
  const layerFile = join(top, 'base-layer.tar.gz');
  const layer = await buildLayerBlob(layerFile, async (t) => {
    await t.add({ name: 'hello', type: 'file' }, Buffer.from('hello'));
  });
  const cfg = Buffer.from(JSON.stringify({ os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await writeOciArchive(out, { configRaw: cfg, layers: [{ ...layer, read: fileRange(layerFile, 0, layer.size) }], refName: 'v1' });
  rmSync(layerFile);
  return Buffer.concat(chunks);
}

test('hostile layers: refused with an ImageFormatError or unpacked inside the layer directory', { skip: !asRoot && 'unpacking sets owners: root', timeout: 120_000 }, async () => {
  let n = 0;
  const cases = await hostileLayers((i) => join(top, `case-${i}`, 'outside'));
  for (const c of cases) {
    try {
      const { err, dest } = await unpackCase(n, c.data, { lower: c.lower });
      if (c.refused) assert.ok(err instanceof ImageFormatError, `${c.label}: expected a refusal, got ${String(err)}`);
      else expectFormatError(err, c.label);
      if (c.label.startsWith('absolute path')) assert.equal(lstatSync(join(dest, 'abs', 'file')).size, 1);
    } finally {
      rmSync(join(top, `case-${n++}`), { recursive: true, force: true });
    }
  }
});

test('mutated layers (truncated, garbage headers, flipped bytes, gzip): an ImageFormatError or a clean unpack, nothing outside', { skip: !asRoot && 'unpacking sets owners: root', timeout: 120_000 }, async () => {
  const base = await baseLayer();
  const gz = gzipSync(base);
  const inputs = [
    ...truncations(base, 50),
    ...headerGarbage(base, headerOffsets(base), 60),
    ...flips(base, 20),
    ...truncations(gz, 10),
    ...flips(gz, 10),
  ];
  let refused = 0;
  for (const [i, data] of inputs.entries()) {
    try {
      const { err } = await unpackCase(1000 + i, data);
      expectFormatError(err, `mutation ${i}`);
      if (err) refused++;
    } finally {
      rmSync(join(top, `case-${1000 + i}`), { recursive: true, force: true });
    }
  }
  // The mutations do reach the checks (most damage is refused, not ignored).
  assert.ok(refused > inputs.length / 2, `${refused} of ${inputs.length} refused`);
});

test('the image service inspector and the agent archive index: their own error, or a result', { timeout: 120_000 }, async () => {
  const archive = await baseArchive();
  assert.equal(await inspectUpload(archive), null);
  assert.equal(await indexCase(archive), null);
  const gz = gzipSync(archive);
  assert.equal(await inspectUpload(gz), null);
  const hostile = await hostileLayers(() => '/tmp');
  const inputs: Array<[string, Buffer]> = [
    ...hostile.map((c) => [c.label, c.data] as [string, Buffer]),
    ...truncations(archive, 60).map((b, i) => [`truncated ${i}`, b] as [string, Buffer]),
    ...headerGarbage(archive, headerOffsets(archive), 80).map((b, i) => [`garbage header ${i}`, b] as [string, Buffer]),
    ...flips(archive, 30).map((b, i) => [`flipped ${i}`, b] as [string, Buffer]),
    ...truncations(gz, 10).map((b, i) => [`gzip truncated ${i}`, b] as [string, Buffer]),
    ...flips(gz, 10).map((b, i) => [`gzip flipped ${i}`, b] as [string, Buffer]),
  ];
  let refused = 0;
  for (const [label, data] of inputs) {
    const upload = await inspectUpload(data);
    if (upload !== null) {
      assert.ok(upload instanceof InvalidImageDataError, `inspector, ${label}: ${String(upload)}`);
      refused++;
    }
    const index = await indexCase(data);
    expectFormatError(index, `archive index, ${label}`);
  }
  assert.ok(refused > inputs.length / 2, `${refused} of ${inputs.length} refused`);
  // A truncated archive is refused by both (the last blocks cut off).
  const cut = archive.subarray(0, headerOffsets(archive).at(-1)! + 100);
  assert.ok((await inspectUpload(cut)) instanceof InvalidImageDataError);
  assert.ok((await indexCase(cut)) instanceof ImageFormatError);
});
