// /v3/auth: issue, validate and revoke tokens; the caller's catalog, projects, domains and system.
import { badRequest, forbidden, notFound } from '../../common/errors.ts';
import { type Route, type RouteContext, route } from '../../http/service.ts';
import { PUBLIC } from '../../http/policy.ts';
import { effectiveRoles, groupIdsOf } from '../assignments.ts';
import type { IdentityContext } from '../context.ts';
import { tokenOf } from '../credentials.ts';
import { listLinks, queryBool, selfLink } from '../http.ts';
import { AuthBody, issueToken, renderToken, validateToken } from '../tokens/issue.ts';
import type { TokenData } from '../tokens/token.ts';

function subject(ctx: IdentityContext, rc: RouteContext): TokenData {
  const header = rc.req.headers['x-subject-token'];
  if (typeof header !== 'string' || header === '') throw badRequest('X-Subject-Token is required.');
  const data = validateToken(ctx, header, queryBool(rc, 'allow_expired') === true);
  if (!data) throw notFound('Could not find token.');
  return data;
}

export function authRoutes(ctx: IdentityContext): Route[] {
  return [
    route({
      method: 'POST', path: '/v3/auth/tokens', rule: PUBLIC, status: 201, schema: { body: AuthBody },
      async handler(rc) {
        const { token, data } = await issueToken(ctx, rc.body);
        rc.reply.header('X-Subject-Token', token);
        return renderToken(ctx, data, queryBool(rc, 'nocatalog') !== true);
      },
    }),
    {
      method: 'GET', path: '/v3/auth/tokens', rule: 'identity:validate_token',
      target: (rc) => ({ user_id: subject(ctx, rc).user.id }),
      handler(rc) {
        const data = subject(ctx, rc);
        rc.reply.header('X-Subject-Token', rc.req.headers['x-subject-token']);
        return renderToken(ctx, data, queryBool(rc, 'nocatalog') !== true);
      },
    },
    {
      method: 'DELETE', path: '/v3/auth/tokens', rule: 'identity:revoke_token', status: 204,
      target: (rc) => ({ user_id: subject(ctx, rc).user.id }),
      async handler(rc) {
        const data = subject(ctx, rc);
        await ctx.revocations.revoke(ctx.db, { auditId: data.auditIds[0]! });
      },
    },
    {
      method: 'GET', path: '/v3/auth/catalog', rule: 'identity:get_auth_catalog',
      handler(rc) {
        const t = tokenOf(rc.cred!);
        if (!t.project && !t.domain && !t.system) throw forbidden('A catalog can only be given for a scoped token.');
        return { catalog: ctx.catalog.forProject(t.project?.id ?? null), links: listLinks(rc.req) };
      },
    },
    {
      method: 'GET', path: '/v3/auth/projects', rule: 'identity:get_auth_projects',
      async handler(rc) {
        const userId = rc.cred!.userId;
        const actors = [userId, ...(await groupIdsOf(ctx.db, userId))];
        const candidates = await ctx.db.selectFrom('identity_projects').selectAll().where('enabled', '=', 1).orderBy('name').execute();
        // Cheap pre-filter: projects with any assignment for the actors, on themselves, their domain or an ancestor.
        const targets = new Set((await ctx.db.selectFrom('identity_assignments').select('target_id').where('actor_id', 'in', actors).execute()).map((r) => r.target_id));
        const projects = [];
        for (const p of candidates) {
          if (!targets.size) break;
          if ((await effectiveRoles(ctx.db, userId, { projectId: p.id })).length > 0) {
            projects.push({ id: p.id, name: p.name, domain_id: p.domain_id, description: p.description, enabled: true,
              parent_id: p.parent_id ?? p.domain_id, is_domain: false, links: selfLink(rc.req, `/projects/${p.id}`) });
          }
        }
        return { projects, links: listLinks(rc.req) };
      },
    },
    {
      method: 'GET', path: '/v3/auth/domains', rule: 'identity:get_auth_domains',
      async handler(rc) {
        const userId = rc.cred!.userId;
        const domains = await ctx.db.selectFrom('identity_domains').selectAll().where('enabled', '=', 1).orderBy('name').execute();
        const out = [];
        for (const d of domains) {
          if ((await effectiveRoles(ctx.db, userId, { domainId: d.id })).length > 0) {
            out.push({ id: d.id, name: d.name, description: d.description, enabled: true, links: selfLink(rc.req, `/domains/${d.id}`) });
          }
        }
        return { domains: out, links: listLinks(rc.req) };
      },
    },
    {
      method: 'GET', path: '/v3/auth/system', rule: 'identity:get_auth_system',
      async handler(rc) {
        const roles = await effectiveRoles(ctx.db, rc.cred!.userId, { system: true });
        return { system: roles.length > 0 ? [{ all: true }] : [], links: listLinks(rc.req) };
      },
    },
  ];
}
