// The bare-metal service's resource kind on the agent protocol
// (src/fleet/protocol.ts, since 2.5): what the control plane hands a
// conductor (an agent started with `--baremetal`) for each node it manages,
// and what the conductor reports back. The watch hands the conductor
// `{kind: 'baremetal_node', id: node uuid, version, spec: NodeSpec}`;
// `version` is the node row's, bumped on every change the conductor must act
// on (a new operation, a power or boot-device request, maintenance, driver
// info). The conductor drives the BMC and the deploy ramdisk and reports
// NodeObserved for that version; the service's state machine (states.ts)
// moves provision_state on from the operation's outcome. Types and constants
// only: the agent imports this file and nothing else of the service.

export const BAREMETAL_NODE_KIND = 'baremetal_node';

/** The hardware types a conductor serves (HostInfo.kinds[BAREMETAL_NODE_KIND]). */
export const HARDWARE_TYPES = ['ipmi', 'redfish'] as const;
export type HardwareType = (typeof HARDWARE_TYPES)[number];

/** Ironic's power states as the API shows them. */
export type PowerState = 'power on' | 'power off';

/** Where a node boots from next (Ironic's boot devices the conductor sets). */
export type BootDevice = 'pxe' | 'disk' | 'cdrom' | 'bios';

/**
 * How a conductor reaches the BMC: Ironic's driver_info, with the secrets in
 * clear (the agent channel is authenticated; the API never shows them).
 */
export interface BmcAccess {
  type: HardwareType;
  /** ipmi: ipmi_address; redfish: the https/http base of redfish_address. */
  address: string;
  /** ipmi_port (default 623). */
  port?: number;
  username?: string;
  password?: string;
  /** redfish: the System's path, e.g. /redfish/v1/Systems/<id> (redfish_system_id). */
  system_id?: string;
  /** redfish: verify the BMC's TLS certificate (redfish_verify_ca: false turns it off). */
  verify_tls?: boolean;
}

/** A NIC of the node the conductor must let PXE-boot (the node's Ironic ports). */
export interface NodeNic {
  mac: string;
  pxe_enabled: boolean;
}

/** The image a deploy writes. */
export interface DeployImage {
  /** Glance image id: the conductor fetches it through the agent's image download. */
  image_id: string;
  /** Glance disk_format: raw or qcow2 (the conductor converts qcow2 to raw before serving it to the ramdisk). */
  disk_format: 'raw' | 'qcow2';
  /** Glance's os_hash_algo/os_hash_value (or the md5 `checksum`): what the downloaded bytes must hash to. */
  hash_algo: string;
  hash_value: string;
  /** The root partition/disk size asked (instance_info.root_gb), GiB; 0: the whole disk. */
  root_gb: number;
}

/**
 * The config drive written to a `config-2` partition at the end of the disk:
 * Ironic's JSON form (API 1.56: meta_data, user_data, network_data,
 * vendor_data), built into an image by the conductor.
 */
export interface ConfigDrive {
  meta_data: Record<string, unknown>;
  user_data?: string;
  network_data?: Record<string, unknown>;
  vendor_data?: Record<string, unknown>;
  /**
   * Ironic's string form (Nova's): a gzipped, base64-encoded config drive
   * image (or a URL to one), written to the partition as is; meta_data is {}
   * then and the other fields absent.
   */
  image?: string;
}

/**
 * How the ramdisk reaches the node: its NIC PXE-boots iPXE (DHCP and TFTP
 * from the provisioning network's dnsmasq, then the boot script over the
 * conductor's HTTP), or the BMC inserts an ISO of the ramdisk as virtual
 * media (redfish only).
 */
export type BootInterface = 'ipxe' | 'redfish-virtual-media';

/**
 * Work the node is to do, one at a time. `id` is new for each operation: a
 * report names it, so an old operation's late report never moves a new one.
 *   verify     check the BMC answers with these credentials (enroll -> manageable), read the power state
 *   inspect    boot the ramdisk, report the hardware (NodeInventory), power off; or, out of band
 *              (`inspect_interface: 'redfish'`, Ironic's redfish inspect): read the hardware from
 *              the BMC (no boot, no power change)
 *   clean      boot the ramdisk, run the steps (automated: erase disk metadata), power off
 *   deploy     boot the ramdisk, write the image and the config drive, boot from disk
 *   rescue     boot the ramdisk with a rescue password (the user's way in), leave it running
 *   unrescue   boot from disk again
 *   tear_down  power off, boot device back to pxe (before cleaning, on undeploy/delete)
 */
