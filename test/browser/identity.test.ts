// The dashboard's identity pages in a real browser against a real Stratus (no
// data plane): a member makes an application credential and an EC2 credential
// (each secret shown once, and it works), makes a key pair (the private key a
// download), imports a public key and deletes a key pair; an admin makes a
// project, a user and a group with the user in it, gives the user the member
// role on the project and sets its compute quota, and the new user logs in
// into that project; a reader gets no admin tabs and, opening one anyway, the
// API's 403; a domain admin gets the admin tabs (but quotas) for its domain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { uniqueName } from '../harness.ts';
import { skipUnlessRoot } from '../dataplane/lib.ts';
import { PASSWORD, browserSuite, checkA11y, makeProject, makeUser, screenshot } from './lib.ts';

const XSS = '<img src=x onerror=alert(1)>';

let projectId = '';
let member = '';
let reader = '';

const web = browserSuite('identity', {
  async setup() {
    projectId = await makeProject(web.cloud, uniqueName('idp'));
    member = await makeUser(web.cloud, projectId, 'member', uniqueName('imember'));
    reader = await makeUser(web.cloud, projectId, 'reader', uniqueName('ireader'));
  },
});

test('a member makes an application credential and an EC2 credential (each secret shown once) and key pairs', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.getByRole('link', { name: 'Identity' }).click();
  await page.getByRole('heading', { name: 'Identity' }).waitFor();
  // a member administers nothing: only its own tabs
  await page.getByRole('tab', { name: 'Key pairs' }).waitFor();
  assert.equal(await page.getByRole('tab', { name: 'Projects' }).count(), 0);

  // an application credential: Keystone's refusal of an expiry in the past, in the form; then made, its secret shown once
  const ac = page.getByRole('form', { name: 'Create an application credential' });
  await ac.getByLabel('Name').fill('web-ac');
  await ac.getByLabel('Description').fill(XSS);
  await ac.getByLabel('Expires').fill('2001-01-01T00:00');
  await ac.getByRole('button', { name: 'Create' }).click();
  await ac.getByRole('alert').waitFor();
  await ac.getByLabel('Expires').fill('');
  await ac.getByRole('button', { name: 'Create' }).click();
  const once = page.getByRole('region', { name: 'Application credential “web-ac”' });
  await once.waitFor();
  const id = await once.locator('code[data-secret="ID"]').textContent();
  const secret = await once.locator('code[data-secret="Secret"]').textContent();
  assert.ok(id && secret && secret.length >= 16);
  await once.getByRole('button', { name: 'Copy secret' }).click();
  await once.getByRole('status').filter({ hasText: /Secret (copied|selected)/ }).waitFor();
  // the description is text, not markup
  await page.getByRole('cell', { name: XSS, exact: true }).waitFor();
  await checkA11y(page, 'identity: application credentials');
  await screenshot(page, 'appcred-secret');
  // and the secret logs in
  const auth = await web.cloud.call('POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } } });
  assert.equal(auth.status, 201, JSON.stringify(auth.body));
  await once.getByRole('button', { name: 'Done' }).click();
  await once.waitFor({ state: 'hidden' });
  assert.equal(await page.getByText(secret).count(), 0);
  const row = page.getByRole('row').filter({ hasText: 'web-ac' });
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete' }).getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached' });

  // an EC2 credential: the pair shown once; the list never shows the secret (Keystone's list carries it)
  await page.getByRole('tab', { name: 'EC2 credentials' }).click();
  await page.getByRole('form', { name: 'Create an EC2 credential' }).getByRole('button', { name: 'Create' }).click();
  const ec2 = page.getByRole('region', { name: 'EC2 credential' });
  const access = (await ec2.locator('code[data-secret="Access key"]').textContent())!;
  const ec2Secret = (await ec2.locator('code[data-secret="Secret key"]').textContent())!;
  assert.ok(access && ec2Secret);
  await ec2.getByRole('button', { name: 'Done' }).click();
  const ec2Row = page.getByRole('row').filter({ hasText: access });
  await ec2Row.waitFor();
  assert.equal(await page.getByText(ec2Secret).count(), 0);
  await ec2Row.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete' }).getByRole('button', { name: 'Delete' }).click();
  await ec2Row.waitFor({ state: 'detached' });

  // a key pair: its private key a download, offered once
  await page.getByRole('tab', { name: 'Key pairs' }).click();
  const kp = page.getByRole('form', { name: 'Create a key pair' });
  await kp.getByLabel('Name').fill('web-key');
  await kp.getByRole('button', { name: 'Create' }).click();
  const keyOnce = page.getByRole('region', { name: 'Private key of “web-key”' });
  const [download] = await Promise.all([page.waitForEvent('download'), keyOnce.getByRole('button', { name: 'Download web-key.pem' }).click()]);
  assert.equal(download.suggestedFilename(), 'web-key.pem');
  assert.match(readFileSync((await download.path())!, 'utf8'), /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  await keyOnce.getByRole('button', { name: 'Done' }).click();
  await keyOnce.waitFor({ state: 'hidden' });
  // import a public key (web-key's own), after Nova's refusal of one that is not a key
  const pub = (await web.cloud.call('GET', '/compute/v2.1/os-keypairs/web-key', { token: await web.cloud.login(member, PASSWORD, projectId) })).body.keypair.public_key as string;
  const imp = page.getByRole('form', { name: 'Import a public key' });
  await imp.getByLabel('Name').fill('web-imported');
  await imp.getByLabel('Public key').fill('not a key');
  await imp.getByRole('button', { name: 'Import' }).click();
  await imp.getByRole('alert').filter({ hasText: /invalid/i }).waitFor();
  await imp.getByLabel('Public key').fill(pub);
  await imp.getByRole('button', { name: 'Import' }).click();
  await page.getByRole('row').filter({ hasText: 'web-imported' }).waitFor();
  await checkA11y(page, 'identity: key pairs');
  await screenshot(page, 'keypairs');
  const keyRow = page.getByRole('row').filter({ hasText: 'web-key' });
  await keyRow.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete' }).getByRole('button', { name: 'Delete' }).click();
  await keyRow.waitFor({ state: 'detached' });
  assert.deepEqual(t.cspViolations, []);
  assert.deepEqual(t.dialogs, []);
});

