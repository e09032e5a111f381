// Ironic's other resources: ports (MAC unique), port groups (1.23), drivers
// (the hardware types the conductors serve), conductors (1.49), allocations
// (1.52, processed at once: a matching available node is given the
// allocation and its instance_uuid), chassis, and events (1.54, accepted).
import { nowIso, uuid as newUuid } from '../common/ids.ts';
import { parseJsonList, parseJsonObject } from '../common/json.ts';
import { objectOf } from '../http/body.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import { conductors } from './conductors.ts';
import type { AllocationRow, BmContext, NodeRow, PortgroupRow, PortRow } from './context.ts';
import { INTERFACE_TYPES, INTERFACES, isHardwareType, PROPERTIES } from './drivers.ts';
import { E } from './errors.ts';
import { at, mv, since } from './http.ts';
import { applyPatch, checkPatch } from './patch.ts';
import { nodeTarget, seesNode } from './policy.ts';
import { HARDWARE_TYPES } from './protocol.ts';
import { S } from './states.ts';
import { afterChange, canonUuid, fieldsOf, findNode, isUuid, iso, listQuery, NAME_RE, nodeTraits, one, page, parseBool, reqBase } from './util.ts';
import {
  ALLOCATION_FIELDS, allocationView, PORT_FIELD_SINCE, PORT_FIELDS, PORT_LIST_FIELDS, PORTGROUP_FIELDS, PORTGROUP_LIST_FIELDS, portgroupView, portView,
} from './view.ts';

const RULE = 'baremetal:api';
const MAC_RE = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i;
const mac = (v: unknown): string => {
  if (typeof v !== 'string' || !MAC_RE.test(v)) throw E.invalid(`Expected a MAC address but received ${String(v)}.`);
  return v.toLowerCase().replaceAll('-', ':');
};
const dict = (v: unknown, f: string): Record<string, unknown> => {
  if (v === undefined || v === null) return {};
  const o = objectOf(v);
  if (!o) throw E.invalid(`Invalid input for field/attribute ${f}. Value: ${JSON.stringify(v)}. Value should be a dict.`);
  return o;
};
type Q = Record<string, string | string[] | undefined>;

const LLC_KEYS = new Set(['port_id', 'switch_id', 'switch_info', 'hostname', 'network_type']);
function checkLlc(v: unknown, ver: RouteContext): Record<string, unknown> {
  const o = dict(v, 'local_link_connection');
  for (const k of Object.keys(o)) if (!LLC_KEYS.has(k)) throw E.invalid(`Invalid local_link_connection: unknown key ${k}.`);
  if (o.network_type !== undefined) {
    if (!at(ver, '1.64')) throw E.notAcceptable();
    if (o.network_type !== 'managed' && o.network_type !== 'unmanaged') throw E.invalid(`Invalid local_link_connection: network_type must be managed or unmanaged.`);
  }
  const n = Object.keys(o).length;
  if (n && o.network_type !== 'unmanaged' && !(o.port_id && (o.switch_id || o.hostname))) {
    throw E.invalid('Invalid local_link_connection: port_id and switch_id (or hostname for a smart NIC) are required.');
  }
  return o;
}

