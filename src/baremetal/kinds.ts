// The fleet kind `baremetal_node` (protocol.ts is the wire contract): each
// node is placed on a conductor (conductors.ts), which is handed the node's
// NodeSpec (BMC access with its secrets in clear: the agent channel is
// authenticated; the NICs; the power and boot-device requests; the
// operation in progress) and reports NodeObserved. Reports move the node
// through states.ts: the operation's phases (wait / resume), its success
// (inspect: ports and properties from the inventory; deploy: active;
// tear down: cleaning...) or failure (`* failed` with last_error, never a
// secret), and the power state seen. Every failure and state change goes to
// the node's history.
import { Type } from 'typebox';
import { nowIso, uuid as newUuid } from '../common/ids.ts';
import { parseJsonObject } from '../common/json.ts';
import type { ResourceKind } from '../fleet/kinds.ts';
import type { Resource, ResourceReport } from '../fleet/protocol.ts';
import { conductors, placeNode } from './conductors.ts';
import type { BmContext, NodeRow } from './context.ts';
import { bmcAccess, isHardwareType } from './drivers.ts';
import { BAREMETAL_NODE_KIND, type NodeInventory, type NodeObserved, type NodeOperation, type NodeSpec, type ProvisioningNetwork } from './protocol.ts';
import { onOperation, S } from './states.ts';
import { afterChange, recordHistory } from './util.ts';
import { closeProvisioning, openProvisioning } from './provisioning.ts';

