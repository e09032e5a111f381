// The metadata service's tables: EC2's numeric ids of servers and images
// (Nova's ec2_instances and s3_images: `i-%08x`, `ami-%08x` of a number
// given on first use), and the password a guest posts once (Nova keeps it in
// the server's system metadata).
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { autoId } from '../db/migration-helpers.ts';

export const metadataMigrations: Record<string, Migration> = {
  '0400_metadata': {
    async up(db: Kysely<any>) {
      await autoId(db, db.schema.createTable('metadata_ec2_ids')).addColumn('uuid', 'text', (c) => c.notNull().unique()).execute();
      await db.schema.createTable('metadata_passwords')
        .addColumn('server_id', 'text', (c) => c.primaryKey()).addColumn('password', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull()).execute();
    },
  },
};
