// Every service's tables, composed into the one schema Kysely is typed with.
import type { ComputeApiTables, ComputeTables } from '../compute/schema.ts';
import type { FleetTables } from '../fleet/schema.ts';
import type { IdentityTables } from '../identity/schema.ts';
import type { ImageTables } from '../image/schema.ts';
import type { NetworkTables } from '../network/schema.ts';
import type { PlacementTables } from '../placement/schema.ts';
import type { RegistryTables } from '../registry/schema.ts';
import type { VolumeTables } from '../volume/schema.ts';
import type { ObjectTables } from '../object/schema.ts';
import type { BaremetalTables } from '../baremetal/schema.ts';

export type Tables = IdentityTables & ImageTables & ComputeTables & ComputeApiTables & PlacementTables & FleetTables & NetworkTables & VolumeTables & ObjectTables & RegistryTables & BaremetalTables;
