// Bare-metal tables (Ironic's model, 08xx). A node row holds what the API
// shows and what its conductor must make real: `version` is bumped on every
// change the conductor must act on (a new operation, a power or boot-device
// request, maintenance, driver_info), and the conductor's reports move
// provision_state on through states.ts. Dictionaries (driver_info,
// properties, instance_info, extra...) are JSON text; what lists filter or
// sort on has a column of its own.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export interface BaremetalTables {
  baremetal_nodes: {
    uuid: string;
    name: string | null;
    driver: string;
    /** JSON: driver_info, secrets in clear (never shown through the API). */
    driver_info: string;
    driver_internal_info: string;
    properties: string;
    instance_info: string;
    instance_uuid: string | null;
    extra: string;
    /** JSON: the interfaces of the node (boot_interface, deploy_interface, ...). */
    interfaces: string;
    provision_state: string;
    target_provision_state: string | null;
    provision_updated_at: string | null;
    power_state: string | null;
    target_power_state: string | null;
    last_error: string | null;
    maintenance: number;
    maintenance_reason: string | null;
    fault: string | null;
    resource_class: string | null;
    owner: string | null;
    lessee: string | null;
    description: string | null;
    conductor_group: string;
    /** The conductor (agent hostname) the node is placed on; null while none serves its driver. */
    conductor: string | null;
    /** The conductor holding the node's lock while an operation runs (Ironic's reservation). */
    reservation: string | null;
    automated_clean: number | null;
    protected: number;
    protected_reason: string | null;
    retired: number;
    retired_reason: string | null;
    network_data: string;
    boot_mode: string | null;
    secure_boot: number | null;
    console_enabled: number;
    chassis_uuid: string | null;
    allocation_uuid: string | null;
    clean_step: string;
    deploy_step: string;
    raid_config: string;
    target_raid_config: string;
    inspection_started_at: string | null;
    inspection_finished_at: string | null;
    /** JSON NodeOperation (protocol.ts) in progress, or null. */
    operation: string | null;
    /** JSON {target, seq, timeout_s}: the last power request; null before any. */
    power_request: string | null;
    /** JSON {device, persistent, seq}: the last boot device request; null before any. */
    boot_device_request: string | null;
    /** The last power / boot device seq the conductor reported done. */
    power_seq_done: number;
    boot_device_seq_done: number;
    /** JSON ProvisioningNetwork (protocol.ts) while an operation needs one. */
    provisioning: string | null;
    version: number;
    created_at: string;
    updated_at: string | null;
  };
  baremetal_node_traits: { node_uuid: string; trait: string };
  baremetal_ports: {
    uuid: string; address: string; node_uuid: string; portgroup_uuid: string | null;
    pxe_enabled: number; physical_network: string | null; local_link_connection: string; extra: string; internal_info: string;
    is_smartnic: number; created_at: string; updated_at: string | null;
  };
  baremetal_portgroups: {
    uuid: string; name: string | null; address: string | null; node_uuid: string; mode: string | null; properties: string; extra: string;
    internal_info: string; standalone_ports_supported: number; created_at: string; updated_at: string | null;
  };
  baremetal_allocations: {
    uuid: string; name: string | null; node_uuid: string | null; state: string; last_error: string | null; resource_class: string;
    traits: string; candidate_nodes: string; extra: string; owner: string | null; created_at: string; updated_at: string | null;
  };
  baremetal_node_history: {
    uuid: string; node_uuid: string; event: string; event_type: string; severity: string; user: string | null; conductor: string | null;
    created_at: string;
  };
  baremetal_chassis: { uuid: string; description: string | null; extra: string; created_at: string; updated_at: string | null };
  /** The agents that registered the `baremetal_node` kind (Ironic's conductors), heard at each heartbeat. */
  baremetal_conductors: {
    hostname: string; drivers: string; conductor_group: string; address: string | null; http_port: number | null; tftp: number;
    created_at: string; last_seen_at: string;
  };
}

const text = 'text' as const;

