// /v3/credentials and the EC2 credentials of a user
// (/v3/users/{user_id}/credentials/OS-EC2). An EC2 credential is a v3
// credential of type "ec2" whose blob holds {access, secret, trust_id}; its id
// is the sha256 of the access key, so it is found from the access key alone
// (findEc2Credential, for the object store's S3 API). Blobs are sealed at rest
// (credential-store.ts): every read and write goes through ctx.credentials.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, forbidden } from '../../common/errors.ts';
import { hexId, nowIso } from '../../common/ids.ts';
import type { Credential, CredentialStore } from '../credential-store.ts';
import { type Route, type RouteContext, route } from '../../http/service.ts';
import type { IdentityContext } from '../context.ts';
import { tokenOf } from '../credentials.ts';
import { duplicate, extraOf, mergeExtra, renderList, selfLink, splitExtra, withQueryFilters } from '../http.ts';
import { conflictOnDuplicate } from '../../db/unique.ts';
import { getProject, getUser, missing, mustGet } from '../lookup.ts';
import { parseJson } from '../../common/json.ts';

type CredentialRow = Credential;

/** Keystone's id of an EC2 credential: the hex sha256 of its access key. */
export const ec2CredentialId = (access: string) => createHash('sha256').update(access, 'utf8').digest('hex');

export interface Ec2Credential {
  access: string;
  secret: string;
  userId: string;
  projectId: string;
  /** Set when the credential was made with a trust-scoped token: requests signed with it act through that trust. */
  trustId?: string | null;
  /** Set when it was made with an application credential token: requests act with that credential's roles. */
  appCredId?: string | null;
}

/**
 * The EC2 credential of an access key, for verifying S3/EC2 request
 * signatures. The caller must still check that the user is enabled and holds
 * a role on the project (and honour trustId/appCredId) before acting.
 */
export async function findEc2Credential(credentials: CredentialStore, access: string): Promise<Ec2Credential | undefined> {
  if (typeof access !== 'string' || access === '') return undefined;
  const row = await credentials.get(ec2CredentialId(access));
  if (!row || row.type.toLowerCase() !== 'ec2' || !row.project_id) return undefined;
  const blob = parseJson<Record<string, unknown>>(row.blob, {});
  // The access key in the blob may have been changed by PATCH: the old key no longer names it.
  if (blob.access !== access || typeof blob.secret !== 'string') return undefined;
  return {
    access, secret: blob.secret, userId: row.user_id, projectId: row.project_id,
    trustId: typeof blob.trust_id === 'string' ? blob.trust_id : null,
    appCredId: typeof blob.app_cred_id === 'string' ? blob.app_cred_id : null,
  };
}

// ---- helpers -----------------------------------------------------------------

const isEc2 = (type: string | undefined) => (type ?? '').toLowerCase() === 'ec2';

/** An EC2 blob: a JSON object with an access key (Keystone's _validate_blob_json). */
function ec2Blob(blob: unknown): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(blob));
  } catch {
    throw badRequest('Invalid blob in credential');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.keys(parsed).length === 0) {
    throw badRequest("Invalid input for field 'blob': the blob of an ec2 credential must be a JSON object.");
  }
  const b = parsed as Record<string, unknown>;
  if (b.access === undefined || b.access === null) throw badRequest("Invalid input for field 'access': an ec2 credential's blob needs an access key.");
  return b;
}

/** True when the caller's token is a delegation (trust or application credential). */
const isDelegated = (rc: RouteContext) => {
  const t = tokenOf(rc.cred!);
  return !!(t.trust || t.appCred);
};

/** A delegated token only reaches credentials of the project it is scoped to. */
function checkDelegatedProject(rc: RouteContext, projectId: string | null | undefined, what = 'Credential'): void {
  if (isDelegated(rc) && (projectId ?? null) !== rc.cred!.projectId) {
    throw forbidden(`${what} project does not match the project scope of the delegated token.`);
  }
}

function refuseRestrictedAppCred(rc: RouteContext): void {
  if (tokenOf(rc.cred!).appCred?.restricted) {
    throw forbidden("Using method 'application_credential' is not allowed for managing additional credentials.");
  }
}

const KNOWN = ['id', 'user_id', 'project_id', 'type', 'blob', 'links'];

function renderCredential(req: FastifyRequest, c: CredentialRow) {
  return {
    ...extraOf(c.extra),
    id: c.id, user_id: c.user_id, project_id: c.project_id, type: c.type, blob: c.blob,
    links: selfLink(req, `/credentials/${c.id}`),
  };
}

