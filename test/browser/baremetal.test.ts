// The dashboard's bare-metal page in a real browser against a real Stratus
// whose conductor is the API tests' test double (an agent registered with the
// baremetal_node kind over the real /agent/v1 API, driven by the test): an
// admin enrolls an IPMI node (the BMC password never shown back), manages,
// inspects, provides, deploys and undeploys it, each state arriving live from
// the event stream as the conductor reports; powers it on, puts it in
// maintenance and back, deletes it after the confirmation. A member sees no
// such page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '../harness.ts';
import { skipUnlessRoot } from '../dataplane/lib.ts';
import { TestConductor, provisioningNetwork } from '../api/baremetal/lib.ts';
import { browserSuite, checkA11y, makeProject, makeUser, screenshot } from './lib.ts';

let conductor: TestConductor;
let member = '';
let imageId = '';
const SECRET = 'bmc-secret-7f3a';

const web = browserSuite('baremetal', {
  async setup() {
    conductor = new TestConductor(web.cloud, uniqueName('bm-web-cond'));
    await conductor.register(['ipmi', 'redfish']);
    // cleaning boots the node on the provisioning network (config provisioningNetwork `baremetal`)
    await provisioningNetwork(web.cloud, 'bm-web', '172.31.40.0/24');
    // a whole-disk image to deploy
    const img = await web.cloud.call('POST', '/image/v2/images', { token: web.cloud.adminToken, body: { name: 'bm-disk', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
    imageId = img.body.id;
    const up = await fetch(`${web.cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': web.cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(1 << 20) });
    assert.equal(up.status, 204);
    member = await makeUser(web.cloud, await makeProject(web.cloud, uniqueName('bmp')), 'member', uniqueName('bmmember'));
  },
});

const node = async (uuid: string) => (await web.cloud.call('GET', `/baremetal/v1/nodes/${uuid}`, { token: web.cloud.adminToken, headers: { 'X-OpenStack-Ironic-API-Version': 'latest' } })).body;

test('an admin enrolls a node, manages, inspects, provides, deploys and undeploys it, live as the conductor reports; power, maintenance, delete', { skip: skipUnlessRoot, timeout: 90_000 }, async () => {
  const t = await web.tab('admin', { password: web.cloud.adminPassword });
  const { page } = t;
  await page.getByRole('link', { name: 'Bare metal' }).click();
  await page.getByRole('heading', { name: 'Bare metal' }).waitFor();
  await page.evaluate(() => { (window as any).__stratusMark = 1; });
  const form = page.getByRole('form', { name: 'Enroll a node' });
  await form.getByLabel('Name', { exact: true }).fill('bm-web-1');
  await form.getByLabel('BMC address').fill('192.0.2.50');
  await form.getByLabel('BMC user name').fill('root');
  await form.getByLabel('BMC password').fill(SECRET);
  await form.getByLabel('PXE NIC MAC address').fill('52:54:00:aa:bb:01');
  await form.getByRole('button', { name: 'Enroll' }).click();
  const row = page.getByRole('row').filter({ hasText: 'bm-web-1' });
  await row.getByText('enroll', { exact: true }).waitFor();
  await row.getByText('192.0.2.50').waitFor();
  // the password left the page with the request and never came back
  assert.equal(await form.getByLabel('BMC password').inputValue(), '');
  assert.equal((await page.content()).includes(SECRET), false);
  const uuid = (await web.cloud.call('GET', '/baremetal/v1/nodes?name=bm-web-1', { token: web.cloud.adminToken, headers: { 'X-OpenStack-Ironic-API-Version': 'latest' } })).body.nodes[0].uuid as string;
  const n = await node(uuid);
  assert.equal(n.driver_info.ipmi_password, '******');
  assert.equal(n.driver, 'ipmi');
  const ports = (await web.cloud.call('GET', `/baremetal/v1/nodes/${uuid}/ports`, { token: web.cloud.adminToken, headers: { 'X-OpenStack-Ironic-API-Version': 'latest' } })).body.ports;
  assert.deepEqual(ports.map((p: any) => p.address), ['52:54:00:aa:bb:01']);
  await checkA11y(page, 'bare metal');

  // manage: verifying until the conductor says the BMC answers, shown without a reload
  await row.getByRole('button', { name: 'Manage' }).click();
  await page.getByRole('dialog', { name: 'Manage' }).getByRole('button', { name: 'Manage' }).click();
  await row.getByText('verifying').waitFor();
  await conductor.finish(uuid, 'succeeded', { power: 'power off' });
  await row.getByText('manageable', { exact: true }).waitFor();
  await row.getByText('power off').waitFor();
  // inspect: the conductor's inventory becomes the node's hardware
  await row.getByRole('button', { name: 'Inspect' }).click();
  await page.getByRole('dialog', { name: 'Inspect' }).getByRole('button', { name: 'Inspect' }).click();
  await row.getByText(/^(inspecting|inspect wait)$/).first().waitFor();
  await conductor.finish(uuid, 'succeeded', {
    power: 'power off',
    inventory: { cpus: 4, cpu_arch: 'x86_64', memory_mb: 8192, disks: [{ name: '/dev/sda', size_bytes: 64 * 2 ** 30 }], nics: [{ name: 'eth0', mac: '52:54:00:aa:bb:01' }], boot_mac: '52:54:00:aa:bb:01' },
  });
  await row.getByText('manageable', { exact: true }).waitFor();
  await row.getByText(/^4 CPU, 8192 MiB, \d+ GiB disk, x86_64$/).waitFor();
  // provide: cleaning (the conductor's ramdisk reports), then available
  await row.getByRole('button', { name: 'Provide' }).click();
  await page.getByRole('dialog', { name: 'Provide' }).getByRole('button', { name: 'Provide' }).click();
  await row.getByText(/^(cleaning|clean wait)$/).first().waitFor();
  await conductor.finish(uuid, 'succeeded', { power: 'power off' });
  await row.getByText('available', { exact: true }).waitFor();
  await screenshot(page, 'baremetal-available');

  // deploy an image, then undeploy: torn down and cleaned back to available
  await row.getByRole('button', { name: 'Deploy' }).click();
  const deploy = page.getByRole('dialog', { name: /Deploy an image/ });
  await deploy.getByRole('combobox', { name: /Whole-disk image/ }).selectOption({ label: 'bm-disk (raw)' });
  await deploy.getByRole('button', { name: 'Deploy' }).click();
  await row.getByText(/^(deploying|wait call-back)$/).first().waitFor();
  assert.equal((await node(uuid)).instance_info.image_source, imageId);
  await conductor.finish(uuid, 'succeeded', { power: 'power on' });
  await row.getByText('active', { exact: true }).waitFor();
  await row.getByRole('button', { name: 'Undeploy' }).click();
  await page.getByRole('dialog', { name: 'Undeploy' }).getByRole('button', { name: 'Undeploy' }).click();
  await row.getByText(/^(deleting|cleaning|clean wait)$/).first().waitFor();
  for (let i = 0; (await node(uuid)).provision_state !== 'available'; i++) {
    assert.ok(i < 10, 'the node is cleaned back to available');
    await conductor.finish(uuid, 'succeeded', { power: 'power off' });
  }
  await row.getByText('available', { exact: true }).waitFor();
  await row.getByText('power off').waitFor();

  // power on: the request is the node's target until the conductor has done it
  await row.getByRole('button', { name: 'Power on' }).click();
  await page.getByRole('dialog', { name: 'Power on' }).getByRole('button', { name: 'Power on' }).click();
  await row.getByText('→ power on').waitFor();
  assert.equal((await node(uuid)).target_power_state, 'power on');

  // maintenance with a reason, and back
  await row.getByRole('button', { name: 'Maintenance' }).click();
  const dialog = page.getByRole('dialog', { name: /in maintenance/ });
  await dialog.getByLabel('Reason').fill('disk swap');
  await dialog.getByRole('button', { name: 'Maintenance' }).click();
  await row.getByText('yes: disk swap').waitFor();
  assert.equal((await node(uuid)).maintenance_reason, 'disk swap');
  await row.getByRole('button', { name: 'End maintenance' }).click();
  await page.getByRole('dialog', { name: 'End maintenance' }).getByRole('button', { name: 'End maintenance' }).click();
  await row.getByRole('cell', { name: 'no', exact: true }).waitFor();
  await screenshot(page, 'baremetal-actions');

  // the node's own page: hardware, BMC settings with the password masked, its port, its history
  await row.getByRole('link', { name: 'bm-web-1' }).click();
  await page.getByRole('heading', { name: 'bm-web-1' }).waitFor();
  await page.getByRole('definition').filter({ hasText: '******' }).waitFor();
  await page.getByRole('table', { name: 'Ports' }).getByRole('row').filter({ hasText: '52:54:00:aa:bb:01' }).waitFor();
  await page.getByRole('table', { name: 'History' }).getByText('Maintenance set: disk swap').waitFor();
  assert.equal((await page.content()).includes(SECRET), false);
  await checkA11y(page, 'bare-metal node');
  await screenshot(page, 'baremetal-node');
  await page.getByRole('link', { name: 'All nodes' }).click();

  // delete, after the question
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete' }).getByText('Delete node “bm-web-1” from the cloud? Its ports go with it.').waitFor();
  await page.getByRole('dialog', { name: 'Delete' }).getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached' });
  assert.equal((await node(uuid)).error_message !== undefined, true, 'the node is gone');
  assert.equal(await page.evaluate(() => (window as any).__stratusMark), 1, 'the page was not reloaded');
  assert.deepEqual(t.cspViolations, []);
});

test('a Redfish enrollment the API refuses shows Ironic\'s message in the form', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab('admin', { password: web.cloud.adminPassword });
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/baremetal`);
  const form = page.getByRole('form', { name: 'Enroll a node' });
  await form.getByLabel('Redfish').check();
  await form.getByLabel('Name', { exact: true }).fill('bad name with spaces');
  await form.getByLabel('Redfish address').fill('https://192.0.2.60');
  await form.getByLabel('System ID').fill('/redfish/v1/Systems/1');
  await form.getByRole('button', { name: 'Enroll' }).click();
  await form.getByRole('alert').waitFor();
  assert.match(await form.getByRole('alert').textContent() ?? '', /name/i);
  await screenshot(page, 'baremetal-refused');
});

test('a member has no bare-metal page', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.getByRole('link', { name: 'Servers' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Bare metal' }).count(), 0);
  await page.goto(`${web.cloud.url}/#/baremetal`);
  await page.getByText('Only the cloud’s administrators manage bare-metal nodes.').waitFor();
  assert.equal(await page.getByRole('form').count(), 0);
});
