// Every service's tables, composed into the one schema Kysely is typed with.
import type { IdentityTables } from '../identity/schema.ts';

export type Tables = IdentityTables;
