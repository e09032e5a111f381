// Metadata definitions (Glance's "metadefs" catalog): namespaces that describe
// properties, objects and tags other resources may carry, and the resource
// types (OS::Glance::Image, OS::Nova::Flavor, ...) they apply to. Only the
// schemas and the wire views live here; routes/metadefs.ts serves them.
import type { JsonSchema } from './jsonschema.ts';
import { collectionSchema } from './schemas.ts';

const PROPERTY_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string', null];

/** The fields of one property definition (Glance's definitions/property item). */
function propertyFields(): Record<string, JsonSchema> {
  return {
    name: { type: 'string', maxLength: 80 },
    title: { type: 'string' },
    description: { type: 'string' },
    operators: { type: 'array', items: { type: 'string' } },
    type: { type: 'string', enum: PROPERTY_TYPES },
    required: { $ref: '#/definitions/stringArray' },
    minimum: { type: 'number' },
    maximum: { type: 'number' },
    maxLength: { $ref: '#/definitions/positiveInteger' },
    minLength: { $ref: '#/definitions/positiveIntegerDefault0' },
    pattern: { type: 'string', format: 'regex' },
    enum: { type: 'array' },
    readonly: { type: 'boolean' },
    default: {},
    items: { type: 'object', properties: { type: { type: 'string', enum: PROPERTY_TYPES }, enum: { type: 'array' } } },
    maxItems: { $ref: '#/definitions/positiveInteger' },
    minItems: { $ref: '#/definitions/positiveIntegerDefault0' },
    uniqueItems: { type: 'boolean', default: false },
    additionalItems: { type: 'boolean' },
  };
}

function definitions(): Record<string, JsonSchema> {
  return {
    positiveInteger: { type: 'integer', minimum: 0 },
    positiveIntegerDefault0: { allOf: [{ $ref: '#/definitions/positiveInteger' }, { default: 0 }] },
    stringArray: { type: 'array', items: { type: 'string' }, uniqueItems: true },
    property: {
      type: 'object',
      additionalProperties: { type: 'object', required: ['title', 'type'], properties: propertyFields() },
    },
  };
}

const timestamps = (what: string): Record<string, JsonSchema> => ({
  created_at: { type: 'string', readOnly: true, description: `Date and time of ${what} creation`, format: 'date-time' },
  updated_at: { type: 'string', readOnly: true, description: `Date and time of the last ${what} modification`, format: 'date-time' },
});

/** Glance's Schema.raw(): additionalProperties false, definitions and required when given. */
function raw(name: string, properties: Record<string, JsonSchema>, required?: string[], defs?: Record<string, JsonSchema>): JsonSchema {
  return {
    name, properties, additionalProperties: false,
    ...(defs ? { definitions: defs } : {}),
    ...(required && required.length ? { required } : {}),
  };
}

export function namespaceSchema(): JsonSchema {
  return raw('namespace', {
    namespace: { type: 'string', description: 'The unique namespace text.', maxLength: 80 },
    display_name: { type: 'string', description: 'The user friendly name for the namespace. Used by UI if available.', maxLength: 80 },
    description: { type: 'string', description: 'Provides a user friendly description of the namespace.', maxLength: 500 },
    visibility: { type: 'string', description: 'Scope of namespace accessibility.', enum: ['public', 'private'] },
    protected: { type: 'boolean', description: 'If true, namespace will not be deletable.' },
    owner: { type: 'string', description: 'Owner of the namespace.', maxLength: 255 },
    ...timestamps('namespace'),
    schema: { readOnly: true, type: 'string' },
    self: { readOnly: true, type: 'string' },
    resource_type_associations: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, prefix: { type: 'string' }, properties_target: { type: 'string' } } },
    },
    properties: { $ref: '#/definitions/property' },
    objects: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' }, description: { type: 'string' },
          required: { $ref: '#/definitions/stringArray' }, properties: { $ref: '#/definitions/property' },
        },
      },
    },
    tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
  }, ['namespace'], definitions());
}

export function objectSchema(): JsonSchema {
  return raw('object', {
    name: { type: 'string', maxLength: 80 },
    description: { type: 'string' },
    required: { $ref: '#/definitions/stringArray' },
    properties: { $ref: '#/definitions/property' },
    schema: { readOnly: true, type: 'string' },
    self: { readOnly: true, type: 'string' },
    ...timestamps('object'),
  }, ['name'], definitions());
}

export function propertySchema(requireName = true): JsonSchema {
  return raw('property', propertyFields(), requireName ? ['title', 'type', 'name'] : ['title', 'type'], definitions());
}

export function tagSchema(): JsonSchema {
  return raw('tag', { name: { type: 'string', maxLength: 255 }, ...timestamps('tag') }, ['name'], definitions());
}

export function resourceTypeSchema(): JsonSchema {
  return raw('resource_type_association', {
    name: {
      type: 'string', maxLength: 80,
      description: 'Resource type names should be aligned with Heat resource types whenever possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html',
    },
    prefix: {
      type: 'string', maxLength: 80,
      description: 'Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :).',
    },
    properties_target: {
      type: 'string', maxLength: 80,
      description: 'Some resource types allow more than one key / value pair per instance.  For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity.',
    },
    ...timestamps('resource type association'),
  }, ['name']);
}

/** The /v2/schemas/metadefs/* documents, by path below /v2/schemas/metadefs/. */
export const METADEF_SCHEMAS: Record<string, () => JsonSchema> = {
  namespace: namespaceSchema,
  namespaces: () => collectionSchema('namespaces', namespaceSchema()),
  object: objectSchema,
  objects: () => collectionSchema('objects', objectSchema()),
  property: () => propertySchema(),
  properties: () => {
    const { definitions: defs, ...item } = propertySchema(false);
    return {
      name: 'properties',
      properties: {
        properties: { type: 'object', additionalProperties: item },
        first: { type: 'string' }, next: { type: 'string' }, schema: { type: 'string' },
      },
      links: [{ rel: 'first', href: '{first}' }, { rel: 'next', href: '{next}' }, { rel: 'describedby', href: '{schema}' }],
      definitions: defs,
    };
  },
  tag: tagSchema,
  tags: () => collectionSchema('tags', tagSchema()),
  resource_type: resourceTypeSchema,
  resource_types: () => collectionSchema('resource_type_associations', resourceTypeSchema()),
};
