// Ironic's nodes: /v1/nodes (list, detail, create), /v1/nodes/{uuid or name}
// (show, JSON patch, delete) and their sub-resources: states (power,
// provision, raid, console), maintenance, management (boot device), traits,
// vifs, validate, history, bios. Nodes are addressed by uuid or name; one a
// project may not see is a 404; lists show only what the caller may see.
import { nowIso, uuid as newUuid } from '../common/ids.ts';
import { parseJsonObject } from '../common/json.ts';
import { objectOf } from '../http/body.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import { CUSTOM_NAME, isStandardTrait } from '../placement/classes.ts';
import { anyConductorFor, placeNode } from './conductors.ts';
import type { BmContext, NodeRow } from './context.ts';
import { checkDriverInfo, checkInterface, INTERFACE_TYPES, interfacesFor, isHardwareType, missingDriverInfo, type InterfaceType } from './drivers.ts';
import { E } from './errors.ts';
import { at, mv, since } from './http.ts';
import { applyPatch, checkPatch } from './patch.ts';
import { nodeTarget } from './policy.ts';
import { HARDWARE_TYPES, type HardwareType } from './protocol.ts';
import { applyVerb, type ProvisionBody } from './provision.ts';
import { closeProvisioning } from './provisioning.ts';
import { DELETE_ALLOWED, S, UPDATE_ALLOWED } from './states.ts';
import {
  afterChange, canonUuid, publishNode, fieldsOf, findNode, isUuid, iso, listQuery, NAME_RE, nodeTraits, one, page, parseBool, recordHistory, reqBase,
  syncPlacement, userOf,
} from './util.ts';
import { NODE_FIELD_SINCE, NODE_FIELDS, NODE_LIST_FIELDS, nodeFieldsAt, nodeView } from './view.ts';

const RULE = 'baremetal:api';
const NODE_SORT = new Set(['uuid', 'name', 'created_at', 'updated_at', 'provision_state', 'provision_updated_at', 'driver', 'resource_class', 'power_state', 'maintenance', 'instance_uuid', 'conductor_group', 'owner', 'lessee']);
const MAX_TRAITS = 50;

/** Fields a create may give, beyond the interfaces. */
const CREATE_FIELDS = new Set([
  'uuid', 'name', 'driver', 'driver_info', 'properties', 'extra', 'instance_info', 'instance_uuid', 'resource_class', 'chassis_uuid',
  'conductor_group', 'automated_clean', 'protected', 'protected_reason', 'owner', 'lessee', 'description', 'retired', 'retired_reason',
  'network_data', 'target_raid_config', 'maintenance', 'maintenance_reason', 'boot_mode', 'secure_boot', 'driver_internal_info',
  ...INTERFACE_TYPES.map((t) => `${t}_interface`),
]);
const DICTS = ['driver_info', 'properties', 'extra', 'instance_info', 'network_data', 'target_raid_config'] as const;
const WRITABLE = new Set([
  'name', 'driver', 'driver_info', 'properties', 'extra', 'instance_info', 'instance_uuid', 'resource_class', 'chassis_uuid', 'conductor_group',
  'automated_clean', 'protected', 'protected_reason', 'owner', 'lessee', 'description', 'retired', 'retired_reason', 'network_data',
  'maintenance', 'maintenance_reason', ...INTERFACE_TYPES.map((t) => `${t}_interface`),
]);
const INTERNAL = new Set([
  'uuid', 'driver_internal_info', 'provision_state', 'target_provision_state', 'power_state', 'target_power_state', 'last_error',
  'reservation', 'console_enabled', 'provision_updated_at', 'inspection_started_at', 'inspection_finished_at', 'clean_step', 'deploy_step',
  'raid_config', 'target_raid_config', 'fault', 'conductor', 'allocation_uuid', 'traits', 'created_at', 'updated_at', 'boot_mode', 'secure_boot',
  'links', 'ports', 'states', 'portgroups', 'volume',
]);

const str = (v: unknown, f: string, max = 255): string | null => {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > max) throw E.invalid(`Invalid input for field/attribute ${f}. Value: ${JSON.stringify(v)}. Wrong type or too long.`);
  return v;
};
const dict = (v: unknown, f: string): Record<string, unknown> => {
  if (v === undefined || v === null) return {};
  const o = objectOf(v);
  if (!o) throw E.invalid(`Invalid input for field/attribute ${f}. Value: ${JSON.stringify(v)}. Value should be a dict.`);
  return o;
};
const boolOrNull = (v: unknown, f: string): number | null => (v === undefined || v === null ? null : parseBool(v, f) ? 1 : 0);

function checkName(name: string | null): void {
  if (name !== null && (!NAME_RE.test(name) || isUuid(name))) throw E.invalid(`Cannot create node with invalid name '${name}'`);
}

function checkResourceClass(rc: string | null): void {
  if (rc !== null && (rc.length > 80 || !rc)) throw E.invalid(`Invalid input for field/attribute resource_class. Value: '${rc}'. Value should have a maximum character requirement of 80`);
}

function checkTrait(t: unknown): string {
  if (typeof t !== 'string' || !t || t.length > 255 || (!CUSTOM_NAME.test(t) && !isStandardTrait(t))) {
    throw E.invalid(`Invalid trait. A valid trait must be no longer than 255 characters. Standard traits are defined in the os_traits library. A custom trait must be prefixed with CUSTOM_ and use the following characters: A-Z, 0-9 and _: '${String(t)}'`);
  }
  return t;
}

/** The version a field of a create or patch needs (406 before it, as Ironic). */
function gateField(rc: RouteContext, f: string): void {
  const since = NODE_FIELD_SINCE[f];
  if (since && mv(rc).lt(since)) throw E.notAcceptable();
}

