// Compute tables. This is the contract between the compute API (which records
// intent), the scheduler (which places servers on hosts) and the host agents
// (which converge their host and report what they observe).
//
// Lifecycle of a server row:
//   API create      -> vm_state 'building', task_state 'scheduling', host null
//   scheduler       -> host set + allocation claimed, task_state 'spawning'
//   agent           -> vm_state 'active', power_state 1, task_state null, launched_at
//   API action      -> sets desired_power / bumps reboot_seq / rebuild_seq and task_state
//                      ('powering-off', 'rebooting', ...); bumps version
//   agent           -> converges, reports power_state, clears task_state
//   API delete      -> task_state 'deleting', deleted_at stays null until the agent
//                      reports the host clean; then the row is soft-deleted
//                      (vm_state 'deleted', deleted_at) and the allocation released.
// Every change an agent must act on bumps `version`; agents watch their host's
// servers by version.
import type { Generated, Kysely, Selectable } from 'kysely';
import type { Migration } from 'kysely/migration';
import { autoId } from '../db/migration-helpers.ts';

export const PowerState = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const;
export type DesiredPower = 'running' | 'stopped' | 'paused' | 'suspended';

export interface ComputeTables {
  compute_flavors: {
    id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number;
    rxtx_factor: number; is_public: number; disabled: number; description: string | null; created_at: string; deleted_at: string | null;
  };
  compute_flavor_extra_specs: { flavor_id: string; key: string; value: string };
  compute_flavor_access: { flavor_id: string; project_id: string };
  compute_keypairs: {
    id: Generated<number>; name: string; user_id: string; type: string; public_key: string; fingerprint: string; created_at: string;
  };
  compute_servers: {
    id: string; name: string; project_id: string; user_id: string;
    image_id: string | null; flavor_id: string;
    /** The flavor as it was at boot (JSON: id, name, vcpus, ram, disk, ephemeral, swap, extra_specs). */
    flavor: string;
    /** 'container' | 'vm' | 'baremetal': the kind of host this server needs. */
    kind: string;
    key_name: string | null; key_data: string | null;
    /** Base64, as given. */
    user_data: string | null;
    availability_zone: string | null; hostname: string; description: string | null;
    host: string | null;
    vm_state: string; task_state: string | null; power_state: number;
    desired_power: string;
    reboot_seq: number; reboot_type: string | null; rebuild_seq: number;
    locked: number; locked_reason: string | null; config_drive: string;
    access_ipv4: string; access_ipv6: string;
    /** JSON {code, message, details, created} when the server is in ERROR. */
    fault: string | null;
    server_group_id: string | null; reservation_id: string; launch_index: number;
    schedule_attempts: number;
    /** Hosts that failed to build this server (JSON list), skipped when rescheduling. */
    failed_hosts: string;
    version: number;
    launched_at: string | null; terminated_at: string | null;
    created_at: string; updated_at: string; deleted_at: string | null;
  };
  compute_server_metadata: { server_id: string; key: string; value: string };
  compute_server_tags: { server_id: string; tag: string };
  compute_instance_actions: {
    id: Generated<number>; request_id: string; server_id: string; action: string; project_id: string; user_id: string;
    start_time: string; finish_time: string | null; message: string | null;
  };
  compute_instance_action_events: {
    id: Generated<number>; action_id: number; event: string; start_time: string; finish_time: string | null;
    result: string | null; traceback: string | null; host: string | null;
  };
  compute_server_groups: { id: string; name: string; project_id: string; user_id: string; policy: string; rules: string; created_at: string };
  compute_server_group_members: { group_id: string; server_id: string };
  /** A host agent: a hypervisor in os-hypervisors, a nova-compute service in os-services. */
  compute_hosts: {
    id: string; hostname: string; service_id: string; kinds: string;
    vcpus: number; memory_mb: number; disk_gb: number;
    cpu_allocation_ratio: number; ram_allocation_ratio: number; disk_allocation_ratio: number;
    availability_zone: string; status: string; disabled_reason: string | null; forced_down: number;
    host_ip: string; agent_version: string; last_seen_at: string; created_at: string;
    /** A host running VMs (0107): its registered hypervisor (fleet protocol Hypervisor); null on a container-only host. */
    hypervisor_type: string | null; hypervisor_accel: string | null; hypervisor_version: string | null;
  };
  /** Resources claimed on a host by a server; claimed in the same transaction that places it. */
  /** Work the API asks of an agent beyond the desired state: snapshots, console output. */
  compute_server_requests: {
    id: string; server_id: string; host: string | null; kind: string; args: string; status: string; result: string | null;
    created_at: string; updated_at: string;
    /**
     * The resource the host acts on when it is not the server itself (0112):
     * a bare-metal server's node (`baremetal_node`, its conductor answers);
     * null: the server (`server`).
     */
    resource_kind: string | null; resource_id: string | null;
  };
  compute_quotas: { project_id: string; resource: string; hard_limit: number };
}