export type NodeOperation =
  | { id: string; type: 'verify' }
  | { id: string; type: 'inspect'; boot_interface: BootInterface }
  | { id: string; type: 'inspect'; inspect_interface: 'redfish' }
  | { id: string; type: 'clean'; boot_interface: BootInterface; steps: CleanStep[] }
  | { id: string; type: 'deploy'; boot_interface: BootInterface; image: DeployImage; config_drive: ConfigDrive | null }
  | { id: string; type: 'rescue'; boot_interface: BootInterface; rescue_password_hash: string }
  | { id: string; type: 'unrescue' }
  | { id: string; type: 'tear_down' };

/** A clean step (Ironic's: interface, step, args); `deploy.erase_devices_metadata` is the automated one. */
export interface CleanStep {
  interface: 'deploy' | 'management' | 'power' | 'bios' | 'raid';
  step: string;
  args?: Record<string, unknown>;
}

/**
 * The provisioning network the ramdisk boots on: the Neutron network whose
 * DHCP (the network agent's dnsmasq) answers the node's MACs with the PXE
 * options, and where the conductor's HTTP endpoint listens.
 */
export interface ProvisioningNetwork {
  network_id: string;
  /** The Neutron ports the service made (or, for a deploy, the instance's ports) carrying the PXE DHCP options. */
  port_ids: string[];
}

/** What the conductor must make of a node. */
export interface NodeSpec {
  /** The hardware type, and how to reach its BMC. */
  bmc: BmcAccess;
  /** In maintenance the conductor does nothing to the node (no power sync, no operation steps), and reports what it sees. */
  maintenance: boolean;
  nics: NodeNic[];
  /**
   * The power the node should have, with a sequence number bumped by every
   * power request (a reboot is `power on` with a new `seq`): the conductor
   * acts once per seq, then follows the operation. null: leave power alone.
   */
  power: { target: PowerState | 'reboot' | 'soft power off' | 'soft reboot'; seq: number; timeout_s?: number } | null;
  /** A boot device request (PUT .../management/boot_device), once per seq. */
  boot_device: { device: BootDevice; persistent: boolean; seq: number } | null;
  /** The operation in progress; null when the node is at rest (available, active, manageable, enroll, ...). */
  operation: NodeOperation | null;
  provisioning: ProvisioningNetwork | null;
}

/** One step of an operation as the conductor reports it (Ironic's deploy_step/clean_step, and our phases). */
export type OperationPhase =
  | 'power_on' | 'pxe' | 'vmedia' | 'ramdisk' | 'inspect' | 'erase' | 'write_image' | 'config_drive'
  | 'set_boot_device' | 'reboot' | 'boot' | 'power_off' | 'done';

/** The hardware the ramdisk found (Ironic's inspection inventory, the part Stratus keeps). */
export interface NodeInventory {
  cpus: number;
  cpu_arch: string;
  memory_mb: number;
  /** The disks, largest first; local_gb is the root disk's size in GiB (floor). */
  disks: Array<{ name: string; size_bytes: number; model?: string; serial?: string; rotational?: boolean }>;
  nics: Array<{ name: string; mac: string; has_carrier?: boolean }>;
  /** The MAC the ramdisk booted from (the PXE NIC); absent out of band. */
  boot_mac?: string;
}

/** What the conductor observes of a node after acting on a spec version. */
export interface NodeObserved {
  /** null: the BMC did not answer (reported with an error `bmc_unreachable` or `bmc_auth`). */
  power_state: PowerState | null;
  /** The last power request's seq the conductor carried out (or failed). */
  power_seq?: number;
  boot_device_seq?: number;
  /** The operation's progress; absent when there is none. */
  operation?: {
    id: string;
    status: 'running' | 'succeeded' | 'failed';
    phase: OperationPhase;
    /** ISO 8601, when the phase began (for the API's provision_updated_at and bench/baremetal's split). */
    phase_started_at: string;
    /** Set with `failed`: for people, becomes last_error; never holds a secret. */
    message?: string;
    /** inspect: what was found. */
    inventory?: NodeInventory;
  };
}

/** Error codes a conductor reports (ResourceError.code), acted on by code, never by message. */
export const BaremetalErrorCode = {
  /** The BMC did not answer (no route, timeout). */
  bmcUnreachable: 'bmc_unreachable',
  /** The BMC refused the credentials. */
  bmcAuth: 'bmc_auth',
  /** The BMC refused the request (an unsupported boot device, a bad media URL). */
  bmcRefused: 'bmc_refused',
  /** The ramdisk did not call back in time. */
  ramdiskTimeout: 'ramdisk_timeout',
  /** The image's bytes do not match its checksum. */
  imageChecksum: 'image_checksum',
  /** The image is not there or unreadable. */
  imageUnavailable: 'image_unavailable',
  /** A step failed in the ramdisk (its message says which). */
  stepFailed: 'step_failed',
} as const;
export type BaremetalErrorCode = (typeof BaremetalErrorCode)[keyof typeof BaremetalErrorCode];
