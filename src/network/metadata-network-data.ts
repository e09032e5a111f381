// Nova's network_data.json (the config drive's and the metadata service's
// openstack/<version>/network_data.json), built from a server's ports: one
// link per port with an address, one network per IP version of each port
// (its first subnet of that version, the port's first address there), the
// subnets' name servers as services. A subnet with DHCP is `ipv4_dhcp` (the
// guest asks DHCP, as Nova says it; no address given); IPv6 says its address mode
// (`ipv6_slaac`, `ipv6_dhcpv6-stateful`...). Pure: the rows come from
// server-ports.ts (serverMetadataNetworking).
import { formatIp, parseCidr } from './ipnet.ts';
import { tapName } from './protocol.ts';

export interface NetworkDataLink { id: string; vif_id: string; type: string; mtu: number | null; ethernet_mac_address: string }
export interface NetworkDataRoute { network: string; netmask: string; gateway: string }
export interface NetworkDataService { type: 'dns'; address: string }
export interface NetworkDataNetwork {
  id: string; type: string; link: string; network_id: string;
  ip_address?: string; netmask?: string; routes?: NetworkDataRoute[]; services?: NetworkDataService[];
}
export interface NetworkData { links: NetworkDataLink[]; networks: NetworkDataNetwork[]; services: NetworkDataService[] }

/** What the builder needs of one port of the server, in the order the server's interfaces are (eth0, eth1...). */
export interface NetworkDataPort {
  id: string; network_id: string; mac_address: string; mtu: number; vif_type: string;
  fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
}
export interface NetworkDataSubnet {
  id: string; cidr: string; ip_version: number; gateway_ip: string | null; enable_dhcp: boolean;
  dns_nameservers: string[]; host_routes: Array<{ destination: string; nexthop: string }>; ipv6_address_mode: string | null;
}

/** The netmask of a prefix length in dotted (v4) or colon (v6) form, as Nova writes it. */
export function netmaskOf(version: 4 | 6, prefix: number): string {
  const bits = version === 4 ? 32 : 128;
  const all = (1n << BigInt(bits)) - 1n;
  return formatIp(version, all ^ ((1n << BigInt(bits - prefix)) - 1n));
}

// the link types Nova shows as they are (its LEGACY_EXPOSED_VIF_TYPES); any other is `phy`
const EXPOSED_VIF_TYPES = new Set(['bridge', 'dvs', 'tap', 'vhostuser', 'vrouter', 'ovs', 'hw_veb', 'hostdev']);

export function buildNetworkData(ports: NetworkDataPort[], subnets: Map<string, NetworkDataSubnet>): NetworkData {
  const out: NetworkData = { links: [], networks: [], services: [] };
  const dns = (s: NetworkDataSubnet): NetworkDataService[] => s.dns_nameservers.map((address) => ({ type: 'dns', address }));
  for (const p of ports) {
    const firstOf = (v: 4 | 6) => {
      const ip = p.fixed_ips.find((f) => subnets.get(f.subnet_id)?.ip_version === v);
      return ip ? { ip, subnet: subnets.get(ip.subnet_id)! } : null;
    };
    const v4 = firstOf(4);
    const v6 = firstOf(6);
    if (!v4 && !v6) continue;
    const link: NetworkDataLink = {
      id: tapName(p.id), vif_id: p.id, type: EXPOSED_VIF_TYPES.has(p.vif_type) ? p.vif_type : 'phy', mtu: p.mtu, ethernet_mac_address: p.mac_address,
    };
    out.links.push(link);
    for (const [v, got] of [[4, v4], [6, v6]] as const) {
      if (!got) continue;
      const { ip, subnet } = got;
      const id = `network${out.networks.length}`;
      for (const d of dns(subnet)) if (!out.services.some((x) => x.address === d.address)) out.services.push(d);
      const mode = v === 6 ? subnet.ipv6_address_mode : null;
      if (!mode && subnet.enable_dhcp) {
        out.networks.push({ id, type: `ipv${v}_dhcp`, link: link.id, network_id: p.network_id });
        continue;
      }
      const cidr = parseCidr(subnet.cidr, false);
      if (!cidr) continue;
      const routes: NetworkDataRoute[] = [];
      if (subnet.gateway_ip) routes.push(v === 4 ? { network: '0.0.0.0', netmask: '0.0.0.0', gateway: subnet.gateway_ip } : { network: '::', netmask: '::', gateway: subnet.gateway_ip });
      for (const r of subnet.host_routes) {
        const dest = parseCidr(r.destination, false);
        if (dest && dest.version === v) routes.push({ network: formatIp(v, dest.network), netmask: netmaskOf(v, dest.prefix), gateway: r.nexthop });
      }
      out.networks.push({
        id, type: mode ? `ipv6_${mode}` : `ipv${v}`, link: link.id,
        ip_address: ip.ip_address, netmask: netmaskOf(v, cidr.prefix), routes, network_id: p.network_id, services: dns(subnet),
      });
    }
  }
  return out;
}
