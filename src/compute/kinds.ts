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

/**
 * Neutron's binding:vif_type of a kind's ports: `bridge` (a veth on the
 * network's bridge), `tap` (a tap the hypervisor opens) or `other` (a bare-metal
 * node's NIC: the port is bound to the node, binding:vnic_type baremetal, with
 * the node port's MAC and local_link_information, as Ironic binds it; no agent plugs it).
 */
export type VifType = 'bridge' | 'tap' | 'other';

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
  /**
   * Whether a host agent converges servers of this kind (the fleet's `server`
   * kind hands them out). False: an engine controller drives them in-process
   * (bare metal: engine/baremetal.ts through the bare-metal service).
   */
  agent: boolean;
  /** Glance disk_format values it boots (null: any). */
  diskFormats: readonly string[] | null;
  /** Chosen by the flavor (kindOfFlavor), never by an image's container format. */
  byFlavor: boolean;
}

export const KINDS = {
  // runc (src/agent/drivers/container): power states through the desired state (suspend is a
  // frozen cgroup, as pause), reboot, rebuild, snapshot as an OCI image, console log and serial console,
  // resize (new cgroup limits applied in place), cold migration (its writable layer copied as one
  // more image layer, rebuilt on the other host), evacuate (rebuilt on another host from its image), shelve (the snapshot, then the host left) and
// rescue (restarted from the rescue image, a throwaway root, its own root filesystem at /mnt)
  container: {
    imageFormats: ['docker', 'oci'], rootDisk: false, rootDeviceName: null,
    snapshot: { containerFormat: 'docker', diskFormat: 'raw' }, hypervisor: 'runc', disks: 0, vifType: 'bridge',
    actions: ['os-start', 'os-stop', 'pause', 'unpause', 'suspend', 'resume', 'reboot', 'rebuild', 'createImage', 'createBackup', 'os-getConsoleOutput',
      'attach_volume', 'detach_volume', 'resize', 'confirmResize', 'revertResize', 'migrate', 'evacuate', 'shelve', 'shelveOffload', 'unshelve', 'rescue', 'unrescue'],
    consoles: { serial: ['serial'] }, agent: true, diskFormats: null, byFlavor: false,
  },
  // QEMU (src/agent/drivers/vm): what a ComputeDriver must do from the desired state (power
  // states, reboot, rebuild), its console log and a snapshot of its disk; its serial console
  // and its screen through noVNC (QEMU's VNC server on a unix socket); resize (cold: stopped and
  // started with the new memory and vCPUs, the disk grown), cold migration (its disk copied as
  // one qcow2, the backing image folded in), live migration (QEMU's, its disks over NBD: agent drivers/vm/live-migration.ts),
  // evacuate (rebuilt from its image elsewhere), shelve and rescue (booted from a
  // throwaway overlay on the rescue image, its root disk second, as Nova's libvirt driver)
  vm: {
    imageFormats: ['bare', 'ovf', 'ova', 'ami'], rootDisk: true, rootDeviceName: '/dev/vda',
    snapshot: { containerFormat: 'bare', diskFormat: 'qcow2' }, hypervisor: 'qemu', disks: 1, vifType: 'tap',
    actions: ['os-start', 'os-stop', 'pause', 'unpause', 'suspend', 'resume', 'reboot', 'rebuild', 'createImage', 'createBackup', 'os-getConsoleOutput',
      'attach_volume', 'detach_volume', 'resize', 'confirmResize', 'revertResize', 'migrate', 'os-migrateLive', 'evacuate', 'shelve', 'shelveOffload', 'unshelve', 'rescue', 'unrescue'],
    consoles: { serial: ['serial'], vnc: ['novnc'] }, agent: true, diskFormats: null, byFlavor: false,
  },
  // a VM-isolated container (src/agent/drivers/vm-container, as Kata Containers runs one): an OCI
  // image (docker/oci) run in a small QEMU VM of its own instead of runc, on the same tenant networks
  // through a tap; chosen by `hw:isolation=vm` on the flavor (extra spec) or the image (property) of a
  // container image (isolatedKind), or by the flavor's older stratus:kind=vm-container. The VM driver's power
  // states (pause is QMP's stop), reboot (soft: the image's stop signal, then a new boot; hard: a
  // reset), rebuild (its disk made from the image again), console log and serial console (the
  // command's stdio). Its disk is made from the image (no flavor disk needed), so no volumes,
  // snapshot, resize, shelve or rescue yet: Nova's 409.
  'vm-container': {
    imageFormats: ['docker', 'oci'], rootDisk: false, rootDeviceName: null,
    snapshot: { containerFormat: 'docker', diskFormat: 'raw' }, hypervisor: 'qemu', disks: 1, vifType: 'tap',
    actions: ['os-start', 'os-stop', 'pause', 'unpause', 'reboot', 'rebuild', 'os-getConsoleOutput'],
    consoles: { serial: ['serial'] }, agent: true, diskFormats: null, byFlavor: true,
  },
  // a bare-metal node deployed through the bare-metal service (Ironic), as Nova's ironic driver
  // does: power on/off and reboot through the node's power, delete as undeploy (the node cleans
  // back to available). Its console log is the node's serial console as its conductor records it
  // (IPMI Serial over LAN, or the Redfish BMC's serial console): the request goes to the node's
  // conductor (engine/requests.ts route). Nova's ironic driver has no pause, suspend, snapshot,
  // resize, migration, shelve (offload) or volume attachment of its own, and Stratus's conductor
  // no rescue or console stream yet: those are Nova's 409 here. Rebuild is Ironic's rebuild (the
  // image written again, with a new config drive). Its image a whole-disk image
  // (bare, raw or qcow2), written by the deploy ramdisk; chosen by the flavor (kindOfFlavor).
  baremetal: {
    imageFormats: ['bare'], rootDisk: true, rootDeviceName: null,
    snapshot: { containerFormat: 'bare', diskFormat: 'raw' }, hypervisor: 'ironic', disks: 1, vifType: 'other',
    actions: ['os-start', 'os-stop', 'reboot', 'rebuild', 'os-getConsoleOutput'],
    consoles: {}, agent: false, diskFormats: ['raw', 'qcow2'], byFlavor: true,
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
  return (Object.keys(KINDS) as KindName[]).find((k) => !KINDS[k].byFlavor && (KINDS[k].imageFormats as readonly string[]).includes(cf)) ?? DEFAULT_KIND;
}

/** Whether an image (its container and disk formats) boots a server of kind `name`. */
export function imageBootsKind(name: string, containerFormat: string | null, diskFormat: string | null): boolean {
  const k = kindOf(name);
  const cf = (containerFormat ?? '').toLowerCase();
  const df = (diskFormat ?? '').toLowerCase();
  if (!k.byFlavor) return kindOfImageFormat(cf) === name;
  return k.imageFormats.includes(cf) && (k.diskFormats === null || k.diskFormats.includes(df));
}

/**
 * The kind a flavor asks for, or null (the image decides): `stratus:kind`
 * names one (`vm-container`: a VM-isolated container, the only kind besides
 * bare metal that only a flavor chooses); a flavor asking a unit of a custom resource class
 * (`resources:CUSTOM_<CLASS>=1`) with VCPU, MEMORY_MB and DISK_GB zeroed is
 * a bare-metal flavor, as Nova's ironic flavors are.
 */
export function kindOfFlavor(extraSpecs: Record<string, string>): KindName | null {
  const named = extraSpecs['stratus:kind'];
  if (named && named in KINDS) return named as KindName;
  const custom = Object.entries(extraSpecs).some(([k, v]) => /^resources:CUSTOM_[A-Z0-9_]+$/.test(k) && /^\d+$/.test(v) && Number(v) > 0);
  const zeroed = ['VCPU', 'MEMORY_MB', 'DISK_GB'].every((rc) => extraSpecs[`resources:${rc}`] === '0');
  return custom && zeroed ? 'baremetal' : null;
}

/** The flavor extra spec or image property asking that a server run isolated in a VM of its own: `hw:isolation=vm`. */
export const ISOLATION = 'hw:isolation';

/**
 * The kind of a server whose image is of kind `imageKind` when its flavor's extra specs or its image's
 * properties (`asks`) say `hw:isolation=vm`: a container image then runs as a VM-isolated container
 * (`vm-container`); any other kind is isolated already (a VM, a bare-metal node) and stays itself.
 */
export function isolatedKind<K extends string>(imageKind: K, ...asks: Array<Record<string, string>>): K | 'vm-container' {
  return imageKind === 'container' && asks.some((a) => a[ISOLATION] === 'vm') ? 'vm-container' : imageKind;
}

/** True when `action` is one a host's driver does (DRIVER_ACTIONS). */
export const isDriverAction = (action: string): action is DriverAction => (DRIVER_ACTIONS as readonly string[]).includes(action);

/** Whether a server of kind `name` can do `action` (the control plane's own actions: always). */
export function kindSupports(name: string, action: string): boolean {
  return !isDriverAction(action) || kindOf(name).actions.includes(action);
}
