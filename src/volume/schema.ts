// Block-storage tables (Cinder's model). A volume row holds what the API
// shows and what the volume backend must make real: `version` is bumped on
// every change a backend must act on (create, extend, delete), and the
// backend's report moves `status` on (protocol.ts). Metadata, types, their
// extra specs and project access are rows of their own; a project's quota
// limit is a row only where it is not the default.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export interface VolumeTables {
  volume_volumes: {
    id: string; project_id: string; user_id: string;
    name: string | null; description: string | null;
    /** GiB the volume has now (what the view shows). */
    size: number;
    /** While `extending`: the size asked for (quota counts it already); null otherwise. */
    requested_size: number | null;
    status: string; attach_status: string; migration_status: string | null;
    availability_zone: string; volume_type_id: string;
    bootable: number; multiattach: number;
    /** The admin metadata `readonly` flag (os-update_readonly_flag); null when never set. */
    readonly: number | null;
    /** `host@backend#pool` once a backend took the volume; null before (a volume without a host is deleted at once). */
    host: string | null;
    snapshot_id: string | null; source_volid: string | null;
    /** The Glance image the volume is made from (0510): `{image_id, disk_format}` as JSON; null for any other source. */
    image_source: string | null;
    /** An upload to a Glance image in progress (os-volume_upload_image, 0510): `{image_id, disk_format, status}` as JSON (`status`: the one to return to); null otherwise. */
    upload: string | null;
    /**
     * A backup or restore in progress (0511, backups.ts): `{kind: 'backup'|'restore', backup_id, status}` as JSON
     * (`status`: the one to return to); null otherwise. One at a time per volume.
     */
    backup_job: string | null;
    /** Bumped on every change the backend must act on. */
    version: number;
    /**
     * When its backend first reported it made (Cinder's launched_at, 0513); null while it is being made. A volume
     * `creating` with one was reset there by an admin: its backend's reports leave it so, as Cinder's would.
     */
    launched_at: string | null;
    created_at: string; updated_at: string;
  };
  volume_metadata: { volume_id: string; key: string; value: string };
  /**
   * A backup (Cinder's backups, 0511): its chunks are objects of the
   * project's container `container` in the object store (backups.ts).
   */
  volume_backups: {
    id: string; project_id: string; user_id: string; volume_id: string; snapshot_id: string | null;
    name: string | null; description: string | null;
    /** creating, available, restoring, deleting, error, error_deleting. */
    status: string; fail_reason: string | null;
    container: string; availability_zone: string;
    /** GiB of the volume backed up. */
    size: number;
    /** The chunk size of the backup, bytes. */
    chunk_size: number;
    /** Objects this backup wrote (its changed chunks; the metadata and sha256 file objects not counted). */
    object_count: number;
    /** The prefix of its objects' names in the container. */
    object_prefix: string;
    /** The project whose account holds the container (the backup's own, or the exporter's for an imported record). */
    object_project_id: string;
    is_incremental: number; parent_id: string | null;
    /** The volume being restored into while `restoring`. */
    /** Cinder's backup metadata (3.43), JSON. */
    metadata: string;
    data_timestamp: string; created_at: string; updated_at: string;
  };
  /**
   * A chunk of a complete backup: its object (this backup's own, or an
   * ancestor's for a chunk an incremental backup did not change), the
   * sha256 of its uncompressed bytes and its compressed length.
   */
  volume_backup_chunks: { backup_id: string; idx: number; object: string; sha256: string; length: number; own: number };
  /**
   * A volume's attachment to a server (Cinder's volume_attachment): made by the
   * legacy os-attach flow (state only) or by the attachments API (3.27, and
   * Nova's os-volume_attachments through it), whose `connector` (JSON, with
   * the attaching `host`) puts an export of the volume in its spec; the
   * backend's export of it is `export_location`/`export_format` (0508).
   * `connection_info` is unused (Cinder's view builds it from the export).
   */
  volume_attachments: {
    id: string; volume_id: string; instance_uuid: string | null; attached_host: string | null; mountpoint: string | null;
    /** reserved, attaching, attached, detaching. */
    attach_status: string;
    attach_mode: string; connector: string | null; connection_info: string | null;
    attach_time: string | null; created_at: string; updated_at: string;
    /** What the volume's backend reported for this attachment's export (VolumeExportObserved); null until then. */
    export_location: string | null; export_format: string | null;
  };
  /** Image properties of a volume (Cinder's glance metadata): set by os-set_image_metadata, copied to clones (0504). */
  volume_image_metadata: { volume_id: string; key: string; value: string };
  volume_types: {
    id: string; name: string; description: string | null; is_public: number; created_at: string; updated_at: string;
    /** The QoS specs associated with the type (0503). */
    qos_specs_id: string | null;
  };
  /** QoS specs: a named set of keys a consumer (front-end: the hypervisor, back-end: the volume backend) applies. */
  volume_qos_specs: { id: string; name: string; consumer: string; created_at: string; updated_at: string };
  volume_qos_spec_keys: { qos_id: string; key: string; value: string };
  volume_type_extra_specs: { type_id: string; key: string; value: string };
  /** A type's encryption specs (0509); no volume is made of such a type (no key manager). */
  volume_type_encryption: {
    volume_type_id: string; encryption_id: string; provider: string; cipher: string | null; key_size: number | null;
    control_location: string; created_at: string; updated_at: string;
  };
  /** Projects a private type is shared with. */
  volume_type_projects: { type_id: string; project_id: string };
  /** A project's default type (3.62 default-types), where set. */
  volume_default_types: { project_id: string; type_id: string };
  /** A project's limit per quota resource where it is not the default. */
  volume_quotas: { project_id: string; resource: string; hard_limit: number };
  /** User messages (3.3): a failure a user should see, kept 30 days (Cinder's message_ttl) (0507). */
  volume_messages: {
    id: string; project_id: string; request_id: string; resource_type: string; resource_uuid: string | null;
    action_id: string; detail_id: string; message_level: string; created_at: string; expires_at: string;
  };
  /** A quota class's limit per resource (0506); the class `default` overrides the built-in defaults of every project. */
  volume_quota_classes: { class_name: string; resource: string; hard_limit: number };
  /** Snapshots live with their volume (on its host, in its backend); `version` as a volume's. */
  volume_snapshots: {
    id: string; volume_id: string; project_id: string; user_id: string;
    name: string | null; description: string | null;
    /** The volume's size when the snapshot was taken, GiB (quota counts it in gigabytes). */
    size: number;
    status: string; progress: string;
    /** The volume's type (per-type quota keys). */
    volume_type_id: string;
    version: number;
    created_at: string; updated_at: string;
  };
  volume_snapshot_metadata: { snapshot_id: string; key: string; value: string };
  /** A volume offered to another project: the key is kept only as an HMAC with its salt; the row goes once accepted or deleted. */
  volume_transfers: {
    id: string; volume_id: string; project_id: string; name: string | null;
    salt: string; crypt_hash: string; no_snapshots: number; created_at: string; updated_at: string;
  };
}

