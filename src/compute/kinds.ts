// What each kind of server supports, read by the compute API instead of
// `kind === 'container'` checks spread through it. A new driver (vm,
// baremetal) adds its entry here; the API asks the descriptor.
export interface ServerKind {
  /** Image container_format values that boot this kind (lower case). */
  imageFormats: readonly string[];
  /** A root disk sized by the flavor's disk (the image's min_disk and a zero-disk flavor's policy apply). */
  rootDisk: boolean;
  /** The root device name servers show (OS-EXT-SRV-ATTR:root_device_name), or null. */
  rootDeviceName: string | null;
  /** What a snapshot of a server of this kind is stored as in the image service. */
  snapshot: { containerFormat: string; diskFormat: string };
  /** Diagnostics: the hypervisor (and pre-2.48 driver) named, and the disks counted. */
  hypervisor: string;
  disks: number;
}

export const KINDS = {
  container: {
    imageFormats: ['docker', 'oci'], rootDisk: false, rootDeviceName: null,
    snapshot: { containerFormat: 'docker', diskFormat: 'raw' }, hypervisor: 'runc', disks: 0,
  },
  // Disk images; no driver runs them yet, but images and flavors already name them.
  vm: {
    imageFormats: ['bare', 'ovf', 'ova', 'ami'], rootDisk: true, rootDeviceName: '/dev/vda',
    snapshot: { containerFormat: 'bare', diskFormat: 'qcow2' }, hypervisor: 'qemu', disks: 1,
  },
} as const satisfies Record<string, ServerKind>;

export type KindName = keyof typeof KINDS;

/** An image whose container format no kind names is a disk image (Glance's default is bare). */
const DEFAULT_KIND: KindName = 'vm';

/** The descriptor of a server's kind (a row's `kind` column). */
export const kindOf = (name: string): ServerKind => (KINDS as Record<string, ServerKind>)[name] ?? KINDS[DEFAULT_KIND];

/** The kind of host an image needs, by its container format. */
export function kindOfImageFormat(containerFormat: string | null): KindName {
  const cf = (containerFormat ?? '').toLowerCase();
  return (Object.keys(KINDS) as KindName[]).find((k) => (KINDS[k].imageFormats as readonly string[]).includes(cf)) ?? DEFAULT_KIND;
}
