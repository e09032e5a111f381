// What the API shows of nodes, ports, port groups and allocations, per
// microversion (a field appears from the version that added it, as Ironic's
// hide_fields_in_newer_versions), with secrets masked ("******") and what a
// lessee may not read redacted, as Ironic's node_sanitize.
import { parseJsonObject } from '../common/json.ts';
import type { Credentials } from '../http/auth.ts';
import type { Microversion } from '../http/microversion.ts';
import type { AllocationRow, NodeRow, PortgroupRow, PortRow } from './context.ts';
import { maskSecrets } from './drivers.ts';
import { MIN_VERSION } from './http.ts';
import { baremetalRules, nodeTarget } from './policy.ts';
import { S } from './states.ts';
import { iso, traitsList } from './util.ts';

/** Node fields and the version that added each (those not named: 1.1). */
export const NODE_FIELD_SINCE: Record<string, string> = {
  driver_internal_info: '1.3', name: '1.5', inspection_finished_at: '1.6', inspection_started_at: '1.6', clean_step: '1.7',
  raid_config: '1.12', target_raid_config: '1.12', network_interface: '1.20', resource_class: '1.21',
  boot_interface: '1.31', console_interface: '1.31', deploy_interface: '1.31', inspect_interface: '1.31', management_interface: '1.31',
  power_interface: '1.31', raid_interface: '1.31', vendor_interface: '1.31', storage_interface: '1.33', traits: '1.37',
  rescue_interface: '1.38', bios_interface: '1.40', fault: '1.42', deploy_step: '1.44', conductor_group: '1.46', automated_clean: '1.47',
  protected: '1.48', protected_reason: '1.48', conductor: '1.49', owner: '1.50', description: '1.51', allocation_uuid: '1.52',
  retired: '1.61', retired_reason: '1.61', lessee: '1.65', network_data: '1.66', boot_mode: '1.75', secure_boot: '1.75',
};
export const NODE_FIELDS = new Set([
  'uuid', 'name', 'driver', 'driver_info', 'driver_internal_info', 'extra', 'instance_info', 'instance_uuid', 'last_error', 'maintenance',
  'maintenance_reason', 'power_state', 'target_power_state', 'provision_state', 'target_provision_state', 'provision_updated_at',
  'properties', 'reservation', 'console_enabled', 'chassis_uuid', 'created_at', 'updated_at', ...Object.keys(NODE_FIELD_SINCE),
]);
/** A plain (not detailed) node list's fields. */
export const NODE_LIST_FIELDS = ['uuid', 'name', 'instance_uuid', 'power_state', 'provision_state', 'maintenance'];

export const nodeFieldsAt = (v: Microversion): Set<string> =>
  new Set([...NODE_FIELDS].filter((f) => !NODE_FIELD_SINCE[f] || v.ge(NODE_FIELD_SINCE[f]!)));

const link = (base: string, res: string, id: string) => [
  { href: `${base}/v1/${res}/${id}`, rel: 'self' }, { href: `${base}/${res}/${id}`, rel: 'bookmark' },
];

const json = (s: string | null) => parseJsonObject(s);

export interface NodeViewOpts {
  v: Microversion;
  base: string;
  cred: Credentials;
  traits: string[];
  /** The fields asked (null: all of this version; a list view's defaults otherwise). */
  fields: string[] | null;
}

export function nodeView(n: NodeRow, o: NodeViewOpts): Record<string, unknown> {
  const t = nodeTarget(n);
  const showSecrets = false;
  const ownerReader = baremetalRules['baremetal:node:get:last_error']!(o.cred, t);
  const ifaces = json(n.interfaces);
  let state: string | null = n.provision_state;
  if (o.v.lt('1.2') && state === S.available) state = null;
  if (o.v.lt('1.39') && state === S.inspectWait) state = S.inspecting;
  const instanceInfo = maskSecrets(json(n.instance_info));
  if (instanceInfo.configdrive) instanceInfo.configdrive = '******';
  if (instanceInfo.image_url) instanceInfo.image_url = '******';
  const all: Record<string, unknown> = {
    uuid: n.uuid, name: n.name, driver: n.driver,
    driver_info: ownerReader ? (showSecrets ? json(n.driver_info) : maskSecrets(json(n.driver_info))) : { content: '** Redacted - requires baremetal:node:get:driver_info permission. **' },
    driver_internal_info: ownerReader ? maskSecrets(json(n.driver_internal_info)) : { content: '** Redacted - Requires baremetal:node:get:driver_internal_info permission. **' },
    extra: json(n.extra), instance_info: instanceInfo, instance_uuid: n.instance_uuid,
    last_error: ownerReader || !n.last_error ? n.last_error : '** Value Redacted - Requires baremetal:node:get:last_error permission. **',
    maintenance: !!n.maintenance, maintenance_reason: n.maintenance_reason, power_state: n.power_state, target_power_state: n.target_power_state,
    provision_state: state, target_provision_state: n.target_provision_state, provision_updated_at: iso(n.provision_updated_at),
    properties: json(n.properties),
    reservation: ownerReader || !n.reservation ? n.reservation : '** Redacted - requires baremetal:node:get:reservation permission. **',
    console_enabled: !!n.console_enabled, chassis_uuid: n.chassis_uuid,
    inspection_started_at: iso(n.inspection_started_at), inspection_finished_at: iso(n.inspection_finished_at),
    clean_step: json(n.clean_step), deploy_step: json(n.deploy_step), raid_config: json(n.raid_config), target_raid_config: json(n.target_raid_config),
    resource_class: n.resource_class, traits: o.traits, fault: n.fault, conductor_group: n.conductor_group,
    automated_clean: n.automated_clean === null ? null : !!n.automated_clean, protected: !!n.protected, protected_reason: n.protected_reason,
    conductor: n.conductor, owner: n.owner, description: n.description, allocation_uuid: n.allocation_uuid,
    retired: !!n.retired, retired_reason: n.retired_reason, lessee: n.lessee, network_data: json(n.network_data),
    boot_mode: n.boot_mode, secure_boot: n.secure_boot === null ? null : !!n.secure_boot,
    created_at: iso(n.created_at), updated_at: iso(n.updated_at),
  };
  for (const t of ['bios', 'boot', 'console', 'deploy', 'inspect', 'management', 'network', 'power', 'raid', 'rescue', 'storage', 'vendor']) {
    all[`${t}_interface`] = ifaces[`${t}_interface`] ?? null;
  }
  const allowed = nodeFieldsAt(o.v);
  const out: Record<string, unknown> = {};
  for (const f of o.fields ?? [...allowed]) if (allowed.has(f)) out[f] = all[f];
  out.links = link(o.base, 'nodes', n.uuid);
  if (!o.fields) {
    out.ports = link(o.base, 'nodes', `${n.uuid}/ports`);
    if (o.v.ge('1.14')) out.states = link(o.base, 'nodes', `${n.uuid}/states`);
    if (o.v.ge('1.24')) out.portgroups = link(o.base, 'nodes', `${n.uuid}/portgroups`);
    if (o.v.ge('1.32')) out.volume = link(o.base, 'nodes', `${n.uuid}/volume`);
  }
  return out;
}

