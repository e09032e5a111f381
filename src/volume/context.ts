// What every part of the volume service shares: the database, the logger
// and the service's settings.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { VolumeTables } from './schema.ts';

export interface VolumeConfig {
  /** The availability zone volumes are made in (Cinder's storage_availability_zone). */
  availabilityZone: string;
  /** The name of the type a volume gets when neither the call nor the project names one (Cinder's default_volume_type). */
  defaultType: string;
}

export const DEFAULT_VOLUME_CONFIG: VolumeConfig = { availabilityZone: 'nova', defaultType: '__DEFAULT__' };

export interface VolumeContext {
  db: Db;
  /** The same database, typed with the volume tables only. */
  vdb: Kysely<VolumeTables>;
  log: Logger;
  config: VolumeConfig;
}
