// Network tables (Neutron's model). Every resource row carries the standard
// attributes (project_id, description, revision_number, created_at,
// updated_at); tags of any resource live in network_tags. IP allocations are
// rows of their own keyed by (subnet, address), and MACs are unique per
// network, so the database itself refuses an address given twice; routers and
// floating IPs reference ports and subnets by id and take their
// addresses through the same allocation rows.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

interface Standard { id: string; project_id: string; description: string; revision_number: number; created_at: string; updated_at: string }

export interface NetworkTables {
  network_networks: Standard & {
    name: string; admin_state_up: number; shared: number; external: number; mtu: number; port_security_enabled: number;
    status: string; network_type: string; segmentation_id: number | null; physical_network: string | null;
    dns_domain: string; availability_zone_hints: string;
    /** auto-allocated-topology: the default external network. */
    is_default: number;
  };
  /** One row per VXLAN VNI in use (the network's or an admin's explicit one): the primary key keeps it given once. */
  network_vnis: { vni: number; network_id: string };
  /** One row per flat physical network in use. */
  network_flat_physnets: { physical_network: string; network_id: string };
  network_subnets: Standard & {
    network_id: string; name: string; ip_version: number; cidr: string; gateway_ip: string | null; enable_dhcp: number;
    ipv6_ra_mode: string | null; ipv6_address_mode: string | null;
    /** JSON: [{start, end}], [address], [{destination, nexthop}], [type]. */
    allocation_pools: string; dns_nameservers: string; host_routes: string; service_types: string;
    subnetpool_id: string | null;
    /** Bumped first by every allocation on the subnet: the row lock (PostgreSQL) or write lock (SQLite) orders allocators. */
    ipam_generation: number;
  };
  network_ports: Standard & {
    network_id: string; name: string; mac_address: string; admin_state_up: number; status: string;
    device_id: string; device_owner: string; port_security_enabled: number;
    /** JSON [{ip_address, mac_address}]. */
    allowed_address_pairs: string;
    binding_host_id: string; binding_vnic_type: string; binding_vif_type: string;
    /** JSON objects. */
    binding_profile: string; binding_vif_details: string;
    dns_name: string;
    /** A server's port: its interface's index (eth<n>), kept while bound to the device; unique per device (interface-index.ts). */
    interface_index: number | null;
    /** extra_dhcp_opt: JSON [{opt_name, opt_value, ip_version}], one per (opt_name, ip_version). */
    extra_dhcp_opts: string;
  };
  /** An address given to a port on a subnet; unique per subnet (and per network through the subnet). */
  network_ip_allocations: { subnet_id: string; ip_address: string; network_id: string; port_id: string };
  network_port_security_groups: { port_id: string; security_group_id: string };
  network_security_groups: Standard & { name: string; stateful: number };
  /** The project's default group, once per project (the primary key keeps a concurrent twin out). */
  network_default_security_groups: { project_id: string; security_group_id: string };
  network_security_group_rules: Standard & {
    security_group_id: string; direction: string; ethertype: string; protocol: string | null;
    port_range_min: number | null; port_range_max: number | null; remote_ip_prefix: string | null;
    remote_group_id: string | null; remote_address_group_id: string | null;
  };
  network_address_groups: Standard & { name: string; addresses: string };
  network_tags: { resource_type: string; resource_id: string; tag: string };
  /** Neutron's RBAC policies: a network shared with (or made external to) one project or '*'. */
  network_rbac_policies: {
    id: string; project_id: string; object_type: string; object_id: string; action: string; target_project: string;
    created_at: string; updated_at: string;
  };
  network_subnetpools: Standard & {
    name: string; ip_version: number; prefixes: string; default_prefixlen: number; min_prefixlen: number; max_prefixlen: number;
    shared: number; is_default: number; default_quota: number | null;
    /** Bumped first by every subnet allocation from the pool (its lock). */
    ipam_generation: number;
  };
  /** Routers (l3): the gateway is a `network:router_gateway` port, interfaces are `network:router_interface` ports (device_id the router). */
  network_routers: Standard & {
    name: string; admin_state_up: number; status: string;
    gw_network_id: string | null; gw_port_id: string | null; enable_snat: number;
    /** JSON [{destination, nexthop}] (extraroute). */
    routes: string;
    /** The host whose agent serves the router ('' until one is chosen). */
    host: string;
  };
  /** Floating IPs: the address is the fixed IP of a `network:floatingip` port on the external network. */
  network_floatingips: Standard & {
    floating_network_id: string; floating_port_id: string; floating_ip_address: string; subnet_id: string;
    port_id: string | null; fixed_ip_address: string | null; router_id: string | null; status: string;
  };
  network_port_forwardings: {
    id: string; floatingip_id: string; protocol: string; external_port: number;
    internal_port_id: string; internal_ip_address: string; internal_port: number; description: string;
  };
  /** A project's auto-allocated topology (auto-allocated-topology): once per project. */
  network_auto_allocated_topologies: { project_id: string; network_id: string; router_id: string };
  /** A project's limit per resource where it is not the default. */
  network_quotas: { project_id: string; resource: string; limit: number };
}

