// Cinder's policy rules (cinder/policies/*.py, the new defaults): a
// project's readers read, its members create and change, the admin does
// everything, including the admin actions and types. Which volumes a caller
// sees is the queries' business (volumes.ts): another project's volume is a
// 404, never a 403.
import { isAdmin, type Rule } from '../http/policy.ts';

const reader: Rule = (c, t) => isAdmin(c) || (c.projectId !== null && c.roles.has('reader') && (t.project_id === undefined || t.project_id === c.projectId));
const member: Rule = (c, t) => isAdmin(c) || (c.projectId !== null && c.roles.has('member') && (t.project_id === undefined || t.project_id === c.projectId));
const admin: Rule = (c) => isAdmin(c);
const authenticated: Rule = () => true;

export const volumeRules: Record<string, Rule> = {
  'volume:create': member,
  'volume:get': reader,
  'volume:get_all': reader,
  'volume:update': member,
  'volume:delete': member,
  'volume:force_delete': admin,
  'volume:extend': member,
  'volume:extend_attached_volume': member,
  'volume:get_volume_metadata': reader,
  'volume:create_volume_metadata': member,
  'volume:update_volume_metadata': member,
  'volume:delete_volume_metadata': member,
  'volume:update_readonly_flag': member,
  'volume_extension:volume_actions:update_readonly_flag': member,
  'volume_extension:volume_admin_actions:reset_status': admin,
  'volume_extension:volume_admin_actions:force_delete': admin,
  'volume_extension:volume_host_attribute': admin,
  'volume_extension:volume_tenant_attribute': reader,
  'volume:set_bootable': member,
  'volume_extension:volume_actions:reserve': member,
  'volume_extension:volume_actions:unreserve': member,
  'volume_extension:volume_actions:attach': member,
  'volume_extension:volume_actions:begin_detaching': member,
  'volume_extension:volume_actions:roll_detaching': member,
  'volume_extension:volume_actions:detach': member,
  'volume_extension:volume_admin_actions:force_detach': admin,
  'volume_extension:volume_image_metadata:show': reader,
  'volume_extension:volume_image_metadata:set': member,
  'volume_extension:volume_image_metadata:remove': member,
  'volume_extension:types_manage': admin,
  'volume_extension:type_get': authenticated,
  'volume_extension:type_get_all': authenticated,
  'volume_extension:types_extra_specs:index': authenticated,
  'volume_extension:types_extra_specs:show': authenticated,
  'volume_extension:types_extra_specs:create': admin,
  'volume_extension:types_extra_specs:update': admin,
  'volume_extension:types_extra_specs:delete': admin,
  'volume_extension:volume_type_access': admin,
  'volume_extension:volume_type_access:addProjectAccess': admin,
  'volume_extension:volume_type_access:removeProjectAccess': admin,
  'volume_extension:default_set_or_update': admin,
  'volume_extension:default_get': admin,
  'volume_extension:default_get_all': admin,
  'volume_extension:default_unset': admin,
  'volume_extension:availability_zone_list': authenticated,
  'volume_extension:quotas:show': (c, t) => isAdmin(c) || (c.projectId !== null && c.projectId === t.project_id && c.roles.has('reader')),
  'volume_extension:quotas:update': admin,
  'volume_extension:quotas:delete': admin,
  'volume_extension:quota_classes': admin,
  'volume_extension:extensions': authenticated,
  'limits_extension:used_limits': reader,
  'volume:get_all_resource_filters': authenticated,
  'volume:create_snapshot': member,
  'volume:get_snapshot': reader,
  'volume:get_all_snapshots': reader,
  'volume:update_snapshot': member,
  'volume:delete_snapshot': member,
  'volume:get_snapshot_metadata': reader,
  'volume:update_snapshot_metadata': member,
  'volume:delete_snapshot_metadata': member,
  'volume_extension:snapshot_admin_actions:reset_status': admin,
  'volume_extension:snapshot_admin_actions:force_delete': admin,
  'volume_extension:qos_specs_manage:create': admin,
  'volume_extension:qos_specs_manage:get': admin,
  'volume_extension:qos_specs_manage:get_all': admin,
  'volume_extension:qos_specs_manage:update': admin,
  'volume_extension:qos_specs_manage:delete': admin,
  'volume:create_transfer': member,
  'volume:get_transfer': reader,
  'volume:get_all_transfers': reader,
  'volume:delete_transfer': member,
  'volume:accept_transfer': (c) => isAdmin(c) || (c.projectId !== null && c.roles.has('member')),
};

/** Extra specs a non-admin sees (Cinder shows none, as `volume_extension:access_types_extra_specs`, except the user-visible ones). */
export const USER_VISIBLE_EXTRA_SPECS = ['multiattach', 'RESKEY:availability_zones', 'replication_enabled'] as const;