const ObservedBody = Type.Object({
  power_state: Type.Union([Type.Literal('power on'), Type.Literal('power off'), Type.Null()]),
  power_seq: Type.Optional(Type.Integer({ minimum: 0 })),
  boot_device_seq: Type.Optional(Type.Integer({ minimum: 0 })),
  operation: Type.Optional(Type.Object({
    id: Type.String({ maxLength: 64 }),
    status: Type.Union([Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
    phase: Type.String({ maxLength: 32 }),
    phase_started_at: Type.String({ maxLength: 64 }),
    message: Type.Optional(Type.String({ maxLength: 4000 })),
    inventory: Type.Optional(Type.Object({
      cpus: Type.Integer({ minimum: 0 }), cpu_arch: Type.String({ maxLength: 32 }), memory_mb: Type.Integer({ minimum: 0 }),
      disks: Type.Array(Type.Object({ name: Type.String({ maxLength: 255 }), size_bytes: Type.Number({ minimum: 0 }) }, { additionalProperties: true }), { maxItems: 256 }),
      nics: Type.Array(Type.Object({ name: Type.String({ maxLength: 255 }), mac: Type.String({ maxLength: 64 }) }, { additionalProperties: true }), { maxItems: 256 }),
      boot_mac: Type.Optional(Type.String({ maxLength: 64 })),
    }, { additionalProperties: true })),
  }, { additionalProperties: false })),
}, { additionalProperties: false });

/** Builds the spec a conductor must make of a node. */
export async function specOf(ctx: BmContext, n: NodeRow): Promise<NodeSpec | null> {
  if (!isHardwareType(n.driver)) return null;
  const nics = await ctx.db.selectFrom('baremetal_ports').select(['address', 'pxe_enabled']).where('node_uuid', '=', n.uuid).orderBy('created_at').execute();
  const power = parseJsonObject(n.power_request);
  const boot = parseJsonObject(n.boot_device_request);
  return {
    bmc: bmcAccess(n.driver, parseJsonObject(n.driver_info)),
    maintenance: !!n.maintenance,
    nics: nics.map((p) => ({ mac: p.address, pxe_enabled: !!p.pxe_enabled })),
    power: power.target ? (power as unknown as NodeSpec['power']) : null,
    boot_device: boot.device ? (boot as unknown as NodeSpec['boot_device']) : null,
    operation: n.operation ? (JSON.parse(n.operation) as NodeOperation) : null,
    provisioning: n.provisioning ? (JSON.parse(n.provisioning) as ProvisioningNetwork) : null,
  };
}

/** Ironic's inspection outcome: properties from the inventory, a port per NIC not yet known (pxe on the one it booted from). */
async function applyInventory(ctx: BmContext, n: NodeRow, inv: NodeInventory): Promise<string> {
  const props = parseJsonObject(n.properties);
  const root = inv.disks.length ? Math.max(...inv.disks.map((d) => d.size_bytes)) : 0;
  Object.assign(props, { cpus: inv.cpus, memory_mb: inv.memory_mb, local_gb: Math.floor(root / 2 ** 30), cpu_arch: inv.cpu_arch });
  const now = nowIso();
  for (const nic of inv.nics) {
    const mac = nic.mac.toLowerCase();
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) continue;
    const have = await ctx.db.selectFrom('baremetal_ports').select('node_uuid').where('address', '=', mac).executeTakeFirst();
    if (have) continue;
    await ctx.db.insertInto('baremetal_ports').values({
      uuid: newUuid(), address: mac, node_uuid: n.uuid, portgroup_uuid: null,
      pxe_enabled: !inv.boot_mac || inv.boot_mac.toLowerCase() === mac ? 1 : 0, physical_network: null, local_link_connection: '{}',
      extra: '{}', internal_info: '{}', is_smartnic: 0, created_at: now, updated_at: null,
    }).onConflict((oc) => oc.doNothing()).execute();
  }
  return JSON.stringify(props);
}

export function baremetalKind(ctx: BmContext): ResourceKind {
  const db = ctx.db;

  /**
   * The provisioning ports of the cleaning a tear down went on to, once the
   * node is the cleaning's (its version after the report's update): written
   * to the node while the cleaning still holds it, else given back.
   */
  async function openCleaning(n: NodeRow, op: NodeOperation, hostname: string): Promise<void> {
    const p = await openProvisioning(ctx, n, hostname, op).catch((err: Error) => {
      ctx.log.warn({ err: err.message, node: n.uuid }, 'the provisioning network of the cleaning could not be set up');
      return null;
    });
    if (!p) return;
    const provisioning = JSON.stringify(p);
    // recorded on the node while the cleaning is still its operation, whatever else moved its version meanwhile
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await db.selectFrom('baremetal_nodes').select(['version', 'operation']).where('uuid', '=', n.uuid).executeTakeFirst();
      if (!cur || !cur.operation || parseJsonObject(cur.operation).id !== op.id) break;
      const r = await db.updateTable('baremetal_nodes').set((eb) => ({ provisioning, updated_at: nowIso(), version: eb('version', '+', 1) }))
        .where('uuid', '=', n.uuid).where('version', '=', cur.version).executeTakeFirst();
      if (Number(r.numUpdatedRows) > 0) return;
    }
    ctx.log.warn({ node: n.uuid, operation: op.id }, 'the cleaning ended or the node kept changing before its provisioning ports were recorded: removed');
    await closeProvisioning(ctx, provisioning, op);
  }

  async function applyReport(hostname: string, r: ResourceReport): Promise<void> {
    const n = await db.selectFrom('baremetal_nodes').selectAll().where('uuid', '=', r.id).executeTakeFirst();
    if (!n || n.conductor !== hostname) return;
    const o = r.observed as NodeObserved;
    const set: Record<string, unknown> = {};
    const history: Array<{ event: string; severity: 'INFO' | 'ERROR'; type: string }> = [];
    if (o.power_state !== undefined && o.power_state !== n.power_state && (o.power_state !== null || r.error)) {
      set.power_state = o.power_state;
      history.push({ event: `Power state changed from "${n.power_state}" to "${o.power_state}".`, severity: 'INFO', type: 'power' });
    }
    const req = parseJsonObject(n.power_request);
    if (typeof o.power_seq === 'number' && o.power_seq > n.power_seq_done) {
      set.power_seq_done = o.power_seq;
      if (o.power_seq >= Number(req.seq ?? 0)) set.target_power_state = null;
      if (r.error && !o.operation) {
        set.last_error = `Failed to change power state to '${String(req.target)}' by '${String(req.target)}'. Error: ${r.error.message}`;
        history.push({ event: String(set.last_error), severity: 'ERROR', type: 'power' });
      }
    }
    if (typeof o.boot_device_seq === 'number' && o.boot_device_seq > n.boot_device_seq_done) set.boot_device_seq_done = o.boot_device_seq;
    const op = n.operation ? (JSON.parse(n.operation) as NodeOperation) : null;
    let stateChanged = false;
    let cleaning: NodeOperation | null = null;
    // An error with no operation outcome, while an operation runs: the operation failed.
    const opReport = o.operation ?? (op && r.error && r.version === n.version ? { id: op.id, status: 'failed' as const, phase: 'done', phase_started_at: nowIso(), message: r.error.message } : undefined);
    if (op && opReport && opReport.id === op.id) {
      const step = onOperation(n.provision_state, opReport.status, opReport.phase, opReport.message, {
        automatedClean: n.automated_clean === null ? undefined : !!n.automated_clean,
      });
      let target = step?.state ?? null;
      if (step && opReport.status === 'succeeded' && n.provision_state.startsWith('clean') && n.target_provision_state === S.manageable) target = S.manageable;
      if (step && target) {
        set.provision_state = target;
        set.provision_updated_at = Date.parse(opReport.phase_started_at) ? new Date(opReport.phase_started_at).toISOString() : nowIso();
        stateChanged = true;
        history.push({ event: `Provision state changed from "${n.provision_state}" to "${target}" (${step.event}).`, severity: 'INFO', type: 'provisioning' });
        if (opReport.status !== 'running') {
          // the operation ended: a new one for a tear-down's cleaning, else none
          let nextOp: NodeOperation | null = null;
          if (target === S.cleaning) {
            const bi = parseJsonObject(n.interfaces).boot_interface === 'redfish-virtual-media' ? 'redfish-virtual-media' : 'ipxe';
            nextOp = { id: newUuid(), type: 'clean', boot_interface: bi, steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }] };
          }
          set.operation = nextOp ? JSON.stringify(nextOp) : null;
          set.reservation = nextOp ? hostname : null;
          set.target_provision_state = target === S.cleaning ? S.available : null;
          // the next operation's ports are opened once this report has won the node (below): a duplicate report never opens its own
          set.provisioning = null;
          if (nextOp) cleaning = nextOp;
          if (step.error) {
            set.last_error = step.error;
            history.push({ event: step.error, severity: 'ERROR', type: 'provisioning' });
            if (target === S.deployFail || target === S.error) set.target_provision_state = target === S.deployFail ? S.active : null;
          } else set.last_error = null;
          if (opReport.status === 'succeeded') {
            if (op.type === 'inspect') {
              set.inspection_finished_at = nowIso();
              if (opReport.inventory) set.properties = await applyInventory(ctx, n, opReport.inventory);
            }
            if (op.type === 'deploy') set.deploy_step = '{}';
            if (op.type === 'clean') set.clean_step = '{}';
            if (op.type === 'tear_down') {
              const ii = parseJsonObject(n.instance_info);
              set.instance_info = '{}';
              void ii;
            }
          }
        } else {
          set.reservation = target === S.deployWait || target === S.cleanWait || target === S.inspectWait || target === S.rescueWait ? null : hostname;
        }
      }
    } else if (!op && r.error && r.version === n.version) {
      // a failure with nothing running (a BMC that does not answer): Ironic's power sync failure
      const msg = r.error.message;
      if (n.last_error !== msg) {
        set.last_error = msg;
        history.push({ event: msg, severity: 'ERROR', type: 'power' });
      }
    }
    if (!Object.keys(set).length) return;
    const ended = 'operation' in set;
    const q = db.updateTable('baremetal_nodes').set((eb) => ({ ...set, updated_at: nowIso(), ...(ended ? { version: eb('version', '+', 1) } : {}) }))
      .where('uuid', '=', n.uuid);
    // an operation's outcome applies to the node as it was read (an API change in between wins)
    const res = await (ended ? q.where('version', '=', n.version) : q).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return;
    // the cleaning's ports (a VIF it boots from adopted before its server lets it go), then the ended operation's go
    if (cleaning) await openCleaning(n, cleaning, hostname);
    if (ended) await closeProvisioning(ctx, n.provisioning, op);
    for (const h of history) await recordHistory(ctx, n.uuid, { event: h.event, eventType: h.type, severity: h.severity, conductor: hostname });
    if (stateChanged || 'power_state' in set) ctx.log.info({ node: n.uuid, conductor: hostname, state: set.provision_state ?? n.provision_state, power: set.power_state ?? n.power_state }, 'baremetal node report');
    await afterChange(ctx, n.uuid, { event: stateChanged || 'power_state' in set || 'target_power_state' in set || 'last_error' in set });
  }

  return {
    kind: BAREMETAL_NODE_KIND,
    observed: ObservedBody,
    async placed(hostname) {
      // nodes without a conductor, or whose conductor is gone for long, find one
      // (only those this conductor could take: its hardware types and group)
      const all = await conductors(ctx);
      const me = all.find((c) => c.hostname === hostname);
      if (me) {
        const live = new Set(all.filter((c) => Date.parse(c.last_seen_at) >= Date.now() - ctx.config.takeoverAfter * 1000).map((c) => c.hostname));
        const loose = await db.selectFrom('baremetal_nodes').select(['uuid', 'conductor', 'driver', 'conductor_group'])
          .where('driver', 'in', me.drivers.length ? me.drivers : ['']).where('conductor_group', '=', me.conductor_group).execute();
        for (const x of loose) if (!x.conductor || !live.has(x.conductor)) await placeNode(ctx, x.uuid);
      }
      const rows = await db.selectFrom('baremetal_nodes').select(['uuid', 'version']).where('conductor', '=', hostname).execute();
      return new Map(rows.map((r) => [r.uuid, r.version]));
    },
    async desired(ids, hostname) {
      if (!ids.length) return [];
      const rows = await db.selectFrom('baremetal_nodes').selectAll().where('uuid', 'in', ids).execute();
      const out: Resource[] = [];
      for (const n of rows) {
        if (n.conductor !== hostname) continue;
        const spec = await specOf(ctx, n);
        if (spec) out.push({ kind: BAREMETAL_NODE_KIND, id: n.uuid, version: n.version, spec });
      }
      return out;
    },
    async report(hostname, reports) {
      for (const r of reports) {
        await applyReport(hostname, r).catch((err: Error) => ctx.log.warn({ err: err.message, node: r.id }, 'baremetal report failed'));
      }
    },
  };
}