export function portRoutes(ctx: BmContext): Route[] {
  const db = ctx.db;
  const base = (rc: RouteContext) => reqBase(rc.req);
  const loadPort = async (rc: RouteContext, rule: string): Promise<{ p: PortRow; n: NodeRow }> => {
    const id = rc.params.port!;
    const p = await db.selectFrom('baremetal_ports').selectAll().where(isUuid(id) ? 'uuid' : 'address', '=', isUuid(id) ? canonUuid(id) : id.toLowerCase()).executeTakeFirst();
    const n = p ? await db.selectFrom('baremetal_nodes').selectAll().where('uuid', '=', p.node_uuid).executeTakeFirst() : undefined;
    if (!p || !n || !seesNode(rc.cred!, n)) throw E.portNotFound(id);
    rc.enforce(rule, nodeTarget(n));
    return { p, n };
  };
  const validFields = (rc: RouteContext) => new Set([...PORT_FIELDS].filter((f) => !PORT_FIELD_SINCE[f] || mv(rc).ge(PORT_FIELD_SINCE[f]!)));

  async function listPorts(rc: RouteContext, detail: boolean, o: { node?: NodeRow; portgroup?: PortgroupRow } = {}) {
    const q = rc.query as Q;
    if (one(q.detail) !== undefined) {
      if (!at(rc, '1.43')) throw E.notAcceptable();
      detail ||= parseBool(one(q.detail), 'detail');
    }
    const fields = fieldsOf(rc, validFields(rc));
    const lq = listQuery(rc, new Set(['uuid', 'address', 'created_at', 'updated_at', 'node_uuid', 'pxe_enabled', 'physical_network']));
    let sel = db.selectFrom('baremetal_ports').selectAll();
    let nodeIdent = one(q.node) ?? one(q.node_uuid);
    if (o.node) nodeIdent = o.node.uuid;
    if (nodeIdent !== undefined) {
      const n = await findNode(ctx, nodeIdent, rc.cred);
      sel = sel.where('node_uuid', '=', n.uuid);
    }
    const addr = one(q.address);
    if (addr !== undefined) sel = sel.where('address', '=', addr.toLowerCase());
    const pg = o.portgroup?.uuid ?? one(q.portgroup);
    if (pg !== undefined) {
      if (!at(rc, '1.24')) throw E.notAcceptable();
      const g = await db.selectFrom('baremetal_portgroups').select('uuid').where(isUuid(pg) ? 'uuid' : 'name', '=', pg).executeTakeFirst();
      if (!g) throw E.portgroupNotFound(pg);
      sel = sel.where('portgroup_uuid', '=', g.uuid);
    }
    let rows = await sel.execute();
    if (!isAdmin(rc.cred!)) {
      const visible = new Set((await db.selectFrom('baremetal_nodes').select(['uuid', 'owner', 'lessee']).execute()).filter((n) => seesNode(rc.cred!, n)).map((n) => n.uuid));
      rows = rows.filter((p) => visible.has(p.node_uuid));
    }
    const p = page(rc, rows, lq, { resource: 'ports', notFound: (m) => E.portNotFound(m) });
    const out: Record<string, unknown> = { ports: p.items.map((x) => portView(x, mv(rc), base(rc), detail ? null : fields ?? PORT_LIST_FIELDS)) };
    if (p.next) out.next = p.next;
    return out;
  }

  async function checkPortgroup(nodeUuid: string, pg: unknown): Promise<string | null> {
    if (pg === undefined || pg === null) return null;
    if (typeof pg !== 'string') throw E.invalid('Invalid portgroup_uuid.');
    // by uuid or name, as Ironic's Portgroup.get
    const g = await db.selectFrom('baremetal_portgroups').select(['uuid', 'node_uuid']).where(isUuid(pg) ? 'uuid' : 'name', '=', isUuid(pg) ? canonUuid(pg) : pg).executeTakeFirst();
    if (!g) throw E.portgroupNotFound(pg);
    if (g.node_uuid !== nodeUuid) throw E.invalid('Port can not be added to a portgroup belonging to a different node.');
    return g.uuid;
  }

  return [
    route({ method: 'GET', path: '/v1/ports', rule: 'baremetal:port:list', handler: (rc) => listPorts(rc, false) }),
    route({ method: 'GET', path: '/v1/ports/detail', rule: 'baremetal:port:list', handler: (rc) => listPorts(rc, true) }),
    route({
      method: 'GET', path: '/v1/nodes/:node/ports', rule: RULE,
      handler: async (rc) => {
        const n = await findNode(ctx, rc.params.node!, rc.cred);
        rc.enforce('baremetal:port:list', nodeTarget(n));
        return listPorts(rc, false, { node: n });
      },
    }),
    route({
      method: 'GET', path: '/v1/nodes/:node/ports/detail', rule: RULE,
      handler: async (rc) => listPorts(rc, true, { node: await findNode(ctx, rc.params.node!, rc.cred) }),
    }),
    route({
      method: 'GET', path: '/v1/ports/:port', rule: RULE,
      handler: async (rc) => {
        const { p } = await loadPort(rc, 'baremetal:port:get');
        return portView(p, mv(rc), base(rc), fieldsOf(rc, validFields(rc)));
      },
    }),
    route({
      method: 'POST', path: '/v1/ports', rule: RULE, status: 201,
      handler: async (rc) => {
        const b = objectOf(rc.body);
        if (!b) throw E.invalid('Invalid input: the body must be a JSON object (a port).');
        const known = new Set(['uuid', 'address', 'node_uuid', 'extra', 'local_link_connection', 'pxe_enabled', 'portgroup_uuid', 'physical_network', 'is_smartnic']);
        for (const k of Object.keys(b)) {
          if (!known.has(k)) throw E.invalid(`Unknown attribute for argument port: ${k}`);
          if (PORT_FIELD_SINCE[k] && mv(rc).lt(PORT_FIELD_SINCE[k]!)) throw E.notAcceptable();
        }
        if (typeof b.node_uuid !== 'string') throw E.invalid('Invalid input for field/attribute node_uuid. Value: None. Mandatory field missing.');
        const n = await findNode(ctx, b.node_uuid, rc.cred).catch(() => { throw E.nodeNotFound(String(b.node_uuid)); });
        rc.enforce('baremetal:port:create', nodeTarget(n));
        const address = mac(b.address);
        if (await db.selectFrom('baremetal_ports').select('uuid').where('address', '=', address).executeTakeFirst()) throw E.macExists(address);
        const uuid = b.uuid === undefined || b.uuid === null ? newUuid() : isUuid(String(b.uuid)) ? canonUuid(String(b.uuid)) : (() => { throw E.invalid(`Expected a UUID but received ${String(b.uuid)}.`); })();
        if (await db.selectFrom('baremetal_ports').select('uuid').where('uuid', '=', uuid).executeTakeFirst()) throw E.portExists(uuid);
        if (b.physical_network !== undefined && b.physical_network !== null && (typeof b.physical_network !== 'string' || b.physical_network.length > 64)) {
          throw E.invalid('Invalid input for field/attribute physical_network.');
        }
        const row = {
          uuid, address, node_uuid: n.uuid, portgroup_uuid: await checkPortgroup(n.uuid, b.portgroup_uuid),
          pxe_enabled: b.pxe_enabled === undefined || b.pxe_enabled === null ? 1 : parseBool(b.pxe_enabled, 'pxe_enabled') ? 1 : 0,
          physical_network: (b.physical_network as string | undefined) ?? null, local_link_connection: JSON.stringify(checkLlc(b.local_link_connection, rc)),
          extra: JSON.stringify(dict(b.extra, 'extra')), internal_info: '{}', is_smartnic: b.is_smartnic === undefined ? 0 : parseBool(b.is_smartnic, 'is_smartnic') ? 1 : 0,
          created_at: nowIso(), updated_at: null,
        };
        try {
          await db.insertInto('baremetal_ports').values(row).execute();
        } catch (err) {
          if (await db.selectFrom('baremetal_ports').select('uuid').where('address', '=', address).executeTakeFirst()) throw E.macExists(address);
          throw err;
        }
        await bumpNode(ctx, n.uuid);
        rc.reply.header('Location', `${base(rc)}/v1/ports/${uuid}`);
        return portView({ ...row }, mv(rc), base(rc), null);
      },
    }),
    route({
      method: 'PATCH', path: '/v1/ports/:port', rule: RULE,
      handler: async (rc) => {
        const { p, n } = await loadPort(rc, 'baremetal:port:update');
        const doc: Record<string, unknown> = {
          address: p.address, node_uuid: p.node_uuid, extra: parseJsonObject(p.extra), local_link_connection: parseJsonObject(p.local_link_connection),
          pxe_enabled: !!p.pxe_enabled, portgroup_uuid: p.portgroup_uuid, physical_network: p.physical_network, is_smartnic: !!p.is_smartnic,
        };
        const { doc: d, touched } = applyPatch(doc, checkPatch(rc.body), new Set(Object.keys(doc)), new Set(['uuid', 'internal_info', 'created_at', 'updated_at', 'links']));
        for (const f of touched) if (PORT_FIELD_SINCE[f] && mv(rc).lt(PORT_FIELD_SINCE[f]!)) throw E.notAcceptable();
        const address = mac(d.address);
        if (address !== p.address && await db.selectFrom('baremetal_ports').select('uuid').where('address', '=', address).executeTakeFirst()) throw E.macExists(address);
        let nodeUuid = p.node_uuid;
        if (touched.has('node_uuid')) {
          const other = await findNode(ctx, String(d.node_uuid), rc.cred);
          nodeUuid = other.uuid;
        }
        const busy = [S.deploying, S.deployWait, S.cleaning, S.cleanWait, S.inspecting, S.inspectWait].includes(n.provision_state as never);
        if ((touched.has('address') || touched.has('node_uuid')) && (busy || n.provision_state === S.active) && !n.maintenance) {
          throw E.conflict(`Cannot update port ${p.uuid} of node ${n.uuid} while it is in state "${n.provision_state}".`);
        }
        const upd = {
          address, node_uuid: nodeUuid, extra: JSON.stringify(dict(d.extra, 'extra')), local_link_connection: JSON.stringify(checkLlc(d.local_link_connection, rc)),
          pxe_enabled: d.pxe_enabled === null ? 1 : parseBool(d.pxe_enabled, 'pxe_enabled') ? 1 : 0, portgroup_uuid: await checkPortgroup(nodeUuid, d.portgroup_uuid),
          physical_network: (d.physical_network as string | null) ?? null, is_smartnic: d.is_smartnic ? 1 : 0, updated_at: nowIso(),
        };
        await db.updateTable('baremetal_ports').set(upd).where('uuid', '=', p.uuid).execute();
        await bumpNode(ctx, p.node_uuid);
        if (nodeUuid !== p.node_uuid) await bumpNode(ctx, nodeUuid);
        return portView({ ...p, ...upd }, mv(rc), base(rc), null);
      },
    }),
    route({
      method: 'DELETE', path: '/v1/ports/:port', rule: RULE, status: 204,
      handler: async (rc) => {
        const { p, n } = await loadPort(rc, 'baremetal:port:delete');
        const vif = parseJsonObject(p.internal_info).tenant_vif_port_id;
        if (vif && n.provision_state === S.active && !n.maintenance) throw E.invalid(`Cannot delete an active port ${p.uuid} on node ${n.uuid} with VIF ${String(vif)} attached.`);
        await db.deleteFrom('baremetal_ports').where('uuid', '=', p.uuid).execute();
        await bumpNode(ctx, n.uuid);
      },
    }),
  ];
}

