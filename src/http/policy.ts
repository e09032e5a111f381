// Policy: every route names a rule; a rule is a predicate over the caller and
// the target of the call. A rule name that no service defines denies.
import type { Credentials } from './auth.ts';

export type Target = Record<string, unknown>;
export type Rule = (cred: Credentials, target: Target) => boolean;

/** The rule of routes that need no token. */
export const PUBLIC = 'public';

// OpenStack's default personas. With scope enforcement off (as Keystone and
// Nova ship today), the admin role in any scope is the cloud administrator.
export const isAdmin = (c: Credentials): boolean => c.roles.has('admin');
export const isSystemReader = (c: Credentials): boolean => c.system && c.roles.has('reader');
export const isDomainReader = (c: Credentials, domainId: unknown): boolean =>
  c.domainId !== null && c.domainId === domainId && c.roles.has('reader');
export const isDomainManager = (c: Credentials, domainId: unknown): boolean =>
  c.domainId !== null && c.domainId === domainId && c.roles.has('admin');
export const isProjectMember = (c: Credentials, projectId: unknown): boolean =>
  c.projectId !== null && c.projectId === projectId && c.roles.has('member');
export const isProjectReader = (c: Credentials, projectId: unknown): boolean =>
  c.projectId !== null && c.projectId === projectId && c.roles.has('reader');
export const isOwner = (c: Credentials, userId: unknown): boolean => c.userId === userId;

export class Policy {
  private readonly rules: Record<string, Rule>;
  constructor(rules: Record<string, Rule>) {
    this.rules = rules;
  }
  has(name: string): boolean {
    return name === PUBLIC || Object.hasOwn(this.rules, name);
  }
  allows(name: string, cred: Credentials | null, target: Target): boolean {
    if (name === PUBLIC) return true;
    const rule = this.rules[name];
    if (!rule || !cred) return false;
    return rule(cred, target);
  }
}