function renderEc2(req: FastifyRequest, c: CredentialRow) {
  const blob = parseJson<Record<string, unknown>>(c.blob, {});
  const access = typeof blob.access === 'string' ? blob.access : String(blob.access ?? '');
  return {
    user_id: c.user_id, tenant_id: c.project_id, access, secret: blob.secret ?? null, trust_id: blob.trust_id ?? null,
    links: selfLink(req, `/users/${c.user_id}/credentials/OS-EC2/${access}`),
  };
}

const CredentialBody = Type.Object({
  credential: Type.Object({
    id: Type.Optional(Type.String()),
    user_id: Type.String(),
    type: Type.String(),
    blob: Type.String(),
    project_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  }, { additionalProperties: true }),
});
const CredentialPatch = Type.Object({
  credential: Type.Object({
    // Only to refuse a change of it.
    id: Type.Optional(Type.Unknown()),
    user_id: Type.Optional(Type.String()),
    type: Type.Optional(Type.String()),
    blob: Type.Optional(Type.String()),
    project_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  }, { additionalProperties: true, minProperties: 1 }),
});
const Ec2Body = Type.Object({ tenant_id: Type.Optional(Type.Unknown()) }, { additionalProperties: true });

// Blob keys that tie an EC2 credential to the delegation it was made with; never changed by PATCH.
const PINNED_KEYS = ['trust_id', 'app_cred_id', 'access_token_id', 'access_id'];

