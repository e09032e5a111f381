// Floating IPs (Neutron's floatingip and fip-port-details): an address on an
// external network, held by a `network:floatingip` port there (so IPAM never
// gives it twice), associated with a fixed IPv4 address of a port whose subnet
// a router joins to that external network (the router that then serves it).
// The database keeps one floating IP per fixed address.
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { badResource, conflict, ipExhausted, NeutronError, notFound } from './errors.ts';
import { allocate, fixedIpsOf, type FixedIpRequest } from './ipam.ts';
import type { View } from './list.ts';
import { adminOnly } from './policy.ts';
import { newMac, removePort, type PortRow } from './ports.ts';
import { checkQuota } from './quotas.ts';
import { bool, bumpRevision, createRoute, ifMatchRevision, newStandard, projectFor, Resources, standardView, type ResourceDef } from './resource.ts';
import { retryOnCollision } from './retry.ts';
import { FLOATINGIP_OWNER, ROUTER_INTERFACE, type NetworkRow } from './networks.ts';
import type { NetworkTables } from './schema.ts';
import type { SubnetRow } from './subnets.ts';

export type FloatingIpRow = NetworkTables['network_floatingips'];

const Assoc = {
  port_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), fixed_ip_address: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  description: Type.Optional(Type.String({ maxLength: 255 })),
};
const CreateItem = Type.Object({
  ...Assoc, floating_network_id: Type.String(), floating_ip_address: Type.Optional(Type.String()), subnet_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
}, { additionalProperties: false });
const UpdateBody = Type.Object({ floatingip: Type.Object(Assoc, { additionalProperties: false }) }, { additionalProperties: false });

export function floatingIpDef(ctx: NetworkContext): ResourceDef<FloatingIpRow> {
  const db = ctx.db as unknown as Kysely<any>;
  return {
    kind: 'floatingip', table: 'network_floatingips', resource: 'floatingip', collection: 'floatingips',
    attrs: {
      floating_network_id: 'string', floating_ip_address: 'string', port_id: 'string', fixed_ip_address: 'string', router_id: 'string',
      status: 'string', port_details: 'none',
    },
    visible: (q, c) => q.where('network_floatingips.project_id', '=', c.projectId),
    async views(rows) {
      const tags = await new Resources(ctx, this).tags(rows.map((r) => r.id));
      const portIds = [...new Set(rows.map((r) => r.port_id).filter((p): p is string => !!p))];
      const ports = new Map((portIds.length ? await db.selectFrom('network_ports').selectAll().where('id', 'in', portIds).execute() as PortRow[] : []).map((p) => [p.id, p]));
      return rows.map((r) => floatingIpView(r, tags.get(r.id) ?? [], r.port_id ? ports.get(r.port_id) ?? null : null));
    },
  };
}

function floatingIpView(r: FloatingIpRow, tags: string[], port: PortRow | null): View {
  return {
    ...standardView(r, tags), floating_network_id: r.floating_network_id, floating_ip_address: r.floating_ip_address,
    port_id: r.port_id, fixed_ip_address: r.fixed_ip_address, router_id: r.router_id, status: r.status,
    port_details: port && {
      name: port.name, network_id: port.network_id, mac_address: port.mac_address, admin_state_up: bool(port.admin_state_up),
      status: port.status, device_id: port.device_id, device_owner: port.device_owner,
    },
  };
}

/** The router joining the subnet to the external network, or null. */
export async function routerBetween(tx: Kysely<any>, externalNetworkId: string, subnetId: string): Promise<string | null> {
  const r = await tx.selectFrom('network_routers as r')
    .innerJoin('network_ports as p', (j) => j.onRef('p.device_id', '=', 'r.id').on('p.device_owner', '=', ROUTER_INTERFACE))
    .innerJoin('network_ip_allocations as a', 'a.port_id', 'p.id')
    .select('r.id').where('r.gw_network_id', '=', externalNetworkId).where('a.subnet_id', '=', subnetId)
    .orderBy('r.created_at').orderBy('r.id').executeTakeFirst();
  return r?.id ?? null;
}

/**
 * The fixed address of `port` a floating IP on `externalNetworkId` maps to,
 * and the router serving it (Neutron's checks and messages, 400 and 404).
 */
