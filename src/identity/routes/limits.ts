// Placeholder: routes of this area land here.
import type { Route } from '../../http/service.ts';
import type { IdentityContext } from '../context.ts';

export function limitsRoutes(_ctx: IdentityContext): Route[] {
  return [];
}
