// The dashboard in a real browser (Debian's chromium through playwright-core)
// against a real Stratus with an in-process agent running containers (root):
// log in, launch a container server (the wizard offering the kinds the cloud
// has) and watch it reach ACTIVE without a reload, the actions and consoles of
// its kind, read its console log and serial console, the name rendered as text,
// an image's page (a property, sharing with a project that accepts it), ports,
// security group rules and router interfaces,
// a reader without create buttons (and the API's 403), another project's
// member seeing none of it; axe-core's check on each page; a screenshot of
// each step under the run's output directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '../harness.ts';
import { busyboxTar, skipUnlessRoot } from '../dataplane/lib.ts';
import { PASSWORD, browserSuite, checkA11y, focused, login, screenshot, tabTo, waitPainted } from './lib.ts';

const XSS = '<img src=x onerror=alert(1)>';

let projectId = '';
let member = '';
let reader = '';
let outsider = '';
let switcher = '';
let otherProject = '';
let serverId = '';

async function admin(method: string, path: string, body?: unknown) {
  const r = await web.cloud.call(method, `/identity/v3${path}`, { token: web.cloud.adminToken, body });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
async function user(name: string, project: string, role: string): Promise<void> {
  const u = await admin('POST', '/users', { user: { name, domain_id: 'default', password: PASSWORD, default_project_id: project } });
  const roles = (await admin('GET', '/roles')).roles as Array<{ id: string; name: string }>;
  await admin('PUT', `/projects/${project}/users/${u.user.id}/roles/${roles.find((r) => r.name === role)!.id}`);
}

const web = browserSuite('dashboard', {
  plane: {},
  async setup() {
    projectId = (await admin('POST', '/projects', { project: { name: uniqueName('web'), domain_id: 'default' } })).project.id;
    const other = (await admin('POST', '/projects', { project: { name: uniqueName('other'), domain_id: 'default' } })).project.id;
    member = uniqueName('member');
    reader = uniqueName('reader');
    outsider = uniqueName('outsider');
    await user(member, projectId, 'member');
    await user(reader, projectId, 'reader');
    await user(outsider, other, 'member');
    // a member of the other project and a reader of this one: the project switcher's two projects
    otherProject = other;
    switcher = uniqueName('switcher');
    await user(switcher, other, 'member');
    const sw = (await admin('GET', `/users?name=${switcher}`)).users[0].id;
    const roles = (await admin('GET', '/roles')).roles as Array<{ id: string; name: string }>;
    await admin('PUT', `/projects/${projectId}/users/${sw}/roles/${roles.find((r) => r.name === 'reader')!.id}`);
  },
});

test('the page is served with a strict policy, hashed assets cached for a year, nothing inline', { skip: skipUnlessRoot }, async () => {
  const r = await fetch(`${web.cloud.url}/`, { headers: { 'accept-encoding': 'br' } });
  assert.equal(r.status, 200);
  const csp = r.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  const html = await r.text();
  assert.doesNotMatch(html, /<script>|<style|style=/);
  const js = html.match(/src="([^"]+\.js)"/)![1]!;
  const a = await fetch(`${web.cloud.url}${js}`);
  assert.equal(a.status, 200);
  assert.match(a.headers.get('cache-control') ?? '', /max-age=31536000, immutable/);
});