export function nodeRoutes(ctx: BmContext): Route[] {
  const db = ctx.db;
  const view = async (rc: RouteContext, rows: NodeRow[], fields: string[] | null) => {
    const traits = await nodeTraits(ctx, rows.map((r) => r.uuid));
    return rows.map((n) => nodeView(n, { v: mv(rc), base: reqBase(rc.req), cred: rc.cred!, traits: traits.get(n.uuid) ?? [], fields }));
  };
  const load = async (rc: RouteContext, rule: string) => {
    const n = await findNode(ctx, rc.params.node!, rc.cred);
    rc.enforce(rule, nodeTarget(n));
    return n;
  };
  const touch = async (n: NodeRow, set: Record<string, unknown>, o: { bump?: boolean } = {}) => {
    await db.updateTable('baremetal_nodes').set((eb) => ({ ...set, updated_at: nowIso(), ...(o.bump ? { version: eb('version', '+', 1) } : {}) }))
      .where('uuid', '=', n.uuid).execute();
    await afterChange(ctx, n.uuid);
  };

  async function list(rc: RouteContext, detail: boolean) {
    const q = rc.query as Record<string, string | string[] | undefined>;
    const v = mv(rc);
    if (one(q.detail) !== undefined) {
      if (!at(rc, '1.43')) throw E.notAcceptable();
      detail ||= parseBool(one(q.detail), 'detail');
    }
    const fields = fieldsOf(rc, nodeFieldsAt(v));
    if (detail && fields) throw E.invalid("Can not specify ?detail=True and fields in the same request.");
    const lq = listQuery(rc, NODE_SORT);
    let sel = db.selectFrom('baremetal_nodes').selectAll();
    const filter = (name: string, since: string | null, col: 'provision_state' | 'driver' | 'resource_class' | 'conductor_group' | 'fault' | 'owner' | 'lessee' | 'chassis_uuid' | 'instance_uuid' | 'conductor') => {
      const val = one(q[name]);
      if (val === undefined) return;
      if (since && v.lt(since)) throw E.notAcceptable();
      sel = sel.where(col, '=', col === 'instance_uuid' && isUuid(val) ? canonUuid(val) : val);
    };
    filter('provision_state', '1.9', 'provision_state');
    filter('driver', '1.16', 'driver');
    filter('resource_class', '1.21', 'resource_class');
    filter('conductor_group', '1.46', 'conductor_group');
    filter('fault', '1.42', 'fault');
    filter('owner', '1.50', 'owner');
    filter('lessee', '1.65', 'lessee');
    filter('chassis_uuid', null, 'chassis_uuid');
    filter('instance_uuid', null, 'instance_uuid');
    filter('conductor', '1.49', 'conductor');
    const assoc = one(q.associated);
    if (assoc !== undefined) sel = parseBool(assoc, 'associated') ? sel.where('instance_uuid', 'is not', null) : sel.where('instance_uuid', 'is', null);
    const maint = one(q.maintenance);
    if (maint !== undefined) sel = sel.where('maintenance', '=', parseBool(maint, 'maintenance') ? 1 : 0);
    const retired = one(q.retired);
    if (retired !== undefined) {
      if (v.lt('1.61')) throw E.notAcceptable();
      sel = sel.where('retired', '=', parseBool(retired, 'retired') ? 1 : 0);
    }
    const project = one(q.project);
    if (project !== undefined) {
      if (v.lt('1.65')) throw E.notAcceptable();
      sel = sel.where((eb) => eb.or([eb('owner', '=', project), eb('lessee', '=', project)]));
    }
    let rows = await sel.execute();
    const dc = one(q.description_contains);
    if (dc !== undefined) {
      if (v.lt('1.51')) throw E.notAcceptable();
      rows = rows.filter((r) => (r.description ?? '').includes(dc));
    }
    if (!isAdmin(rc.cred!)) rows = rows.filter((r) => r.owner === rc.cred!.projectId || r.lessee === rc.cred!.projectId);
    const p = page(rc, rows, lq, { resource: detail ? 'nodes/detail' : 'nodes', notFound: (m) => E.nodeNotFound(m) });
    const out: Record<string, unknown> = { nodes: await view(rc, p.items, detail ? null : fields ?? NODE_LIST_FIELDS) };
    if (p.next) out.next = p.next;
    return out;
  }

  return [
    route({ method: 'GET', path: '/v1/nodes', rule: 'baremetal:node:list', handler: (rc) => list(rc, false) }),
    route({ method: 'GET', path: '/v1/nodes/detail', rule: 'baremetal:node:list', handler: (rc) => list(rc, true) }),
    route({
      method: 'POST', path: '/v1/nodes', rule: 'baremetal:node:create', status: 201,
      handler: async (rc) => {
        const b = objectOf(rc.body);
        if (!b) throw E.invalid('Invalid input: the body must be a JSON object (a node).');
        for (const k of Object.keys(b)) {
          if (!CREATE_FIELDS.has(k)) throw E.invalid(`Unknown attribute for argument node: ${k}`);
          gateField(rc, k);
        }
        const driver = str(b.driver, 'driver');
        if (!driver) throw E.invalid('Invalid input for field/attribute driver. Value: None. Mandatory field missing.');
        const group = str(b.conductor_group, 'conductor_group') ?? '';
        if (!isHardwareType(driver)) throw E.noValidHost(driver, group);
        const name = str(b.name, 'name');
        checkName(name);
        const driverInfo = dict(b.driver_info, 'driver_info');
        checkDriverInfo(driver, driverInfo);
        const interfaces = interfacesFor(driver, b);
        const rc0 = str(b.resource_class, 'resource_class', 80) ?? ctx.config.defaultResourceClass;
        checkResourceClass(rc0);
        let uuid = newUuid();
        if (b.uuid !== undefined && b.uuid !== null) {
          if (typeof b.uuid !== 'string' || !isUuid(b.uuid)) throw E.invalid(`Expected a UUID but received ${String(b.uuid)}.`);
          uuid = canonUuid(b.uuid);
        }
        let owner = str(b.owner, 'owner');
        if (!isAdmin(rc.cred!)) owner = rc.cred!.projectId;
        const instanceUuid = str(b.instance_uuid, 'instance_uuid');
        if (instanceUuid !== null && !isUuid(instanceUuid)) throw E.invalid(`Expected a UUID but received ${instanceUuid}.`);
        const now = nowIso();
        const state = mv(rc).lt('1.11') ? S.available : S.enroll;
        if (await db.selectFrom('baremetal_nodes').select('uuid').where('uuid', '=', uuid).executeTakeFirst()) throw E.nodeExists(uuid);
        if (name && await db.selectFrom('baremetal_nodes').select('uuid').where('name', '=', name).executeTakeFirst()) throw E.duplicateName(name);
        if (instanceUuid && await db.selectFrom('baremetal_nodes').select('uuid').where('instance_uuid', '=', canonUuid(instanceUuid)).executeTakeFirst()) {
          throw E.instanceAssociated(instanceUuid, uuid);
        }
        const row = {
          uuid, name, driver, driver_info: JSON.stringify(driverInfo), driver_internal_info: '{}', properties: JSON.stringify(dict(b.properties, 'properties')),
          instance_info: JSON.stringify(dict(b.instance_info, 'instance_info')), instance_uuid: instanceUuid ? canonUuid(instanceUuid) : null,
          extra: JSON.stringify(dict(b.extra, 'extra')), interfaces: JSON.stringify(interfaces), provision_state: state, target_provision_state: null,
          provision_updated_at: null, power_state: null, target_power_state: null, last_error: null,
          maintenance: b.maintenance === undefined || b.maintenance === null ? 0 : parseBool(b.maintenance, 'maintenance') ? 1 : 0,
          maintenance_reason: str(b.maintenance_reason, 'maintenance_reason', 4096), fault: null, resource_class: rc0, owner, lessee: str(b.lessee, 'lessee'),
          description: str(b.description, 'description', 4096), conductor_group: group, conductor: null, reservation: null,
          automated_clean: boolOrNull(b.automated_clean, 'automated_clean'), protected: 0, protected_reason: null,
          retired: b.retired === undefined || b.retired === null ? 0 : parseBool(b.retired, 'retired') ? 1 : 0, retired_reason: str(b.retired_reason, 'retired_reason'),
          network_data: JSON.stringify(dict(b.network_data, 'network_data')), boot_mode: null, secure_boot: null, console_enabled: 0,
          chassis_uuid: str(b.chassis_uuid, 'chassis_uuid'), allocation_uuid: null, clean_step: '{}', deploy_step: '{}', raid_config: '{}',
          target_raid_config: JSON.stringify(dict(b.target_raid_config, 'target_raid_config')), inspection_started_at: null, inspection_finished_at: null,
          operation: null, power_request: null, boot_device_request: null, power_seq_done: 0, boot_device_seq_done: 0, provisioning: null,
          version: 1, created_at: now, updated_at: null,
        };
        if (b.protected !== undefined && b.protected !== null && parseBool(b.protected, 'protected')) throw E.invalid('Protected can only be set when a node is active');
        if (row.chassis_uuid && !(await db.selectFrom('baremetal_chassis').select('uuid').where('uuid', '=', row.chassis_uuid).executeTakeFirst())) {
          throw E.chassisNotFound(row.chassis_uuid);
        }
        await db.insertInto('baremetal_nodes').values(row).execute();
        if (!(await anyConductorFor(ctx, driver))) ctx.log.info({ node: uuid, driver }, 'no conductor drives this hardware type yet');
        await placeNode(ctx, uuid);
        await afterChange(ctx, uuid, { created: true });
        rc.reply.header('Location', `${reqBase(rc.req)}/v1/nodes/${uuid}`);
        const n = await findNode(ctx, uuid, null);
        return (await view(rc, [n], null))[0];
      },
    }),
    route({
      method: 'GET', path: '/v1/nodes/:node', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:get');
        const fields = fieldsOf(rc, nodeFieldsAt(mv(rc)));
        return (await view(rc, [n], fields))[0];
      },
    }),
    route({
      method: 'PATCH', path: '/v1/nodes/:node', rule: RULE,
      handler: async (rc) => {
        const n = await findNode(ctx, rc.params.node!, rc.cred);
        const ops = checkPatch(rc.body);
        const t = nodeTarget(n);
        const resetInterfaces = one((rc.query as Record<string, string | string[] | undefined>).reset_interfaces);
        if (resetInterfaces !== undefined && !at(rc, '1.45')) throw E.notAcceptable();
        const ifaces = parseJsonObject(n.interfaces);
        const doc: Record<string, unknown> = {
          name: n.name, driver: n.driver, driver_info: parseJsonObject(n.driver_info), properties: parseJsonObject(n.properties),
          extra: parseJsonObject(n.extra), instance_info: parseJsonObject(n.instance_info), instance_uuid: n.instance_uuid,
          resource_class: n.resource_class, chassis_uuid: n.chassis_uuid, conductor_group: n.conductor_group,
          automated_clean: n.automated_clean === null ? null : !!n.automated_clean, protected: !!n.protected, protected_reason: n.protected_reason,
          owner: n.owner, lessee: n.lessee, description: n.description, retired: !!n.retired, retired_reason: n.retired_reason,
          network_data: parseJsonObject(n.network_data), maintenance: !!n.maintenance, maintenance_reason: n.maintenance_reason,
          ...Object.fromEntries(INTERFACE_TYPES.map((x) => [`${x}_interface`, ifaces[`${x}_interface`] ?? null])),
        };
        for (const op of ops) {
          const top = op.path.split('/')[1]!;
          if (top === 'traits') throw E.invalid('Cannot update node traits via node patch. Node traits should be updated via the node traits API.');
          if (NODE_FIELDS.has(top)) gateField(rc, top);
        }
        const { doc: d, touched } = applyPatch(doc, ops, WRITABLE, INTERNAL);
        // the rule per field, as Ironic's
        const rules: Record<string, string> = {
          driver_info: 'baremetal:node:update:driver_info', properties: 'baremetal:node:update:properties', chassis_uuid: 'baremetal:node:update:chassis_uuid',
          instance_uuid: 'baremetal:node:update:instance_uuid', lessee: 'baremetal:node:update:lessee', owner: 'baremetal:node:update:owner',
          network_data: 'baremetal:node:update:network_data', conductor_group: 'baremetal:node:update:conductor_group', name: 'baremetal:node:update:name',
          retired: 'baremetal:node:update:retired', retired_reason: 'baremetal:node:update:retired', extra: 'baremetal:node:update_extra',
          instance_info: 'baremetal:node:update_instance_info', driver: 'baremetal:node:update:driver_interfaces',
        };
        for (const x of INTERFACE_TYPES) rules[`${x}_interface`] = 'baremetal:node:update:driver_interfaces';
        for (const f of touched) rc.enforce(rules[f] ?? 'baremetal:node:update', t);
        const onlyInstance = ops.length === 1 && ops[0]!.op === 'remove' && ops[0]!.path === '/instance_uuid';
        if (!(n.maintenance && onlyInstance) && n.target_provision_state && !UPDATE_ALLOWED.has(n.provision_state)) throw E.updateInTransition(rc.params.node!);
        if (n.provision_state === S.inspecting && at(rc, '1.39')) throw E.conflict(`Cannot update node "${n.uuid}" while it is in state "inspecting".`);
        // checks
        const driver = str(d.driver, 'driver');
        if (!driver || !isHardwareType(driver)) throw E.noValidHost(String(driver), String(d.conductor_group ?? ''));
        for (const k of DICTS) if (k in d) d[k] = dict(d[k], k);
        checkDriverInfo(driver, d.driver_info as Record<string, unknown>);
        const name = str(d.name, 'name');
        if (touched.has('name')) checkName(name);
        const rcls = str(d.resource_class, 'resource_class', 80);
        checkResourceClass(rcls);
        if (touched.has('resource_class') && n.provision_state !== S.enroll && n.provision_state !== S.manageable && n.provision_state !== S.inspecting && n.provision_state !== S.inspectWait && !n.maintenance) {
          throw E.invalid(`Node ${n.uuid} must be in the enroll, manageable or inspecting state to change its resource_class, or in maintenance mode.`);
        }
        let newIfaces: Record<string, string>;
        if (driver !== n.driver || resetInterfaces === 'true') {
          newIfaces = interfacesFor(driver as HardwareType, Object.fromEntries(INTERFACE_TYPES.filter((x) => touched.has(`${x}_interface`)).map((x) => [`${x}_interface`, d[`${x}_interface`]])));
        } else {
          newIfaces = Object.fromEntries(INTERFACE_TYPES.map((x) => [`${x}_interface`, touched.has(`${x}_interface`)
            ? (d[`${x}_interface`] === null ? interfacesFor(driver as HardwareType, {})[`${x}_interface`]! : checkInterface(driver as HardwareType, x as InterfaceType, d[`${x}_interface`]))
            : String(ifaces[`${x}_interface`])]));
        }
        let instanceUuid = str(d.instance_uuid, 'instance_uuid');
        if (instanceUuid !== null) {
          if (!isUuid(instanceUuid)) throw E.invalid(`Expected a UUID but received ${instanceUuid}.`);
          instanceUuid = canonUuid(instanceUuid);
          if (n.instance_uuid && n.instance_uuid !== instanceUuid) throw E.nodeAssociated(n.uuid, n.instance_uuid);
          const other = await db.selectFrom('baremetal_nodes').select('uuid').where('instance_uuid', '=', instanceUuid).where('uuid', '!=', n.uuid).executeTakeFirst();
          if (other) throw E.instanceAssociated(instanceUuid, n.uuid);
        }
        if (touched.has('owner') && n.provision_state === S.active && !n.maintenance) rc.enforce('baremetal:node:update_owner_provisioned', t);
        const protect = d.protected === null || d.protected === undefined ? false : parseBool(d.protected, 'protected');
        if (protect && !n.protected && n.provision_state !== S.active && n.provision_state !== S.rescue) throw E.conflict('Protected can only be set when a node is active');
        const protectedReason = str(d.protected_reason, 'protected_reason');
        if (protectedReason && !protect) throw E.invalid('Cannot set protected_reason when protected is unset');
        const retired = d.retired === null || d.retired === undefined ? false : parseBool(d.retired, 'retired');
        if (retired && !n.retired && ![S.manageable, S.active, S.adoptFail, S.cleanFail, S.deployFail, S.inspectFail, S.rescueFail, S.unrescueFail].includes(n.provision_state as never)) {
          throw E.invalid(`The node ${n.uuid} can not be retired while it is in state "${n.provision_state}".`);
        }
        const retiredReason = str(d.retired_reason, 'retired_reason');
        if (retiredReason && !retired) throw E.invalid('Cannot set retired_reason when retired is unset');
        const maintenance = parseBool(d.maintenance ?? false, 'maintenance');
        if (name && name !== n.name && await db.selectFrom('baremetal_nodes').select('uuid').where('name', '=', name).executeTakeFirst()) throw E.duplicateName(name);
        if (d.chassis_uuid && d.chassis_uuid !== n.chassis_uuid && !(await db.selectFrom('baremetal_chassis').select('uuid').where('uuid', '=', String(d.chassis_uuid)).executeTakeFirst())) {
          throw E.chassisNotFound(String(d.chassis_uuid));
        }
        const bump = touched.has('driver') || touched.has('driver_info') || touched.has('maintenance') || touched.has('conductor_group') || INTERFACE_TYPES.some((x) => touched.has(`${x}_interface`));
        await db.updateTable('baremetal_nodes').set((eb) => ({
          name, driver, driver_info: JSON.stringify(d.driver_info), properties: JSON.stringify(d.properties), extra: JSON.stringify(d.extra),
          instance_info: JSON.stringify(d.instance_info), instance_uuid: instanceUuid, resource_class: rcls, chassis_uuid: str(d.chassis_uuid, 'chassis_uuid'),
          conductor_group: str(d.conductor_group, 'conductor_group') ?? '', automated_clean: boolOrNull(d.automated_clean, 'automated_clean'),
          protected: protect ? 1 : 0, protected_reason: protect ? protectedReason : null, owner: str(d.owner, 'owner'), lessee: str(d.lessee, 'lessee'),
          description: str(d.description, 'description', 4096), retired: retired ? 1 : 0, retired_reason: retired ? retiredReason : null,
          network_data: JSON.stringify(d.network_data), maintenance: maintenance ? 1 : 0,
          maintenance_reason: maintenance ? str(d.maintenance_reason, 'maintenance_reason', 4096) : null,
          fault: maintenance ? n.fault : null, interfaces: JSON.stringify(newIfaces), updated_at: nowIso(),
          ...(bump ? { version: eb('version', '+', 1) } : {}),
        })).where('uuid', '=', n.uuid).execute();
        if (touched.has('driver') || touched.has('conductor_group')) await placeNode(ctx, n.uuid);
        await afterChange(ctx, n.uuid);
        return (await view(rc, [await findNode(ctx, n.uuid, null)], null))[0];
      },
    }),
    route({
      method: 'DELETE', path: '/v1/nodes/:node', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:delete');
        if (n.protected) throw E.protectedNode(n.uuid);
        if (n.instance_uuid) throw E.nodeAssociated(n.uuid, n.instance_uuid);
        if (!n.maintenance && !DELETE_ALLOWED.has(n.provision_state)) {
          throw E.conflict(`Can not delete node "${n.uuid}" while it is in provision state "${n.provision_state}". Valid provision states to perform deletion are: "('manageable', 'enroll', 'adopt failed', 'available')", or set the node into maintenance mode`);
        }
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('baremetal_ports').where('node_uuid', '=', n.uuid).execute();
          await tx.deleteFrom('baremetal_portgroups').where('node_uuid', '=', n.uuid).execute();
          await tx.deleteFrom('baremetal_node_traits').where('node_uuid', '=', n.uuid).execute();
          await tx.deleteFrom('baremetal_node_history').where('node_uuid', '=', n.uuid).execute();
          await tx.updateTable('baremetal_allocations').set({ node_uuid: null }).where('node_uuid', '=', n.uuid).execute();
          await tx.deleteFrom('baremetal_nodes').where('uuid', '=', n.uuid).execute();
        });
        await syncPlacement(ctx, n.uuid);
        await closeProvisioning(ctx, n.provisioning, n.operation);
        ctx.notify(n.conductor);
        publishNode(ctx, n, 'deleted');
      },
    }),

    // ---- states
    route({
      method: 'GET', path: '/v1/nodes/:node/states', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:get_states');
        const out: Record<string, unknown> = {
          console_enabled: !!n.console_enabled, last_error: n.last_error, power_state: n.power_state, provision_state: n.provision_state,
          provision_updated_at: iso(n.provision_updated_at), target_power_state: n.target_power_state, target_provision_state: n.target_provision_state,
        };
        if (at(rc, '1.12')) Object.assign(out, { raid_config: parseJsonObject(n.raid_config), target_raid_config: parseJsonObject(n.target_raid_config) });
        if (at(rc, '1.75')) Object.assign(out, { boot_mode: n.boot_mode, secure_boot: n.secure_boot === null ? null : !!n.secure_boot });
        if (at(rc, '1.14')) out.links = [{ href: `${reqBase(rc.req)}/v1/nodes/${n.uuid}/states`, rel: 'self' }];
        return out;
      },
    }),
    route({
      method: 'PUT', path: '/v1/nodes/:node/states/power', rule: RULE, status: 202,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:set_power_state');
        const b = objectOf(rc.body) ?? {};
        const target = b.target;
        const timeout = b.timeout;
        const soft = target === 'soft rebooting' || target === 'soft power off';
        if ((soft || timeout !== undefined) && !at(rc, '1.27')) throw E.notAcceptable();
        if (timeout !== undefined && timeout !== null && (!Number.isInteger(timeout) || (timeout as number) < 1)) throw E.invalid('timeout has to be positive integer');
        const map: Record<string, 'power on' | 'power off' | 'reboot' | 'soft power off' | 'soft reboot'> = {
          'power on': 'power on', 'power off': 'power off', rebooting: 'reboot', 'soft power off': 'soft power off', 'soft rebooting': 'soft reboot',
        };
        if (typeof target !== 'string' || !map[target]) throw E.invalidState(String(target), rc.params.node!, n.power_state);
        if (n.provision_state === S.cleaning || n.provision_state === S.cleanWait) throw E.invalidState(target, rc.params.node!, n.provision_state);
        if (n.target_power_state) throw E.conflict(`Power transition to ${n.target_power_state} is already in progress for node ${n.uuid}.`);
        const seq = (parseJsonObject(n.power_request).seq as number | undefined ?? 0) + 1;
        const req = { target: map[target], seq, ...(typeof timeout === 'number' ? { timeout_s: timeout } : {}) };
        const tps = target === 'rebooting' || target === 'soft rebooting' ? 'power on' : target === 'soft power off' ? 'power off' : target;
        await touch(n, { power_request: JSON.stringify(req), target_power_state: tps }, { bump: true });
        rc.reply.header('Location', `${reqBase(rc.req)}/v1/nodes/${n.uuid}/states`);
      },
    }),
    route({
      method: 'PUT', path: '/v1/nodes/:node/states/provision', rule: RULE, status: 202,
      handler: async (rc) => {
        const n = await findNode(ctx, rc.params.node!, rc.cred);
        const b = (objectOf(rc.body) ?? {}) as unknown as ProvisionBody;
        rc.enforce('baremetal:node:set_provision_state', nodeTarget(n));
        const known = ['target', 'configdrive', 'clean_steps', 'deploy_steps', 'rescue_password', 'disable_ramdisk', 'service_steps', 'runbook'];
        for (const k of Object.keys(b)) if (!known.includes(k)) throw E.invalid(`Unknown argument: "${k}"`);
        if (b.deploy_steps !== undefined && !at(rc, '1.69')) throw E.notAcceptable();
        if (b.disable_ramdisk !== undefined && !at(rc, '1.70')) throw E.notAcceptable();
        // Stratus runs only its own steps (erase_devices_metadata, the deploy itself): user deploy steps and
        // cleaning without the ramdisk are refused rather than ignored
        if (Array.isArray(b.deploy_steps) && b.deploy_steps.length) throw E.invalid('Invalid deploy_steps: this cloud runs no user deploy steps.');
        if (b.disable_ramdisk !== undefined && parseBool(b.disable_ramdisk, 'disable_ramdisk')) throw E.invalid('disable_ramdisk is not supported: every clean step here runs in the ramdisk.');
        await applyVerb(ctx, n, b, mv(rc), userOf(rc));
        rc.reply.header('Location', `${reqBase(rc.req)}/v1/nodes/${n.uuid}/states`);
      },
    }),
    since('1.12', route({
      method: 'PUT', path: '/v1/nodes/:node/states/raid', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:set_raid_state');
        const cfg = objectOf(rc.body);
        if (!cfg) throw E.invalid('Invalid RAID configuration: must be a JSON object.');
        if (cfg.logical_disks !== undefined && !Array.isArray(cfg.logical_disks)) throw E.invalid("RAID config validation error: 'logical_disks' must be a list");
        const raid = parseJsonObject(n.interfaces).raid_interface;
        if (raid === 'no-raid') throw E.invalid(`Driver ${n.driver} does not support raid (disabled or not implemented).`);
        await touch(n, { target_raid_config: JSON.stringify(cfg) });
      },
    })),
    route({
      method: 'PUT', path: '/v1/nodes/:node/states/console', rule: RULE, status: 202,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:set_console_state');
        const b = objectOf(rc.body) ?? {};
        if (b.enabled === undefined) throw E.invalid('Invalid input for field/attribute enabled. Value: None. Mandatory field missing.');
        parseBool(b.enabled, 'enabled');
        throw E.invalid(`Driver ${n.driver} does not support console (disabled or not implemented).`);
      },
    }),
    route({
      method: 'GET', path: '/v1/nodes/:node/states/console', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:get_console');
        throw E.invalid(`Driver ${n.driver} does not support console (disabled or not implemented).`);
      },
    }),

    // ---- maintenance
    route({
      method: 'PUT', path: '/v1/nodes/:node/maintenance', rule: RULE, status: 202,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:set_maintenance');
        const reason = str((objectOf(rc.body) ?? {}).reason, 'reason', 4096);
        await touch(n, { maintenance: 1, maintenance_reason: reason }, { bump: true });
        await recordHistory(ctx, n.uuid, { event: `Maintenance set${reason ? `: ${reason}` : ''}.`, eventType: 'maintenance', user: userOf(rc), conductor: n.conductor });
      },
    }),
    route({
      method: 'DELETE', path: '/v1/nodes/:node/maintenance', rule: RULE, status: 202,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:clear_maintenance');
        await touch(n, { maintenance: 0, maintenance_reason: null, fault: null }, { bump: true });
        await recordHistory(ctx, n.uuid, { event: 'Maintenance unset.', eventType: 'maintenance', user: userOf(rc), conductor: n.conductor });
      },
    }),

    // ---- management
    route({
      method: 'PUT', path: '/v1/nodes/:node/management/boot_device', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:set_boot_device');
        const b = objectOf(rc.body) ?? {};
        const dev = b.boot_device;
        const supported = ['pxe', 'disk', 'cdrom', 'bios'];
        if (typeof dev !== 'string' || !supported.includes(dev)) {
          throw E.invalid(`Invalid boot device ${String(dev)} specified, valid devices are: ${supported.join(', ')}.`);
        }
        const persistent = b.persistent === undefined ? false : parseBool(b.persistent, 'persistent');
        const seq = (parseJsonObject(n.boot_device_request).seq as number | undefined ?? 0) + 1;
        await touch(n, { boot_device_request: JSON.stringify({ device: dev, persistent, seq }) }, { bump: true });
      },
    }),
    route({
      method: 'GET', path: '/v1/nodes/:node/management/boot_device', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:get_boot_device');
        const r = parseJsonObject(n.boot_device_request);
        return { boot_device: r.device ?? null, persistent: r.device ? !!r.persistent : null };
      },
    }),
    route({
      method: 'GET', path: '/v1/nodes/:node/management/boot_device/supported', rule: RULE,
      handler: async (rc) => {
        await load(rc, 'baremetal:node:get_boot_device');
        return { supported_boot_devices: ['pxe', 'disk', 'cdrom', 'bios'] };
      },
    }),

    // ---- traits (1.37)
    since('1.37', route({
      method: 'GET', path: '/v1/nodes/:node/traits', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:traits:list');
        return { traits: (await nodeTraits(ctx, [n.uuid])).get(n.uuid) ?? [] };
      },
    })),
    since('1.37', route({
      method: 'PUT', path: '/v1/nodes/:node/traits', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:traits:set');
        const b = objectOf(rc.body);
        if (!b || !Array.isArray(b.traits)) throw E.invalid('Invalid input: the body must be {"traits": [...]}.');
        const traits = [...new Set(b.traits.map(checkTrait))];
        if (traits.length > MAX_TRAITS) throw E.invalid(`Could not modify traits for node ${n.uuid}: would exceed the maximum of ${MAX_TRAITS}`);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('baremetal_node_traits').where('node_uuid', '=', n.uuid).execute();
          if (traits.length) await tx.insertInto('baremetal_node_traits').values(traits.map((t) => ({ node_uuid: n.uuid, trait: t }))).execute();
        });
        await touch(n, {});
      },
    })),
    since('1.37', route({
      method: 'PUT', path: '/v1/nodes/:node/traits/:trait', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:traits:set');
        if (rc.body !== undefined && rc.body !== null && rc.body !== '') throw E.invalid('No body should be provided when adding a trait');
        const t = checkTrait(rc.params.trait);
        const have = (await nodeTraits(ctx, [n.uuid])).get(n.uuid) ?? [];
        if (!have.includes(t)) {
          if (have.length >= MAX_TRAITS) throw E.invalid(`Could not modify traits for node ${n.uuid}: would exceed the maximum of ${MAX_TRAITS}`);
          await db.insertInto('baremetal_node_traits').values({ node_uuid: n.uuid, trait: t }).onConflict((oc) => oc.doNothing()).execute();
        }
        rc.reply.header('Location', `${reqBase(rc.req)}/v1/nodes/${n.uuid}/traits`);
        await touch(n, {});
      },
    })),
    since('1.37', route({
      method: 'DELETE', path: '/v1/nodes/:node/traits', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:traits:delete');
        await db.deleteFrom('baremetal_node_traits').where('node_uuid', '=', n.uuid).execute();
        await touch(n, {});
      },
    })),
    since('1.37', route({
      method: 'DELETE', path: '/v1/nodes/:node/traits/:trait', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:traits:delete');
        const r = await db.deleteFrom('baremetal_node_traits').where('node_uuid', '=', n.uuid).where('trait', '=', rc.params.trait!).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw E.traitNotFound(n.uuid, rc.params.trait!);
        await touch(n, {});
      },
    })),

    // ---- vifs (1.28): Ironic's VIF API as Nova uses it (flat network: the VIF recorded on a free port)
    since('1.28', route({
      method: 'GET', path: '/v1/nodes/:node/vifs', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:vif:list');
        return { vifs: await vifsOf(ctx, n.uuid) };
      },
    })),
    since('1.28', route({
      method: 'POST', path: '/v1/nodes/:node/vifs', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:vif:attach');
        const b = objectOf(rc.body) ?? {};
        if (typeof b.id !== 'string' || !b.id) throw E.invalid('Invalid input for field/attribute id. Value: None. Mandatory field missing.');
        if ((b.port_uuid !== undefined || b.portgroup_uuid !== undefined) && !at(rc, '1.67')) throw E.notAcceptable();
        if (b.port_uuid !== undefined && b.portgroup_uuid !== undefined) throw E.invalid('Cannot specify both port_uuid and portgroup_uuid');
        await attachVif(ctx, n.uuid, b.id, typeof b.port_uuid === 'string' ? b.port_uuid : undefined);
      },
    })),
    since('1.28', route({
      method: 'DELETE', path: '/v1/nodes/:node/vifs/:vif', rule: RULE, status: 204,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:vif:detach');
        await detachVif(ctx, n.uuid, rc.params.vif!);
      },
    })),

    // ---- validate
    route({
      method: 'GET', path: '/v1/nodes/:node/validate', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:validate');
        return validation(n, await ctx.db.selectFrom('baremetal_ports').select('uuid').where('node_uuid', '=', n.uuid).execute().then((p) => p.length));
      },
    }),

    // ---- history (1.78)
    since('1.78', route({
      method: 'GET', path: '/v1/nodes/:node/history', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:history:get');
        const q = rc.query as Record<string, string | string[] | undefined>;
        const detail = one(q.detail) !== undefined && parseBool(one(q.detail), 'detail');
        const rows = await db.selectFrom('baremetal_node_history').selectAll().where('node_uuid', '=', n.uuid).execute();
        const lq = listQuery(rc, new Set(['created_at', 'uuid']));
        const p = page(rc, rows, lq, { resource: `nodes/${n.uuid}/history`, notFound: (m) => E.historyNotFound(m) });
        const out: Record<string, unknown> = { history: p.items.map((h) => historyView(rc, n.uuid, h, detail)) };
        if (p.next) out.next = p.next;
        return out;
      },
    })),
    since('1.78', route({
      method: 'GET', path: '/v1/nodes/:node/history/:event', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:history:get');
        const h = await db.selectFrom('baremetal_node_history').selectAll().where('node_uuid', '=', n.uuid).where('uuid', '=', rc.params.event!).executeTakeFirst();
        if (!h) throw E.historyNotFound(rc.params.event!);
        return historyView(rc, n.uuid, h, true);
      },
    })),

    // ---- bios (1.40): no bios interface does settings; the list is empty
    since('1.40', route({
      method: 'GET', path: '/v1/nodes/:node/bios', rule: RULE,
      handler: async (rc) => {
        await load(rc, 'baremetal:node:bios:get');
        return { bios: [] };
      },
    })),
    since('1.40', route({
      method: 'GET', path: '/v1/nodes/:node/bios/:setting', rule: RULE,
      handler: async (rc) => {
        const n = await load(rc, 'baremetal:node:bios:get');
        throw E.notFound(`The BIOS setting ${rc.params.setting} could not be found for node ${n.uuid}.`);
      },
    })),
  ];
}

