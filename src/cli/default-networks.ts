// The all-in-one's first-start topology, as DevStack makes it: an external
// network `public` (flat, on the physical network that the local
// agent maps onto the host bridge holding the gateway address, so floating IPs
// answer from this host and nothing leaves through a physical interface) and,
// for the admin project, a network `private` with a subnet and a router
// `router1` from it to `public`. Made through the network API like any client
// would, once: DATA_DIR/networks-created remembers it, so an admin may delete
// or change them. With bare metal, also the provisioning network `baremetal`
// (admin-owned, shared, flat on the physical network mapped onto br-bm, DHCP
// from .10; DATA_DIR/baremetal-network-created remembers it).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

export interface ExternalSubnet {
  /** The external subnet, e.g. 172.24.4.0/24. */
  cidr: string;
  /** The host's own address on the external bridge: the subnet's gateway. */
  gateway: string;
}

export const PRIVATE_CIDR = '10.0.0.0/26';

type Api = <T>(method: string, path: string, body?: unknown) => Promise<T>;

async function adminApi(url: string, adminPassword: string): Promise<Api> {
  const auth = await fetch(`${url}/identity/v3/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: adminPassword } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
  });
  const token = auth.headers.get('x-subject-token');
  if (auth.status !== 201 || !token) throw new Error(`cannot log in as admin (${auth.status})`);
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${url}/network/v2.0${path}`, {
      method, headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status >= 300) throw new Error(`${method} /network/v2.0${path}: ${r.status} ${await r.text()}`);
    return (r.status === 204 ? {} : await r.json()) as T;
  };
}

/** Creates public, private and router1 on the first start; returns whether it did. */
export async function createDefaultNetworks(o: {
  url: string; adminPassword: string; dataDir: string; log: Logger;
  /** The physical network the local agent maps onto the external bridge. */
  physicalNetwork: string;
  external: ExternalSubnet;
}): Promise<boolean> {
  const marker = join(o.dataDir, 'networks-created');
  if (existsSync(marker)) return false;
  const api = await adminApi(o.url, o.adminPassword);
  const { networks } = await api<{ networks: Array<{ id: string; name: string }> }>('GET', '/networks?name=public&name=private');
  if (networks.length) {
    // made by an earlier start that did not finish writing the marker, or by the admin: theirs
    writeFileSync(marker, 'present\n');
    return false;
  }
  const { extensions } = await api<{ extensions: Array<{ alias: string }> }>('GET', '/extensions');
  const autoTopology = extensions.some((e) => e.alias === 'auto-allocated-topology');
  const pub = (await api<{ network: { id: string } }>('POST', '/networks', {
    network: {
      name: 'public', 'router:external': true, 'provider:network_type': 'flat', 'provider:physical_network': o.physicalNetwork,
      ...(autoTopology ? { is_default: true } : {}),
    },
  })).network;
  await api('POST', '/subnets', {
    subnet: { name: 'public-subnet', network_id: pub.id, ip_version: 4, cidr: o.external.cidr, gateway_ip: o.external.gateway, enable_dhcp: false },
  });
  const priv = (await api<{ network: { id: string } }>('POST', '/networks', { network: { name: 'private' } })).network;
  const privSubnet = (await api<{ subnet: { id: string } }>('POST', '/subnets', {
    subnet: { name: 'private-subnet', network_id: priv.id, ip_version: 4, cidr: PRIVATE_CIDR },
  })).subnet;
  const router = (await api<{ router: { id: string } }>('POST', '/routers', {
    router: { name: 'router1', external_gateway_info: { network_id: pub.id } },
  })).router;
  await api('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: privSubnet.id });
  writeFileSync(marker, `${pub.id} ${priv.id} ${router.id}\n`);
  o.log.info({ public: pub.id, private: priv.id, router: router.id }, 'created the default networks public and private with router1');
  return true;
}

/**
 * The bare-metal provisioning network on the first start: `baremetal`, an
 * admin-owned shared flat network on `physicalNetwork` with one IPv4 subnet
 * (DHCP on, no gateway: nothing is routed off the bridge; addresses from .10,
 * below that the host's own); returns whether it made it.
 */
export async function createProvisioningNetwork(o: {
  url: string; adminPassword: string; dataDir: string; log: Logger; physicalNetwork: string;
  /** The subnet, e.g. 172.24.8.0/24; `host` the host's address on the bridge (the conductor's). */
  cidr: string; host: string; name?: string;
}): Promise<boolean> {
  const marker = join(o.dataDir, 'baremetal-network-created');
  if (existsSync(marker)) return false;
  const name = o.name ?? 'baremetal';
  const api = await adminApi(o.url, o.adminPassword);
  const { networks } = await api<{ networks: Array<{ id: string }> }>('GET', `/networks?name=${encodeURIComponent(name)}`);
  if (networks.length) {
    writeFileSync(marker, 'present\n');
    return false;
  }
  const base = o.cidr.split('/')[0]!.split('.').slice(0, 3).join('.');
  const net = (await api<{ network: { id: string } }>('POST', '/networks', {
    network: { name, shared: true, 'provider:network_type': 'flat', 'provider:physical_network': o.physicalNetwork },
  })).network;
  await api('POST', '/subnets', {
    subnet: {
      name: `${name}-subnet`, network_id: net.id, ip_version: 4, cidr: o.cidr, gateway_ip: null, enable_dhcp: true,
      ...(o.cidr.endsWith('/24') ? { allocation_pools: [{ start: `${base}.10`, end: `${base}.250` }] } : {}),
    },
  });
  writeFileSync(marker, `${net.id}\n`);
  o.log.info({ network: net.id, cidr: o.cidr, conductor: o.host }, `created the bare-metal provisioning network ${name}`);
  return true;
}
