// The dashboard's volumes in a real browser against a real Stratus whose
// in-process agent runs containers and serves volumes (a loop-mounted btrfs
// pool under its state dir; root): a member makes a volume (Cinder's refusal
// of a bad size shown in the form first), watches it become available without
// a reload, extends it, snapshots it, makes volumes from the snapshot and from
// an image, and deletes one after the confirmation; backs one up, restores
// it, sees a failed backup's reason; attaches the volume to a running
// container from the server's page and detaches it; launches a container with
// it attached at boot from the launch wizard; a reader sees the lists
// and none of the buttons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueName } from '../harness.ts';
import { skipUnlessRoot } from '../dataplane/lib.ts';
import { PASSWORD, browserSuite, checkA11y, makeProject, makeUser, screenshot } from './lib.ts';

let projectId = '';
let member = '';
let reader = '';
let serverId = '';
let bootServerId = '';
const skipNoQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64'))) ? false : 'qemu-system-x86_64 is not installed';

const web = browserSuite('volumes', {
  plane: { volume: true },
  async setup() {
    projectId = await makeProject(web.cloud, uniqueName('vol'));
    member = await makeUser(web.cloud, projectId, 'member', uniqueName('vmember'));
    reader = await makeUser(web.cloud, projectId, 'reader', uniqueName('vreader'));
    // a disk image a volume can be made from (bare raw)
    const img = await web.plane.api('POST', '/image/v2/images', { name: 'vol-disk', container_format: 'bare', disk_format: 'raw', visibility: 'public' });
    assert.equal(img.status, 201);
    const data = Buffer.alloc(1 << 20);
    data.write('stratus volume from image', 0);
    const up = await fetch(`${web.cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': web.plane.token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(data) });
    assert.equal(up.status, 204);
  },
});

async function volumes(token: string): Promise<any[]> {
  const r = await web.cloud.call('GET', '/volume/v3/volumes/detail', { token });
  assert.equal(r.status, 200);
  return r.body.volumes;
}

test('a member makes volumes (empty, from a snapshot, from an image), edits, extends, snapshots, uploads one to an image, backs one up and restores it, and deletes one, each change shown live', { skip: skipUnlessRoot, timeout: 180_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.getByRole('link', { name: 'Volumes' }).click();
  await page.getByRole('heading', { name: 'Volumes' }).waitFor();
  await page.evaluate(() => { (window as any).__stratusMark = 1; });
  const create = page.getByRole('form', { name: 'Create a volume' });
  // Cinder's own validation, in the form
  await create.getByLabel('Name').fill('web-vol');
  await create.getByLabel('Size (GiB)').fill('0');
  await create.getByRole('button', { name: 'Create' }).click();
  await create.getByRole('alert').filter({ hasText: /size/i }).waitFor();
  await screenshot(page, 'volume-size-refused');
  await create.getByLabel('Size (GiB)').fill('1');
  await create.getByRole('button', { name: 'Create' }).click();
  const row = page.getByRole('row').filter({ hasText: 'web-vol' });
  await row.getByText('available').waitFor({ timeout: 30_000 });
  await checkA11y(page, 'volumes');

  // extend, in a dialog: Cinder's refusal of a smaller size, then 2 GiB
  await row.getByRole('button', { name: 'Extend' }).click();
  const dialog = page.getByRole('dialog', { name: /Extend volume/ });
  await dialog.getByLabel('New size (GiB)').fill('1');
  await dialog.getByRole('button', { name: 'Extend' }).click();
  await dialog.getByRole('alert').filter({ hasText: /greater than current size/ }).waitFor();
  await dialog.getByLabel('New size (GiB)').fill('2');
  await dialog.getByRole('button', { name: 'Extend' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await row.getByRole('cell', { name: '2 GiB', exact: true }).waitFor({ timeout: 30_000 });
  await row.getByText('available').waitFor({ timeout: 30_000 });

  // a snapshot of it, then a volume from the snapshot
  const snap = page.getByRole('form', { name: 'Snapshot a volume' });
  await snap.getByLabel('Volume').selectOption({ label: 'web-vol (2 GiB)' });
  await snap.getByLabel('Snapshot name').fill('web-snap');
  await snap.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('tab', { name: 'Snapshots' }).click();
  await page.getByRole('row').filter({ hasText: 'web-snap' }).getByText('available').waitFor({ timeout: 30_000 });
  await checkA11y(page, 'snapshots');
  await screenshot(page, 'snapshots');
  // the snapshot's “Create volume” opens the create form with it as the source
  await page.getByRole('row').filter({ hasText: 'web-snap' }).getByRole('button', { name: 'Create volume' }).click();
  await create.waitFor();
  assert.equal(await create.getByLabel('A snapshot').isChecked(), true);
  assert.notEqual(await create.getByRole('combobox', { name: /^Snapshot/ }).inputValue(), '');
  await create.getByLabel('Name').fill('web-from-snap');
  await create.getByLabel('Size (GiB)').fill('');
  await create.getByRole('button', { name: 'Create' }).click();
  const copy = page.getByRole('row').filter({ hasText: 'web-from-snap' });
  await copy.getByText('available').waitFor({ timeout: 30_000 });
  await copy.getByRole('cell', { name: '2 GiB', exact: true }).waitFor();

  // a volume from an image: bootable, with the image's size
  await create.getByLabel('Name').fill('web-from-image');
  await create.getByLabel('Size (GiB)').fill('1');
  await create.getByLabel('An image').check();
  await create.getByRole('combobox', { name: /^Image/ }).selectOption({ label: 'vol-disk (raw)' });
  await create.getByRole('button', { name: 'Create' }).click();
  const fromImage = page.getByRole('row').filter({ hasText: 'web-from-image' });
  await fromImage.getByText('available').waitFor({ timeout: 30_000 });
  await fromImage.getByRole('cell', { name: 'yes', exact: true }).waitFor();
  // edit: a new name and description
  await fromImage.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit volume “web-from-image”' });
  await edit.getByLabel('Name').fill('web-image-vol');
  await edit.getByLabel('Description').fill('made from vol-disk');
  await edit.getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('row').filter({ hasText: 'web-image-vol' }).waitFor();
  const edited = (await volumes(await web.cloud.login(member, PASSWORD, projectId))).find((v) => v.name === 'web-image-vol');
  assert.equal(edited?.description, 'made from vol-disk');
  // its data to a new image (Cinder's os-volume_upload_image), the volume uploading then available again
  const imgRow = page.getByRole('row').filter({ hasText: 'web-image-vol' });
  await imgRow.getByRole('button', { name: 'Upload to image' }).click();
  const upload = page.getByRole('dialog', { name: /to an image/ });
  await upload.getByLabel('Image name').fill('web-vol-image');
  // QCOW2: a mostly empty 1 GiB volume makes a small image (raw would move the whole GiB)
  await upload.getByLabel('Disk format').selectOption('qcow2');
  await upload.getByRole('button', { name: 'Upload to image' }).click();
  await imgRow.getByRole('status').filter({ hasText: /is being filled from the volume/ }).waitFor();
  const memberToken = await web.cloud.login(member, PASSWORD, projectId);
  for (let i = 0; ; i++) {
    const images = (await web.cloud.call('GET', '/image/v2/images?name=web-vol-image', { token: memberToken })).body.images;
    if (images[0]?.status === 'active') break;
    assert.ok(i < 300, `the image is filled: ${JSON.stringify(images)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await imgRow.getByText('available').waitFor({ timeout: 30_000 });

  // a delete asks first; Cancel keeps it
  await copy.getByRole('button', { name: 'Delete' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete' });
  await confirm.getByText('Delete volume “web-from-snap”? Its data is lost.').waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await volumes(await web.cloud.login(member, PASSWORD, projectId))).length, 3);
  await copy.getByRole('button', { name: 'Delete' }).click();
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await copy.waitFor({ state: 'detached', timeout: 30_000 });
  // backups: a full backup of web-vol to the object store, shown live; an incremental one needs a full one first;
  // restored into a new volume of its size; deleted
  await page.getByRole('tab', { name: 'Backups' }).click();
  const backup = page.getByRole('form', { name: 'Back up a volume' });
  await backup.getByLabel('Volume').selectOption({ label: 'web-vol (2 GiB)' });
  assert.equal(await backup.getByLabel(/Incremental/).isDisabled(), true, 'no full backup to build on yet');
  await backup.getByLabel('Backup name').fill('nightly');
  await backup.getByRole('button', { name: 'Back up' }).click();
  const nightly = page.getByRole('row').filter({ hasText: 'nightly' });
  const backupOf = async () => (await web.cloud.call('GET', '/volume/v3/backups/detail', { token: await web.cloud.login(member, PASSWORD, projectId) })).body.backups.find((b: any) => b.name === 'nightly');
  for (let i = 0; (await backupOf())?.status !== 'available'; i++) {
    const b = await backupOf();
    assert.ok(i < 600 && b?.status !== 'error', `the backup becomes available: ${JSON.stringify(b)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await nightly.getByText('available').waitFor({ timeout: 10_000 });
  await nightly.getByRole('cell', { name: 'full', exact: true }).waitFor();
  await nightly.getByRole('button', { name: 'Restore' }).click();
  await page.getByRole('dialog', { name: 'Restore' }).getByRole('button', { name: 'Restore' }).click();
  const restoredVolume = async () => (await volumes(await web.cloud.login(member, PASSWORD, projectId))).find((v) => v.name === 'nightly-restored');
  for (let i = 0; !(await restoredVolume()) || (await restoredVolume()).status !== 'available'; i++) {
    assert.ok(i < 600, 'the restored volume becomes available');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await restoredVolume()).size, 2);
  // a backup that failed after its 202 says why (Cinder's fail_reason): the row made so, shown at the next write to it
  await web.cloud.server.database.db.updateTable('volume_backups' as never).set({ status: 'error', fail_reason: 'Chunk 3 as sent does not match its sha256.' } as never)
    .where('name' as never, '=', 'nightly' as never).execute();
  const touched = await web.cloud.call('PUT', `/volume/v3/backups/${(await backupOf()).id}`, {
    token: await web.cloud.login(member, PASSWORD, projectId), body: { backup: { description: 'failed' } }, headers: { 'OpenStack-API-Version': 'volume 3.9' },
  });
  assert.equal(touched.status, 200, JSON.stringify(touched.body));
  await nightly.getByText('Chunk 3 as sent does not match its sha256.').waitFor({ timeout: 10_000 });
  await nightly.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete' }).getByRole('button', { name: 'Delete' }).click();
  // Cinder deletes a backup's objects after its 202: the row shows it deleting (its status cell exactly: not
  // error_deleting; a row's text runs its cells together, so no word boundary sets the name apart), or is gone
  await nightly.getByRole('cell', { name: 'deleting', exact: true }).or(page.getByRole('cell', { name: 'Nothing here yet.' })).first().waitFor({ timeout: 30_000 });
  await page.getByRole('tab', { name: 'Volumes' }).click();
  await page.getByRole('row').filter({ hasText: 'nightly-restored' }).getByText('available').waitFor();
  await screenshot(page, 'volumes');
  assert.equal(await page.evaluate(() => (window as any).__stratusMark), 1, 'the page was not reloaded');
  assert.deepEqual(t.cspViolations, []);
});

test('a member attaches a volume to a running container from the server page and detaches it', { skip: skipUnlessRoot, timeout: 120_000 }, async () => {
  const token = await web.cloud.login(member, PASSWORD, projectId);
  const s = await web.cloud.call('POST', '/compute/v2.1/servers', { token, body: { server: { name: 'vol-host', imageRef: web.plane.imageId, flavorRef: web.plane.flavorId, networks: 'none' } }, headers: { 'X-OpenStack-Nova-API-Version': '2.79' } });
  assert.equal(s.status, 202, JSON.stringify(s.body));
  serverId = s.body.server.id;
  web.servers.push(serverId);
  await web.plane.waitStatus(serverId, ['ACTIVE']);
  const vol = (await volumes(token)).find((v) => v.name === 'web-vol');
  assert.ok(vol, 'the first test made web-vol');

  const t = await web.tab(member);
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.getByRole('heading', { name: 'vol-host' }).waitFor();
  await page.getByRole('tab', { name: 'Volumes' }).click();
  await page.getByText('No volumes attached.').waitFor();
  const attach = page.getByRole('form', { name: 'Attach a volume' });
  await attach.getByLabel('Volume').selectOption({ label: 'web-vol (2 GiB)' });
  await attach.getByRole('button', { name: 'Attach' }).click();
  const row = page.getByRole('row').filter({ hasText: 'web-vol' });
  await row.getByText('/dev/vdb').waitFor();
  // in use once the agent has given the container its block device: the event stream says so
  await row.getByText('in-use').waitFor({ timeout: 60_000 });
  const attached = (await volumes(token)).find((v) => v.id === vol.id);
  assert.deepEqual(attached.attachments.map((a: any) => [a.server_id, a.device]), [[serverId, '/dev/vdb']]);
  await checkA11y(page, 'server volumes');
  await screenshot(page, 'server-volume-attached');

  // the volumes list names the server, linked
  await page.getByRole('link', { name: 'Volumes' }).first().click();
  await page.getByRole('row').filter({ hasText: 'web-vol' }).getByRole('link', { name: 'vol-host' }).waitFor();
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.getByRole('tab', { name: 'Volumes' }).click();
  await page.getByRole('row').filter({ hasText: 'web-vol' }).getByRole('button', { name: 'Detach' }).click();
  await page.getByRole('dialog', { name: 'Detach' }).getByRole('button', { name: 'Detach' }).click();
  await page.getByText('No volumes attached.').waitFor({ timeout: 60_000 });
  for (let i = 0; ; i++) {
    const v = (await volumes(token)).find((x) => x.id === vol.id);
    if (v.status === 'available') break;
    assert.ok(i < 300, `the volume is available again: ${v.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await screenshot(page, 'server-volume-detached');
  assert.deepEqual(t.cspViolations, []);
});

test('the launch wizard attaches a volume at boot to a VM (a container gets volumes on its page)', { skip: skipUnlessRoot || skipNoQemu, timeout: 90_000 }, async () => {
  const t = await web.tab(member);
  const { page } = t;
  await page.goto(`${web.cloud.url}/#/servers/new`);
  const kinds = page.getByRole('group', { name: 'Kind' });
  await kinds.getByRole('radio', { name: 'Container' }).check();
  assert.equal(await page.getByRole('group', { name: 'Volumes to attach' }).count(), 0);
  assert.equal(await page.getByRole('combobox', { name: /^Root disk/ }).count(), 0);
  await kinds.getByRole('radio', { name: 'Virtual machine' }).check();
  await page.getByRole('combobox', { name: /^Root disk/ }).waitFor();
  await page.getByRole('group', { name: 'Volumes to attach' }).getByRole('checkbox', { name: 'web-vol (2 GiB)' }).check();
  await page.getByLabel('Name').fill('vol-boot');
  await page.getByRole('combobox', { name: 'Image', exact: true }).selectOption({ label: 'vol-disk (bare/raw)' });
  await page.getByRole('combobox', { name: 'Flavor', exact: true }).selectOption({ index: 1 });
  await checkA11y(page, 'launch with a volume');
  await page.getByRole('button', { name: 'Launch' }).click();
  await Promise.race([page.getByRole('heading', { name: 'vol-boot' }).waitFor(), page.getByRole('alert').waitFor().then(async () => assert.fail(await page.getByRole('alert').textContent() ?? ''))]);
  bootServerId = page.url().split('/servers/')[1]!;
  web.servers.push(bootServerId);
  await page.locator('.state .status', { hasText: 'ACTIVE' }).waitFor({ timeout: 60_000 });
  await page.getByRole('tab', { name: 'Volumes' }).click();
  await page.getByRole('row').filter({ hasText: 'web-vol' }).getByText('in-use').waitFor({ timeout: 30_000 });
  await screenshot(page, 'launched-with-volume');
  assert.deepEqual(t.cspViolations, []);
});

test('a reader (390 px wide, dark) sees the volumes and snapshots but no create, extend, delete, attach or detach', { skip: skipUnlessRoot, timeout: 60_000 }, async () => {
  const t = await web.tab(reader, { width: 390, dark: true });
  const { page } = t;
  await page.getByRole('link', { name: 'Volumes' }).click();
  await page.getByRole('row').filter({ hasText: 'web-vol' }).first().waitFor();
  await checkA11y(page, 'volumes (reader, 390 px, dark)');
  await screenshot(page, 'reader-volumes-390-dark');
  assert.equal(await page.getByRole('form').count(), 0);
  assert.equal(await page.getByRole('button', { name: /Edit|Extend|Upload|Delete/ }).count(), 0);
  await page.getByRole('tab', { name: 'Snapshots' }).click();
  await page.getByRole('row').filter({ hasText: 'web-snap' }).waitFor();
  assert.equal(await page.getByRole('button', { name: /Delete|Create volume/ }).count(), 0);
  await page.goto(`${web.cloud.url}/#/servers/${serverId}`);
  await page.getByRole('tab', { name: 'Volumes' }).click();
  await page.getByText('No volumes attached.').waitFor();
  assert.equal(await page.getByRole('form', { name: 'Attach a volume' }).count(), 0);
  await checkA11y(page, 'server volumes (reader)');
});
