// The wire contract between the server's agent API (/agent/v1) and the host
// agents, for every kind of resource an agent converges (docs/agent-protocol.md).
// Types and constants only: an agent imports nothing else from the server.
//
//   PUT  /agent/v1/hosts/{hostname}            register + heartbeat (HostInfo) -> HostRegistration
//   POST /agent/v1/hosts/{hostname}/watch      long poll: WatchRequest -> WatchResponse
//   POST /agent/v1/hosts/{hostname}/report     observed state: ReportRequest -> {}
//
// plus the routes services add for their kinds (compute: image download and
// snapshot upload). Every call carries the agent token in the
// `X-Stratus-Agent-Token` header.
//
// A resource is `{kind, id, version, spec}`: the service that owns the kind
// (compute owns `server`, the network service `network`, `port` and
// `security_group` since 2.1, `router`, the volume kinds since 2.3, `baremetal_node` since 2.5) builds the spec, bumps the version
// whenever the agent must act, and turns the agent's reports into its own
// state. The fleet itself knows no kind.


/** Major.minor. A server accepts agents of its own major and of its minor or the one before (rolling upgrades: servers first). */
export const PROTOCOL_VERSION = '2.6';

export const AGENT_TOKEN_HEADER = 'x-stratus-agent-token';

/** A host name as agents register it (the path parameter of every host call). */
export const HOSTNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** The largest overcommit ratios a host may report (the CLI's flags take the same bounds). */
export const MAX_ALLOCATION_RATIO = { cpu: 10000, ram: 1000, disk: 1000 } as const;

export interface HostInfo {
  /** The protocol version the agent speaks (PROTOCOL_VERSION of its build). */
  protocol: string;
  /**
   * What the agent's drivers serve: resource kind -> the variants of it they
   * handle (for `server`: the server kinds, e.g. ['container', 'vm']; a kind
   * with no variants maps to []).
   */
  kinds: Record<string, string[]>;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  /** The host's address; since 2.1 also its VXLAN endpoint (the network kinds' peers reach it there). */
  host_ip?: string;
  /** The agent's software version (shown as the service's version). */
  version: string;
  availability_zone?: string;
  /** Overcommit of this host (Nova's cpu/ram/disk_allocation_ratio on the compute node); server defaults when absent. */
  cpu_allocation_ratio?: number;
  ram_allocation_ratio?: number;
  disk_allocation_ratio?: number;
  /** Since 2.2: the hypervisor of a host that runs VMs (shown by os-hypervisors); absent on a container-only host. */
  hypervisor?: Hypervisor;
  /** Since 2.3: the pools of a host that serves `volume` (its backends' capacity, the volume scheduler's input). */
  volume_pools?: StoragePoolStats[];
  /** Since 2.5: a bare-metal conductor's (an agent serving `baremetal_node`) endpoint on the provisioning network. */
  baremetal?: BaremetalConductor;
}

/**
 * Where a conductor's HTTP endpoint for its nodes listens (the iPXE script
 * `http://<address>:<http_port>/boot.ipxe`, the deploy ramdisk's files and
 * callbacks, images, config drives, ISOs); `tftp`: this host has Debian ipxe's
 * chain-loaders, so a PXE client that is not iPXE can be sent `undionly.kpxe`
 * (served by TFTP from the provisioning network's dnsmasq on this host).
 */
export interface BaremetalConductor {
  address: string;
  http_port: number;
  tftp: boolean;
  /** Ironic's conductor group this conductor serves (only nodes of that `conductor_group` are placed on it); '' when absent. */
  conductor_group?: string;
}

/** What a VM host runs its guests with; `accel` is what a probe found working, not what devices exist. */
export interface Hypervisor {
  /** Nova's hypervisor_type: 'QEMU' (TCG) or 'KVM'. */
  type: 'QEMU' | 'KVM';
  accel: 'kvm' | 'tcg';
  /** qemu-system's version, e.g. '7.2.15'. */
  version?: string;
}

export interface HostRegistration {
  host_id: string;
  service_id: string;
  /** Seconds between heartbeats the server expects. */
  heartbeat_interval: number;
  /** The server's protocol version. */
  protocol: string;
}

/** One resource placed on the host, as its owning service wants it. */
export interface Resource<S = unknown> {
  kind: string;
  id: string;
  /** Changes whenever anything in `spec` changes. */
  version: number;
  spec: S;
}

export interface ResourceRef { kind: string; id: string }

/** kind -> id -> the version the agent holds. */
export type Known = Record<string, Record<string, number>>;

export interface WatchRequest {
  /** One entry per kind the agent serves (`{}` when it holds none): only those kinds are handed out. */
  known: Known;
  /** Ids of requests the agent already works on. */
  requests?: string[];
  /** Seconds to wait for a change (long poll); 0 answers at once. */
  wait?: number;
}

export interface WatchResponse {
  /** Resources new to the agent or whose version changed (only of the kinds it registered). */
  resources: Resource[];
  /** Known resources no longer placed on this host (moved, purged): forget them and clean up. */
  gone: ResourceRef[];
  requests: PendingRequest[];
}

/**
 * How a failure is to be taken, decided where it happened (the driver), never
 * parsed out of a message:
 *   transient  the host's trouble (a download cut, a busy mount): another try, here or elsewhere, may work
 *   permanent  the resource cannot converge anywhere (a broken image): retrying will not help
 *   user       what the user asked for is wrong (a spec the driver refuses): retrying will not help
 */
export const ErrorClass = { transient: 'transient', permanent: 'permanent', user: 'user' } as const;
export type ErrorClass = (typeof ErrorClass)[keyof typeof ErrorClass];

export interface ResourceError {
  class: ErrorClass;
  /** A stable, machine-readable code (snake_case), e.g. `image_invalid`. */
  code: string;
  /** For people (shown in the resource's fault); never parsed. */
  message: string;
}

/** What the agent observes of one resource after converging it to `version`. */
export interface ResourceReport<O = unknown> {
  kind: string;
  id: string;
  /** The desired version the agent converged (or tried to). */
  version: number;
  /** The kind's own observed state. */
  observed: O;
  /** Set when converging to `version` failed. */
  error?: ResourceError;
}

/** Work beyond the desired state (console output, a snapshot), owned by a resource kind. */
export interface PendingRequest {
  id: string;
  kind: string;
  /** The resource the request is about. */
  resource_id: string;
  /** What to do, in the kind's vocabulary (server: `console`, `snapshot`). */
  action: string;
  args: Record<string, unknown>;
}

export interface RequestReport {
  id: string;
  ok: boolean;
  result?: Record<string, unknown>;
  error?: ResourceError;
}

export interface ReportRequest {
  resources?: ResourceReport[];
  requests?: RequestReport[];
}

/** A storage pool of a host that serves `volume` (Cinder's pool stats; the volume service's scheduler reads them). */
export interface StoragePoolStats {
  /** `host@backend#pool`. */
  name: string;
  total_capacity_gb: number;
  free_capacity_gb: number;
  /** GiB promised to volumes (thin provisioning may promise more than total). */
  provisioned_capacity_gb: number;
  max_over_subscription_ratio: number;
  thin_provisioning_support: boolean;
  /** Snapshots and clones in constant time (reflink), or by copy. */
  reflink: boolean;
  multiattach: boolean;
  /** The backend's kind: `file` (reflink or qcow2) today; `rbd` later. */
  driver: string;
}
