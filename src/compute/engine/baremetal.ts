// The bare-metal driver: what Nova's ironic driver does, in-process. No agent
// converges `server` resources of kind baremetal (server-kind.ts leaves them
// out); this controller drives each such server's node through the
// bare-metal service's interface (src/baremetal/service.ts BaremetalNodes)
// and turns what the node does into the server's state through the
// lifecycle (lifecycle.ts applyReport, server-kind.ts writeTransition): the
// one path the agents' reports take.
//
// Level-triggered: a pass reads every placed bare-metal server and its node
// and does the next step the difference asks for; node events, the API's
// wake-ups (engine.notify) and the engine's periodic tick run a pass.
//   building    node available: instance_info and instance_uuid set, the
//               server's ports attached as VIFs and bound to the node's NICs,
//               deploy with Ironic's JSON config drive; node active: ACTIVE;
//               deploy failed (or a step refused): the node is undeployed and
//               released, the build rescheduled to another node up to
//               max_attempts (the lifecycle's rule), else ERROR with the
//               node's last_error as the fault
//   built       start/stop/reboot asked (task_state): the node's power; a
//               rebuild: Ironic's rebuild with the new image and config
//               drive (ERROR with last_error when it fails); else the node's
//               power state reported (SHUTOFF when it went off)
//   deleting    the node undeployed (tear down, then cleaning); once it is
//               cleaning or available its VIFs detach, instance_uuid clears
//               and the server is gone (its allocation released with it); a
//               tear down that fails (node `error`) is the delete's failure:
//               ERROR with the node's last_error, as Nova's
// A node whose instance_uuid names a server that is gone is undeployed too.
// A pass reads only the servers on nodes (indexed); the API's wake-ups of
// hosts that conduct no node do not run one (a host the last pass did not
// see conduct a node is looked up: a node may have gone to it since).
import type { Logger } from 'pino';
import { ApiError } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import type { BaremetalNode, BaremetalNodes } from '../../baremetal/service.ts';
import type { ConfigDrive } from '../../baremetal/protocol.ts';
import { metaDataJson } from '../../metadata/render.ts';
import { serverMetadataOf } from '../../metadata/service.ts';
import type { ServerNetworking } from '../../network/service.ts';
import type { ResourceError } from '../../fleet/protocol.ts';
import { applyReport, type ServerReportIn, type ServerRow } from './lifecycle.ts';
import type { ServerObserved } from './protocol.ts';
import { BAREMETAL } from './scheduler.ts';
import { writeTransition } from './server-kind.ts';

/** Nova's power states (nova/compute/power_state.py) of Ironic's (the ironic driver's _POWER_STATE_MAP). */
const NOSTATE = 0;
const RUNNING = 1;
const SHUTDOWN = 4;

/** Node states a delete undeploys from (the ironic driver's _UNPROVISION_STATES). */
const UNPROVISION = new Set(['active', 'deploy failed', 'error', 'wait call-back', 'deploying', 'deploy hold', 'rescue', 'rescuing', 'rescue wait',
  'rescue failed', 'unrescuing', 'unrescue failed']);
/** Node states in which the instance is unprovisioned (the ironic driver's _wait_for_provision_state). */
const UNPROVISIONED = new Set(['cleaning', 'clean wait', 'clean failed', 'available', 'manageable', 'enroll']);
/** How long a build waits for the ports its create is making. */
const PORTS_GRACE_MS = 30_000;
/** A deploy in progress. */
const DEPLOYING = new Set(['deploying', 'wait call-back', 'deploy hold']);

export interface BaremetalDriver {
  /** Runs a pass now, or once more after the one running; with `host`, only when that host conducts nodes. */
  kick(host?: string | null): void;
  /** Waits for the pass running; runs no more. */
  stop(): Promise<void>;
}

