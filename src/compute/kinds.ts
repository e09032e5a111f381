// What each kind of server supports, read by the compute API instead of
// `kind === 'container'` checks spread through it. A new driver (vm,
// baremetal) adds its entry here; the API asks the descriptor.

/**
 * The server actions (POST /servers/{id}/action) whose work a host's driver
 * does, so a kind may not support them: one it does not answers Nova's 409.
 * The others (lock, forceDelete, os-resetState, security groups, floating
 * IPs...) are the control plane's alone and work for every kind. Remote
 * consoles go by `consoles` (Nova's 400 "Unavailable console type"), and
 * trigger_crash_dump keeps Nova's 400 TriggerCrashDumpNotSupported.
 */
export const DRIVER_ACTIONS = [
  'os-start', 'os-stop', 'pause', 'unpause', 'suspend', 'resume', 'reboot', 'rebuild', 'createImage', 'createBackup', 'os-getConsoleOutput',
  'resize', 'confirmResize', 'revertResize', 'migrate', 'os-migrateLive', 'evacuate',
  'shelve', 'shelveOffload', 'unshelve', 'rescue', 'unrescue', 'changePassword',
  // os-volume_attachments (its POST, DELETE and PUT with another volume)
  'attach_volume', 'detach_volume', 'swap_volume',
] as const;
export type DriverAction = (typeof DRIVER_ACTIONS)[number];

/** Neutron's binding:vif_type of a kind's ports: `bridge` (a veth on the network's bridge) or `tap` (a tap the hypervisor opens). */
export type VifType = 'bridge' | 'tap';

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
  /** How its ports are plugged: the binding:vif_type they get (the network agent hands a `tap` port as a tap, a `bridge` one as a veth). */
  vifType: VifType;
  /** The driver actions the kind's driver does today; any other of DRIVER_ACTIONS answers 409. */
  actions: readonly DriverAction[];
  /** The remote consoles it offers: protocol -> console types (os-remote-consoles, os-get*Console). */
  consoles: Readonly<Record<string, readonly string[]>>;
}

export const KINDS = {
  // runc (src/agent/drivers/container): power states through the desired state (suspend is a
  // frozen cgroup, as pause), reboot, rebuild, snapshot as an OCI image, console log and serial console,
  // resize (new cgroup limits applied in place) and shelve (the snapshot, then the host left)
  container: {
    imageFormats: ['docker', 'oci'], rootDisk: false, rootDeviceName: null,
    snapshot: { containerFormat: 'docker', diskFormat: 'raw' }, hypervisor: 'runc', disks: 0, vifType: 'bridge',
    actions: ['os-start', 'os-stop', 'pause', 'unpause', 'suspend', 'resume', 'reboot', 'rebuild', 'createImage', 'createBackup', 'os-getConsoleOutput',
      'attach_volume', 'detach_volume', 'resize', 'confirmResize', 'revertResize', 'shelve', 'shelveOffload', 'unshelve'],
    consoles: { serial: ['serial'] },
  },
  // QEMU (src/agent/drivers/vm): what a ComputeDriver must do from the desired state (power
  // states, reboot, rebuild), its console log and a snapshot of its disk; its serial console
  // and its screen through noVNC (QEMU's VNC server on a unix socket); resize (cold: stopped and
  // started with the new memory and vCPUs, the disk grown) and shelve
  vm: {
    imageFormats: ['bare', 'ovf', 'ova', 'ami'], rootDisk: true, rootDeviceName: '/dev/vda',
    snapshot: { containerFormat: 'bare', diskFormat: 'qcow2' }, hypervisor: 'qemu', disks: 1, vifType: 'tap',
    actions: ['os-start', 'os-stop', 'pause', 'unpause', 'suspend', 'resume', 'reboot', 'rebuild', 'createImage', 'createBackup', 'os-getConsoleOutput',
      'attach_volume', 'detach_volume', 'resize', 'confirmResize', 'revertResize', 'shelve', 'shelveOffload', 'unshelve'],
    consoles: { serial: ['serial'], vnc: ['novnc'] },
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

/** True when `action` is one a host's driver does (DRIVER_ACTIONS). */
export const isDriverAction = (action: string): action is DriverAction => (DRIVER_ACTIONS as readonly string[]).includes(action);

/** Whether a server of kind `name` can do `action` (the control plane's own actions: always). */
export function kindSupports(name: string, action: string): boolean {
  return !isDriverAction(action) || kindOf(name).actions.includes(action);
}