/** A node's ports changed: its spec (the NICs) has a new version. */
async function bumpNode(ctx: BmContext, uuid: string): Promise<void> {
  await ctx.db.updateTable('baremetal_nodes').set((eb) => ({ version: eb('version', '+', 1) })).where('uuid', '=', uuid).execute();
  const n = await ctx.db.selectFrom('baremetal_nodes').select('conductor').where('uuid', '=', uuid).executeTakeFirst();
  ctx.notify(n?.conductor ?? null);
}

export function portgroupRoutes(ctx: BmContext): Route[] {
  const db = ctx.db;
  const base = (rc: RouteContext) => reqBase(rc.req);
  const load = async (rc: RouteContext, rule: string): Promise<{ g: PortgroupRow; n: NodeRow }> => {
    const id = rc.params.portgroup!;
    const g = await db.selectFrom('baremetal_portgroups').selectAll().where(isUuid(id) ? 'uuid' : 'name', '=', isUuid(id) ? canonUuid(id) : id).executeTakeFirst();
    const n = g ? await db.selectFrom('baremetal_nodes').selectAll().where('uuid', '=', g.node_uuid).executeTakeFirst() : undefined;
    if (!g || !n || !seesNode(rc.cred!, n)) throw E.portgroupNotFound(id);
    rc.enforce(rule, nodeTarget(n));
    return { g, n };
  };
  async function list(rc: RouteContext, detail: boolean, node?: NodeRow) {
    const q = rc.query as Q;
    if (one(q.detail) !== undefined) detail ||= parseBool(one(q.detail), 'detail');
    const fields = fieldsOf(rc, PORTGROUP_FIELDS);
    const lq = listQuery(rc, new Set(['uuid', 'name', 'address', 'created_at', 'updated_at', 'node_uuid']));
    let sel = db.selectFrom('baremetal_portgroups').selectAll();
    const nodeIdent = node?.uuid ?? one(q.node);
    if (nodeIdent !== undefined) sel = sel.where('node_uuid', '=', (await findNode(ctx, nodeIdent, rc.cred)).uuid);
    const addr = one(q.address);
    if (addr !== undefined) sel = sel.where('address', '=', addr.toLowerCase());
    let rows = await sel.execute();
    if (!isAdmin(rc.cred!)) {
      const visible = new Set((await db.selectFrom('baremetal_nodes').select(['uuid', 'owner', 'lessee']).execute()).filter((n) => seesNode(rc.cred!, n)).map((n) => n.uuid));
      rows = rows.filter((g) => visible.has(g.node_uuid));
    }
    const p = page(rc, rows, lq, { resource: 'portgroups', notFound: (m) => E.portgroupNotFound(m) });
    const out: Record<string, unknown> = { portgroups: p.items.map((g) => portgroupView(g, mv(rc), base(rc), detail ? null : fields ?? PORTGROUP_LIST_FIELDS)) };
    if (p.next) out.next = p.next;
    return out;
  }
  const body = (b: Record<string, unknown>, g: Partial<PortgroupRow>) => {
    const name = b.name === undefined ? g.name ?? null : b.name === null ? null : String(b.name);
    if (name !== null && (!NAME_RE.test(name) || isUuid(name))) throw E.invalid(`Cannot create portgroup with invalid name '${name}'`);
    return {
      name, address: b.address === undefined ? g.address ?? null : b.address === null ? null : mac(b.address),
      mode: b.mode === undefined ? g.mode ?? null : (b.mode as string | null), properties: JSON.stringify(b.properties === undefined ? parseJsonObject(g.properties ?? '{}') : dict(b.properties, 'properties')),
      extra: JSON.stringify(b.extra === undefined ? parseJsonObject(g.extra ?? '{}') : dict(b.extra, 'extra')),
      standalone_ports_supported: b.standalone_ports_supported === undefined ? g.standalone_ports_supported ?? 1 : parseBool(b.standalone_ports_supported, 'standalone_ports_supported') ? 1 : 0,
    };
  };
  const unique = async (name: string | null, address: string | null, except?: string) => {
    if (name && await db.selectFrom('baremetal_portgroups').select('uuid').where('name', '=', name).where('uuid', '!=', except ?? '').executeTakeFirst()) throw E.portgroupDuplicateName(name);
    if (address && await db.selectFrom('baremetal_portgroups').select('uuid').where('address', '=', address).where('uuid', '!=', except ?? '').executeTakeFirst()) throw E.portgroupMacExists(address);
  };
  return [
    since('1.23', route({ method: 'GET', path: '/v1/portgroups', rule: 'baremetal:portgroup:list', handler: (rc) => list(rc, false) })),
    since('1.23', route({ method: 'GET', path: '/v1/portgroups/detail', rule: 'baremetal:portgroup:list', handler: (rc) => list(rc, true) })),
    since('1.24', route({ method: 'GET', path: '/v1/nodes/:node/portgroups', rule: RULE, handler: async (rc) => list(rc, false, await findNode(ctx, rc.params.node!, rc.cred)) })),
    since('1.23', route({
      method: 'GET', path: '/v1/portgroups/:portgroup', rule: RULE,
      handler: async (rc) => portgroupView((await load(rc, 'baremetal:portgroup:get')).g, mv(rc), base(rc), fieldsOf(rc, PORTGROUP_FIELDS)),
    })),
    since('1.24', route({
      method: 'GET', path: '/v1/portgroups/:portgroup/ports', rule: RULE,
      handler: async (rc) => {
        const { g } = await load(rc, 'baremetal:portgroup:get');
        const ports = await db.selectFrom('baremetal_ports').selectAll().where('portgroup_uuid', '=', g.uuid).orderBy('created_at').execute();
        return { ports: ports.map((p) => portView(p, mv(rc), base(rc), PORT_LIST_FIELDS)) };
      },
    })),
    since('1.23', route({
      method: 'POST', path: '/v1/portgroups', rule: RULE, status: 201,
      handler: async (rc) => {
        const b = objectOf(rc.body);
        if (!b) throw E.invalid('Invalid input: the body must be a JSON object (a portgroup).');
        const known = new Set(['uuid', 'name', 'address', 'node_uuid', 'extra', 'mode', 'properties', 'standalone_ports_supported']);
        for (const k of Object.keys(b)) if (!known.has(k)) throw E.invalid(`Unknown attribute for argument portgroup: ${k}`);
        if ((b.mode !== undefined || b.properties !== undefined) && !at(rc, '1.26')) throw E.notAcceptable();
        if (typeof b.node_uuid !== 'string') throw E.invalid('Invalid input for field/attribute node_uuid. Value: None. Mandatory field missing.');
        const n = await findNode(ctx, b.node_uuid, rc.cred);
        rc.enforce('baremetal:portgroup:create', nodeTarget(n));
        const v = body(b, {});
        await unique(v.name, v.address);
        const uuid = typeof b.uuid === 'string' && isUuid(b.uuid) ? canonUuid(b.uuid) : newUuid();
        const row = { uuid, node_uuid: n.uuid, internal_info: '{}', created_at: nowIso(), updated_at: null, ...v };
        await db.insertInto('baremetal_portgroups').values(row).execute();
        rc.reply.header('Location', `${base(rc)}/v1/portgroups/${uuid}`);
        return portgroupView(row, mv(rc), base(rc), null);
      },
    })),
    since('1.23', route({
      method: 'PATCH', path: '/v1/portgroups/:portgroup', rule: RULE,
      handler: async (rc) => {
        const { g } = await load(rc, 'baremetal:portgroup:update');
        const doc: Record<string, unknown> = {
          name: g.name, address: g.address, node_uuid: g.node_uuid, mode: g.mode, properties: parseJsonObject(g.properties), extra: parseJsonObject(g.extra),
          standalone_ports_supported: !!g.standalone_ports_supported,
        };
        const { doc: d } = applyPatch(doc, checkPatch(rc.body), new Set(Object.keys(doc)), new Set(['uuid', 'internal_info', 'created_at', 'updated_at', 'links', 'ports']));
        const v = body(d, g);
        await unique(v.name, v.address, g.uuid);
        const nodeUuid = d.node_uuid !== g.node_uuid ? (await findNode(ctx, String(d.node_uuid), rc.cred)).uuid : g.node_uuid;
        await db.updateTable('baremetal_portgroups').set({ ...v, node_uuid: nodeUuid, updated_at: nowIso() }).where('uuid', '=', g.uuid).execute();
        return portgroupView({ ...g, ...v, node_uuid: nodeUuid }, mv(rc), base(rc), null);
      },
    })),
    since('1.23', route({
      method: 'DELETE', path: '/v1/portgroups/:portgroup', rule: RULE, status: 204,
      handler: async (rc) => {
        const { g, n } = await load(rc, 'baremetal:portgroup:delete');
        if (n.provision_state === S.active && !n.maintenance) throw E.conflict(`Cannot delete portgroup ${g.uuid} of node ${n.uuid} while it is in state "active".`);
        await db.updateTable('baremetal_ports').set({ portgroup_uuid: null }).where('portgroup_uuid', '=', g.uuid).execute();
        await db.deleteFrom('baremetal_portgroups').where('uuid', '=', g.uuid).execute();
      },
    })),
  ];
}

