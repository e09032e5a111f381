// Identity policy rules, named as Keystone names them. Targets use the keys
// domain_id, project_id and user_id (plus trustor/trustee for trusts), filled
// from the path and, where the route says, from the loaded resource.
import {
  isAdmin, isDomainManager, isDomainReader, isOwner, isProjectMember, isProjectReader, isSystemReader,
  type Rule,
} from '../http/policy.ts';

const admin: Rule = (c) => isAdmin(c);
const authenticated: Rule = () => true;
/** Cloud admin, system reader, or a reader of the target's domain. */
const reader: Rule = (c, t) => isAdmin(c) || isSystemReader(c) || isDomainReader(c, t.domain_id);
/** Cloud admin, or a domain admin managing their own domain. */
const manager: Rule = (c, t) => isAdmin(c) || isDomainManager(c, t.domain_id);
const adminOrOwner: Rule = (c, t) => isAdmin(c) || isOwner(c, t.user_id);
const readerOrOwner: Rule = (c, t) => reader(c, t) || isOwner(c, t.user_id);

const crud = (name: string, read: Rule, write: Rule, plural = `${name}s`): Record<string, Rule> => ({
  [`identity:get_${name}`]: read,
  [`identity:list_${plural}`]: read,
  [`identity:create_${name}`]: write,
  [`identity:update_${name}`]: write,
  [`identity:delete_${name}`]: write,
});