export const baremetalMigrations: Record<string, Migration> = {
  '0801_baremetal': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('baremetal_nodes')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.unique())
        .addColumn('driver', text, (c) => c.notNull())
        .addColumn('driver_info', text, (c) => c.notNull()).addColumn('driver_internal_info', text, (c) => c.notNull())
        .addColumn('properties', text, (c) => c.notNull()).addColumn('instance_info', text, (c) => c.notNull())
        .addColumn('instance_uuid', text, (c) => c.unique()).addColumn('extra', text, (c) => c.notNull())
        .addColumn('interfaces', text, (c) => c.notNull())
        .addColumn('provision_state', text, (c) => c.notNull()).addColumn('target_provision_state', text).addColumn('provision_updated_at', text)
        .addColumn('power_state', text).addColumn('target_power_state', text).addColumn('last_error', text)
        .addColumn('maintenance', 'integer', (c) => c.notNull()).addColumn('maintenance_reason', text).addColumn('fault', text)
        .addColumn('resource_class', text).addColumn('owner', text).addColumn('lessee', text).addColumn('description', text)
        .addColumn('conductor_group', text, (c) => c.notNull()).addColumn('conductor', text).addColumn('reservation', text)
        .addColumn('automated_clean', 'integer').addColumn('protected', 'integer', (c) => c.notNull()).addColumn('protected_reason', text)
        .addColumn('retired', 'integer', (c) => c.notNull()).addColumn('retired_reason', text)
        .addColumn('network_data', text, (c) => c.notNull()).addColumn('boot_mode', text).addColumn('secure_boot', 'integer')
        .addColumn('console_enabled', 'integer', (c) => c.notNull()).addColumn('chassis_uuid', text).addColumn('allocation_uuid', text)
        .addColumn('clean_step', text, (c) => c.notNull()).addColumn('deploy_step', text, (c) => c.notNull())
        .addColumn('raid_config', text, (c) => c.notNull()).addColumn('target_raid_config', text, (c) => c.notNull())
        .addColumn('inspection_started_at', text).addColumn('inspection_finished_at', text)
        .addColumn('operation', text).addColumn('power_request', text).addColumn('boot_device_request', text)
        .addColumn('power_seq_done', 'integer', (c) => c.notNull()).addColumn('boot_device_seq_done', 'integer', (c) => c.notNull())
        .addColumn('provisioning', text)
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text)
        .execute();
      await db.schema.createIndex('baremetal_nodes_conductor').on('baremetal_nodes').column('conductor').execute();
      await db.schema.createIndex('baremetal_nodes_state').on('baremetal_nodes').column('provision_state').execute();
      await db.schema.createTable('baremetal_node_traits')
        .addColumn('node_uuid', text, (c) => c.notNull()).addColumn('trait', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('baremetal_node_traits_pk', ['node_uuid', 'trait']).execute();
      await db.schema.createTable('baremetal_ports')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('address', text, (c) => c.notNull().unique())
        .addColumn('node_uuid', text, (c) => c.notNull()).addColumn('portgroup_uuid', text)
        .addColumn('pxe_enabled', 'integer', (c) => c.notNull()).addColumn('physical_network', text)
        .addColumn('local_link_connection', text, (c) => c.notNull()).addColumn('extra', text, (c) => c.notNull())
        .addColumn('internal_info', text, (c) => c.notNull()).addColumn('is_smartnic', 'integer', (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text)
        .execute();
      await db.schema.createIndex('baremetal_ports_node').on('baremetal_ports').column('node_uuid').execute();
      await db.schema.createTable('baremetal_portgroups')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.unique()).addColumn('address', text, (c) => c.unique())
        .addColumn('node_uuid', text, (c) => c.notNull()).addColumn('mode', text)
        .addColumn('properties', text, (c) => c.notNull()).addColumn('extra', text, (c) => c.notNull()).addColumn('internal_info', text, (c) => c.notNull())
        .addColumn('standalone_ports_supported', 'integer', (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text)
        .execute();
      await db.schema.createTable('baremetal_allocations')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.unique()).addColumn('node_uuid', text)
        .addColumn('state', text, (c) => c.notNull()).addColumn('last_error', text).addColumn('resource_class', text, (c) => c.notNull())
        .addColumn('traits', text, (c) => c.notNull()).addColumn('candidate_nodes', text, (c) => c.notNull()).addColumn('extra', text, (c) => c.notNull())
        .addColumn('owner', text)
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text)
        .execute();
      await db.schema.createTable('baremetal_node_history')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('node_uuid', text, (c) => c.notNull())
        .addColumn('event', text, (c) => c.notNull()).addColumn('event_type', text, (c) => c.notNull()).addColumn('severity', text, (c) => c.notNull())
        .addColumn('user', text).addColumn('conductor', text).addColumn('created_at', text, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('baremetal_node_history_node').on('baremetal_node_history').columns(['node_uuid', 'created_at']).execute();
      await db.schema.createTable('baremetal_chassis')
        .addColumn('uuid', text, (c) => c.primaryKey()).addColumn('description', text).addColumn('extra', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text)
        .execute();
      await db.schema.createTable('baremetal_conductors')
        .addColumn('hostname', text, (c) => c.primaryKey()).addColumn('drivers', text, (c) => c.notNull())
        .addColumn('conductor_group', text, (c) => c.notNull()).addColumn('address', text).addColumn('http_port', 'integer')
        .addColumn('tftp', 'integer', (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('last_seen_at', text, (c) => c.notNull())
        .execute();
    },
  },
};
