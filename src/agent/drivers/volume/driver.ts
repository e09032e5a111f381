// The volume driver of the agent: serves the `volume` and `volume_snapshot`
// kinds with its backends (backend.ts; one per `@backend` name, the file
// backend by default), reports their pools with the host's registration
// (HostInfo.volume_pools) and audits what the backends hold against what the
// control plane placed here. The reconcilers (reconciler.ts) call it.
import type { Logger } from 'pino';
import { VOLUME_KIND, VOLUME_SNAPSHOT_KIND, type VolumePoolStats } from '../../../volume/protocol.ts';
import type { Driver } from '../driver.ts';
import type { VolumeBackend } from './backend.ts';

export interface VolumeAudit {
  /** Volumes the backends hold that the control plane did not place here (or no longer has). */
  volumes: Array<{ backend: string; id: string }>;
  snapshots: Array<{ backend: string; volume_id: string; id: string }>;
  /** Files of no volume or snapshot: temporaries of interrupted work, unreferenced layers. */
  strays: string[];
  /** Volumes placed here whose data is missing (not `creating`: those are being made). */
  missing: string[];
}

export class VolumeDriver implements Driver {
  readonly name = 'volume';
  readonly serves: Readonly<Record<string, readonly string[]>>;
  readonly backends: ReadonlyMap<string, VolumeBackend>;
  private readonly log: Logger;

  constructor(o: { backends: VolumeBackend[]; log: Logger }) {
    this.backends = new Map(o.backends.map((b) => [b.name, b]));
    this.log = o.log;
    this.serves = { [VOLUME_KIND]: [...this.backends.keys()].sort(), [VOLUME_SNAPSHOT_KIND]: [] };
  }

  async start(): Promise<void> {
    for (const b of this.backends.values()) {
      await b.start();
      this.log.info({ backend: b.name, driver: b.driver }, 'volume backend started');
    }
  }

  /** Pools stay mounted when the agent stops (volumes in use keep their data reachable). */
  async stop(): Promise<void> {}

  backend(name: string): VolumeBackend | null {
    return this.backends.get(name) ?? null;
  }

  async volumePools(hostname: string): Promise<VolumePoolStats[]> {
    const out: VolumePoolStats[] = [];
    for (const b of this.backends.values()) out.push(...await b.pools(hostname));
    return out;
  }

  /**
   * `stratus volume audit`'s check on this host: what the backends hold
   * beyond the volumes and snapshots placed here (`placedVolumes`,
   * `placedSnapshots`: ids), and placed volumes with no data. Changes nothing.
   */
  async audit(placedVolumes: Set<string>, placedSnapshots: Set<string>, present: Set<string> = new Set()): Promise<VolumeAudit> {
    const a: VolumeAudit = { volumes: [], snapshots: [], strays: [], missing: [] };
    const held = new Set<string>();
    for (const b of this.backends.values()) {
      const l = await b.list();
      for (const id of l.volumes) {
        held.add(id);
        if (!placedVolumes.has(id)) a.volumes.push({ backend: b.name, id });
      }
      for (const s of l.snapshots) if (!placedSnapshots.has(s.id)) a.snapshots.push({ backend: b.name, ...s });
      a.strays.push(...await b.strays());
    }
    for (const id of present) if (!held.has(id)) a.missing.push(id);
    return a;
  }
}
