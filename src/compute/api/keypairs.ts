// /os-keypairs: import (public_key) or generate (below 2.92) ssh and x509 key
// pairs; `type` from 2.2, another user's key pairs for admins from 2.10,
// pagination from 2.35.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import type { ResourceChange } from '../../http/events.ts';
import { isValidName, mv, nextLinks, pageParams, q, strictQuery, validate, objectOf } from './http.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import { claimTransaction, countOf, projectLimits } from './quota.ts';
import { generateSshKey, generateX509, sshFingerprint, x509Fingerprint } from './ssh-keys.ts';

type KeypairRow = { id: number; name: string; user_id: string; type: string; public_key: string; fingerprint: string; created_at: string };

const CreateBody = Type.Object({
  keypair: Type.Object({
    name: Type.String({ minLength: 1, maxLength: 255 }),
    public_key: Type.Optional(Type.String()),
    type: Type.Optional(Type.Union([Type.Literal('ssh'), Type.Literal('x509')])),
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-]*$' })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

function checkBody(rc: RouteContext) {
  const v = mv(rc);
  const kp = validate(CreateBody, rc.body).keypair;
  const unexpected = (k: string) => badRequest(`Invalid input for field/attribute keypair. Value: ${JSON.stringify(kp)}. Additional properties are not allowed ('${k}' was unexpected)`);
  if (kp.type !== undefined && v.lt('2.2')) throw unexpected('type');
  if (kp.user_id !== undefined && v.lt('2.10')) throw unexpected('user_id');
  if (kp.public_key === undefined && v.ge('2.92')) throw badRequest(`Invalid input for field/attribute keypair. Value: ${JSON.stringify(kp)}. 'public_key' is a required property`);
  const pattern = v.ge('2.92') ? /^[_\-@. a-zA-Z0-9]+$/ : /^[_\- a-zA-Z0-9]+$/;
  if (!pattern.test(kp.name) || !isValidName(kp.name)) {
    throw badRequest(`Invalid input for field/attribute name. Value: ${kp.name}. '${kp.name}' does not match '${pattern.source}'`);
  }
  return kp as { name: string; public_key?: string; type?: 'ssh' | 'x509'; user_id?: string };
}

function view(rc: RouteContext, k: KeypairRow, kind: 'index' | 'create' | 'show', privateKey?: string) {
  const v = mv(rc);
  const out: Record<string, unknown> = {};
  if (privateKey !== undefined) out.private_key = privateKey;
  out.name = k.name;
  out.public_key = k.public_key;
  out.fingerprint = k.fingerprint;
  if (kind !== 'index') out.user_id = k.user_id;
  if (kind === 'show') Object.assign(out, { created_at: k.created_at, deleted: false, deleted_at: null, id: k.id, updated_at: null });
  if (v.ge('2.2')) out.type = k.type;
  return out;
}

/** The user whose key pairs a call is about: the caller, or (2.10+) ?user_id= for admins. */
function targetUser(rc: RouteContext): string {
  if (mv(rc).ge('2.10')) {
    const u = q(rc, 'user_id');
    if (u) return u;
  }
  return rc.cred!.userId;
}

export async function findKeypair(ctx: ComputeContext, userId: string, name: string): Promise<KeypairRow | undefined> {
  return ctx.db.selectFrom('compute_keypairs').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
}

/** A key pair's change on the event stream: its user's alone (a key pair belongs to a user, not a project); its id is its name, as the API names it. */
const keypairEvent = (userId: string, name: string, action: 'created' | 'deleted'): ResourceChange => ({
  type: 'keypair', id: name, name, project_id: null, user_id: userId, action, status: action === 'deleted' ? 'DELETED' : null,
});

export function keypairRoutes(ctx: ComputeContext): Route[] {
  const db = ctx.db;
  return [
    route({
      method: 'GET', path: '/v2.1/os-keypairs', rule: 'os_compute_api:os-keypairs',
      target: (rc) => ({ user_id: targetUser(rc) }),
      async handler(rc) {
        const v = mv(rc);
        if (v.ge('2.75')) strictQuery(rc, v.ge('2.35') ? ['user_id', 'limit', 'marker'] : ['user_id']);
        const userId = targetUser(rc);
        let qb = db.selectFrom('compute_keypairs').selectAll().where('user_id', '=', userId).orderBy('id');
        let limit = 0;
        if (v.ge('2.35')) {
          const p = pageParams(rc);
          limit = p.limit;
          if (p.marker !== undefined) {
            const m = await findKeypair(ctx, userId, p.marker);
            if (!m) throw badRequest(`Marker ${p.marker} could not be found.`);
            qb = qb.where('id', '>', m.id);
          }
          qb = qb.limit(limit);
        }
        const rows = await qb.execute();
        const out: Record<string, unknown> = { keypairs: rows.map((k) => ({ keypair: view(rc, k, 'index') })) };
        if (v.ge('2.35')) {
          const next = nextLinks(rc.req as FastifyRequest, 'os-keypairs', rows, rows.at(-1)?.name, limit);
          if (next) out.keypairs_links = next;
        }
        return out;
      },
    }),
    route({
      method: 'POST', path: '/v2.1/os-keypairs', rule: 'os_compute_api:os-keypairs',
      target: (rc) => {
        const asked = objectOf(objectOf(rc.body)?.keypair)?.user_id;
        const u = mv(rc).ge('2.10') && typeof asked === 'string' ? asked : rc.cred!.userId;
        return { user_id: u };
      },
      async handler(rc) {
        const v = mv(rc);
        const kp = checkBody(rc);
        const name = kp.name.trim();
        const type = kp.type ?? 'ssh';
        const userId = kp.user_id ?? rc.cred!.userId;
        let publicKey: string;
        let fingerprint: string;
        let privateKey: string | undefined;
        if (kp.public_key !== undefined) {
          publicKey = kp.public_key;
          const fp = type === 'x509' ? x509Fingerprint(publicKey) : sshFingerprint(publicKey);
          if (!fp) throw badRequest(`Keypair data is invalid: failed to generate fingerprint`);
          fingerprint = fp;
        } else if (type === 'x509') {
          const g = await generateX509(userId);
          publicKey = g.certificate;
          privateKey = g.privateKey;
          fingerprint = g.fingerprint;
        } else {
          const g = await generateSshKey();
          publicKey = g.publicKey;
          privateKey = g.privateKey;
          fingerprint = g.fingerprint;
        }
        const row = { name, user_id: userId, type, public_key: publicKey, fingerprint, created_at: nowIso() };
        const id = await conflictOnDuplicate(claimTransaction(db, async (tx) => {
          const limit = (await projectLimits(tx, rc.cred!.projectId ?? '', userId)).key_pairs;
          if (limit >= 0 && (await countOf(tx, 'key_pairs', userId)) + 1 > limit) throw forbidden('Quota exceeded, too many key pairs.');
          const r = await tx.insertInto('compute_keypairs').values(row).returning('id').executeTakeFirstOrThrow();
          return Number(r.id);
        }), () => conflict(`Key pair '${name}' already exists.`));
        rc.reply.code(v.ge('2.2') ? 201 : 200);
        ctx.publish(keypairEvent(userId, name, 'created'));
        return { keypair: view(rc, { ...row, id }, 'create', privateKey) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/os-keypairs/:name', rule: 'os_compute_api:os-keypairs',
      target: (rc) => ({ user_id: targetUser(rc) }),
      async handler(rc) {
        const userId = targetUser(rc);
        const k = await findKeypair(ctx, userId, rc.params.name!);
        if (!k) throw notFound(`Keypair ${rc.params.name} not found for user ${userId}`);
        return { keypair: view(rc, k, 'show') };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/os-keypairs/:name', rule: 'os_compute_api:os-keypairs',
      target: (rc) => ({ user_id: targetUser(rc) }),
      async handler(rc) {
        const userId = targetUser(rc);
        const r = await db.deleteFrom('compute_keypairs').where('user_id', '=', userId).where('name', '=', rc.params.name!).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound(`Keypair ${rc.params.name} not found for user ${userId}`);
        ctx.publish(keypairEvent(userId, rc.params.name!, 'deleted'));
        rc.reply.code(mv(rc).ge('2.2') ? 204 : 202);
      },
    }),
  ];
}
