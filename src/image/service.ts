// The image service (Glance v2) under /image. Placeholder: routes land here.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { ApiError } from '../common/errors.ts';
import type { Service } from '../http/service.ts';

export interface ImageDeps { db: Db; log: Logger; dataDir: string }

export interface ImageService {
  service: Service;
}

export function createImageService(_deps: ImageDeps): ImageService {
  return {
    service: {
      name: 'image', prefix: '/image', routes: [], rules: {},
      renderError: (err: ApiError) => ({ code: err.status, title: err.title, message: err.message }),
    },
  };
}
