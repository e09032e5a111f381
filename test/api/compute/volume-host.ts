// A host played through the agent API for the compute tests of volumes
// (volume-attachments.test.ts, boot-volume.test.ts): registered with the
// server and volume kinds and a file pool, a bare disk image and a container
// image, a small flavor; one watch round at a time (`watch`), reports as the
// host would make them (`report`), and volumes its backend made (`volume`).
import assert from 'node:assert/strict';
import { useCloud, type Cloud } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { adminNova, agentCall, dockerArchive, image, type Nova, projectUser } from './lib.ts';

const KINDS = ['server', 'volume', 'volume_snapshot'] as const;
type Kind = (typeof KINDS)[number];
type Handed = Map<string, { version: number; spec: any }>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the fixture made once the cloud is up. */
export interface VolumeHostReady { admin: Nova; bob: Nova; diskImage: string; containerImage: string; flavorId: string }



/** The cloud with a host named `<prefix>-<pid>`; `ready` gets what was made, before the tests run. */
export function volumeHost(prefix: string, ready: (r: VolumeHostReady) => void) {
  const HOST = `${prefix}-${process.pid}`;
  const cloud: Cloud = useCloud(async (c) => {
    const admin = await adminNova(c);
    const bob = await projectUser(c);
    const r = await agentCall(c, 'PUT', HOST, {
      protocol: PROTOCOL_VERSION, kinds: { server: ['container', 'vm'], volume: ['file'], volume_snapshot: [] }, vcpus: 8, memory_mb: 8192, disk_gb: 100, version: 't',
      host_ip: '127.0.0.1',
      volume_pools: [{
        name: `${HOST}@file#default`, total_capacity_gb: 100, free_capacity_gb: 100, provisioned_capacity_gb: 0, max_over_subscription_ratio: 20,
        thin_provisioning_support: true, reflink: true, multiattach: true, driver: 'file',
      }],
    });
    assert.equal(r.status, 200, await r.text());
    const diskImage = await image(c, { name: `${prefix}-disk`, container_format: 'bare' }, Buffer.alloc(4096, 1));
    const containerImage = await image(c, { name: `${prefix}-ctr`, container_format: 'docker' }, dockerArchive());
    const flavorId = (await admin.call('POST', '/flavors', { body: { flavor: { name: prefix, ram: 64, vcpus: 1, disk: 1 } } })).body.flavor.id as string;
    ready({ admin, bob, diskImage, containerImage, flavorId });
  });
  const db = () => cloud.server.database.db;

  /** One watch round of the host: what it is handed now, per kind. */
  async function watch(): Promise<Record<Kind, Handed> & { requests: any[] }> {
    const r = await agentCall(cloud, 'POST', `${HOST}/watch`, { known: Object.fromEntries(KINDS.map((k) => [k, {}])), wait: 0 });
    assert.equal(r.status, 200);
    const body = await r.json() as { resources: Array<{ kind: string; id: string; version: number; spec: any }>; requests?: any[] };
    const out = Object.fromEntries(KINDS.map((k) => [k, new Map()])) as Record<Kind, Handed>;
    for (const x of body.resources) out[x.kind as Kind]?.set(x.id, { version: x.version, spec: x.spec });
    return { ...out, requests: body.requests ?? [] };
  }

  async function until<T>(what: string, f: () => Promise<T | undefined | false>): Promise<T> {
    for (let i = 0; i < 400; i++) {
      const v = await f();
      if (v) return v;
      await sleep(25);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async function report(kind: string, id: string, version: number, observed: unknown): Promise<void> {
    const r = await agentCall(cloud, 'POST', `${HOST}/report`, { resources: [{ kind, id, version, observed }] });
    assert.equal(r.status, 200, await r.text());
  }

  /** A volume of `who`'s (Cinder), made by the host's backend: available. */
  async function volume(who: Nova, body: Record<string, unknown> = {}): Promise<string> {
    const r = await cloud.call('POST', `/volume/v3/${who.projectId}/volumes`, { token: who.token, body: { volume: { size: 1, ...body } } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.volume.id as string;
    const v = (await watch()).volume.get(id);
    assert.ok(v, 'the volume is placed on the host');
    await report('volume', id, v.version, { state: 'present', size_gib: 1, location: `/vols/${id}` });
    assert.equal((await vol(who, id)).status, 'available');
    return id;
  }

  const vol = async (who: Nova, id: string) => (await cloud.call('GET', `/volume/v3/${who.projectId}/volumes/${id}`, { token: who.token })).body.volume;
  return { HOST, cloud, db, watch, until, report, volume, vol };
}
