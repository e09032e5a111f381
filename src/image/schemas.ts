// The JSON schemas Glance serves at /v2/schemas/* and validates requests
// against. The `openstack` CLI and glanceclient read them to learn which image
// attributes exist and which values are allowed, so their content follows
// Glance's (glance/api/v2/images.py get_base_properties, etc/schema-image.json,
// image_members.py) with Stratus's format lists.
import type { JsonSchema } from './jsonschema.ts';

export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'] as const;
/** `docker` (and `oci`) mark container images: OCI layout or `docker save` archives. */
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'oci', 'compressed'] as const;
export const IMAGE_STATUSES = ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'] as const;
export const VISIBILITIES = ['community', 'public', 'private', 'shared'] as const;
export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;

const UUID_PATTERN = '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';

/** Glance's base image properties: the attributes every image has. */
function baseProperties(): Record<string, JsonSchema> {
  return {
    id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
    name: { type: ['null', 'string'], description: 'Descriptive name for the image', maxLength: 255 },
    status: { type: 'string', readOnly: true, description: 'Status of the image', enum: [...IMAGE_STATUSES] },
    visibility: { type: 'string', description: 'Scope of image accessibility', enum: [...VISIBILITIES] },
    protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
    os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
    checksum: { type: ['null', 'string'], readOnly: true, description: 'md5 hash of image contents.', maxLength: 32 },
    os_hash_algo: { type: ['null', 'string'], readOnly: true, description: 'Algorithm to calculate the os_hash_value', maxLength: 64 },
    os_hash_value: {
      type: ['null', 'string'], readOnly: true,
      description: 'Hexdigest of the image contents using the algorithm specified by the os_hash_algo', maxLength: 128,
    },
    owner: { type: ['null', 'string'], description: 'Owner of the image', maxLength: 255 },
    size: { type: ['null', 'integer'], readOnly: true, description: 'Size of image file in bytes' },
    virtual_size: { type: ['null', 'integer'], readOnly: true, description: 'Virtual size of image in bytes' },
    container_format: { type: ['null', 'string'], description: 'Format of the container', enum: [null, ...CONTAINER_FORMATS] },
    disk_format: { type: ['null', 'string'], description: 'Format of the disk', enum: [null, ...DISK_FORMATS] },
    created_at: { type: 'string', readOnly: true, description: 'Date and time of image registration' },
    updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last image modification' },
    tags: { type: 'array', description: 'List of strings related to the image', items: { type: 'string', maxLength: 255 } },
    direct_url: { type: 'string', readOnly: true, description: 'URL to access the image file kept in external store' },
    min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
    min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
    self: { type: 'string', readOnly: true, description: 'An image self url' },
    file: { type: 'string', readOnly: true, description: 'An image file url' },
    stores: {
      type: 'string', readOnly: true,
      description: 'Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.',
    },
    schema: { type: 'string', readOnly: true, description: 'An image schema url' },
    locations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          url: { type: 'string', maxLength: 255 },
          metadata: { type: 'object' },
          validation_data: {
            description: "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
            type: 'object', writeOnly: true, additionalProperties: false,
            properties: {
              checksum: { type: 'string', minLength: 32, maxLength: 32 },
              os_hash_algo: { type: 'string', maxLength: 64 },
              os_hash_value: { type: 'string', maxLength: 128 },
            },
            required: ['os_hash_algo', 'os_hash_value'],
          },
        },
        required: ['url', 'metadata'],
      },
      description: 'A set of URLs to access the image file kept in external store',
    },
  };
}

/** The custom properties Glance ships in etc/schema-image.json (is_base false). */
function customProperties(): Record<string, JsonSchema> {
  const props: Record<string, JsonSchema> = {
    kernel_id: {
      type: ['null', 'string'], pattern: UUID_PATTERN,
      description: 'ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.',
    },
    ramdisk_id: {
      type: ['null', 'string'], pattern: UUID_PATTERN,
      description: 'ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.',
    },
    instance_uuid: {
      type: 'string',
      description: 'Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)',
    },
    architecture: {
      description: 'Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html',
      type: 'string',
    },
    os_distro: {
      description: 'Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html',
      type: 'string',
    },
    os_version: { description: 'Operating system version as specified by the distributor.', type: 'string' },
    description: { description: 'A human-readable string describing this image.', type: 'string' },
    cinder_encryption_key_id: {
      description: 'Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image',
      type: 'string',
    },
    cinder_encryption_key_deletion_policy: {
      description: "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action",
      type: 'string', enum: ['on_image_deletion', 'do_not_delete'],
    },
  };
  for (const p of Object.values(props)) p.is_base = false;
  return props;
}

/** GET /v2/schemas/image: Glance's PermissiveSchema('image').raw(). */
export function imageSchema(): JsonSchema {
  return {
    name: 'image',
    properties: { ...baseProperties(), ...customProperties() },
    additionalProperties: { type: 'string' },
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'enclosure', href: '{file}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

/**
 * Glance's CollectionSchema(name, item): raw() also describes the pagination
 * links (first, next), minimal() only the schema link. The item schema's
 * definitions move up to the collection.
 */
export function collectionSchema(name: string, item: JsonSchema, form: 'raw' | 'minimal' = 'raw'): JsonSchema {
  const { definitions: defs, ...items } = item;
  const list = { type: 'array', items };
  const schema: JsonSchema = form === 'raw'
    ? {
      name,
      properties: { [name]: list, first: { type: 'string' }, next: { type: 'string' }, schema: { type: 'string' } },
      links: [{ rel: 'first', href: '{first}' }, { rel: 'next', href: '{next}' }, { rel: 'describedby', href: '{schema}' }],
    }
    : { name, properties: { [name]: list, schema: { type: 'string' } }, links: [{ rel: 'describedby', href: '{schema}' }] };
  return defs ? { ...schema, definitions: defs } : schema;
}

/** GET /v2/schemas/images: CollectionSchema('images', image).raw(). */
export const imagesSchema = (): JsonSchema => collectionSchema('images', imageSchema());

function memberProperties(): Record<string, JsonSchema> {
  return {
    member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
    image_id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
    created_at: { type: 'string', description: 'Date and time of image member creation' },
    updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
    status: { type: 'string', description: 'The status of this image member', enum: [...MEMBER_STATUSES] },
    schema: { readOnly: true, type: 'string' },
  };
}

/** GET /v2/schemas/member: Schema('member').minimal(). */
export function memberSchema(): JsonSchema {
  return { name: 'member', properties: memberProperties() };
}

/** GET /v2/schemas/members: CollectionSchema('members', member).minimal(). */
export const membersSchema = (): JsonSchema => collectionSchema('members', memberSchema(), 'minimal');

/** The schema requests are validated against (the served one, computed once). */
export const IMAGE_SCHEMA: JsonSchema = imageSchema();