/**
 * Columns and tables the compute API adds for its own bookkeeping (0101);
 * nullable or defaulted, so the scheduler's and agents' writes need not know them.
 */
export interface ComputeApiTables {
  compute_servers: {
    /** 'owner' | 'admin' when locked (who may unlock). */
    locked_by: string | null;
    /** JSON list of trusted image certificate ids (2.63), or null. */
    trusted_certs: string | null;
    /** JSON object of the scheduler hints given at create. */
    scheduler_hints: Generated<string>;
    /** JSON list of requested security group names. */
    security_groups: Generated<string>;
    /** JSON: 'auto' | 'none' | list of requested networks; the ports are made from it at create; the ports the user named are kept at delete. */
    requested_networks: string | null;
    /** Admin's requested host (2.74, or az:host), honoured by the scheduler when set. */
    requested_host: string | null;
    /** The availability zone asked for at create (Nova's pinned_availability_zone), or null. */
    requested_az: string | null;
    /** OS-DCF:diskConfig as asked: 'AUTO' or 'MANUAL'. */
    disk_config: Generated<string>;
    /** The flavor's vCPUs and RAM (MB), so quota usage is a SUM. */
    vcpus: Generated<number>;
    memory_mb: Generated<number>;
    /** The shelve snapshot (Nova's system_metadata shelved_image_id) while the server is shelved or unshelving (0109). */
    shelved_image_id: string | null;
    /**
     * The image the server's disk was made from when it is not `image_id`
     * (an unshelved server: its shelve snapshot, kept as the agent's AgentImage
     * JSON since the snapshot is deleted once the server runs again); null
     * otherwise. A rebuild clears it (0109).
     */
    disk_image: string | null;
    /**
     * The image a rescued server boots from (the agent's AgentImage JSON)
     * while it is rescuing or rescued; null otherwise (0110).
     */
    rescue_image: string | null;
    /**
     * A bare-metal server's node (Nova's instance.node: the Ironic node's
     * uuid, its hypervisor_hostname); null for other kinds and while unplaced (0111).
     */
    node: string | null;
  };
  compute_instance_actions: { updated_at: string | null };
  compute_instance_action_events: { details: string | null };
  /**
   * Nova's migrations (0109): a resize (or, later, a cold or live migration) of
   * a server. While a resize waits for confirmation the migration's `uuid` is
   * the placement consumer holding the old flavor's resources on the source
   * host (Nova's move_allocations); confirm releases them, revert gives them
   * back to the server.
   */
  compute_migrations: {
    id: Generated<number>; uuid: string; server_id: string; project_id: string; user_id: string;
    /** 'resize' | 'migration' | 'live-migration' | 'evacuation'. */
    migration_type: string;
    /** pre-migrating, migrating, post-migrating, finished (VERIFY_RESIZE), confirming, confirmed, reverting, reverted, error. */
    status: string;
    source_compute: string | null; dest_compute: string | null; source_node: string | null; dest_node: string | null; dest_host: string | null;
    /** The flavors' JSON as the server embeds them. */
    old_flavor: string; new_flavor: string;
    /** The vm_state before the resize ('active' | 'stopped'): what confirm and revert go back to. */
    old_vm_state: string;
    created_at: string; updated_at: string;
    /**
     * A move to another host (0113): the image the source's disk is copied
     * through (the agent's image record, JSON; a hidden snapshot, deleted at
     * confirm or revert), and the server's `disk_image` before the move (what
     * its source host still runs from; a revert puts it back).
     */
    disk_image: string | null; old_disk_image: string | null;
    /** A live migration's progress (0114): the source's last LiveMigrationProgress (JSON; bytes of memory and disks), null before any. */
    progress: Generated<string | null>;
  };
  /** One-off markers (e.g. default flavors seeded). */
  compute_meta: { key: string; value: string };
  /** Integer ids of hosts, for services and hypervisors before microversion 2.53. */
  compute_host_numbers: { id: Generated<number>; host_id: string };
  /** Host aggregates; one with an availability_zone key puts its hosts in that zone (compute_hosts.availability_zone). */
  compute_aggregates: { id: Generated<number>; uuid: string; name: string; created_at: string; updated_at: string | null };
  compute_aggregate_hosts: { aggregate_id: number; hostname: string };
  compute_aggregate_metadata: { aggregate_id: number; key: string; value: string };
  /** Console auth tokens (Nova's console_auth_tokens): only the SHA-256 of the token is kept; valid until expires_at. */
  compute_console_auth_tokens: {
    token_hash: string; console_type: string; server_id: string; host: string; expires_at: string; created_at: string;
  };
  /**
   * A volume attached to a server (Nova's block_device_mapping, destination
   * volume; 0108): `id` is Nova's bdm uuid, `attachment_id` the Cinder
   * attachment. status: attaching (until the server's host reports it
   * attached), attached, detaching (until the host reports it gone).
   */
  compute_block_device_mappings: {
    id: string; server_id: string; volume_id: string; attachment_id: string; device_name: string; tag: string | null;
    delete_on_termination: number; boot_index: number | null; status: string; created_at: string; updated_at: string;
  };
}

