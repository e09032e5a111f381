// Reading request bodies that a route checks field by field (for a service's
// own error messages) rather than through a schema.

/** A JSON object as a record to read fields from; null for anything else (absent, an array, a scalar). */
export function objectOf(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}
