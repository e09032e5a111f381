// Swift symlinks over HTTP, as Swift's symlink middleware: links followed on
// GET/HEAD (Content-Location, chains up to symloop_max, the target's access
// checked), ?symlink=get, static links (X-Symlink-Target-Etag), POST's 307,
// COPY of the target or of the link, JSON listings' symlink_path, /info.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { useCloud } from '../../harness.ts';
import { expectStatus, hmacHex, raw, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
let other: Swift;
const md5 = (t: string) => createHash('md5').update(t).digest('hex');
const EMPTY_MD5 = md5('');

const cloud = useCloud(async (c) => {
  s = await swiftTenant(c);
  other = await swiftTenant(c);
  for (const name of ['ln', 'tg', 'priv']) expectStatus(await s.call('PUT', name), 201);
  expectStatus(await s.call('PUT', 'tg/obj', { body: 'target bytes', headers: { 'Content-Type': 'text/x-target', 'X-Object-Meta-Color': 'blue' } }), 201);
});

test('a link is followed on GET and HEAD; ?symlink=get answers the link itself', async () => {
  const put = await s.call('PUT', 'ln/a', { body: Buffer.alloc(0), headers: { 'X-Symlink-Target': 'tg/obj' } });
  expectStatus(put, 201);
  assert.equal(put.headers.get('etag'), EMPTY_MD5);
  const get = await s.call('GET', 'ln/a');
  expectStatus(get, 200);
  assert.equal(get.text, 'target bytes');
  assert.equal(get.headers.get('content-type'), 'text/x-target');
  assert.equal(get.headers.get('x-object-meta-color'), 'blue');
  assert.equal(get.headers.get('content-location'), `${s.account}/tg/obj`);
  const ranged = await s.call('GET', 'ln/a', { headers: { Range: 'bytes=0-5' } });
  expectStatus(ranged, 206);
  assert.equal(ranged.text, 'target');
  const head = await s.call('HEAD', 'ln/a');
  expectStatus(head, 200);
  assert.equal(head.headers.get('content-length'), '12');
  const self = await s.call('GET', 'ln/a?symlink=get');
  expectStatus(self, 200);
  assert.equal(self.text, '');
  assert.equal(self.headers.get('x-symlink-target'), 'tg/obj');
  assert.equal(self.headers.get('content-type'), 'application/symlink');
  assert.equal(self.headers.get('content-location'), null);
  // a dangling link: 404 naming the target
  expectStatus(await s.call('PUT', 'ln/dangling', { headers: { 'X-Symlink-Target': 'tg/none', 'Content-Length': '0' } }), 201);
  const gone = await s.call('GET', 'ln/dangling');
  expectStatus(gone, 404);
  assert.equal(gone.headers.get('content-location'), `${s.account}/tg/none`);
  expectStatus(await s.call('GET', 'ln/dangling?symlink=get'), 200);
  // DELETE removes the link only
  expectStatus(await s.call('DELETE', 'ln/dangling'), 204);
  expectStatus(await s.call('GET', 'tg/obj'), 200);
});

test('chains are followed up to symloop_max (2), then 409', async () => {
  expectStatus(await s.call('PUT', 'ln/c1', { body: '', headers: { 'X-Symlink-Target': 'ln/c2' } }), 201);
  expectStatus(await s.call('PUT', 'ln/c2', { body: '', headers: { 'X-Symlink-Target': 'ln/c3' } }), 201);
  expectStatus(await s.call('PUT', 'ln/c3', { body: '', headers: { 'X-Symlink-Target': 'tg/obj' } }), 201);
  const two = await s.call('GET', 'ln/c2');
  expectStatus(two, 200);
  assert.equal(two.text, 'target bytes');
  assert.equal(two.headers.get('content-location'), `${s.account}/tg/obj`);
  const three = await s.call('GET', 'ln/c1');
  expectStatus(three, 409);
  assert.equal(three.text, 'Too many levels of symbolic links, maximum allowed is 2');
});

test('bad links: a body, a bad target, itself, POST with a target, bad etag format', async () => {
  const body = await s.call('PUT', 'ln/b', { body: 'x', headers: { 'X-Symlink-Target': 'tg/obj' } });
  expectStatus(body, 400);
  assert.equal(body.text, 'Symlink requests require a zero byte body');
  for (const t of ['/tg/obj', 'tg', 'tg/', '%2Ftg%2Fobj']) {
    const r = await s.call('PUT', 'ln/b', { body: '', headers: { 'X-Symlink-Target': t } });
    expectStatus(r, 412, t);
    assert.equal(r.text, 'X-Symlink-Target header must be of the form <container name>/<object name>');
  }
  const itself = await s.call('PUT', 'ln/b', { body: '', headers: { 'X-Symlink-Target': 'ln/b' } });
  expectStatus(itself, 400);
  assert.equal(itself.text, 'Symlink cannot target itself');
  expectStatus(await s.call('PUT', 'ln/b', { body: '', headers: { 'X-Symlink-Target': 'tg/obj', 'X-Symlink-Target-Account': 'a/b' } }), 412);
  expectStatus(await s.call('PUT', 'ln/b', { body: '', headers: { 'X-Symlink-Target': 'tg/obj', 'X-Symlink-Target-Etag': 'a;b' } }), 400);
  const post = await s.call('POST', 'tg/obj', { headers: { 'X-Symlink-Target': 'tg/x' } });
  expectStatus(post, 400);
  assert.equal(post.text, 'A PUT request is required to set a symlink target');
  expectStatus(await s.call('GET', 'ln/b'), 404);
});

test('POST to a link applies to the link and answers 307 with the target', async () => {
  expectStatus(await s.call('PUT', 'ln/p', { body: '', headers: { 'X-Symlink-Target': 'tg/obj' } }), 201);
  const r = await s.call('POST', 'ln/p', { headers: { 'X-Object-Meta-Note': 'on-link' } });
  expectStatus(r, 307);
  assert.equal(r.headers.get('location'), `${s.account}/tg/obj`);
  const link = await s.call('HEAD', 'ln/p?symlink=get');
  assert.equal(link.headers.get('x-object-meta-note'), 'on-link');
  assert.equal(link.headers.get('x-symlink-target'), 'tg/obj');
  const target = await s.call('HEAD', 'tg/obj');
  assert.equal(target.headers.get('x-object-meta-note'), null);
});

test('static links: checked when made and when read', async () => {
  const etag = md5('target bytes');
  const missing = await s.call('PUT', 'ln/s', { body: '', headers: { 'X-Symlink-Target': 'tg/nothing', 'X-Symlink-Target-Etag': etag } });
  expectStatus(missing, 409);
  assert.equal(missing.text, 'X-Symlink-Target does not exist');
  const wrong = await s.call('PUT', 'ln/s', { body: '', headers: { 'X-Symlink-Target': 'tg/obj', 'X-Symlink-Target-Etag': md5('other') } });
  expectStatus(wrong, 409);
  assert.match(wrong.text, /^Object Etag '[0-9a-f]{32}' does not match X-Symlink-Target-Etag header '[0-9a-f]{32}'$/);
  expectStatus(await s.call('PUT', 'tg/st', { body: 'static one', headers: { 'Content-Type': 'text/x-static' } }), 201);
  const ok = await s.call('PUT', 'ln/s', { body: Buffer.alloc(0), headers: { 'X-Symlink-Target': 'tg/st', 'X-Symlink-Target-Etag': `"${md5('static one')}"` } });
  expectStatus(ok, 201);
  const self = await s.call('HEAD', 'ln/s?symlink=get');
  assert.equal(self.headers.get('x-symlink-target-etag'), md5('static one'));
  assert.equal(self.headers.get('x-symlink-target-bytes'), '10');
  assert.equal(self.headers.get('content-type'), 'text/x-static');
  expectStatus(await s.call('GET', 'ln/s'), 200);
  // the listing shows the link's target
  const list = await s.call('GET', 'ln?format=json&prefix=s');
  const entry = JSON.parse(list.text)[0];
  assert.equal(entry.symlink_path, `${s.account}/tg/st`);
  assert.equal(entry.symlink_etag, md5('static one'));
  assert.equal(entry.symlink_bytes, 10);
  assert.equal(entry.hash, EMPTY_MD5);
  // the target replaced: the static link refuses it
  expectStatus(await s.call('PUT', 'tg/st', { body: 'changed' }), 201);
  const changed = await s.call('GET', 'ln/s');
  expectStatus(changed, 409);
  assert.equal(changed.headers.get('content-location'), `${s.account}/tg/st`);
  // a static link to a soft link is refused (its own etag is the empty object's)
  const toSoft = await s.call('PUT', 'ln/s2', { body: '', headers: { 'X-Symlink-Target': 'ln/a', 'X-Symlink-Target-Etag': md5('target bytes') } });
  expectStatus(toSoft, 409);
});

test('COPY copies the target; with ?symlink=get the link', async () => {
  expectStatus(await s.call('PUT', 'ln/cp', { body: '', headers: { 'X-Symlink-Target': 'tg/obj' } }), 201);
  expectStatus(await s.call('COPY', 'ln/cp', { headers: { Destination: 'tg/copied' } }), 201);
  const copied = await s.call('GET', 'tg/copied?symlink=get');
  assert.equal(copied.text, 'target bytes');
  assert.equal(copied.headers.get('x-symlink-target'), null);
  expectStatus(await s.call('PUT', 'ln/cp2?symlink=get', { headers: { 'X-Copy-From': 'ln/cp', 'Content-Length': '0' } }), 201);
  const link = await s.call('GET', 'ln/cp2?symlink=get');
  assert.equal(link.headers.get('x-symlink-target'), 'tg/obj');
  assert.equal((await s.call('GET', 'ln/cp2')).text, 'target bytes');
});

test('access: the target container is checked as the caller reads it; cross-account links', async () => {
  // the other tenant may read 'ln' but not 'priv'
  expectStatus(await s.call('POST', 'ln', { headers: { 'X-Container-Read': '.r:*' } }), 204);
  expectStatus(await s.call('PUT', 'priv/secret', { body: 'secret' }), 201);
  expectStatus(await s.call('PUT', 'ln/to-priv', { body: '', headers: { 'X-Symlink-Target': 'priv/secret' } }), 201);
  expectStatus(await s.call('GET', 'ln/to-priv', { anon: true }), 401);
  expectStatus(await s.call('GET', 'ln/to-priv', { token: other.t.token }), 403);
  expectStatus(await s.call('GET', 'ln/to-priv'), 200);
  // a link in another account pointing into this one
  expectStatus(await other.call('PUT', 'mine'), 201);
  const acct = s.account.split('/').pop()!;
  expectStatus(await other.call('PUT', 'mine/x', { body: '', headers: { 'X-Symlink-Target': 'tg/obj', 'X-Symlink-Target-Account': acct } }), 201);
  expectStatus(await other.call('GET', 'mine/x'), 403);
  const own = await s.call('GET', `${other.account}/mine/x`);
  expectStatus(own, 403);
  expectStatus(await s.call('POST', 'tg', { headers: { 'X-Container-Read': `${other.t.projectId}:*` } }), 204);
  const cross = await other.call('GET', 'mine/x');
  expectStatus(cross, 200);
  assert.equal(cross.text, 'target bytes');
  assert.equal(cross.headers.get('content-location'), `${s.account}/tg/obj`);
});

test('a container TempURL does not reach a link target in another container', async () => {
  expectStatus(await s.call('POST', 'ln', { headers: { 'X-Container-Meta-Temp-URL-Key': 'k' } }), 204);
  expectStatus(await s.call('PUT', 'ln/inner', { body: 'inner' }), 201);
  expectStatus(await s.call('PUT', 'ln/to-inner', { body: '', headers: { 'X-Symlink-Target': 'ln/inner' } }), 201);
  const sign = (obj: string) => {
    const expires = Math.floor(Date.now() / 1000) + 600;
    const path = `${s.account.replace('/object', '')}/ln/${obj}`;
    return `ln/${obj}?temp_url_sig=${hmacHex('sha256', 'k', `GET\n${expires}\n${path}`)}&temp_url_expires=${expires}`;
  };
  const inside = await raw(cloud, 'GET', `${s.account}/${sign('to-inner')}`);
  expectStatus(inside, 200);
  assert.equal(inside.text, 'inner');
  expectStatus(await raw(cloud, 'GET', `${s.account}/${sign('a')}`), 401);
});

test('/info announces symlinks', async () => {
  const r = await raw(cloud, 'GET', '/object/info');
  assert.deepEqual(JSON.parse(r.text).symlink, { symloop_max: 2, static_links: true });
});
