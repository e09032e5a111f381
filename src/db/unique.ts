// Uniqueness violations, which every service turns into its own 409 (or, for
// an insert a concurrent twin already made, into nothing).
import type { ApiError } from '../common/errors.ts';

/** True when a database error is a uniqueness violation (SQLite or PostgreSQL). */
function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || /UNIQUE constraint failed|PRIMARY KEY|duplicate key/i.test(err?.message ?? '');
}

/** Awaits a write; a uniqueness violation becomes the given 409 (`error()`), anything else is rethrown. */
export async function conflictOnDuplicate<T>(write: Promise<T>, error: () => ApiError): Promise<T> {
  try {
    return await write;
  } catch (e) {
    if (isUniqueViolation(e)) throw error();
    throw e;
  }
}

/** Awaits an insert whose row may already be there (a concurrent twin): that counts as done. */
export async function ignoreDuplicate(write: Promise<unknown>): Promise<void> {
  try {
    await write;
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
  }
}
