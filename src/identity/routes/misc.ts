// Placeholder: routes of this area land here.
import type { Route } from '../../http/service.ts';
import type { IdentityContext } from '../context.ts';

export function miscRoutes(_ctx: IdentityContext): Route[] {
  return [];
}
