// The dashboard's object storage browser in a real browser against a real
// Stratus: a member makes a container, uploads a file into a folder with the
// progress bar, walks into the folder, downloads the object, makes the
// container public (an anonymous client reads it) and private again, hands
// out a TempURL (an anonymous client reads through it), and sees Swift's
// refusal to delete a container that is not empty. A reader gets no buttons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { uniqueName } from '../harness.ts';
import { skipUnlessRoot } from '../dataplane/lib.ts';
import { pushImage, token as registryToken } from '../api/registry/lib.ts';
import { PASSWORD, browserSuite, checkA11y, makeProject, makeUser, screenshot } from './lib.ts';

let projectId = '';
let member = '';
let reader = '';
const BODY = 'hello object storage\n'.repeat(50_000);

const web = browserSuite('objects', {
  async setup() {
    projectId = await makeProject(web.cloud, uniqueName('obj'));
    member = await makeUser(web.cloud, projectId, 'member', uniqueName('omember'));
    reader = await makeUser(web.cloud, projectId, 'reader', uniqueName('oreader'));
  },
});

test('a member makes a container, uploads into a folder, downloads, makes it public and private, and hands out a TempURL', { skip: skipUnlessRoot, timeout: 90_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.getByRole('link', { name: 'Object storage' }).click();
  await page.getByRole('heading', { name: 'Object storage' }).waitFor();
  const cf = page.getByRole('form', { name: 'Create a container' });
  await cf.getByLabel('Name').fill('web-box');
  await cf.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('link', { name: 'web-box' }).click();
  await page.getByRole('heading', { name: 'web-box' }).waitFor();
  await page.getByRole('status').filter({ hasText: /^Private: only/ }).waitFor();

  const up = page.getByRole('form', { name: 'Upload an object' });
  await up.getByLabel('File', { exact: true }).setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from(BODY) });
  await up.getByLabel('Object name').fill('docs/hello.txt');
  await up.getByRole('button', { name: 'Upload' }).click();
  await up.getByText(/^100% of /).waitFor();
  // a folder, by the delimiter; into it
  await page.getByRole('link', { name: 'docs/' }).click();
  const row = page.getByRole('row').filter({ hasText: 'hello.txt' });
  await row.getByText('text/plain').waitFor();
  await page.getByRole('navigation', { name: 'Folder' }).getByRole('link', { name: 'docs' }).waitFor();
  await checkA11y(page, 'objects');
  await screenshot(page, 'objects-folder');

  // a name with markup, spaces, non-ASCII and URL delimiters: shown as text, stored under that name
  const odd = '<img src=x onerror=alert(1)> & ü #1?.txt';
  await up.getByLabel('File', { exact: true }).setInputFiles({ name: 'odd.txt', mimeType: 'text/plain', buffer: Buffer.from('odd') });
  await up.getByLabel('Object name').fill(odd);
  await up.getByRole('button', { name: 'Upload' }).click();
  const oddRow = page.getByRole('row').filter({ hasText: odd });
  await oddRow.waitFor();
  assert.equal(await page.locator('main img').count(), 0, 'the name is text, not markup');
  assert.deepEqual(t.dialogs, []);
  const [oddDl] = await Promise.all([page.waitForEvent('download'), oddRow.getByRole('button', { name: 'Download' }).click()]);
  assert.equal(readFileSync((await oddDl.path())!, 'utf8'), 'odd');
  const listed = await web.cloud.call('GET', `/object/v1/AUTH_${projectId}/web-box?format=json&prefix=docs/`, { token: await web.cloud.login(member, PASSWORD, projectId) });
  assert.deepEqual(listed.body.map((o: any) => o.name).sort(), [`docs/${odd}`, 'docs/hello.txt']);

  // download: the browser saves the object's bytes
  const [dl] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Download' }).click()]);
  assert.equal(dl.suggestedFilename(), 'hello.txt');
  await page.getByRole('status').filter({ hasText: /^100% of 1\.0 MiB$/ }).waitFor();
  assert.equal(await page.locator('.download progress').getAttribute('value'), String(BODY.length));
  assert.equal(readFileSync((await dl.path())!, 'utf8'), BODY);

  const url = `${web.cloud.url}/object/v1/AUTH_${projectId}/web-box/docs/hello.txt`;
  assert.equal((await fetch(url)).status, 401, 'private: no anonymous read');
  await page.getByRole('button', { name: 'Make public' }).click();
  await page.getByRole('dialog', { name: 'Make public' }).getByRole('button', { name: 'Make public' }).click();
  await page.getByRole('status').filter({ hasText: /^Public: anyone can read/ }).waitFor();
  const anon = await fetch(url);
  assert.equal(anon.status, 200);
  assert.equal(await anon.text(), BODY);
  await page.getByRole('button', { name: 'Make private' }).click();
  await page.getByRole('dialog', { name: 'Make private' }).getByRole('button', { name: 'Make private' }).click();
  // the state's own text (the status once held the toggle too, whose “Make private” matched at once, before the change was sent)
  await page.getByRole('status').filter({ hasText: /^Private: only/ }).waitFor();
  assert.equal((await fetch(url)).status, 401);

  // a TempURL reads it without a token
  await row.getByRole('button', { name: 'TempURL' }).click();
  const temp = await row.getByLabel('TempURL of docs/hello.txt').inputValue();
  assert.match(temp, /temp_url_sig=[0-9a-f]{64}&temp_url_expires=\d+$/);
  const viaTemp = await fetch(temp);
  assert.equal(viaTemp.status, 200);
  assert.equal(await viaTemp.text(), BODY);
  await screenshot(page, 'objects-tempurl');

  // Swift will not delete a container with objects in it; the page says why
  await page.getByRole('link', { name: 'All containers' }).click();
  const box = page.getByRole('row').filter({ hasText: 'web-box' });
  await box.getByRole('cell', { name: '2', exact: true }).waitFor();
  await box.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete' });
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await dialog.getByRole('alert').waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.deepEqual(t.cspViolations, []);
});

