// The network service's resource kinds on the agent protocol
// (src/fleet/protocol.ts): what the control plane sends to the agent of each
// host that has a port on a network, and what the agent reports back. The
// watch hands an agent `{kind, id, version, spec}` with kind `network`
// (NetworkSpec, on every host with a port of the network, plus the host
// serving its DHCP), `port` (PortSpec, on the host of the port's device),
// `security_group` (SecurityGroupSpec, on every host with a port in the
// group) and `router` (RouterSpec, on the host running the router, which also
// gets the router's networks). Types and pure helpers only (device
// names both sides must agree on): the agent imports this file and nothing
// else of the network service.

export const NETWORK_KIND = 'network';
export const PORT_KIND = 'port';
export const SECURITY_GROUP_KIND = 'security_group';
export const ROUTER_KIND = 'router';

export const SegmentationType = { vxlan: 'vxlan', flat: 'flat' } as const;
export type SegmentationType = (typeof SegmentationType)[keyof typeof SegmentationType];

/** Neutron's provider attributes, as the data plane needs them. */
export interface Segmentation {
  type: SegmentationType;
  /** The VXLAN network identifier (1..2^24-1); null for flat. */
  vni: number | null;
  /** flat: the physical network the agent maps to a host interface; null for vxlan. */
  physical_network: string | null;
}

export interface HostRoute { destination: string; nexthop: string }
export interface AllocationPool { start: string; end: string }

export const Ipv6Mode = { slaac: 'slaac', dhcpv6Stateful: 'dhcpv6-stateful', dhcpv6Stateless: 'dhcpv6-stateless' } as const;
export type Ipv6Mode = (typeof Ipv6Mode)[keyof typeof Ipv6Mode];

export interface SubnetSpec {
  id: string;
  name: string;
  cidr: string;
  ip_version: 4 | 6;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  dns_nameservers: string[];
  host_routes: HostRoute[];
  allocation_pools: AllocationPool[];
  ipv6_ra_mode: Ipv6Mode | null;
  ipv6_address_mode: Ipv6Mode | null;
}

/**
 * Whether the network's dnsmasq serves a subnet (Neutron's DHCP agent):
 * IPv4 with DHCP; IPv6 with DHCP when DHCPv6-stateful or -stateless, or with
 * neither mode set (served statically, as Neutron keeps doing); never SLAAC
 * nor a subnet with only an RA mode (its hosts use the RAs alone).
 */
export function dnsmasqServes(s: { ip_version: number; enable_dhcp: boolean | number; ipv6_ra_mode: string | null; ipv6_address_mode: string | null }): boolean {
  if (!s.enable_dhcp) return false;
  if (s.ip_version === 4) return true;
  const am = s.ipv6_address_mode;
  return am === 'dhcpv6-stateful' || am === 'dhcpv6-stateless' || (am === null && s.ipv6_ra_mode === null);
}

export interface FixedIp { subnet_id: string; ip_address: string }

/** A port's hostname for an address when it has no dns_name (Neutron's `host-<ip with dashes>`). */
export const defaultHostname = (ip: string): string => `host-${ip.replace(/[.:]/g, '-')}`;

/**
 * An extra DHCP option of a port (Neutron's extra_dhcp_opt): `opt_name` a
 * dnsmasq option number or name, optionally behind `tag:<tag>,` (Ironic's
 * `tag:ipxe,67` / `tag:!ipxe,67`); dnsmasq sets the tag `ipxe` for clients
 * that send option 175 (iPXE).
 */
export interface DhcpOption { opt_name: string; opt_value: string; ip_version: 4 | 6 }

/** One static DHCP host entry: a port of the network with an address in a DHCP subnet. */
export interface DhcpHost {
  port_id: string; mac_address: string; ip_address: string; subnet_id: string; hostname: string;
  /** The port's extra DHCP options (absent when it has none). */
  extra_dhcp_opts?: DhcpOption[];
}

/** The network's DHCP server on this host (Neutron's `network:dhcp` port). */
export interface DhcpSpec {
  port_id: string;
  mac_address: string;
  /** The DHCP port's own addresses (one per DHCP subnet): dnsmasq listens there and answers DNS for the network. */
  fixed_ips: FixedIp[];
  /** Static entries only: a MAC not listed gets no lease. */
  hosts: DhcpHost[];
  /** The DNS domain hostnames are answered in (Neutron's dns_domain; `openstacklocal.` by default). */
  dns_domain: string;
  /** Lease time in seconds (Neutron's dhcp_lease_duration). */
  lease_seconds: number;
}

