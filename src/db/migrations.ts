// Every service's migrations; names sort in the order they must run
// (identity 00xx, image 005x, compute 01xx, fleet 018x, placement 02xx, network 03xx, metadata 04xx, volume 05xx, object 06xx, registry 07xx, baremetal 08xx).
import type { Migration } from 'kysely/migration';
import { computeMigrations } from '../compute/schema.ts';
import { fleetMigrations } from '../fleet/schema.ts';
import { identityMigrations } from '../identity/schema.ts';
import { imageMigrations } from '../image/schema.ts';
import { metadataMigrations } from '../metadata/schema.ts';
import { networkMigrations } from '../network/schema.ts';
import { placementMigrations } from '../placement/schema.ts';
import { registryMigrations } from '../registry/schema.ts';
import { volumeMigrations } from '../volume/schema.ts';
import { objectMigrations } from '../object/schema.ts';
import { baremetalMigrations } from '../baremetal/schema.ts';

export const migrations: Record<string, Migration> = {
  ...identityMigrations,
  ...imageMigrations,
  ...computeMigrations,
  ...fleetMigrations,
  ...placementMigrations,
  ...networkMigrations,
  ...metadataMigrations,
  ...volumeMigrations,
  ...objectMigrations,
  ...registryMigrations,
  ...baremetalMigrations,
};
