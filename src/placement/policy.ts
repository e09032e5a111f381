// Placement's policy rules, named as Placement names them
// (placement/policies/*.py). Placement is an admin API: every rule defaults to
// the admin, except a project's own usages, which its readers may see.
import { isAdmin, isProjectReader, type Rule } from '../http/policy.ts';

const admin: Rule = (c) => isAdmin(c);

const ADMIN_RULES = [
  'placement:resource_providers:list', 'placement:resource_providers:create', 'placement:resource_providers:show',
  'placement:resource_providers:update', 'placement:resource_providers:delete',
  'placement:resource_providers:inventories:list', 'placement:resource_providers:inventories:create',
  'placement:resource_providers:inventories:show', 'placement:resource_providers:inventories:update',
  'placement:resource_providers:inventories:delete',
  'placement:resource_providers:aggregates:list', 'placement:resource_providers:aggregates:update',
  'placement:resource_providers:usages',
  'placement:resource_providers:traits:list', 'placement:resource_providers:traits:update', 'placement:resource_providers:traits:delete',
  'placement:resource_providers:allocations:list',
  'placement:resource_classes:list', 'placement:resource_classes:create', 'placement:resource_classes:show',
  'placement:resource_classes:update', 'placement:resource_classes:delete',
  'placement:traits:list', 'placement:traits:show', 'placement:traits:update', 'placement:traits:delete',
  'placement:allocations:list', 'placement:allocations:manage', 'placement:allocations:update', 'placement:allocations:delete',
  'placement:allocation_candidates:list',
] as const;

export const placementRules: Record<string, Rule> = {
  ...Object.fromEntries(ADMIN_RULES.map((r) => [r, admin])),
  'placement:usages': (c, t) => isAdmin(c) || isProjectReader(c, t.project_id),
};
