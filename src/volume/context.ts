// What every part of the volume service shares: the database, the logger
// and the service's settings.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { ImageService } from '../image/service.ts';
import type { VolumeTables } from './schema.ts';

export interface VolumeConfig {
  /** The availability zone volumes are made in (Cinder's storage_availability_zone). */
  availabilityZone: string;
  /** The name of the type a volume gets when neither the call nor the project names one (Cinder's default_volume_type). */
  defaultType: string;
  /** Bytes per chunk of a backup (backups.ts; Cinder's backup_swift_object_size). */
  backupChunkSize: number;
}

export const DEFAULT_VOLUME_CONFIG: VolumeConfig = { availabilityZone: 'nova', defaultType: '__DEFAULT__', backupChunkSize: 32 * 1024 * 1024 };

export interface VolumeContext {
  db: Db;
  /** The same database, typed with the volume tables only. */
  vdb: Kysely<VolumeTables>;
  log: Logger;
  config: VolumeConfig;
  /** Glance, in process: volumes from images (imageRef) and to images (os-volume_upload_image); absent: both refused. */
  images?: VolumeImages;
}

/** What the volume service uses of the image service. */
export type VolumeImages = Pick<ImageService, 'getImage' | 'canSee' | 'createImage' | 'deleteImage'>;