export function driverRoutes(ctx: BmContext): Route[] {
  const base = (rc: RouteContext) => reqBase(rc.req);
  const driverView = async (rc: RouteContext, name: string, detail: boolean) => {
    const hosts = (await conductors(ctx)).filter((c) => c.alive && c.drivers.includes(name)).map((c) => c.hostname);
    const out: Record<string, unknown> = {
      name, hosts,
      links: [{ href: `${base(rc)}/v1/drivers/${name}`, rel: 'self' }, { href: `${base(rc)}/drivers/${name}`, rel: 'bookmark' }],
      properties: [{ href: `${base(rc)}/v1/drivers/${name}/properties`, rel: 'self' }, { href: `${base(rc)}/drivers/${name}/properties`, rel: 'bookmark' }],
    };
    if (at(rc, '1.30')) {
      out.type = 'dynamic';
      if (detail && isHardwareType(name)) {
        for (const t of INTERFACE_TYPES) {
          if (t === 'storage' && !at(rc, '1.33')) continue;
          if (t === 'rescue' && !at(rc, '1.38')) continue;
          if (t === 'bios' && !at(rc, '1.40')) continue;
          out[`default_${t}_interface`] = INTERFACES[name][t][0];
          out[`enabled_${t}_interfaces`] = INTERFACES[name][t];
        }
      }
    }
    return out;
  };
  const known = async (name: string) => {
    if (!isHardwareType(name) || !(await conductors(ctx)).some((c) => c.drivers.includes(name))) throw E.driverNotFound(name);
    return name;
  };
  return [
    route({
      method: 'GET', path: '/v1/drivers', rule: 'baremetal:driver:get',
      handler: async (rc) => {
        const q = rc.query as Q;
        const type = one(q.type);
        if (type !== undefined && !at(rc, '1.30')) throw E.notAcceptable();
        if (type !== undefined && type !== 'classic' && type !== 'dynamic') throw E.invalid(`Invalid type ${type}. Valid values are classic, dynamic.`);
        const detail = one(q.detail) !== undefined && parseBool(one(q.detail), 'detail');
        if (detail && !at(rc, '1.30')) throw E.notAcceptable();
        if (type === 'classic') return { drivers: [] };
        const served = new Set((await conductors(ctx)).filter((c) => c.alive).flatMap((c) => c.drivers));
        const names = HARDWARE_TYPES.filter((h) => served.has(h));
        return { drivers: await Promise.all(names.map((n) => driverView(rc, n, detail))) };
      },
    }),
    route({ method: 'GET', path: '/v1/drivers/:driver', rule: 'baremetal:driver:get', handler: async (rc) => driverView(rc, await known(rc.params.driver!), true) }),
    route({
      method: 'GET', path: '/v1/drivers/:driver/properties', rule: 'baremetal:driver:get_properties',
      handler: async (rc) => PROPERTIES[(await known(rc.params.driver!)) as keyof typeof PROPERTIES],
    }),
    since('1.12', route({
      method: 'GET', path: '/v1/drivers/:driver/raid/logical_disk_properties', rule: 'baremetal:driver:get_properties',
      handler: async (rc) => {
        const d = await known(rc.params.driver!);
        throw E.invalid(`Driver ${d} does not support raid (disabled or not implemented).`);
      },
    })),
  ];
}

