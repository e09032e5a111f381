// The desired state of servers as agents receive it (`server` resources): the
// row, its flavor at boot, its image record, its config drive (Nova's
// openstack/latest layout) and, for a kind whose ports are taps (a VM: its
// driver gives each a NIC), its ports in interface order, its attached
// volumes once exported (server-volumes.ts) and, rescued, its rescue image; built for many
// servers with a handful of queries.
import type { Selectable } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { Tables } from '../../db/tables.ts';
import type { ImageService } from '../../image/service.ts';
import type { DesiredPower } from '../schema.ts';
import type { Resource } from '../../fleet/protocol.ts';
import { serverMetadataNetworking, type NetworkData, type ServerPortInterface } from '../../network/service.ts';
import { kindOf } from '../kinds.ts';
import { SERVER_KIND, type AgentImage, type ServerPortSpec, type ServerSpec, type ServerVolumeSpec } from './protocol.ts';
import { volumeSpecs } from './server-volumes.ts';
import type { ServerVolumes } from '../../volume/service.ts';
import { MigrationType, openMigration } from './migrations.ts';

type Server = Selectable<Tables['compute_servers']>;

const CHUNK = 500;

export function agentImage(img: { id: string; name: string | null; status: string; container_format: string | null; disk_format: string | null; size: number | null; checksum: string | null }): AgentImage {
  return { id: img.id, name: img.name, status: img.status, container_format: img.container_format, disk_format: img.disk_format, size: img.size, checksum: img.checksum };
}

/**
 * The desired state of servers on `hostname` (none given: where each is).
 * A server whose row names another host is one moved off `hostname` and not
 * yet confirmed or reverted (server-kind.ts migratedFrom): this host keeps it
 * stopped, with the disk image it ran from and no ports or volumes (they
 * went with it); or one arriving on `hostname` by live migration (its spec
 * says `incoming`: the driver holds it for the migration's requests).
 */
export async function desiredServers(db: Db, images: ImageService, ids: string[], volumes?: ServerVolumes, hostname?: string): Promise<Resource<ServerSpec>[]> {
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
  const mandatoryDrive = new Set<string>();
  for (const id of imageIds) {
    const img = await images.getImage(id);
    if (img) imageById.set(id, agentImage(img));
    // Nova's configdrive.required_by: the image may insist on a config drive
    if (img?.properties.img_config_drive === 'mandatory') mandatoryDrive.add(id);
  }
  // network_data.json: the same builder the metadata service answers with
  const networking = serverMetadataNetworking(db);
  const networkData = await networking.networkData(rows.map((r) => r.id));
  const interfaces = await networking.interfacesOf(rows.filter((r) => kindOf(r.kind).vifType === 'tap').map((r) => r.id));
  const attached = volumes ? await volumeSpecs(db, volumes, rows, meta) : new Map<string, ServerVolumeSpec[]>();
  // servers kept on this host after moving off it, or being stopped and copied to move: the disk image each ran from
  // here and the flavor it had (a resize to another host gives the row its new flavor at once)
  const kept = new Map<string, { old_disk_image: string | null; old_flavor: string }>();
  const moving = new Map<string, string>();
  const incoming = new Map<string, string>();
  const away = hostname === undefined ? [] : rows.filter((r) => r.host !== hostname).map((r) => r.id);
  const copying = rows.filter((r) => r.task_state === 'resize_migrating').map((r) => r.id);
  if (away.length || copying.length) {
    const ms = await db.selectFrom('compute_migrations').select(['server_id', 'uuid', 'migration_type', 'source_compute', 'dest_compute', 'old_disk_image', 'old_flavor'])
      .where('server_id', 'in', [...away, ...copying]).where((eb) => openMigration(eb)).orderBy('id', 'desc').execute();
    for (const m of ms) {
      const move = m.migration_type === MigrationType.migration || m.migration_type === MigrationType.resize;
      if (move && away.includes(m.server_id) && m.source_compute === hostname && !kept.has(m.server_id)) kept.set(m.server_id, m);
      if (move && copying.includes(m.server_id) && !moving.has(m.server_id)) moving.set(m.server_id, m.old_flavor);
      if (m.migration_type === MigrationType.live && away.includes(m.server_id) && m.dest_compute === hostname) incoming.set(m.server_id, m.uuid);
    }
  }
  return rows.map((row) => {
    const source = kept.get(row.id);
    const oldFlavor = source?.old_flavor ?? moving.get(row.id);
    const s = oldFlavor ? { ...row, flavor: oldFlavor } : row;
    const disk = source ? parseImage(source.old_disk_image) : diskImage(s);
    const d = toDesired(s, meta.get(s.id) ?? {}, disk ?? (s.image_id ? imageById.get(s.image_id) ?? null : null), networkData.get(s.id)!, {
      ports: source ? (interfaces.has(s.id) ? [] : undefined) : interfaces.get(s.id),
      driveRequested: s.config_drive === 'True' || (!!s.image_id && mandatoryDrive.has(s.image_id)),
      volumes: volumes ? (source ? [] : attached.get(s.id) ?? []) : undefined,
    });
    if (source) Object.assign(d.spec, { power: 'stopped', task_state: null, vm_state: 'stopped' });
    else if (incoming.has(s.id)) d.spec.incoming = { migration: incoming.get(s.id)! };
    // a cold migration stops the server on its source before its disk is copied (Nova powers it off first)
    else if (s.task_state === 'resize_migrating') d.spec.power = 'stopped';
    return d;
  });
}

