// The server body exactly as Nova's view builder renders it, per microversion.
import { kindOf } from '../kinds.ts';
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Credentials } from '../../http/auth.ts';
import type { ComputeContext } from './context.ts';
import { apiVersion, bookmark, isoTime, links, naiveTime } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { FAULT_STATUSES, PROGRESS_STATUSES, statusOf } from './state.ts';
import { hostsByName, hostStatus, metadataOf, tagsOf, volumesAttachedOf, type HostRow, type ServerRow } from './servers-store.ts';

/** The flavor as it was at boot, kept in compute_servers.flavor. */
export interface EmbeddedFlavor {
  id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number; extra_specs: Record<string, string>;
}

export const parseFlavor = (s: ServerRow): EmbeddedFlavor => JSON.parse(s.flavor) as EmbeddedFlavor;
const parseList = <T>(text: string | null, dflt: T): T => {
  if (!text) return dflt;
  try {
    return JSON.parse(text) as T;
  } catch {
    return dflt;
  }
};

/** Related rows the view needs, loaded once for a page of servers. */
export interface ViewData {
  metadata: Map<string, Record<string, string>>;
  tags: Map<string, string[]>;
  hosts: Map<string, HostRow>;
  groups: Map<string, string>;
  /** Nova's `addresses` of each server (its ports' fixed IPs by network name). */
  addresses: Map<string, Record<string, unknown[]>>;
  /** The volumes attached to each server (os-extended-volumes:volumes_attached). */
  volumes: Map<string, Array<{ id: string; delete_on_termination: boolean }>>;
}

export async function viewData(ctx: ComputeContext, servers: ServerRow[]): Promise<ViewData> {
  const ids = servers.map((s) => s.id);
  const groups = new Map<string, string>();
  if (ids.length) {
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await ctx.db.selectFrom('compute_server_group_members').select(['group_id', 'server_id']).where('server_id', 'in', ids.slice(i, i + 500)).execute();
      for (const r of rows) groups.set(r.server_id, r.group_id);
    }
  }
  return {
    metadata: await metadataOf(ctx.db, ids),
    tags: await tagsOf(ctx.db, ids),
    hosts: await hostsByName(ctx.db, servers.map((s) => s.host)),
    groups,
    addresses: ctx.network && ids.length ? await ctx.network.addresses(ids) : new Map(),
    volumes: await volumesAttachedOf(ctx.db, ids),
  };
}

/** Which parts of the body to show, as Nova's ViewBuilder.show flags (update and rebuild show less before 2.75). */
export interface ShowOptions {
  showAZ?: boolean;
  showConfigDrive?: boolean;
  showKeypair?: boolean;
  showSrvUsg?: boolean;
  showSecGrp?: boolean;
  showExtendedStatus?: boolean;
  showExtendedVolumes?: boolean;
  /** null: by policy (admins). */
  showExtendedAttr?: boolean | null;
  /** null: by policy (admins). */
  showHostStatus?: boolean | null;
  showServerGroups?: boolean;
  showUserData?: boolean;
  /** false: addresses without OS-EXT-IPS type and MAC (Nova's extend_address, off in update and rebuild before 2.75). */
  showExtendedIps?: boolean;
}

const hostId = (s: ServerRow): string => (s.host ? createHash('sha224').update(`${s.project_id}${s.host}`).digest('hex') : '');

/** Nova's instance_name: a stable name for the server on its host. */
export const instanceName = (s: { id: string }): string => `instance-${s.id.replace(/-/g, '').slice(0, 8)}`;

export function availabilityZoneOf(s: ServerRow, h: HostRow | undefined): string {
  if (s.host && h) return h.availability_zone;
  return s.availability_zone ?? '';
}