test('a member logs in, sees the quota overview, launches a container and watches it become ACTIVE without reloading', { skip: skipUnlessRoot, timeout: 120_000 }, async () => {
  const t = await web.tab();
  const { page } = t;
  await checkA11y(page, 'login');
  await screenshot(page, 'login');
  await login(page, member, PASSWORD);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  // the compute quota's chart, drawn once its code has loaded, and its figures as text
  await waitPainted(page.getByRole('img', { name: /^Compute quota usage: Instances: 0 of 10; vCPUs: 0 of \d+/ }));
  await page.getByRole('region', { name: 'Compute' }).getByRole('listitem').filter({ hasText: /^Instances 0 of 10$/ }).waitFor();
  await checkA11y(page, 'overview');
  await screenshot(page, 'overview');

  await page.getByRole('link', { name: 'Servers' }).click();
  await page.getByRole('heading', { name: 'Servers' }).waitFor();
  await page.getByText('No servers.').waitFor();
  await checkA11y(page, 'servers');
  await page.getByRole('button', { name: 'Launch server' }).click();
  await page.getByRole('heading', { name: 'Launch server' }).waitFor();
  // the kinds the cloud has an image and a flavor for (src/compute/kinds.ts): only containers here, none of bare metal's flavors
  const kinds = page.getByRole('group', { name: 'Kind' });
  await kinds.getByRole('radio').first().waitFor();
  assert.deepEqual(await kinds.getByRole('radio').evaluateAll((rs) => rs.map((r) => (r as HTMLInputElement).value)), ['container']);
  assert.equal(await kinds.getByRole('radio', { name: 'Container' }).isChecked(), true);
  await page.getByLabel('Name').fill(XSS);
  await page.getByLabel('Image').selectOption({ label: 'busybox (docker/raw)' });
  await page.getByLabel('Flavor').selectOption({ index: 1 });
  await checkA11y(page, 'launch');
  await screenshot(page, 'launch');
  // a mark on the page's window: a reload would lose it
  await page.evaluate(() => { (window as any).__stratusMark = 1; });
  await page.getByRole('button', { name: 'Launch' }).click();
  // the detail page: the name as text, a heading
  await page.getByRole('heading', { name: XSS }).waitFor();
  serverId = page.url().split('/servers/')[1]!;
  assert.match(serverId, /^[0-9a-f-]{36}$/);
  web.servers.push(serverId);
  await page.locator('.state .status', { hasText: 'ACTIVE' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.evaluate(() => (window as any).__stratusMark), 1, 'the page was not reloaded');
  // rendered as text: no image element made of it, no script ran
  assert.equal(await page.locator('main img').count(), 0);
  assert.deepEqual(t.dialogs, []);
  // the actions and consoles of its kind: a container rescues and shelves, and has a serial console but no graphical one
  const actions = page.getByRole('group', { name: 'Server actions' });
  for (const a of ['Stop', 'Reboot', 'Pause', 'Suspend', 'Rescue', 'Shelve', 'Rebuild', 'Delete']) await actions.getByRole('button', { name: a, exact: true }).waitFor();
  assert.equal(await actions.getByRole('button', { name: 'Offload' }).count(), 0, 'shelve offload is an admin\'s');
  assert.equal(await actions.getByRole('button', { name: 'Migrate' }).count(), 0, 'migration is an admin\'s');
  assert.equal(await page.getByRole('tab', { name: 'Graphical console' }).count(), 0);
  await page.getByRole('tab', { name: 'Serial console' }).waitFor();
  await page.getByRole('definition').filter({ hasText: /^Container$/ }).waitFor();
  await checkA11y(page, 'server detail');
  await screenshot(page, 'server-active');

  // the list shows it too, ACTIVE, by name as text
  await page.getByRole('link', { name: 'All servers' }).click();
  const row = page.getByRole('row').filter({ hasText: XSS });
  await row.getByText('ACTIVE').waitFor();
  await screenshot(page, 'servers-list');
  assert.deepEqual(t.cspViolations, []);
});

test('an admin is offered the member\'s server\'s cold migration; with one host, Nova\'s No valid host is shown and the server stays ACTIVE', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  assert.ok(serverId, 'the server was launched');
  const t = await web.tab('admin', { password: web.cloud.adminPassword });
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.locator('.state .status', { hasText: 'ACTIVE' }).waitFor();
  await page.getByRole('group', { name: 'Server actions' }).getByRole('button', { name: 'Migrate', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Migrate' });
  await dialog.getByRole('button', { name: 'Migrate' }).click();
  await dialog.getByRole('alert').filter({ hasText: /No valid host/ }).waitFor();
  const s = await web.cloud.call('GET', `/compute/v2.1/servers/${serverId}`, { token: web.cloud.adminToken });
  assert.equal(s.body.server.status, 'ACTIVE');
  assert.deepEqual(t.cspViolations, []);
});

test('the server\'s console log and serial console open in the page', { skip: skipUnlessRoot, timeout: 90_000 }, async () => {
  assert.ok(serverId, 'the server was launched');
  const t = await web.tab(member);
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.getByRole('tab', { name: 'Console log' }).click();
  const log = page.getByLabel('Console output');
  await log.waitFor();
  await page.waitForFunction(() => (document.querySelector('pre.console-log')?.textContent ?? '').length > 0, null, { timeout: 30_000 });
  await checkA11y(page, 'console log');
  await screenshot(page, 'console-log');
  await page.getByRole('tab', { name: 'Serial console' }).click();
  await page.getByText('Serial console: connected').waitFor({ timeout: 30_000 });
  // the history (the init's output) arrives in the terminal
  await page.waitForFunction(() => (document.querySelector('.term-box .xterm-screen')?.textContent ?? '').trim().length > 0, null, { timeout: 30_000 });
  await page.keyboard.type('echo web-$((6*7))\n');
  await page.waitForFunction(() => (document.querySelector('.term-box .xterm-screen')?.textContent ?? '').includes('web-42'), null, { timeout: 30_000 });
  await screenshot(page, 'serial-console');
  assert.deepEqual(t.cspViolations, []);
});

test('a member uploads a disk image and an OCI archive with a progress bar, sets a property and shares it; makes a network, a subnet, a port, a security group rule and a router joined to it, then disconnected', { skip: skipUnlessRoot, timeout: 90_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.getByRole('link', { name: 'Images' }).click();
  await page.getByRole('heading', { name: 'Images' }).waitFor();
  const form = page.getByRole('form', { name: 'Upload an image' });
  await form.getByLabel('Name').fill('web-disk');
  await form.getByLabel('Format').selectOption('bare/raw');
  await form.getByLabel('File').setInputFiles({ name: 'disk.raw', mimeType: 'application/octet-stream', buffer: Buffer.alloc(8 << 20, 7) });
  await form.getByRole('button', { name: 'Upload' }).click();
  await form.getByText(/^100% of 8\.0 MiB$/).waitFor({ timeout: 30_000 });
  assert.equal(await form.locator('progress').getAttribute('value'), '1');
  // the list shows it active (the upload's event reloads it)
  await page.getByRole('row').filter({ hasText: 'web-disk' }).getByText('active').waitFor();
  await checkA11y(page, 'images');
  await screenshot(page, 'image-uploaded');
  // an OCI archive (the busybox image) too: a container image
  await form.getByLabel('Name').fill('web-oci');
  await form.getByLabel('Format').selectOption('docker/raw');
  await form.getByLabel('File').setInputFiles({ name: 'busybox.tar', mimeType: 'application/x-tar', buffer: await busyboxTar() });
  assert.equal(await form.locator('progress').count(), 0, 'a new file starts without the last upload\'s progress');
  await form.getByRole('button', { name: 'Upload' }).click();
  await form.getByText(/^100% of /).waitFor({ timeout: 30_000 });
  await page.getByRole('row').filter({ hasText: 'web-oci' }).filter({ hasText: 'docker/raw' }).getByText('active').waitFor();
  // its page: a property set, made shared and shared with the other project (accepted there in the switcher's test)
  await page.getByRole('link', { name: 'web-disk' }).click();
  await page.getByRole('heading', { name: 'web-disk' }).waitFor();
  const prop = page.getByRole('form', { name: 'Set a property' });
  await prop.getByLabel('Property').fill('os_distro');
  await prop.getByLabel('Value').fill(XSS);
  await prop.getByRole('button', { name: 'Set' }).click();
  await page.getByRole('row').filter({ hasText: 'os_distro' }).filter({ hasText: XSS }).waitFor();
  const edit = page.getByRole('form', { name: 'Edit the image' });
  await edit.getByLabel('Minimum disk (GiB)').fill('-1');
  await edit.getByRole('button', { name: 'Save' }).click();
  await edit.getByRole('alert').waitFor();
  await edit.getByLabel('Minimum disk (GiB)').fill('1');
  await edit.getByLabel('Visibility').selectOption('shared');
  await edit.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('definition').filter({ hasText: /^shared$/ }).waitFor();
  await page.getByRole('definition').filter({ hasText: /^1 GiB$/ }).waitFor();
  const share = page.getByRole('form', { name: 'Share with a project' });
  await share.getByLabel('Project ID').fill(otherProject);
  await share.getByRole('button', { name: 'Share' }).click();
  await page.getByRole('row').filter({ hasText: otherProject }).getByText('pending').waitFor();
  assert.equal(await page.locator('main img').count(), 0);
  await checkA11y(page, 'image detail');
  await screenshot(page, 'image-detail');

  await page.getByRole('link', { name: 'Networks' }).click();
  await page.getByRole('form', { name: 'Create a network' }).getByLabel('Name').fill('web-net');
  await page.getByRole('form', { name: 'Create a network' }).getByRole('button', { name: 'Create' }).click();
  await page.getByRole('row').filter({ hasText: 'web-net' }).waitFor();
  await page.getByRole('tab', { name: 'Subnets' }).click();
  const sub = page.getByRole('form', { name: 'Create a subnet' });
  await sub.getByLabel('Network').selectOption({ label: 'web-net' });
  await sub.getByLabel('Name').fill('web-sub');
  await sub.getByLabel('CIDR').fill('10.42.0.0/24');
  await sub.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('row').filter({ hasText: '10.42.0.0/24' }).waitFor();
  // a port with a fixed address of the subnet
  await page.getByRole('tab', { name: 'Ports' }).click();
  const pf = page.getByRole('form', { name: 'Create a port' });
  await pf.getByLabel('Network').selectOption({ label: 'web-net' });
  await pf.getByLabel('Name').fill('web-port');
  await pf.getByLabel('Fixed IP').fill('10.42.0.77');
  await pf.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('row').filter({ hasText: 'web-port' }).filter({ hasText: '10.42.0.77' }).waitFor();
  // a security group, a rule added to it and deleted
  await page.getByRole('tab', { name: 'Security groups' }).click();
  const gf = page.getByRole('form', { name: 'Create a security group' });
  await gf.getByLabel('Name').fill('web-sg');
  await gf.getByRole('button', { name: 'Create' }).click();
  const sgRow = page.getByRole('row').filter({ hasText: 'web-sg' });
  await sgRow.waitFor();
  const rule = page.getByRole('form', { name: 'Add a rule' });
  await rule.getByLabel('Security group').selectOption({ label: 'web-sg' });
  await rule.getByLabel('Port from').fill('22');
  await rule.getByLabel('Remote IP prefix').fill('192.0.2.0/24');
  await rule.getByRole('button', { name: 'Add rule' }).click();
  await sgRow.getByRole('listitem').filter({ hasText: 'ingress IPv4 tcp 22-22 192.0.2.0/24' }).waitFor();
  await checkA11y(page, 'security groups');
  await sgRow.getByRole('listitem').filter({ hasText: 'tcp 22-22' }).getByRole('button', { name: 'Delete rule' }).click();
  await page.getByRole('dialog', { name: 'Delete rule' }).getByRole('button', { name: 'Delete rule' }).click();
  await sgRow.getByRole('listitem').filter({ hasText: 'tcp 22-22' }).waitFor({ state: 'detached' });
  await page.getByRole('tab', { name: 'Routers' }).click();
  const rf = page.getByRole('form', { name: 'Create a router' });
  await rf.getByLabel('Name').fill('web-router');
  await rf.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('row').filter({ hasText: 'web-router' }).waitFor();
  const join = page.getByRole('form', { name: 'Connect a subnet to a router' });
  await join.getByLabel('Router').selectOption({ label: 'web-router' });
  await join.getByLabel('Subnet').selectOption({ label: 'web-sub (10.42.0.0/24)' });
  await join.getByRole('button', { name: 'Create' }).click();
  await join.locator('.error').waitFor({ state: 'detached' }).catch(() => undefined);
  // the router's interface is a port on the subnet's gateway address
  for (let i = 0; ; i++) {
    const ports = await web.cloud.call('GET', '/network/v2.0/ports?device_owner=network:router_interface', { token: web.cloud.adminToken });
    if (ports.body.ports.some((p: any) => p.fixed_ips.some((f: any) => f.ip_address === '10.42.0.1'))) break;
    assert.ok(i < 50, 'the router got an interface on web-sub');
    await new Promise((r) => setTimeout(r, 100));
  }
  await checkA11y(page, 'routers');
  await screenshot(page, 'network-router');
  // and the topology draws the router on the network
  await page.getByRole('tab', { name: 'Topology' }).click();
  await page.getByRole('group', { name: 'Network topology' }).getByRole('link', { name: /^Router web-router .*, on web-net$/ }).waitFor();
  await screenshot(page, 'network-topology');
  // the router lists its interface, and disconnects it
  await page.getByRole('tab', { name: 'Routers' }).click();
  const iface = page.getByRole('row').filter({ hasText: 'web-router' }).getByRole('listitem').filter({ hasText: 'web-sub (10.42.0.1)' });
  await iface.getByRole('button', { name: 'Disconnect' }).click();
  await iface.getByRole('dialog').getByRole('button', { name: 'Disconnect' }).click();
  await iface.waitFor({ state: 'detached' });
  // the launch wizard offers the free port in place of a network
  await page.goto(`${web.cloud.url}/#/servers/new`);
  await page.getByRole('combobox', { name: /^Network/ }).locator('option', { hasText: 'Port web-port (10.42.0.77) on web-net' }).waitFor({ state: 'attached' });
  assert.deepEqual(t.cspViolations, []);
});

test('a reader sees the server but no create or action buttons, and the API refuses a create with 403', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(reader, { width: 390, dark: true });
  const { page } = t;
  // the overview's charts fit the narrow page, in the dark theme's colours
  const chart = page.getByRole('img', { name: /^Compute quota usage/ });
  await waitPainted(chart);
  assert.ok((await chart.boundingBox())!.width <= 390);
  await screenshot(page, 'reader-overview-390-dark');
  await page.getByRole('link', { name: 'Servers' }).click();
  await page.getByRole('row').filter({ hasText: XSS }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Launch server' }).count(), 0);
  await checkA11y(page, 'servers (reader, 390 px, dark)');
  await screenshot(page, 'reader-servers-390-dark');
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.getByRole('heading', { name: XSS }).waitFor();
  await page.getByRole('definition').filter({ hasText: /^Container$/ }).waitFor();
  for (const a of ['Delete', 'Stop', 'Rescue', 'Shelve']) assert.equal(await page.getByRole('button', { name: a }).count(), 0, a);
  await page.goto(`${web.cloud.url}/#/networks`);
  await page.getByRole('heading', { name: 'Networks' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Create' }).count(), 0);
  // the same call a create button would make, with the page's own token: the API says no
  const status = await page.evaluate(async ([image, flavor]) => {
    const token = JSON.parse(sessionStorage.getItem('stratus.session')!).token;
    const r = await fetch('/compute/v2.1/servers', {
      method: 'POST', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ server: { name: 'nope', imageRef: image, flavorRef: flavor, networks: 'none' } }),
    });
    return r.status;
  }, [web.plane.imageId, web.plane.flavorId]);
  assert.equal(status, 403);
  // nothing persistent: the token is in sessionStorage only
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.deepEqual(await t.context.cookies(), []);
});

test('a member of another project sees none of the project\'s resources', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(outsider, { width: 1920, height: 1080 });
  const { page } = t;
  await page.getByRole('link', { name: 'Servers' }).click();
  await page.getByText('No servers.').waitFor();
  assert.equal(await page.getByText(XSS).count(), 0);
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.locator('.error', { hasText: /could not be found/ }).waitFor();
  await page.getByRole('link', { name: 'Images' }).click();
  await page.getByRole('heading', { name: 'Images' }).waitFor();
  await checkA11y(page, 'images');
  await page.getByRole('link', { name: 'Networks' }).click();
  await page.getByRole('heading', { name: 'Networks' }).waitFor();
  await checkA11y(page, 'networks');
  await screenshot(page, 'outsider-networks-1920');
});

test('the project switcher rescopes to another of the user\'s projects, and the pages follow', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(switcher);
  const { page } = t;
  const select = page.getByRole('combobox', { name: 'Project' });
  await select.selectOption(otherProject);
  await page.getByRole('link', { name: 'Servers' }).click();
  await page.getByText('No servers.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Launch server' }).count(), 1);
  const before = await page.evaluate(() => JSON.parse(sessionStorage.getItem('stratus.session')!).token as string);
  await select.selectOption(projectId);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByRole('link', { name: 'Servers' }).click();
  await page.getByRole('row').filter({ hasText: XSS }).waitFor();
  // a reader there: no launch button
  assert.equal(await page.getByRole('button', { name: 'Launch server' }).count(), 0);
  // back in the other project (a member there), the image shared with it: pending, then accepted
  await select.selectOption(otherProject);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByRole('link', { name: 'Images' }).click();
  await page.getByRole('link', { name: 'web-disk' }).click();
  const mine = page.getByRole('group', { name: 'This project\'s share' });
  await mine.getByText('Shared with this project: pending').waitFor();
  await mine.getByRole('button', { name: 'Accept' }).click();
  await mine.getByRole('dialog').getByRole('button', { name: 'Accept' }).click();
  await mine.getByText('Shared with this project: accepted').waitFor();
  assert.equal(await page.getByRole('form', { name: 'Edit the image' }).count(), 0, 'only the owner edits');
  // the token of the project left is revoked
  const r = await web.cloud.call('GET', '/identity/v3/auth/tokens', { token: web.cloud.adminToken, headers: { 'X-Subject-Token': before } });
  assert.equal(r.status, 404);
  await screenshot(page, 'switched-project');
});