export function conductorRoutes(ctx: BmContext): Route[] {
  const base = (rc: RouteContext) => reqBase(rc.req);
  const view = (rc: RouteContext, c: Awaited<ReturnType<typeof conductors>>[number], detail: boolean, fields: string[] | null) => {
    const all: Record<string, unknown> = {
      hostname: c.hostname, conductor_group: c.conductor_group, alive: c.alive, drivers: c.drivers, created_at: iso(c.created_at), updated_at: iso(c.last_seen_at),
    };
    const keys = fields ?? (detail ? Object.keys(all) : ['hostname', 'conductor_group', 'alive']);
    const out: Record<string, unknown> = {};
    for (const k of keys) if (k in all) out[k] = all[k];
    out.links = [{ href: `${base(rc)}/v1/conductors/${c.hostname}`, rel: 'self' }, { href: `${base(rc)}/conductors/${c.hostname}`, rel: 'bookmark' }];
    return out;
  };
  const FIELDS = new Set(['hostname', 'conductor_group', 'alive', 'drivers', 'created_at', 'updated_at']);
  async function list(rc: RouteContext, detail: boolean) {
    const q = rc.query as Q;
    if (one(q.detail) !== undefined) detail ||= parseBool(one(q.detail), 'detail');
    const fields = fieldsOf(rc, FIELDS);
    const all = (await conductors(ctx)).map((c) => ({ ...c, uuid: c.hostname }));
    const lq = listQuery(rc, new Set(['hostname', 'conductor_group', 'created_at', 'updated_at']));
    const p = page(rc, all, lq, { resource: 'conductors', notFound: (m) => E.conductorNotFound(m), keyOf: (c, k) => (c as Record<string, unknown>)[k] });
    const out: Record<string, unknown> = { conductors: p.items.map((c) => view(rc, c, detail, fields)) };
    if (p.next) out.next = p.next;
    return out;
  }
  return [
    since('1.49', route({ method: 'GET', path: '/v1/conductors', rule: 'baremetal:conductor:get', handler: (rc) => list(rc, false) })),
    since('1.49', route({
      method: 'GET', path: '/v1/conductors/:hostname', rule: 'baremetal:conductor:get',
      handler: async (rc) => {
        const c = (await conductors(ctx)).find((x) => x.hostname === rc.params.hostname);
        if (!c) throw E.conductorNotFound(rc.params.hostname!);
        return view(rc, c, true, fieldsOf(rc, FIELDS));
      },
    })),
  ];
}