export const identityRules: Record<string, Rule> = {
  // tokens and the auth/* views of one's own token
  'identity:validate_token': (c, t) => isAdmin(c) || isSystemReader(c) || isOwner(c, t.user_id),
  'identity:revoke_token': (c, t) => isAdmin(c) || isOwner(c, t.user_id),
  'identity:get_auth_catalog': authenticated,
  'identity:get_auth_projects': authenticated,
  'identity:get_auth_domains': authenticated,
  'identity:get_auth_system': authenticated,

  ...crud('region', authenticated, admin),
  ...crud('service', reader, admin),
  ...crud('endpoint', reader, admin),
  ...crud('domain', reader, admin),
  'identity:get_domain': (c, t) =>
    reader(c, t) || (c.domainId !== null && c.domainId === t.domain_id) || (c.projectDomainId !== null && c.projectDomainId === t.domain_id),
  ...crud('project', reader, manager),
  'identity:get_project': (c, t) => reader(c, t) || isProjectReader(c, t.project_id),
  'identity:list_user_projects': readerOrOwner,
  'identity:list_project_tags': (c, t) => reader(c, t) || isProjectReader(c, t.project_id),
  'identity:get_project_tag': (c, t) => reader(c, t) || isProjectReader(c, t.project_id),
  'identity:update_project_tags': (c, t) => manager(c, t) || isProjectMember(c, t.project_id),
  'identity:create_project_tag': (c, t) => manager(c, t) || isProjectMember(c, t.project_id),
  'identity:delete_project_tag': (c, t) => manager(c, t) || isProjectMember(c, t.project_id),
  'identity:delete_project_tags': (c, t) => manager(c, t) || isProjectMember(c, t.project_id),

  ...crud('user', reader, manager),
  'identity:get_user': readerOrOwner,
  'identity:change_password': (c, t) => isOwner(c, t.user_id),
  ...crud('group', reader, manager),
  'identity:list_groups_for_user': readerOrOwner,
  'identity:list_users_in_group': reader,
  'identity:check_user_in_group': reader,
  'identity:add_user_to_group': manager,
  'identity:remove_user_from_group': manager,

  ...crud('role', reader, admin),
  ...crud('domain_role', reader, admin),
  'identity:get_implied_role': reader,
  'identity:list_implied_roles': reader,
  'identity:list_role_inference_rules': reader,
  'identity:check_implied_role': reader,
  'identity:create_implied_role': admin,
  'identity:delete_implied_role': admin,
  'identity:check_grant': reader,
  'identity:list_grants': reader,
  'identity:create_grant': manager,
  'identity:revoke_grant': manager,
  'identity:list_system_grants_for_user': readerOrOwner,
  'identity:check_system_grant_for_user': readerOrOwner,
  'identity:create_system_grant_for_user': admin,
  'identity:revoke_system_grant_for_user': admin,
  'identity:list_system_grants_for_group': reader,
  'identity:check_system_grant_for_group': reader,
  'identity:create_system_grant_for_group': admin,
  'identity:revoke_system_grant_for_group': admin,
  'identity:list_role_assignments': (c, t) => reader(c, t) || isOwner(c, t.user_id),
  'identity:list_role_assignments_for_tree': (c, t) => reader(c, t) || isProjectReader(c, t.project_id),

  ...crud('credential', adminOrOwner, adminOrOwner),
  'identity:ec2_get_credential': adminOrOwner,
  'identity:ec2_list_credentials': adminOrOwner,
  'identity:ec2_create_credential': adminOrOwner,
  'identity:ec2_delete_credential': adminOrOwner,
  'identity:get_application_credential': adminOrOwner,
  'identity:list_application_credentials': adminOrOwner,
  'identity:create_application_credential': (c, t) => isOwner(c, t.user_id),
  'identity:delete_application_credential': adminOrOwner,
  'identity:get_access_rule': adminOrOwner,
  'identity:list_access_rules': adminOrOwner,
  'identity:delete_access_rule': adminOrOwner,

  'identity:create_trust': (c, t) => isOwner(c, t.trustor_user_id),
  'identity:list_trusts': (c, t) => isAdmin(c) || isOwner(c, t.trustor_user_id) || isOwner(c, t.trustee_user_id),
  'identity:get_trust': (c, t) => isAdmin(c) || isOwner(c, t.trustor_user_id) || isOwner(c, t.trustee_user_id),
  'identity:delete_trust': (c, t) => isAdmin(c) || isOwner(c, t.trustor_user_id),
  'identity:list_roles_for_trust': (c, t) => isAdmin(c) || isOwner(c, t.trustor_user_id) || isOwner(c, t.trustee_user_id),
  'identity:get_role_for_trust': (c, t) => isAdmin(c) || isOwner(c, t.trustor_user_id) || isOwner(c, t.trustee_user_id),

  'identity:get_registered_limit': authenticated,
  'identity:list_registered_limits': authenticated,
  'identity:create_registered_limits': admin,
  'identity:update_registered_limit': admin,
  'identity:delete_registered_limit': admin,
  'identity:get_limit_model': authenticated,
  'identity:get_limit': (c, t) => reader(c, t) || isProjectReader(c, t.project_id),
  'identity:list_limits': authenticated,
  'identity:create_limits': admin,
  'identity:update_limit': admin,
  'identity:delete_limit': admin,

  ...crud('policy', admin, admin, 'policies'),
  ...crud('endpoint_group', admin, admin),
  'identity:add_endpoint_to_project': admin,
  'identity:remove_endpoint_from_project': admin,
  'identity:check_endpoint_in_project': admin,
  'identity:list_projects_for_endpoint': admin,
  'identity:list_endpoints_for_project': admin,
  'identity:add_endpoint_group_to_project': admin,
  'identity:remove_endpoint_group_from_project': admin,
  'identity:get_endpoint_group_in_project': admin,
  'identity:list_projects_associated_with_endpoint_group': admin,
  'identity:list_endpoints_associated_with_endpoint_group': admin,
  'identity:list_endpoint_groups_for_project': admin,
  ...crud('consumer', admin, admin),
  'identity:list_revoke_events': admin,
  'identity:create_domain_config': admin,
  'identity:get_domain_config': reader,
  'identity:update_domain_config': admin,
  'identity:delete_domain_config': admin,
  'identity:get_domain_config_default': authenticated,
};
