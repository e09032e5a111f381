// Helpers for the network API tests: calls under /network/v2.0 and checks of
// Neutron's error envelope.
import assert from 'node:assert/strict';
import type { Cloud, Reply } from '../../harness.ts';

export type NetCall = <T = any>(method: string, path: string, o?: { body?: unknown; token?: string; headers?: Record<string, string> }) => Promise<Reply<T>>;

/** Calls /network/v2.0 as the admin (or `token`). */
export function neutron(cloud: Cloud): NetCall {
  return (method, path, o = {}) => cloud.call(method, `/network/v2.0${path}`, { token: o.token ?? cloud.adminToken, body: o.body, headers: o.headers });
}

/** Asserts Neutron's error envelope with `status` and `type`. */
export function assertNeutronError(r: Reply, status: number, type?: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  const e = r.body?.NeutronError;
  assert.ok(e, `a NeutronError envelope: ${JSON.stringify(r.body)}`);
  assert.equal(typeof e.message, 'string');
  assert.equal(e.detail, '');
  if (type) assert.equal(e.type, type, JSON.stringify(e));
  if (message) assert.match(e.message, message);
}

/** Creates a resource and returns its view. */
export async function create(call: NetCall, collection: string, resource: string, body: Record<string, unknown>, token?: string): Promise<any> {
  const r = await call('POST', `/${collection}`, { body: { [resource]: body }, token });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body[resource];
}

/** A network `name` with one IPv4 subnet on `cidr`, made by `token`'s user. */
export async function networkWithSubnet(call: NetCall, name: string, cidr: string, token?: string): Promise<any> {
  const net = await create(call, 'networks', 'network', { name }, token);
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr, ip_version: 4 }, token);
  return net;
}
