// Helpers for the image API tests.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Cloud } from '../../harness.ts';
import { IMAGE_ACCOUNT, IMAGE_CONTAINER } from '../../../src/image/object-store.ts';

export const PATCH = { 'Content-Type': 'application/openstack-images-v2.1-json-patch' };

/** Every file below `dir`, recursively; `dir` must exist. */
export function filesUnder(dir: string): string[] {
  // No catch: a wrong or missing directory must fail the "nothing left" checks, not pass them.
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Whether the image tests run against the object store (STRATUS_TEST_IMAGE_STORE=object: Glance's swift store). */
export const objectImageStore = process.env.STRATUS_TEST_IMAGE_STORE === 'object';

/**
 * What the image store of the cloud keeps under `prefix` (e.g. `staging/`):
 * the files of the image directory, or the objects of the object store's
 * image container, as the store is configured.
 */
export async function storedImageData(cloud: Cloud, prefix = ''): Promise<string[]> {
  if (!objectImageStore) return filesUnder(join(cloud.dataDir, 'images', prefix));
  const store = cloud.server.objects.store;
  const c = await store.getContainer(IMAGE_ACCOUNT, IMAGE_CONTAINER, { internal: true });
  return c ? (await store.listObjects(c, { prefix, limit: 10000 })).map((e) => e.name) : [];
}