test('an application credential logs in to its project', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const token = await web.cloud.login(member, PASSWORD, projectId);
  const me = (await web.cloud.call('GET', '/identity/v3/auth/tokens', { token, headers: { 'X-Subject-Token': token } })).body.token.user.id;
  const ac = await web.cloud.call('POST', `/identity/v3/users/${me}/application_credentials`, { token, body: { application_credential: { name: uniqueName('web-ac') } } });
  assert.equal(ac.status, 201, JSON.stringify(ac.body));
  const t = await web.tab();
  const { page } = t;
  await page.getByRole('tab', { name: 'Application credential' }).click();
  await page.getByLabel('Application credential ID').fill(ac.body.application_credential.id);
  await page.getByLabel('Secret').fill(ac.body.application_credential.secret);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByRole('link', { name: 'Servers' }).click();
  await page.getByRole('row').filter({ hasText: XSS }).waitFor();
});

test('an admin\'s overview shows each host\'s capacity against its allocations', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab('admin', { password: web.cloud.adminPassword });
  const { page } = t;
  const host = page.getByRole('region', { name: `Host ${web.plane.hostname}` });
  await waitPainted(host.getByRole('img', { name: /^Host \S+ capacity used: vCPUs: \d+ of \d+; RAM: \d+ MiB of \d+ MiB/ }));
  assert.deepEqual(t.cspViolations, []);
  await checkA11y(page, 'overview (admin)');
  await screenshot(page, 'admin-overview');
});

