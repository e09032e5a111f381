// Helpers for the Swift middleware features' API tests: raw HTTP calls to
// /object/v1/AUTH_<project>/... with any body (text or bytes) and headers,
// answered as status, headers and the body's bytes.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { tenant, type Cloud, type Tenant } from '../../harness.ts';

export interface Raw { status: number; headers: Headers; body: Buffer; text: string }

export interface Swift {
  /** The account path of the tenant: /object/v1/AUTH_<project>. */
  account: string;
  t: Tenant;
  /** A call as the tenant (token), or anonymous with `anon`. */
  call(method: string, path: string, o?: { body?: string | Buffer; headers?: Record<string, string>; anon?: boolean; token?: string }): Promise<Raw>;
}

export async function raw(cloud: Cloud, method: string, path: string, o: { body?: string | Buffer; headers?: Record<string, string>; token?: string } = {}): Promise<Raw> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers['X-Auth-Token'] = o.token;
  const r = await fetch(`${cloud.url}${path}`, { method, headers, body: o.body as BodyInit | undefined, redirect: 'manual' });
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, body, text: body.toString('utf8') };
}

/** A new tenant with the member role and its account. */
export async function swiftTenant(cloud: Cloud, roles: string[] = ['member']): Promise<Swift> {
  const t = await tenant(cloud, roles);
  const account = `/object/v1/AUTH_${t.projectId}`;
  return {
    account, t,
    call: (method, path, o = {}) => raw(cloud, method, path.startsWith('/') ? path : `${account}/${path}`, { ...o, token: o.anon ? undefined : (o.token ?? t.token) }),
  };
}

/** Asserts a status, showing the body when it differs. */
export function expectStatus(r: Raw, status: number, what = ''): void {
  assert.equal(r.status, status, `${what} ${r.status}: ${r.text.slice(0, 500)}`);
}

export const hmacHex = (algo: string, key: string, text: string) => createHmac(algo, key).update(text).digest('hex');
