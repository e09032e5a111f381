// JSON Schema validation, all of it through ajv: the route schemas Fastify
// checks before a handler runs, and the checks made inside handlers (Nova's
// microversioned request bodies, Glance's image and metadef documents).
//
// Route schemas: ajv's defaults (strict, no coercion, no removal, first error
// only) plus useDefaults, so a handler sees a schema's defaults filled in; no
// formats (ajv-formats is not loaded: no route schema names one) and no
// header schemas (Fastify would not lower-case them for this compiler). A
// route's validator is compiled on the route's first request, not when the
// route is registered: a compiled validator costs 12 KiB and more of heap,
// and a deployment calls few of the ~40 routes with a schema
// (docs/performance.md). test/unit/route-schemas.test.ts compiles them all,
// so a schema ajv refuses fails there rather than as a 500 at a first request.
//
// Checks inside handlers differ from route schemas in three options:
// - useDefaults is off: a check never changes the value it checks (Glance
//   stores metadef bodies as sent; its property schema has a default);
// - strict is off: Glance's served documents carry annotations ajv does not
//   know (name, links, is_base) and untyped roots;
// - formats are not checked (Glance checks none; no compute schema names one).
// Each service turns the neutral SchemaError into its own message.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** The first way a value fails a schema. */
export interface SchemaError {
  /** The JSON-schema keyword that failed: type, required, additionalProperties, pattern, maxLength... */
  keyword: string;
  /** Where: property names and array indexes from the root ([] is the value itself). */
  path: string[];
  /** The value at `path` (for required and additionalProperties: the object). */
  value: unknown;
  /** The failing keyword's own schema value: the type(s), the pattern, the limit, the enum... */
  expected: unknown;
  /** required: the first missing property. */
  missing?: string;
  /** additionalProperties: every property the schema does not allow, in the value's order. */
  unexpected?: string[];
  /** ajv's English message, e.g. "must be string". */
  message: string;
}

// ajv's defaults already leave values alone (no coercion, no defaults, no
// removal) and stop at the first error; verbose puts the value and the
// failing schema on each error.
const ajv = new Ajv({ strict: false, validateFormats: false, addUsedSchema: false, verbose: true });

const routeAjv = new Ajv({ useDefaults: true, addUsedSchema: false });

/** A route validator as Fastify calls it: true or false, with ajv's `errors` on itself. */
export interface RouteValidator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/** Fastify's validatorCompiler for every route schema (body, querystring): compiles on first use. */
export function compileRouteSchema({ schema }: { schema: object }): RouteValidator {
  let compiled: ValidateFunction | undefined;
  const validate: RouteValidator = (data) => {
    compiled ??= routeAjv.compile(schema);
    const ok = compiled(data);
    validate.errors = compiled.errors;
    return ok;
  };
  return validate;
}

/** The first violation of `schema` by `value`, or null when it conforms. */
export function firstError(schema: object, value: unknown): SchemaError | null {
  // ajv keeps what it compiled keyed by the schema object (our schemas are module constants).
  const fn = ajv.compile(schema);
  return fn(value) ? null : neutral(fn.errors![0]!);
}

function neutral(e: ErrorObject): SchemaError {
  const path = e.instancePath.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  const out: SchemaError = { keyword: e.keyword, path, value: e.data, expected: e.schema, message: e.message! };
  if (e.keyword === 'required') out.missing = (e.params as { missingProperty: string }).missingProperty;
  if (e.keyword === 'additionalProperties') out.unexpected = unexpected(e.parentSchema!, e.data);
  return out;
}

/** The properties of `obj` that neither `properties` nor `patternProperties` of `schema` name. */
function unexpected(schema: Record<string, any>, obj: unknown): string[] {
  const props: Record<string, unknown> = schema.properties ?? {};
  const patterns = Object.keys(schema.patternProperties ?? {}).map((p) => new RegExp(p, 'u'));
  return Object.keys(obj as object).filter((k) => !Object.hasOwn(props, k) && !patterns.some((re) => re.test(k)));
}
