// Networks: the network resource with the provider (vxlan/flat segments, with
// the VNI allocator), external-net, port-security, net-mtu(-writable),
// dns-integration and network_availability_zone attributes.
import { Type } from 'typebox';
import { sql, type Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { checkDnsDomain } from './dns.ts';
import { conflict, invalidInput, NeutronError, networkInUse } from './errors.ts';
import type { View } from './list.ts';
import { adminOnly } from './policy.ts';
import { checkQuota } from './quotas.ts';
import { bool, bumpRevision, createRoute, ifMatchRevision, int, newStandard, projectFor, Resources, standardView, type ResourceDef } from './resource.ts';
import { retryOnCollision } from './retry.ts';
import type { NetworkTables } from './schema.ts';
import { rbacGranted } from './rbac-query.ts';

export type NetworkRow = NetworkTables['network_networks'];

const MAX_VNI = 16777215;
const Name = Type.String({ maxLength: 255 });
const Desc = Type.String({ maxLength: 255 });
const Common = {
  name: Type.Optional(Name), description: Type.Optional(Desc), admin_state_up: Type.Optional(Type.Boolean()),
  shared: Type.Optional(Type.Boolean()), 'router:external': Type.Optional(Type.Boolean()),
  mtu: Type.Optional(Type.Integer({ minimum: 68 })), port_security_enabled: Type.Optional(Type.Boolean()),
  dns_domain: Type.Optional(Type.String()), // checkDnsDomain: Neutron's messages, its length limit too
  is_default: Type.Optional(Type.Boolean()),
};
const CreateItem = Type.Object({
  ...Common,
  project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
  'provider:network_type': Type.Optional(Type.String()),
  'provider:physical_network': Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  'provider:segmentation_id': Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  availability_zone_hints: Type.Optional(Type.Array(Type.String({ maxLength: 255 }))),
}, { additionalProperties: false });
const UpdateBody = Type.Object({
  network: Type.Object({
    ...Common,
    'provider:network_type': Type.Optional(Type.Unknown()), 'provider:physical_network': Type.Optional(Type.Unknown()),
    'provider:segmentation_id': Type.Optional(Type.Unknown()),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

const ADMIN_ATTRS = ['shared', 'router:external', 'provider:network_type', 'provider:physical_network', 'provider:segmentation_id'] as const;

/** auto-allocated-topology: one default external network at a time (Neutron's DefaultExternalNetworkExists). */
async function checkDefault(tx: Kysely<any>, id: string): Promise<void> {
  const other = await tx.selectFrom('network_networks').select('id').where('is_default', '=', 1).where('external', '=', 1).where('id', '!=', id).executeTakeFirst();
  if (other) throw conflict('DefaultExternalNetworkExists', `A default external network already exists: ${other.id}.`);
}

/** The lowest free VNI of the range, or null when every one is taken. */
async function freeVni(tx: Kysely<any>, [lo, hi]: [number, number]): Promise<number | null> {
  const first = await tx.selectFrom('network_vnis').select('vni').where('vni', '=', lo).executeTakeFirst();
  if (!first) return lo;
  const r = await sql<{ v: number }>`select a.vni + 1 as v from network_vnis a
    where a.vni >= ${lo} and a.vni < ${hi} and not exists (select 1 from network_vnis b where b.vni = a.vni + 1)
    order by a.vni limit 1`.execute(tx);
  return r.rows[0] ? Number(r.rows[0].v) : null;
}

export function networkDef(ctx: NetworkContext): ResourceDef<NetworkRow> {
  const db = ctx.db as unknown as Kysely<any>;
  return {
    kind: 'network', table: 'network_networks', resource: 'network', collection: 'networks',
    attrs: {
      name: 'string', admin_state_up: 'bool', shared: 'bool', 'router:external': 'bool', mtu: 'int', status: 'string',
      port_security_enabled: 'bool', subnets: 'list', availability_zones: 'list', availability_zone_hints: 'list', dns_domain: 'string',
      'provider:network_type': 'string', 'provider:physical_network': 'string', 'provider:segmentation_id': 'int', is_default: 'bool',
    },
    visible: (q, c) => q.where((eb) => eb.or([
      eb('network_networks.project_id', '=', c.projectId), eb('network_networks.shared', '=', 1), eb('network_networks.external', '=', 1),
      eb('network_networks.id', 'in', rbacGranted(eb, c, ['access_as_shared', 'access_as_external'])),
    ])),
    async views(rows, cred) {
      const ids = rows.map((r) => r.id);
      const tags = await new Resources(ctx, this).tags(ids);
      const subnets = new Map<string, string[]>(ids.map((id) => [id, []]));
      for (let i = 0; i < ids.length; i += 500) {
        const s = await db.selectFrom('network_subnets').select(['id', 'network_id']).where('network_id', 'in', ids.slice(i, i + 500))
          .orderBy('created_at').orderBy('id').execute();
        for (const r of s) subnets.get(r.network_id)!.push(r.id);
      }
      // shared with the caller's project (or everyone) through an RBAC policy: shared as far as the caller is concerned
      const sharedTo = new Set<string>();
      for (let i = 0; i < ids.length; i += 500) {
        const grants = await db.selectFrom('network_rbac_policies').select('object_id').where('object_type', '=', 'network')
          .where('action', '=', 'access_as_shared').where('object_id', 'in', ids.slice(i, i + 500))
          .where('target_project', 'in', cred.projectId ? ['*', cred.projectId] : ['*']).execute();
        for (const g of grants) sharedTo.add(g.object_id);
      }
      return rows.map((r) => networkView(ctx, { ...r, shared: r.shared || int(sharedTo.has(r.id)) }, tags.get(r.id) ?? [], subnets.get(r.id) ?? [], cred));
    },
  };
}

function networkView(ctx: NetworkContext, r: NetworkRow, tags: string[], subnets: string[], cred: Credentials): View {
  const v: View = {
    ...standardView(r, tags), name: r.name, admin_state_up: bool(r.admin_state_up), status: r.status, subnets,
    shared: bool(r.shared), 'router:external': bool(r.external), mtu: r.mtu, port_security_enabled: bool(r.port_security_enabled),
    availability_zone_hints: JSON.parse(r.availability_zone_hints), availability_zones: [ctx.config.availabilityZone],
    dns_domain: r.dns_domain, is_default: bool(r.is_default),
  };
  if (isAdmin(cred)) {
    Object.assign(v, { 'provider:network_type': r.network_type, 'provider:physical_network': r.physical_network, 'provider:segmentation_id': r.segmentation_id });
  }
  return v;
}

/** A network without ports and what hangs on it (subnets, tags, its VNI or flat physnet); in the caller's transaction. */
/** The device owner of a network's DHCP port. */
export const DHCP_OWNER = 'network:dhcp';
/** The device owners of router and floating IP ports (routers.ts, floating-ips.ts). */
export const ROUTER_INTERFACE = 'network:router_interface';
export const ROUTER_GATEWAY = 'network:router_gateway';
export const FLOATINGIP_OWNER = 'network:floatingip';
/** Owners of ports only the L3 API may delete (Neutron's L3PortInUse). */
export const L3_OWNERS: readonly string[] = [ROUTER_INTERFACE, ROUTER_GATEWAY, FLOATINGIP_OWNER];

export async function removeNetwork(tx: Kysely<any>, id: string): Promise<void> {
  const subnets = (await tx.selectFrom('network_subnets').select('id').where('network_id', '=', id).execute()).map((s) => s.id);
  if (subnets.length) {
    await tx.deleteFrom('network_tags').where('resource_type', '=', 'subnets').where('resource_id', 'in', subnets).execute();
    await tx.deleteFrom('network_subnets').where('network_id', '=', id).execute();
  }
  await tx.deleteFrom('network_tags').where('resource_type', '=', 'networks').where('resource_id', '=', id).execute();
  await tx.deleteFrom('network_vnis').where('network_id', '=', id).execute();
  await tx.deleteFrom('network_flat_physnets').where('network_id', '=', id).execute();
  await tx.deleteFrom('network_networks').where('id', '=', id).execute();
}

export function networkRoutes(ctx: NetworkContext, networks: Resources<NetworkRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const cfg = ctx.config;
  return [
    ...networks.routes(),
    createRoute({
      def: networks.def, rule: 'create_network', item: CreateItem, view: (cred, id) => networks.view(cred, id), undo: (id) => removeNetwork(db, id),
      async create(rc, b) {
        const cred = rc.cred!;
        adminOnly(cred, 'create_network', b, [...ADMIN_ATTRS, 'is_default']);
        const projectId = projectFor(cred, b, 'create_network');
        const type = b['provider:network_type'] ?? 'vxlan';
        const physnet = b['provider:physical_network'] ?? null;
        const segId = b['provider:segmentation_id'] ?? null;
        if (type === 'vxlan') {
          if (physnet !== null) throw invalidInput('provider:physical_network specified for vxlan network');
          if (segId !== null && (segId < 1 || segId > MAX_VNI)) throw invalidInput(`segmentation_id out of range (1 through ${MAX_VNI})`);
        } else if (type === 'flat') {
          if (physnet === null || physnet === '') throw invalidInput('physical_network required for flat provider network');
          if (segId !== null) throw invalidInput('segmentation_id specified for flat provider network');
        } else throw invalidInput(`Unsupported network type ${type}`);
        const maxMtu = type === 'vxlan' ? cfg.vxlanMtu : cfg.flatMtu;
        if (b.mtu !== undefined && b.mtu > maxMtu) throw invalidInput(`Requested MTU is too big, maximum is ${maxMtu}`);
        const dnsDomain = checkDnsDomain(b.dns_domain ?? '');
        const id = uuid();
        await retryOnCollision(() => db.transaction().execute(async (tx) => {
          await checkQuota(tx, projectId, 'network');
          let vni: number | null = null;
          if (type === 'vxlan') {
            if (segId !== null) {
              if (await tx.selectFrom('network_vnis').select('vni').where('vni', '=', segId).executeTakeFirst()) {
                throw conflict('TunnelIdInUse', `Unable to create the network. The tunnel ID ${segId} is in use.`);
              }
              vni = segId;
            } else {
              vni = await freeVni(tx, cfg.vniRange);
              if (vni === null) throw new NeutronError('Unavailable', 'NoNetworkAvailable', 'Unable to create the network. No tenant network is available for allocation.');
            }
            await tx.insertInto('network_vnis').values({ vni, network_id: id }).execute();
          } else {
            if (await tx.selectFrom('network_flat_physnets').select('network_id').where('physical_network', '=', physnet).executeTakeFirst()) {
              throw conflict('FlatNetworkInUse', `Unable to create the flat network. Physical network ${physnet} is in use.`);
            }
            await tx.insertInto('network_flat_physnets').values({ physical_network: physnet!, network_id: id }).execute();
          }
          if (b.is_default && b['router:external']) await checkDefault(tx, id);
          await tx.insertInto('network_networks').values({
            ...newStandard(id, projectId, b.description), name: b.name ?? '', admin_state_up: int(b.admin_state_up ?? true),
            shared: int(b.shared ?? false), external: int(b['router:external'] ?? false), mtu: b.mtu ?? maxMtu,
            port_security_enabled: int(b.port_security_enabled ?? true), status: 'ACTIVE', network_type: type,
            segmentation_id: vni, physical_network: type === 'flat' ? physnet : null, dns_domain: dnsDomain,
            availability_zone_hints: JSON.stringify(b.availability_zone_hints ?? []), is_default: int(b.is_default ?? false),
          }).execute();
        }), () => new NeutronError('Unavailable', 'NoNetworkAvailable', 'Unable to create the network. No tenant network is available for allocation.'));
        return id;
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/networks/:id', rule: 'update_network', schema: { body: UpdateBody },
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.network;
        const id = rc.params.id!;
        adminOnly(cred, 'update_network', b, [...ADMIN_ATTRS, 'is_default']);
        if (b.dns_domain !== undefined) checkDnsDomain(b.dns_domain);
        if (ADMIN_ATTRS.slice(2).some((a) => b[a] !== undefined)) throw invalidInput('Plugin does not support updating provider attributes');
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await networks.findOwn(cred, id, 'update_network', tx);
          const maxMtu = row.network_type === 'vxlan' ? cfg.vxlanMtu : cfg.flatMtu;
          if (b.mtu !== undefined && b.mtu > maxMtu) throw invalidInput(`Requested MTU is too big, maximum is ${maxMtu}`);
          if (b.shared === false && bool(row.shared)) {
            const others = await tx.selectFrom('network_ports').select('id').where('network_id', '=', id).where('project_id', '!=', row.project_id).executeTakeFirst();
            if (others) throw conflict('InvalidSharedSetting', `Unable to reconfigure sharing settings for network ${id}. Multiple tenants are using it.`);
          }
          await bumpRevision(tx, 'network_networks', id, expected, 'network');
          const set: Partial<NetworkRow> = {};
          if (b.name !== undefined) set.name = b.name;
          if (b.description !== undefined) set.description = b.description;
          if (b.admin_state_up !== undefined) set.admin_state_up = int(b.admin_state_up);
          if (b.shared !== undefined) set.shared = int(b.shared);
          if (b['router:external'] !== undefined) set.external = int(b['router:external']);
          if (b.mtu !== undefined) set.mtu = b.mtu;
          if (b.port_security_enabled !== undefined) set.port_security_enabled = int(b.port_security_enabled);
          if (b.dns_domain !== undefined) set.dns_domain = b.dns_domain;
          if (b.is_default !== undefined) set.is_default = int(b.is_default);
          if (b.is_default && (b['router:external'] ?? bool(row.external))) await checkDefault(tx, id);
          if (Object.keys(set).length) await tx.updateTable('network_networks').set(set).where('id', '=', id).execute();
        });
        return { network: await networks.view(cred, id) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/networks/:id', rule: 'delete_network', status: 204,
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        const expected = ifMatchRevision(rc);
        // one transaction: a network in use keeps everything it had
        await db.transaction().execute(async (tx) => {
          const row = await networks.findOwn(cred, id, 'delete_network', tx);
          if (expected !== null && row.revision_number !== expected) await bumpRevision(tx, 'network_networks', id, expected, 'network');
          // the network's own DHCP ports go with it (Neutron's auto-deleted owners), and so do the floating IPs
          // on it that serve nothing (no port association, no port forwarding); any other port keeps it
          const idle = await tx.selectFrom('network_floatingips').select(['id', 'floating_port_id']).where('floating_network_id', '=', id).where('port_id', 'is', null)
            .where((eb) => eb.not(eb.exists(eb.selectFrom('network_port_forwardings').select('id').whereRef('floatingip_id', '=', 'network_floatingips.id')))).execute();
          const idlePorts = idle.map((f) => f.floating_port_id as string);
          let others = tx.selectFrom('network_ports').select('id').where('network_id', '=', id).where('device_owner', '!=', DHCP_OWNER);
          if (idlePorts.length) others = others.where('id', 'not in', idlePorts);
          if (await others.executeTakeFirst()) throw networkInUse(id);
          if (idle.length) {
            await tx.deleteFrom('network_tags').where('resource_type', '=', 'floatingips').where('resource_id', 'in', idle.map((f) => f.id)).execute();
            await tx.deleteFrom('network_floatingips').where('id', 'in', idle.map((f) => f.id)).execute();
          }
          const dhcp = (await tx.selectFrom('network_ports').select('id').where('network_id', '=', id).execute()).map((r) => r.id);
          if (dhcp.length) {
            await tx.deleteFrom('network_ip_allocations').where('port_id', 'in', dhcp).execute();
            await tx.deleteFrom('network_port_security_groups').where('port_id', 'in', dhcp).execute();
            await tx.deleteFrom('network_tags').where('resource_type', '=', 'ports').where('resource_id', 'in', dhcp).execute();
            await tx.deleteFrom('network_ports').where('id', 'in', dhcp).execute();
          }
          await removeNetwork(tx, id);
        });
      },
    }),
  ];
}

