import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from 'typebox';
import { firstError } from '../../src/http/json-schema.ts';
import { schemaViolation } from '../../src/image/jsonschema.ts';

const Body = Type.Object({
  server: Type.Object({
    name: Type.String({ maxLength: 5 }),
    flavorRef: Type.String(),
    tags: Type.Optional(Type.Array(Type.String())),
  }, { additionalProperties: false }),
});

test('json-schema: first error for additionalProperties names every unexpected property', () => {
  const value = { server: { name: 'a', x: 1, flavorRef: '1', y: 2 } };
  assert.deepEqual(firstError(Body, value), {
    keyword: 'additionalProperties', path: ['server'], value: value.server, expected: false,
    unexpected: ['x', 'y'], message: 'must NOT have additional properties',
  });
});

test('json-schema: first error for required names the first missing property, in schema order', () => {
  const e = firstError(Body, { server: {} });
  assert.equal(e?.keyword, 'required');
  assert.deepEqual(e?.path, ['server']);
  assert.deepEqual(e?.value, {});
  assert.equal(e?.missing, 'name');
  assert.equal(e?.unexpected, undefined);
});

test('json-schema: first error for type points at the value', () => {
  assert.deepEqual(firstError(Body, { server: { name: 'a', flavorRef: '1', tags: ['ok', 7] } }), {
    keyword: 'type', path: ['server', 'tags', '1'], value: 7, expected: 'string', message: 'must be string',
  });
  assert.deepEqual(firstError(Body, 'nope')?.path, []);
  assert.equal(firstError(Body, { server: { name: 'a', flavorRef: '1' } }), null);
});

test('json-schema: property names with / and ~ come back decoded', () => {
  const e = firstError(Type.Object({}, { additionalProperties: Type.Integer() }), { 'a/b~c': 'x' });
  assert.deepEqual(e?.path, ['a/b~c']);
});

test('json-schema: checking never fills defaults into the value', () => {
  const schema = { type: 'object', properties: { uniqueItems: { type: 'boolean', default: false } } };
  const value = {};
  assert.equal(firstError(schema, value), null);
  assert.deepEqual(value, {});
});

test("json-schema: Glance's messages read like python-jsonschema's", () => {
  const schema = {
    properties: {
      name: { type: ['null', 'string'], maxLength: 3 },
      visibility: { type: 'string', enum: ['public', 'private'] },
      min_ram: { type: 'integer', minimum: 0 },
      tags: { type: 'array', items: { type: 'string' }, uniqueItems: true },
      id: { type: 'string', pattern: '^[0-9]+$' },
    },
    required: ['visibility'],
    additionalProperties: false,
  };
  const ok = { visibility: 'public' };
  assert.equal(schemaViolation(schema, { ...ok, name: 5 }), "5 is not of type ['null', 'string']");
  assert.equal(schemaViolation(schema, { ...ok, name: 'long' }), "'long' is too long");
  assert.equal(schemaViolation(schema, { visibility: 'x' }), "'x' is not one of ['public', 'private']");
  assert.equal(schemaViolation(schema, { ...ok, min_ram: -1 }), '-1 is less than the minimum of 0');
  assert.equal(schemaViolation(schema, { ...ok, min_ram: 'x' }), "'x' is not of type 'integer'");
  assert.equal(schemaViolation(schema, { ...ok, tags: ['a', 'a'] }), "['a', 'a'] has non-unique elements");
  assert.equal(schemaViolation(schema, { ...ok, id: 'x' }), "'x' does not match '^[0-9]+$'");
  assert.equal(schemaViolation(schema, {}), "'visibility' is a required property");
  assert.equal(schemaViolation(schema, { ...ok, a: 1 }), "Additional properties are not allowed ('a' was unexpected)");
  assert.equal(schemaViolation(schema, { ...ok, a: 1, b: null }), "Additional properties are not allowed ('a', 'b' were unexpected)");
  assert.equal(schemaViolation(schema, { ...ok, name: null }), null);
});