export async function internalTarget(tx: Kysely<any>, externalNetworkId: string, port: PortRow, fixedIp: string | null | undefined): Promise<{ fixed: string; routerId: string }> {
  const ips = ((await fixedIpsOf(tx, [port.id])).get(port.id) ?? []).filter((i) => !i.ip_address.includes(':'));
  let ip;
  if (fixedIp) {
    ip = ips.find((i) => i.ip_address === fixedIp);
    if (!ip) throw badResource('floatingip', `Port ${port.id} does not have fixed ip ${fixedIp}`);
  } else {
    if (!ips.length) throw badResource('floatingip', `Cannot add floating IP to port ${port.id} that has no fixed IPv4 addresses`);
    if (ips.length > 1) throw badResource('floatingip', `Port ${port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP`);
    ip = ips[0]!;
  }
  const routerId = await routerBetween(tx, externalNetworkId, ip.subnet_id);
  if (!routerId) {
    throw new NeutronError('NotFound', 'ExternalGatewayForFloatingIPNotFound',
      `External network ${externalNetworkId} is not reachable from subnet ${ip.subnet_id}.  Therefore, cannot associate Port ${port.id} with a Floating IP.`);
  }
  return { fixed: ip.ip_address, routerId };
}

/** Removes a floating IP and its port and port forwardings; in the caller's transaction. */
export async function removeFloatingIp(tx: Kysely<any>, row: FloatingIpRow): Promise<void> {
  await tx.deleteFrom('network_port_forwardings').where('floatingip_id', '=', row.id).execute();
  await tx.deleteFrom('network_tags').where('resource_type', '=', 'floatingips').where('resource_id', '=', row.id).execute();
  await tx.deleteFrom('network_floatingips').where('id', '=', row.id).execute();
  await removePort(tx, row.floating_port_id);
}

export type Association = Pick<FloatingIpRow, 'port_id' | 'fixed_ip_address' | 'router_id'>;

/**
 * The association of a floating IP with `port` (its `fixedIp`, or its one
 * IPv4 address): Neutron's checks (port forwardings, a router, one floating
 * IP per fixed address) and messages; the caller has checked the port is one
 * it may use.
 */
export async function associationWith(tx: Kysely<any>, row: { id: string; floating_network_id: string; floating_ip_address: string }, port: PortRow,
  fixedIp: string | null | undefined): Promise<Association> {
  if (await tx.selectFrom('network_port_forwardings').select('id').where('floatingip_id', '=', row.id).executeTakeFirst()) {
    throw conflict('FipInUseByPortForwarding', `Floating IP ${row.id} in use by Port Forwarding resources.`);
  }
  const t = await internalTarget(tx, row.floating_network_id, port, fixedIp);
  const other = await tx.selectFrom('network_floatingips').select('id').where('port_id', '=', port.id).where('fixed_ip_address', '=', t.fixed).where('id', '!=', row.id).executeTakeFirst();
  if (other) {
    throw conflict('FloatingIPPortAlreadyAssociated',
      `Cannot associate floating IP ${row.floating_ip_address} (${row.id}) with port ${port.id} using fixed IP ${t.fixed}, as that fixed IP already has a floating IP on external network ${row.floating_network_id}.`);
  }
  return { port_id: port.id, fixed_ip_address: t.fixed, router_id: t.routerId };
}

/**
 * Makes a floating IP on the external network `net` (quota, an address from
 * `subnetId` or the first IPv4 subnet with room, or `address`; its port),
 * associated as `associate` says; in the caller's transaction. IPAM's
 * collisions surface for the caller's retryOnCollision.
 */
export async function insertFloatingIp(tx: Kysely<any>, macPrefix: string, o: {
  id: string; projectId: string; networkId: string; subnetId?: string | null; address?: string; description?: string;
  associate?: (row: { id: string; project_id: string; floating_network_id: string; floating_ip_address: string }) => Promise<Association>;
}): Promise<void> {
  const { id, projectId, networkId } = o;
  await checkQuota(tx, projectId, 'floatingip');
  const subnets = await tx.selectFrom('network_subnets').selectAll().where('network_id', '=', networkId).where('ip_version', '=', 4)
    .orderBy('created_at').orderBy('id').execute() as SubnetRow[];
  if (o.subnetId && !subnets.some((s) => s.id === o.subnetId)) {
    throw badResource('floatingip', `Subnet ${o.subnetId} is not an IPv4 subnet of network ${networkId}`);
  }
  if (!subnets.length) throw badResource('floatingip', `Network ${networkId} has no IPv4 subnet`);
  const portId = uuid();
  const mac = newMac(macPrefix);
  await tx.insertInto('network_ports').values({
    ...newStandard(portId, '', undefined), network_id: networkId, name: '', mac_address: mac, admin_state_up: 1, status: 'N/A',
    device_id: id, device_owner: FLOATINGIP_OWNER, port_security_enabled: 0, allowed_address_pairs: '[]',
    binding_host_id: '', binding_vnic_type: 'normal', binding_vif_type: 'unbound', binding_profile: '{}', binding_vif_details: '{}', dns_name: '',
  }).execute();
  const requested: FixedIpRequest[] = o.address !== undefined
    ? [{ ip_address: o.address, ...(o.subnetId ? { subnet_id: o.subnetId } : {}) }]
    : [{ subnet_id: o.subnetId ?? undefined }];
  // without a subnet: the first IPv4 subnet with room
  let got;
  if (requested[0]!.subnet_id === undefined && requested[0]!.ip_address === undefined) {
    for (const s of subnets) {
      try {
        got = await allocate(tx, { networkId, subnets: [s], portId, mac, deviceOwner: FLOATINGIP_OWNER, requested: [{ subnet_id: s.id }] });
        break;
      } catch (e) {
        if (!(e instanceof NeutronError && e.type === 'IpAddressGenerationFailure')) throw e;
      }
    }
    if (!got) throw ipExhausted(networkId);
  } else got = await allocate(tx, { networkId, subnets, portId, mac, deviceOwner: FLOATINGIP_OWNER, requested });
  const address = got[0]!;
  const row = { id, project_id: projectId, floating_network_id: networkId, floating_ip_address: address.ip_address };
  const assoc = o.associate ? await o.associate(row) : { port_id: null, fixed_ip_address: null, router_id: null };
  await tx.insertInto('network_floatingips').values({
    ...newStandard(id, projectId, o.description), floating_network_id: networkId, floating_port_id: portId, floating_ip_address: address.ip_address,
    subnet_id: address.subnet_id, ...assoc, status: 'DOWN',
  }).execute();
}

