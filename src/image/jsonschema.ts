// Glance's side of JSON-schema checking: the schema type of the documents it
// serves at /v2/schemas/* and validates requests against (checking against the
// served document keeps the two in step), and the messages python-jsonschema
// gives for a violation, which Glance puts in its 400s. The checking itself is
// src/http/json-schema.ts.
import { firstError, type SchemaError } from '../http/json-schema.ts';

export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  uniqueItems?: boolean;
  allOf?: JsonSchema[];
  $ref?: string;
  definitions?: Record<string, JsonSchema>;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  [k: string]: unknown;
}

/** Python's repr of a JSON value, as jsonschema prints it. */
export function pyRepr(v: unknown): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as object).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

/** python-jsonschema's message for the first violation of `schema` by `v`, or null when it conforms. */
export function schemaViolation(schema: JsonSchema, v: unknown): string | null {
  const e = firstError(schema, v);
  return e && jsonschemaMessage(e);
}

function jsonschemaMessage(e: SchemaError): string {
  const v = e.value;
  switch (e.keyword) {
    case 'type': {
      const types = e.expected as string | string[];
      return `${pyRepr(v)} is not of type ${pyRepr(Array.isArray(types) && types.length === 1 ? types[0] : types)}`;
    }
    case 'enum': return `${pyRepr(v)} is not one of ${pyRepr(e.expected)}`;
    case 'maxLength': return `${pyRepr(v)} is too long`;
    case 'minLength': return `${pyRepr(v)} is too short`;
    case 'pattern': return `${pyRepr(v)} does not match ${pyRepr(e.expected)}`;
    case 'minimum': return `${String(v)} is less than the minimum of ${String(e.expected)}`;
    case 'maximum': return `${String(v)} is greater than the maximum of ${String(e.expected)}`;
    case 'uniqueItems': return `${pyRepr(v)} has non-unique elements`;
    case 'required': return `${pyRepr(e.missing)} is a required property`;
    case 'additionalProperties': {
      const extra = e.unexpected ?? [];
      return `Additional properties are not allowed (${extra.map(pyRepr).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`;
    }
    default: return `${pyRepr(v)} ${e.message}`;
  }
}