export function allocationRoutes(ctx: BmContext): Route[] {
  const db = ctx.db;
  const base = (rc: RouteContext) => reqBase(rc.req);
  const target = (a: AllocationRow) => ({ allocation_owner: a.owner });
  const load = async (rc: RouteContext, rule: string) => {
    const id = rc.params.allocation!;
    const a = await db.selectFrom('baremetal_allocations').selectAll().where(isUuid(id) ? 'uuid' : 'name', '=', isUuid(id) ? canonUuid(id) : id).executeTakeFirst();
    if (!a || (!isAdmin(rc.cred!) && a.owner !== rc.cred!.projectId)) throw E.allocationNotFound(id);
    rc.enforce(rule, target(a));
    return a;
  };
  async function remove(a: AllocationRow): Promise<void> {
    if (a.node_uuid) {
      const n = await db.selectFrom('baremetal_nodes').selectAll().where('uuid', '=', a.node_uuid).executeTakeFirst();
      if (n && n.provision_state === S.active && !n.maintenance) {
        throw E.conflict(`Cannot remove allocation ${a.uuid} from node ${n.uuid} in provision state active`);
      }
      if (n) {
        await db.updateTable('baremetal_nodes').set({
          allocation_uuid: null, ...(n.instance_uuid === a.uuid ? { instance_uuid: null } : {}), updated_at: nowIso(),
        }).where('uuid', '=', n.uuid).execute();
        await afterChange(ctx, n.uuid);
      }
    }
    await db.deleteFrom('baremetal_allocations').where('uuid', '=', a.uuid).execute();
  }
  return [
    since('1.52', route({
      method: 'GET', path: '/v1/allocations', rule: 'baremetal:allocation:list',
      handler: async (rc) => {
        const q = rc.query as Q;
        const fields = fieldsOf(rc, ALLOCATION_FIELDS);
        const lq = listQuery(rc, new Set(['uuid', 'name', 'created_at', 'updated_at', 'state', 'resource_class', 'node_uuid']));
        let sel = db.selectFrom('baremetal_allocations').selectAll();
        const node = one(q.node);
        if (node !== undefined) sel = sel.where('node_uuid', '=', (await findNode(ctx, node, rc.cred)).uuid);
        const st = one(q.state);
        if (st !== undefined) sel = sel.where('state', '=', st);
        const rcls = one(q.resource_class);
        if (rcls !== undefined) sel = sel.where('resource_class', '=', rcls);
        const owner = one(q.owner);
        if (owner !== undefined) {
          if (!at(rc, '1.60')) throw E.notAcceptable();
          sel = sel.where('owner', '=', owner);
        }
        let rows = await sel.execute();
        if (!isAdmin(rc.cred!)) rows = rows.filter((a) => a.owner === rc.cred!.projectId);
        const p = page(rc, rows, lq, { resource: 'allocations', notFound: (m) => E.allocationNotFound(m) });
        const out: Record<string, unknown> = { allocations: p.items.map((a) => allocationView(a, mv(rc), base(rc), fields)) };
        if (p.next) out.next = p.next;
        return out;
      },
    })),
    since('1.52', route({
      method: 'GET', path: '/v1/allocations/:allocation', rule: RULE,
      handler: async (rc) => allocationView(await load(rc, 'baremetal:allocation:get'), mv(rc), base(rc), fieldsOf(rc, ALLOCATION_FIELDS)),
    })),
    since('1.52', route({
      method: 'POST', path: '/v1/allocations', rule: 'baremetal:allocation:create', status: 201,
      handler: async (rc) => {
        const b = objectOf(rc.body);
        if (!b) throw E.invalid('Invalid input: the body must be a JSON object (an allocation).');
        const known = new Set(['uuid', 'name', 'resource_class', 'traits', 'candidate_nodes', 'extra', 'owner', 'node']);
        for (const k of Object.keys(b)) if (!known.has(k)) throw E.invalid(`Unknown attribute for argument allocation: ${k}`);
        if (b.owner !== undefined && !at(rc, '1.60')) throw E.notAcceptable();
        if (b.node !== undefined && !at(rc, '1.58')) throw E.notAcceptable();
        let owner = typeof b.owner === 'string' ? b.owner : null;
        if (!isAdmin(rc.cred!)) {
          if (owner && owner !== rc.cred!.projectId) throw E.forbidden('baremetal:allocation:create_restricted');
          owner = rc.cred!.projectId;
        }
        const name = b.name === undefined || b.name === null ? null : String(b.name);
        if (name !== null && (!NAME_RE.test(name) || isUuid(name))) throw E.invalid(`Cannot create allocation with invalid name '${name}'`);
        if (name && await db.selectFrom('baremetal_allocations').select('uuid').where('name', '=', name).executeTakeFirst()) throw E.allocationDuplicateName(name);
        const traits = b.traits === undefined || b.traits === null ? [] : Array.isArray(b.traits) ? b.traits.map(String) : (() => { throw E.invalid('traits must be a list'); })();
        const cands = b.candidate_nodes === undefined || b.candidate_nodes === null ? [] : Array.isArray(b.candidate_nodes) ? b.candidate_nodes.map(String) : (() => { throw E.invalid('candidate_nodes must be a list'); })();
        const candidateUuids: string[] = [];
        for (const c of cands) {
          const n = await findNode(ctx, c, rc.cred).catch(() => { throw E.invalid(`Candidate node ${c} could not be found.`); });
          candidateUuids.push(n.uuid);
        }
        let resourceClass = typeof b.resource_class === 'string' ? b.resource_class : null;
        let backfill: NodeRow | null = null;
        if (b.node !== undefined) {
          backfill = await findNode(ctx, String(b.node), rc.cred);
          if (b.resource_class !== undefined || b.traits !== undefined || b.candidate_nodes !== undefined) {
            throw E.invalid('Cannot use resource_class, traits or candidate_nodes when node is specified');
          }
          resourceClass = backfill.resource_class ?? '';
        }
        if (resourceClass === null) throw E.invalid('Invalid input for field/attribute resource_class. Value: None. Mandatory field missing.');
        const uuid = typeof b.uuid === 'string' && isUuid(b.uuid) ? canonUuid(b.uuid) : newUuid();
        const now = nowIso();
        const row: AllocationRow = {
          uuid, name, node_uuid: null, state: 'allocating', last_error: null, resource_class: resourceClass, traits: JSON.stringify(traits),
          candidate_nodes: JSON.stringify(candidateUuids), extra: JSON.stringify(dict(b.extra, 'extra')), owner, created_at: now, updated_at: null,
        };
        await db.insertInto('baremetal_allocations').values(row).execute();
        const done = await processAllocation(ctx, row, backfill);
        rc.reply.header('Location', `${base(rc)}/v1/allocations/${uuid}`);
        return allocationView(done, mv(rc), base(rc), null);
      },
    })),
    since('1.57', route({
      method: 'PATCH', path: '/v1/allocations/:allocation', rule: RULE,
      handler: async (rc) => {
        const a = await load(rc, 'baremetal:allocation:update');
        const doc: Record<string, unknown> = { name: a.name, extra: parseJsonObject(a.extra), ...(at(rc, '1.60') ? { owner: a.owner } : {}) };
        const internal = new Set(['uuid', 'node_uuid', 'state', 'last_error', 'resource_class', 'traits', 'candidate_nodes', 'created_at', 'updated_at', 'links']);
        const { doc: d } = applyPatch(doc, checkPatch(rc.body), new Set(Object.keys(doc)), internal);
        const name = d.name === null || d.name === undefined ? null : String(d.name);
        if (name !== null && (!NAME_RE.test(name) || isUuid(name))) throw E.invalid(`Cannot update allocation with invalid name '${name}'`);
        if (name && name !== a.name && await db.selectFrom('baremetal_allocations').select('uuid').where('name', '=', name).executeTakeFirst()) throw E.allocationDuplicateName(name);
        const upd = { name, extra: JSON.stringify(dict(d.extra, 'extra')), owner: 'owner' in d ? (d.owner as string | null) : a.owner, updated_at: nowIso() };
        await db.updateTable('baremetal_allocations').set(upd).where('uuid', '=', a.uuid).execute();
        return allocationView({ ...a, ...upd }, mv(rc), base(rc), null);
      },
    })),
    since('1.52', route({
      method: 'DELETE', path: '/v1/allocations/:allocation', rule: RULE, status: 204,
      handler: async (rc) => remove(await load(rc, 'baremetal:allocation:delete')),
    })),
    since('1.52', route({
      method: 'GET', path: '/v1/nodes/:node/allocation', rule: RULE,
      handler: async (rc) => {
        const n = await findNode(ctx, rc.params.node!, rc.cred);
        const a = n.allocation_uuid ? await db.selectFrom('baremetal_allocations').selectAll().where('uuid', '=', n.allocation_uuid).executeTakeFirst() : undefined;
        if (!a) throw E.notFound(`Node ${n.uuid} is not associated with any allocation.`);
        rc.enforce('baremetal:allocation:get', target(a));
        return allocationView(a, mv(rc), base(rc), fieldsOf(rc, ALLOCATION_FIELDS));
      },
    })),
    since('1.52', route({
      method: 'DELETE', path: '/v1/nodes/:node/allocation', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await findNode(ctx, rc.params.node!, rc.cred);
        const a = n.allocation_uuid ? await db.selectFrom('baremetal_allocations').selectAll().where('uuid', '=', n.allocation_uuid).executeTakeFirst() : undefined;
        if (!a) throw E.notFound(`Node ${n.uuid} is not associated with any allocation.`);
        rc.enforce('baremetal:allocation:delete', target(a));
        await remove(a);
      },
    })),
  ];
}

