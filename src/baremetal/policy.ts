// Ironic's default policy (ironic/common/policy.py, secure RBAC), with
// Stratus's personas: the admin role is the system scope (every node);
// a project sees and acts on the nodes it owns (`owner`) or leases
// (`lessee`), with the role each rule asks. A node a project may not see is
// a 404 (the routes load it first); one it sees but may not act on, a 403.
// Targets carry `owner`, `lessee` (nodes, ports, port groups) or
// `allocation_owner` (allocations).
import type { Credentials } from '../http/auth.ts';
import { isAdmin, type Rule } from '../http/policy.ts';

const has = (c: Credentials, role: string) => c.roles.has(role) || (role !== 'admin' && c.roles.has('admin')) || (role === 'reader' && (c.roles.has('member') || c.roles.has('manager')));
const inProject = (c: Credentials, p: unknown) => c.projectId !== null && typeof p === 'string' && p === c.projectId;
const owner = (role: string): Rule => (c, t) => inProject(c, t.owner) && has(c, role);
const lessee = (role: string): Rule => (c, t) => inProject(c, t.lessee) && has(c, role);
const any = (...rules: Rule[]): Rule => (c, t) => rules.some((r) => r(c, t));
const admin: Rule = (c) => isAdmin(c);

const SYSTEM_OR_PROJECT_READER = any(admin, owner('reader'), lessee('reader'));
const SYSTEM_OR_PROJECT_MEMBER = any(admin, owner('member'), lessee('member'));
const SYSTEM_OR_OWNER_READER = any(admin, owner('reader'));
const SYSTEM_MEMBER_OR_OWNER_MEMBER = any(admin, owner('member'));
const SYSTEM_MEMBER_OR_OWNER_ADMIN = any(admin, owner('manager'));
const SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN = any(admin, owner('member'), lessee('manager'));
const SYSTEM_ADMIN_OR_OWNER_ADMIN = any(admin, owner('manager'));
/** Any caller with a role on a project (the list is filtered to what it may see). */
const API_READER: Rule = (c) => isAdmin(c) || (c.projectId !== null && has(c, 'reader'));
const ALLOCATION_READER: Rule = (c, t) => isAdmin(c) || (inProject(c, t.allocation_owner) && has(c, 'reader'));
const ALLOCATION_MEMBER: Rule = (c, t) => isAdmin(c) || (inProject(c, t.allocation_owner) && has(c, 'member'));
const ALLOCATION_CREATOR: Rule = (c) => isAdmin(c) || (c.projectId !== null && has(c, 'member'));

export const baremetalRules: Record<string, Rule> = {
  'baremetal:api': API_READER,
  'baremetal:node:create': admin,
  'baremetal:node:list': API_READER,
  'baremetal:node:list_all': admin,
  'baremetal:node:get': SYSTEM_OR_PROJECT_READER,
  'baremetal:node:get:last_error': SYSTEM_OR_OWNER_READER,
  'baremetal:node:get:reservation': SYSTEM_OR_OWNER_READER,
  'baremetal:node:get:driver_internal_info': SYSTEM_OR_OWNER_READER,
  'baremetal:node:get:driver_info': SYSTEM_OR_OWNER_READER,
  'baremetal:node:update:driver_info': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:update:properties': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:update:chassis_uuid': admin,
  'baremetal:node:update:instance_uuid': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:update:lessee': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:update:owner': admin,
  'baremetal:node:update:driver_interfaces': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:node:update:network_data': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:update:conductor_group': admin,
  'baremetal:node:update:name': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:update:retired': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:update': SYSTEM_OR_PROJECT_MEMBER,
  'baremetal:node:update_extra': SYSTEM_OR_PROJECT_MEMBER,
  'baremetal:node:update_instance_info': SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
  'baremetal:node:update_owner_provisioned': admin,
  'baremetal:node:delete': admin,
  'baremetal:node:validate': SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
  'baremetal:node:set_maintenance': SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
  'baremetal:node:clear_maintenance': SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
  'baremetal:node:get_boot_device': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:node:set_boot_device': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:node:inject_nmi': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:node:get_states': SYSTEM_OR_PROJECT_READER,
  'baremetal:node:set_power_state': SYSTEM_OR_PROJECT_MEMBER,
  'baremetal:node:set_provision_state': SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
  'baremetal:node:set_raid_state': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:get_console': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:set_console_state': SYSTEM_MEMBER_OR_OWNER_MEMBER,
  'baremetal:node:vif:list': SYSTEM_OR_PROJECT_READER,
  'baremetal:node:vif:attach': SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
  'baremetal:node:vif:detach': SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
  'baremetal:node:traits:list': SYSTEM_OR_PROJECT_READER,
  'baremetal:node:traits:set': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:node:traits:delete': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:node:bios:get': SYSTEM_OR_PROJECT_READER,
  'baremetal:node:history:get': SYSTEM_OR_OWNER_READER,
  'baremetal:port:get': SYSTEM_OR_PROJECT_READER,
  'baremetal:port:list': API_READER,
  'baremetal:port:list_all': admin,
  'baremetal:port:create': SYSTEM_ADMIN_OR_OWNER_ADMIN,
  'baremetal:port:delete': SYSTEM_ADMIN_OR_OWNER_ADMIN,
  'baremetal:port:update': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:portgroup:get': SYSTEM_OR_PROJECT_READER,
  'baremetal:portgroup:list': API_READER,
  'baremetal:portgroup:list_all': admin,
  'baremetal:portgroup:create': SYSTEM_ADMIN_OR_OWNER_ADMIN,
  'baremetal:portgroup:delete': SYSTEM_ADMIN_OR_OWNER_ADMIN,
  'baremetal:portgroup:update': SYSTEM_MEMBER_OR_OWNER_ADMIN,
  'baremetal:chassis:get': admin,
  'baremetal:chassis:create': admin,
  'baremetal:chassis:delete': admin,
  'baremetal:chassis:update': admin,
  'baremetal:driver:get': admin,
  'baremetal:driver:get_properties': admin,
  'baremetal:conductor:get': admin,
  'baremetal:allocation:get': ALLOCATION_READER,
  'baremetal:allocation:list': API_READER,
  'baremetal:allocation:list_all': admin,
  'baremetal:allocation:create': ALLOCATION_CREATOR,
  'baremetal:allocation:create_restricted': admin,
  'baremetal:allocation:delete': ALLOCATION_MEMBER,
  'baremetal:allocation:update': ALLOCATION_MEMBER,
  'baremetal:events:post': admin,
};

/** What a node's rules are checked against. */
export const nodeTarget = (n: { owner: string | null; lessee: string | null }) => ({ owner: n.owner, lessee: n.lessee });

/** Whether the caller sees the node at all (otherwise: 404). */
export const seesNode = (c: Credentials, n: { owner: string | null; lessee: string | null }): boolean =>
  isAdmin(c) || (c.projectId !== null && (n.owner === c.projectId || n.lessee === c.projectId));