export function renderServer(
  ctx: ComputeContext,
  req: FastifyRequest,
  cred: Credentials,
  s: ServerRow,
  data: ViewData,
  o: ShowOptions = {},
): Record<string, unknown> {
  const v = apiVersion(req);
  const opt = {
    showAZ: true, showConfigDrive: true, showKeypair: true, showSrvUsg: true, showSecGrp: true, showExtendedStatus: true,
    showExtendedVolumes: true, showExtendedAttr: null, showHostStatus: null, showServerGroups: false, showUserData: true, ...o,
  };
  const admin = isComputeAdmin(cred);
  const host = s.host ? data.hosts.get(s.host) : undefined;
  const flavor = parseFlavor(s);
  const status = statusOf(s.vm_state, s.task_state, s.deleted_at !== null && s.vm_state === 'deleted');
  const out: Record<string, unknown> = {
    accessIPv4: s.access_ipv4 ?? '',
    accessIPv6: s.access_ipv6 ?? '',
    addresses: o.showExtendedIps === false ? plainAddresses(data.addresses.get(s.id) ?? {}) : data.addresses.get(s.id) ?? {},
    created: isoTime(s.created_at),
    flavor: v.ge('2.47')
      ? { vcpus: flavor.vcpus, ram: flavor.ram, disk: flavor.disk, ephemeral: flavor.ephemeral, swap: flavor.swap, original_name: flavor.name, extra_specs: flavor.extra_specs ?? {} }
      : { id: flavor.id, links: [{ rel: 'bookmark', href: bookmark(req, 'flavors', flavor.id) }] },
    hostId: hostId(s),
    id: s.id,
    image: s.image_id ? { id: s.image_id, links: [{ rel: 'bookmark', href: bookmark(req, 'images', s.image_id) }] } : '',
    links: links(req, 'servers', s.id),
    metadata: data.metadata.get(s.id) ?? {},
    name: s.name,
    status,
    tenant_id: s.project_id,
    user_id: s.user_id,
    updated: isoTime(s.updated_at),
    'OS-DCF:diskConfig': s.disk_config ?? 'MANUAL',
  };
  if (FAULT_STATUSES.has(status) && s.fault) {
    const f = parseList<{ code?: number; message?: string; details?: string; created?: string } | null>(s.fault, null);
    if (f) {
      const fault: Record<string, unknown> = { code: Number(f.code ?? 500), created: isoTime(f.created ?? s.updated_at), message: String(f.message ?? '') };
      if (f.details && (admin || Number(f.code ?? 500) !== 500)) fault.details = String(f.details);
      out.fault = fault;
    }
  }
  if (PROGRESS_STATUSES.has(status)) out.progress = 0;
  if (opt.showAZ) out['OS-EXT-AZ:availability_zone'] = availabilityZoneOf(s, host);
  if (opt.showConfigDrive) out.config_drive = s.config_drive ?? '';
  if (opt.showKeypair) out.key_name = s.key_name;
  if (opt.showSrvUsg) {
    out['OS-SRV-USG:launched_at'] = naiveTime(s.launched_at);
    out['OS-SRV-USG:terminated_at'] = naiveTime(s.terminated_at);
  }
  if (opt.showSecGrp) {
    const groups = parseList<string[]>(s.security_groups, []);
    if (groups.length) out.security_groups = groups.map((name) => ({ name }));
  }
  const extended = opt.showExtendedAttr === null ? admin : opt.showExtendedAttr;
  if (extended) {
    out['OS-EXT-SRV-ATTR:host'] = s.host;
    out['OS-EXT-SRV-ATTR:instance_name'] = instanceName(s);
    // a bare-metal server's hypervisor is its node (Nova's instance.node: the Ironic node's uuid)
    out['OS-EXT-SRV-ATTR:hypervisor_hostname'] = s.host ? (s.node ?? host?.hostname ?? s.host) : null;
    if (v.ge('2.3')) {
      out['OS-EXT-SRV-ATTR:hostname'] = s.hostname;
      out['OS-EXT-SRV-ATTR:kernel_id'] = '';
      out['OS-EXT-SRV-ATTR:launch_index'] = s.launch_index;
      out['OS-EXT-SRV-ATTR:ramdisk_id'] = '';
      out['OS-EXT-SRV-ATTR:reservation_id'] = s.reservation_id;
      out['OS-EXT-SRV-ATTR:root_device_name'] = kindOf(s.kind).rootDeviceName;
      if (opt.showUserData) out['OS-EXT-SRV-ATTR:user_data'] = s.user_data;
    }
  }
  if (opt.showExtendedStatus) {
    out['OS-EXT-STS:task_state'] = s.task_state;
    out['OS-EXT-STS:vm_state'] = s.vm_state;
    out['OS-EXT-STS:power_state'] = s.power_state;
  }
  if (opt.showExtendedVolumes) {
    out['os-extended-volumes:volumes_attached'] = (data.volumes.get(s.id) ?? []).map((x) => (v.ge('2.3') ? x : { id: x.id }));
  }
  if (v.ge('2.9')) out.locked = s.locked === 1;
  if (v.ge('2.16')) {
    const showHost = opt.showHostStatus === null ? admin : opt.showHostStatus;
    if (showHost) out.host_status = hostStatus(s, host, ctx.config.serviceDownTime);
  }
  if (v.ge('2.19')) out.description = s.description;
  if (v.ge('2.26')) out.tags = data.tags.get(s.id) ?? [];
  if (v.ge('2.63')) out.trusted_image_certificates = parseList<string[] | null>(s.trusted_certs, null);
  if (opt.showServerGroups) {
    const g = data.groups.get(s.id);
    out.server_groups = g ? [g] : [];
  }
  if (v.ge('2.73')) out.locked_reason = s.locked === 1 ? s.locked_reason : null;
  if (v.ge('2.90') && !extended) out['OS-EXT-SRV-ATTR:hostname'] = s.hostname;
  if (opt.showAZ && v.ge('2.96')) out.pinned_availability_zone = s.requested_az;
  return out;
}

/** The body of a server in a list without details. */
export function renderBrief(req: FastifyRequest, s: ServerRow) {
  return { id: s.id, name: s.name, links: links(req, 'servers', s.id) };
}

const plainAddresses = (a: Record<string, unknown[]>) =>
  Object.fromEntries(Object.entries(a).map(([net, list]) => [net, (list as Array<{ version: number; addr: string }>).map((x) => ({ version: x.version, addr: x.addr }))]));

/** The show options of PUT /servers/{id} and rebuild: everything from 2.75, a subset before. */
export function partialView(req: FastifyRequest, rebuild: boolean): ShowOptions {
  const v = apiVersion(req);
  const all = v.ge('2.75');
  return {
    showAZ: all, showConfigDrive: all, showKeypair: all || (rebuild && v.ge('2.54')), showSrvUsg: all, showSecGrp: all,
    showExtendedStatus: all, showExtendedVolumes: all, showExtendedAttr: all ? null : false, showHostStatus: all ? null : false,
    showServerGroups: v.ge('2.71'), showUserData: !rebuild, showExtendedIps: all,
  };
}