function historyView(rc: RouteContext, node: string, h: { uuid: string; created_at: string; severity: string; event: string; event_type: string; user: string | null; conductor: string | null }, detail: boolean) {
  const base = reqBase(rc.req);
  return {
    uuid: h.uuid, created_at: iso(h.created_at), severity: h.severity, event: h.event,
    ...(detail ? { event_type: h.event_type, user: h.user, conductor: h.conductor } : {}),
    links: [{ href: `${base}/v1/nodes/${node}/history/${h.uuid}`, rel: 'self' }, { href: `${base}/nodes/${node}/history/${h.uuid}`, rel: 'bookmark' }],
  };
}

/** Ironic's validate: each interface's result and reason. */
function validation(n: NodeRow, ports: number): Record<string, { result: boolean | null; reason?: string }> {
  const info = parseJsonObject(n.driver_info);
  const ii = parseJsonObject(n.instance_info);
  const ifaces = parseJsonObject(n.interfaces);
  const missing = missingDriverInfo(n.driver, info);
  const ok = (cond: string | null) => (cond ? { result: false, reason: cond } : { result: true });
  const unsupported = (t: string) => ({ result: false, reason: `Driver ${n.driver} does not support ${t} (disabled or not implemented).` });
  const out: Record<string, { result: boolean | null; reason?: string }> = {
    power: ok(missing), management: ok(missing),
    boot: ok(missing ?? (ports ? null : `Node ${n.uuid} does not have any port associated with it.`)),
    deploy: ok(missing ?? (typeof ii.image_source === 'string' && ii.image_source ? null : "Some parameters were missing in node's instance_info. Missing are: ['image_source']")),
    network: ok(null), storage: ok(null), inspect: ifaces.inspect_interface === 'no-inspect' ? unsupported('inspect') : ok(missing),
    console: unsupported('console'), raid: unsupported('raid'), bios: unsupported('bios'),
    rescue: ifaces.rescue_interface === 'no-rescue' ? unsupported('rescue') : ok(missing),
  };
  return out;
}

