// How Cinder shows things: its timestamps (no zone, microseconds), its
// booleans in query strings, links, and the volume view per microversion.
import type { FastifyRequest } from 'fastify';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { invalidInput } from './errors.ts';
import { PREFIX, type VolumeVersion } from './http.ts';
import type { VolumeTables } from './schema.ts';

/** Cinder's timestamps: ISO 8601 without a zone, to the microsecond ("2026-12-06T20:15:00.123000"). */
export const cinderTime = (iso: string | null): string | null => (iso === null ? null : `${iso.replace(/Z$/, '').replace(/\.(\d{3})$/, '.$1000')}`);

/** oslo's strict bool_from_string, worded as Cinder's InvalidInput. */
export function parseBoolean(attr: string, s: string): boolean {
  const l = s.trim().toLowerCase();
  if (['true', '1', 't', 'yes', 'y', 'on'].includes(l)) return true;
  if (['false', '0', 'f', 'no', 'n', 'off'].includes(l)) return false;
  throw invalidInput(`Invalid value '${s}' for ${attr}: Unrecognized value '${s}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'`);
}

const hostUrl = (req: FastifyRequest): string => `${req.protocol}://${req.headers.host ?? 'localhost'}`;

/** Cinder's self + bookmark links of a resource. */
export function links(req: FastifyRequest, projectId: string, collection: string, id: string) {
  const base = `${hostUrl(req)}${PREFIX}`;
  return [
    { href: `${base}/v3/${projectId}/${collection}/${id}`, rel: 'self' },
    { href: `${base}/${projectId}/${collection}/${id}`, rel: 'bookmark' },
  ];
}

export const baseUrl = (req: FastifyRequest): string => `${hostUrl(req)}${PREFIX}`;

export type VolumeRow = VolumeTables['volume_volumes'];

export interface VolumeFacts {
  row: VolumeRow;
  metadata: Record<string, string>;
  /** Image properties (glance metadata); empty when none. */
  imageMetadata: Record<string, string>;
  /** The `attachments` entries (attach.ts). */
  attachments: unknown[];
  typeName: string;
}

/** A volume's metadata as shown: its own keys, and the admin metadata `readonly` once set (what Tempest reads). */
export function shownMetadata(f: VolumeFacts): Record<string, string> {
  const m = { ...f.metadata };
  if (f.row.readonly !== null) m.readonly = f.row.readonly ? 'True' : 'False';
  return m;
}

/** The summary entry of a list (`GET /volumes`). */
export const summaryView = (req: FastifyRequest, r: VolumeRow) => ({ id: r.id, name: r.name, links: links(req, r.project_id, 'volumes', r.id) });

/**
 * The detailed view (show, detail list, create, update), as Cinder shows it
 * at `v`; `extended`: with the extension attributes (`os-vol-*`) that show
 * and the detail list carry and create and update do not.
 */
export function volumeView(req: FastifyRequest, c: Credentials, v: VolumeVersion, f: VolumeFacts, extended = true): Record<string, unknown> {
  const r = f.row;
  const admin = isAdmin(c);
  const out: Record<string, unknown> = {
    id: r.id, name: r.name, description: r.description, size: r.size, status: r.status,
    availability_zone: r.availability_zone, created_at: cinderTime(r.created_at), updated_at: cinderTime(r.updated_at),
    attachments: f.attachments, bootable: r.bootable ? 'true' : 'false', encrypted: false, metadata: shownMetadata(f),
    volume_type: f.typeName, snapshot_id: r.snapshot_id, source_volid: r.source_volid, user_id: r.user_id,
    consistencygroup_id: null, replication_status: null, multiattach: !!r.multiattach, migration_status: r.migration_status,
    links: links(req, r.project_id, 'volumes', r.id),
  };
  if (extended) out['os-vol-tenant-attr:tenant_id'] = r.project_id;
  // the image metadata extension: on show and detail, only for a volume that has some
  if (extended && Object.keys(f.imageMetadata).length) out.volume_image_metadata = f.imageMetadata;
  if (extended && admin) {
    out['os-vol-host-attr:host'] = r.host;
    out['os-vol-mig-status-attr:migstat'] = r.migration_status;
    out['os-vol-mig-status-attr:name_id'] = null;
  }
  if (v.ge('3.13')) out.group_id = null;
  if (v.ge('3.21') && admin) out.provider_id = null;
  if (v.ge('3.48')) {
    out.shared_targets = false;
    out.service_uuid = null;
  }
  if (v.ge('3.61') && admin) out.cluster_name = null;
  if (v.ge('3.63')) out.volume_type_id = r.volume_type_id;
  // 3.64's encryption_key_id is shown only for a volume that has one: none is encrypted here
  // 3.65: every volume here counts in its project's quota (Cinder's temporary volumes do not)
  if (v.ge('3.65')) out.consumes_quota = true;
  return out;
}
