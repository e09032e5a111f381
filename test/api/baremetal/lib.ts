// Helpers for the bare-metal API tests: calls under /baremetal at a
// microversion, Ironic's error body, and a test-double conductor: a test
// that registers an agent serving `baremetal_node` over the real /agent/v1
// API, watches for node specs and answers with reports (no fake driver in
// the product).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cloud, Reply } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';

export type BmCall = <T = any>(method: string, path: string, o?: { body?: unknown; token?: string; version?: string | null; headers?: Record<string, string> }) => Promise<Reply<T>>;

/** Calls /baremetal{path} as the admin (or `token`), at `version` (default 'latest'; null: no header). */
export function ironic(cloud: Cloud): BmCall {
  return (method, path, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const v = o.version === undefined ? 'latest' : o.version;
    if (v !== null) headers['X-OpenStack-Ironic-API-Version'] = v;
    return cloud.call(method, `/baremetal${path}`, { token: o.token ?? cloud.adminToken, body: o.body, headers });
  };
}

/** Asserts Ironic's error body with `status` (and a faultstring matching `message`). */
export function assertIronicError(r: Reply, status: number, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body), ['error_message'], JSON.stringify(r.body));
  const e = JSON.parse(r.body.error_message);
  assert.deepEqual(Object.keys(e).sort(), ['debuginfo', 'faultcode', 'faultstring']);
  assert.equal(e.faultcode, status >= 500 ? 'Server' : 'Client');
  assert.equal(e.debuginfo, null);
  if (message) assert.match(e.faultstring, message);
}

/** The provisioning network (config provisioningNetwork `baremetal`), flat and shared as `stratus up` makes it; its id. */
export async function provisioningNetwork(cloud: Cloud, physnet: string, cidr: string): Promise<string> {
  const net = await cloud.call('POST', '/network/v2.0/networks', { token: cloud.adminToken, body: { network: { name: 'baremetal', shared: true, 'provider:network_type': 'flat', 'provider:physical_network': physnet } } });
  assert.equal(net.status, 201, JSON.stringify(net.body));
  const sub = await cloud.call('POST', '/network/v2.0/subnets', { token: cloud.adminToken, body: { subnet: { network_id: net.body.network.id, cidr, ip_version: 4 } } });
  assert.equal(sub.status, 201, JSON.stringify(sub.body));
  return net.body.network.id as string;
}

/** A test-double conductor: an agent registered with the baremetal_node kind, driven by the test. */
export class TestConductor {
  readonly hostname: string;
  private readonly cloud: Cloud;
  private readonly token: string;
  known: Record<string, Record<string, number>> = { baremetal_node: {} };
  specs = new Map<string, { version: number; spec: any }>();
  constructor(cloud: Cloud, hostname: string) {
    this.cloud = cloud;
    this.hostname = hostname;
    this.token = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  }
  async call(method: string, path: string, body: unknown): Promise<any> {
    const r = await fetch(`${this.cloud.url}/agent/v1/hosts/${this.hostname}${path}`, {
      method, headers: { 'x-stratus-agent-token': this.token, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    assert.equal(r.status, 200, await r.clone().text());
    return r.json();
  }
  /** Registers, with the endpoint on the provisioning network when given (the service records a conductor as it hears the registration: waited for here). */
  async register(drivers: string[] = ['ipmi', 'redfish'], baremetal?: { address: string; http_port: number; tftp: boolean }) {
    const r = await this.call('PUT', '', { protocol: PROTOCOL_VERSION, kinds: { baremetal_node: drivers }, vcpus: 0, memory_mb: 0, disk_gb: 0, version: 'test', host_ip: '192.0.2.10', ...(baremetal ? { baremetal } : {}) });
    for (let i = 0; i < 100; i++) {
      const c = await this.cloud.server.database.db.selectFrom('baremetal_conductors').select('drivers').where('hostname', '=', this.hostname).executeTakeFirst();
      if (c && c.drivers === JSON.stringify([...drivers].sort())) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    return r;
  }
  /** One watch round: the node specs handed out (new or changed). */
  async watch(): Promise<Map<string, { version: number; spec: any }>> {
    const r = await this.call('POST', '/watch', { known: this.known, wait: 0 });
    const out = new Map<string, { version: number; spec: any }>();
    for (const res of r.resources) {
      if (res.kind !== 'baremetal_node') continue;
      this.known.baremetal_node![res.id] = res.version;
      this.specs.set(res.id, { version: res.version, spec: res.spec });
      out.set(res.id, { version: res.version, spec: res.spec });
    }
    for (const g of r.gone) if (g.kind === 'baremetal_node') { delete this.known.baremetal_node![g.id]; this.specs.delete(g.id); }
    return out;
  }
  /** One watch round's requests (work beyond the desired state: a bare-metal server's `console`). */
  async requests(): Promise<Array<{ id: string; kind: string; resource_id: string; action: string; args: Record<string, unknown> }>> {
    const r = await this.call('POST', '/watch', { known: this.known, wait: 0 });
    return r.requests;
  }
  /** Answers a request (a result, or an error). */
  answer(id: string, a: { result?: Record<string, unknown>; error?: { class: string; code: string; message: string } }) {
    return this.call('POST', '/report', { requests: [{ id, ok: !a.error, ...a }] });
  }
  /** The node's current spec (after a watch round). */
  async spec(node: string): Promise<{ version: number; spec: any }> {
    await this.watch();
    const s = this.specs.get(node);
    assert.ok(s, `node ${node} is placed on ${this.hostname}`);
    return s;
  }
  report(node: string, version: number, observed: unknown, error?: unknown) {
    return this.call('POST', '/report', { resources: [{ kind: 'baremetal_node', id: node, version, observed, ...(error ? { error } : {}) }] });
  }
  /** Reports the current operation of `node` with `status` (and its power state). */
  async finish(node: string, status: 'running' | 'succeeded' | 'failed', o: { phase?: string; message?: string; inventory?: unknown; power?: 'power on' | 'power off' } = {}) {
    const { version, spec } = await this.spec(node);
    assert.ok(spec.operation, `node ${node} has an operation: ${JSON.stringify(spec)}`);
    await this.report(node, version, {
      power_state: o.power ?? 'power off',
      operation: { id: spec.operation.id, status, phase: o.phase ?? (status === 'running' ? 'ramdisk' : 'done'), phase_started_at: new Date().toISOString(), ...(o.message ? { message: o.message } : {}), ...(o.inventory ? { inventory: o.inventory } : {}) },
    });
    return spec.operation;
  }
}