export async function vifsOf(ctx: BmContext, node: string): Promise<Array<{ id: string }>> {
  const out: Array<{ id: string }> = [];
  for (const t of ['baremetal_ports', 'baremetal_portgroups'] as const) {
    for (const p of await ctx.db.selectFrom(t).select(['internal_info']).where('node_uuid', '=', node).execute()) {
      const vif = parseJsonObject(p.internal_info).tenant_vif_port_id;
      if (typeof vif === 'string') out.push({ id: vif });
    }
  }
  return out;
}

/**
 * Attaches `vif` to a free port of the node, or to the port asked (1.67); the
 * port it took. As Ironic's get_free_port_like_object: with `physnets` (the
 * VIF's network's physical networks) only ports on one of them or on none
 * are free, those on one of them first, then the PXE-enabled ones (then the
 * oldest).
 */
export async function attachVif(ctx: BmContext, node: string, vif: string, portUuid?: string, physnets: string[] = []): Promise<{ uuid: string; address: string; physical_network: string | null; local_link_connection: Record<string, unknown> }> {
  const all = await ctx.db.selectFrom('baremetal_ports').selectAll().execute();
  for (const p of all) {
    if (parseJsonObject(p.internal_info).tenant_vif_port_id === vif) throw E.vifAttached(vif, 'port', p.uuid);
  }
  const onPhysnet = (p: { physical_network: string | null }) => (p.physical_network !== null && physnets.includes(p.physical_network) ? 1 : 0);
  const mine = all.filter((p) => p.node_uuid === node)
    .sort((a, b) => onPhysnet(b) - onPhysnet(a) || b.pxe_enabled - a.pxe_enabled || a.created_at.localeCompare(b.created_at));
  const free = mine.filter((p) => !parseJsonObject(p.internal_info).tenant_vif_port_id && (!physnets.length || p.physical_network === null || physnets.includes(p.physical_network)));
  const port = portUuid ? free.find((p) => p.uuid === portUuid) : free[0];
  if (!port) {
    if (portUuid && !mine.some((p) => p.uuid === portUuid)) throw E.portNotFound(portUuid);
    throw E.noFreePorts(vif);
  }
  const info = { ...parseJsonObject(port.internal_info), tenant_vif_port_id: vif };
  await ctx.db.updateTable('baremetal_ports').set({ internal_info: JSON.stringify(info), updated_at: nowIso() }).where('uuid', '=', port.uuid).execute();
  return { uuid: port.uuid, address: port.address, physical_network: port.physical_network, local_link_connection: parseJsonObject(port.local_link_connection) };
}

export async function detachVif(ctx: BmContext, node: string, vif: string): Promise<void> {
  const ports = await ctx.db.selectFrom('baremetal_ports').selectAll().where('node_uuid', '=', node).execute();
  const port = ports.find((p) => parseJsonObject(p.internal_info).tenant_vif_port_id === vif);
  if (!port) throw E.vifNotAttached(vif, node);
  const info = parseJsonObject(port.internal_info);
  delete info.tenant_vif_port_id;
  await ctx.db.updateTable('baremetal_ports').set({ internal_info: JSON.stringify(info), updated_at: nowIso() }).where('uuid', '=', port.uuid).execute();
}

export { HARDWARE_TYPES };
