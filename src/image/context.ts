// What every image route module and operation is given.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { ImageStore } from './store.ts';

export interface ImageConfig {
  /** Largest image accepted, in bytes (Glance's image_size_cap, default 1 TiB). */
  sizeCap: number;
  /** Import methods offered at /v2/info/import. */
  importMethods: string[];
}

export const defaultImageConfig: ImageConfig = {
  sizeCap: 1024 ** 4,
  importMethods: ['glance-direct'],
};

export interface ImageContext {
  db: Db;
  log: Logger;
  store: ImageStore;
  config: ImageConfig;
  /** Background work (glance-direct imports) in flight, awaited on stop. */
  background: Set<Promise<unknown>>;
}
