// Idempotent bootstrap: the Default domain, the admin project and user, the
// default roles and their implications, RegionOne, and the catalog entries of
// every service this server hosts. Running it again changes nothing but the
// URLs of the hosted services' endpoints (the public URL may have moved).
import type { Db } from '../db/database.ts';
import { hexId, nowIso } from '../common/ids.ts';
import { AssignmentType, SYSTEM_ALL } from './assignments.ts';
import { hashPassword } from './passwords.ts';
import { ensureKey, KeyTable } from './keys.ts';

export const DEFAULT_DOMAIN_ID = 'default';
export const REGION = 'RegionOne';

export interface HostedService { type: string; name: string; path: string }

export interface BootstrapOptions {
  adminUser?: string;
  adminProject?: string;
  /** Set only when the admin user does not exist yet (or when resetting). */
  adminPassword: string;
  resetAdminPassword?: boolean;
  publicUrl: string;
  services: HostedService[];
}

async function ensureRole(db: Db, name: string): Promise<string> {
  const found = await db.selectFrom('identity_roles').select('id').where('name', '=', name).where('domain_id', '=', '').executeTakeFirst();
  if (found) return found.id;
  const id = hexId();
  await db.insertInto('identity_roles').values({ id, name, domain_id: '', description: '', options: '{}', extra: '{}' }).execute();
  return id;
}

async function ensureAssignment(db: Db, type: string, actor: string, target: string, role: string): Promise<void> {
  const found = await db.selectFrom('identity_assignments').select('role_id')
    .where('type', '=', type).where('actor_id', '=', actor).where('target_id', '=', target).where('role_id', '=', role).where('inherited', '=', 0)
    .executeTakeFirst();
  if (!found) await db.insertInto('identity_assignments').values({ type, actor_id: actor, target_id: target, role_id: role, inherited: 0 }).execute();
}

export async function bootstrap(db: Db, o: BootstrapOptions): Promise<{ adminUserId: string; adminProjectId: string; created: boolean }> {
  await ensureKey(db, KeyTable.token);
  await ensureKey(db, KeyTable.credential);
  const now = nowIso();
  if (!(await db.selectFrom('identity_domains').select('id').where('id', '=', DEFAULT_DOMAIN_ID).executeTakeFirst())) {
    await db.insertInto('identity_domains').values({
      id: DEFAULT_DOMAIN_ID, name: 'Default', description: 'The default domain', enabled: 1, extra: '{}', created_at: now,
    }).execute();
  }
  const projectName = o.adminProject ?? 'admin';
  let project = await db.selectFrom('identity_projects').select('id').where('domain_id', '=', DEFAULT_DOMAIN_ID).where('name', '=', projectName).executeTakeFirst();
  if (!project) {
    project = { id: hexId() };
    await db.insertInto('identity_projects').values({
      id: project.id, name: projectName, domain_id: DEFAULT_DOMAIN_ID, parent_id: null, description: 'Bootstrap project for initializing the cloud.',
      enabled: 1, extra: '{}', created_at: now,
    }).execute();
  }
  const userName = o.adminUser ?? 'admin';
  let user = await db.selectFrom('identity_users').select('id').where('domain_id', '=', DEFAULT_DOMAIN_ID).where('name', '=', userName).executeTakeFirst();
  const created = !user;
  if (!user) {
    user = { id: hexId() };
    await db.insertInto('identity_users').values({
      id: user.id, name: userName, domain_id: DEFAULT_DOMAIN_ID, enabled: 1, default_project_id: null,
      password_hash: await hashPassword(o.adminPassword), password_created_at: now, password_expires_at: null,
      options: '{}', extra: '{}', failed_auth_count: 0, failed_auth_at: null, last_active_at: null, created_at: now,
    }).execute();
  } else if (o.resetAdminPassword) {
    await db.updateTable('identity_users').set({ password_hash: await hashPassword(o.adminPassword), password_created_at: now })
      .where('id', '=', user.id).execute();
  }
  const reader = await ensureRole(db, 'reader');
  const member = await ensureRole(db, 'member');
  const admin = await ensureRole(db, 'admin');
  await ensureRole(db, 'service');
  for (const [prior, implied] of [[admin, member], [member, reader]] as const) {
    const found = await db.selectFrom('identity_implied_roles').select('prior_role_id').where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).executeTakeFirst();
    if (!found) await db.insertInto('identity_implied_roles').values({ prior_role_id: prior, implied_role_id: implied }).execute();
  }
  await ensureAssignment(db, AssignmentType.UserProject, user.id, project.id, admin);
  await ensureAssignment(db, AssignmentType.UserSystem, user.id, SYSTEM_ALL, admin);

  if (!(await db.selectFrom('identity_regions').select('id').where('id', '=', REGION).executeTakeFirst())) {
    await db.insertInto('identity_regions').values({ id: REGION, description: '', parent_region_id: null, extra: '{}' }).execute();
  }
  for (const s of o.services) {
    let svc = await db.selectFrom('identity_services').select('id').where('type', '=', s.type).executeTakeFirst();
    if (!svc) {
      svc = { id: hexId() };
      await db.insertInto('identity_services').values({ id: svc.id, type: s.type, name: s.name, description: '', enabled: 1, extra: '{}' }).execute();
    }
    const url = `${o.publicUrl.replace(/\/$/, '')}${s.path}`;
    for (const iface of ['public', 'internal', 'admin']) {
      const ep = await db.selectFrom('identity_endpoints').select(['id', 'url']).where('service_id', '=', svc.id).where('interface', '=', iface).where('region_id', '=', REGION).executeTakeFirst();
      if (!ep) {
        await db.insertInto('identity_endpoints').values({ id: hexId(), service_id: svc.id, interface: iface, url, region_id: REGION, enabled: 1, extra: '{}' }).execute();
      } else if (ep.url !== url) {
        await db.updateTable('identity_endpoints').set({ url }).where('id', '=', ep.id).execute();
      }
    }
  }
  return { adminUserId: user.id, adminProjectId: project.id, created };
}
