// /object/info (Swift's discoverability), /object/crossdomain.xml and
// /object/healthcheck as Tempest reads them: public, Swift's shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { expectStatus, raw } from './middleware-lib.ts';

const cloud = useCloud();

test('GET /object/info: the swift section with its constraints, and one section per feature on', async () => {
  const r = await raw(cloud, 'GET', '/object/info');
  expectStatus(r, 200);
  assert.match(r.headers.get('content-type')!, /^application\/json/);
  const info = JSON.parse(r.text);
  assert.equal(info.swift.max_file_size, 5368709122);
  assert.equal(info.swift.container_listing_limit, 10000);
  assert.deepEqual(info.swift.valid_api_versions, ['v1', 'v1.0']);
  assert.ok(info.swift.version);
  assert.deepEqual(info.tempurl.methods, ['GET', 'HEAD', 'PUT', 'POST', 'DELETE']);
  for (const s of ['formpost', 'slo', 'bulk_delete', 'bulk_upload', 'versioned_writes', 'object_versioning', 'container_quotas', 'account_quotas', 'staticweb', 'crossdomain']) {
    assert.ok(info[s], s);
  }
  const cors = await raw(cloud, 'GET', '/object/info', { headers: { Origin: 'http://example.com' } });
  assert.equal(cors.headers.get('access-control-allow-origin'), 'http://example.com');
  expectStatus(await raw(cloud, 'HEAD', '/object/info'), 200);
});

test('crossdomain.xml and healthcheck', async () => {
  const x = await raw(cloud, 'GET', '/object/crossdomain.xml');
  expectStatus(x, 200);
  assert.ok(x.text.startsWith('<?xml version="1.0"?>\n<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd" >\n<cross-domain-policy>\n'));
  assert.ok(x.text.endsWith('</cross-domain-policy>'));
  const h = await raw(cloud, 'GET', '/object/healthcheck');
  expectStatus(h, 200);
  assert.equal(h.text, 'OK');
});