test('an admin makes a project, a user and a group, gives the user the member role and a quota; the user logs in into the project', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab('admin', { password: web.cloud.adminPassword });
  const { page } = t;
  const project = uniqueName('webproj');
  const user = uniqueName('webuser');
  await page.getByRole('link', { name: 'Identity' }).click();
  await page.getByRole('tab', { name: 'Projects' }).click();
  const pf = page.getByRole('form', { name: 'Create a project' });
  await pf.getByLabel('Name').fill(project);
  await pf.getByLabel('Description').fill(XSS);
  await pf.getByRole('button', { name: 'Create' }).click();
  const prow = page.getByRole('row').filter({ hasText: project });
  await prow.getByText('enabled').waitFor();
  await prow.getByRole('cell', { name: XSS, exact: true }).waitFor();
  // Keystone's 409 for a second project of that name, in the form
  await pf.getByLabel('Name').fill(project);
  await pf.getByRole('button', { name: 'Create' }).click();
  await pf.getByRole('alert').waitFor();
  await checkA11y(page, 'identity: projects');
  await screenshot(page, 'projects');

  await page.getByRole('tab', { name: 'Users' }).click();
  const uf = page.getByRole('form', { name: 'Create a user' });
  await uf.getByLabel('Name').fill(user);
  await uf.getByLabel('Password').fill('web-user-pw-1');
  await uf.getByLabel('Default project').selectOption({ label: project });
  await uf.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('row').filter({ hasText: user }).getByRole('cell', { name: project, exact: true }).waitFor();
  // the password left the form with the request and is shown nowhere
  assert.equal(await uf.getByLabel('Password').inputValue(), '');
  assert.equal(await page.getByText('web-user-pw-1').count(), 0);

  // a group with the user in it
  await page.getByRole('tab', { name: 'Groups' }).click();
  const gf = page.getByRole('form', { name: 'Create a group' });
  await gf.getByLabel('Name').fill(`${user}-group`);
  await gf.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('row').filter({ hasText: `${user}-group` }).getByRole('button', { name: 'Members' }).click();
  const members = page.getByRole('region', { name: `Members of group “${user}-group”` });
  await members.getByRole('combobox', { name: /^User/ }).selectOption({ label: user });
  await members.getByRole('button', { name: 'Add' }).click();
  await members.getByRole('cell', { name: user, exact: true }).waitFor();

  await page.getByRole('tab', { name: 'Role assignments' }).click();
  const af = page.getByRole('form', { name: 'Assign a role' });
  await af.getByRole('combobox', { name: /^Role/ }).selectOption({ label: 'member' });
  await af.getByRole('combobox', { name: /^User/ }).selectOption({ label: user });
  await af.getByRole('combobox', { name: /^Project/ }).selectOption({ label: project });
  await af.getByRole('button', { name: 'Assign' }).click();
  await page.getByRole('row').filter({ hasText: `user ${user}` }).filter({ hasText: `project ${project}` }).waitFor();
  await checkA11y(page, 'identity: role assignments');

  await page.getByRole('tab', { name: 'Quotas' }).click();
  await page.getByRole('combobox', { name: /^Quotas of project/ }).selectOption({ label: project });
  const qf = page.getByRole('form', { name: `Quotas of project “${project}”` });
  const nova = qf.getByRole('group', { name: 'Compute (Nova)' });
  await nova.getByLabel('instances', { exact: true }).fill('7');
  await qf.getByRole('button', { name: 'Save quotas' }).click();
  await qf.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  await checkA11y(page, 'identity: quotas');
  await screenshot(page, 'quotas');
  const pid = (await web.cloud.call('GET', `/identity/v3/projects?name=${project}`, { token: web.cloud.adminToken })).body.projects[0].id;
  const q = await web.cloud.call('GET', `/compute/v2.1/os-quota-sets/${pid}`, { token: web.cloud.adminToken });
  assert.equal(q.body.quota_set.instances, 7);
  assert.deepEqual(t.cspViolations, []);

  // the new user logs in, into the project
  const u = await web.tab(user, { password: 'web-user-pw-1' });
  await u.page.getByRole('combobox', { name: 'Project' }).filter({ has: u.page.getByRole('option', { name: project }) }).waitFor();
  assert.equal(await u.page.getByRole('combobox', { name: 'Project' }).inputValue(), pid);
});

