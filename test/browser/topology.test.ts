// The network topology picture in a real browser against a real Stratus (a
// simulated host reports the server running; no data plane needed): the
// external network, a router with its gateway there and an interface on the
// project's network, a server on that network, each drawn, named for what it
// connects, linked to its page; a network made meanwhile appears without a
// reload; the picture passes the accessibility check. A floating IP is
// allocated, associated with the server's port and disassociated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '../harness.ts';
import { skipUnlessRoot } from '../dataplane/lib.ts';
import { dockerArchive, simulatedHost } from '../api/compute/lib.ts';
import { PASSWORD, browserSuite, checkA11y, makeProject, makeUser, screenshot } from './lib.ts';

let projectId = '';
let member = '';
let token = '';
let serverId = '';
let routerId = '';
let netId = '';
let extId = '';

async function ok(method: string, path: string, body: unknown, as = token, headers: Record<string, string> = {}) {
  const r = await web.cloud.call(method, path, { token: as, body, headers });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const web = browserSuite('topology', {
  async setup() {
    projectId = await makeProject(web.cloud, uniqueName('topo'));
    member = await makeUser(web.cloud, projectId, 'member', uniqueName('tmember'));
    token = await web.cloud.login(member, PASSWORD, projectId);
    const ext = await ok('POST', '/network/v2.0/networks', { network: { name: 'topo-public', 'router:external': true } }, web.cloud.adminToken);
    await ok('POST', '/network/v2.0/subnets', { subnet: { network_id: ext.network.id, cidr: '203.0.113.0/24', ip_version: 4 } }, web.cloud.adminToken);
    const net = await ok('POST', '/network/v2.0/networks', { network: { name: 'topo-net' } });
    const sub = await ok('POST', '/network/v2.0/subnets', { subnet: { network_id: net.network.id, cidr: '10.77.0.0/24', ip_version: 4, name: 'topo-sub' } });
    const router = await ok('POST', '/network/v2.0/routers', { router: { name: 'topo-router', external_gateway_info: { network_id: ext.network.id } } });
    await ok('PUT', `/network/v2.0/routers/${router.router.id}/add_router_interface`, { subnet_id: sub.subnet.id });
    [routerId, netId, extId] = [router.router.id, net.network.id, ext.network.id];
    // a server on topo-net, placed on a simulated host that reports it running
    const host = await simulatedHost(web.cloud, uniqueName('topo-host'));
    const img = await ok('POST', '/image/v2/images', { name: 'topo-img', container_format: 'docker', disk_format: 'raw' });
    const up = await fetch(`${web.cloud.url}/image/v2/images/${img.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(dockerArchive()) });
    assert.equal(up.status, 204);
    const flavor = await ok('POST', '/compute/v2.1/flavors', { flavor: { name: uniqueName('topo'), ram: 64, vcpus: 1, disk: 0 } }, web.cloud.adminToken);
    const s = await ok('POST', '/compute/v2.1/servers', { server: { name: 'topo-vm', imageRef: img.id, flavorRef: flavor.flavor.id, networks: [{ uuid: net.network.id }] } }, token, { 'X-OpenStack-Nova-API-Version': '2.79' });
    serverId = s.server.id;
    for (let i = 0; i < 100 && !(await host.watch()).servers.has(serverId); i++) await new Promise((r) => setTimeout(r, 100));
    await host.report(serverId, 'active', 1);
  },
});

test('the topology draws the external network, the router, the project\'s network and the server on it, each linked', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.getByRole('link', { name: 'Networks' }).click();
  await page.getByRole('tab', { name: 'Topology' }).click();
  const picture = page.getByRole('group', { name: 'Network topology' });
  // the external network's subnet is the admin's: the project sees the network, not its subnet
  await picture.getByRole('link', { name: 'Network topo-public external', exact: true }).waitFor();
  await picture.getByRole('link', { name: 'Network topo-net 10.77.0.0/24', exact: true }).waitFor();
  await picture.getByRole('link', { name: /^Router topo-router ACTIVE, on topo-public, topo-net$/ }).waitFor();
  await picture.getByRole('link', { name: 'Server topo-vm ACTIVE, on topo-net', exact: true }).waitFor();
  // the lines: the external network to the router, the router to the project's network, that network to the server
  const lines = await picture.locator('g.links path').evaluateAll((ps) => ps.map((p) => `${p.getAttribute('data-from')}>${p.getAttribute('data-to')}`).sort());
  assert.deepEqual(lines, [`${extId}>${routerId}`, `${netId}>${serverId}`, `${routerId}>${netId}`].sort());
  // laid out left to right: external network, router, network, server
  const left = async (name: RegExp) => (await picture.getByRole('link', { name }).boundingBox())!.x;
  const xs = [await left(/^Network topo-public/), await left(/^Router topo-router/), await left(/^Network topo-net/), await left(/^Server topo-vm/)];
  assert.deepEqual([...xs].sort((a, b) => a - b), xs, `columns ${xs}`);
  await checkA11y(page, 'topology');
  await screenshot(page, 'topology');

  // a network made meanwhile is drawn without a reload
  await page.evaluate(() => { (window as any).__stratusMark = 1; });
  await ok('POST', '/network/v2.0/networks', { network: { name: 'topo-late' } });
  await picture.getByRole('link', { name: 'Network topo-late' }).waitFor();
  assert.equal(await page.evaluate(() => (window as any).__stratusMark), 1);

  // the router's box opens the routers' list
  await picture.getByRole('link', { name: /^Router topo-router/ }).click();
  await page.getByRole('row').filter({ hasText: 'topo-router' }).waitFor();
  assert.ok(page.url().endsWith('#/networks?tab=routers'));
  await page.getByRole('tab', { name: 'Topology' }).click();

  // the keyboard reaches the server's box, and Enter opens its page
  await picture.getByRole('link', { name: /^Server topo-vm/ }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'topo-vm' }).waitFor();
  assert.ok(page.url().endsWith(`#/servers/${serverId}`));
  assert.deepEqual(t.cspViolations, []);

  // 390 px wide and dark: the layers top to bottom; were the picture wider, it would scroll inside its frame, not the page
  const narrow = await web.tab(member, { width: 390, dark: true });
  await narrow.page.goto(`${web.cloud.url}/#/networks?tab=topology`);
  const small = narrow.page.getByRole('group', { name: 'Network topology' });
  await small.getByRole('link', { name: /^Server topo-vm/ }).waitFor();
  const top = async (name: RegExp) => (await small.getByRole('link', { name }).boundingBox())!.y;
  const ys = [await top(/^Network topo-public/), await top(/^Router topo-router/), await top(/^Network topo-net/), await top(/^Server topo-vm/)];
  assert.deepEqual([...ys].sort((a, b) => a - b), ys, `rows ${ys}`);
  assert.ok(await narrow.page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling of the page');
  await checkA11y(narrow.page, 'topology (390 px, dark)');
  await screenshot(narrow.page, 'topology-390-dark');
  assert.deepEqual(narrow.cspViolations, []);
});

test('a member allocates a floating IP, associates it with the server\'s port and disassociates it', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/networks?tab=floating`);
  const alloc = page.getByRole('form', { name: 'Allocate a floating IP' });
  await alloc.getByLabel('External network').selectOption({ label: 'topo-public' });
  await alloc.getByRole('button', { name: 'Create' }).click();
  const row = page.getByRole('row').filter({ hasText: '203.0.113.' });
  await row.waitFor();
  await row.getByRole('button', { name: 'Associate' }).click();
  const dialog = page.getByRole('dialog', { name: /^Associate 203\.0\.113\./ });
  const choice = await dialog.getByLabel('Port').locator('option', { hasText: /^10\.77\.0\.\d+ on topo-net$/ }).getAttribute('value');
  await dialog.getByLabel('Port').selectOption(choice!);
  await checkA11y(page, 'associate a floating IP');
  await dialog.getByRole('button', { name: 'Associate' }).click();
  await row.getByRole('cell', { name: /^10\.77\.0\.\d+$/ }).waitFor();
  const fip = (await ok('GET', '/network/v2.0/floatingips', undefined)).floatingips[0];
  const port = (await ok('GET', `/network/v2.0/ports?device_id=${serverId}`, undefined)).ports[0];
  assert.equal(fip.port_id, port.id);
  await screenshot(page, 'floating-ip-associated');
  await row.getByRole('button', { name: 'Disassociate' }).click();
  await page.getByRole('dialog', { name: 'Disassociate' }).getByRole('button', { name: 'Disassociate' }).click();
  await row.getByRole('button', { name: 'Associate' }).waitFor();
  assert.equal((await ok('GET', '/network/v2.0/floatingips', undefined)).floatingips[0].port_id, null);
  assert.deepEqual(t.cspViolations, []);
});
