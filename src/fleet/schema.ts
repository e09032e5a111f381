// Fleet tables: what every replica serving the agent API shares. Today the
// agents' credential; one row per named secret, created once by whichever
// replica starts first (src/fleet/token.ts).
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export interface FleetTables {
  /** Shared secrets of the agent API by name (`agent-token`), stored like the identity key sets. */
  fleet_secrets: { name: string; secret: string; created_at: string };
}

export const fleetMigrations: Record<string, Migration> = {
  // 0180: after compute's 01xx migrations, before placement's 02xx; fleet tables reference none of them.
  '0180_fleet_secrets': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('fleet_secrets')
        .addColumn('name', 'text', (c) => c.primaryKey()).addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull()).execute();
    },
  },
};