/** Another host holding ports of the network: its VXLAN endpoint and the MACs behind it (l2population: static FDB, no multicast, no learning). */
export interface VxlanPeer { underlay_ip: string; macs: string[] }

export interface NetworkSpec {
  project_id: string;
  name: string;
  admin_state_up: boolean;
  segmentation: Segmentation;
  /** The MTU inside the network (1450 on VXLAN over a 1500 underlay). */
  mtu: number;
  subnets: SubnetSpec[];
  /** Every other host with a port on this network (vxlan only). */
  vxlan_peers: VxlanPeer[];
  /** This host serves the network's DHCP (and DNS for its hostnames); null when not here or no subnet has DHCP. */
  dhcp: DhcpSpec | null;
  /** The network is being deleted on this host: remove everything, then report `deleted`. */
  deleted: boolean;
}

export const VifType = {
  /** A container: a veth pair, one end on the network's bridge, the other moved into the server's network namespace. */
  veth: 'veth',
  /** A VM: a tap on the network's bridge that the hypervisor opens. */
  tap: 'tap',
} as const;
export type VifType = (typeof VifType)[keyof typeof VifType];

export interface PortVif {
  type: VifType;
  /** veth: the interface name inside the server (`eth0`, `eth1`... in the order the ports were attached). */
  ifname: string;
}

export interface AllowedAddressPair { ip_address: string; mac_address: string }

/** How the server's side of the port is configured (what DHCP would hand out; containers get it set directly). */
export interface PortIpConfig {
  /** Each fixed IP with its subnet's prefix length. */
  addresses: Array<{ subnet_id: string; ip_address: string; prefixlen: number; ip_version: 4 | 6 }>;
  /** The default routes (the subnets' gateways), at most one per IP version. */
  gateway4: string | null;
  gateway6: string | null;
  /** The subnets' host routes. */
  routes: HostRoute[];
  /** What the server's resolv.conf should say (the subnets' dns_nameservers, else the DHCP port's address). */
  dns_nameservers: string[];
  dns_search: string[];
}

export interface PortSpec {
  project_id: string;
  network_id: string;
  mac_address: string;
  fixed_ips: FixedIp[];
  mtu: number;
  admin_state_up: boolean;
  /** The server id (the container's namespace is /run/netns/st-<device_id>). */
  device_id: string;
  device_owner: string;
  vif: PortVif;
  port_security_enabled: boolean;
  security_group_ids: string[];
  allowed_address_pairs: AllowedAddressPair[];
  ip_config: PortIpConfig;
  deleted: boolean;
}

export const Direction = { ingress: 'ingress', egress: 'egress' } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];
export const EtherType = { ipv4: 'IPv4', ipv6: 'IPv6' } as const;
export type EtherType = (typeof EtherType)[keyof typeof EtherType];

export interface SecurityGroupRule {
  id: string;
  direction: Direction;
  ethertype: EtherType;
  /** A protocol name Neutron accepts (tcp, udp, icmp, ipv6-icmp, sctp...) or its number as a string; null: any. */
  protocol: string | null;
  /** tcp/udp/sctp: the destination port range; icmp: min = type, max = code. null: any. */
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  /** The peer must be a port of this group (its addresses are in `remote_groups`). */
  remote_group_id: string | null;
  /** The peer must be in this address group (its CIDRs are in `address_groups`). */
  remote_address_group_id: string | null;
}

export interface SecurityGroupSpec {
  project_id: string;
  name: string;
  stateful: boolean;
  rules: SecurityGroupRule[];
  /** The member addresses (fixed IPs and allowed address pairs) of every group a rule names as remote group, this one included when referenced. */
  remote_groups: Record<string, string[]>;
  /** The CIDRs of every address group a rule names. */
  address_groups: Record<string, string[]>;
  deleted: boolean;
}

/** What the agent reports for each of these kinds. */
export const NetworkObservedState = ['active', 'down', 'deleted'] as const;
export type NetworkObservedState = (typeof NetworkObservedState)[number];

export interface NetworkObserved {
  state: NetworkObservedState;
}

export interface PortObserved {
  /** `active` once the port carries traffic (Neutron's port status ACTIVE), `down` while its device is not there. */
  state: NetworkObservedState;
  /** The host-side device (tap or veth end). */
  device: string | null;
}

export interface SecurityGroupObserved {
  state: NetworkObservedState;
}

