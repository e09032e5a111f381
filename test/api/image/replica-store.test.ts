// The image store of several replicas: a configured directory (--image-dir,
// shared storage in a cloud of several replicas), and the answer of a replica
// whose store lacks the data an image's record says it has (the directory not
// shared, or the file lost): a 503 in Glance's error body, for the Glance
// download and for the agents' download alike, never an empty 204 or a 500.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useCloud } from '../../harness.ts';
import { AGENT_TOKEN_HEADER } from '../../../src/fleet/protocol.ts';

const imageDir = mkdtempSync(join(tmpdir(), 'stratus-image-dir-'));
after(() => rmSync(imageDir, { recursive: true, force: true }));
const cloud = useCloud(undefined, { imageDir });

async function activeImage(bytes: string): Promise<string> {
  const c = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'r', disk_format: 'raw', container_format: 'bare' } });
  assert.equal(c.status, 201);
  const up = await fetch(`${cloud.url}/image/v2/images/${c.body.id}/file`, {
    method: 'PUT', headers: { 'x-auth-token': cloud.adminToken, 'content-type': 'application/octet-stream' }, body: bytes,
  });
  assert.equal(up.status, 204, await up.text());
  return c.body.id as string;
}

test('image bytes go to the configured image directory, not DATA_DIR/images', async () => {
  const id = await activeImage('in the shared directory');
  assert.equal(readFileSync(join(imageDir, id), 'utf8'), 'in the shared directory');
  assert.ok(!existsSync(join(cloud.dataDir, 'images', id)));
  const r = await fetch(`${cloud.url}/image/v2/images/${id}/file`, { headers: { 'x-auth-token': cloud.adminToken } });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'in the shared directory');
});

test('an active image whose data is not in this replica\'s store: 503 with Glance\'s error body, for users and agents', async () => {
  const id = await activeImage('about to go missing');
  rmSync(join(imageDir, id));
  const r = await cloud.call('GET', `/image/v2/images/${id}/file`, { token: cloud.adminToken });
  assert.equal(r.status, 503);
  assert.equal(r.body.code, '503 Service Unavailable');
  assert.match(r.body.message, /not in this replica's image store/);
  const agentToken = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  const a = await fetch(`${cloud.url}/agent/v1/images/${id}/file`, { headers: { [AGENT_TOKEN_HEADER]: agentToken } });
  assert.equal(a.status, 503, 'the agent hears a transient failure it may take to another replica');
  assert.match(await a.text(), /not in this replica's image store/);
  // an image with no data yet still answers Glance's 204
  const q = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'q', disk_format: 'raw', container_format: 'bare' } });
  assert.equal((await cloud.call('GET', `/image/v2/images/${q.body.id}/file`, { token: cloud.adminToken })).status, 204);
});

test('the agent token the server writes to DATA_DIR/agent-token is the one kept in the database', async () => {
  const row = await cloud.server.database.db.selectFrom('fleet_secrets').select('secret').where('name', '=', 'agent-token').executeTakeFirstOrThrow();
  assert.equal(readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim(), row.secret);
});
