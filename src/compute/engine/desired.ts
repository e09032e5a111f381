// The desired state of servers as agents receive it (`server` resources): the
// row, its flavor at boot, its image record, and its config drive (Nova's
// openstack/latest layout), built for many servers with a handful of queries.
import type { Selectable } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { Tables } from '../../db/tables.ts';
import type { ImageService } from '../../image/service.ts';
import type { DesiredPower } from '../schema.ts';
import type { Resource } from '../../fleet/protocol.ts';
import { serverMetadataNetworking, type NetworkData } from '../../network/service.ts';
import { SERVER_KIND, type AgentImage, type ServerSpec } from './protocol.ts';

type Server = Selectable<Tables['compute_servers']>;

const CHUNK = 500;

export function agentImage(img: { id: string; name: string | null; status: string; container_format: string | null; disk_format: string | null; size: number | null; checksum: string | null }): AgentImage {
  return { id: img.id, name: img.name, status: img.status, container_format: img.container_format, disk_format: img.disk_format, size: img.size, checksum: img.checksum };
}

export async function desiredServers(db: Db, images: ImageService, ids: string[]): Promise<Resource<ServerSpec>[]> {
  if (!ids.length) return [];
  const rows: Server[] = [];
  const meta = new Map<string, Record<string, string>>();
  for (let i = 0; i < ids.length; i += CHUNK) {
    const chunk = ids.slice(i, i + CHUNK);
    rows.push(...await db.selectFrom('compute_servers').selectAll().where('id', 'in', chunk).execute());
    for (const m of await db.selectFrom('compute_server_metadata').select(['server_id', 'key', 'value']).where('server_id', 'in', chunk).execute()) {
      const o = meta.get(m.server_id) ?? {};
      o[m.key] = m.value;
      meta.set(m.server_id, o);
    }
  }
  const imageIds = [...new Set(rows.map((r) => r.image_id).filter((x): x is string => !!x))];
  const imageById = new Map<string, AgentImage>();
  for (const id of imageIds) {
    const img = await images.getImage(id);
    if (img) imageById.set(id, agentImage(img));
  }
  // network_data.json: the same builder the metadata service answers with
  const networkData = await serverMetadataNetworking(db).networkData(rows.map((r) => r.id));
  return rows.map((s) => toDesired(s, meta.get(s.id) ?? {}, s.image_id ? imageById.get(s.image_id) ?? null : null, networkData.get(s.id)!));
}

function toDesired(s: Server, metadata: Record<string, string>, image: AgentImage | null, networkData: NetworkData): Resource<ServerSpec> {
  let f: Record<string, any> = {};
  try {
    f = JSON.parse(s.flavor) as Record<string, any>;
  } catch { /* a broken row keeps the defaults */ }
  const keys = s.key_name && s.key_data ? [{ name: s.key_name, type: s.key_data.startsWith('-----BEGIN CERTIFICATE') ? 'x509' : 'ssh', data: s.key_data }] : [];
  return { kind: SERVER_KIND, id: s.id, version: s.version, spec: toSpec(s, f, metadata, image, keys, networkData) };
}

function toSpec(s: Server, f: Record<string, any>, metadata: Record<string, string>, image: AgentImage | null, keys: Array<{ name: string; type: string; data: string }>, networkData: NetworkData): ServerSpec {
  return {
    name: s.name, hostname: s.hostname, project_id: s.project_id, user_id: s.user_id, kind: s.kind,
    image,
    flavor: {
      id: String(f.id ?? s.flavor_id), name: String(f.name ?? ''), vcpus: Number(f.vcpus ?? 1), ram: Number(f.ram ?? 512), disk: Number(f.disk ?? 0),
      ephemeral: Number(f.ephemeral ?? 0), swap: Number(f.swap ?? 0), extraSpecs: (f.extra_specs ?? {}) as Record<string, string>,
    },
    power: s.desired_power as DesiredPower,
    reboot_seq: s.reboot_seq, reboot_type: s.reboot_type, rebuild_seq: s.rebuild_seq,
    vm_state: s.vm_state, task_state: s.task_state,
    deleted: s.task_state === 'deleting' || s.deleted_at !== null,
    config_drive: {
      // Nova's meta_data.json (the agent puts "uuid" first)
      meta_data: {
        name: s.name, hostname: s.hostname, launch_index: s.launch_index, availability_zone: s.availability_zone ?? 'nova',
        project_id: s.project_id, meta: metadata, devices: [],
        ...(keys.length ? { public_keys: Object.fromEntries(keys.map((k) => [k.name, k.data])), keys } : {}),
      },
      user_data: s.user_data,
      network_data: networkData as unknown as Record<string, unknown>,
      vendor_data: {},
    },
  };
}