/**
 * Ironic's allocation process, done at once: the first matching node
 * (available, not in maintenance, no instance or allocation, its resource
 * class, every trait asked, among the candidates, owned or leased by the
 * allocation's owner when it has one) takes the allocation; its
 * instance_uuid becomes the allocation's uuid. None: state error.
 */
async function processAllocation(ctx: BmContext, a: AllocationRow, backfill: NodeRow | null): Promise<AllocationRow> {
  const db = ctx.db;
  const traits = parseJsonList(a.traits);
  const cands = new Set(parseJsonList(a.candidate_nodes));
  let nodes: NodeRow[];
  if (backfill) {
    nodes = [backfill];
  } else {
    nodes = await db.selectFrom('baremetal_nodes').selectAll().where('provision_state', '=', S.available).where('maintenance', '=', 0)
      .where('instance_uuid', 'is', null).where('allocation_uuid', 'is', null).where('resource_class', '=', a.resource_class).orderBy('created_at').execute();
    nodes = nodes.filter((n) => !n.retired && (!cands.size || cands.has(n.uuid)) && (!a.owner || n.owner === a.owner || n.lessee === a.owner));
    const nt = await nodeTraits(ctx, nodes.map((n) => n.uuid));
    nodes = nodes.filter((n) => traits.every((t) => (nt.get(n.uuid) ?? []).includes(t)));
  }
  for (const n of nodes) {
    const r = await db.updateTable('baremetal_nodes').set({ allocation_uuid: a.uuid, instance_uuid: n.instance_uuid ?? a.uuid, updated_at: nowIso() })
      .where('uuid', '=', n.uuid).where('allocation_uuid', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) continue;
    const upd = { node_uuid: n.uuid, state: 'active', updated_at: nowIso() };
    await db.updateTable('baremetal_allocations').set(upd).where('uuid', '=', a.uuid).execute();
    await afterChange(ctx, n.uuid);
    return { ...a, ...upd };
  }
  const err = cands.size
    ? `Failed to process allocation ${a.uuid}: none of the requested nodes are available and match the resource class ${a.resource_class}.`
    : `Failed to process allocation ${a.uuid}: no available nodes match the resource class ${a.resource_class}${traits.length ? ` and traits ${traits.join(', ')}` : ''}.`;
  const upd = { state: 'error', last_error: err, updated_at: nowIso() };
  await db.updateTable('baremetal_allocations').set(upd).where('uuid', '=', a.uuid).execute();
  return { ...a, ...upd };
}

