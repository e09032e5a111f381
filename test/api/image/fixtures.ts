// Helpers for the image API tests.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export const PATCH = { 'Content-Type': 'application/openstack-images-v2.1-json-patch' };

/** Every file below `dir`, recursively; `dir` must exist. */
export function filesUnder(dir: string): string[] {
  // No catch: a wrong or missing directory must fail the "nothing left" checks, not pass them.
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}
