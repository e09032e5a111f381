// Crashes mid-way: the agent (a child process) is killed with SIGKILL by PID
// while a batch of servers is being built, the server is restarted too, then
// both come back. Every server must end ACTIVE or ERROR, running containers
// must survive the restarts, and nothing may leak; the same for a batch of
// deletes interrupted by a crash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { leftovers, mountsUnder, processAlive, runcState, skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';

let plane: Plane;
before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'child' });
});
after(async () => {
  await plane?.cleanup();
});

const N = 12;

async function statuses(ids: string[]): Promise<Map<string, any>> {
  const out = new Map<string, any>();
  for (const id of ids) out.set(id, (await plane.api('GET', `/compute/v2.1/servers/${id}`)).body.server);
  return out;
}

function localIds(): string[] {
  const dir = join(plane.stateDir, 'servers');
  return existsSync(dir) ? readdirSync(dir) : [];
}

test('killing the agent and restarting the server mid-way through a batch of creates: every server ends ACTIVE or ERROR, nothing leaks', { skip: skipUnlessRoot }, async (t) => {
  const r = await plane.api('POST', '/compute/v2.1/servers', {
    server: { name: 'crash', imageRef: plane.imageId, flavorRef: plane.flavorId, networks: 'none', min_count: N, max_count: N, return_reservation_id: true },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const list = await plane.api('GET', `/compute/v2.1/servers?reservation_id=${r.body.reservation_id}`);
  const ids: string[] = list.body.servers.map((s: { id: string }) => s.id);
  assert.equal(ids.length, N);

  // kill the agent as soon as the first container runs: the others are mid-way (or not started)
  for (let i = 0; i < 400 && !localIds().some((id) => runcState(plane.stateDir, id)); i++) await sleep(10);
  const killedAt = localIds().length;
  await plane.stopAgent(true);
  t.diagnostic(`agent killed with ${killedAt} servers started, ${ids.filter((id) => runcState(plane.stateDir, id)).length} containers created`);
  const survivors = ids.map((id) => runcState(plane.stateDir, id)).filter((s) => s && processAlive(s.pid));

  // the server goes down and comes back on the same database and port while the agent is dead
  await plane.restartServer();
  await plane.startAgent('child');

  const end = Date.now() + 90_000;
  let final = await statuses(ids);
  while (Date.now() < end && [...final.values()].some((s) => !['ACTIVE', 'ERROR'].includes(s.status) || s['OS-EXT-STS:task_state'])) {
    await sleep(250);
    final = await statuses(ids);
  }
  const summary = [...final.values()].map((s) => `${s.status}/${s['OS-EXT-STS:task_state']}`);
  t.diagnostic(`final: ${summary.join(', ')}`);
  assert.ok([...final.values()].every((s) => ['ACTIVE', 'ERROR'].includes(s.status) && !s['OS-EXT-STS:task_state']), `states: ${summary.join(', ')} (killed with ${killedAt} started)`);
  for (const s of survivors) assert.ok(processAlive(s!.pid), `container ${s!.pid} kept running through the restarts`);
  for (const [id, s] of final) {
    if (s.status === 'ACTIVE') {
      const st = runcState(plane.stateDir, id);
      assert.ok(st && processAlive(st.pid), `ACTIVE server ${id} has a running container`);
    } else {
      assert.deepEqual(leftovers(plane.stateDir, id), [], `ERROR server ${id} holds nothing`);
    }
  }
  // nothing on the host beyond the ACTIVE servers
  const active = new Set([...final].filter(([, s]) => s.status === 'ACTIVE').map(([id]) => id));
  assert.deepEqual(localIds().sort(), [...active].sort());
  assert.deepEqual(readdirSync(join(plane.stateDir, 'runc')).sort(), [...active].sort());
  assert.deepEqual(mountsUnder(plane.stateDir), [], 'no host mounts: each root lives in its container\'s mount namespace');
  assert.deepEqual(readdirSync(join(plane.stateDir, 'tmp')), [], 'no half-downloaded images');

  // deletes interrupted by a crash finish after the restart
  for (const id of ids) assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await sleep(150);
  await plane.stopAgent(true);
  await plane.startAgent('child');
  for (const id of ids) await plane.waitGone(id, 60_000);
  for (const id of ids) assert.deepEqual(leftovers(plane.stateDir, id), [], `server ${id}`);
  assert.deepEqual(localIds(), []);
  assert.deepEqual(mountsUnder(plane.stateDir), []);
});
