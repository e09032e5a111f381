// Every service's migrations; names sort in the order they must run.
import type { Migration } from 'kysely/migration';
import { identityMigrations } from '../identity/schema.ts';

export const migrations: Record<string, Migration> = {
  ...identityMigrations,
};