export function chassisRoutes(ctx: BmContext): Route[] {
  const db = ctx.db;
  const base = (rc: RouteContext) => reqBase(rc.req);
  const view = (rc: RouteContext, c: { uuid: string; description: string | null; extra: string; created_at: string; updated_at: string | null }, detail = true) => ({
    uuid: c.uuid, description: c.description,
    ...(detail ? { extra: parseJsonObject(c.extra), created_at: iso(c.created_at), updated_at: iso(c.updated_at) } : {}),
    links: [{ href: `${base(rc)}/v1/chassis/${c.uuid}`, rel: 'self' }, { href: `${base(rc)}/chassis/${c.uuid}`, rel: 'bookmark' }],
    ...(detail ? { nodes: [{ href: `${base(rc)}/v1/chassis/${c.uuid}/nodes`, rel: 'self' }, { href: `${base(rc)}/chassis/${c.uuid}/nodes`, rel: 'bookmark' }] } : {}),
  });
  const load = async (id: string) => {
    const c = isUuid(id) ? await db.selectFrom('baremetal_chassis').selectAll().where('uuid', '=', canonUuid(id)).executeTakeFirst() : undefined;
    if (!c) throw E.chassisNotFound(id);
    return c;
  };
  return [
    route({ method: 'GET', path: '/v1/chassis', rule: 'baremetal:chassis:get', handler: async (rc) => ({ chassis: (await db.selectFrom('baremetal_chassis').selectAll().orderBy('created_at').execute()).map((c) => view(rc, c, false)) }) }),
    route({ method: 'GET', path: '/v1/chassis/detail', rule: 'baremetal:chassis:get', handler: async (rc) => ({ chassis: (await db.selectFrom('baremetal_chassis').selectAll().orderBy('created_at').execute()).map((c) => view(rc, c)) }) }),
    route({ method: 'GET', path: '/v1/chassis/:chassis', rule: 'baremetal:chassis:get', handler: async (rc) => view(rc, await load(rc.params.chassis!)) }),
    route({
      method: 'POST', path: '/v1/chassis', rule: 'baremetal:chassis:create', status: 201,
      handler: async (rc) => {
        const b = objectOf(rc.body) ?? {};
        for (const k of Object.keys(b)) if (!['uuid', 'description', 'extra'].includes(k)) throw E.invalid(`Unknown attribute for argument chassis: ${k}`);
        const row = {
          uuid: typeof b.uuid === 'string' && isUuid(b.uuid) ? canonUuid(b.uuid) : newUuid(), description: typeof b.description === 'string' ? b.description : null,
          extra: JSON.stringify(dict(b.extra, 'extra')), created_at: nowIso(), updated_at: null,
        };
        await db.insertInto('baremetal_chassis').values(row).execute();
        rc.reply.header('Location', `${base(rc)}/v1/chassis/${row.uuid}`);
        return view(rc, row);
      },
    }),
    route({
      method: 'PATCH', path: '/v1/chassis/:chassis', rule: 'baremetal:chassis:update',
      handler: async (rc) => {
        const c = await load(rc.params.chassis!);
        const { doc } = applyPatch({ description: c.description, extra: parseJsonObject(c.extra) }, checkPatch(rc.body), new Set(['description', 'extra']), new Set(['uuid', 'created_at', 'updated_at']));
        const upd = { description: (doc.description as string | null) ?? null, extra: JSON.stringify(dict(doc.extra, 'extra')), updated_at: nowIso() };
        await db.updateTable('baremetal_chassis').set(upd).where('uuid', '=', c.uuid).execute();
        return view(rc, { ...c, ...upd });
      },
    }),
    route({
      method: 'DELETE', path: '/v1/chassis/:chassis', rule: 'baremetal:chassis:delete', status: 204,
      handler: async (rc) => {
        const c = await load(rc.params.chassis!);
        if (await db.selectFrom('baremetal_nodes').select('uuid').where('chassis_uuid', '=', c.uuid).executeTakeFirst()) throw E.invalid(`Chassis ${c.uuid} contains nodes.`);
        await db.deleteFrom('baremetal_chassis').where('uuid', '=', c.uuid).execute();
      },
    }),
    // events (1.54): network events from Neutron, accepted and logged
    since('1.54', route({
      method: 'POST', path: '/v1/events', rule: 'baremetal:events:post', status: 204,
      handler: async (rc) => {
        const b = objectOf(rc.body);
        if (!b || !Array.isArray(b.events)) throw E.invalid('Invalid input: the body must be {"events": [...]}.');
        ctx.log.info({ events: b.events.length }, 'baremetal events received');
      },
    })),
  ];
}