/**
 * A server row as read (the scheduler's and agents' columns and the API's):
 * the one type the API, the engine and the store share.
 */
export type ServerRow = Selectable<ComputeTables['compute_servers'] & ComputeApiTables['compute_servers']>;
export type HostRow = Selectable<ComputeTables['compute_hosts']>;

const text = 'text' as const;

export const computeMigrations: Record<string, Migration> = {
  '0100_compute': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('compute_flavors')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull()).addColumn('ram', 'integer', (c) => c.notNull())
        .addColumn('disk', 'integer', (c) => c.notNull()).addColumn('ephemeral', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('swap', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('rxtx_factor', 'real', (c) => c.notNull().defaultTo(1))
        .addColumn('is_public', 'integer', (c) => c.notNull().defaultTo(1)).addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('description', text).addColumn('created_at', text, (c) => c.notNull()).addColumn('deleted_at', text).execute();
      await s.createTable('compute_flavor_extra_specs')
        .addColumn('flavor_id', text, (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_flavor_extra_specs_pk', ['flavor_id', 'key']).execute();
      await s.createTable('compute_flavor_access')
        .addColumn('flavor_id', text, (c) => c.notNull()).addColumn('project_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_flavor_access_pk', ['flavor_id', 'project_id']).execute();
      await autoId(db, s.createTable('compute_keypairs'))
        .addColumn('name', text, (c) => c.notNull()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('type', text, (c) => c.notNull()).addColumn('public_key', text, (c) => c.notNull())
        .addColumn('fingerprint', text, (c) => c.notNull()).addColumn('created_at', text, (c) => c.notNull())
        .addUniqueConstraint('compute_keypairs_user_name', ['user_id', 'name']).execute();
      await s.createTable('compute_servers')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('image_id', text).addColumn('flavor_id', text, (c) => c.notNull()).addColumn('flavor', text, (c) => c.notNull())
        .addColumn('kind', text, (c) => c.notNull()).addColumn('key_name', text).addColumn('key_data', text).addColumn('user_data', text)
        .addColumn('availability_zone', text).addColumn('hostname', text, (c) => c.notNull()).addColumn('description', text)
        .addColumn('host', text).addColumn('vm_state', text, (c) => c.notNull()).addColumn('task_state', text)
        .addColumn('power_state', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('desired_power', text, (c) => c.notNull())
        .addColumn('reboot_seq', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('reboot_type', text)
        .addColumn('rebuild_seq', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('locked_reason', text)
        .addColumn('config_drive', text, (c) => c.notNull().defaultTo('')).addColumn('access_ipv4', text, (c) => c.notNull().defaultTo(''))
        .addColumn('access_ipv6', text, (c) => c.notNull().defaultTo('')).addColumn('fault', text)
        .addColumn('server_group_id', text).addColumn('reservation_id', text, (c) => c.notNull())
        .addColumn('launch_index', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('schedule_attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed_hosts', text, (c) => c.notNull().defaultTo('[]'))
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('launched_at', text).addColumn('terminated_at', text)
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull()).addColumn('deleted_at', text).execute();
      await s.createIndex('compute_servers_project').on('compute_servers').column('project_id').execute();
      await s.createIndex('compute_servers_host_version').on('compute_servers').columns(['host', 'version']).execute();
      await s.createTable('compute_server_metadata')
        .addColumn('server_id', text, (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_server_metadata_pk', ['server_id', 'key']).execute();
      await s.createTable('compute_server_tags')
        .addColumn('server_id', text, (c) => c.notNull()).addColumn('tag', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_server_tags_pk', ['server_id', 'tag']).execute();
      await autoId(db, s.createTable('compute_instance_actions'))
        .addColumn('request_id', text, (c) => c.notNull()).addColumn('server_id', text, (c) => c.notNull())
        .addColumn('action', text, (c) => c.notNull()).addColumn('project_id', text, (c) => c.notNull())
        .addColumn('user_id', text, (c) => c.notNull()).addColumn('start_time', text, (c) => c.notNull())
        .addColumn('finish_time', text).addColumn('message', text).execute();
      await s.createIndex('compute_instance_actions_server').on('compute_instance_actions').column('server_id').execute();
      await autoId(db, s.createTable('compute_instance_action_events'))
        .addColumn('action_id', 'integer', (c) => c.notNull()).addColumn('event', text, (c) => c.notNull())
        .addColumn('start_time', text, (c) => c.notNull()).addColumn('finish_time', text).addColumn('result', text)
        .addColumn('traceback', text).addColumn('host', text).execute();
      await s.createTable('compute_server_groups')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('policy', text, (c) => c.notNull()).addColumn('rules', text, (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createTable('compute_server_group_members')
        .addColumn('group_id', text, (c) => c.notNull()).addColumn('server_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_server_group_members_pk', ['group_id', 'server_id']).execute();
      await s.createTable('compute_hosts')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('hostname', text, (c) => c.notNull().unique())
        .addColumn('service_id', text, (c) => c.notNull()).addColumn('kinds', text, (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull()).addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('disk_gb', 'integer', (c) => c.notNull())
        .addColumn('cpu_allocation_ratio', 'real', (c) => c.notNull().defaultTo(16))
        .addColumn('ram_allocation_ratio', 'real', (c) => c.notNull().defaultTo(1.5))
        .addColumn('disk_allocation_ratio', 'real', (c) => c.notNull().defaultTo(1))
        .addColumn('availability_zone', text, (c) => c.notNull().defaultTo('nova'))
        .addColumn('status', text, (c) => c.notNull().defaultTo('enabled')).addColumn('disabled_reason', text)
        .addColumn('forced_down', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('host_ip', text, (c) => c.notNull().defaultTo(''))
        .addColumn('agent_version', text, (c) => c.notNull().defaultTo('')).addColumn('last_seen_at', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createTable('compute_allocations')
        .addColumn('server_id', text, (c) => c.primaryKey()).addColumn('host_id', text, (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull()).addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('disk_gb', 'integer', (c) => c.notNull()).execute();
      await s.createIndex('compute_allocations_host').on('compute_allocations').column('host_id').execute();
      await s.createTable('compute_server_requests')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('server_id', text, (c) => c.notNull()).addColumn('host', text)
        .addColumn('kind', text, (c) => c.notNull()).addColumn('args', text, (c) => c.notNull().defaultTo('{}'))
        .addColumn('status', text, (c) => c.notNull()).addColumn('result', text)
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull()).execute();
      await s.createTable('compute_quotas')
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('resource', text, (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_quotas_pk', ['project_id', 'resource']).execute();
    },
  },
  '0101_compute_api': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.alterTable('compute_servers').addColumn('locked_by', text).execute();
      await s.alterTable('compute_servers').addColumn('trusted_certs', text).execute();
      await s.alterTable('compute_servers').addColumn('scheduler_hints', text, (c) => c.notNull().defaultTo('{}')).execute();
      await s.alterTable('compute_servers').addColumn('security_groups', text, (c) => c.notNull().defaultTo('[]')).execute();
      await s.alterTable('compute_servers').addColumn('requested_networks', text).execute();
      await s.alterTable('compute_servers').addColumn('requested_host', text).execute();
      await s.alterTable('compute_instance_actions').addColumn('updated_at', text).execute();
      await s.alterTable('compute_instance_action_events').addColumn('details', text).execute();
      await s.createIndex('compute_instance_action_events_action').on('compute_instance_action_events').column('action_id').execute();
      await s.createIndex('compute_servers_reservation').on('compute_servers').column('reservation_id').execute();
      await s.createTable('compute_meta')
        .addColumn('key', text, (c) => c.primaryKey()).addColumn('value', text, (c) => c.notNull()).execute();
      await autoId(db, s.createTable('compute_host_numbers'))
        .addColumn('host_id', text, (c) => c.notNull().unique()).execute();
    },
  },
  '0102_compute_api': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('compute_servers').addColumn('requested_az', text).execute();
    },
  },
  '0103_compute_api': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('compute_servers').addColumn('disk_config', text, (c) => c.notNull().defaultTo('MANUAL')).execute();
    },
  },
  '0104_compute_api': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('compute_servers').addColumn('vcpus', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('compute_servers').addColumn('memory_mb', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      const rows = await db.selectFrom('compute_servers').select(['id', 'flavor']).execute();
      for (const r of rows as Array<{ id: string; flavor: string }>) {
        let f: { vcpus?: number; ram?: number } = {};
        try {
          f = JSON.parse(r.flavor);
        } catch {
          // a row without a readable flavor counts nothing
        }
        await db.updateTable('compute_servers').set({ vcpus: Number(f.vcpus ?? 0), memory_mb: Number(f.ram ?? 0) }).where('id', '=', r.id).execute();
      }
    },
  },
  '0105_compute_api': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await autoId(db, s.createTable('compute_aggregates'))
        .addColumn('uuid', text, (c) => c.notNull().unique()).addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text).execute();
      await s.createTable('compute_aggregate_hosts')
        .addColumn('aggregate_id', 'integer', (c) => c.notNull()).addColumn('hostname', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_aggregate_hosts_pk', ['aggregate_id', 'hostname']).execute();
      await s.createTable('compute_aggregate_metadata')
        .addColumn('aggregate_id', 'integer', (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('compute_aggregate_metadata_pk', ['aggregate_id', 'key']).execute();
    },
  },
  '0106_console_auth_tokens': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('compute_console_auth_tokens')
        .addColumn('token_hash', text, (c) => c.primaryKey()).addColumn('console_type', text, (c) => c.notNull())
        .addColumn('server_id', text, (c) => c.notNull()).addColumn('host', text, (c) => c.notNull())
        .addColumn('expires_at', text, (c) => c.notNull()).addColumn('created_at', text, (c) => c.notNull()).execute();
      await db.schema.createIndex('compute_console_auth_tokens_server').on('compute_console_auth_tokens').column('server_id').execute();
    },
  },
  '0107_compute_host_hypervisor': {
    async up(db: Kysely<any>) {
      // what a VM host registers (fleet protocol 2.2 HostInfo.hypervisor): os-hypervisors shows it
      await db.schema.alterTable('compute_hosts').addColumn('hypervisor_type', text).execute();
      await db.schema.alterTable('compute_hosts').addColumn('hypervisor_accel', text).execute();
      await db.schema.alterTable('compute_hosts').addColumn('hypervisor_version', text).execute();
    },
  },
  '0108_compute_block_device_mappings': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('compute_block_device_mappings')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('server_id', text, (c) => c.notNull())
        .addColumn('volume_id', text, (c) => c.notNull()).addColumn('attachment_id', text, (c) => c.notNull().unique())
        .addColumn('device_name', text, (c) => c.notNull()).addColumn('tag', text)
        .addColumn('delete_on_termination', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('boot_index', 'integer')
        .addColumn('status', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull()).execute();
      // one volume once per server, one device name once per server (two attaches at once never share /dev/vdX)
      await db.schema.createIndex('compute_bdm_server_volume').on('compute_block_device_mappings').columns(['server_id', 'volume_id']).unique().execute();
      await db.schema.createIndex('compute_bdm_server_device').on('compute_block_device_mappings').columns(['server_id', 'device_name']).unique().execute();
    },
  },
  '0109_resize_shelve': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('compute_servers').addColumn('shelved_image_id', text).execute();
      await db.schema.alterTable('compute_servers').addColumn('disk_image', text).execute();
      await autoId(db, db.schema.createTable('compute_migrations'))
        .addColumn('uuid', text, (c) => c.notNull().unique()).addColumn('server_id', text, (c) => c.notNull())
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('migration_type', text, (c) => c.notNull()).addColumn('status', text, (c) => c.notNull())
        .addColumn('source_compute', text).addColumn('dest_compute', text).addColumn('source_node', text).addColumn('dest_node', text)
        .addColumn('dest_host', text).addColumn('old_flavor', text, (c) => c.notNull()).addColumn('new_flavor', text, (c) => c.notNull())
        .addColumn('old_vm_state', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull()).execute();
      await db.schema.createIndex('compute_migrations_server').on('compute_migrations').column('server_id').execute();
    },
  },
  '0110_rescue': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('compute_servers').addColumn('rescue_image', text).execute();
    },
  },
  '0111_baremetal_node': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('compute_servers').addColumn('node', text).execute();
      // the bare-metal driver's pass reads the servers on nodes
      await db.schema.createIndex('compute_servers_node').on('compute_servers').column('node').execute();
    },
  },
  '0112_request_target': {
    async up(db: Kysely<any>) {
      // a request about another resource than the server (a bare-metal server's console: its node's)
      await db.schema.alterTable('compute_server_requests').addColumn('resource_kind', text).execute();
      await db.schema.alterTable('compute_server_requests').addColumn('resource_id', text).execute();
    },
  },
  '0113_migration_disk': {
    async up(db: Kysely<any>) {
      // a cold migration copies the disk through an image; the server's disk image before it, for a revert
      await db.schema.alterTable('compute_migrations').addColumn('disk_image', text).execute();
      await db.schema.alterTable('compute_migrations').addColumn('old_disk_image', text).execute();
    },
  },
  '0114_live_migration': {
    async up(db: Kysely<any>) {
      // a live migration's progress as its source last reported it
      await db.schema.alterTable('compute_migrations').addColumn('progress', text).execute();
    },
  },
};
