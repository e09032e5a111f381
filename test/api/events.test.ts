// The resource event stream (/events/v1/stream, docs/events.md): Server-Sent
// Events scoped by the token, carrying servers' changes from the API's writes
// and from a host's reports; replay with Last-Event-ID; the catalog names it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../harness.ts';
import { adminNova, agentCall, projectUser, simulatedHost, dockerArchive, type Nova, type SimulatedHost } from './compute/lib.ts';

let admin: Nova;
let alice: Nova;
let bob: Nova;
let imageId: string;
let flavorId: string;
let host: SimulatedHost;

const cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c, ['member']);
  bob = await projectUser(c, ['member']);
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'ev', container_format: 'docker', disk_format: 'raw', visibility: 'public' } });
  imageId = img.body.id;
  const up = await fetch(`${c.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(dockerArchive()) });
  assert.equal(up.status, 204);
  flavorId = (await admin.call('GET', '/flavors')).body.flavors[0].id;
  host = await simulatedHost(c, 'ev-host-1');
});

interface Ev { seq: number; type: string; id: string; project_id: string | null; user_id?: string; domain_id?: string; action: string; status: string; name: string; detail: Record<string, unknown> }

/** An open stream: the events received so far, a wait for one matching, and close. */
async function stream(token: string | null, headers: Record<string, string> = {}, query = '') {
  const ctl = new AbortController();
  const r = await fetch(`${cloud.url}/events/v1/stream${query}`, { headers: { ...(token ? { 'X-Auth-Token': token } : {}), Accept: 'text/event-stream', ...headers }, signal: ctl.signal });
  const events: Ev[] = [];
  const waiters: Array<() => void> = [];
  let raw = '';
  if (r.ok) {
    void (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of r.body! as unknown as AsyncIterable<Uint8Array>) {
          raw += dec.decode(chunk, { stream: true });
          let end: number;
          while ((end = raw.indexOf('\n\n')) >= 0) {
            const block = raw.slice(0, end);
            raw = raw.slice(end + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
            if (block.includes('event: resource') && data) events.push(JSON.parse(data));
            for (const w of waiters.splice(0)) w();
          }
        }
      } catch { /* aborted */ }
    })();
  }
  return {
    response: r, events,
    async until(pred: (e: Ev) => boolean, ms = 5000): Promise<Ev> {
      const t0 = Date.now();
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() - t0 > ms) assert.fail(`no such event; got ${JSON.stringify(events)}`);
        await new Promise<void>((res) => {
          waiters.push(res);
          setTimeout(res, 100);
        });
      }
    },
    close: () => ctl.abort(),
  };
}

test('no token: 401 in the service\'s error body; a bad Last-Event-ID: 400', async () => {
  const s = await stream(null);
  assert.equal(s.response.status, 401);
  assert.equal((await s.response.json()).error.code, 401);
  const b = await stream(alice.token, { 'Last-Event-ID': 'x' });
  assert.equal(b.response.status, 400);
});

test('the catalog names the event stream; its version document', async () => {
  const r = await cloud.call('GET', '/identity/v3/auth/catalog', { token: alice.token });
  const ep = r.body.catalog.find((e: { type: string }) => e.type === 'events');
  assert.ok(ep, 'an events entry');
  assert.match(ep.endpoints[0].url, /\/events\/v1$/);
  const v = await cloud.call('GET', '/events/v1', { token: alice.token });
  assert.equal(v.status, 200);
  assert.equal(v.body.version.id, 'v1');
});

test('a server\'s life on the stream: created, placed, ACTIVE from the host\'s report, deleted; scoped by project, all for the admin', async () => {
  const a = await stream(alice.token);
  const b = await stream(bob.token);
  const adm = await stream(admin.token, {}, '?types=server');
  assert.equal(a.response.status, 200);
  assert.match(a.response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const c = await alice.call('POST', '/servers', { body: { server: { name: 'ev-<b>1</b>', imageRef: imageId, flavorRef: flavorId, networks: 'none' } }, version: '2.79' });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const id = c.body.server.id as string;
  const created = await a.until((e) => e.id === id && e.action === 'created');
  assert.deepEqual({ type: created.type, project_id: created.project_id, status: created.status, name: created.name }, { type: 'server', project_id: alice.projectId, status: 'BUILD', name: 'ev-<b>1</b>' });
  await adm.until((e) => e.id === id && e.action === 'created');
  // the scheduler places it on the simulated host; the host reports it running
  for (let i = 0; i < 50 && !(await host.watch()).servers.has(id); i++) await new Promise((r) => setTimeout(r, 100));
  await host.report(id, 'active', 1);
  const active = await a.until((e) => e.id === id && e.status === 'ACTIVE');
  assert.equal(active.action, 'updated');
  assert.equal(active.detail.task_state, null);
  // an action: the task on the stream
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { 'os-stop': null } })).status, 202);
  await a.until((e) => e.id === id && e.detail.task_state === 'powering-off');
  await host.report(id, 'stopped', 4);
  await a.until((e) => e.id === id && e.status === 'SHUTOFF');
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
  await a.until((e) => e.id === id && e.detail.task_state === 'deleting');
  // gone once the host no longer lists it
  const r = await agentCall(cloud, 'POST', 'ev-host-1/report', {
    resources: [{ kind: 'server', id, version: (await host.watch()).servers.get(id)!.version, observed: { state: 'deleted', power_state: 0 } }],
  });
  assert.equal(r.status, 200, await r.text());
  await a.until((e) => e.id === id && e.action === 'deleted' && e.status === 'DELETED');
  // bob saw none of it; the admin saw it all
  assert.deepEqual(b.events.filter((e) => e.id === id), []);
  await adm.until((e) => e.id === id && e.action === 'deleted');
  // a client reconnecting with Last-Event-ID gets what it missed, in order
  const again = await stream(alice.token, { 'Last-Event-ID': String(created.seq) });
  const replayed = await again.until((e) => e.id === id && e.action === 'deleted');
  assert.ok(again.events.every((e) => e.seq > created.seq));
  assert.ok(replayed.seq > active.seq);
  for (const s of [a, b, adm, again]) s.close();
});

test('`stratus events` prints the same stream, from the OS_* credentials', async () => {
  const { spawn } = await import('node:child_process');
  const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', cli, 'events', '--types', 'server,keypair'], {
    env: { ...process.env, OS_AUTH_URL: `${cloud.url}/identity/v3`, OS_TOKEN: alice.token, OS_PROJECT_ID: alice.projectId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d; });
  child.stderr.on('data', (d: Buffer) => { err += d; });
  try {
    // the stream is open once the server counts a subscriber; until then, creates go unseen: retry
    let id = '';
    for (let i = 0; i < 50 && !out.includes('created'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      if (i % 10 === 5) {
        const c = await alice.call('POST', '/servers', { body: { server: { name: `cli-${i}`, imageRef: imageId, flavorRef: flavorId, networks: 'none' } }, version: '2.79' });
        assert.equal(c.status, 202, JSON.stringify(c.body));
        id = c.body.server.id;
      }
    }
    assert.match(out, new RegExp(`created server ${id} BUILD`), `stdout: ${out}\nstderr: ${err}`);
    assert.match(out, /project=/);
    // an event of a user's own resource names the user
    assert.equal((await alice.call('POST', '/os-keypairs', { body: { keypair: { name: 'cli-key' } } })).status, 200);
    for (let i = 0; i < 50 && !out.includes('cli-key'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, new RegExp(`created keypair cli-key - "cli-key" project=- user=${alice.userId}\n`), `stdout: ${out}`);
    assert.equal((await alice.call('DELETE', '/os-keypairs/cli-key')).status, 202);
  } finally {
    child.kill('SIGTERM');
  }
});

test('networks, subnets, routers, images and volumes made and deleted through their APIs are on the stream', async () => {
  const a = await stream(alice.token);
  const b = await stream(bob.token);
  const call = (method: string, path: string, body?: unknown) => cloud.call(method, path, { token: alice.token, body });
  const n = await call('POST', '/network/v2.0/networks', { network: { name: 'ev-net' } });
  assert.equal(n.status, 201);
  const netId = n.body.network.id;
  const e = await a.until((x) => x.id === netId && x.action === 'created');
  assert.deepEqual({ type: e.type, project_id: e.project_id, name: e.name, status: e.status }, { type: 'network', project_id: alice.projectId, name: 'ev-net', status: 'ACTIVE' });
  const s = await call('POST', '/network/v2.0/subnets', { subnet: { network_id: netId, cidr: '10.9.0.0/24', ip_version: 4, name: 'ev-sub' } });
  assert.equal(s.status, 201);
  await a.until((x) => x.id === s.body.subnet.id && x.type === 'subnet' && x.action === 'created');
  const r = await call('POST', '/network/v2.0/routers', { router: { name: 'ev-r' } });
  await a.until((x) => x.id === r.body.router.id && x.type === 'router');
  assert.equal((await call('PUT', `/network/v2.0/routers/${r.body.router.id}/add_router_interface`, { subnet_id: s.body.subnet.id })).status, 200);
  await a.until((x) => x.id === r.body.router.id && x.action === 'updated');
  assert.equal((await call('PUT', `/network/v2.0/routers/${r.body.router.id}/remove_router_interface`, { subnet_id: s.body.subnet.id })).status, 200);
  assert.equal((await call('DELETE', `/network/v2.0/routers/${r.body.router.id}`)).status, 204);
  assert.equal((await call('DELETE', `/network/v2.0/networks/${netId}`)).status, 204);
  const gone = await a.until((x) => x.id === netId && x.action === 'deleted');
  assert.equal(gone.project_id, alice.projectId);
  const img = await call('POST', '/image/v2/images', { name: 'ev-img', container_format: 'bare', disk_format: 'raw' });
  assert.equal(img.status, 201);
  const ie = await a.until((x) => x.id === img.body.id && x.type === 'image');
  assert.equal(ie.status, 'queued');
  assert.equal((await call('DELETE', `/image/v2/images/${img.body.id}`)).status, 204);
  await a.until((x) => x.id === img.body.id && x.action === 'deleted');
  const v = await call('POST', `/volume/v3/${alice.projectId}/volumes`, { volume: { size: 1, name: 'ev-vol' } });
  assert.equal(v.status, 202, JSON.stringify(v.body));
  await a.until((x) => x.id === v.body.volume.id && x.type === 'volume' && x.action === 'created');
  // bob heard nothing of alice's resources
  assert.deepEqual(b.events.filter((x) => x.project_id === alice.projectId), []);
  a.close();
  b.close();
});

test('a volume attached through Nova is on the stream with the status the attachment gives it', async () => {
  const a = await stream(alice.token, {}, '?types=volume');
  const v = await cloud.call('POST', `/volume/v3/${alice.projectId}/volumes`, { token: alice.token, body: { volume: { size: 1, name: 'ev-att' } } });
  assert.equal(v.status, 202, JSON.stringify(v.body));
  const volId = v.body.volume.id as string;
  // no volume host here: the admin says it is available
  const reset = await cloud.call('POST', `/volume/v3/${alice.projectId}/volumes/${volId}/action`, { token: cloud.adminToken, body: { 'os-reset_status': { status: 'available' } } });
  assert.equal(reset.status, 202, JSON.stringify(reset.body));
  const c = await alice.call('POST', '/servers', { body: { server: { name: 'ev-att', imageRef: imageId, flavorRef: flavorId, networks: 'none' } }, version: '2.79' });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const id = c.body.server.id as string;
  for (let i = 0; i < 50 && !(await host.watch()).servers.has(id); i++) await new Promise((r) => setTimeout(r, 100));
  await host.report(id, 'active', 1);
  for (let i = 0; i < 50 && (await alice.call('GET', `/servers/${id}`)).body.server.status !== 'ACTIVE'; i++) await new Promise((r) => setTimeout(r, 100));
  const att = await alice.call('POST', `/servers/${id}/os-volume_attachments`, { body: { volumeAttachment: { volumeId: volId } }, version: '2.79' });
  assert.equal(att.status, 200, JSON.stringify(att.body));
  // Nova's attach is not a Cinder route, yet the volume's new status is published
  const e = await a.until((x) => x.id === volId && x.action === 'updated' && x.status !== 'available');
  const shown = (await cloud.call('GET', `/volume/v3/${alice.projectId}/volumes/${volId}`, { token: alice.token })).body.volume.status;
  assert.equal(e.status, shown);
  assert.equal(e.project_id, alice.projectId);
  a.close();
});

test('bare-metal nodes are on the stream: enrolled, a provision verb, deleted; the owner\'s project sees its own, the admin all', async () => {
  const adm = await stream(cloud.adminToken, {}, '?types=baremetal_node');
  const a = await stream(alice.token, {}, '?types=baremetal_node');
  const bm = (method: string, path: string, body?: unknown) => cloud.call(method, `/baremetal${path}`, { token: cloud.adminToken, body, headers: { 'X-OpenStack-Ironic-API-Version': 'latest' } });
  const c = await bm('POST', '/v1/nodes', { driver: 'ipmi', name: 'ev-node', owner: alice.projectId, driver_info: { ipmi_address: '192.0.2.77', ipmi_password: 'never-shown' } });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const uuid = c.body.uuid as string;
  const created = await adm.until((x) => x.id === uuid && x.action === 'created');
  assert.deepEqual({ type: created.type, name: created.name, status: created.status, project_id: created.project_id }, { type: 'baremetal_node', name: 'ev-node', status: 'enroll', project_id: alice.projectId });
  assert.equal(JSON.stringify(created).includes('never-shown'), false);
  assert.equal((await bm('PUT', `/v1/nodes/${uuid}/states/provision`, { target: 'manage' })).status, 202);
  await adm.until((x) => x.id === uuid && x.action === 'updated' && x.status === 'verifying');
  // the owner's project hears of it too
  await a.until((x) => x.id === uuid && x.status === 'verifying');
  assert.equal((await bm('PATCH', `/v1/nodes/${uuid}`, [{ op: 'add', path: '/maintenance', value: true }])).status, 200);
  assert.equal((await bm('DELETE', `/v1/nodes/${uuid}`)).status, 204);
  await adm.until((x) => x.id === uuid && x.action === 'deleted');
  adm.close();
  a.close();
});

test('identity\'s changes are on the stream, each heard by whom it belongs to: the admin all, a domain reader its domain\'s, a project its own project\'s, a user its own credentials and key pairs; never a secret', async () => {
  const IDENTITY = new Set(['domain', 'project', 'user', 'group', 'application_credential', 'credential', 'ec2_credential', 'keypair']);
  const id = (method: string, path: string, body?: unknown, token = cloud.adminToken) => cloud.call(method, `/identity/v3${path}`, { token, body });
  const ok = async (method: string, path: string, body?: unknown, token = cloud.adminToken) => {
    const r = await id(method, path, body, token);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  // a domain with a reader of it, who logs in scoped to the domain
  const dom = (await ok('POST', '/domains', { domain: { name: `ev-dom-${Date.now()}` } })).domain;
  const reader = (await ok('POST', '/users', { user: { name: 'ev-dreader', domain_id: dom.id, password: 'ev-pw-1' } })).user;
  const readerRole = ((await ok('GET', '/roles?name=reader')).roles as Array<{ id: string }>)[0]!.id;
  const memberRole = ((await ok('GET', '/roles?name=member')).roles as Array<{ id: string }>)[0]!.id;
  await ok('PUT', `/domains/${dom.id}/users/${reader.id}/roles/${readerRole}`);
  const auth = await cloud.call('POST', '/identity/v3/auth/tokens', { body: { auth: {
    identity: { methods: ['password'], password: { user: { id: reader.id, password: 'ev-pw-1' } } }, scope: { domain: { id: dom.id } },
  } } });
  assert.equal(auth.status, 201, JSON.stringify(auth.body));
  const domainToken = auth.headers.get('x-subject-token')!;

  const adm = await stream(cloud.adminToken);
  const a = await stream(alice.token);
  const b = await stream(bob.token);
  const d = await stream(domainToken);

  // the admin's writes: a project, a user and a group in the domain, a grant; the admin and the domain's reader hear them
  const p = (await ok('POST', '/projects', { project: { name: 'ev-proj', domain_id: dom.id } })).project;
  const created = await adm.until((x) => x.id === p.id && x.action === 'created');
  assert.deepEqual({ type: created.type, name: created.name, domain_id: created.domain_id, project_id: created.project_id }, { type: 'project', name: 'ev-proj', domain_id: dom.id, project_id: p.id });
  await d.until((x) => x.id === p.id && x.type === 'project');
  const u = (await ok('POST', '/users', { user: { name: 'ev-user', domain_id: dom.id, password: 'ev-secret-pw' } })).user;
  const ue = await d.until((x) => x.id === u.id && x.type === 'user' && x.action === 'created');
  assert.deepEqual({ name: ue.name, status: ue.status, user_id: ue.user_id }, { name: 'ev-user', status: 'enabled', user_id: u.id });
  const g = (await ok('POST', '/groups', { group: { name: 'ev-group', domain_id: dom.id } })).group;
  await d.until((x) => x.id === g.id && x.type === 'group' && x.action === 'created');
  // a grant and a group membership are the user's updates
  await ok('PUT', `/projects/${p.id}/users/${u.id}/roles/${memberRole}`);
  await ok('PUT', `/groups/${g.id}/users/${u.id}`);
  await adm.until((x) => x.id === u.id && x.type === 'user' && x.action === 'updated');
  await ok('PATCH', `/users/${u.id}`, { user: { enabled: false } });
  await d.until((x) => x.id === u.id && x.status === 'disabled');
  await ok('DELETE', `/users/${u.id}`);
  const gone = await d.until((x) => x.id === u.id && x.action === 'deleted');
  assert.equal(gone.name, 'ev-user');
  // alice's project changed by the admin: alice's project hears of its own project
  await ok('PATCH', `/projects/${alice.projectId}`, { project: { description: 'changed' } });
  await a.until((x) => x.id === alice.projectId && x.type === 'project' && x.action === 'updated');

  // alice's own: an application credential, an EC2 credential, a key pair; she and the admin hear of them
  const ac = (await ok('POST', `/users/${alice.userId}/application_credentials`, { application_credential: { name: 'ev-appcred' } }, alice.token)).application_credential;
  const ace = await a.until((x) => x.id === ac.id && x.type === 'application_credential');
  assert.deepEqual({ action: ace.action, name: ace.name, user_id: ace.user_id, project_id: ace.project_id }, { action: 'created', name: 'ev-appcred', user_id: alice.userId, project_id: null });
  await adm.until((x) => x.id === ac.id);
  const ec2 = (await ok('POST', `/users/${alice.userId}/credentials/OS-EC2`, { tenant_id: alice.projectId }, alice.token)).credential;
  await a.until((x) => x.id === ec2.access && x.type === 'ec2_credential' && x.action === 'created');
  await ok('DELETE', `/users/${alice.userId}/credentials/OS-EC2/${ec2.access}`, undefined, alice.token);
  await a.until((x) => x.id === ec2.access && x.action === 'deleted');
  await ok('DELETE', `/users/${alice.userId}/application_credentials/${ac.id}`, undefined, alice.token);
  await a.until((x) => x.id === ac.id && x.action === 'deleted');
  assert.equal((await alice.call('POST', '/os-keypairs', { body: { keypair: { name: 'ev-key' } } })).status, 200);
  const kp = await a.until((x) => x.type === 'keypair' && x.id === 'ev-key' && x.action === 'created');
  assert.equal(kp.user_id, alice.userId);
  assert.equal((await alice.call('DELETE', '/os-keypairs/ev-key')).status, 202);
  await a.until((x) => x.type === 'keypair' && x.id === 'ev-key' && x.action === 'deleted');
  await adm.until((x) => x.type === 'keypair' && x.id === 'ev-key' && x.action === 'deleted');

  // no secret travels
  for (const x of adm.events) assert.ok(!JSON.stringify(x).includes(ec2.secret) && !JSON.stringify(x).includes(ac.secret) && !JSON.stringify(x).includes('ev-secret-pw'));
  // bob heard none of it, alice none of the domain's, the domain's reader none of alice's
  assert.deepEqual(b.events.filter((x) => IDENTITY.has(x.type)), []);
  assert.deepEqual(a.events.filter((x) => IDENTITY.has(x.type) && x.user_id !== alice.userId && x.project_id !== alice.projectId), []);
  assert.deepEqual(d.events.filter((x) => x.domain_id !== dom.id), []);
  for (const s of [adm, a, b, d]) s.close();
});
