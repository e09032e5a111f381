// Image policy rules, named and defaulted as Glance's (glance/policies/base.py,
// image.py: the "new defaults"). Targets carry project_id (the image owner),
// owner, visibility and member_id (the member a call is about, or for image
// reads whether the caller is a member of a shared image).
import { isAdmin, type Rule } from '../http/policy.ts';

const admin: Rule = (c) => isAdmin(c);
const authenticated: Rule = () => true;
const inProject = (c: Parameters<Rule>[0], projectId: unknown): boolean => c.projectId !== null && c.projectId === projectId;
const projectMember: Rule = (c, t) => inProject(c, t.project_id) && c.roles.has('member');
const projectReader: Rule = (c, t) => inProject(c, t.project_id) && c.roles.has('reader');
const adminOrProjectMember: Rule = (c, t) => admin(c, t) || projectMember(c, t);
/** Member of the owner project, of a project the image is shared with, or a visibility anyone may read. */
const reachable = (c: Parameters<Rule>[0], t: Parameters<Rule>[1]): boolean =>
  inProject(c, t.project_id) || inProject(c, t.member_id) || ['community', 'public', 'shared'].includes(String(t.visibility));

export const imageRules: Record<string, Rule> = {
  /** Version-independent discovery documents that still need a token (schemas, info). */
  get_schemas: authenticated,
  get_images: (c) => admin(c, {}) || (c.projectId !== null && c.roles.has('reader')),
  get_image: (c, t) => admin(c, t) || (c.roles.has('reader') && reachable(c, t)),
  add_image: (c, t) => admin(c, t) || (projectMember(c, t) && inProject(c, t.owner)),
  modify_image: adminOrProjectMember,
  delete_image: adminOrProjectMember,
  upload_image: adminOrProjectMember,
  download_image: (c, t) => admin(c, t) || (c.roles.has('member') && reachable(c, t)),
  publicize_image: admin,
  communitize_image: adminOrProjectMember,
  deactivate: adminOrProjectMember,
  reactivate: adminOrProjectMember,
  add_member: adminOrProjectMember,
  delete_member: adminOrProjectMember,
  get_member: (c, t) => admin(c, t) || (c.roles.has('reader') && (inProject(c, t.project_id) || inProject(c, t.member_id))),
  get_members: (c, t) => admin(c, t) || (c.roles.has('reader') && (inProject(c, t.project_id) || inProject(c, t.member_id))),
  modify_member: (c, t) => admin(c, t) || (c.roles.has('member') && inProject(c, t.member_id)),
  /** Owner-project reader for the task list of an image. */
  get_tasks: (c, t) => admin(c, t) || projectReader(c, t),
  // Metadata definitions: readers see public namespaces and their project's; only admins change them.
  get_metadef_namespaces: (c) => admin(c, {}) || (c.projectId !== null && c.roles.has('reader')),
  ...Object.fromEntries([
    'get_metadef_namespace', 'get_metadef_object', 'get_metadef_objects', 'list_metadef_resource_types', 'get_metadef_resource_type',
    'get_metadef_property', 'get_metadef_properties', 'get_metadef_tag', 'get_metadef_tags',
  ].map((n): [string, Rule] => [n, (c, t) => admin(c, t) || (c.roles.has('reader') && (inProject(c, t.project_id) || t.visibility === 'public'))])),
  ...Object.fromEntries([
    'add_metadef_namespace', 'modify_metadef_namespace', 'delete_metadef_namespace', 'add_metadef_object', 'modify_metadef_object',
    'delete_metadef_object', 'add_metadef_resource_type_association', 'remove_metadef_resource_type_association',
    'add_metadef_property', 'modify_metadef_property', 'remove_metadef_property', 'add_metadef_tag', 'add_metadef_tags',
    'modify_metadef_tag', 'delete_metadef_tag', 'delete_metadef_tags',
  ].map((n): [string, Rule] => [n, admin])),
};
