// The default volume backend: each volume a file under DIR on the volume
// host. Two formats, chosen once per pool by what its file system can do:
//
//   reflink  (btrfs, XFS) raw sparse files; a snapshot or a clone is a reflink
//            copy (FICLONE, `cp --reflink=always`): constant time, no blocks
//            used until either side writes. When DIR's file system cannot
//            reflink, the agent loop-mounts a btrfs image (DIR.img, made like
//            the container disks' pool: container/quota.ts openLoopBtrfs).
//   qcow2    elsewhere (tmpfs, ext4): qcow2 files with backing chains. A
//            snapshot freezes the volume's current file as a layer
//            (layers/L.qcow2, never written again) and puts a new empty
//            overlay on it; the snapshot is a link to the layer; a clone is
//            an overlay on the snapshot's layer (of a volume: a new frozen
//            layer first). A layer is removed once no volume, snapshot or
//            other layer refers to it.
//
// Layout: volumes/<id>.<raw|qcow2>, snapshots/<volume>/<snapshot>.<raw|qcow2>
// (qcow2: a symlink to its layer), layers/ (qcow2 only). Every write goes to a
// `.tmp` name first and is renamed into place, so a crash leaves either the
// old state or the new one plus a temporary that start() and the next call
// remove; a present volume is never re-made from its source. Sparse: a 50 GiB
// volume costs nothing until written.
//
// The volume and volume_snapshot reconcilers run side by side, so every call
// that touches a volume's files (create, and a clone's or a snapshot's source;
// extend, delete, snapshot, observe) holds that volume's lock, and the layer
// collection and the stray scan hold every lock: a qcow2 freeze renames the
// volume's file away for a moment, which no other call may see. The lock is
// the agent's one per volume (host.ts `volumeLocks`), which an attachment's
// device also holds while it is made or released (../volume-attach.ts): a
// snapshot's check that no storage daemon holds the file open, and its
// freeze, never race an attach starting one.
// A freeze's overlay has a name of its own (`<vol>.<uuid>.next`).
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { VolumeExport, VolumeExportObserved, VolumePoolStats, VolumeSource } from '../../../volume/protocol.ts';
import { VolumeErrorCode } from '../../../volume/protocol.ts';
import { openLoopBtrfs } from '../container/quota.ts';
import { isMountPoint } from '../container/host.ts';
import { ALL_KEYS } from '../../../common/keyed-lock.ts';
import { volumeLocks } from './host.ts';
import { userError } from '../../errors.ts';
import { run, runOk } from '../../exec.ts';
import { HttpError } from '../../client.ts';
import { ImageFormatError, inspectDiskImage } from '../vm/images.ts';
import type { VolumeBackend, VolumeData } from './backend.ts';

const GIB = 2 ** 30;
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** A freeze's overlay: `<volume file>.<uuid>.next` (`<volume file>.next` before unique names). */
const NEXT = /(\.[0-9a-f-]{36})?\.next$/;

export type FileFormat = 'raw' | 'qcow2';

export interface FileBackendOptions {
  /** The pool's directory (the agent's STATE_DIR/volumes). */
  dir: string;
  name?: string;
  pool?: string;
  /**
   * auto (default): reflink raw files when `dir` can reflink, else a loop-mounted
   * btrfs image (`dir`.img) mounted on `dir`; `raw`: reflink raw files, `dir` must
   * reflink; `qcow2`: qcow2 chains in `dir` as it is (no loop mount).
   */
  format?: 'auto' | FileFormat;
  /** Thin provisioning's overcommit (Cinder's max_over_subscription_ratio). */
  overSubscription?: number;
  /** Downloads a Glance image's bytes to a file (the agent client's image download); absent: volumes from images are refused. */
  fetchImage?: (imageId: string, dest: string) => Promise<void>;
}

const exists = (p: string) => fsp.lstat(p).then(() => true, () => false);

