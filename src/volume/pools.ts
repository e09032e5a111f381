// The volume hosts' pools as Cinder shows them and schedules on them: each
// pool's capabilities (Cinder's volume stats, from the pool stats the agents
// report with their heartbeats, kinds.ts), the capabilities filter of the
// scheduler (a type's extra specs against a pool's capabilities), and the
// admin routes `/scheduler-stats/get_pools` and `/capabilities/{host}`.
import { route, type Route } from '../http/service.ts';
import { badRequest } from './errors.ts';
import { one } from './list.ts';
import { parseVolumeHost, splitVolumeHost, type VolumePoolStats } from './protocol.ts';
import { parseBoolean } from './view.ts';
import { ApiError } from '../common/errors.ts';

export const VENDOR_NAME = 'Stratus';
export const DRIVER_VERSION = '1.0.0';

/** The storage protocol a backend kind announces: `file` for the file backend (local files, NBD to other hosts), `ceph` for RBD. */
const storageProtocol = (driver: string): string => (driver === 'rbd' ? 'ceph' : driver);

/** A pool's capabilities, as Cinder's get_pools detail shows them and its capabilities filter reads them. */
export function poolCapabilities(p: VolumePoolStats): Record<string, unknown> {
  const where = parseVolumeHost(p.name);
  return {
    pool_name: where?.pool ?? p.name, volume_backend_name: where?.backend ?? p.driver, vendor_name: VENDOR_NAME, driver_version: DRIVER_VERSION,
    storage_protocol: storageProtocol(p.driver), total_capacity_gb: p.total_capacity_gb, free_capacity_gb: p.free_capacity_gb,
    provisioned_capacity_gb: p.provisioned_capacity_gb, allocated_capacity_gb: p.provisioned_capacity_gb, reserved_percentage: 0,
    max_over_subscription_ratio: String(p.max_over_subscription_ratio), thin_provisioning_support: p.thin_provisioning_support,
    thick_provisioning_support: !p.thin_provisioning_support, multiattach: p.multiattach, QoS_support: false,
    replication_enabled: false, online_extend_support: false, consistencygroup_support: false,
  };
}

const asBool = (s: string): boolean | null => {
  const l = s.trim().toLowerCase();
  return l === 'true' || l === '1' ? true : l === 'false' || l === '0' ? false : null;
};

/** Cinder's extra_specs_ops.match on one capability value: `<is>`, `<in>`, `<or>`, `s==`/`s!=`, `=`/`>=`/`<=`/`==`/`!=`, or equality. */
export function specMatches(cap: unknown, req: string): boolean {
  const words = req.trim().split(/\s+/);
  const capStr = typeof cap === 'boolean' ? (cap ? 'True' : 'False') : String(cap);
  const op = words[0]!;
  const arg = words.slice(1).join(' ');
  const num = (s: string) => Number(s);
  switch (op) {
    case '<is>': { const b = asBool(arg); return b !== null && (typeof cap === 'boolean' ? cap : asBool(capStr)) === b; }
    case '<in>': return capStr.includes(arg);
    case '<or>': return words.filter((_, i) => i % 2 === 1).includes(capStr);
    case 's==': return capStr === arg;
    case 's!=': return capStr !== arg;
    case 's>=': return capStr >= arg;
    case 's<=': return capStr <= arg;
    case 's>': return capStr > arg;
    case 's<': return capStr < arg;
    case '=': case '>=': return num(capStr) >= num(arg);
    case '<=': return num(capStr) <= num(arg);
    case '==': return num(capStr) === num(arg);
    case '!=': return num(capStr) !== num(arg);
    default:
      if (typeof cap === 'boolean') { const b = asBool(req); return b !== null ? b === cap : false; }
      return capStr === req;
  }
}

/**
 * Cinder's capabilities filter: every extra spec without a scope, or in the
 * `capabilities:` scope, must match the pool's capability of that name (a
 * capability the pool does not have fails it); specs of other scopes
 * (`RESKEY:`, `qos:`, vendors') are not the scheduler's.
 */
export function poolFits(p: VolumePoolStats, extraSpecs: Record<string, string>): boolean {
  const caps = poolCapabilities(p);
  for (const [key, req] of Object.entries(extraSpecs)) {
    const scope = key.split(':');
    if (scope.length > 1 && scope[0] !== 'capabilities') continue;
    const name = scope.length > 1 ? scope.slice(1).join(':') : key;
    if (!Object.hasOwn(caps, name)) return false;
    if (!specMatches(caps[name], req)) return false;
  }
  return true;
}

/** `/scheduler-stats/get_pools` (detail: the capabilities; `name` filter) and `/capabilities/{host}` (host@backend, or a pool's name). */
export function poolRoutes(pools: () => VolumePoolStats[]): Route[] {
  return [
    route({
      method: 'GET', path: '/scheduler-stats/get_pools', rule: 'scheduler_extension:scheduler_stats:get_pools',
      handler(rc) {
        const detailRaw = one(rc.query.detail);
        const detail = detailRaw === undefined ? false : parseBoolean('detail', detailRaw);
        const name = one(rc.query.name);
        const listed = pools().filter((p) => name === undefined || p.name === name).sort((a, b) => a.name.localeCompare(b.name));
        return { pools: listed.map((p) => (detail ? { name: p.name, capabilities: { ...poolCapabilities(p), updated: null, timestamp: null } } : { name: p.name })) };
      },
    }),
    route({
      method: 'GET', path: '/capabilities/:host', rule: 'volume_extension:capabilities',
      handler(rc) {
        const host = rc.params.host!;
        const at = splitVolumeHost(host);
        if (!at?.backend) throw badRequest(`Invalid host: ${host} is not host@backend.`);
        const backend = `${at.host}@${at.backend}`;
        const p = pools().find((x) => { const q = parseVolumeHost(x.name); return q?.host === at.host && q.backend === at.backend; });
        if (!p) throw new ApiError('NotFound', `Service ${host} could not be found.`);
        const caps = poolCapabilities(p);
        return {
          namespace: `OS::Storage::Capabilities::${backend}`, vendor_name: VENDOR_NAME, volume_backend_name: caps.volume_backend_name,
          pool_name: null, driver_version: DRIVER_VERSION, storage_protocol: caps.storage_protocol, display_name: null, description: null,
          visibility: null, replication_targets: [],
          properties: {
            thin_provisioning: { title: 'Thin Provisioning', description: 'Sets thin provisioning.', type: 'boolean' },
            compression: { title: 'Compression', description: 'Enables compression.', type: 'boolean' },
            qos: { title: 'QoS', description: 'Enables QoS.', type: 'boolean' },
            replication_enabled: { title: 'Replication', description: 'Enables replication.', type: 'boolean' },
          },
        };
      },
    }),
  ];
}
