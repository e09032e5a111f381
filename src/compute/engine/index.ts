// The compute engine: the scheduler, the agent API hosts connect to, and the
// host heartbeat watch. Placeholder: the engine lands here.
import type { ApiError } from '../../common/errors.ts';
import type { Service } from '../../http/service.ts';
import type { ComputeDeps } from '../service.ts';

export type AgentRequestKind = 'console' | 'snapshot';

export interface Engine {
  /** The API agents connect to (under /agent), authenticated by the agent token. */
  agentService: Service;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Wakes the scheduler: a server waits for a host. */
  kick(): void;
  /** Wakes the agent watching `host`: its servers' desired state changed (version bumped). */
  notify(host: string | null): void;
  /** Asks the agent of a server for work beyond its desired state, and waits for the answer. */
  request(serverId: string, kind: AgentRequestKind, args: Record<string, unknown>, timeoutMs: number): Promise<unknown>;
}

export function createEngine(_deps: ComputeDeps): Engine {
  return {
    agentService: {
      name: 'agent', prefix: '/agent', routes: [], rules: {},
      renderError: (err: ApiError) => ({ error: { code: err.status, message: err.message } }),
    },
    async start() {},
    async stop() {},
    kick() {},
    notify() {},
    async request() {
      throw new Error('no agent engine yet');
    },
  };
}
