// What a service plugs into the fleet: the hosts' registry (whoever keeps the
// host records and their capacity: compute today) and the resource kinds it
// owns. A kind answers three questions for the agent API: what is placed on a
// host (ids and versions), the full desired state of some of them, and what
// to make of the agent's reports; optionally it carries requests (work beyond
// the desired state) to the host and takes their answers.
import type { TSchema } from 'typebox';
import type { HostInfo, PendingRequest, RequestReport, Resource, ResourceReport } from './protocol.ts';

export interface HostRegistry {
  /** Records the host (first registration) or its heartbeat. */
  register(hostname: string, info: HostInfo): Promise<{ host_id: string; service_id: string }>;
  /** Marks a watching host seen; false when no such host is registered. */
  seen(hostname: string): Promise<boolean>;
}

export interface ResourceKind {
  readonly kind: string;
  /** The schema of the kind's `observed` in reports (a report that does not match is refused with a 400). */
  readonly observed: TSchema;
  /** The resources of this kind placed on `hostname`: id -> version. */
  placed(hostname: string): Promise<Map<string, number>>;
  /**
   * The full desired state of these resources (ids the kind no longer has are
   * left out), as `hostname` must make them (a network's spec differs per
   * host: its peers, its DHCP).
   */
  desired(ids: string[], hostname: string): Promise<Resource[]>;
  /** Takes the host's reports about resources of this kind; reports about resources not placed on the host change nothing. */
  report(hostname: string, reports: ResourceReport[]): Promise<void>;
  /**
   * Requests waiting for `hostname` that this kind's channel carries; each
   * names the kind of its resource (PendingRequest.kind), which may be
   * another kind's (a bare-metal server's console is its node's): the watch
   * hands it to an agent serving that kind.
   */
  pendingRequests?(hostname: string): Promise<PendingRequest[]>;
  /** The host's answer to one of this kind's requests. */
  answer?(hostname: string, answer: RequestReport): Promise<void>;
}
