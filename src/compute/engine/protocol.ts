// The wire contract between the server's agent API (/agent/v1) and the host
// agents. Types only: the agent imports nothing else from the server.
//
//   PUT  /agent/v1/hosts/{hostname}            register + heartbeat (HostInfo) -> HostRegistration
//   POST /agent/v1/hosts/{hostname}/watch      long poll: WatchRequest -> WatchResponse
//   POST /agent/v1/hosts/{hostname}/report     observed state: ReportRequest -> {}
//   GET  /agent/v1/images/{id}                 image record (AgentImage)
//   GET  /agent/v1/images/{id}/file            image bytes (streamed)
//   PUT  /agent/v1/images/{id}/file            snapshot upload (streamed) for a pending snapshot request
//
// Every call carries the agent token in the `X-Stratus-Agent-Token` header.
import type { DesiredPower } from '../schema.ts';

export const AGENT_TOKEN_HEADER = 'x-stratus-agent-token';

export interface HostInfo {
  kinds: string[];
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  host_ip?: string;
  version: string;
  availability_zone?: string;
  /** Overcommit of this host (Nova's cpu/ram/disk_allocation_ratio on the compute node); server defaults when absent. */
  cpu_allocation_ratio?: number;
  ram_allocation_ratio?: number;
  disk_allocation_ratio?: number;
}

export interface HostRegistration {
  host_id: string;
  service_id: string;
  /** Seconds between heartbeats the server expects. */
  heartbeat_interval: number;
}

export interface AgentImage {
  id: string; name: string | null; status: string;
  container_format: string | null; disk_format: string | null;
  size: number | null; checksum: string | null;
}

/** Everything an agent needs to converge one server. */
export interface DesiredServer {
  id: string;
  /** The row's version: changes whenever anything below changes. */
  version: number;
  name: string;
  hostname: string;
  project_id: string;
  user_id: string;
  kind: string;
  image: AgentImage | null;
  flavor: { id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number; extraSpecs: Record<string, string> };
  power: DesiredPower;
  reboot_seq: number;
  reboot_type: string | null;
  rebuild_seq: number;
  vm_state: string;
  task_state: string | null;
  /** The server is being deleted: tear everything down, then report `deleted`. */
  deleted: boolean;
  /** The config drive (openstack/latest/*), as files: path -> content (utf8, or base64 for user_data). */
  config_drive: ConfigDrive;
}

export interface ConfigDrive {
  meta_data: Record<string, unknown>;
  /** Base64, as the user gave it; null when none. */
  user_data: string | null;
  network_data: Record<string, unknown>;
  vendor_data: Record<string, unknown>;
}

export interface PendingRequest {
  id: string;
  server_id: string;
  kind: string;
  args: Record<string, unknown>;
}

export interface WatchRequest {
  /** server id -> the version the agent holds. */
  known: Record<string, number>;
  /** Ids of requests the agent already works on. */
  requests?: string[];
  /** Seconds to wait for a change (long poll); 0 answers at once. */
  wait?: number;
}

export interface WatchResponse {
  /** Servers new to the agent or whose version changed. */
  servers: DesiredServer[];
  /** Known servers no longer placed on this host (moved, purged): forget and clean up. */
  gone: string[];
  requests: PendingRequest[];
}

export interface ServerReport {
  id: string;
  /** The desired version the agent converged to. */
  version: number;
  power_state: number;
  /** What the host holds now. */
  state: 'active' | 'stopped' | 'paused' | 'suspended' | 'deleted' | 'build_failed' | 'error';
  /** For build_failed / error: what went wrong (shown in the server's fault). */
  message?: string;
}

export interface RequestReport {
  id: string;
  ok: boolean;
  result?: Record<string, unknown>;
  message?: string;
}

export interface ReportRequest {
  servers?: ServerReport[];
  requests?: RequestReport[];
}
