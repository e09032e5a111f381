// `stratus volume audit` on a volume host: what the host's file volume
// backend holds that no volume or snapshot placed on the host accounts for
// (data without a volume, temporaries of interrupted work, unreferenced qcow2
// layers), and placed volumes whose data is missing. It asks the server what
// is placed on the host through the agent API (one watch round, as the agent
// does: the host must be registered) and reads the pool without changing it
// (beside a running agent).
import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { pino } from 'pino';
import type { VolumeSpec } from '../volume/protocol.ts';
import { VOLUME_KIND, VOLUME_SNAPSHOT_KIND } from '../volume/protocol.ts';
import { AgentClient, ServerList } from './client.ts';
import { FileBackend } from './drivers/volume/file.ts';
import { volumeDirOf } from './drivers/volume/host.ts';
import { VolumeDriver, type VolumeAudit } from './drivers/volume/driver.ts';
import { readToken } from './main.ts';

export async function auditVolumes(o: { server: string | string[]; tokenFile: string; stateDir: string; hostname?: string }): Promise<{ audit: VolumeAudit; text: string }> {
  const client = new AgentClient(new ServerList(o.server), readToken(o.tokenFile), o.hostname ?? osHostname());
  const backend = new FileBackend({ dir: volumeDirOf(resolve(o.stateDir)) });
  try {
    if (!(await backend.inspect())) return { audit: { volumes: [], snapshots: [], strays: [], missing: [] }, text: `no volume pool under ${resolve(o.stateDir)} (or it is not mounted)` };
    const w = await client.watch({ known: { [VOLUME_KIND]: {}, [VOLUME_SNAPSHOT_KIND]: {} }, wait: 0 });
    const volumes = w.resources.filter((r) => r.kind === VOLUME_KIND);
    const snapshots = w.resources.filter((r) => r.kind === VOLUME_SNAPSHOT_KIND);
    const present = new Set(volumes.filter((r) => (r.spec as VolumeSpec).state === 'present').map((r) => r.id));
    const driver = new VolumeDriver({ backends: [backend], log: pino({ level: 'silent' }) });
    const audit = await driver.audit(new Set(volumes.map((r) => r.id)), new Set(snapshots.map((r) => r.id)), present);
    const lines = [
      ...audit.volumes.map((v) => `volume ${v.id} (backend ${v.backend}): no volume placed on ${client.hostname}`),
      ...audit.snapshots.map((s) => `snapshot ${s.id} of volume ${s.volume_id} (backend ${s.backend}): no snapshot placed on ${client.hostname}`),
      ...audit.strays.map((p) => `stray file ${p}`),
      ...audit.missing.map((id) => `volume ${id}: placed on ${client.hostname} but its data is missing (or it is still being created)`),
    ];
    return { audit, text: lines.length ? lines.join('\n') : `${client.hostname}: every volume file belongs to a volume or snapshot, and every volume has its data` };
  } finally {
    client.close();
  }
}
