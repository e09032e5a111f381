// /v3/policies (opaque policy blobs), /v3/OS-OAUTH1/consumers and
// /v3/OS-REVOKE/events (the revocation event list).
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, notFound } from '../../common/errors.ts';
import { hexId, keystoneTime } from '../../common/ids.ts';
import { type Route, route } from '../../http/service.ts';
import { resourceRoutes } from '../resource.ts';
import type { IdentityContext } from '../context.ts';
import { extraOf, mergeExtra, patchText, queryString, selfLink, splitExtra, v3Url } from '../http.ts';
import { mustGet, orNotFound } from '../lookup.ts';

type PolicyRow = { id: string; type: string; blob: string; extra: string };
type ConsumerRow = { id: string; description: string; secret_hash: string; extra: string };

const PolicyCreate = Type.Object({
  policy: Type.Object({ blob: Type.String(), type: Type.String({ maxLength: 255 }) }, { additionalProperties: true }),
});
const PolicyPatch = Type.Object({
  policy: Type.Object({
    blob: Type.Optional(Type.String()), type: Type.Optional(Type.String({ maxLength: 255 })),
  }, { additionalProperties: true, minProperties: 1 }),
});
const Description = Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()]));
const ConsumerCreate = Type.Union([
  Type.Object({ consumer: Type.Optional(Type.Object({ description: Description }, { additionalProperties: true })) }),
  Type.Null(),
]);
const ConsumerPatch = Type.Object({
  // id only to refuse a change of it.
  consumer: Type.Object({ id: Type.Optional(Type.Unknown()), description: Description }, { additionalProperties: true, minProperties: 1 }),
});

const POLICY_KNOWN = ['id', 'type', 'blob', 'links'];
const CONSUMER_KNOWN = ['id', 'description', 'secret', 'links'];

function renderPolicy(req: FastifyRequest, p: PolicyRow) {
  return { ...extraOf(p.extra), id: p.id, type: p.type, blob: p.blob, links: selfLink(req, `/policies/${p.id}`) };
}

function renderConsumer(req: FastifyRequest, c: ConsumerRow) {
  return {
    ...extraOf(c.extra), id: c.id, description: c.description === '' ? null : c.description,
    links: selfLink(req, `/OS-OAUTH1/consumers/${c.id}`),
  };
}

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