export const PORT_FIELD_SINCE: Record<string, string> = {
  internal_info: '1.18', local_link_connection: '1.19', pxe_enabled: '1.19', portgroup_uuid: '1.24', physical_network: '1.34', is_smartnic: '1.53',
};
export const PORT_FIELDS = new Set(['uuid', 'address', 'node_uuid', 'extra', 'created_at', 'updated_at', ...Object.keys(PORT_FIELD_SINCE)]);
export const PORT_LIST_FIELDS = ['uuid', 'address'];

export function portView(p: PortRow, v: Microversion, base: string, fields: string[] | null): Record<string, unknown> {
  const all: Record<string, unknown> = {
    uuid: p.uuid, address: p.address, node_uuid: p.node_uuid, extra: json(p.extra), internal_info: json(p.internal_info),
    local_link_connection: json(p.local_link_connection), pxe_enabled: !!p.pxe_enabled, portgroup_uuid: p.portgroup_uuid,
    physical_network: p.physical_network, is_smartnic: !!p.is_smartnic, created_at: iso(p.created_at), updated_at: iso(p.updated_at),
  };
  const out: Record<string, unknown> = {};
  for (const f of fields ?? [...PORT_FIELDS]) if (!PORT_FIELD_SINCE[f] || v.ge(PORT_FIELD_SINCE[f]!)) if (f in all) out[f] = all[f];
  out.links = link(base, 'ports', p.uuid);
  return out;
}

export const PORTGROUP_FIELD_SINCE: Record<string, string> = { mode: '1.26', properties: '1.26' };
export const PORTGROUP_FIELDS = new Set(['uuid', 'name', 'address', 'node_uuid', 'extra', 'internal_info', 'standalone_ports_supported', 'mode', 'properties', 'created_at', 'updated_at']);
export const PORTGROUP_LIST_FIELDS = ['uuid', 'address', 'name'];

export function portgroupView(g: PortgroupRow, v: Microversion, base: string, fields: string[] | null): Record<string, unknown> {
  const all: Record<string, unknown> = {
    uuid: g.uuid, name: g.name, address: g.address, node_uuid: g.node_uuid, extra: json(g.extra), internal_info: json(g.internal_info),
    standalone_ports_supported: !!g.standalone_ports_supported, mode: g.mode, properties: json(g.properties),
    created_at: iso(g.created_at), updated_at: iso(g.updated_at),
  };
  const out: Record<string, unknown> = {};
  for (const f of fields ?? [...PORTGROUP_FIELDS]) if (!PORTGROUP_FIELD_SINCE[f] || v.ge(PORTGROUP_FIELD_SINCE[f]!)) if (f in all) out[f] = all[f];
  out.links = link(base, 'portgroups', g.uuid);
  if (!fields) out.ports = link(base, 'portgroups', `${g.uuid}/ports`);
  return out;
}

export const ALLOCATION_FIELDS = new Set(['uuid', 'name', 'node_uuid', 'state', 'last_error', 'resource_class', 'traits', 'candidate_nodes', 'extra', 'owner', 'created_at', 'updated_at']);

export function allocationView(a: AllocationRow, v: Microversion, base: string, fields: string[] | null): Record<string, unknown> {
  const all: Record<string, unknown> = {
    uuid: a.uuid, name: a.name, node_uuid: a.node_uuid, state: a.state, last_error: a.last_error, resource_class: a.resource_class,
    traits: traitsList(a.traits), candidate_nodes: traitsList(a.candidate_nodes), extra: json(a.extra), owner: a.owner,
    created_at: iso(a.created_at), updated_at: iso(a.updated_at),
  };
  const out: Record<string, unknown> = {};
  for (const f of fields ?? [...ALLOCATION_FIELDS]) if (f !== 'owner' || v.ge('1.60')) if (f in all) out[f] = all[f];
  out.links = link(base, 'allocations', a.uuid);
  return out;
}

export const minVersion = MIN_VERSION;
