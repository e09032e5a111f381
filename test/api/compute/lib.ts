// Helpers for the compute API tests: microversioned calls, users in fresh
// projects, validation of response bodies against Tempest's own schemas,
// public images uploaded by the admin, and a host registered by hand for
// servers on networks.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenant, type Cloud, type Reply } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';

/** Uploads `data` as image `id`'s bytes (the admin's token). */
export async function uploadImage(c: Cloud, id: string, data: Buffer): Promise<void> {
  const up = await fetch(`${c.url}/image/v2/images/${id}/file`, {
    method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(data),
  });
  assert.equal(up.status, 204, await up.text());
}

/** A public raw image (`body`'s fields over those) holding `data`: its id. */
export async function image(c: Cloud, body: Record<string, unknown>, data: Buffer): Promise<string> {
  const r = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { visibility: 'public', disk_format: 'raw', ...body } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  await uploadImage(c, r.body.id, data);
  return r.body.id as string;
}

export interface Nova {
  token: string;
  projectId: string;
  userId: string;
  call<T = any>(method: string, path: string, opts?: { body?: unknown; version?: string; headers?: Record<string, string> }): Promise<Reply<T>>;
}

/** A client of /compute/v2.1 for `token`; `version` sets OpenStack-API-Version. */
export function nova(cloud: Cloud, token: string, projectId: string, userId: string): Nova {
  return {
    token, projectId, userId,
    call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.version) headers['OpenStack-API-Version'] = `compute ${o.version}`;
      return cloud.call(method, `/compute/v2.1${path}`, { token, body: o.body, headers });
    },
  };
}

/** The admin, as a Nova client. */
export async function adminNova(cloud: Cloud): Promise<Nova> {
  const r = await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': cloud.adminToken } });
  return nova(cloud, cloud.adminToken, r.body.token.project.id, r.body.token.user.id);
}

/** A new project with one user holding `roles` on it, logged in. */
export async function projectUser(cloud: Cloud, roles: string[] = ['member']): Promise<Nova> {
  const t = await tenant(cloud, roles);
  return nova(cloud, t.token, t.projectId, t.userId);
}

const PYTHON = '/usr/bin/python3';
const CHECKER = new URL('./tempest_schema.py', import.meta.url).pathname;

