// The networks an RBAC policy opens to a caller's project (or to everyone),
// as a subquery the visibility filters of networks and subnets use.
import type { ExpressionBuilder } from 'kysely';
import type { Credentials } from '../http/auth.ts';

export function rbacGranted(eb: ExpressionBuilder<any, any>, c: Credentials, actions: string[]) {
  return eb.selectFrom('network_rbac_policies').select('object_id')
    .where('object_type', '=', 'network').where('action', 'in', actions)
    .where('target_project', 'in', c.projectId ? ['*', c.projectId] : ['*']);
}