export interface RouterObserved {
  /** `active` once the namespace, its devices and NAT match the spec; `down` when admin down or failing. */
  state: NetworkObservedState;
}

/** Error codes of these kinds (ResourceError.code). */
export const NetworkErrorCode = {
  /** The spec asks for what this host cannot do (a flat network on an unmapped physical network, no VXLAN endpoint). */
  specInvalid: 'spec_invalid',
  /** The network of a port or of a router's interface or gateway is not (yet) set up on this host. */
  networkMissing: 'network_missing',
  hostFailure: 'host_failure',
} as const;

// ---- routers

/**
 * One address of a router on a tenant network (Neutron's router interface);
 * a port with several subnets' addresses comes as several entries with the
 * same port_id. The router's ports are the router's: the control plane does
 * not send them as `port` resources as well.
 */
export interface RouterInterface {
  port_id: string; network_id: string; subnet_id: string; mac_address: string; ip_address: string; prefixlen: number;
  /** IPv6 only: the subnet's CIDR, the prefix the router advertises. */
  cidr?: string;
  /** IPv6 only: the subnet's ipv6_ra_mode; set: the router sends RAs (radvd) for the prefix, null: none (Neutron's L3 agent). */
  ipv6_ra_mode?: Ipv6Mode | null;
  /** IPv6 only: the subnet's name servers (RDNSS in the RAs). */
  dns_nameservers?: string[];
}

/** A floating IP associated with a port behind the router: DNAT floating_ip -> fixed_ip, SNAT back. */
export interface FloatingIpMapping { floating_ip: string; fixed_ip: string; port_id: string }
export interface PortForwarding { external_port: number; internal_ip: string; internal_port: number; protocol: 'tcp' | 'udp' }

/** The router's side on its external network (Neutron's external_gateway_info and gateway port). */
export interface RouterGateway {
  network_id: string;
  port_id: string;
  mac_address: string;
  ip_addresses: Array<{ ip_address: string; prefixlen: number }>;
  /** The external subnet's gateway: the router's default route. */
  gateway_ip: string | null;
  /** SNAT traffic of the tenant networks leaving the gateway to its first IPv4 address. */
  enable_snat: boolean;
}

/**
 * A router on the host that runs it: a namespace qrouter-<id> with a qr-
 * device per interface on its network's bridge, a qg- device on the external
 * network's bridge (both networks are sent to this host too), NAT for SNAT,
 * floating IPs and port forwardings.
 */
export interface RouterSpec {
  project_id: string;
  name: string;
  admin_state_up: boolean;
  interfaces: RouterInterface[];
  external_gateway: RouterGateway | null;
  /** Static routes (Neutron's extraroute); the nexthop is on one of the router's subnets. */
  routes: HostRoute[];
  floating_ips: FloatingIpMapping[];
  /** Each one's floating_ip is an address of the gateway (a floating IP of the router's external network). */
  port_forwardings: Array<PortForwarding & { floating_ip: string }>;
  deleted: boolean;
}

// ---- device names: Linux caps interface names at 15 bytes; Neutron's linuxbridge agent's conventions

const short = (id: string) => id.slice(0, 11);

/** The network's bridge on every host. */
export const bridgeName = (networkId: string) => `brq${short(networkId)}`;
/** The network's VXLAN device. */
export const vxlanName = (vni: number) => `vx-${vni}`;
/** The host side of a port (the tap of a VM, the bridge end of a container's veth). */
export const tapName = (portId: string) => `tap${short(portId)}`;
/** The DHCP port's end inside the DHCP namespace. */
export const dhcpIfName = (portId: string) => `ns-${short(portId)}`;
/** The namespace of the network's DHCP server. */
export const dhcpNamespace = (networkId: string) => `qdhcp-${networkId}`;
/** The server's network namespace (the container driver's name). */
export const serverNamespace = (serverId: string) => `st-${serverId}`;
/** The router's namespace. */
export const routerNamespace = (routerId: string) => `qrouter-${routerId}`;
/** A router interface's end inside the router's namespace (the host end is tapName). */
export const routerInterfaceName = (portId: string) => `qr-${short(portId)}`;
/** The router gateway's end inside the router's namespace (the host end is tapName). */
export const routerGatewayName = (portId: string) => `qg-${short(portId)}`;

/**
 * binding:profile's key naming the host a port's server is being live-migrated
 * to (Neutron's, as Nova sets it): the port is plugged there too until it is
 * bound there (compute's ServerNetworking.migrating).
 */
export const MIGRATING_TO = 'migrating_to';