/** Collects response bodies and checks them all at once against Tempest's response schemas. */
export class TempestSchemas {
  private items: Array<{ package: string; module: string; name: string; status: number; body: unknown; label: string }> = [];
  private readonly pkg: string;
  /** `pkg`: the package of tempest.lib.api_schema.response the modules are in ('compute', 'volume'). */
  constructor(pkg = 'compute') {
    this.pkg = pkg;
  }
  /** `module` is relative to tempest.lib.api_schema.response.<pkg>, e.g. 'v2_47.servers'. */
  add(module: string, name: string, reply: Reply, label = ''): void {
    this.items.push({ package: this.pkg, module, name, status: reply.status, body: reply.body === '' ? null : reply.body, label });
  }
  /** Asserts bodies were collected and every one is valid; Tempest (python3-tempest, installed by bin/test) must be there. */
  check(): void {
    assert.ok(this.items.length > 0, 'no response bodies were collected');
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing`);
    const r = spawnSync(PYTHON, [CHECKER], { input: JSON.stringify(this.items), env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
    assert.notEqual(r.status, 3, 'Tempest is not installed (Debian\'s python3-tempest; bin/test installs it)');
    assert.equal(r.status, 0, r.stderr);
    const errors = JSON.parse(r.stdout) as string[];
    assert.deepEqual(errors, []);
    this.items = [];
  }
}

/** The agent API as a host's agent calls it (`/agent/v1/hosts/...`), with the cloud's agent token. */
export function agentCall(c: Cloud, method: string, path: string, body: unknown): Promise<Response> {
  const token = readFileSync(join(c.dataDir, 'agent-token'), 'utf8').trim();
  return fetch(`${c.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/**
 * What tests of servers on networks start from without an agent: a public raw
 * image, a flavor, and a host registered by hand serving servers and the
 * network kinds (servers are placed there and their ports bound to it).
 */
export async function networkedHost(c: Cloud, admin: Nova, host: string, flavorName: string): Promise<{ imageId: string; flavorId: string }> {
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'i', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
  const imageId = img.body.id as string;
  const up = await fetch(`${c.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024, 1) });
  assert.equal(up.status, 204);
  const flavorId = (await admin.call('POST', '/flavors', { body: { flavor: { name: flavorName, ram: 64, vcpus: 1, disk: 1 } } })).body.flavor.id as string;
  const reg = await agentCall(c, 'PUT', host, { protocol: PROTOCOL_VERSION, kinds: { server: ['container', 'vm'], network: [], port: [], security_group: [] }, vcpus: 8, memory_mb: 8192, disk_gb: 100, version: 't', host_ip: '127.0.0.1' });
  assert.equal(reg.status, 200);
  return { imageId, flavorId };
}

/**
 * A host whose agent the test plays by hand: registered through the agent API
 * (servers of both kinds, and the network kinds so ports bind there), its
 * watch read and its reports and request answers sent as src/agent would.
 */
export interface SimulatedHost {
  hostname: string;
  /** What the host is handed now: its servers' specs and the pending requests. */
  watch(): Promise<{ servers: Map<string, { version: number; spec: any }>; requests: any[] }>;
  /** Reports a server converged to its current spec; returns the spec. */
  report(id: string, state: 'active' | 'stopped', power: number): Promise<any>;
  /** Answers a pending request (a snapshot: ok once uploaded). */
  answer(requestId: string, ok: boolean, message?: string): Promise<void>;
}

export async function simulatedHost(c: Cloud, hostname: string): Promise<SimulatedHost> {
  const reg = await agentCall(c, 'PUT', hostname, {
    protocol: PROTOCOL_VERSION, kinds: { server: ['container', 'vm'], network: [], port: [], security_group: [] }, vcpus: 8, memory_mb: 8192, disk_gb: 100,
    version: 't', host_ip: '127.0.0.1',
  });
  assert.equal(reg.status, 200, await reg.text());
  const host: SimulatedHost = {
    hostname,
    async watch() {
      const r = await agentCall(c, 'POST', `${hostname}/watch`, { known: { server: {} }, wait: 0 });
      assert.equal(r.status, 200);
      const body = await r.json() as { resources: Array<{ kind: string; id: string; version: number; spec: any }>; requests: any[] };
      return { servers: new Map(body.resources.filter((x) => x.kind === 'server').map((x) => [x.id, { version: x.version, spec: x.spec }])), requests: body.requests };
    },
    async report(id, state, power) {
      const spec = (await host.watch()).servers.get(id);
      assert.ok(spec, `server ${id} is handed to ${hostname}`);
      const r = await agentCall(c, 'POST', `${hostname}/report`, { resources: [{ kind: 'server', id, version: spec.version, observed: { state, power_state: power } }] });
      assert.equal(r.status, 200, await r.text());
      return spec.spec;
    },
    async answer(requestId, ok, message = 'failed') {
      const r = await agentCall(c, 'POST', `${hostname}/report`, {
        requests: [ok ? { id: requestId, ok: true, result: {} } : { id: requestId, ok: false, error: { class: 'transient', code: 'host_failure', message } }],
      });
      assert.equal(r.status, 200, await r.text());
    },
  };
  return host;
}

/** Runs `place` (a server made and placed) while `host` takes no new servers (os-services disabled), so that it lands elsewhere; `host` enabled again after. */
export async function whileDisabled<T>(admin: Nova, host: string, place: () => Promise<T>): Promise<T> {
  const set = (state: 'disable' | 'enable') => admin.call('PUT', `/os-services/${state}`, { version: '2.1', body: { host, binary: 'nova-compute' } });
  assert.equal((await set('disable')).status, 200);
  try {
    return await place();
  } finally {
    assert.equal((await set('enable')).status, 200);
  }
}

/** A `docker save` style archive (one empty layer): what a container image must hold. */
export function dockerArchive(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-docker-'));
  try {
    mkdirSync(join(dir, 'l'));
    writeFileSync(join(dir, 'l', 'layer.tar'), Buffer.alloc(1024));
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ os: 'linux' }));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', RepoTags: ['c:latest'], Layers: ['l/layer.tar'] }]));
    execFileSync('tar', ['-cf', join(dir, 'out.tar'), '-C', dir, 'manifest.json', 'cfg.json', 'l']);
    return readFileSync(join(dir, 'out.tar'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