test('logging out revokes the token', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('stratus.session')!).token as string);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('stratus.session')), null);
  const r = await web.cloud.call('GET', '/identity/v3/auth/tokens', { token: web.cloud.adminToken, headers: { 'X-Subject-Token': token } });
  assert.equal(r.status, 404);
});

test('a container\'s rebuild, rescue and unrescue, shelve and unshelve from its page, each state arriving live', { skip: skipUnlessRoot, timeout: 180_000 }, async () => {
  assert.ok(serverId, 'the server was launched');
  const t = await web.tab(member);
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.getByRole('heading', { name: XSS }).waitFor();
  const status = (s: string) => page.locator('.state .status', { hasText: new RegExp(`^${s}$`) });
  const idle = () => page.locator('.state .muted').waitFor({ state: 'detached', timeout: 90_000 });
  await status('ACTIVE').waitFor();
  await page.evaluate(() => { (window as any).__stratusMark = 1; });
  const actions = page.getByRole('group', { name: 'Server actions' });
  const act = async (label: string) => {
    await actions.getByRole('button', { name: label, exact: true }).click();
    await page.getByRole('dialog', { name: label }).getByRole('button', { name: label, exact: true }).click();
  };
  const actionsDone = async () => (await web.plane.api('GET', `/compute/v2.1/servers/${serverId}/os-instance-actions`)).body.instanceActions.map((a: any) => a.action) as string[];

  // rebuild: busy (its task shown, the other actions disabled), then ACTIVE and idle again, the history listing it
  await act('Rebuild');
  for (let i = 0; !(await actionsDone()).includes('rebuild'); i++) {
    assert.ok(i < 50, 'the rebuild is recorded');
    await new Promise((r) => setTimeout(r, 100));
  }
  await idle();
  await status('ACTIVE').waitFor();
  await actions.getByRole('button', { name: 'Rescue', exact: true }).and(page.locator(':enabled')).waitFor();
  await page.getByRole('tab', { name: 'Action history' }).click();
  await page.getByRole('cell', { name: 'rebuild', exact: true }).waitFor();
  await page.getByRole('tab', { name: 'Overview' }).click();

  // rescue: RESCUE, with Unrescue offered in place of Rescue; unrescue: ACTIVE
  await act('Rescue');
  await status('RESCUE').waitFor({ timeout: 90_000 });
  await idle();
  await actions.getByRole('button', { name: 'Unrescue', exact: true }).waitFor();
  assert.equal(await actions.getByRole('button', { name: 'Rescue', exact: true }).count(), 0);
  await screenshot(page, 'server-rescue');
  await act('Unrescue');
  await status('ACTIVE').waitFor({ timeout: 90_000 });
  await idle();

  // shelve: a snapshot, then off its host (SHELVED_OFFLOADED, as Nova with shelved_offload_time 0); unshelve: scheduled and ACTIVE again
  await act('Shelve');
  await status('SHELVED(_OFFLOADED)?').waitFor({ timeout: 90_000 });
  await idle();
  await actions.getByRole('button', { name: 'Unshelve', exact: true }).waitFor();
  await screenshot(page, 'server-shelved');
  await act('Unshelve');
  await status('ACTIVE').waitFor({ timeout: 120_000 });
  await idle();
  await actions.getByRole('button', { name: 'Shelve', exact: true }).waitFor();
  assert.deepEqual((await actionsDone()).filter((a) => a !== 'create').sort(), ['rebuild', 'rescue', 'shelve', 'unrescue', 'unshelve']);
  assert.equal(await page.evaluate(() => (window as any).__stratusMark), 1, 'the page was not reloaded');
  await checkA11y(page, 'server after shelve and unshelve');
  assert.deepEqual(t.cspViolations, []);
});

