// A cold migration from the dashboard that moves the server: the browser
// suite's data plane with a second host (another in-process agent on this
// machine, its own state dir and runc root: Plane.addHost). An admin opens a
// container's page on the first host, migrates it (the scheduler has one
// other host to choose), sees VERIFY_RESIZE arrive without a reload, confirms,
// and the server is ACTIVE on the second host, its container running there
// and gone from the first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { skipUnlessRoot } from '../dataplane/lib.ts';
import { until } from '../harness.ts';
import { browserSuite, checkA11y, screenshot } from './lib.ts';

let hostB = { hostname: '', stateDir: '' };

const web = browserSuite('migrate', {
  plane: {},
  async setup(s) {
    hostB = await s.plane.addHost(`${s.plane.hostname}-b`);
    const db = s.plane.cloud.server.database.db;
    await until('the second host registered', async () => db.selectFrom('compute_hosts').select('hostname').where('hostname', '=', hostB.hostname).executeTakeFirst());
  },
});

/** The runc state of the server's container under an agent's state dir ('' when it has none). */
async function runcStatus(stateDir: string, id: string): Promise<string> {
  const r = await run('runc', ['--root', join(stateDir, 'runc'), 'state', id]);
  return r.code === 0 ? (JSON.parse(r.stdout) as { status: string }).status : '';
}

test('an admin migrates a container to the other host from its page, sees VERIFY_RESIZE live, confirms, and it runs there', { skip: skipUnlessRoot, timeout: 180_000 }, async () => {
  const p = web.plane;
  const id = await p.createServer({ name: 'mig-web', availability_zone: `nova:${p.hostname}` });
  web.servers.push(id);
  await p.waitStatus(id, ['ACTIVE'], 120_000);
  assert.equal(await runcStatus(p.stateDir, id), 'running');

  const t = await web.tab('admin', { password: web.cloud.adminPassword });
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/servers/${id}`);
  const status = (s: string) => page.locator('.state .status', { hasText: new RegExp(`^${s}$`) });
  await status('ACTIVE').waitFor();
  await page.evaluate(() => { (window as any).__stratusMark = 1; });
  const actions = page.getByRole('group', { name: 'Server actions' });
  await actions.getByRole('button', { name: 'Migrate', exact: true }).click();
  await page.getByRole('dialog', { name: 'Migrate' }).getByRole('button', { name: 'Migrate', exact: true }).click();
  await status('VERIFY_RESIZE').waitFor({ timeout: 120_000 });
  const moved = (await p.api('GET', `/compute/v2.1/servers/${id}`)).body.server;
  assert.equal(moved['OS-EXT-SRV-ATTR:host'], hostB.hostname);
  await checkA11y(page, 'server awaiting a migration\'s confirmation');
  await screenshot(page, 'migrate-verify-resize');

  await actions.getByRole('button', { name: 'Confirm resize', exact: true }).click();
  await page.getByRole('dialog', { name: 'Confirm resize' }).getByRole('button', { name: 'Confirm resize', exact: true }).click();
  await status('ACTIVE').waitFor({ timeout: 60_000 });
  assert.equal(await page.evaluate(() => (window as any).__stratusMark), 1, 'no reload');
  const s = await p.waitStatus(id, ['ACTIVE'], 60_000);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], hostB.hostname);
  await until('the container running on the second host', async () => (await runcStatus(hostB.stateDir, id)) === 'running');
  await until('and none left on the first', async () => (await runcStatus(p.stateDir, id)) === '');
  assert.deepEqual(t.cspViolations, []);
});
