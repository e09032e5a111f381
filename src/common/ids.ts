import { randomUUID } from 'node:crypto';

/** Keystone style id: a uuid4 without dashes. */
export const hexId = (): string => randomUUID().replaceAll('-', '');
/** Nova/Glance style id: a dashed uuid4. */
export const uuid = (): string => randomUUID();

/** Timestamps are stored as ISO-8601 strings in UTC with millisecond precision. */
export const nowIso = (): string => new Date().toISOString();

/** Keystone renders times as 2015-08-27T09:49:58.000000Z. */
export function keystoneTime(iso: string | number | Date): string {
  // toISOString always ends in .mmmZ: microseconds are three more zeros.
  return `${new Date(iso).toISOString().slice(0, -1)}000Z`;
}
