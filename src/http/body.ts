// Reading request bodies that a route checks field by field (for a service's
// own error messages) rather than through a schema.

/** A JSON object as a record to read fields from; null for anything else (absent, an array, a scalar). */
export function objectOf(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** What every service answers (in its own error body, 400) for a NUL character in a request. */
export const NUL_REFUSED = 'Invalid input: a NUL character is not allowed';

/**
 * Whether a parsed JSON body holds a NUL character in a string or a key
 * (PostgreSQL's text refuses it). Only plain objects and arrays are walked: a
 * body handed over as a stream (image data) or a Buffer is not read here. Iterative, so
 * depth costs no stack (the parser bounds it anyway).
 */
export function holdsNul(body: unknown): boolean {
  const stack: unknown[] = [body];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return true;
    } else if (Array.isArray(v)) {
      stack.push(...v);
    } else if (v !== null && typeof v === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(v))) {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\u0000')) return true;
        stack.push(x);
      }
    }
  }
  return false;
}

/** Whether a request's URL (path or query) holds an encoded NUL. */
export const urlHoldsNul = (url: string): boolean => /%00/.test(url);
