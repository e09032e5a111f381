// Image tables (owned by the image service).
//
// An image row is Glance's image record. Deleted images stay as rows with
// status 'deleted' and deleted_at set, so an id is never reused (Glance answers
// 409 to a create that names a deleted image's id). Extra properties are a JSON
// object of strings; tags and members have tables of their own so lists can
// filter on them.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export interface ImageTables {
  image_images: {
    id: string;
    name: string | null;
    /** queued | saving | active | killed | deleted | pending_delete | deactivated | uploading | importing */
    status: string;
    /** public | private | shared | community */
    visibility: string;
    protected: number;
    os_hidden: number;
    checksum: string | null;
    os_hash_algo: string | null;
    os_hash_value: string | null;
    size: number | null;
    virtual_size: number | null;
    disk_format: string | null;
    container_format: string | null;
    min_disk: number;
    min_ram: number;
    owner: string | null;
    /** JSON object: the image's extra properties (values are strings, or null for schema properties that allow it). */
    properties: string;
    /** The store key of the image data once active (null while there is none). */
    location: string | null;
    created_at: string;
    updated_at: string;
    deleted_at: string | null;
  };
  image_tags: { image_id: string; tag: string };
  image_members: { image_id: string; member_id: string; status: string; created_at: string; updated_at: string };
  // Metadata definitions (metadefs.ts). Objects and properties keep their definition as JSON.
  image_metadef_namespaces: {
    namespace: string; display_name: string | null; description: string | null; visibility: string;
    protected: number; owner: string | null; created_at: string; updated_at: string;
  };
  image_metadef_objects: {
    namespace: string; name: string; description: string | null; required: string; properties: string; created_at: string; updated_at: string;
  };
  image_metadef_properties: { namespace: string; name: string; definition: string; created_at: string; updated_at: string };
  image_metadef_tags: { namespace: string; name: string; created_at: string; updated_at: string };
  image_metadef_resource_types: { name: string; protected: number; created_at: string; updated_at: string };
  image_metadef_associations: {
    namespace: string; resource_type: string; prefix: string | null; properties_target: string | null; created_at: string; updated_at: string;
  };
}

const text = 'text' as const;

/** The resource types a Glance metadefs catalog starts with (those its shipped definitions name). */
const SEED_RESOURCE_TYPES = [
  'OS::Glance::Image', 'OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Aggregate', 'OS::Nova::Server', 'OS::Trove::Instance',
];

export const imageMigrations: Record<string, Migration> = {
  '0050_image': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('image_images')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('name', text)
        .addColumn('status', text, (c) => c.notNull())
        .addColumn('visibility', text, (c) => c.notNull())
        .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('os_hidden', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('checksum', text)
        .addColumn('os_hash_algo', text)
        .addColumn('os_hash_value', text)
        .addColumn('size', 'bigint')
        .addColumn('virtual_size', 'bigint')
        .addColumn('disk_format', text)
        .addColumn('container_format', text)
        .addColumn('min_disk', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('min_ram', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('owner', text)
        .addColumn('properties', text, (c) => c.notNull().defaultTo('{}'))
        .addColumn('location', text)
        .addColumn('created_at', text, (c) => c.notNull())
        .addColumn('updated_at', text, (c) => c.notNull())
        .addColumn('deleted_at', text)
        .execute();
      await s.createIndex('image_images_owner').on('image_images').column('owner').execute();
      await s.createIndex('image_images_visibility').on('image_images').column('visibility').execute();
      await s.createTable('image_tags')
        .addColumn('image_id', text, (c) => c.notNull())
        .addColumn('tag', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('image_tags_pk', ['image_id', 'tag'])
        .execute();
      await s.createTable('image_members')
        .addColumn('image_id', text, (c) => c.notNull())
        .addColumn('member_id', text, (c) => c.notNull())
        .addColumn('status', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull())
        .addColumn('updated_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('image_members_pk', ['image_id', 'member_id'])
        .execute();
      await s.createIndex('image_members_member').on('image_members').column('member_id').execute();
    },
  },
  '0051_image_metadefs': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('image_metadef_namespaces')
        .addColumn('namespace', text, (c) => c.primaryKey())
        .addColumn('display_name', text).addColumn('description', text)
        .addColumn('visibility', text, (c) => c.notNull())
        .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('owner', text)
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await s.createTable('image_metadef_objects')
        .addColumn('namespace', text, (c) => c.notNull()).addColumn('name', text, (c) => c.notNull())
        .addColumn('description', text)
        .addColumn('required', text, (c) => c.notNull().defaultTo('[]'))
        .addColumn('properties', text, (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('image_metadef_objects_pk', ['namespace', 'name'])
        .execute();
      await s.createTable('image_metadef_properties')
        .addColumn('namespace', text, (c) => c.notNull()).addColumn('name', text, (c) => c.notNull())
        .addColumn('definition', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('image_metadef_properties_pk', ['namespace', 'name'])
        .execute();
      await s.createTable('image_metadef_tags')
        .addColumn('namespace', text, (c) => c.notNull()).addColumn('name', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('image_metadef_tags_pk', ['namespace', 'name'])
        .execute();
      await s.createTable('image_metadef_resource_types')
        .addColumn('name', text, (c) => c.primaryKey())
        .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await s.createTable('image_metadef_associations')
        .addColumn('namespace', text, (c) => c.notNull()).addColumn('resource_type', text, (c) => c.notNull())
        .addColumn('prefix', text).addColumn('properties_target', text)
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('image_metadef_associations_pk', ['namespace', 'resource_type'])
        .execute();
      const now = new Date().toISOString();
      await db.insertInto('image_metadef_resource_types')
        .values(SEED_RESOURCE_TYPES.map((name) => ({ name, protected: 1, created_at: now, updated_at: now }))).execute();
    },
  },
};
