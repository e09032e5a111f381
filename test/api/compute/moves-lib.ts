// What the API tests of server moves share (migrate.test.ts,
// live-migration.test.ts): a cloud with an admin, a member (alice), host A
// simulated (lib.ts simulatedHost), a disk and a container image, a small
// flavor; the server's and its migrations' rows, a consumer's allocations,
// and an ACTIVE server of alice's placed on A.
import assert from 'node:assert/strict';
import { type Cloud, until, useCloud } from '../../harness.ts';
import { adminNova, dockerArchive, image, type Nova, projectUser, type SimulatedHost, simulatedHost } from './lib.ts';

export interface MovesSetup { admin: Nova; alice: Nova; hostA: SimulatedHost; diskImage: string; containerImage: string; flavor: string }

/** The cloud (`prefix` names its images and flavor), `ready` given what its set-up made. */
export function movesCloud(prefix: string, hostA: string, ready: (m: MovesSetup) => void) {
  let m: MovesSetup;
  const cloud: Cloud = useCloud(async (c) => {
    const admin = await adminNova(c);
    m = {
      admin, alice: await projectUser(c), hostA: await simulatedHost(c, hostA),
      diskImage: await image(c, { name: `${prefix}-disk`, container_format: 'bare' }, Buffer.alloc(4096, 1)),
      containerImage: await image(c, { name: `${prefix}-ctr`, container_format: 'docker' }, dockerArchive()),
      flavor: (await admin.call('POST', '/flavors', { body: { flavor: { name: `${prefix}-small`, ram: 512, vcpus: 1, disk: 1 } } })).body.flavor.id as string,
    };
    ready(m);
  });
  const db = () => cloud.server.database.db;
  const row = (id: string) => db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return {
    cloud, db, row,
    migrations: (id: string) => db().selectFrom('compute_migrations').selectAll().where('server_id', '=', id).orderBy('id').execute(),
    /** A consumer's allocations: provider -> resources. */
    allocations: async (consumer: string) => Object.fromEntries(Object.entries((await cloud.call('GET', `/placement/allocations/${consumer}`, { token: cloud.adminToken })).body.allocations as Record<string, { resources: Record<string, number> }>)
      .map(([p, a]) => [p, a.resources])),
    providerOf: async (hostname: string) => (await db().selectFrom('compute_hosts').select('id').where('hostname', '=', hostname).executeTakeFirstOrThrow()).id,
    /** An ACTIVE server of alice's placed on A (B disabled, full or not yet registered). */
    async server(imageRef: string, networks: unknown = 'none'): Promise<string> {
      const r = await m.alice.call('POST', '/servers', { version: '2.37', body: { server: { name: prefix, imageRef, flavorRef: m.flavor, networks } } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const id = r.body.server.id as string;
      await until('placed', async () => (await row(id)).host === hostA);
      await m.hostA.report(id, 'active', 1);
      assert.equal((await row(id)).vm_state, 'active');
      return id;
    },
  };
}
