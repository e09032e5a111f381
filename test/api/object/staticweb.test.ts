// Static web sites over HTTP (Tempest's test_container_staticweb): anonymous
// reads of a public container with web-index, web-listings (and its CSS),
// web-error pages, pseudo-directories and the redirect to a trailing slash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { expectStatus, raw, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
const cloud = useCloud(async (c) => {
  s = await swiftTenant(c);
  expectStatus(await s.call('PUT', 'site', { headers: { 'X-Container-Read': '.r:*,.rlistings' } }), 201);
  expectStatus(await s.call('PUT', 'site/index.html', { body: '<h1>home</h1>', headers: { 'Content-Type': 'text/html' } }), 201);
  expectStatus(await s.call('PUT', 'site/docs/page.html', { body: 'page', headers: { 'Content-Type': 'text/html' } }), 201);
  expectStatus(await s.call('PUT', 'site/404error.html', { body: 'custom not found' }), 201);
});

test('web-index: /c redirects to /c/, which serves the index; authenticated callers get the API', async () => {
  expectStatus(await s.call('POST', 'site', { headers: { 'X-Container-Meta-Web-Index': 'index.html' } }), 204);
  const redirect = await raw(cloud, 'GET', `${s.account}/site`);
  expectStatus(redirect, 301);
  assert.equal(redirect.headers.get('location'), `${s.account}/site/`);
  const home = await raw(cloud, 'GET', `${s.account}/site/`);
  expectStatus(home, 200);
  assert.equal(home.text, '<h1>home</h1>');
  // fetch follows the redirect as Tempest's client does
  const followed = await fetch(`${cloud.url}${s.account}/site`);
  assert.equal(await followed.text(), '<h1>home</h1>');
  const api = await s.call('GET', 'site');
  assert.match(api.text, /index\.html/);
  expectStatus(await s.call('POST', 'site', { headers: { 'X-Container-Meta-Web-Index': '' } }), 204);
  assert.equal((await s.call('HEAD', 'site')).headers.get('x-container-meta-web-index'), null);
});

test('web-listings with CSS, pseudo-directories, web-error pages', async () => {
  expectStatus(await s.call('POST', 'site', { headers: { 'X-Container-Meta-Web-Listings': 'true', 'X-Container-Meta-Web-Listings-CSS': 'listings.css', 'X-Container-Meta-Web-Error': 'error.html' } }), 204);
  const list = await raw(cloud, 'GET', `${s.account}/site/`);
  expectStatus(list, 200);
  assert.match(list.headers.get('content-type')!, /text\/html/);
  assert.match(list.text, /index%2Ehtml/);
  assert.match(list.text, /<a href="\.\/docs\/">docs\/<\/a>/);
  assert.ok(list.text.includes('<link rel="stylesheet" type="text/css" href="listings.css" />'));
  const dir = await raw(cloud, 'GET', `${s.account}/site/docs/`);
  expectStatus(dir, 200);
  assert.match(dir.text, /page%2Ehtml/);
  assert.ok(dir.text.includes('href="../listings.css"'));
  expectStatus(await raw(cloud, 'GET', `${s.account}/site/docs`), 301);
  const missing = await raw(cloud, 'GET', `${s.account}/site/notexisting`);
  expectStatus(missing, 404);
  assert.equal(missing.text, 'custom not found');
  const page = await raw(cloud, 'GET', `${s.account}/site/docs/page.html`);
  assert.equal(page.text, 'page');
  // a private container is no web site for anonymous callers
  expectStatus(await s.call('PUT', 'private', { headers: { 'X-Container-Meta-Web-Listings': 'true' } }), 201);
  expectStatus(await raw(cloud, 'GET', `${s.account}/private/`), 401);
});