const text = 'text' as const;

export const volumeMigrations: Record<string, Migration> = {
  '0500_volume': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('volume_volumes')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('project_id', text, (c) => c.notNull())
        .addColumn('user_id', text, (c) => c.notNull()).addColumn('name', text).addColumn('description', text)
        .addColumn('size', 'integer', (c) => c.notNull()).addColumn('requested_size', 'integer')
        .addColumn('status', text, (c) => c.notNull()).addColumn('attach_status', text, (c) => c.notNull())
        .addColumn('migration_status', text).addColumn('availability_zone', text, (c) => c.notNull())
        .addColumn('volume_type_id', text, (c) => c.notNull())
        .addColumn('bootable', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('multiattach', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('readonly', 'integer').addColumn('host', text)
        .addColumn('snapshot_id', text).addColumn('source_volid', text)
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await s.createIndex('volume_volumes_project').on('volume_volumes').column('project_id').execute();
      await s.createIndex('volume_volumes_type').on('volume_volumes').column('volume_type_id').execute();
      await s.createTable('volume_metadata')
        .addColumn('volume_id', text, (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_metadata_pk', ['volume_id', 'key']).execute();
      await s.createTable('volume_types')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('description', text).addColumn('is_public', 'integer', (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await s.createTable('volume_type_extra_specs')
        .addColumn('type_id', text, (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_type_extra_specs_pk', ['type_id', 'key']).execute();
      await s.createTable('volume_type_projects')
        .addColumn('type_id', text, (c) => c.notNull()).addColumn('project_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_type_projects_pk', ['type_id', 'project_id']).execute();
      await s.createTable('volume_default_types')
        .addColumn('project_id', text, (c) => c.primaryKey()).addColumn('type_id', text, (c) => c.notNull()).execute();
      await s.createTable('volume_quotas')
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('resource', text, (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_quotas_pk', ['project_id', 'resource']).execute();
    },
  },
  '0501_volume_snapshots': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('volume_snapshots')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('volume_id', text, (c) => c.notNull())
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('name', text).addColumn('description', text).addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('status', text, (c) => c.notNull()).addColumn('progress', text, (c) => c.notNull())
        .addColumn('volume_type_id', text, (c) => c.notNull()).addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await s.createIndex('volume_snapshots_volume').on('volume_snapshots').column('volume_id').execute();
      await s.createIndex('volume_snapshots_project').on('volume_snapshots').column('project_id').execute();
      await s.createTable('volume_snapshot_metadata')
        .addColumn('snapshot_id', text, (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_snapshot_metadata_pk', ['snapshot_id', 'key']).execute();
    },
  },
  '0502_volume_transfers': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('volume_transfers')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('volume_id', text, (c) => c.notNull().unique())
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('name', text)
        .addColumn('salt', text, (c) => c.notNull()).addColumn('crypt_hash', text, (c) => c.notNull())
        .addColumn('no_snapshots', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('volume_transfers_project').on('volume_transfers').column('project_id').execute();
    },
  },
  '0503_volume_qos_specs': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('volume_qos_specs')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('consumer', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await db.schema.createTable('volume_qos_spec_keys')
        .addColumn('qos_id', text, (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_qos_spec_keys_pk', ['qos_id', 'key']).execute();
      await db.schema.alterTable('volume_types').addColumn('qos_specs_id', text).execute();
    },
  },
  '0504_volume_image_metadata': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('volume_image_metadata')
        .addColumn('volume_id', text, (c) => c.notNull()).addColumn('key', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_image_metadata_pk', ['volume_id', 'key']).execute();
    },
  },
  '0505_volume_attachments': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('volume_attachments')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('volume_id', text, (c) => c.notNull())
        .addColumn('instance_uuid', text).addColumn('attached_host', text).addColumn('mountpoint', text)
        .addColumn('attach_status', text, (c) => c.notNull()).addColumn('attach_mode', text, (c) => c.notNull())
        .addColumn('connector', text).addColumn('connection_info', text).addColumn('attach_time', text)
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('volume_attachments_volume').on('volume_attachments').column('volume_id').execute();
    },
  },
  '0506_volume_quota_classes': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('volume_quota_classes')
        .addColumn('class_name', text, (c) => c.notNull()).addColumn('resource', text, (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_quota_classes_pk', ['class_name', 'resource']).execute();
    },
  },
  '0507_volume_messages': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('volume_messages')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('project_id', text, (c) => c.notNull())
        .addColumn('request_id', text, (c) => c.notNull()).addColumn('resource_type', text, (c) => c.notNull())
        .addColumn('resource_uuid', text).addColumn('action_id', text, (c) => c.notNull()).addColumn('detail_id', text, (c) => c.notNull())
        .addColumn('message_level', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('expires_at', text, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('volume_messages_project').on('volume_messages').column('project_id').execute();
    },
  },
  '0508_volume_attachment_exports': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('volume_attachments').addColumn('export_location', text).execute();
      await db.schema.alterTable('volume_attachments').addColumn('export_format', text).execute();
      await db.schema.createIndex('volume_attachments_instance').on('volume_attachments').column('instance_uuid').execute();
    },
  },
  '0509_volume_type_encryption': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('volume_type_encryption')
        .addColumn('volume_type_id', text, (c) => c.primaryKey()).addColumn('encryption_id', text, (c) => c.notNull())
        .addColumn('provider', text, (c) => c.notNull()).addColumn('cipher', text).addColumn('key_size', 'integer')
        .addColumn('control_location', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
    },
  },
  '0510_volume_images': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('volume_volumes').addColumn('image_source', text).execute();
      await db.schema.alterTable('volume_volumes').addColumn('upload', text).execute();
    },
  },
  '0511_volume_backups': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('volume_volumes').addColumn('backup_job', text).execute();
      await db.schema.createTable('volume_backups')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('project_id', text, (c) => c.notNull()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('volume_id', text, (c) => c.notNull()).addColumn('snapshot_id', text)
        .addColumn('name', text).addColumn('description', text)
        .addColumn('status', text, (c) => c.notNull()).addColumn('fail_reason', text)
        .addColumn('container', text, (c) => c.notNull()).addColumn('availability_zone', text, (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull()).addColumn('chunk_size', 'bigint', (c) => c.notNull())
        .addColumn('object_count', 'integer', (c) => c.notNull()).addColumn('object_prefix', text, (c) => c.notNull())
        .addColumn('object_project_id', text, (c) => c.notNull())
        .addColumn('is_incremental', 'integer', (c) => c.notNull()).addColumn('parent_id', text)
        .addColumn('restore_volume_id', text).addColumn('metadata', text, (c) => c.notNull())
        .addColumn('data_timestamp', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('volume_backups_project').on('volume_backups').column('project_id').execute();
      await db.schema.createIndex('volume_backups_parent').on('volume_backups').column('parent_id').execute();
      await db.schema.createTable('volume_backup_chunks')
        .addColumn('backup_id', text, (c) => c.notNull()).addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('object', text, (c) => c.notNull()).addColumn('sha256', text, (c) => c.notNull())
        .addColumn('length', 'bigint', (c) => c.notNull()).addColumn('own', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_backup_chunks_pk', ['backup_id', 'idx']).execute();
    },
  },
  '0512_volume_backups_no_restore_volume': {
    async up(db: Kysely<any>) {
      // written, never read: a restore's target is the volume's backup_job
      await db.schema.alterTable('volume_backups').dropColumn('restore_volume_id').execute();
    },
  },
  '0513_volume_launched_at': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('volume_volumes').addColumn('launched_at', 'text').execute();
      await db.updateTable('volume_volumes').set((eb: any) => ({ launched_at: eb.ref('created_at') })).where('status', 'not in', ['creating', 'error']).execute();
    },
  },
};
