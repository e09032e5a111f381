// A role as the API shows it: used by the role routes and by the assignment
// routes that list a user's roles (apart, so neither route module imports the other).
import type { FastifyRequest } from 'fastify';
import { parseJson } from '../../common/json.ts';
import { extraOf, selfLink } from '../http.ts';
import type { getRole } from '../lookup.ts';

export type RoleRow = NonNullable<Awaited<ReturnType<typeof getRole>>>;

/** The domain id of a role on the wire: null for a global role. */
export const roleDomain = (r: { domain_id: string }): string | null => (r.domain_id === '' ? null : r.domain_id);

export function renderRole(req: FastifyRequest, r: RoleRow) {
  const extra = extraOf(r.extra);
  return {
    ...extra, id: r.id, name: r.name, domain_id: roleDomain(r), description: r.description === '' ? null : r.description,
    options: parseJson<Record<string, unknown>>(r.options, {}), links: selfLink(req, `/roles/${r.id}`),
  };
}

