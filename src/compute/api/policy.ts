// Nova's default policy (new defaults, scope enforcement off): the admin role
// is the cloud administrator; members change and readers read their own
// project's resources; key pairs belong to their user.
import type { Credentials } from '../../http/auth.ts';
import { isAdmin, type Rule } from '../../http/policy.ts';

const admin: Rule = (c) => isAdmin(c);
const any: Rule = () => true;
const projectMember: Rule = (c, t) => isAdmin(c) || (c.projectId !== null && c.projectId === t.project_id && c.roles.has('member'));
const projectReader: Rule = (c, t) =>
  isAdmin(c) || (c.projectId !== null && c.projectId === t.project_id && (c.roles.has('reader') || c.roles.has('member')));
const adminOrUser: Rule = (c, t) => isAdmin(c) || (t.user_id !== undefined && c.userId === t.user_id);
/** Reading a project's own data (limits, quotas, usage) with a project-scoped token. */
/** Changing a project's own network resources through a proxy (the target is the caller's project). */
const projectMemberOfTarget: Rule = (c) => isAdmin(c) || (c.projectId !== null && c.roles.has('member'));
const projectReaderOfTarget: Rule = (c, t) => isAdmin(c) || (c.projectId !== null && c.projectId === (t.project_id ?? c.projectId));

export const isComputeAdmin = (c: Credentials | null): boolean => !!c && isAdmin(c);

const P = 'os_compute_api';
export const computeRules: Record<string, Rule> = {
  // servers
  [`${P}:servers:index`]: projectReaderOfTarget,
  [`${P}:servers:detail`]: projectReaderOfTarget,
  [`${P}:servers:show`]: projectReader,
  [`${P}:servers:create`]: projectMember,
  [`${P}:servers:update`]: projectMember,
  [`${P}:servers:delete`]: projectMember,
  [`${P}:servers:action`]: projectMember,
  // admin-only server actions (Nova's defaults: the cloud administrator)
  [`${P}:os-migrate-server:migrate`]: admin,
  [`${P}:os-migrate-server:migrate_live`]: admin,
  [`${P}:os-evacuate`]: admin,
  [`${P}:os-shelve:shelve_offload`]: admin,
  [`${P}:os-migrations:index`]: admin,
  [`${P}:servers:migrations:index`]: admin,
  [`${P}:servers:migrations:show`]: admin,
  [`${P}:servers:migrations:force_complete`]: admin,
  [`${P}:servers:migrations:delete`]: admin,
  [`${P}:servers:topology`]: projectReader,
  [`${P}:os-instance-actions:list`]: projectReader,
  [`${P}:server-metadata:index`]: projectReader,
  [`${P}:server-metadata:change`]: projectMember,
  [`${P}:os-server-tags:index`]: projectReader,
  [`${P}:os-server-tags:change`]: projectMember,
  [`${P}:ips:index`]: projectReader,
  [`${P}:os-server-diagnostics`]: admin,
  [`${P}:os-server-external-events`]: admin,
  [`${P}:os-remote-consoles`]: projectMember,
  [`${P}:os-attach-interfaces:list`]: projectReader,
  [`${P}:os-attach-interfaces:show`]: projectReader,
  [`${P}:os-attach-interfaces:create`]: projectMember,
  [`${P}:os-attach-interfaces:delete`]: projectMember,
  [`${P}:os-volumes-attachments:index`]: projectReader,
  [`${P}:os-volumes-attachments:show`]: projectReader,
  [`${P}:os-volumes-attachments:create`]: projectMember,
  [`${P}:os-volumes-attachments:update`]: projectMember,
  [`${P}:os-volumes-attachments:swap`]: admin,
  [`${P}:os-volumes-attachments:delete`]: projectMember,
  // security groups (a server's, and the deprecated proxies below 2.36) and the network proxies
  [`${P}:os-security-groups:list`]: projectReader,
  [`${P}:os-security-groups:get`]: projectReaderOfTarget,
  [`${P}:os-security-groups:create`]: projectMemberOfTarget,
  [`${P}:os-security-groups:update`]: projectMemberOfTarget,
  [`${P}:os-security-groups:delete`]: projectMemberOfTarget,
  [`${P}:os-security-groups:rule:create`]: projectMemberOfTarget,
  [`${P}:os-security-groups:rule:delete`]: projectMemberOfTarget,
  [`${P}:os-networks:list`]: projectReaderOfTarget,
  [`${P}:os-networks:show`]: projectReaderOfTarget,
  [`${P}:os-networks:manage`]: admin,
  [`${P}:os-tenant-networks:list`]: projectReaderOfTarget,
  [`${P}:os-tenant-networks:show`]: projectReaderOfTarget,
  [`${P}:os-tenant-networks:manage`]: projectMemberOfTarget,
  [`${P}:os-floating-ips:list`]: projectReaderOfTarget,
  [`${P}:os-floating-ips:show`]: projectReaderOfTarget,
  [`${P}:os-floating-ips:create`]: projectMemberOfTarget,
  [`${P}:os-floating-ips:delete`]: projectMemberOfTarget,
  [`${P}:os-floating-ip-pools:list`]: any,
  [`${P}:os-console-auth-tokens`]: admin,
  // flavors
  [`${P}:flavors`]: any,
  [`${P}:os-flavor-manage`]: admin,
  [`${P}:os-flavor-extra-specs:index`]: any,
  [`${P}:os-flavor-extra-specs:change`]: admin,
  [`${P}:os-flavor-access`]: admin,
  // key pairs
  [`${P}:os-keypairs`]: adminOrUser,
  // limits, quotas, usage
  [`${P}:limits`]: any,
  [`${P}:os-quota-sets:show`]: projectReaderOfTarget,
  [`${P}:os-quota-sets:defaults`]: any,
  [`${P}:os-quota-sets:update`]: admin,
  [`${P}:os-quota-sets:delete`]: admin,
  [`${P}:os-simple-tenant-usage:list`]: admin,
  [`${P}:os-simple-tenant-usage:show`]: projectReaderOfTarget,
  // infrastructure
  [`${P}:os-availability-zone:list`]: any,
  [`${P}:os-availability-zone:detail`]: admin,
  [`${P}:os-hypervisors`]: admin,
  [`${P}:os-services`]: admin,
  [`${P}:os-hosts`]: admin,
  [`${P}:os-aggregates`]: admin,
  // server groups
  [`${P}:os-server-groups:index`]: projectReaderOfTarget,
  [`${P}:os-server-groups:show`]: projectReader,
  [`${P}:os-server-groups:create`]: projectMember,
  [`${P}:os-server-groups:delete`]: projectMember,
  // image proxy
  [`${P}:images`]: any,
  // extensions
  [`${P}:extensions`]: any,
};
