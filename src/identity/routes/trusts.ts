// /v3/OS-TRUST/trusts: delegation of a trustor's roles on a project to a trustee.
// Tokens scoped to a trust are issued by tokens/issue.ts (scopeTrust), which
// reads the rows written here.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, conflict, forbidden } from '../../common/errors.ts';
import { hexId, nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { assignedRoleIds, withImplied } from '../assignments.ts';
import type { IdentityContext } from '../context.ts';
import { tokenOf } from '../credentials.ts';
import { extraOf, listLinks, queryString, renderList, selfLink, splitExtra, withQueryFilters } from '../http.ts';
import { getProject, getRole, getUser, missing, mustGet } from '../lookup.ts';
import { parseJson } from '../../common/json.ts';
import { liveTrustChain, MAX_REDELEGATION_COUNT } from '../tokens/issue.ts';

type Db = IdentityContext['db'];
type TrustRow = NonNullable<Awaited<ReturnType<typeof getTrust>>>;
type RoleRow = NonNullable<Awaited<ReturnType<typeof getRole>>>;

const getTrust = (db: Db, id: string) => db.selectFrom('identity_trusts').selectAll().where('id', '=', id).executeTakeFirst();

// ---- times -------------------------------------------------------------------

const ISO = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|z|[+-]\d{2}:?\d{2})?$/;

/**
 * Keystone's expiration parsing (utils.parse_expiration_date): an ISO 8601
 * time, UTC when no offset is given, not in the past. Returns it normalised to
 * UTC with microseconds ("2025-01-02T03:04:05.123456Z"), the precision Keystone
 * keeps and echoes back; null for no expiry.
 */