export function baremetalDriver(o: {
  db: Db; log: Logger; nodes: BaremetalNodes; network: ServerNetworking | null; maxAttempts: number;
  /** Rows changed (the engine's listeners: events, ports released, instance actions finished). */
  changed(ids: string[]): Promise<void>;
  /** Wakes the scheduler (a build rescheduled). */
  kickScheduler(): void;
}): BaremetalDriver {
  const { db, nodes } = o;
  const log = o.log.child({ component: 'baremetal-driver' });
  // reboots asked of a node, per server and reboot_seq (lost on a restart: the reboot is asked once more)
  const rebooted = new Set<string>();
  // the server version whose delete undeployed the node (a failed tear down after it is the delete's failure)
  const undeployed = new Map<string, number>();
  // the hosts conducting nodes, as the last pass saw them
  let conductors = new Set<string>();
  let running: Promise<void> | null = null;
  let again = false;
  let stopping = false;

  /** The lifecycle's transition for what the node shows, written as an agent's report would be. */
  const report = async (s: ServerRow, observed: ServerObserved, error?: ResourceError, where?: string): Promise<boolean> => {
    const r: ServerReportIn = { version: s.version, observed, ...(error ? { error } : {}) };
    // a build failure's retry key is the node (failed_hosts holds nodes for this kind)
    const t = applyReport(s, r, where ?? s.node ?? s.host ?? '', { maxAttempts: o.maxAttempts, now: nowIso() });
    const wrote = await writeTransition(db, log, s, t, s.host ?? '');
    if (!wrote) return false;
    if (t.kind === 'update' && t.kick) o.kickScheduler();
    await o.changed([s.id]);
    return true;
  };

  const observedOf = (n: BaremetalNode): ServerObserved =>
    n.power_state === 'power on' ? { state: 'active', power_state: RUNNING }
      : n.power_state === 'power off' ? { state: 'stopped', power_state: SHUTDOWN }
        : { state: 'absent', power_state: NOSTATE };

  /** Nova's instance_info patch (nova/virt/ironic/patcher.py): the image, sizes, name, capabilities and traits of the flavor. */
  const instanceInfo = (s: ServerRow): Record<string, unknown> => {
    let f: { vcpus?: number; ram?: number; disk?: number; ephemeral?: number; swap?: number; extra_specs?: Record<string, string> } = {};
    try {
      f = JSON.parse(s.flavor) as typeof f;
    } catch { /* a broken row: sizes 0 */ }
    const specs = f.extra_specs ?? {};
    const capabilities = Object.fromEntries(Object.entries(specs).filter(([k]) => k.startsWith('capabilities:')).map(([k, v]) => [k.slice('capabilities:'.length), v]));
    const traits = Object.entries(specs).filter(([k, v]) => k.startsWith('trait:') && v === 'required').map(([k]) => k.slice('trait:'.length));
    return {
      image_source: s.image_id, root_gb: String(f.disk ?? 0), swap_mb: String(f.swap ?? 0), ephemeral_gb: String(f.ephemeral ?? 0),
      display_name: s.name, vcpus: String(f.vcpus ?? 0), memory_mb: String(f.ram ?? 0), local_gb: String(f.disk ?? 0), nova_host_id: s.host,
      project_id: s.project_id, user_id: s.user_id,
      ...(Object.keys(capabilities).length ? { capabilities } : {}), ...(traits.length ? { traits } : {}),
    };
  };

  /** Ironic's JSON config drive, from the metadata service's renderer: meta_data.json, user_data, network_data.json. */
  const configDrive = async (s: ServerRow): Promise<ConfigDrive> => {
    const md = await serverMetadataOf(db, s.id);
    if (!md) throw new Error(`server ${s.id} is gone`);
    return {
      meta_data: metaDataJson(md),
      ...(md.user_data ? { user_data: md.user_data.toString('utf8') } : {}),
      network_data: md.network_data as unknown as Record<string, unknown>,
    };
  };

  /** The server's ports as VIFs of the node, each bound to the node's NIC it took (Nova's plug_vifs, Ironic's flat network interface). */
  const plugVifs = async (s: ServerRow, n: BaremetalNode) => {
    if (!o.network) return;
    for (const p of await o.network.interfaces(s.id)) {
      // the node's port on the VIF's physical network (or on none), as Ironic picks
      const physnets = p.physical_network ? [p.physical_network] : [];
      let port;
      try {
        port = await nodes.attachVif(n.uuid, p.port_id, physnets);
      } catch (err) {
        // attached already (a pass before this one): once more, to learn the node's port
        const detached = await nodes.detachVif(n.uuid, p.port_id).then(() => true, () => false);
        if (!detached) throw err;
        port = await nodes.attachVif(n.uuid, p.port_id, physnets);
      }
      const link = Object.keys(port.local_link_connection).length ? [port.local_link_connection] : [];
      await o.network.bindBaremetal(s.id, p.port_id, { node: n.uuid, host: n.conductor, mac: port.address, localLinkInformation: link, physicalNetwork: port.physical_network });
    }
  };

  /** The server's VIFs off the node (Nova's unplug_vifs); what is not attached is fine. */
  const unplugVifs = async (s: ServerRow, n: BaremetalNode) => {
    if (!o.network) return;
    for (const p of await o.network.interfaces(s.id)) await nodes.detachVif(n.uuid, p.port_id).catch(() => undefined);
  };

  /** Gives the node back: undeployed when it holds a deployment, VIFs detached, instance_uuid cleared. */
  const release = async (s: ServerRow, n: BaremetalNode) => {
    if (n.instance_uuid !== s.id) return;
    if (UNPROVISION.has(n.provision_state) && !DEPLOYING.has(n.provision_state)) {
      await nodes.undeploy(n.uuid).catch((err: Error) => log.warn({ server: s.id, node: n.uuid, err: err.message }, 'undeploying a failed node failed'));
    }
    await unplugVifs(s, n);
    await nodes.setInstance(n.uuid, null).catch((err: Error) => log.warn({ server: s.id, node: n.uuid, err: err.message }, 'clearing the node\'s instance failed'));
  };

  /** A build that failed on its node: the node released, the build rescheduled or ERROR (the lifecycle decides). */
  const buildFailed = async (s: ServerRow, n: BaremetalNode | null, message: string, cls: ResourceError['class'] = 'transient') => {
    if (n) await release(s, n);
    log.warn({ server: s.id, node: s.node, err: message }, 'bare-metal build failed');
    await report(s, { state: 'absent', power_state: NOSTATE }, { class: cls, code: 'host_failure', message });
  };

  /** Whether the server asked for ports the API has not made yet (for at most PORTS_GRACE_MS after its create). */
  const portsPending = async (s: ServerRow): Promise<boolean> => {
    if (!o.network || !s.requested_networks || Date.now() - Date.parse(s.created_at) > PORTS_GRACE_MS) return false;
    let asked: unknown;
    try {
      asked = JSON.parse(s.requested_networks);
    } catch {
      return false;
    }
    if (asked !== 'auto' && !(Array.isArray(asked) && asked.length)) return false;
    return (await o.network.interfaces(s.id)).length === 0;
  };

  const spawn = async (s: ServerRow, n: BaremetalNode) => {
    try {
      await nodes.setInstance(n.uuid, s.id, instanceInfo(s));
      await plugVifs(s, n);
      await nodes.deploy(n.uuid, await configDrive(s));
      log.info({ server: s.id, node: n.uuid }, 'bare-metal deploy started');
    } catch (err) {
      // another pass (or replica) deployed it meanwhile: nothing failed
      const now = await nodes.get(n.uuid);
      if (now && now.instance_uuid === s.id && (DEPLOYING.has(now.provision_state) || now.provision_state === 'active')) return;
      const e = err as Error;
      // Ironic's 400 (the image or node cannot be deployed) aborts the build, as Nova's InvalidImage; anything else is the node's, rescheduled
      await buildFailed(s, now, e.message, err instanceof ApiError && err.status === 400 ? 'user' : 'transient');
    }
  };

  const build = async (s: ServerRow, n: BaremetalNode | null) => {
    if (s.task_state !== 'spawning') return;
    if (!n) return buildFailed(s, null, `Node ${s.node} could not be found.`);
    if (n.instance_uuid && n.instance_uuid !== s.id) return buildFailed(s, null, `Node ${n.uuid} is associated with instance ${n.instance_uuid}.`);
    if (n.provision_state === 'available' && !n.target_provision_state) {
      if (n.maintenance) return buildFailed(s, n, `Node ${n.uuid} is in maintenance mode.`);
      // placed before the API made its ports (a tick between the create's transaction and its ports): wait for them a while
      if (await portsPending(s)) return;
      return spawn(s, n);
    }
    if (n.instance_uuid !== s.id) return buildFailed(s, null, `Node ${n.uuid} is not available (provision state ${n.provision_state}).`);
    if (DEPLOYING.has(n.provision_state)) return;
    if (n.provision_state === 'active' && !n.target_provision_state) {
      await report(s, observedOf(n));
      return;
    }
    if (n.provision_state === 'deploy failed' || n.provision_state === 'error') {
      return buildFailed(s, n, n.last_error ?? `Failed to provision instance ${s.id}: node ${n.uuid} is in ${n.provision_state}.`);
    }
  };

  const teardown = async (s: ServerRow, n: BaremetalNode | null) => {
    if (n && n.instance_uuid === s.id) {
      if (n.provision_state === 'deleting' || n.target_provision_state === 'deleted') return;
      if (n.provision_state === 'error' && undeployed.get(s.id) === s.version) {
        // the tear down this delete asked failed: Nova's delete failure, ERROR with the node's last_error (a new delete tries again)
        undeployed.delete(s.id);
        const now = nowIso();
        const message = n.last_error ?? `Error destroying the instance on node ${n.uuid}. Provision state still 'error'.`;
        const wrote = await writeTransition(db, log, s, {
          kind: 'update', release: false, notify: false, kick: false,
          set: { vm_state: 'error', task_state: null, fault: JSON.stringify({ code: 500, message, details: message, created: now }), version: s.version + 1, updated_at: now },
        }, s.host ?? '');
        if (wrote) await o.changed([s.id]);
        return;
      }
      if (UNPROVISION.has(n.provision_state)) {
        undeployed.set(s.id, s.version);
        // a deploy still running cannot be undeployed (Ironic's 409): the next pass tries again
        await nodes.undeploy(n.uuid).catch((err: Error) => log.info({ server: s.id, node: n.uuid, state: n.provision_state, err: err.message }, 'undeploy refused for now'));
        return;
      }
      if (!UNPROVISIONED.has(n.provision_state)) return;
      await unplugVifs(s, n);
      await nodes.setInstance(n.uuid, null);
    }
    undeployed.delete(s.id);
    await report(s, { state: 'deleted', power_state: NOSTATE });
  };

  const sync = async (s: ServerRow, n: BaremetalNode | null) => {
    if (!n || n.instance_uuid !== s.id) {
      // the node lost the instance (undeployed behind compute's back): nothing runs it
      await report(s, { state: 'absent', power_state: NOSTATE });
      return;
    }
    const busy = n.target_power_state !== null || n.provision_state !== 'active' || !!n.target_provision_state;
    const task = s.task_state ?? '';
    if (task === 'rebuilding') {
      // Ironic's rebuild: the node's instance_info names the new image and the rebuild asked (kept there, so a restart
      // never rebuilds twice), written by the update that accepts the rebuild: a refused one leaves neither
      const done = (x: BaremetalNode | null) => Number(x?.instance_info.stratus_rebuild_seq ?? 0) >= s.rebuild_seq;
      if (!done(n)) {
        if (busy && n.provision_state === 'active') return;
        const cd = await configDrive(s);
        try {
          await nodes.rebuild(n.uuid, cd, { ...instanceInfo(s), stratus_rebuild_seq: s.rebuild_seq });
        } catch (err) {
          // another pass (or replica) had it accepted meanwhile: nothing failed
          if (done(await nodes.get(n.uuid))) return;
          const e = err as Error;
          if (err instanceof ApiError && err.status === 409) {
            // Ironic's NodeLocked (another request holds the node): asked again on the next pass, as Nova's client retries a 409
            log.info({ server: s.id, node: n.uuid, err: e.message }, 'rebuild refused for now');
            return;
          }
          // Nova's InstanceDeployFailure: ERROR with the refusal as the fault, the node still running what it ran
          log.warn({ server: s.id, node: n.uuid, err: e.message }, 'bare-metal rebuild refused');
          await report(s, observedOf(n), { class: 'transient', code: 'host_failure', message: `Failed to request Ironic to rebuild instance ${s.id}: ${e.message}` });
        }
        return;
      }
      if (n.provision_state === 'deploy failed' || n.provision_state === 'error') {
        await report(s, { state: 'absent', power_state: NOSTATE }, { class: 'transient', code: 'host_failure', message: n.last_error ?? `Rebuild of node ${n.uuid} failed.` });
        return;
      }
      if (busy) return;
    } else if (task.startsWith('reboot')) {
      const key = `${s.id}:${s.reboot_seq}`;
      if (!rebooted.has(key)) {
        if (busy || n.maintenance) return;
        await nodes.power(n.uuid, s.reboot_type === 'SOFT' ? 'soft rebooting' : 'rebooting');
        rebooted.add(key);
        return;
      }
      if (busy) return;
      rebooted.delete(key);
    } else if (task === 'powering-on' && n.power_state !== 'power on') {
      if (!busy && !n.maintenance) await nodes.power(n.uuid, 'power on');
      return;
    } else if (task === 'powering-off' && n.power_state !== 'power off') {
      if (!busy && !n.maintenance) await nodes.power(n.uuid, 'power off');
      return;
    } else if (task && busy) return;
    // in maintenance, or in a state of its own (rescue, error): the power state is what Nova shows of it
    await report(s, observedOf(n));
  };

  const converge = async (s: ServerRow) => {
    const n = s.node ? await nodes.get(s.node) : null;
    if (s.task_state === 'deleting') return teardown(s, n);
    if (!s.node) return;
    if (s.vm_state === 'building') return build(s, n);
    return sync(s, n);
  };

  /** Nodes holding an instance of compute's that is gone (deleted while its host was down, say): undeployed and released. */
  const orphans = async (all: BaremetalNode[]) => {
    const held = all.filter((n) => n.instance_uuid);
    if (!held.length) return;
    const rows = await db.selectFrom('compute_servers').select(['id', 'deleted_at', 'node']).where('id', 'in', held.map((n) => n.instance_uuid!)).execute();
    for (const n of held) {
      const r = rows.find((x) => x.id === n.instance_uuid);
      // an instance compute never had (Ironic used on its own) is not compute's to undo
      if (!r || (r.deleted_at === null && r.node === n.uuid)) continue;
      log.info({ node: n.uuid, server: r.id }, 'a node holds an instance that is gone: releasing it');
      if (UNPROVISION.has(n.provision_state) && !DEPLOYING.has(n.provision_state)) await nodes.undeploy(n.uuid).catch(() => undefined);
      else if (UNPROVISIONED.has(n.provision_state)) await nodes.setInstance(n.uuid, null).catch(() => undefined);
    }
  };

  const pass = async () => {
    // the servers on nodes (compute_servers_node); one placed gets its node in the claim's transaction
    const rows = await db.selectFrom('compute_servers').selectAll().where('node', 'is not', null).where('deleted_at', 'is', null).execute();
    for (const s of rows) {
      if (s.kind !== BAREMETAL) continue;
      await converge(s).catch((err: Error) => log.warn({ server: s.id, node: s.node, err: err.message }, 'driving a bare-metal server failed'));
    }
    const all = await nodes.list();
    conductors = new Set(all.map((n) => n.conductor).filter((c): c is string => !!c));
    await orphans(all).catch((err: Error) => log.warn({ err: err.message }, 'releasing orphaned nodes failed'));
  };

  const kick = (host?: string | null) => {
    if (stopping) return;
    if (host && !conductors.has(host)) {
      // a host the last pass saw conduct no node: a node may have gone to it since (a new conductor took it over);
      // a wake-up for a host that conducts none (a VM or container host) is not this driver's
      void nodes.conducts(host).then((yes) => {
        if (!yes) return;
        conductors.add(host);
        run();
      }, (err: Error) => log.warn({ host, err: err.message }, 'looking up a host\'s nodes failed'));
      return;
    }
    run();
  };

  const run = () => {
    if (stopping) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await pass().catch((err: Error) => log.error({ err: err.message }, 'bare-metal driver pass failed'));
      } while (again && !stopping);
    })().finally(() => {
      running = null;
    });
  };

  nodes.onEvent(() => kick());

  return {
    kick,
    async stop() {
      stopping = true;
      await running;
    },
  };
}
