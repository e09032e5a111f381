// A VM through the dashboard in a real browser (root, qemu): the launch
// wizard offers the kinds the cloud has an image and a flavor for (a
// container from the busybox image, a VM from the stratus-tiny disk image);
// a member launches the VM and watches it reach ACTIVE without a reload; its
// page offers a VM's actions and consoles; the serial console (xterm.js)
// shows the guest's boot (what it wrote before the session, then live); the console log shows the guest's
// boot; the graphical console (noVNC) opens in its own window and connects;
// the delete button removes it. A VM left by a failed step is destroyed by
// PID in after().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { uniqueName } from '../harness.ts';
import { skipUnlessRoot } from '../dataplane/lib.ts';
import { browserSuite, checkA11y, makeProject, makeUser, screenshot } from './lib.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');

let member = '';
let flavorName = '';

const web = browserSuite('vm', {
  plane: {},
  skip,
  async setup() {
    const tiny = await buildTinyImage();
    const img = await web.plane.api('POST', '/image/v2/images', { name: 'stratus-tiny', container_format: 'bare', disk_format: 'qcow2', visibility: 'public', min_disk: 1, min_ram: 64 });
    assert.equal(img.status, 201);
    const up = await fetch(`${web.cloud.url}/image/v2/images/${img.body.id}/file`, {
      method: 'PUT', headers: { 'x-auth-token': web.plane.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(tiny.disk)),
    });
    assert.equal(up.status, 204);
    flavorName = `vm-${web.plane.hostname}`;
    const fl = await web.plane.api('POST', '/compute/v2.1/flavors', { flavor: { name: flavorName, ram: 128, vcpus: 1, disk: 1 } });
    assert.equal(fl.status, 200, JSON.stringify(fl.body));
    const project = await makeProject(web.cloud, uniqueName('web-vm'));
    member = await makeUser(web.cloud, project, 'member', uniqueName('vm-member'));
  },
  // whatever a failed step left: killed by its pidfile, files and cgroup removed
  async teardown() {
    const d = new VmDriver({ stateDir: web.plane.stateDir, log: pino({ level: 'silent' }), fetchImage: async () => undefined });
    for (const id of web.servers) await d.destroy(id).catch(() => undefined);
  },
});

test('a member launches a VM, watches it become ACTIVE, sees its boot in its serial console, reads its console log, opens its graphical console and deletes it', { skip, timeout: 180_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.getByRole('link', { name: 'Servers' }).click();
  await page.getByRole('button', { name: 'Launch server' }).click();
  const kinds = page.getByRole('group', { name: 'Kind' });
  await kinds.getByRole('radio').first().waitFor();
  assert.deepEqual(await kinds.getByRole('radio').evaluateAll((rs) => rs.map((r) => (r as HTMLInputElement).value)), ['container', 'vm']);
  await kinds.getByRole('radio', { name: 'Virtual machine' }).check();
  // a VM's images only; its root disk on the host, or a new volume
  const image = page.getByRole('combobox', { name: 'Image', exact: true });
  assert.deepEqual((await image.locator('option').allTextContents()).slice(1), ['stratus-tiny (bare/qcow2)']);
  await page.getByRole('combobox', { name: /^Root disk/ }).waitFor();
  await page.getByLabel('Name').fill('web-vm');
  await image.selectOption({ label: 'stratus-tiny (bare/qcow2)' });
  await page.getByLabel('Flavor').selectOption({ label: `${flavorName} (1 vCPU, 128 MiB, 1 GiB)` });
  await checkA11y(page, 'launch (VM)');
  await page.evaluate(() => { (window as any).__stratusMark = 1; });
  await page.getByRole('button', { name: 'Launch' }).click();
  await page.getByRole('heading', { name: 'web-vm' }).waitFor();
  const id = page.url().split('/servers/')[1]!;
  web.servers.push(id);
  await page.locator('.state .status', { hasText: 'ACTIVE' }).waitFor({ timeout: 120_000 });
  assert.equal(await page.evaluate(() => (window as any).__stratusMark), 1, 'the page was not reloaded');
  await page.getByRole('definition').filter({ hasText: /^Virtual machine$/ }).waitFor();
  const actions = page.getByRole('group', { name: 'Server actions' });
  for (const a of ['Stop', 'Reboot', 'Pause', 'Suspend', 'Rescue', 'Shelve', 'Delete']) await actions.getByRole('button', { name: a, exact: true }).waitFor();
  await screenshot(page, 'vm-active');

  // the serial console: xterm.js shows what the guest wrote so far (the console log's recent part, so a
  // session opened late sees the boot too: its boot loader's banner, first thing on the serial port) and
  // then what it writes as it comes
  await page.getByRole('tab', { name: 'Serial console' }).click();
  await page.getByText('Serial console: connected').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => (document.querySelector('.term-box .xterm-screen')?.textContent ?? '').includes('SYSLINUX'), null, { timeout: 60_000 });
  await checkA11y(page, 'serial console (VM)');
  await screenshot(page, 'vm-serial-console');

  // the console log: the guest's boot output (its firmware and kernel; the guest's ready line may come much later on a slow host)
  await page.getByRole('tab', { name: 'Console log' }).click();
  for (let i = 0; ; i++) {
    if ((await page.getByLabel('Console output').textContent() ?? '').trim().length > 0) break;
    assert.ok(i < 60, 'the guest wrote to its console');
    await new Promise((r) => setTimeout(r, 1000));
    await page.getByRole('button', { name: 'Refresh' }).click();
  }
  await screenshot(page, 'vm-console-log');

  // the graphical console: noVNC's page in a window of its own, connected to QEMU's VNC server
  await page.getByRole('tab', { name: 'Graphical console' }).click();
  // (a second window if the first lost its module loads: Chromium fails loads with ERR_NETWORK_CHANGED while other tests add and remove host interfaces)
  let vnc = null;
  for (let attempt = 1; !vnc; attempt++) {
    const [w] = await Promise.all([t.context.waitForEvent('page'), page.getByRole('button', { name: 'Open graphical console' }).click()]);
    const ok = await w.locator('#status', { hasText: /^Connected/ }).waitFor({ timeout: 20_000 }).then(() => true, (err: unknown) => {
      if (attempt >= 2) throw err;
      return false;
    });
    if (ok) vnc = w;
    else await w.close();
  }
  await screenshot(vnc, 'vm-graphical-console');
  await vnc.close();

  await actions.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('dialog', { name: 'Delete' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { name: 'Servers' }).waitFor();
  await page.getByRole('row').filter({ hasText: 'web-vm' }).waitFor({ state: 'detached', timeout: 60_000 });
  await web.plane.waitGone(id, 60_000);
  assert.deepEqual(t.cspViolations, []);
});