export function parseExpiresAt(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const invalid = () => badRequest('Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
  if (typeof value !== 'string') throw invalid();
  const m = ISO.exec(value.trim());
  if (!m) throw invalid();
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const frac = (m[7] ?? '').padEnd(6, '0').slice(0, 6);
  let ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(ms);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw invalid();
  const off = m[8];
  if (off && off.toUpperCase() !== 'Z') {
    const sign = off[0] === '-' ? -1 : 1;
    const digits = off.slice(1).replace(':', '');
    const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
    ms -= sign * minutes * 60_000;
  }
  ms += Math.floor(Number(frac) / 1000);
  if (ms + (Number(frac) % 1000) / 1000 <= Date.now()) {
    throw badRequest("The 'expires_at' must not be before now. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
  }
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

/** A stored expiry as Keystone renders trust times: microseconds and a Z. */
export function microTime(stored: string): string {
  if (/\.\d{6}Z$/.test(stored)) return stored;
  return new Date(stored).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

// ---- roles -------------------------------------------------------------------

const IdString = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9-]+$' });
const Name = Type.String({ minLength: 1, maxLength: 255, pattern: '[\\S]+' });
/** A role given by id or by name, exactly one of them. */
export const RoleRef = Type.Object(
  { id: Type.Optional(IdString), name: Type.Optional(Name) },
  { minProperties: 1, maxProperties: 1, additionalProperties: false },
);

/** Resolves {id} or {name} role references to role rows; an unknown role is Keystone's 404. */
export async function resolveRoleRefs(db: Db, refs: Array<{ id?: string; name?: string }>): Promise<RoleRow[]> {
  const out: RoleRow[] = [];
  for (const ref of refs) {
    let row: RoleRow | undefined;
    if (ref.id !== undefined) {
      row = await getRole(db, ref.id);
      if (!row) throw missing('role', ref.id);
    } else {
      const rows = await db.selectFrom('identity_roles').selectAll().where('name', '=', ref.name!).where('domain_id', '=', '').execute();
      row = rows[0];
      if (!row) throw missing('role', ref.name!);
    }
    if (!out.some((r) => r.id === row.id)) out.push(row);
  }
  return out;
}

/** A role as Keystone shows it inside trusts and application credentials. */
export function renderRoleRef(req: FastifyRequest, r: RoleRow, withLinks: boolean) {
  const out: Record<string, unknown> = {
    id: r.id, name: r.name, domain_id: r.domain_id === '' ? null : r.domain_id,
    description: r.description || null, options: parseJson<Record<string, unknown>>(r.options, {}),
  };
  if (withLinks) out.links = selfLink(req, `/roles/${r.id}`);
  return out;
}

async function rolesOf(db: Db, t: TrustRow): Promise<RoleRow[]> {
  const ids = parseJson<Array<{ id: string }>>(t.roles, []).map((r) => r.id);
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('identity_roles').selectAll().where('id', 'in', ids).execute();
  // Keystone skips roles deleted since the trust was made; order as delegated.
  return ids.map((id) => rows.find((r) => r.id === id)).filter((r): r is RoleRow => !!r);
}

// ---- trusts ------------------------------------------------------------------

const TrustBody = Type.Object({
  trust: Type.Object({
    trustor_user_id: Type.String(),
    trustee_user_id: Type.String(),
    impersonation: Type.Boolean(),
    project_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    roles: Type.Optional(Type.Array(RoleRef)),
    expires_at: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    remaining_uses: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    allow_redelegation: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    redelegation_count: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  }, { additionalProperties: true }),
}, { additionalProperties: false });

const KNOWN = [
  'id', 'trustor_user_id', 'trustee_user_id', 'impersonation', 'project_id', 'roles', 'expires_at', 'remaining_uses',
  'allow_redelegation', 'redelegation_count', 'redelegated_trust_id', 'deleted_at', 'links', 'roles_links',
];

function renderTrustSummary(req: FastifyRequest, t: TrustRow) {
  return {
    ...extraOf(t.extra),
    id: t.id,
    trustor_user_id: t.trustor_user_id,
    trustee_user_id: t.trustee_user_id,
    project_id: t.project_id,
    impersonation: t.impersonation === 1,
    expires_at: t.expires_at ? microTime(t.expires_at) : null,
    remaining_uses: t.remaining_uses,
    redelegated_trust_id: t.redelegated_trust_id,
    redelegation_count: t.redelegation_count,
    deleted_at: null,
    links: selfLink(req, `/OS-TRUST/trusts/${t.id}`),
  };
}

async function renderTrust(db: Db, req: FastifyRequest, t: TrustRow) {
  return {
    ...renderTrustSummary(req, t),
    roles: (await rolesOf(db, t)).map((r) => renderRoleRef(req, r, true)),
    roles_links: { self: `${selfLink(req, `/OS-TRUST/trusts/${t.id}/roles`).self}`, previous: null, next: null },
  };
}

/** Keystone refuses every trust operation to application credential tokens, restricted or not. */
function refuseAppCred(rc: RouteContext): void {
  if (tokenOf(rc.cred!).appCred) throw forbidden("Using method 'application_credential' is not allowed for managing trusts.");
}

/** Soft-deletes a trust and, recursively, every trust redelegated from it; returns their ids. */
async function deleteTrustTree(db: Db, id: string): Promise<string[]> {
  const ids = [id];
  for (let i = 0; i < ids.length; i++) {
    const children = await db.selectFrom('identity_trusts').select('id')
      .where('redelegated_trust_id', '=', ids[i]!).where('deleted_at', 'is', null).execute();
    for (const c of children) if (!ids.includes(c.id)) ids.push(c.id);
  }
  await db.updateTable('identity_trusts').set({ deleted_at: nowIso() }).where('id', 'in', ids).where('deleted_at', 'is', null).execute();
  return ids;
}

export function trustsRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  /** A usable trust (with its whole redelegation chain), else Keystone's 404. */
  const loadLive = async (id: string): Promise<TrustRow> => {
    const chain = await liveTrustChain(ctx, id);
    if (!chain) throw missing('trust', id);
    return chain[0]!;
  };
  const trustTarget = async (rc: RouteContext) => {
    const t = await loadLive(rc.params.trust_id!);
    return { trustor_user_id: t.trustor_user_id, trustee_user_id: t.trustee_user_id };
  };

  return [
    route({
      method: 'POST', path: '/v3/OS-TRUST/trusts', rule: 'identity:create_trust', status: 201, schema: { body: TrustBody },
      target: (rc) => ({ trustor_user_id: rc.body.trust.trustor_user_id }),
      async handler(rc) {
        refuseAppCred(rc);
        const cred = rc.cred!;
        const token = tokenOf(cred);
        const t = rc.body.trust;
        const projectId: string | null = t.project_id || null;
        if (projectId && !(t.roles && t.roles.length > 0)) throw forbidden('At least one role should be specified.');
        if (cred.userId !== t.trustor_user_id) throw forbidden('The authenticated user should match the trustor.');
        await mustGet(getUser(db, t.trustee_user_id), 'user', t.trustee_user_id);
        const roles = await resolveRoleRefs(db, t.roles ?? []);

        // A trust-scoped caller is redelegating the trust its token carries.
        let parent: TrustRow | undefined;
        let parentChain: TrustRow[] | undefined;
        if (token.trust) {
          parentChain = await liveTrustChain(ctx, token.trust.id);
          if (!parentChain) throw missing('trust', token.trust.id);
          parent = parentChain[0]!;
        }

        if (projectId) {
          await mustGet(getProject(db, projectId), 'project', projectId);
          // The roles must be held by the (original) trustor on the project, implied roles included.
          const trustor = parentChain ? parentChain[parentChain.length - 1]!.trustor_user_id : t.trustor_user_id;
          const held = await withImplied(db, await assignedRoleIds(db, trustor, { projectId }));
          for (const r of roles) if (!held.has(r.id)) throw missing('role', r.id);
        }
        let expiresAt = parseExpiresAt(t.expires_at);

        const requested = t.redelegation_count ?? null;
        const redelegatable = t.allow_redelegation === true && requested !== 0;
        let redelegationCount: number;
        if (!redelegatable) {
          redelegationCount = 0;
        } else {
          if (requested !== null && requested > MAX_REDELEGATION_COUNT) {
            throw forbidden(`Requested redelegation depth of ${requested} is greater than allowed ${MAX_REDELEGATION_COUNT}.`);
          }
          if (t.remaining_uses !== undefined && t.remaining_uses !== null) throw badRequest('remaining_uses must not be set if redelegation is allowed.');
          redelegationCount = requested ?? MAX_REDELEGATION_COUNT;
        }

        if (parent) {
          if (!(parent.redelegation_count > 0 && parent.redelegation_count <= MAX_REDELEGATION_COUNT)) {
            throw forbidden(`Remaining redelegation depth of ${parent.redelegation_count} out of allowed range of [0..${MAX_REDELEGATION_COUNT}].`);
          }
          if (t.remaining_uses !== undefined && t.remaining_uses !== null) {
            throw forbidden('Field "remaining_uses" must not be set in order to redelegate a trust.');
          }
          if (projectId !== parent.project_id) throw forbidden('A redelegated trust must be on the project of the trust it comes from.');
          if (parent.expires_at) {
            if (!expiresAt) expiresAt = parent.expires_at;
            else if (Date.parse(expiresAt) > Date.parse(parent.expires_at)) throw forbidden('Requested expiration time is more than redelegated trust can provide.');
          }
          const parentRoles = new Set(parseJson<Array<{ id: string }>>(parent.roles, []).map((r) => r.id));
          if (!roles.every((r) => parentRoles.has(r.id))) throw forbidden('Some of requested roles are not in redelegated trust.');
          if (!parent.impersonation && t.impersonation) {
            throw forbidden(`Impersonation is not allowed because redelegated trust does not specify impersonation. Redelegated trust id: ${parent.id}.`);
          }
          const remaining = parent.redelegation_count - 1;
          if (redelegatable && requested && requested !== remaining) {
            throw forbidden('Modifying "redelegation_count" upon redelegation is forbidden. Omitting this parameter is advised.');
          }
          redelegationCount = redelegatable ? remaining : 0;
        }

        // Keystone's duplicate_trust_constraint (NULL expiries never collide).
        if (expiresAt) {
          let q = db.selectFrom('identity_trusts').select('id')
            .where('trustor_user_id', '=', t.trustor_user_id).where('trustee_user_id', '=', t.trustee_user_id)
            .where('impersonation', '=', t.impersonation ? 1 : 0).where('expires_at', '=', expiresAt).where('deleted_at', 'is', null);
          q = projectId ? q.where('project_id', '=', projectId) : q.where('project_id', 'is', null);
          if (await q.executeTakeFirst()) throw conflict('Conflict occurred attempting to store trust - Duplicate entry.');
        }

        const row: TrustRow = {
          id: hexId(), trustor_user_id: t.trustor_user_id, trustee_user_id: t.trustee_user_id, project_id: projectId,
          impersonation: t.impersonation ? 1 : 0, expires_at: expiresAt, remaining_uses: t.remaining_uses ?? null,
          roles: JSON.stringify(roles.map((r) => ({ id: r.id }))), redelegated_trust_id: parent?.id ?? null,
          redelegation_count: redelegationCount, deleted_at: null,
          extra: JSON.stringify(splitExtra(t, KNOWN)), created_at: nowIso(),
        };
        await db.insertInto('identity_trusts').values(row).execute();
        return { trust: await renderTrust(db, rc.req, row) };
      },
    }),
    {
      method: 'GET', path: '/v3/OS-TRUST/trusts', rule: 'identity:list_trusts',
      target: (rc) => ({ trustor_user_id: queryString(rc, 'trustor_user_id'), trustee_user_id: queryString(rc, 'trustee_user_id') }),
      async handler(rc) {
        refuseAppCred(rc);
        const q = db.selectFrom('identity_trusts').selectAll().where('deleted_at', 'is', null).orderBy('created_at').orderBy('id');
        const rows = await withQueryFilters(q, rc, ['trustor_user_id', 'trustee_user_id']).execute();
        return renderList(rc.req, 'trusts', rows, renderTrustSummary);
      },
    },
    {
      method: 'GET', path: '/v3/OS-TRUST/trusts/:trust_id', rule: 'identity:get_trust', target: trustTarget,
      async handler(rc) {
        refuseAppCred(rc);
        return { trust: await renderTrust(db, rc.req, await loadLive(rc.params.trust_id!)) };
      },
    },
    {
      method: 'DELETE', path: '/v3/OS-TRUST/trusts/:trust_id', rule: 'identity:delete_trust', status: 204, target: trustTarget,
      async handler(rc) {
        refuseAppCred(rc);
        const t = await loadLive(rc.params.trust_id!);
        const ids = await deleteTrustTree(db, t.id);
        for (const id of ids) await ctx.revocations.revoke(db, { trustId: id });
      },
    },
    {
      method: 'GET', path: '/v3/OS-TRUST/trusts/:trust_id/roles', rule: 'identity:list_roles_for_trust', target: trustTarget,
      async handler(rc) {
        refuseAppCred(rc);
        const t = await loadLive(rc.params.trust_id!);
        return { roles: (await rolesOf(db, t)).map((r) => renderRoleRef(rc.req, r, true)), links: listLinks(rc.req) };
      },
    },
    {
      // HEAD comes to this GET route too (src/http/server.ts) and gets no body.
      method: 'GET', path: '/v3/OS-TRUST/trusts/:trust_id/roles/:role_id', rule: 'identity:get_role_for_trust', target: trustTarget,
      async handler(rc) {
        refuseAppCred(rc);
        const t = await loadLive(rc.params.trust_id!);
        const role = (await rolesOf(db, t)).find((r) => r.id === rc.params.role_id);
        if (!role) throw missing('role', rc.params.role_id!);
        return { role: renderRoleRef(rc.req, role, true) };
      },
    },
  ];
}
