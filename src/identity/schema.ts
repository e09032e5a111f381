// Identity tables. Booleans are 0/1 integers and timestamps ISO strings, so the
// same rows read the same on SQLite and PostgreSQL; JSON columns are text.
import { createSecretKey, randomBytes } from 'node:crypto';
import type { Generated, Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { autoId } from '../db/migration-helpers.ts';
import { keyHash, sealBlob } from './credential-cipher.ts';

export interface IdentityTables {
  identity_domains: { id: string; name: string; description: string; enabled: number; extra: string; created_at: string };
  identity_projects: {
    id: string; name: string; domain_id: string; parent_id: string | null; description: string;
    enabled: number; extra: string; created_at: string;
  };
  identity_project_tags: { project_id: string; tag: string };
  identity_users: {
    id: string; name: string; domain_id: string; enabled: number; default_project_id: string | null;
    password_hash: string | null; password_created_at: string | null; password_expires_at: string | null;
    options: string; extra: string; failed_auth_count: number; failed_auth_at: string | null;
    last_active_at: string | null; created_at: string;
  };
  identity_password_history: { id: Generated<number>; user_id: string; password_hash: string; created_at: string };
  identity_groups: { id: string; name: string; domain_id: string; description: string; extra: string; created_at: string };
  identity_group_members: { group_id: string; user_id: string };
  /** domain_id is '' for a global role. */
  identity_roles: { id: string; name: string; domain_id: string; description: string; options: string; extra: string };
  identity_implied_roles: { prior_role_id: string; implied_role_id: string };
  /** type: UserProject | GroupProject | UserDomain | GroupDomain | UserSystem | GroupSystem */
  identity_assignments: { type: string; actor_id: string; target_id: string; role_id: string; inherited: number };
  identity_regions: { id: string; description: string; parent_region_id: string | null; extra: string };
  identity_services: { id: string; type: string; name: string; description: string; enabled: number; extra: string };
  identity_endpoints: {
    id: string; service_id: string; interface: string; url: string; region_id: string | null; enabled: number; extra: string;
  };
  identity_endpoint_groups: { id: string; name: string; description: string; filters: string };
  identity_project_endpoints: { endpoint_id: string; project_id: string };
  identity_project_endpoint_groups: { endpoint_group_id: string; project_id: string };
  identity_policies: { id: string; type: string; blob: string; extra: string };
  /**
   * The blob is sealed (credential-cipher.ts) under the credential key whose
   * hash is key_hash; rows are opened and sealed only through credential-store.ts.
   */
  identity_credentials: {
    id: string; user_id: string; project_id: string | null; type: string; encrypted_blob: string; key_hash: string; extra: string; created_at: string;
  };
  identity_credential_keys: { id: number; secret: string; created_at: string };
  identity_app_credentials: {
    id: string; name: string; user_id: string; project_id: string; description: string; secret_hash: string;
    expires_at: string | null; unrestricted: number; roles: string; access_rules: string; created_at: string;
  };
  identity_access_rules: { id: string; user_id: string; service: string; path: string; method: string };
  identity_trusts: {
    id: string; trustor_user_id: string; trustee_user_id: string; project_id: string | null; impersonation: number;
    expires_at: string | null; remaining_uses: number | null; roles: string; redelegated_trust_id: string | null;
    redelegation_count: number; deleted_at: string | null; extra: string; created_at: string;
  };
  identity_registered_limits: {
    id: string; service_id: string; region_id: string | null; resource_name: string; default_limit: number; description: string;
  };
  identity_limits: {
    id: string; project_id: string | null; domain_id: string | null; service_id: string; region_id: string | null;
    resource_name: string; resource_limit: number; description: string;
  };
  identity_oauth_consumers: { id: string; description: string; secret_hash: string; extra: string };
  identity_revocations: {
    id: Generated<number>; user_id: string | null; project_id: string | null; domain_id: string | null;
    audit_id: string | null; audit_chain_id: string | null; trust_id: string | null; role_id: string | null;
    app_cred_id: string | null; issued_before: string; revoked_at: string;
  };
  identity_token_keys: { id: number; secret: string; created_at: string };
  /** Domain-specific configuration (the /v3/domains/{id}/config API); value is JSON. */
  identity_domain_configs: { domain_id: string; group_name: string; option: string; value: string };
}

const text = 'text' as const;

export const identityMigrations: Record<string, Migration> = {
  '0001_identity': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('identity_domains')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('description', text, (c) => c.notNull().defaultTo('')).addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createTable('identity_projects')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('domain_id', text, (c) => c.notNull()).addColumn('parent_id', text)
        .addColumn('description', text, (c) => c.notNull().defaultTo('')).addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).addColumn('created_at', text, (c) => c.notNull())
        .addUniqueConstraint('identity_projects_domain_name', ['domain_id', 'name']).execute();
      await s.createIndex('identity_projects_parent').on('identity_projects').column('parent_id').execute();
      await s.createTable('identity_project_tags')
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('tag', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('identity_project_tags_pk', ['project_id', 'tag']).execute();
      await s.createTable('identity_users')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('domain_id', text, (c) => c.notNull()).addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('default_project_id', text).addColumn('password_hash', text)
        .addColumn('password_created_at', text).addColumn('password_expires_at', text)
        .addColumn('options', text, (c) => c.notNull().defaultTo('{}')).addColumn('extra', text, (c) => c.notNull().defaultTo('{}'))
        .addColumn('failed_auth_count', 'integer', (c) => c.notNull().defaultTo(0)).addColumn('failed_auth_at', text)
        .addColumn('last_active_at', text).addColumn('created_at', text, (c) => c.notNull())
        .addUniqueConstraint('identity_users_domain_name', ['domain_id', 'name']).execute();
      await autoId(db, s.createTable('identity_password_history'))
        .addColumn('user_id', text, (c) => c.notNull()).addColumn('password_hash', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createIndex('identity_password_history_user').on('identity_password_history').column('user_id').execute();
      await s.createTable('identity_groups')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('domain_id', text, (c) => c.notNull()).addColumn('description', text, (c) => c.notNull().defaultTo(''))
        .addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).addColumn('created_at', text, (c) => c.notNull())
        .addUniqueConstraint('identity_groups_domain_name', ['domain_id', 'name']).execute();
      await s.createTable('identity_group_members')
        .addColumn('group_id', text, (c) => c.notNull()).addColumn('user_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('identity_group_members_pk', ['group_id', 'user_id']).execute();
      await s.createIndex('identity_group_members_user').on('identity_group_members').column('user_id').execute();
      await s.createTable('identity_roles')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('domain_id', text, (c) => c.notNull().defaultTo('')).addColumn('description', text, (c) => c.notNull().defaultTo(''))
        .addColumn('options', text, (c) => c.notNull().defaultTo('{}')).addColumn('extra', text, (c) => c.notNull().defaultTo('{}'))
        .addUniqueConstraint('identity_roles_domain_name', ['domain_id', 'name']).execute();
      await s.createTable('identity_implied_roles')
        .addColumn('prior_role_id', text, (c) => c.notNull()).addColumn('implied_role_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('identity_implied_roles_pk', ['prior_role_id', 'implied_role_id']).execute();
      await s.createTable('identity_assignments')
        .addColumn('type', text, (c) => c.notNull()).addColumn('actor_id', text, (c) => c.notNull())
        .addColumn('target_id', text, (c) => c.notNull()).addColumn('role_id', text, (c) => c.notNull())
        .addColumn('inherited', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('identity_assignments_pk', ['type', 'actor_id', 'target_id', 'role_id', 'inherited']).execute();
      await s.createIndex('identity_assignments_actor').on('identity_assignments').column('actor_id').execute();
      await s.createIndex('identity_assignments_target').on('identity_assignments').column('target_id').execute();
      await s.createIndex('identity_assignments_role').on('identity_assignments').column('role_id').execute();
      await s.createTable('identity_regions')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('description', text, (c) => c.notNull().defaultTo(''))
        .addColumn('parent_region_id', text).addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).execute();
      await s.createTable('identity_services')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('type', text, (c) => c.notNull())
        .addColumn('name', text, (c) => c.notNull().defaultTo('')).addColumn('description', text, (c) => c.notNull().defaultTo(''))
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1)).addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).execute();
      await s.createTable('identity_endpoints')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('service_id', text, (c) => c.notNull())
        .addColumn('interface', text, (c) => c.notNull()).addColumn('url', text, (c) => c.notNull())
        .addColumn('region_id', text).addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).execute();
      await s.createTable('identity_endpoint_groups')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('description', text, (c) => c.notNull().defaultTo('')).addColumn('filters', text, (c) => c.notNull().defaultTo('{}')).execute();
      await s.createTable('identity_project_endpoints')
        .addColumn('endpoint_id', text, (c) => c.notNull()).addColumn('project_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('identity_project_endpoints_pk', ['endpoint_id', 'project_id']).execute();
      await s.createTable('identity_project_endpoint_groups')
        .addColumn('endpoint_group_id', text, (c) => c.notNull()).addColumn('project_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('identity_project_endpoint_groups_pk', ['endpoint_group_id', 'project_id']).execute();
      await s.createTable('identity_policies')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('type', text, (c) => c.notNull())
        .addColumn('blob', text, (c) => c.notNull()).addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).execute();
      await s.createTable('identity_credentials')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('project_id', text).addColumn('type', text, (c) => c.notNull()).addColumn('blob', text, (c) => c.notNull())
        .addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createIndex('identity_credentials_user').on('identity_credentials').column('user_id').execute();
      await s.createTable('identity_app_credentials')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('name', text, (c) => c.notNull())
        .addColumn('user_id', text, (c) => c.notNull()).addColumn('project_id', text, (c) => c.notNull())
        .addColumn('description', text, (c) => c.notNull().defaultTo('')).addColumn('secret_hash', text, (c) => c.notNull())
        .addColumn('expires_at', text).addColumn('unrestricted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('roles', text, (c) => c.notNull().defaultTo('[]')).addColumn('access_rules', text, (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', text, (c) => c.notNull())
        .addUniqueConstraint('identity_app_credentials_user_name', ['user_id', 'name']).execute();
      await s.createTable('identity_access_rules')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('user_id', text, (c) => c.notNull())
        .addColumn('service', text, (c) => c.notNull()).addColumn('path', text, (c) => c.notNull())
        .addColumn('method', text, (c) => c.notNull()).execute();
      await s.createTable('identity_trusts')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('trustor_user_id', text, (c) => c.notNull())
        .addColumn('trustee_user_id', text, (c) => c.notNull()).addColumn('project_id', text)
        .addColumn('impersonation', 'integer', (c) => c.notNull()).addColumn('expires_at', text)
        .addColumn('remaining_uses', 'integer').addColumn('roles', text, (c) => c.notNull().defaultTo('[]'))
        .addColumn('redelegated_trust_id', text).addColumn('redelegation_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('deleted_at', text).addColumn('extra', text, (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createTable('identity_registered_limits')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('service_id', text, (c) => c.notNull())
        .addColumn('region_id', text).addColumn('resource_name', text, (c) => c.notNull())
        .addColumn('default_limit', 'integer', (c) => c.notNull()).addColumn('description', text, (c) => c.notNull().defaultTo('')).execute();
      await s.createTable('identity_limits')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('project_id', text).addColumn('domain_id', text)
        .addColumn('service_id', text, (c) => c.notNull()).addColumn('region_id', text)
        .addColumn('resource_name', text, (c) => c.notNull()).addColumn('resource_limit', 'integer', (c) => c.notNull())
        .addColumn('description', text, (c) => c.notNull().defaultTo('')).execute();
      await s.createTable('identity_oauth_consumers')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('description', text, (c) => c.notNull().defaultTo(''))
        .addColumn('secret_hash', text, (c) => c.notNull()).addColumn('extra', text, (c) => c.notNull().defaultTo('{}')).execute();
      await autoId(db, s.createTable('identity_revocations'))
        .addColumn('user_id', text).addColumn('project_id', text).addColumn('domain_id', text)
        .addColumn('audit_id', text).addColumn('audit_chain_id', text).addColumn('trust_id', text)
        .addColumn('role_id', text).addColumn('app_cred_id', text)
        .addColumn('issued_before', text, (c) => c.notNull()).addColumn('revoked_at', text, (c) => c.notNull()).execute();
      await s.createTable('identity_token_keys')
        .addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('secret', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).execute();
    },
  },
  '0002_identity_domain_config': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('identity_domain_configs')
        .addColumn('domain_id', text, (c) => c.notNull()).addColumn('group_name', text, (c) => c.notNull())
        .addColumn('option', text, (c) => c.notNull()).addColumn('value', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('identity_domain_configs_pk', ['domain_id', 'group_name', 'option']).execute();
    },
  },
  // Credential blobs were stored as given: they are sealed under a first credential key.
  '0003_identity_credential_encryption': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('identity_credential_keys')
        .addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('secret', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).execute();
      await db.schema.alterTable('identity_credentials').addColumn('encrypted_blob', text, (c) => c.notNull().defaultTo('')).execute();
      await db.schema.alterTable('identity_credentials').addColumn('key_hash', text, (c) => c.notNull().defaultTo('')).execute();
      const raw = randomBytes(32);
      await db.insertInto('identity_credential_keys').values({ id: 1, secret: raw.toString('base64'), created_at: new Date(0).toISOString() }).execute();
      const key = createSecretKey(raw);
      const rows: Array<{ id: string; blob: string }> = await db.selectFrom('identity_credentials').select(['id', 'blob']).execute();
      for (const r of rows) {
        await db.updateTable('identity_credentials').set({ encrypted_blob: sealBlob(key, r.id, r.blob), key_hash: keyHash(raw) }).where('id', '=', r.id).execute();
      }
      await db.schema.alterTable('identity_credentials').dropColumn('blob').execute();
    },
  },
};
