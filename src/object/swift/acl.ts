// Swift's access rules as its keystoneauth middleware applies them:
//
// - the account owner: a token scoped to the account's project holding an
//   operator role (member or admin), and the reseller admin (the admin role in
//   any scope) may do anything, ACLs included (Swift's "swift_owner");
// - a reader of the project may read;
// - the account ACL (X-Account-Access-Control, JSON: admin / read-write /
//   read-only lists) grants those levels to the users it names;
// - container ACLs: X-Container-Read (objects and, for users it names or with
//   `.rlistings`, listings; `.r:<referrer>` lets anyone whose Referer matches
//   read objects, `.r:*` anyone at all) and X-Container-Write (object writes).
//
// ACL entries name users as `<project id>:<user id>`, `<project id>:*`,
// `*:<user id>`, `*:*`, with names in place of ids, or a role name.
import type { Credentials } from '../../http/auth.ts';
import { swiftError } from './errors.ts';

export type AccessLevel = 'owner' | 'admin' | 'read-write' | 'read-only' | 'none';

const REFERRER = /^\.r(ef|eferr?er)?:/;

/**
 * A container ACL header as Swift stores it (swift.common.middleware.acl's
 * clean_acl): elements trimmed, `.ref:`/`.referer:`/`.referrer:` written
 * `.r:`; an unknown `.designator` or an empty referrer is a 400, and so is a
 * referrer in a write ACL. Empty: null (the ACL removed).
 */
export function cleanAcl(header: 'X-Container-Read' | 'X-Container-Write', value: string): string | null {
  const out: string[] = [];
  for (const raw of value.split(',')) {
    const el = raw.trim();
    if (!el) continue;
    if (el.startsWith('.')) {
      if (el === '.rlistings') {
        out.push(el);
        continue;
      }
      const m = REFERRER.exec(el);
      if (!m) throw swiftError(400, `Unknown designator ${JSON.stringify(el.split(':')[0])} in ACL ${JSON.stringify(value)}`);
      if (header === 'X-Container-Write') throw swiftError(400, `Referrers not allowed in write ACL: ${JSON.stringify(value)}`);
      let host = el.slice(m[0].length).trim();
      const negate = host.startsWith('-');
      if (negate) host = host.slice(1).trim();
      if (!host || host === '-') throw swiftError(400, `No host/domain value after referrer designation in ACL: ${JSON.stringify(value)}`);
      out.push(`.r:${negate ? '-' : ''}${host}`);
    } else {
      out.push(el);
    }
  }
  return out.length ? out.join(',') : null;
}

interface ParsedAcl { referrers: string[]; groups: string[]; listings: boolean }

export function parseAcl(acl: string | null): ParsedAcl {
  const p: ParsedAcl = { referrers: [], groups: [], listings: false };
  if (!acl) return p;
  for (const el of acl.split(',')) {
    const e = el.trim();
    if (!e) continue;
    if (e === '.rlistings') p.listings = true;
    else if (e.startsWith('.r:')) p.referrers.push(e.slice(3));
    else p.groups.push(e);
  }
  return p;
}

/** Swift's referrer_allowed: the last matching rule wins; `*` matches any (or no) Referer, `.example.com` a domain. */
export function referrerAllowed(referer: string | undefined, rules: string[]): boolean {
  let allow = false;
  let host = '';
  if (referer) {
    try {
      host = new URL(referer).hostname;
    } catch {
      host = '';
    }
  }
  for (const rule of rules) {
    const negate = rule.startsWith('-');
    const r = negate ? rule.slice(1) : rule;
    const matches = r === '*' || (!!host && (r === host || (r.startsWith('.') && host.endsWith(r)) || (r.startsWith('*.') && host.endsWith(r.slice(1)))));
    if (matches) allow = !negate;
  }
  return allow;
}

/** The `project:user` forms and roles under which a caller may be named in an ACL. */
export function aclIdentities(cred: Credentials): Set<string> {
  const names = new Set<string>();
  const projects = ['*'];
  if (cred.projectId) projects.push(cred.projectId);
  const projectName = projectNameOf(cred);
  if (projectName) projects.push(projectName);
  for (const p of projects) {
    for (const u of [cred.userId, cred.userName, '*']) names.add(`${p}:${u}`);
  }
  names.add(cred.userId);
  for (const r of cred.roles) names.add(r);
  return names;
}

function projectNameOf(cred: Credentials): string | null {
  const t = cred.token as { project?: { name?: unknown } } | null;
  return t && typeof t === 'object' && t.project && typeof t.project.name === 'string' ? t.project.name : null;
}

/** Whether an ACL's user or role entries name the caller. */
export function aclNames(acl: string | null, cred: Credentials | null): boolean {
  if (!cred || !acl) return false;
  const ids = aclIdentities(cred);
  return parseAcl(acl).groups.some((g) => ids.has(g));
}

/** The account ACL header's JSON, checked (Swift: 400 when it is not an object of known levels to lists of strings). */
export function parseAccountAcl(value: string): string | null {
  const bad = () => swiftError(400, `Invalid X-Account-Access-Control: ${value.slice(0, 200)}`);
  if (!value.trim()) return null;
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    throw bad();
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad();
  const out: Record<string, string[]> = {};
  for (const [k, list] of Object.entries(v)) {
    if (!['admin', 'read-write', 'read-only'].includes(k)) throw bad();
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw bad();
    if (list.length) out[k] = list as string[];
  }
  return Object.keys(out).length ? JSON.stringify(out) : null;
}

/** The level an account ACL grants the caller. */
export function accountAclLevel(acl: string | null, cred: Credentials | null): AccessLevel {
  if (!acl || !cred) return 'none';
  let v: Record<string, string[]>;
  try {
    v = JSON.parse(acl);
  } catch {
    return 'none';
  }
  const ids = aclIdentities(cred);
  const names = (k: string) => Array.isArray(v[k]) && v[k]!.some((x) => ids.has(x));
  if (names('admin')) return 'admin';
  if (names('read-write')) return 'read-write';
  if (names('read-only')) return 'read-only';
  return 'none';
}

/** The caller's own standing in the account of `project` (before any ACL). */
export function ownLevel(cred: Credentials | null, project: string): AccessLevel {
  if (!cred) return 'none';
  // the reseller admin (Keystone's admin, or Swift's ResellerAdmin role), and the project's admin
  if (cred.roles.has('admin') || [...cred.roles].some((r) => r.toLowerCase() === 'reselleradmin')) return 'owner';
  if (cred.projectId === project) {
    if (cred.roles.has('member') || cred.roles.has('swiftoperator')) return 'owner';
    if (cred.roles.has('reader')) return 'read-only';
  }
  return 'none';
}