export function miscRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  const loadPolicy = (id: string) => mustGet(db.selectFrom('identity_policies').selectAll().where('id', '=', id).executeTakeFirst(), 'policy', id);
  const loadConsumer = (id: string) =>
    orNotFound(db.selectFrom('identity_oauth_consumers').selectAll().where('id', '=', id).executeTakeFirst(), () => notFound('Consumer not found'));

  return [
    // ---- policies
    route({
      method: 'POST', path: '/v3/policies', rule: 'identity:create_policy', status: 201, schema: { body: PolicyCreate },
      async handler(rc) {
        const p = rc.body.policy;
        const row: PolicyRow = { id: hexId(), type: p.type, blob: p.blob, extra: JSON.stringify(splitExtra(p, POLICY_KNOWN)) };
        await db.insertInto('identity_policies').values(row).execute();
        return { policy: renderPolicy(rc.req, row) };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/policies', param: 'policy_id', key: 'policy', rules: { get: 'identity:get_policy', delete: 'identity:delete_policy' },
      load: loadPolicy, render: renderPolicy, remove: (id) => db.deleteFrom('identity_policies').where('id', '=', id).execute(),
      list: {
        rule: 'identity:list_policies', key: 'policies', filters: ['type'],
        query: () => db.selectFrom('identity_policies').selectAll().orderBy('id'),
      },
      update: {
        rule: 'identity:update_policy', schema: PolicyPatch,
        async apply(rc, current) {
          const p = rc.body.policy;
          const next: PolicyRow = {
            ...current, type: p.type ?? current.type, blob: p.blob ?? current.blob,
            extra: mergeExtra(current.extra, p, POLICY_KNOWN),
          };
          await db.updateTable('identity_policies').set(next).where('id', '=', current.id).execute();
          return next;
        },
      },
    }),

    // ---- OS-OAUTH1 consumers: the secret is shown once, at creation, and only its hash is kept.
    route({
      method: 'POST', path: '/v3/OS-OAUTH1/consumers', rule: 'identity:create_consumer', status: 201, schema: { body: ConsumerCreate },
      async handler(rc) {
        const c = rc.body?.consumer ?? {};
        const secret = randomBytes(16).toString('hex');
        const row: ConsumerRow = {
          id: hexId(), description: c.description ?? '', secret_hash: hashSecret(secret),
          extra: JSON.stringify(splitExtra(c, CONSUMER_KNOWN)),
        };
        await db.insertInto('identity_oauth_consumers').values(row).execute();
        return { consumer: { ...renderConsumer(rc.req, row), secret } };
      },
    }),
    ...resourceRoutes({
      collection: '/v3/OS-OAUTH1/consumers', param: 'consumer_id', key: 'consumer', rules: { get: 'identity:get_consumer', delete: 'identity:delete_consumer' },
      load: loadConsumer, render: renderConsumer, remove: (id) => db.deleteFrom('identity_oauth_consumers').where('id', '=', id).execute(),
      list: {
        rule: 'identity:list_consumers', key: 'consumers', filters: [],
        query: () => db.selectFrom('identity_oauth_consumers').selectAll().orderBy('id'),
      },
      update: {
        rule: 'identity:update_consumer', schema: ConsumerPatch,
        check(rc) {
          const c = rc.body.consumer;
          if ('secret' in c) throw badRequest('Invalid input for field consumer: the secret cannot be changed.');
          if (c.id != null && c.id !== rc.params.consumer_id) throw badRequest('Cannot change ID');
        },
        async apply(rc, current) {
          const c = rc.body.consumer;
          const next: ConsumerRow = {
            ...current,
            description: patchText(c.description, current.description),
            extra: mergeExtra(current.extra, c, CONSUMER_KNOWN),
          };
          await db.updateTable('identity_oauth_consumers').set({ description: next.description, extra: next.extra }).where('id', '=', current.id).execute();
          return next;
        },
      },
    }),

    // ---- OS-REVOKE
    {
      method: 'GET', path: '/v3/OS-REVOKE/events', rule: 'identity:list_revoke_events',
      async handler(rc) {
        let q = db.selectFrom('identity_revocations').selectAll().orderBy('id');
        const since = queryString(rc, 'since');
        if (since !== undefined) {
          // A time without a zone is UTC, as Keystone reads it.
          const t = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(since) || !since.includes('T') ? since : `${since}Z`);
          if (!/^\d{4}-\d{2}-\d{2}/.test(since) || Number.isNaN(t)) throw badRequest(`invalidate date format ${since}`);
          q = q.where('revoked_at', '>', new Date(t).toISOString());
        }
        const events = (await q.execute()).map((e) => {
          const out: Record<string, unknown> = {};
          if (e.user_id) out.user_id = e.user_id;
          if (e.role_id) out.role_id = e.role_id;
          if (e.domain_id) out.domain_id = e.domain_id;
          if (e.project_id) out.project_id = e.project_id;
          if (e.audit_id) out.audit_id = e.audit_id;
          if (e.audit_chain_id) out.audit_chain_id = e.audit_chain_id;
          if (e.trust_id) out['OS-TRUST:trust_id'] = e.trust_id;
          out.issued_before = keystoneTime(e.issued_before);
          out.revoked_at = keystoneTime(e.revoked_at);
          return out;
        });
        return { events, links: { next: null, self: v3Url(rc.req, '/OS-REVOKE/events'), previous: null } };
      },
    },
  ];
}
