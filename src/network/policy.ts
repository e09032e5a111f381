// Neutron's policy rules (neutron/conf/policies/*.py, the new defaults):
// readers of a project read, members create and change, the admin does
// everything. Which rows a project sees (its own, shared and external
// networks) is decided by the queries (resource.ts): another project's
// resource is a 404, not a 403, as in Neutron. Attributes only an admin may
// set (provider:*, binding:*, shared, router:external) are checked per
// attribute where the body is read (`adminOnly`).
import type { Credentials } from '../http/auth.ts';
import { isAdmin, type Rule } from '../http/policy.ts';
import { policyDenied } from './errors.ts';

const reader: Rule = (c) => isAdmin(c) || (c.projectId !== null && c.roles.has('reader'));
const member: Rule = (c) => isAdmin(c) || (c.projectId !== null && c.roles.has('member'));
const admin: Rule = (c) => isAdmin(c);
const authenticated: Rule = () => true;

const RESOURCES = ['network', 'subnet', 'port', 'security_group', 'security_group_rule', 'address_group', 'rbac_policy', 'subnetpool', 'router', 'floatingip', 'floatingip_port_forwarding'] as const;
const COLLECTIONS = ['networks', 'subnets', 'ports', 'security_groups', 'address_groups', 'subnetpools', 'routers', 'floatingips'] as const;

export const networkRules: Record<string, Rule> = {
  get_extension: authenticated,
  ...Object.fromEntries(RESOURCES.flatMap((r) => [
    [`get_${r}`, reader], [`create_${r}`, member], [`update_${r}`, member], [`delete_${r}`, member],
  ])),
  ...Object.fromEntries(COLLECTIONS.flatMap((c) => [
    [`get_${c}_tags`, reader], [`create_${c}_tags`, member], [`update_${c}_tags`, member], [`delete_${c}_tags`, member],
  ])),
  get_quota: (c, t) => isAdmin(c) || (c.projectId !== null && c.projectId === t.project_id && c.roles.has('reader')),
  add_router_interface: member,
  remove_router_interface: member,
  add_extraroutes: member,
  remove_extraroutes: member,
  get_auto_allocated_topology: reader,
  delete_auto_allocated_topology: member,
  update_quota: admin,
  get_network_ip_availability: admin,
  delete_quota: admin,
};

/** Refuses (403) a body that sets an attribute only an admin may set. */
export function adminOnly(c: Credentials, action: string, body: Record<string, unknown>, attrs: readonly string[]): void {
  if (isAdmin(c)) return;
  const set = attrs.find((a) => body[a] !== undefined);
  if (set) throw policyDenied(`${action}:${set}`);
}

/** Refuses (403) changing a row of another project the caller can see (a shared network, a port on its network). */
export function ownerOnly(c: Credentials, action: string, projectId: string): void {
  if (!isAdmin(c) && c.projectId !== projectId) throw policyDenied(action);
}
