// The VM-isolated container driver (server kind `vm-container`, what Kata
// Containers does): an OCI image (container_format docker/oci) run in a small
// QEMU VM of its own instead of runc. It is the VM driver (../vm/driver.ts)
// with another boot: its process, cgroup, taps, NICs, QMP, power states,
// reboots, serial console and console log are the VM driver's; what differs
// is the root disk and the boot (prepareImage, ensureDisks, bootArgs).
//
// Per server, under STATE_DIR/vm-container/servers/<id>/ (the VM driver's
// layout, its own directory and cgroup parent `stratus-vmc`):
//   root.qcow2   an ext4 file system (label ROOT_LABEL) made with `mkfs.ext4 -d`
//                from the image's layers (merged by a read-only overlay mount
//                in a mount namespace of its own: nothing stays mounted),
//                the flavor's disk in size (or the image's content plus room
//                when the flavor has no disk); the server's disk, kept across
//                stops and reboots, remade by a rebuild
//   config-2.iso the config drive, always (as a runc container's /mnt/config)
//   initrd.img   the guest's initramfs (guest.ts, cached per host) with the
//                server's container.sh appended: the image's command, env,
//                working directory and stop signal, the server's host name
// qemu boots the guest's kernel directly (-kernel/-initrd/-append); the guest
// mounts the disk, leases the port's address by DHCP, chroots into the disk
// and runs the command; it powers off when the command ends (SHUTOFF). Images
// are fetched and unpacked by the container driver's image store (its own
// directory: STATE_DIR/vm-container/oci).
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { SERVER_KIND, ServerErrorCode, type DesiredServer } from '../../../compute/engine/protocol.ts';
import { permanent } from '../../errors.ts';
import { run, runOk } from '../../exec.ts';
import { ImageFormatError } from '../container/oci.ts';
import { ImageStore, type StoredImage } from '../container/store.ts';
import type { CachedImage } from '../vm/images.ts';
import { VmDriver, type VmDriverOptions } from '../vm/driver.ts';
import type { Observed } from '../driver.ts';
import { buildVmContainerGuest, containerConfig, ROOT_LABEL, serverCpio, UnsupportedImageError, type VmContainerGuest } from './guest.ts';

export const VM_CONTAINER_KIND = 'vm-container';

export interface VmContainerDriverOptions extends VmDriverOptions {
  /** Where the guest's kernel and initramfs are built and cached (default the small guest's cache). */
  guestCacheDir?: string;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(() => true, () => false);
}

export class VmContainerDriver extends VmDriver {
  override readonly name: string = VM_CONTAINER_KIND;
  override readonly serves: Readonly<Record<string, readonly string[]>> = { [SERVER_KIND]: [VM_CONTAINER_KIND] };
  private readonly store: ImageStore;
  private guest: VmContainerGuest | null = null;
  private readonly guestCacheDir: string | undefined;

  constructor(o: VmContainerDriverOptions) {
    super(o, { dir: VM_CONTAINER_KIND, cgroupParent: 'stratus-vmc' });
    this.store = new ImageStore(join(this.root, 'oci'), o.keepUnusedImagesMs ?? 3600_000);
    this.guestCacheDir = o.guestCacheDir;
  }

  override async start(): Promise<void> {
    const r = await run('sh', ['-c', 'command -v mkfs.ext4 && command -v unshare']);
    if (r.code !== 0) throw new Error('the VM-isolated container driver needs mkfs.ext4 and unshare (Debian packages: e2fsprogs util-linux)');
    await super.start();
    await this.store.init();
    // the guest's kernel may have to be downloaded: a failure here is retried by the first server's converge
    this.guest = await buildVmContainerGuest({ cacheDir: this.guestCacheDir, log: (m) => this.o.log.info(m) }).catch((err: Error) => {
      this.o.log.warn({ err: err.message }, 'the VM-isolated container guest could not be built yet');
      return null;
    });
  }

  /**
   * The config drive is always there, as in a runc container (its
   * /mnt/config): the image's init reads the metadata and user data from it
   * (a VM-isolated container has no route to the metadata service of its own).
   */
  override converge(d: DesiredServer): Promise<Observed> {
    return super.converge({ ...d, config_drive: { ...d.config_drive, requested: true } });
  }

  /** No disk image of the VM driver's: the root disk comes from the OCI image (ensureDisks). */
  protected override async prepareImage(): Promise<CachedImage | null> {
    return null;
  }

  private async image(d: DesiredServer): Promise<StoredImage> {
    const img = d.image;
    if (!img) throw permanent(ServerErrorCode.imageMissing, 'a VM-isolated container needs an image');
    return this.store.ensure(img.id, (dest) => this.o.fetchImage(img.id, dest)).catch((err: Error) => {
      throw err instanceof ImageFormatError ? permanent(ServerErrorCode.imageInvalid, `image ${img.id}: ${err.message}`, err) : err;
    });
  }