test('the registry tab lists the project\'s repositories and tags with their podman pull line, and makes one public and private', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const project = (await web.cloud.call('GET', `/identity/v3/projects/${projectId}`, { token: web.cloud.adminToken })).body.project.name as string;
  const repo = `${project}/web-app`;
  const t0 = await registryToken(web.cloud, [`repository:${repo}:push,pull`], { user: member, secret: PASSWORD });
  await pushImage(web.cloud, t0, repo, 'v1');
  await pushImage(web.cloud, t0, repo, 'latest');
  const t = await web.tab(member);
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/objects?tab=registry`);
  const host = new URL(web.cloud.url).host;
  // the test's server speaks plain HTTP: podman is told so
  await page.getByText(`podman pull --tls-verify=false ${host}/${repo}:v1`).waitFor();
  await page.getByText(`podman pull --tls-verify=false ${host}/${repo}:latest`).waitFor();
  // public: anyone pulls it without logging in; private again: 401
  const manifest = `${web.cloud.url}/v2/${repo}/manifests/v1`;
  const accept = { Accept: 'application/vnd.oci.image.manifest.v1+json' };
  assert.equal((await fetch(manifest, { headers: accept })).status, 401);
  const row = page.getByRole('row').filter({ hasText: repo });
  await row.getByRole('button', { name: 'Make public' }).click();
  await page.getByRole('dialog', { name: 'Make public' }).getByRole('button', { name: 'Make public' }).click();
  await row.getByText('public: anyone may pull').waitFor();
  assert.equal((await fetch(manifest, { headers: accept })).status, 200);
  await row.getByRole('button', { name: 'Make private' }).click();
  await page.getByRole('dialog', { name: 'Make private' }).getByRole('button', { name: 'Make private' }).click();
  await row.getByText('private', { exact: true }).waitFor();
  assert.equal((await fetch(manifest, { headers: accept })).status, 401);
  await checkA11y(page, 'registry');
  await screenshot(page, 'registry');
});

test('a reader browses the objects and the registry but gets no upload, delete, public or TempURL buttons', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(reader);
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/objects?container=web-box&prefix=docs%2F`);
  await page.getByRole('row').filter({ hasText: 'hello.txt' }).getByRole('button', { name: 'Download' }).waitFor();
  assert.equal(await page.getByRole('form').count(), 0);
  assert.equal(await page.getByRole('button', { name: /Delete|TempURL|Make public|Make private/ }).count(), 0);
  await checkA11y(page, 'objects (reader)');
  await page.goto(`${web.cloud.url}/#/objects?tab=registry`);
  await page.getByText(/podman pull .*web-app:v1/).waitFor();
  assert.equal(await page.getByRole('button', { name: /Make public|Make private/ }).count(), 0);
});
