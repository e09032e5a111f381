// Bad input never earns a 5xx: every route of every service's route table (built
// as the server builds them) gets malformed, deeply nested, oversized and
// mistyped bodies and odd path and query parameters. A client mistake is the
// service's own 4xx; anything 5xx fails the test. Bounded: a fixed set of
// inputs per route, a few thousand requests in all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { AGENT_TOKEN_HEADER } from '../../src/fleet/protocol.ts';
import { MAX_BODY_DEPTH } from '../../src/http/server.ts';
import type { HttpMethod, Route, Service } from '../../src/http/service.ts';
import { createServices } from '../../src/server/stratus.ts';
import { useCloud } from '../harness.ts';

const cloud = useCloud();

/** Odd path parameters: a plausible id that names nothing, and strings no id looks like. */
const ODD_PARAMS = [
  '00000000-0000-4000-8000-000000000000',
  '%00%ff..%2F..%2Fetc',
  '%E2%98%83%F0%9F%92%A9-x'.repeat(3),
  'x'.repeat(1000),
];

const ODD_QUERY = '?limit=-1&limit=abc&marker=%00&sort=name:sideways&sort_key=%27&sort_dir=up&changes-since=yesterday'
  + '&all_tenants=maybe&deleted=2&name[]=x&status=%E2%98%83&visibility=&member_status=any&tag=&min_disk=-5&size_max=1e999';

const deep = (open: string, inner: string, close: string, n: number) => open.repeat(n) + inner + close.repeat(n);

/** Bodies no route accepts: not JSON, too deep, too big, or JSON of the wrong shape. */
function badBodies(route: Route): Array<{ name: string; raw: string; type?: string }> {
  const key = wrapperOf(route);
  const fields = Object.keys((route.schema?.body as { properties?: object } | undefined)?.properties ?? {});
  const json = (name: string, v: unknown) => ({ name, raw: JSON.stringify(v) });
  return [
    { name: 'malformed', raw: '{"a": [1, 2' },
    { name: 'trailing garbage', raw: '{} {}' },
    { name: 'deep object', raw: deep('{"a":', '1', '}', 5000) },
    { name: 'deep array', raw: deep('[', '', ']', 5000) },
    { name: 'deep inside a field', raw: `{"${key}": ${deep('[', '', ']', MAX_BODY_DEPTH + 1)}}` },
    // A depth that passes the parser, for what handles the body afterwards.
    { name: 'deep but allowed', raw: `{"${key}": ${deep('{"a":', '1', '}', MAX_BODY_DEPTH - 2)}}` },
    { name: 'oversized', raw: JSON.stringify({ [key]: 'x'.repeat(1024 * 1024 + 10) }) },
    json('large array', { [key]: new Array(50_000).fill(0) }),
    json('array', []),
    json('string', 'x'),
    json('number', 1e308),
    json('null', null),
    json('wrapper a number', { [key]: 12 }),
    json('wrapper an array', { [key]: [{}] }),
    json('wrapper mistyped fields', { [key]: { name: [], id: {}, metadata: 'x', value: null, type: 7 } }),
    ...fields.map((f) => json(`field ${f} mistyped`, { [f]: { nested: [true] } })),
    { name: 'json patch mistyped', raw: '[{"op": "replace", "path": 7}, {"op": "nope"}, 3]', type: 'application/openstack-images-v2.1-json-patch' },
    { name: 'wrong content type', raw: '{}', type: 'text/plain' },
  ];
}

/** The key a write body of `route` is wrapped in, guessed from its path: /os-keypairs -> keypair. */
function wrapperOf(route: Route): string {
  const last = route.path.split('/').filter((s) => s && !s.startsWith(':')).at(-1) ?? 'x';
  return last.replace(/^os-/, '').replace(/-/g, '_').replace(/s$/, '');
}

const methods = (r: Route): HttpMethod[] => (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD');
const withParams = (path: string, value: string) => path.replace(/:[A-Za-z_]+/g, value);

test('no route answers a client mistake with a 5xx', async () => {
  const built = createServices(cloud.server.database, pino({ level: 'silent' }), { dataDir: cloud.dataDir });
  const services: Service[] = built.services;
  const agentToken = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  const failures: string[] = [];
  let sent = 0;
  const send = async (service: Service, method: string, path: string, what: string, body?: { raw: string; type?: string }, version?: string) => {
    const headers: Record<string, string> = { 'X-Auth-Token': cloud.adminToken, [AGENT_TOKEN_HEADER]: agentToken };
    if (version) headers['OpenStack-API-Version'] = `compute ${version}`;
    if (body) headers['Content-Type'] = body.type ?? 'application/json';
    const r = await fetch(`${cloud.url}${service.prefix}${path}`, { method, headers, body: body?.raw });
    const text = await r.text();
    sent++;
    if (r.status >= 500) failures.push(`${method} ${service.prefix}${path.slice(0, 120)} [${what}] -> ${r.status} ${text.slice(0, 200)}`);
  };
  for (const service of services) {
    const versions = service.name === 'compute' ? [undefined, 'latest'] : [undefined];
    for (const route of service.routes) {
      for (const method of methods(route)) {
        const jobs: Array<Promise<void>> = [];
        ODD_PARAMS.forEach((p, i) => {
          const v = versions[i % versions.length];
          jobs.push(send(service, method, withParams(route.path, p) + ODD_QUERY, `params ${p.slice(0, 20)} ${v ?? ''}`, undefined, v));
        });
        if (method !== 'GET') {
          const path = withParams(route.path, ODD_PARAMS[0]!);
          for (const b of badBodies(route)) {
            for (const v of versions) jobs.push(send(service, method, path, `${b.name} ${v ?? ''}`, b, v));
          }
        }
        await Promise.all(jobs);
      }
    }
  }
  assert.ok(sent > 1000, `only ${sent} requests were sent: the route tables were not walked`);
  assert.deepEqual(failures, []);
});