  /**
   * The root disk from the image's layers (once; a rebuild removes it first), the server's initramfs (each
   * converge: the host name may change), and the flavor's ephemeral and swap disks as a VM's (the base's,
   * with no image: it makes no root disk).
   */
  protected override async ensureDisks(d: DesiredServer): Promise<void> {
    const image = await this.image(d);
    let config: string;
    try {
      config = containerConfig(image.config, d.hostname || d.name);
    } catch (err) {
      if (err instanceof UnsupportedImageError) throw permanent(ServerErrorCode.imageInvalid, `image ${d.image!.id}: ${err.message}`, err);
      throw err;
    }
    const root = this.file(d.id, 'root.qcow2');
    if (!(await exists(root))) await this.makeRootDisk(d, image, root);
    this.guest ??= await buildVmContainerGuest({ cacheDir: this.guestCacheDir, log: (m) => this.o.log.info(m) });
    const initrd = Buffer.concat([await fsp.readFile(this.guest.initrd), serverCpio(config)]);
    const file = this.file(d.id, 'initrd.img');
    const old = await fsp.readFile(file).catch(() => null);
    if (!old?.equals(initrd)) {
      await fsp.writeFile(`${file}.tmp`, initrd, { mode: 0o600 });
      await fsp.rename(`${file}.tmp`, file);
    }
    await super.ensureDisks(d, null);
  }

  private async makeRootDisk(d: DesiredServer, image: StoredImage, root: string): Promise<void> {
    const lowers = [...image.layerDirs].reverse();
    const content = Number((await runOk('du', ['-sbc', ...image.layerDirs], { timeoutMs: 600_000 })).stdout.trim().split('\n').pop()!.split(/\s+/)[0]);
    // the flavor's disk; a flavor without one: the image's content and as much again, at least 64 MiB
    const size = d.flavor.disk > 0 ? d.flavor.disk * GiB : Math.max(64 * MiB, Math.ceil((content * 2 + 32 * MiB) / MiB) * MiB);
    if (content + 16 * MiB > size) throw permanent(ServerErrorCode.specInvalid, `Flavor's disk is too small for requested image. Flavor disk is ${size} bytes, image is ${content} bytes.`);
    const raw = `${root}.raw.tmp`;
    const merged = this.file(d.id, 'merged');
    try {
      await fsp.rm(raw, { force: true });
      await runOk('truncate', ['-s', String(size), raw]);
      await fsp.mkdir(merged, { recursive: true });
      // one layer is the tree itself; several are merged by a read-only overlay in a mount namespace of its own (gone with it)
      const script = lowers.length > 1
        ? 'mount -t overlay overlay -o "lowerdir=$1" "$2" && exec mkfs.ext4 -q -F -L "$3" -E root_owner=0:0 -d "$2" "$4"'
        : 'exec mkfs.ext4 -q -F -L "$3" -E root_owner=0:0 -d "$1" "$4"';
      await runOk('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', lowers.join(':'), merged, ROOT_LABEL, raw], { timeoutMs: 600_000 });
      await runOk('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, `${root}.tmp`], { timeoutMs: 600_000 });
      await this.qemuFile(`${root}.tmp`);
      await fsp.rename(`${root}.tmp`, root);
    } finally {
      await fsp.rm(raw, { force: true });
      await fsp.rm(`${root}.tmp`, { force: true });
      await fsp.rmdir(merged).catch(() => undefined);
    }
  }

  /** The guest's kernel booted directly, with the server's initramfs; the root disk the first virtio disk. */
  protected override bootArgs(d: DesiredServer): string[] {
    const f = (n: string) => this.file(d.id, n);
    const guest = this.guest;
    if (!guest) throw new Error('the VM-isolated container guest is not built (start() first)');
    return [
      '-kernel', guest.vmlinuz, '-initrd', f('initrd.img'), '-append', guest.cmdline,
      '-drive', `file=${f('root.qcow2')},format=qcow2,if=none,id=drive-root,discard=unmap`, '-device', 'virtio-blk-pci,drive=drive-root,id=root',
    ];
  }

  override async sweep(inUse: Set<string>): Promise<void> {
    await super.sweep(inUse);
    const images = new Set<string>();
    for (const id of await this.localServers()) {
      const text = await fsp.readFile(this.file(id, 'state.json'), 'utf8').catch(() => null);
      const imageId = text ? (JSON.parse(text) as { image_id?: string | null }).image_id : null;
      if (imageId) images.add(imageId);
    }
    await this.store.prune(images);
  }
}