test('identity pages are live: a user made through the API appears on the admin\'s Users tab, a key pair on the member\'s, without a reload', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const admin = await web.tab('admin', { password: web.cloud.adminPassword });
  await admin.page.goto(`${web.cloud.url}/#/identity?tab=users`);
  await admin.page.getByRole('form', { name: 'Create a user' }).waitFor();
  const m = await web.tab(member);
  await m.page.goto(`${web.cloud.url}/#/identity?tab=keypairs`);
  await m.page.getByRole('tab', { name: 'Key pairs', selected: true }).waitFor();
  for (const t of [admin, m]) await t.page.evaluate(() => { (window as any).__stratusMark = 1; });
  await admin.page.locator('.live.on').waitFor();
  await m.page.locator('.live.on').waitFor();

  const name = uniqueName('liveuser');
  const u = await web.cloud.call('POST', '/identity/v3/users', { token: web.cloud.adminToken, body: { user: { name, domain_id: 'default', password: 'live-pw-1' } } });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  await admin.page.getByRole('row').filter({ hasText: name }).waitFor();
  const token = await web.cloud.login(member, PASSWORD, projectId);
  const k = await web.cloud.call('POST', '/compute/v2.1/os-keypairs', { token, body: { keypair: { name: 'live-key' } } });
  assert.equal(k.status, 200, JSON.stringify(k.body));
  await m.page.getByRole('row').filter({ hasText: 'live-key' }).waitFor();
  for (const t of [admin, m]) assert.equal(await t.page.evaluate(() => (window as any).__stratusMark), 1);
  await web.cloud.call('DELETE', `/identity/v3/users/${u.body.user.id}`, { token: web.cloud.adminToken });
  await admin.page.getByRole('row').filter({ hasText: name }).waitFor({ state: 'detached' });
  assert.deepEqual([...admin.cspViolations, ...m.cspViolations], []);
});

test('a reader gets no admin tabs, and opening one anyway shows the API’s 403', { skip: skipUnlessRoot, timeout: 30_000 }, async () => {
  const t = await web.tab(reader);
  const { page } = t;
  await page.getByRole('link', { name: 'Identity' }).click();
  await page.getByRole('tab', { name: 'Application credentials' }).waitFor();
  for (const name of ['Projects', 'Users', 'Groups', 'Role assignments', 'Quotas']) assert.equal(await page.getByRole('tab', { name }).count(), 0, name);
  await page.goto(`${web.cloud.url}/#/identity?tab=projects`);
  await page.getByRole('alert').filter({ hasText: /not authorized|forbidden|403/i }).waitFor();
  assert.equal(await page.getByRole('form', { name: 'Create a project' }).count(), 0);
  await page.goto(`${web.cloud.url}/#/identity?tab=users`);
  await page.getByRole('alert').filter({ hasText: /not authorized|forbidden|403/i }).waitFor();
  assert.equal(await page.getByRole('form', { name: 'Create a user' }).count(), 0);
  await checkA11y(page, 'identity (reader)');
  await screenshot(page, 'reader-403');
});

test('a domain admin administers its domain through a domain-scoped token: the admin tabs but quotas', { skip: skipUnlessRoot, timeout: 30_000 }, async () => {
  const name = await makeUser(web.cloud, projectId, 'member', uniqueName('idomadmin'));
  const uid = (await web.cloud.call('GET', `/identity/v3/users?name=${name}`, { token: web.cloud.adminToken })).body.users[0].id;
  const roles = (await web.cloud.call('GET', '/identity/v3/roles', { token: web.cloud.adminToken })).body.roles as Array<{ id: string; name: string }>;
  const grant = await web.cloud.call('PUT', `/identity/v3/domains/default/users/${uid}/roles/${roles.find((r) => r.name === 'admin')!.id}`, { token: web.cloud.adminToken });
  assert.equal(grant.status, 204);
  const t = await web.tab(name);
  const { page } = t;
  await page.getByRole('link', { name: 'Identity' }).click();
  await page.getByRole('tab', { name: 'Users' }).click();
  await page.getByText('Administering domain Default.').waitFor();
  await page.getByRole('row').filter({ hasText: name }).waitFor();
  await page.getByRole('form', { name: 'Create a user' }).waitFor();
  assert.equal(await page.getByRole('tab', { name: 'Quotas' }).count(), 0);
});