function parseImage(json: string | null): AgentImage | null {
  if (!json) return null;
  try {
    return JSON.parse(json) as AgentImage;
  } catch {
    return null;
  }
}

/** The image an unshelved server's disk was made from (its shelve snapshot, perhaps deleted since), kept on the row. */
function diskImage(s: Server): AgentImage | null {
  return parseImage(s.disk_image);
}

/** The image a server boots from in rescue (the row's rescue_image) while it is rescuing or rescued and no unrescue runs. */
function rescueImage(s: Server): AgentImage | null {
  if (!s.rescue_image || s.task_state === 'unrescuing' || (s.vm_state !== 'rescued' && s.task_state !== 'rescuing')) return null;
  try {
    return JSON.parse(s.rescue_image) as AgentImage;
  } catch {
    return null;
  }
}

/** A port as the VM's driver takes it (protocol.ts ServerPortSpec). */
const portSpec = (p: ServerPortInterface): ServerPortSpec => ({ id: p.id, mac_address: p.mac_address, device: p.device, mtu: p.mtu, index: p.index });

function toDesired(s: Server, metadata: Record<string, string>, image: AgentImage | null, networkData: NetworkData,
  o: { ports: ServerPortInterface[] | undefined; driveRequested: boolean; volumes: ServerVolumeSpec[] | undefined }): Resource<ServerSpec> {
  let f: Record<string, any> = {};
  try {
    f = JSON.parse(s.flavor) as Record<string, any>;
  } catch { /* a broken row keeps the defaults */ }
  const keys = s.key_name && s.key_data ? [{ name: s.key_name, type: s.key_data.startsWith('-----BEGIN CERTIFICATE') ? 'x509' : 'ssh', data: s.key_data }] : [];
  const spec = toSpec(s, f, metadata, image, keys, networkData, o.driveRequested);
  // a container's ports are veths the network driver moves into its namespace: its spec names none
  if (o.ports) spec.ports = o.ports.map(portSpec);
  // the attached volumes whose volume host has exported them (server-volumes.ts)
  if (o.volumes) spec.volumes = o.volumes;
  // rescuing or rescued (until an unrescue is asked for): the driver boots the rescue image with the server's disk beside it
  const rescue = rescueImage(s);
  if (rescue) spec.rescue = { image: rescue };
  return { kind: SERVER_KIND, id: s.id, version: s.version, spec };
}

function toSpec(s: Server, f: Record<string, any>, metadata: Record<string, string>, image: AgentImage | null, keys: Array<{ name: string; type: string; data: string }>,
  networkData: NetworkData, driveRequested: boolean): ServerSpec {
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
      requested: driveRequested,
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