export function floatingIpRoutes(ctx: NetworkContext, fips: Resources<FloatingIpRow>, networks: Resources<NetworkRow>, ports: Resources<PortRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;

  /** The association a body asks for: null (none), or the port (visible, same project unless admin), address and router. */
  async function association(tx: Kysely<any>, cred: Credentials, row: { id: string; project_id: string; floating_network_id: string; floating_ip_address: string },
    portId: string | null | undefined, fixedIp: string | null | undefined): Promise<Association> {
    if (!portId) return { port_id: null, fixed_ip_address: null, router_id: null };
    const port = await ports.find(cred, portId, tx);
    if (!isAdmin(cred) && port.project_id !== row.project_id) throw notFound.port(portId);
    return await associationWith(tx, row, port, fixedIp);
  }

  return [
    ...fips.routes(),
    createRoute({
      def: fips.def, rule: 'create_floatingip', item: CreateItem, view: (cred, id) => fips.view(cred, id),
      undo: (id) => db.transaction().execute(async (tx) => {
        const row = await tx.selectFrom('network_floatingips').selectAll().where('id', '=', id).executeTakeFirst() as FloatingIpRow | undefined;
        if (row) await removeFloatingIp(tx, row);
      }),
      async create(rc, b) {
        const cred = rc.cred!;
        adminOnly(cred, 'create_floatingip', b, ['floating_ip_address']);
        const projectId = projectFor(cred, b, 'create_floatingip');
        const net = await networks.find(cred, b.floating_network_id);
        if (!bool(net.external)) throw badResource('floatingip', `Network ${net.id} is not a valid external network`);
        const id = uuid();
        await retryOnCollision(() => db.transaction().execute((tx) => insertFloatingIp(tx, ctx.config.macPrefix, {
          id, projectId, networkId: net.id, subnetId: b.subnet_id, address: b.floating_ip_address, description: b.description,
          associate: (row) => association(tx, cred, row, b.port_id, b.fixed_ip_address),
        })), () => ipExhausted(net.id));
        return id;
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/floatingips/:id', rule: 'update_floatingip', schema: { body: UpdateBody },
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        const b = rc.body.floatingip;
        const expected = ifMatchRevision(rc);
        await retryOnCollision(() => db.transaction().execute(async (tx) => {
          await fips.findOwn(cred, id, 'update_floatingip', tx);
          await bumpRevision(tx, 'network_floatingips', id, expected, 'floatingip');
          const row = await tx.selectFrom('network_floatingips').selectAll().where('id', '=', id).executeTakeFirstOrThrow() as FloatingIpRow;
          const set: Partial<FloatingIpRow> = {};
          if (b.description !== undefined) set.description = b.description;
          if (b.port_id !== undefined || b.fixed_ip_address !== undefined) {
            const portId = b.port_id === undefined ? row.port_id : b.port_id;
            Object.assign(set, await association(tx, cred, row, portId, b.fixed_ip_address ?? undefined), { status: 'DOWN' });
          }
          if (Object.keys(set).length) await tx.updateTable('network_floatingips').set(set).where('id', '=', id).execute();
        }), () => conflict('FloatingIPPortAlreadyAssociated', `Floating IP ${id} could not be associated.`));
        return { floatingip: await fips.view(cred, id) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/floatingips/:id', rule: 'delete_floatingip', status: 204,
      async handler(rc) {
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await fips.findOwn(rc.cred!, rc.params.id!, 'delete_floatingip', tx);
          await bumpRevision(tx, 'network_floatingips', row.id, expected, 'floatingip');
          await removeFloatingIp(tx, row);
        });
      },
    }),
  ];
}
