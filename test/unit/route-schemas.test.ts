// Route schemas compile on a route's first request (src/http/json-schema.ts):
// this compiles every one of them, so a schema ajv refuses fails here rather
// than as a 500 at that first request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Type } from 'typebox';
import { openDatabase } from '../../src/db/database.ts';
import { compileRouteSchema } from '../../src/http/json-schema.ts';
import { createServices } from '../../src/server/stratus.ts';

test('route schemas: every schema of every hosted route compiles', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-schemas-'));
  const database = await openDatabase(join(dataDir, 'stratus.db'));
  try {
    const { services } = createServices(database, pino({ level: 'silent' }), { dataDir });
    let compiled = 0;
    for (const service of services) {
      for (const route of service.routes) {
        for (const [part, schema] of Object.entries(route.schema ?? {})) {
          // Calling a validator compiles it; the answer for null does not matter here.
          assert.doesNotThrow(() => compileRouteSchema({ schema: schema as object })(null), `${service.name} ${route.path} ${part}`);
          compiled++;
        }
      }
    }
    // Identity alone has dozens of body schemas: an empty walk would pass vacuously.
    assert.ok(compiled > 30, `only ${compiled} route schemas found`);
  } finally {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('route schemas: a validator compiles on first use, reports ajv errors, and fills defaults', () => {
  // An unknown keyword is an error in ajv's strict mode, so compiling shows when it happens.
  const broken = compileRouteSchema({ schema: { type: 'object', notAKeyword: true } });
  assert.throws(() => broken({}), /strict mode: unknown keyword/);

  const validate = compileRouteSchema({ schema: Type.Object({ name: Type.String({ maxLength: 3 }), enabled: Type.Boolean({ default: true }) }, { additionalProperties: false }) });
  const body: Record<string, unknown> = { name: 'abc' };
  assert.equal(validate(body), true);
  assert.deepEqual(body, { name: 'abc', enabled: true });
  assert.equal(validate({ name: 'abcd' }), false);
  assert.equal(validate.errors?.[0]?.keyword, 'maxLength');
  assert.equal(validate({ name: 'x', other: 1 }), false);
  assert.equal(validate.errors?.[0]?.keyword, 'additionalProperties');
  assert.equal(validate({ name: 'x' }), true);
  assert.equal(validate.errors, null);
});