test('with the keyboard alone a member logs in, opens the servers, launches a container and deletes it', { skip: skipUnlessRoot, timeout: 90_000 }, async () => {
  const t = await web.tab();
  const { page } = t;
  const key = (k: string) => page.keyboard.press(k);
  // the login form: the password tab is one stop, then the fields; Enter logs in
  await tabTo(page, 'User name');
  await page.keyboard.type(member);
  await key('Tab');
  assert.equal((await focused(page)).name, 'Password');
  await page.keyboard.type(PASSWORD);
  await key('Enter');
  // the overview's title has the focus: the keyboard goes on from the new page's top
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.waitForFunction(() => document.activeElement?.id === 'page-title');
  // the main navigation, Shift+Tab back to it
  await tabTo(page, 'Servers', { back: true });
  await key('Enter');
  await page.getByRole('heading', { name: 'Servers' }).waitFor();
  await page.waitForFunction(() => document.activeElement?.textContent === 'Servers' && document.activeElement.id === 'page-title');
  await tabTo(page, 'Launch server');
  await key('Enter');
  // the wizard: the kind (the one there is, chosen), a name, an image by typing its name's start, a flavor by the arrow keys
  await page.getByRole('heading', { name: 'Launch server' }).waitFor();
  await page.getByRole('radio', { name: 'Container' }).waitFor();
  await tabTo(page, 'Container');
  assert.equal(await page.getByRole('radio', { name: 'Container' }).isChecked(), true);
  await key('Tab');
  assert.equal((await focused(page)).name, 'Name');
  await page.keyboard.type('web-kbd');
  await key('Tab');
  assert.equal((await focused(page)).name, 'Image');
  await page.keyboard.type('busybox');
  assert.equal(await page.getByLabel('Image').locator('option:checked').textContent(), 'busybox (docker/raw)');
  await key('Tab');
  assert.equal((await focused(page)).name, 'Flavor');
  await key('ArrowDown');
  assert.notEqual(await page.getByLabel('Flavor').inputValue(), '');
  await tabTo(page, 'Launch');
  await checkA11y(page, 'launch (keyboard)');
  await key('Enter');
  await page.getByRole('heading', { name: 'web-kbd' }).waitFor();
  const id = page.url().split('/servers/')[1]!;
  web.servers.push(id);
  await page.locator('.state .status', { hasText: 'ACTIVE' }).waitFor({ timeout: 60_000 });
  // the tabs: one stop, the arrow keys move along them, Enter opens one
  await tabTo(page, 'Overview');
  assert.equal((await focused(page)).role, 'tab');
  await key('ArrowRight');
  await key('ArrowRight');
  assert.equal((await focused(page)).name, 'Console log');
  await key('Enter');
  await page.getByLabel('Console output').waitFor();
  // the serial console takes the keyboard (Tab is the guest's); Escape then Tab leaves it
  await key('ArrowRight');
  assert.equal((await focused(page)).name, 'Serial console');
  await key('Enter');
  await page.getByText('Serial console: connected').waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => !!document.activeElement?.closest('.term-box'));
  await key('Tab');
  assert.ok(await page.evaluate(() => !!document.activeElement?.closest('.term-box')), 'Tab alone stays in the terminal');
  await key('Escape');
  await key('Shift+Tab');
  assert.equal((await focused(page)).name, 'Serial console');
  await key('Home');
  await key('Space');
  await page.getByRole('definition').filter({ hasText: /^Container$/ }).waitFor();
  await screenshot(page, 'keyboard-server');
  // delete: the question opens on Cancel; Escape leaves it and the focus is back on the button
  await tabTo(page, 'Delete', { back: true });
  await key('Enter');
  const dialog = page.getByRole('dialog', { name: 'Delete' });
  await dialog.waitFor();
  let f = await focused(page);
  assert.deepEqual([f.name, f.inDialog, f.ring], ['Cancel', true, true]);
  // the page behind is inert: Tab stays in the dialog (or in the browser's own controls)
  for (let i = 0; i < 4; i++) {
    await key('Tab');
    f = await focused(page);
    assert.ok(f.inDialog || f.tag === 'body', `Tab left the dialog for ${f.tag} “${f.name}”`);
  }
  await key('Escape');
  await dialog.waitFor({ state: 'hidden' });
  f = await focused(page);
  assert.deepEqual([f.name, f.inDialog], ['Delete', false]);
  await key('Space');
  await dialog.waitFor();
  await checkA11y(page, 'delete dialog (keyboard)');
  await screenshot(page, 'keyboard-delete');
  await tabTo(page, 'Delete', { back: true, max: 3 });
  assert.ok((await focused(page)).inDialog);
  await key('Enter');
  await page.getByRole('heading', { name: 'Servers' }).waitFor();
  await page.getByRole('row').filter({ hasText: 'web-kbd' }).waitFor({ state: 'detached', timeout: 60_000 });
  await web.plane.waitGone(id, 60_000);
  assert.deepEqual(t.cspViolations, []);
});
