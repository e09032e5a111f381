// The metadata relay's wire contract between the agent's metadata proxy
// (src/agent/metadata-proxy.ts) and the control plane (service.ts): what the
// agent sends to POST /agent/v1/metadata and how it knows the answer is the
// metadata service's. Types and constants only: the agent imports this file
// and nothing else of the metadata service.

/** The agent API path (under /agent) the proxies relay to. */
export const METADATA_RELAY_PATH = '/v1/metadata';

/** Set on every answer that is the metadata service's (and not an error of the agent API itself). */
export const METADATA_ANSWER_HEADER = 'x-stratus-metadata-answer';

/** Set by the namespace's haproxy (replacing whatever the guest sent): the guest's source address, and the network. */
export const METADATA_SOURCE_HEADER = 'x-stratus-metadata-source';
export const METADATA_NETWORK_HEADER = 'x-stratus-metadata-network';

/** The longest request body relayed (Nova's password limit, 4 x 255, and a little over so a bigger one is refused as too large). */
export const MAX_RELAY_BODY = 4 * 255 + 64;

export type MetadataMethod = 'GET' | 'HEAD' | 'POST';

export interface MetadataRelayRequest {
  network_id: string;
  /** The guest's address as the proxy in the network's namespace saw it. */
  remote_ip: string;
  method: MetadataMethod;
  /** The decoded path, without the query. */
  path: string;
  /** The body, base64 (a password post). */
  body?: string;
}