/** Whether a process of this host has `file` open (a qemu-storage-daemon serving an attachment of it). */
async function openByAProcess(file: string): Promise<boolean> {
  for (const pid of await fsp.readdir('/proc').catch(() => [] as string[])) {
    if (!/^[0-9]+$/.test(pid)) continue;
    for (const fd of await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      if ((await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === file) return true;
    }
  }
  return false;
}

/** Whether `dir`'s file system takes a reflink copy (FICLONE). */
export async function canReflink(dir: string): Promise<boolean> {
  const a = join(dir, `.reflink-probe-${process.pid}`);
  await fsp.writeFile(a, 'x');
  try {
    return (await run('cp', ['--reflink=always', a, `${a}.2`])).code === 0;
  } finally {
    await fsp.rm(a, { force: true });
    await fsp.rm(`${a}.2`, { force: true });
  }
}

function check(id: string): string {
  if (!ID.test(id)) throw new Error(`not a volume or snapshot id: ${id}`);
  return id;
}

export class FileBackend implements VolumeBackend {
  readonly name: string;
  readonly driver = 'file';
  readonly dir: string;
  private readonly pool: string;
  private readonly want: 'auto' | FileFormat;
  private readonly ratio: number;
  private readonly fetchImage: FileBackendOptions['fetchImage'];
  private fmt: FileFormat | null = null;
  /** The loop image this backend mounted on `dir` (auto on a file system without reflink). */
  private loopImage: string | null = null;
  /** One lock per volume id, shared with the attachments' devices (host.ts); ALL_KEYS for the pool-wide scans. */
  private readonly locks = volumeLocks;

  constructor(o: FileBackendOptions) {
    this.dir = o.dir;
    this.name = o.name ?? 'file';
    this.pool = o.pool ?? 'default';
    this.want = o.format ?? 'auto';
    this.ratio = o.overSubscription ?? 20;
    this.fetchImage = o.fetchImage;
  }

  get format(): FileFormat {
    if (!this.fmt) throw new Error('the file volume backend is not started');
    return this.fmt;
  }

  private get ext(): string { return this.format; }
  private vol(id: string) { return join(this.dir, 'volumes', `${check(id)}.${this.ext}`); }
  private snapDir(volumeId: string) { return join(this.dir, 'snapshots', check(volumeId)); }
  private snap(volumeId: string, id: string) { return join(this.snapDir(volumeId), `${check(id)}.${this.ext}`); }
  private layers() { return join(this.dir, 'layers'); }

  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (this.want === 'qcow2') this.fmt = 'qcow2';
    else if (await canReflink(this.dir)) this.fmt = 'raw';
    else if (this.want === 'raw') throw new Error(`${this.dir} cannot make reflink copies (btrfs or XFS needed)`);
    else {
      // a btrfs image beside the directory, mounted on it, as the container disks' pool is made
      const image = `${this.dir}.img`;
      const mounted = await isMountPoint(this.dir);
      await openLoopBtrfs({ runOk: (c, a) => runOk(c, a, { timeoutMs: 120_000 }) }, image, this.dir, 'stratus-volumes');
      if (!mounted) this.loopImage = image;
      this.fmt = 'raw';
    }
    for (const d of ['volumes', 'snapshots', ...(this.fmt === 'qcow2' ? ['layers'] : [])]) await fsp.mkdir(join(this.dir, d), { recursive: true, mode: 0o700 });
    // temporaries of work a crash interrupted: a finished qcow2 snapshot overlay is put in place, the rest removed
    for (const t of await this.temporaries()) {
      if (t.endsWith('.next')) await this.finishOverlay(t);
      else await fsp.rm(t, { force: true });
    }
    if (this.fmt === 'qcow2') await this.collectLayers();
  }

  /**
   * Opens an existing pool read-only for an audit beside a running agent:
   * no mount, no clean-up of temporaries (they may be the agent's work in
   * flight). False when there is no pool (or it is not mounted).
   */
  async inspect(): Promise<boolean> {
    if (!(await exists(join(this.dir, 'volumes')))) return false;
    this.fmt = this.want === 'qcow2' || (await exists(this.layers())) ? 'qcow2' : 'raw';
    return true;
  }

  async stop(): Promise<void> {
    if (!this.loopImage) return;
    const r = await run('umount', [this.dir]);
    if (r.code !== 0) throw new Error(`umount ${this.dir}: ${r.stderr.trim()}`);
    this.loopImage = null;
  }

  private async temporaries(): Promise<string[]> {
    const out: string[] = [];
    const scan = async (d: string) => {
      for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
        const p = join(d, e.name);
        if (e.isDirectory()) await scan(p);
        else if (/\.(tmp|next)$/.test(e.name)) out.push(p);
      }
    };
    for (const d of ['volumes', 'snapshots', 'layers']) await scan(join(this.dir, d));
    return out;
  }

  private async sizeOf(path: string): Promise<number> {
    if (this.format === 'raw') return (await fsp.stat(path)).size;
    const r = await runOk('qemu-img', ['info', '--output=json', '-U', path], { timeoutMs: 60_000 });
    return (JSON.parse(r.stdout) as { 'virtual-size': number })['virtual-size'];
  }

  private async data(id: string): Promise<VolumeData> {
    const p = this.vol(id);
    return { size_gib: Math.floor((await this.sizeOf(p)) / GIB), location: p };
  }

  async observe(id: string): Promise<VolumeData | null> {
    return this.locks.run([id], async () => ((await exists(this.vol(id))) ? this.data(id) : null));
  }

  /** The file of a snapshot (by its id alone, as a clone's source names it). */
  private async findSnapshot(snapshotId: string): Promise<string | null> {
    for (const v of await fsp.readdir(join(this.dir, 'snapshots')).catch(() => [])) {
      const p = join(this.dir, 'snapshots', v, `${check(snapshotId)}.${this.ext}`);
      if (await exists(p)) return p;
    }
    return null;
  }

  /** qcow2: the frozen layer file behind a snapshot link. */
  private async layerOf(link: string): Promise<string> {
    return join(dirname(link), await fsp.readlink(link));
  }

  /** qcow2: freezes volume `id`'s current file as a new layer under an empty overlay; returns the layer. */
  private async freeze(id: string): Promise<string> {
    const v = this.vol(id);
    const layer = join(this.layers(), `${crypto.randomUUID()}.qcow2`);
    const next = `${v}.${crypto.randomUUID()}.next`;
    const size = await this.sizeOf(v);
    // -u: the backing file is named before it exists (the rename below makes it)
    await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', `../layers/${basename(layer)}`, '-F', 'qcow2', next, String(size)], { timeoutMs: 60_000 });
    await fsp.rename(v, layer);
    await fsp.chmod(layer, 0o400);
    await this.finishOverlay(next);
    return layer;
  }

  /** Puts a snapshot's new overlay (`<volume>.<uuid>.next`) in place once its layer exists; removes it when the freeze never happened. */
  private async finishOverlay(next: string): Promise<void> {
    const v = next.replace(NEXT, '');
    const r = await run('qemu-img', ['info', '--output=json', '-U', next]);
    const backing = r.code === 0 ? (JSON.parse(r.stdout) as { 'backing-filename'?: string })['backing-filename'] : undefined;
    if (!(await exists(v)) && backing && (await exists(join(dirname(next), backing)))) await fsp.rename(next, v);
    else await fsp.rm(next, { force: true });
  }

  async create(id: string, sizeGib: number, source: VolumeSource): Promise<VolumeData> {
    // the source's volume is locked too: a clone of a volume freezes it; a snapshot's layer must not go meanwhile
    const keys = [id];
    if (source.type === 'volume') keys.push(source.volume_id);
    if (source.type === 'snapshot') {
      const s = await this.findSnapshot(source.snapshot_id);
      if (s) keys.push(basename(dirname(s)));
    }
    return this.locks.run(keys, () => this.createLocked(id, sizeGib, source));
  }

  private async createLocked(id: string, sizeGib: number, source: VolumeSource): Promise<VolumeData> {
    const v = this.vol(id);
    if (await exists(v)) return this.extendLocked(id, sizeGib);
    const bytes = sizeGib * GIB;
    await this.checkRoom(sizeGib);
    const tmp = `${v}.tmp`;
    await fsp.rm(tmp, { force: true });
    let from: string | null = null;
    if (source.type === 'snapshot') {
      from = await this.findSnapshot(source.snapshot_id);
      if (!from) throw userError(VolumeErrorCode.sourceUnavailable, `Snapshot ${source.snapshot_id} is not on this backend.`);
    } else if (source.type === 'volume') {
      if (!(await exists(this.vol(source.volume_id)))) throw userError(VolumeErrorCode.sourceUnavailable, `Volume ${source.volume_id} is not on this backend.`);
      from = this.format === 'raw' ? this.vol(source.volume_id) : await this.freeze(source.volume_id);
    } else if (source.type === 'image') {
      await this.fromImage(v, source, tmp, bytes);
      await fsp.rename(tmp, v);
      return this.data(id);
    }
    if (this.format === 'raw') {
      if (from) await runOk('cp', ['--reflink=always', from, tmp], { timeoutMs: 120_000 });
      else await fsp.writeFile(tmp, '');
      const have = (await fsp.stat(tmp)).size;
      if (have < bytes) await fsp.truncate(tmp, bytes);
    } else {
      const layer = from ? (source.type === 'snapshot' ? await this.layerOf(from) : from) : null;
      const size = Math.max(bytes, layer ? await this.sizeOf(layer) : 0);
      await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...(layer ? ['-b', `../layers/${basename(layer)}`, '-F', 'qcow2'] : []), tmp, String(size)], { timeoutMs: 60_000 });
    }
    await fsp.rename(tmp, v);
    return this.data(id);
  }

  /**
   * Writes an image's data into `tmp` in the pool's format, grown to `bytes`:
   * the bytes fetched through the agent's image download (beside the volume,
   * a `.tmp` name), checked as Glance's disk_format with the VM image cache's
   * checks (never qemu's guess; a qcow2 naming a backing or data file of its
   * own is refused), converted with `qemu-img convert`.
   */
  private async fromImage(v: string, source: Extract<VolumeSource, { type: 'image' }>, tmp: string, bytes: number): Promise<void> {
    if (!this.fetchImage) throw userError(VolumeErrorCode.sourceUnavailable, 'This volume host does not fetch images.');
    const format = source.disk_format;
    if (format !== 'raw' && format !== 'qcow2') throw userError(VolumeErrorCode.sourceUnavailable, `Image ${source.image_id} has disk_format ${format}: volumes are made from raw or qcow2 images.`);
    const dl = `${v}.image.tmp`;
    try {
      await this.fetchImage(source.image_id, dl).catch((err: unknown) => {
        // the image gone, not active or not readable by this host: no retry helps
        if (err instanceof HttpError && err.status >= 400 && err.status < 500) throw userError(VolumeErrorCode.sourceUnavailable, `Image ${source.image_id}: ${err.message}`);
        throw err;
      });
      const virtual = await inspectDiskImage(dl, format).catch((err: unknown) => {
        if (err instanceof ImageFormatError) throw userError(VolumeErrorCode.sourceUnavailable, `Image ${source.image_id}: ${err.message}`);
        throw err;
      });
      if (virtual > bytes) throw userError(VolumeErrorCode.refused, `Image ${source.image_id} has a virtual size of ${virtual} bytes, more than the volume's ${bytes}.`);
      await runOk('qemu-img', ['convert', '-q', '-f', format, '-O', this.format, dl, tmp], { timeoutMs: 3_600_000 });
      if (this.format === 'raw') await fsp.truncate(tmp, bytes);
      else await runOk('qemu-img', ['resize', '-q', '-f', 'qcow2', tmp, String(bytes)], { timeoutMs: 60_000 });
    } finally {
      await fsp.rm(dl, { force: true });
    }
  }

  async copyTo<T>(id: string, format: 'raw' | 'qcow2', use: (path: string) => Promise<T>, o: { snapshotId?: string } = {}): Promise<T> {
    const v = this.vol(id);
    const tmp = `${v}.${crypto.randomUUID()}.copy.tmp`;
    try {
      // under the volume's lock only while converting (a freeze must not move the file meanwhile); -U: an attached volume's file is open
      await this.locks.run([id], async () => {
        let from = v;
        if (o.snapshotId) {
          from = this.snap(id, o.snapshotId);
          if (!(await exists(from))) throw userError(VolumeErrorCode.sourceUnavailable, `Snapshot ${o.snapshotId} of volume ${id} is not on this backend.`);
          // qcow2: the layer itself (its backing file is named relative to the layers' directory)
          if (this.format === 'qcow2') from = await this.layerOf(from);
        } else if (!(await exists(v))) throw userError(VolumeErrorCode.sourceUnavailable, `Volume ${id} is not on this backend.`);
        await runOk('qemu-img', ['convert', '-q', '-U', '-f', this.format, '-O', format, from, tmp], { timeoutMs: 3_600_000 });
      });
      return await use(tmp);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async restoreInto(id: string, fill: (path: string) => Promise<void>): Promise<VolumeData> {
    const v = this.vol(id);
    const tmp = `${v}.${crypto.randomUUID()}.restore.tmp`;
    try {
      await fill(tmp);
      return await this.locks.run([id], async () => {
        if (!(await exists(v))) throw userError(VolumeErrorCode.sourceUnavailable, `Volume ${id} is not on this backend.`);
        if (this.format === 'raw') {
          // the restored file replaces the volume's (its snapshots are files of their own), sparse, grown to the volume's size
          const have = (await fsp.stat(v)).size;
          if ((await fsp.stat(tmp)).size < have) await fsp.truncate(tmp, have);
          await fsp.rename(tmp, v);
        } else {
          // -n: into the volume's own file (it keeps its backing chain; every byte of the raw data is written, zeros too)
          await runOk('qemu-img', ['convert', '-q', '-n', '-f', 'raw', '-O', this.format, tmp, v], { timeoutMs: 3_600_000 });
        }
        return this.data(id);
      });
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async extend(id: string, sizeGib: number): Promise<VolumeData> {
    return this.locks.run([id], () => this.extendLocked(id, sizeGib));
  }

  private async extendLocked(id: string, sizeGib: number): Promise<VolumeData> {
    const v = this.vol(id);
    const have = await this.sizeOf(v);
    const bytes = sizeGib * GIB;
    if (have < bytes) {
      await this.checkRoom((bytes - have) / GIB);
      if (this.format === 'raw') await fsp.truncate(v, bytes);
      else await runOk('qemu-img', ['resize', '-q', v, String(bytes)], { timeoutMs: 60_000 });
    }
    return this.data(id);
  }

  /** Thin provisioning's bound: what the volumes promise, plus `moreGib`, within the pool's size times the over-subscription ratio (`no_space`). */
  private async checkRoom(moreGib: number): Promise<void> {
    const [p] = await this.pools('-');
    const limit = p!.total_capacity_gb * p!.max_over_subscription_ratio;
    if (p!.provisioned_capacity_gb + moreGib > limit) {
      throw userError(VolumeErrorCode.noSpace, `The pool has room for ${Math.floor(limit - p!.provisioned_capacity_gb)} GiB more (${p!.total_capacity_gb} GiB, over-subscribed ${p!.max_over_subscription_ratio} times); ${Math.ceil(moreGib)} GiB were asked.`);
    }
  }

  async delete(id: string): Promise<void> {
    await this.locks.run([id], async () => {
      await fsp.rm(this.snapDir(id), { recursive: true, force: true });
      const v = this.vol(id);
      for (const n of await fsp.readdir(dirname(v))) {
        if (n.startsWith(`${basename(v)}.`) && /\.(tmp|next)$/.test(n)) await fsp.rm(join(dirname(v), n), { force: true });
      }
      await fsp.rm(v, { force: true });
    });
    if (this.format === 'qcow2') await this.locks.run(ALL_KEYS, () => this.collectLayers());
  }

  async snapshot(volumeId: string, snapshotId: string): Promise<{ location: string }> {
    return this.locks.run([volumeId], () => this.snapshotLocked(volumeId, snapshotId));
  }

  private async snapshotLocked(volumeId: string, snapshotId: string): Promise<{ location: string }> {
    const s = this.snap(volumeId, snapshotId);
    if (await exists(s)) return { location: s };
    if (!(await exists(this.vol(volumeId)))) throw userError(VolumeErrorCode.sourceUnavailable, `Volume ${volumeId} is not on this backend.`);
    // a qcow2 snapshot freezes the volume's file as a layer by renaming it: a process writing through it (an
    // attachment's storage daemon) would go on writing into the frozen layer. Refused until a freeze goes through it.
    if (this.format === 'qcow2' && (await openByAProcess(this.vol(volumeId)))) {
      throw userError(VolumeErrorCode.refused, `Volume ${volumeId} is attached: this backend (qcow2 chains) snapshots a volume only while it is detached.`);
    }
    await fsp.mkdir(this.snapDir(volumeId), { recursive: true, mode: 0o700 });
    const tmp = `${s}.tmp`;
    await fsp.rm(tmp, { force: true });
    if (this.format === 'raw') await runOk('cp', ['--reflink=always', this.vol(volumeId), tmp], { timeoutMs: 120_000 });
    else await fsp.symlink(`../../layers/${basename(await this.freeze(volumeId))}`, tmp);
    await fsp.rename(tmp, s);
    return { location: s };
  }

  async deleteSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    await this.locks.run([volumeId], async () => {
      await fsp.rm(`${this.snap(volumeId, snapshotId)}.tmp`, { force: true });
      await fsp.rm(this.snap(volumeId, snapshotId), { force: true });
      await fsp.rmdir(this.snapDir(volumeId)).catch(() => undefined);
    });
    if (this.format === 'qcow2') await this.locks.run(ALL_KEYS, () => this.collectLayers());
  }

  async observeSnapshot(volumeId: string, snapshotId: string): Promise<{ location: string } | null> {
    const s = this.snap(volumeId, snapshotId);
    return this.locks.run([volumeId], async () => ((await exists(s)) ? { location: s } : null));
  }

  async export(id: string, exp: VolumeExport): Promise<VolumeExportObserved> {
    if (exp.protocol !== 'local') throw userError(VolumeErrorCode.refused, `The ${exp.protocol} export is not served yet.`);
    return { attachment_id: exp.attachment_id, location: this.vol(id), format: this.format };
  }

  async list(): Promise<{ volumes: string[]; snapshots: Array<{ volume_id: string; id: string }> }> {
    const suffix = `.${this.ext}`;
    const volumes = (await fsp.readdir(join(this.dir, 'volumes'))).filter((n) => n.endsWith(suffix)).map((n) => n.slice(0, -suffix.length));
    const snapshots: Array<{ volume_id: string; id: string }> = [];
    for (const v of await fsp.readdir(join(this.dir, 'snapshots'))) {
      for (const n of await fsp.readdir(join(this.dir, 'snapshots', v)).catch(() => [])) if (n.endsWith(suffix)) snapshots.push({ volume_id: v, id: n.slice(0, -suffix.length) });
    }
    return { volumes, snapshots };
  }

  async strays(): Promise<string[]> {
    return this.locks.run(ALL_KEYS, async () => {
      const out = await this.temporaries();
      if (this.format === 'qcow2') out.push(...await this.unreferencedLayers());
      return out.sort();
    });
  }

  /** qcow2: layers no volume, snapshot link or other layer refers to. */
  private async unreferencedLayers(): Promise<string[]> {
    const layers = await fsp.readdir(this.layers()).catch(() => [] as string[]);
    if (!layers.length) return [];
    const used = new Set<string>();
    const { volumes, snapshots } = await this.list();
    for (const s of snapshots) used.add(basename(await fsp.readlink(this.snap(s.volume_id, s.id))));
    const files = [...volumes.map((v) => this.vol(v)), ...layers.map((l) => join(this.layers(), l))];
    for (const f of files) {
      const r = await run('qemu-img', ['info', '--output=json', '-U', f]);
      const b = r.code === 0 ? (JSON.parse(r.stdout) as { 'backing-filename'?: string })['backing-filename'] : undefined;
      if (b) used.add(basename(b));
    }
    return layers.filter((l) => !used.has(l)).map((l) => join(this.layers(), l));
  }

  /** qcow2: removes unreferenced layers until none is left (removing one may free its own backing layer). */
  private async collectLayers(): Promise<void> {
    for (;;) {
      const gone = await this.unreferencedLayers();
      if (!gone.length) return;
      for (const g of gone) await fsp.rm(g, { force: true });
    }
  }

  async pools(host: string): Promise<VolumePoolStats[]> {
    const fs = await fsp.statfs(this.dir);
    const total = (fs.blocks * fs.bsize) / GIB;
    const free = (fs.bavail * fs.bsize) / GIB;
    let provisioned = 0;
    // unlocked (create's room check asks it under a volume's lock): a file a freeze or a delete moves meanwhile counts nothing
    for (const v of (await this.list()).volumes) {
      const p = this.vol(v);
      provisioned += (await this.sizeOf(p).catch(async (err: unknown) => { if (await exists(p)) throw err; return 0; })) / GIB;
    }
    const round = (x: number) => Math.round(x * 100) / 100;
    return [{
      name: `${host}@${this.name}#${this.pool}`, total_capacity_gb: round(total), free_capacity_gb: round(free),
      provisioned_capacity_gb: round(provisioned), max_over_subscription_ratio: this.ratio, thin_provisioning_support: true,
      reflink: this.format === 'raw', multiattach: true, driver: this.driver,
    }];
  }
}
