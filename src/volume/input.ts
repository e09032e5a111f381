// Reading request fields as Cinder's validators do, with their wording:
// sizes (an integer, or a string of digits, from 1), texts up to 255, and
// metadata (string keys of 1..255 characters, string values up to 255).
import { objectOf } from '../http/body.ts';
import { badRequest, invalidInput } from './errors.ts';

export const MAX_INT = 2147483647;

/** A UUID as Cinder's validators take it (dashes optional, any case). */
export const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** A field's schema failure, worded as Cinder's jsonschema validator words it. */
export const fieldError = (field: string, value: unknown, reason: string) =>
  badRequest(`Invalid input for field/attribute ${field}. Value: ${typeof value === 'string' ? value : JSON.stringify(value)}. ${reason}`);

export function sizeOf(field: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) {
    if (v < 1) throw fieldError(field, v, `${v} is less than the minimum of 1`);
    if (v > MAX_INT) throw fieldError(field, v, `${v} is greater than the maximum of ${MAX_INT}`);
    return v;
  }
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) {
    const n = Number(v);
    if (n < 1) throw invalidInput(`${field} must be >= 1`);
    if (n > MAX_INT) throw invalidInput(`${field} must be <= ${MAX_INT}`);
    return n;
  }
  throw fieldError(field, v, `${JSON.stringify(v)} is not of type 'integer', 'string' or does not match '^[0-9]+$'`);
}

export function textOf(field: string, v: unknown, max = 255): string | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v !== 'string') throw fieldError(field, v, `${JSON.stringify(v)} is not of type 'string', 'null'`);
  if (v.length > max) throw fieldError(field, v, `'${v.slice(0, 20)}...' is too long`);
  return v;
}

/** Checks a metadata object as Cinder does (keys 1..255, values up to 255, strings). */
export function metadataOf(field: string, v: unknown): Record<string, string> {
  const o = objectOf(v);
  if (!o) throw fieldError(field, v, `${JSON.stringify(v)} is not of type 'object'`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) {
    if (k.length === 0) throw invalidInput('Metadata property key blank.');
    if (k.length > 255) throw invalidInput('Metadata property key greater than 255 characters.');
    if (typeof x !== 'string') throw fieldError(`${field}.${k}`, x, `${JSON.stringify(x)} is not of type 'string'`);
    if (x.length > 255) throw invalidInput('Metadata property value greater than 255 characters.');
    out[k] = x;
  }
  return out;
}
