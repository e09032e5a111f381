// A service's gate runs on every route, public ones included, before
// authentication and body validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Type } from 'typebox';
import { ApiError } from '../../src/common/errors.ts';
import { gateMicroversion, renderComputeError, setupMicroversions, versioned, PREFIX } from '../../src/compute/api/http.ts';
import { PUBLIC } from '../../src/http/policy.ts';
import { buildServer } from '../../src/http/server.ts';
import { route, type Service } from '../../src/http/service.ts';

test('the microversion gate applies to public routes, before body validation', async () => {
  let calls = 0;
  const service: Service = {
    name: 'compute', prefix: PREFIX, rules: {}, renderError: renderComputeError, setup: setupMicroversions, gate: gateMicroversion,
    routes: [versioned(route({
      method: 'POST', path: '/v2.1/public-thing', rule: PUBLIC, schema: { body: Type.Object({ n: Type.Integer() }) },
      handler: (rc) => ({ n: rc.body.n, calls: ++calls }),
    }), '2.50', '2.60')],
  };
  const app = buildServer({
    logger: pino({ level: 'silent' }), services: [service],
    authenticate: () => { throw new ApiError('Unauthorized', 'no tokens here'); },
  });
  try {
    const post = (version: string, payload: string) => app.inject({
      method: 'POST', url: `${PREFIX}/v2.1/public-thing`, payload,
      headers: { 'content-type': 'application/json', 'openstack-api-version': `compute ${version}` },
    });
    for (const v of ['2.49', '2.61']) {
      for (const payload of ['{"n": "x"}', '{"n": ', '{"n": 1}']) {
        const r = await post(v, payload);
        assert.equal(r.statusCode, 404, `${v} ${payload}`);
        assert.deepEqual(r.json(), { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
      }
    }
    assert.equal((await post('2.50', '{"n": "x"}')).statusCode, 400);
    assert.deepEqual((await post('2.60', '{"n": 3}')).json(), { n: 3, calls: 1 });
    assert.equal(calls, 1);
  } finally {
    await app.close();
  }
});
