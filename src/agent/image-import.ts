// The all-in-one's default images, imported through the image API as the
// admin: `busybox` (the container image, an OCI archive) and `stratus-tiny`
// (the small VM image, a qcow2 disk; only where QEMU is installed). Each is
// imported once: DATA_DIR/<name>-imported remembers it, so an admin may delete
// the image and it stays deleted; an active public image of the same name is
// adopted instead of uploading a second one.
import { existsSync, openAsBlob, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { onPath } from './exec.ts';
import { buildBusyboxImage, ensureBusyboxStatic } from './drivers/container/busybox.ts';
import { buildTinyImage, DEFAULT_GUEST_CACHE, TINY_IMAGE_GLANCE, TINY_IMAGE_NAME } from './drivers/vm/guest/tiny-image.ts';

export interface ImportTarget { url: string; adminPassword: string; dataDir: string; log: Logger }

/** A project-scoped admin token of the cloud at `url`. */
async function adminToken(url: string, password: string, what: string): Promise<string> {
  const auth = await fetch(`${url}/identity/v3/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
  });
  const token = auth.headers.get('x-subject-token');
  if (auth.status !== 201 || !token) throw new Error(`cannot log in as admin to import the ${what} image (${auth.status})`);
  return token;
}

/**
 * Uploads the file `build()` makes as the public image `name` with the image
 * fields `fields` (container_format, disk_format, properties...), once (see
 * above). Returns the image id, or null when it was imported before.
 * `build` returns the file and whether to delete it afterwards.
 */
export async function importImageOnce(o: ImportTarget & { name: string; fields: Record<string, unknown>; build: () => Promise<{ file: string; temporary: boolean }> }): Promise<string | null> {
  const marker = join(o.dataDir, `${o.name}-imported`);
  if (existsSync(marker)) return null;
  const built = await o.build();
  try {
    const h = { 'x-auth-token': await adminToken(o.url, o.adminPassword, o.name) };
    const existing = await fetch(`${o.url}/image/v2/images?name=${encodeURIComponent(o.name)}`, { headers: h }).then((r) => r.json() as Promise<{ images?: Array<{ id: string; status: string }> }>);
    let id = existing.images?.find((i) => i.status === 'active')?.id ?? null;
    if (!id) {
      const created = await fetch(`${o.url}/image/v2/images`, {
        method: 'POST', headers: { ...h, 'content-type': 'application/json' },
        body: JSON.stringify({ name: o.name, visibility: 'public', ...o.fields }),
      });
      if (created.status !== 201) throw new Error(`creating the ${o.name} image failed: ${created.status} ${await created.text()}`);
      id = ((await created.json()) as { id: string }).id;
      const up = await fetch(`${o.url}/image/v2/images/${id}/file`, { method: 'PUT', headers: { ...h, 'content-type': 'application/octet-stream' }, body: await openAsBlob(built.file) });
      if (up.status !== 204) throw new Error(`uploading the ${o.name} image failed: ${up.status} ${await up.text()}`);
      o.log.info({ image: id, name: o.name }, `imported the default ${o.name} image`);
    }
    writeFileSync(marker, `${id}\n`);
    return id;
  } finally {
    if (built.temporary) await fsp.rm(built.file, { force: true });
  }
}

/** The `busybox` container image (public, container_format docker, disk_format raw). */
export async function importDefaultImage(o: ImportTarget): Promise<string | null> {
  return importImageOnce({
    ...o, name: 'busybox', fields: { container_format: 'docker', disk_format: 'raw' },
    build: async () => {
      await ensureBusyboxStatic();
      const file = join(o.dataDir, 'busybox.tar');
      await buildBusyboxImage(file);
      return { file, temporary: true };
    },
  });
}


/**
 * The small VM image `stratus-tiny` (public, bare qcow2, with the properties
 * of TINY_IMAGE_GLANCE), built from Debian packages (docs/guest-images.md)
 * into the guest cache; only on a machine with qemu-system-x86_64 (null
 * otherwise, and when it was imported before).
 */
export async function importTinyImage(o: ImportTarget & { cacheDir?: string }): Promise<string | null> {
  if (existsSync(join(o.dataDir, `${TINY_IMAGE_NAME}-imported`))) return null;
  if (!onPath('qemu-system-x86_64')) {
    o.log.info(`qemu-system-x86_64 is not installed: no ${TINY_IMAGE_NAME} VM image imported`);
    return null;
  }
  const { container_format, disk_format, min_disk, min_ram, ...properties } = TINY_IMAGE_GLANCE;
  return importImageOnce({
    ...o, name: TINY_IMAGE_NAME, fields: { container_format, disk_format, min_disk, min_ram, ...properties },
    build: async () => {
      const t0 = Date.now();
      const img = await buildTinyImage({ cacheDir: o.cacheDir ?? DEFAULT_GUEST_CACHE, log: (msg) => o.log.info(msg) });
      o.log.info({ key: img.key, kernel: img.kernel.package, bytes: img.size, ms: Date.now() - t0 }, `${TINY_IMAGE_NAME} image ready`);
      return { file: img.disk, temporary: false };
    },
  });
}
