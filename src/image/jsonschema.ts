// A small JSON-schema checker for the documents Glance validates requests
// against (its image and member schemas): type (one or a list), enum,
// minLength/maxLength, pattern, minimum/maximum, items, uniqueItems,
// properties, required, additionalProperties, allOf and local $refs
// (#/definitions/...). Glance serves these same schemas at /v2/schemas/*, so
// checking requests against the served document keeps the two in step.
// Messages read like python-jsonschema's, which Glance puts in its 400s.

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

function typeOk(v: unknown, t: string): boolean {
  switch (t) {
    case 'null': return v === null;
    case 'string': return typeof v === 'string';
    case 'boolean': return typeof v === 'boolean';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'array': return Array.isArray(v);
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    default: return true;
  }
}

/** Returns the first violation of `schema` by `v`, or null when it conforms. */
export function firstError(schema: JsonSchema, v: unknown, root: JsonSchema = schema): string | null {
  if (schema.$ref !== undefined) {
    const m = /^#\/definitions\/(.+)$/.exec(schema.$ref);
    const target = m ? root.definitions?.[m[1]!] : undefined;
    if (!target) return `Unresolvable JSON pointer: ${pyRepr(schema.$ref)}`;
    return firstError(target, v, root);
  }
  for (const sub of schema.allOf ?? []) {
    const e = firstError(sub, v, root);
    if (e) return e;
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeOk(v, t))) {
      const want = types.length === 1 ? pyRepr(types[0]) : pyRepr(types);
      return `${pyRepr(v)} is not of type ${want}`;
    }
  }
  if (schema.enum && !schema.enum.some((e) => e === v)) return `${pyRepr(v)} is not one of ${pyRepr(schema.enum)}`;
  if (typeof v === 'string') {
    const len = [...v].length;
    if (schema.maxLength !== undefined && len > schema.maxLength) return `${pyRepr(v)} is too long`;
    if (schema.minLength !== undefined && len < schema.minLength) return `${pyRepr(v)} is too short`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(v)) return `${pyRepr(v)} does not match ${pyRepr(schema.pattern)}`;
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) return `${v} is less than the minimum of ${schema.minimum}`;
    if (schema.maximum !== undefined && v > schema.maximum) return `${v} is greater than the maximum of ${schema.maximum}`;
  }
  if (Array.isArray(v)) {
    if (schema.items) {
      for (const item of v) {
        const e = firstError(schema.items, item, root);
        if (e) return e;
      }
    }
    if (schema.uniqueItems && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) return `${pyRepr(v)} has non-unique elements`;
  }
  if (typeOk(v, 'object') && (schema.properties || schema.required || schema.additionalProperties !== undefined)) {
    const obj = v as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) return `${pyRepr(r)} is a required property`;
    const props = schema.properties ?? {};
    const extra: string[] = [];
    for (const [k, x] of Object.entries(obj)) {
      if (Object.hasOwn(props, k)) {
        const e = firstError(props[k]!, x, root);
        if (e) return e;
      } else if (schema.additionalProperties === false) {
        extra.push(k);
      } else if (typeof schema.additionalProperties === 'object') {
        const e = firstError(schema.additionalProperties, x, root);
        if (e) return e;
      }
    }
    if (extra.length) return `Additional properties are not allowed (${extra.map(pyRepr).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`;
  }
  return null;
}