export function credentialsRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  const store = ctx.credentials;
  const load = (id: string) => mustGet(store.get(id), 'credential', id);
  const ownerTarget = async (rc: RouteContext) => ({ user_id: (await store.get(rc.params.credential_id!))?.user_id });
  /** The EC2 credential of the path's access key that belongs to the path's user, else 404. */
  const loadEc2 = async (rc: RouteContext, rule: string): Promise<CredentialRow> => {
    const userId = rc.params.user_id!;
    await mustGet(getUser(db, userId), 'user', userId);
    const access = rc.params.credential_id!;
    const c = await store.get(ec2CredentialId(access));
    if (!c || !isEc2(c.type) || c.user_id !== userId) throw missing('credential', access);
    // Keystone's EC2 rules check the path's user and the credential's owner alike.
    rc.enforce(rule, { user_id: c.user_id });
    checkDelegatedProject(rc, c.project_id, 'EC2 credential');
    return c;
  };

  return [
    route({
      method: 'POST', path: '/v3/credentials', rule: 'identity:create_credential', status: 201, schema: { body: CredentialBody },
      target: (rc) => ({ user_id: rc.body.credential.user_id }),
      async handler(rc) {
        const c = rc.body.credential;
        const token = tokenOf(rc.cred!);
        let id = hexId();
        let blob = c.blob;
        if (isEc2(c.type)) {
          refuseRestrictedAppCred(rc);
          if (!c.project_id) throw badRequest("Invalid input for field 'project_id': an ec2 credential requires a project_id.");
          const b = ec2Blob(c.blob);
          id = ec2CredentialId(String(b.access));
          // Credentials made through a delegation keep acting through it.
          if (token.trust) b.trust_id = token.trust.id;
          if (token.appCred) b.app_cred_id = token.appCred.id;
          if (token.trust || token.appCred) blob = JSON.stringify(b);
        }
        checkDelegatedProject(rc, c.project_id);
        const row: CredentialRow = {
          id, user_id: c.user_id, project_id: c.project_id ?? null, type: c.type, blob,
          extra: JSON.stringify(splitExtra(c, KNOWN)), created_at: nowIso(),
        };
        await conflictOnDuplicate(store.insert(row), () => duplicate('credential', 'id', id));
        return { credential: renderCredential(rc.req, row) };
      },
    }),
    {
      method: 'GET', path: '/v3/credentials', rule: 'identity:list_credentials',
      // Anyone may list; the answer holds only what the caller may read (Keystone filters by get_credential).
      target: (rc) => ({ user_id: rc.cred!.userId }),
      async handler(rc) {
        let q = withQueryFilters(db.selectFrom('identity_credentials').selectAll().orderBy('created_at').orderBy('id'), rc, ['user_id', 'type']);
        const cred = rc.cred!;
        const admin = cred.roles.has('admin');
        if (!admin) q = q.where('user_id', '=', cred.userId);
        if (isDelegated(rc)) q = cred.projectId ? q.where('project_id', '=', cred.projectId) : q.where('id', '=', '');
        const rows = await store.openAll(await q.execute());
        return renderList(rc.req, 'credentials', rows, renderCredential);
      },
    },
    {
      method: 'GET', path: '/v3/credentials/:credential_id', rule: 'identity:get_credential', target: ownerTarget,
      async handler(rc) {
        const c = await load(rc.params.credential_id!);
        checkDelegatedProject(rc, c.project_id);
        return { credential: renderCredential(rc.req, c) };
      },
    },
    route({
      method: 'PATCH', path: '/v3/credentials/:credential_id', rule: 'identity:update_credential', schema: { body: CredentialPatch },
      target: ownerTarget,
      async handler(rc) {
        const current = await load(rc.params.credential_id!);
        checkDelegatedProject(rc, current.project_id);
        const patch = rc.body.credential;
        if (patch.id !== undefined && patch.id !== current.id) throw badRequest('Cannot change ID.');
        const next: CredentialRow = {
          ...current,
          user_id: patch.user_id ?? current.user_id,
          type: patch.type ?? current.type,
          blob: patch.blob ?? current.blob,
          project_id: patch.project_id === undefined ? current.project_id : patch.project_id,
          extra: mergeExtra(current.extra, patch, KNOWN),
        };
        // The owner cannot be moved to someone the caller could not create it for.
        rc.enforce('identity:update_credential', { user_id: next.user_id });
        if (patch.user_id !== undefined || patch.project_id !== undefined) checkDelegatedProject(rc, next.project_id);
        if (isEc2(next.type)) {
          if (!next.project_id) throw badRequest("Invalid input for field 'project_id': an ec2 credential requires a project_id.");
          const newBlob = ec2Blob(next.blob);
          if (isEc2(current.type)) {
            const oldBlob = parseJson<Record<string, unknown>>(current.blob, {});
            for (const k of PINNED_KEYS) {
              if ((oldBlob[k] ?? null) !== (newBlob[k] ?? null)) throw badRequest(`${k} can not be updated for credential`);
            }
          }
        }
        await store.update(next);
        return { credential: renderCredential(rc.req, next) };
      },
    }),
    {
      method: 'DELETE', path: '/v3/credentials/:credential_id', rule: 'identity:delete_credential', status: 204, target: ownerTarget,
      async handler(rc) {
        const c = await load(rc.params.credential_id!);
        checkDelegatedProject(rc, c.project_id);
        await db.deleteFrom('identity_credentials').where('id', '=', c.id).execute();
      },
    },

    // ---- OS-EC2 ----
    route({
      method: 'POST', path: '/v3/users/:user_id/credentials/OS-EC2', rule: 'identity:ec2_create_credential', status: 201,
      schema: { body: Ec2Body },
      async handler(rc) {
        refuseRestrictedAppCred(rc);
        const userId = rc.params.user_id!;
        await mustGet(getUser(db, userId), 'user', userId);
        const tenantId = rc.body?.tenant_id;
        if (typeof tenantId !== 'string' || tenantId === '') throw badRequest("Invalid input for field 'tenant_id': a project id is required.");
        await mustGet(getProject(db, tenantId), 'project', tenantId);
        checkDelegatedProject(rc, tenantId, 'EC2 credential');
        const token = tokenOf(rc.cred!);
        const blob: Record<string, unknown> = {
          access: randomBytes(16).toString('hex'),
          secret: randomBytes(16).toString('hex'),
          trust_id: token.trust?.id ?? null,
        };
        if (token.appCred) blob.app_cred_id = token.appCred.id;
        const row: CredentialRow = {
          id: ec2CredentialId(blob.access as string), user_id: userId, project_id: tenantId, type: 'ec2',
          blob: JSON.stringify(blob), extra: '{}', created_at: nowIso(),
        };
        await store.insert(row);
        return { credential: renderEc2(rc.req, row) };
      },
    }),
    {
      method: 'GET', path: '/v3/users/:user_id/credentials/OS-EC2', rule: 'identity:ec2_list_credentials',
      async handler(rc) {
        const userId = rc.params.user_id!;
        await mustGet(getUser(db, userId), 'user', userId);
        const rows = await store.openAll(await db.selectFrom('identity_credentials').selectAll().where('user_id', '=', userId)
          .where('type', 'in', ['ec2', 'EC2']).orderBy('created_at').orderBy('id').execute());
        const visible = isDelegated(rc) ? rows.filter((c) => c.project_id === rc.cred!.projectId) : rows;
        return renderList(rc.req, 'credentials', visible, renderEc2);
      },
    },
    {
      method: 'GET', path: '/v3/users/:user_id/credentials/OS-EC2/:credential_id', rule: 'identity:ec2_get_credential',
      handler: async (rc) => ({ credential: renderEc2(rc.req, await loadEc2(rc, 'identity:ec2_get_credential')) }),
    },
    {
      method: 'DELETE', path: '/v3/users/:user_id/credentials/OS-EC2/:credential_id', rule: 'identity:ec2_delete_credential', status: 204,
      async handler(rc) {
        const c = await loadEc2(rc, 'identity:ec2_delete_credential');
        await db.deleteFrom('identity_credentials').where('id', '=', c.id).execute();
      },
    },
  ];
}
