// The registry's error bodies: a plain ApiError (authentication, policy, the
// object store, a malformed request) gets the OCI spec's code for its status
// and the endpoint it addressed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { badRequest, forbidden, notFound, unauthorized } from '../../src/common/errors.ts';
import { regError, renderRegistryError, type EndpointKind } from '../../src/registry/errors.ts';

const code = (e: Parameters<typeof renderRegistryError>[0], kind: EndpointKind | null = null) =>
  (renderRegistryError(e, kind) as { errors: Array<{ code: string }> }).errors[0]!.code;

test('plain errors take the code of their status and endpoint', () => {
  assert.equal(code(unauthorized()), 'UNAUTHORIZED');
  assert.equal(code(forbidden('no'), 'manifest'), 'DENIED');
  assert.equal(code(notFound('x'), 'manifest'), 'MANIFEST_UNKNOWN');
  assert.equal(code(notFound('x'), 'blob'), 'BLOB_UNKNOWN');
  assert.equal(code(notFound('x'), 'upload'), 'BLOB_UPLOAD_UNKNOWN');
  assert.equal(code(notFound('x'), 'tags'), 'NAME_UNKNOWN');
  assert.equal(code(notFound('x')), 'NAME_UNKNOWN');
  assert.equal(code(badRequest('x'), 'manifest'), 'MANIFEST_INVALID');
  assert.equal(code(badRequest('x'), 'blob'), 'DIGEST_INVALID');
  assert.equal(code(badRequest('x'), 'uploads'), 'BLOB_UPLOAD_INVALID');
  // the spec's UNSUPPORTED covers "an invalid set of parameters" where it has no closer code
  assert.equal(code(badRequest('x'), 'tags'), 'UNSUPPORTED');
});

test("the registry's own errors keep their code whatever the endpoint", () => {
  assert.equal(code(regError('DIGEST_INVALID'), 'manifest'), 'DIGEST_INVALID');
  assert.equal(code(regError('NAME_UNKNOWN'), 'blob'), 'NAME_UNKNOWN');
});
