// A VM's config drive: an ISO 9660 image labelled `config-2` in OpenStack's
// layout, which cloud-init (ConfigDrive source) and the Stratus guest read:
//   openstack/latest/meta_data.json      uuid, name, hostname, keys, metadata...
//   openstack/latest/user_data           the user's data, decoded (absent when none)
//   openstack/latest/network_data.json   links, networks, services
//   openstack/latest/vendor_data.json    vendor data
//   openstack/latest/vendor_data2.json   dynamic vendor data ({} here)
// Built with genisoimage (Debian's package of the same name) from a staging
// directory that is removed afterwards; the ISO appears by rename.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { DesiredServer } from '../../../compute/engine/protocol.ts';
import { runOk } from '../../exec.ts';

/** The files of the drive, relative to its root. */
export function configDriveFiles(d: Pick<DesiredServer, 'id' | 'config_drive'>): Array<[string, Buffer]> {
  const cd = d.config_drive;
  const files: Array<[string, Buffer]> = [
    // uuid first: a busybox guest reads it with sed
    ['openstack/latest/meta_data.json', Buffer.from(JSON.stringify({ uuid: d.id, ...cd.meta_data }))],
    ['openstack/latest/network_data.json', Buffer.from(JSON.stringify(cd.network_data))],
    ['openstack/latest/vendor_data.json', Buffer.from(JSON.stringify(cd.vendor_data))],
    ['openstack/latest/vendor_data2.json', Buffer.from(JSON.stringify({}))],
  ];
  if (cd.user_data) files.push(['openstack/latest/user_data', Buffer.from(cd.user_data, 'base64')]);
  return files;
}

/** Writes `iso` (replacing it) for the server; `staging` is a scratch directory that is removed. */
export async function buildConfigDrive(d: Pick<DesiredServer, 'id' | 'config_drive'>, iso: string, staging: string): Promise<void> {
  await writeConfigDriveIso(configDriveFiles(d), iso, staging);
}

/** Writes a `config-2` ISO 9660 image of `files` to `iso` (replacing it); also the bare-metal conductor's. */
export async function writeConfigDriveIso(files: Array<[string, Buffer]>, iso: string, staging: string): Promise<void> {
  await fsp.rm(staging, { recursive: true, force: true });
  try {
    for (const [name, data] of files) {
      const f = join(staging, name);
      await fsp.mkdir(join(f, '..'), { recursive: true, mode: 0o755 });
      await fsp.writeFile(f, data, { mode: 0o644 });
    }
    await runOk('genisoimage', ['-quiet', '-V', 'config-2', '-r', '-J', '-input-charset', 'utf-8', '-o', `${iso}.tmp`, staging]);
    await fsp.rename(`${iso}.tmp`, iso);
  } finally {
    await fsp.rm(staging, { recursive: true, force: true });
    await fsp.rm(`${iso}.tmp`, { force: true });
  }
}