const text = 'text' as const;

/** The standard attributes' columns, first in every resource table. */
function standard<T extends string>(t: import('kysely').CreateTableBuilder<T, any>) {
  return t.addColumn('id', text, (c) => c.primaryKey()).addColumn('project_id', text, (c) => c.notNull())
    .addColumn('description', text, (c) => c.notNull().defaultTo('')).addColumn('revision_number', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull());
}

export const networkMigrations: Record<string, Migration> = {
  '0300_network': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await standard(s.createTable('network_networks'))
        .addColumn('name', text, (c) => c.notNull().defaultTo('')).addColumn('admin_state_up', 'integer', (c) => c.notNull())
        .addColumn('shared', 'integer', (c) => c.notNull()).addColumn('external', 'integer', (c) => c.notNull())
        .addColumn('mtu', 'integer', (c) => c.notNull()).addColumn('port_security_enabled', 'integer', (c) => c.notNull())
        .addColumn('status', text, (c) => c.notNull()).addColumn('network_type', text, (c) => c.notNull())
        .addColumn('segmentation_id', 'integer').addColumn('physical_network', text)
        .addColumn('dns_domain', text, (c) => c.notNull().defaultTo('')).addColumn('availability_zone_hints', text, (c) => c.notNull().defaultTo('[]'))
        .execute();
      await s.createIndex('network_networks_project').on('network_networks').column('project_id').execute();
      await s.createTable('network_vnis').addColumn('vni', 'integer', (c) => c.primaryKey()).addColumn('network_id', text, (c) => c.notNull()).execute();
      await s.createTable('network_flat_physnets').addColumn('physical_network', text, (c) => c.primaryKey()).addColumn('network_id', text, (c) => c.notNull()).execute();
      await standard(s.createTable('network_subnets'))
        .addColumn('network_id', text, (c) => c.notNull()).addColumn('name', text, (c) => c.notNull().defaultTo(''))
        .addColumn('ip_version', 'integer', (c) => c.notNull()).addColumn('cidr', text, (c) => c.notNull()).addColumn('gateway_ip', text)
        .addColumn('enable_dhcp', 'integer', (c) => c.notNull()).addColumn('ipv6_ra_mode', text).addColumn('ipv6_address_mode', text)
        .addColumn('allocation_pools', text, (c) => c.notNull()).addColumn('dns_nameservers', text, (c) => c.notNull())
        .addColumn('host_routes', text, (c) => c.notNull()).addColumn('service_types', text, (c) => c.notNull().defaultTo('[]'))
        .addColumn('subnetpool_id', text).addColumn('ipam_generation', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await s.createIndex('network_subnets_network').on('network_subnets').column('network_id').execute();
      await standard(s.createTable('network_ports'))
        .addColumn('network_id', text, (c) => c.notNull()).addColumn('name', text, (c) => c.notNull().defaultTo(''))
        .addColumn('mac_address', text, (c) => c.notNull()).addColumn('admin_state_up', 'integer', (c) => c.notNull())
        .addColumn('status', text, (c) => c.notNull()).addColumn('device_id', text, (c) => c.notNull().defaultTo(''))
        .addColumn('device_owner', text, (c) => c.notNull().defaultTo('')).addColumn('port_security_enabled', 'integer', (c) => c.notNull())
        .addColumn('allowed_address_pairs', text, (c) => c.notNull().defaultTo('[]'))
        .addColumn('binding_host_id', text, (c) => c.notNull().defaultTo('')).addColumn('binding_vnic_type', text, (c) => c.notNull())
        .addColumn('binding_vif_type', text, (c) => c.notNull()).addColumn('binding_profile', text, (c) => c.notNull().defaultTo('{}'))
        .addColumn('binding_vif_details', text, (c) => c.notNull().defaultTo('{}')).addColumn('dns_name', text, (c) => c.notNull().defaultTo(''))
        .addUniqueConstraint('network_ports_mac_unique', ['network_id', 'mac_address'])
        .execute();
      await s.createIndex('network_ports_device').on('network_ports').column('device_id').execute();
      await s.createTable('network_ip_allocations')
        .addColumn('subnet_id', text, (c) => c.notNull()).addColumn('ip_address', text, (c) => c.notNull())
        .addColumn('network_id', text, (c) => c.notNull()).addColumn('port_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('network_ip_allocations_pk', ['subnet_id', 'ip_address']).execute();
      await s.createIndex('network_ip_allocations_port').on('network_ip_allocations').column('port_id').execute();
      await s.createTable('network_port_security_groups')
        .addColumn('port_id', text, (c) => c.notNull()).addColumn('security_group_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('network_port_security_groups_pk', ['port_id', 'security_group_id']).execute();
      await s.createIndex('network_port_security_groups_group').on('network_port_security_groups').column('security_group_id').execute();
      await standard(s.createTable('network_security_groups'))
        .addColumn('name', text, (c) => c.notNull().defaultTo('')).addColumn('stateful', 'integer', (c) => c.notNull()).execute();
      await s.createTable('network_default_security_groups')
        .addColumn('project_id', text, (c) => c.primaryKey()).addColumn('security_group_id', text, (c) => c.notNull()).execute();
      await standard(s.createTable('network_security_group_rules'))
        .addColumn('security_group_id', text, (c) => c.notNull()).addColumn('direction', text, (c) => c.notNull())
        .addColumn('ethertype', text, (c) => c.notNull()).addColumn('protocol', text)
        .addColumn('port_range_min', 'integer').addColumn('port_range_max', 'integer').addColumn('remote_ip_prefix', text)
        .addColumn('remote_group_id', text).addColumn('remote_address_group_id', text).execute();
      await s.createIndex('network_security_group_rules_group').on('network_security_group_rules').column('security_group_id').execute();
      await standard(s.createTable('network_address_groups'))
        .addColumn('name', text, (c) => c.notNull().defaultTo('')).addColumn('addresses', text, (c) => c.notNull().defaultTo('[]')).execute();
      await s.createTable('network_tags')
        .addColumn('resource_type', text, (c) => c.notNull()).addColumn('resource_id', text, (c) => c.notNull()).addColumn('tag', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('network_tags_pk', ['resource_type', 'resource_id', 'tag']).execute();
      await s.createTable('network_quotas')
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('resource', text, (c) => c.notNull()).addColumn('limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('network_quotas_pk', ['project_id', 'resource']).execute();
    },
  },
  '0301_network_rbac': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('network_rbac_policies')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('project_id', text, (c) => c.notNull())
        .addColumn('object_type', text, (c) => c.notNull()).addColumn('object_id', text, (c) => c.notNull())
        .addColumn('action', text, (c) => c.notNull()).addColumn('target_project', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addUniqueConstraint('network_rbac_policies_unique', ['object_type', 'object_id', 'action', 'target_project'])
        .execute();
      await db.schema.createIndex('network_rbac_policies_target').on('network_rbac_policies').column('target_project').execute();
    },
  },
  '0302_network_subnetpools': {
    async up(db: Kysely<any>) {
      await standard(db.schema.createTable('network_subnetpools'))
        .addColumn('name', text, (c) => c.notNull().defaultTo('')).addColumn('ip_version', 'integer', (c) => c.notNull())
        .addColumn('prefixes', text, (c) => c.notNull()).addColumn('default_prefixlen', 'integer', (c) => c.notNull())
        .addColumn('min_prefixlen', 'integer', (c) => c.notNull()).addColumn('max_prefixlen', 'integer', (c) => c.notNull())
        .addColumn('shared', 'integer', (c) => c.notNull()).addColumn('is_default', 'integer', (c) => c.notNull())
        .addColumn('default_quota', 'integer').addColumn('ipam_generation', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.createIndex('network_subnets_subnetpool').on('network_subnets').column('subnetpool_id').execute();
    },
  },
  '0303_network_l3': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.alterTable('network_networks').addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await standard(s.createTable('network_routers'))
        .addColumn('name', text, (c) => c.notNull().defaultTo('')).addColumn('admin_state_up', 'integer', (c) => c.notNull())
        .addColumn('status', text, (c) => c.notNull()).addColumn('gw_network_id', text).addColumn('gw_port_id', text)
        .addColumn('enable_snat', 'integer', (c) => c.notNull().defaultTo(1)).addColumn('routes', text, (c) => c.notNull().defaultTo('[]'))
        .addColumn('host', text, (c) => c.notNull().defaultTo('')).execute();
      await s.createIndex('network_routers_project').on('network_routers').column('project_id').execute();
      await standard(s.createTable('network_floatingips'))
        .addColumn('floating_network_id', text, (c) => c.notNull()).addColumn('floating_port_id', text, (c) => c.notNull())
        .addColumn('floating_ip_address', text, (c) => c.notNull()).addColumn('subnet_id', text, (c) => c.notNull())
        .addColumn('port_id', text).addColumn('fixed_ip_address', text).addColumn('router_id', text)
        .addColumn('status', text, (c) => c.notNull())
        // one floating IP per fixed address (Neutron's FloatingIPPortAlreadyAssociated), kept by the database
        .addUniqueConstraint('network_floatingips_fixed_unique', ['port_id', 'fixed_ip_address'])
        .execute();
      await s.createIndex('network_floatingips_router').on('network_floatingips').column('router_id').execute();
      await s.createTable('network_port_forwardings')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('floatingip_id', text, (c) => c.notNull())
        .addColumn('protocol', text, (c) => c.notNull()).addColumn('external_port', 'integer', (c) => c.notNull())
        .addColumn('internal_port_id', text, (c) => c.notNull()).addColumn('internal_ip_address', text, (c) => c.notNull())
        .addColumn('internal_port', 'integer', (c) => c.notNull()).addColumn('description', text, (c) => c.notNull().defaultTo(''))
        .addUniqueConstraint('network_port_forwardings_external', ['floatingip_id', 'protocol', 'external_port'])
        .addUniqueConstraint('network_port_forwardings_internal', ['internal_port_id', 'internal_ip_address', 'protocol', 'internal_port'])
        .execute();
      await s.createTable('network_auto_allocated_topologies')
        .addColumn('project_id', text, (c) => c.primaryKey()).addColumn('network_id', text, (c) => c.notNull())
        .addColumn('router_id', text, (c) => c.notNull()).execute();
    },
  },
  '0304_network_port_interface_index': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('network_ports').addColumn('interface_index', 'integer').execute();
      // NULLs are distinct: ports that are no server's interface have none
      await db.schema.createIndex('network_ports_device_interface').on('network_ports').columns(['device_id', 'interface_index']).unique().execute();
    },
  },
  '0305_network_port_extra_dhcp_opts': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('network_ports').addColumn('extra_dhcp_opts', text, (c) => c.notNull().defaultTo('[]')).execute();
    },
  },
};
