// The compute service (Nova v2.1) under /compute. Placeholder: routes land here.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { ApiError } from '../common/errors.ts';
import type { Service } from '../http/service.ts';
import type { IdentityContext } from '../identity/context.ts';
import type { ImageService } from '../image/service.ts';

export interface ComputeDeps { db: Db; log: Logger; dataDir: string; identity: IdentityContext; images: ImageService }

export interface ComputeService {
  /** The compute API, and the agent API that hosts connect to. */
  services: Service[];
  /** Starts the controllers (scheduler, heartbeat watch). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createCompute(_deps: ComputeDeps): ComputeService {
  return {
    services: [{
      name: 'compute', prefix: '/compute', routes: [], rules: {},
      renderError: (err: ApiError) => ({ computeFault: { code: err.status, message: err.message } }),
    }],
    async start() {},
    async stop() {},
  };
}
