// JSON columns (stored as text) read back without ever throwing: a missing or
// malformed value gives the fallback.

export function parseJson<T = Record<string, unknown>>(s: string | null | undefined, fallback: T): T {
  if (!s) return fallback;
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
}

/** A JSON object column; anything but an object gives {}. */
export function parseJsonObject(s: string | null | undefined): Record<string, unknown> {
  const v = parseJson<unknown>(s, {});
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** A JSON list-of-strings column; anything but a list gives []. */
export function parseJsonList(s: string | null | undefined): string[] {
  const v = parseJson<unknown>(s, []);
  return Array.isArray(v) ? v.map(String) : [];
}
