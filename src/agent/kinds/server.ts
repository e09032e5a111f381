// The reconciler of `server` resources: picks the driver by the server's kind
// (container, vm...), converges, reports observed state, and classifies
// failures: a failed build is rolled back on this host and reported with its
// error (the server reschedules a transient one elsewhere); a failed change
// of a running server is reported and, when transient, retried with backoff;
// a delete is retried until the host is clean.
import { PowerState } from '../../compute/schema.ts';
import {
  SERVER_KIND, ServerAction, ServerErrorCode, type DesiredServer, type LiveMigrationPrepare, type LiveMigrationTarget, type ServerObserved, type ServerSpec,
} from '../../compute/engine/protocol.ts';
import { ErrorClass, type PendingRequest, type Resource } from '../../fleet/protocol.ts';
import type { ComputeDriver, Driver } from '../drivers/driver.ts';
import { toResourceError } from '../errors.ts';
import type { Reconciler, ReconcilerContext } from '../reconciler.ts';

const isComputeDriver = (d: Driver): d is ComputeDriver => typeof (d as ComputeDriver).converge === 'function';

export function serverReconciler(drivers: Driver[], ctx: ReconcilerContext): Reconciler {
  const byKind = new Map<string, ComputeDriver>();
  for (const d of drivers) {
    if (!isComputeDriver(d)) throw new Error(`driver ${d.name} says it serves servers but is no compute driver`);
    for (const k of d.serves[SERVER_KIND] ?? []) {
      if (byKind.has(k)) throw new Error(`server kind ${k} is served by two drivers (${byKind.get(k)!.name}, ${d.name})`);
      byKind.set(k, d);
    }
  }
  const all = [...new Set(byKind.values())];
  const log = ctx.log;
  /** The version each server was last converged to (successfully, or failed for good). */
  const converged = new Map<string, number>();
  /**
   * Servers whose last converge left a volume attachment `failed` (a guest
   * or a process holding a volume being detached): converged again at each
   * re-check rather than only observed, until it settles.
   */
  const volumesUnsettled = new Set<string>();
  const noteVolumes = (id: string, obs: ServerObserved | null) => {
    if (obs?.volumes?.some((v) => v.state === 'failed')) volumesUnsettled.add(id);
    else volumesUnsettled.delete(id);
  };

  const report = (id: string, version: number, observed: ServerObserved, error?: ReturnType<typeof toResourceError>) =>
    ctx.report({ kind: SERVER_KIND, id, version, observed, ...(error ? { error } : {}) });
  const NOTHING: ServerObserved = { power_state: PowerState.NOSTATE, state: 'absent' };

  /** The driver holding a server on this host (when its desired state is not known). */
  const holder = async (id: string): Promise<ComputeDriver | null> => {
    for (const d of all) if (await d.observe(id)) return d;
    return null;
  };

  return {
    kind: SERVER_KIND,

    async local() {
      const ids = new Set<string>();
      for (const d of all) for (const id of await d.localServers()) ids.add(id);
      return [...ids];
    },

    async reconcile(id: string, res: Resource | undefined) {
      if (!res) {
        // not ours (any more): remove whatever is left, whichever driver holds it
        for (const d of all) await d.destroy(id);
        converged.delete(id);
        volumesUnsettled.delete(id);
        return;
      }
      const d: DesiredServer = { ...(res.spec as ServerSpec), id, version: res.version };
      const driver = byKind.get(d.kind);
      if (!driver) {
        converged.set(id, d.version);
        report(id, d.version, d.deleted ? { power_state: PowerState.NOSTATE, state: 'deleted' } : NOTHING, d.deleted ? undefined
          : { class: ErrorClass.permanent, code: ServerErrorCode.kindUnsupported, message: `No driver on host ${ctx.hostname} runs ${d.kind} servers.` });
        return;
      }
      if (d.deleted) {
        // a failure throws: the queue retries until the host is clean
        await driver.destroy(id);
        converged.set(id, d.version);
        report(id, d.version, { power_state: PowerState.NOSTATE, state: 'deleted' });
        return;
      }
      if (converged.get(id) === d.version && !volumesUnsettled.has(id)) {
        // nothing new was asked: only observe (a container that exited stays stopped, as Nova's power sync wants)
        const obs = await driver.observe(id, d.power);
        if (obs) report(id, d.version, obs);
        return;
      }
      const t0 = performance.now();
      let obs;
      try {
        obs = await driver.converge(d);
      } catch (err) {
        const error = toResourceError(err);
        if (d.vm_state === 'building') {
          // roll the build back here; the server decides (by the error's class) whether another host tries
          log.warn({ server: id, err: error.message, class: error.class, code: error.code }, 'build failed');
          converged.set(id, d.version);
          await driver.destroy(id).catch((e: Error) => log.error({ server: id, err: e.message }, 'rollback of a failed build failed'));
          report(id, d.version, NOTHING, error);
          return;
        }
        log.warn({ server: id, err: error.message, class: error.class, code: error.code }, 'converge failed');
        const seen = await driver.observe(id, d.power).catch(() => null);
        report(id, d.version, seen ?? NOTHING, error);
        if (error.class !== ErrorClass.transient) {
          converged.set(id, d.version);
          return;
        }
        throw err;
      }
      converged.set(id, d.version);
      noteVolumes(id, obs);
      report(id, d.version, obs);
      log.debug({ server: id, version: d.version, ms: Math.round(performance.now() - t0) }, 'converged');
    },

    async serve(r: PendingRequest) {
      if (r.action === ServerAction.migrationPrepare) {
        // the destination holds nothing of the server yet: its driver by the kind of the spec the request carries
        const a = r.args as unknown as LiveMigrationPrepare;
        const driver = byKind.get(a.spec?.kind);
        if (!driver?.liveMigration) throw new Error(`No driver on host ${ctx.hostname} live-migrates ${String(a.spec?.kind)} servers.`);
        return driver.liveMigration.prepare({ ...a.spec, id: r.resource_id, version: a.version }, { migration: a.migration, listen: a.listen });
      }
      const driver = await holder(r.resource_id);
      if (!driver) throw new Error(`server ${r.resource_id} is not on host ${ctx.hostname}`);
      if (r.action === ServerAction.console) {
        const length = typeof r.args.length === 'number' ? r.args.length : undefined;
        return { output: await driver.consoleOutput(r.resource_id, length) };
      }
      if (r.action === ServerAction.snapshot) {
        const imageId = String(r.args.image_id ?? '');
        if (!imageId) throw new Error('snapshot request without image_id');
        await driver.snapshot(r.resource_id, (archive) => ctx.uploadImage(imageId, archive));
        return { image_id: imageId };
      }
      const lm = driver.liveMigration;
      const migration = String(r.args.migration ?? '');
      switch (lm ? r.action : '') {
        case ServerAction.migrationRun: return lm!.run(r.resource_id, { migration, target: r.args.target as LiveMigrationTarget });
        case ServerAction.migrationProgress: return lm!.progress(r.resource_id);
        case ServerAction.migrationForceComplete: return lm!.forceComplete(r.resource_id).then(() => ({}));
        case ServerAction.migrationAbort: return lm!.abort(r.resource_id).then(() => ({}));
        case ServerAction.migrationFinish: return lm!.finish(r.resource_id, migration).then(() => ({}));
        case ServerAction.migrationRecover: return lm!.recover(r.resource_id, migration).then(() => ({}));
      }
      throw new Error(`unknown server request ${r.action}`);
    },

    async sweep(known: Set<string>) {
      for (const d of all) await d.sweep(known).catch((err: Error) => log.warn({ driver: d.name, err: err.message }, 'sweep failed'));
    },
  };
}
