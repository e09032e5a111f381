// Router advertisements of a router (Neutron's L3 agent runs radvd the same
// way): one radvd per router namespace, for the router's interfaces on IPv6
// subnets whose ipv6_ra_mode is set. Per subnet a prefix: `slaac` and
// `dhcpv6-stateless` autonomous (hosts make their address from it),
// `dhcpv6-stateful` not (hosts ask dnsmasq, dhcp.ts); the interface's flags
// say where the rest comes from: managed (stateful: addresses by DHCPv6),
// other-config (stateless: options by DHCPv6). Name servers go out as RDNSS.
//
// Files under <state>/network/radvd/<router id>/: radvd.conf, pid, log. Like
// dnsmasq, radvd is tracked by its pid file (a live radvd whose command line
// names our radvd.conf), started when dead, restarted when its config
// changed, stopped when the router has nothing to advertise or goes.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { NetworkErrorCode, type Ipv6Mode } from '../../../network/protocol.ts';
import { userError } from '../../errors.ts';
import { ipVersion, parsePrefix, prefixText } from './addr.ts';
import { livePid, stopPid, writeIfChanged } from './dhcp.ts';
import { exists, NETNS_DIR, type HostNet } from './host.ts';

/** Neutron's defaults (min_rtr_adv_interval, max_rtr_adv_interval). */
export const MIN_RTR_ADV_INTERVAL = 30;
export const MAX_RTR_ADV_INTERVAL = 100;
/** IPv6's minimum link MTU: a smaller one is not advertised. */
const IPV6_MIN_MTU = 1280;

/** One interface radvd advertises on: its device in the router's namespace and the subnets' prefixes on it. */
export interface RadvdInterface {
  name: string;
  mtu: number;
  prefixes: Array<{ cidr: string; mode: Ipv6Mode }>;
  dns_nameservers: string[];
}

const MODES: readonly string[] = ['slaac', 'dhcpv6-stateful', 'dhcpv6-stateless'];
const DEV = /^[A-Za-z0-9_.-]{1,15}$/;

/** radvd.conf for the interfaces (checked: the spec's words end up in the file); empty when there is nothing to advertise. */
export function radvdConfig(ifaces: RadvdInterface[]): string {
  const out: string[] = [];
  for (const i of [...ifaces].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!i.prefixes.length) continue;
    if (!DEV.test(i.name)) throw userError(NetworkErrorCode.specInvalid, `bad interface name ${JSON.stringify(i.name)}`);
    const prefixes = i.prefixes.map((p) => {
      const q = parsePrefix(p.cidr);
      if (!q || q.version !== 6) throw userError(NetworkErrorCode.specInvalid, `bad IPv6 prefix ${JSON.stringify(p.cidr)}`);
      if (!MODES.includes(p.mode)) throw userError(NetworkErrorCode.specInvalid, `bad ipv6_ra_mode ${JSON.stringify(p.mode)}`);
      return { cidr: prefixText(q), mode: p.mode };
    });
    const dns = [...new Set(i.dns_nameservers.filter((d) => ipVersion(d) === 6))];
    out.push(`interface ${i.name}`, '{', '    AdvSendAdvert on;', `    MinRtrAdvInterval ${MIN_RTR_ADV_INTERVAL};`, `    MaxRtrAdvInterval ${MAX_RTR_ADV_INTERVAL};`);
    if (Number.isInteger(i.mtu) && i.mtu >= IPV6_MIN_MTU) out.push(`    AdvLinkMTU ${i.mtu};`);
    if (prefixes.some((p) => p.mode === 'dhcpv6-stateful')) out.push('    AdvManagedFlag on;');
    if (prefixes.some((p) => p.mode === 'dhcpv6-stateless')) out.push('    AdvOtherConfigFlag on;');
    if (dns.length) out.push(`    RDNSS ${dns.join(' ')} {};`);
    for (const p of [...new Map(prefixes.map((p) => [p.cidr, p])).values()]) {
      out.push(`    prefix ${p.cidr}`, '    {', '        AdvOnLink on;', `        AdvAutonomous ${p.mode === 'dhcpv6-stateful' ? 'off' : 'on'};`, '    };');
    }
    out.push('};');
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** The live radvd of a router (its pid file names a running radvd of our config). */
export const radvdPid = (dir: string): Promise<number | null> => livePid(join(dir, 'pid'), join(dir, 'radvd.conf'));

export const stopRadvd = (dir: string): Promise<void> => stopPid(() => radvdPid(dir));

/**
 * Makes the router's radvd run `config` in namespace `ns` (restarted when the
 * config changed); an empty config stops it and removes its files. Returns
 * what it changed.
 */
export async function convergeRadvd(host: HostNet, dir: string, ns: string, config: string): Promise<string[]> {
  if (!config) {
    if (!(await exists(dir))) return [];
    await removeRadvd(dir);
    return [`${ns}: radvd removed`];
  }
  const changes: string[] = [];
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  const changed = await writeIfChanged(join(dir, 'radvd.conf'), config);
  let pid = await radvdPid(dir);
  // a restart, not SIGHUP: what runs is then always what the file says
  if (pid && changed) {
    await stopRadvd(dir);
    pid = null;
    changes.push(`${ns}: radvd stopped`);
  }
  if (!pid) {
    await fsp.rm(join(dir, 'pid'), { force: true });
    await host.runOk('nsenter', [`--net=${NETNS_DIR}/${ns}`, 'radvd', '-C', join(dir, 'radvd.conf'), '-p', join(dir, 'pid'), '-m', 'logfile', '-l', join(dir, 'log')], false);
    changes.push(`${ns}: radvd started`);
  }
  return changes;
}

/** Stops a router's radvd and removes its files. Idempotent. */
export async function removeRadvd(dir: string): Promise<void> {
  await stopRadvd(dir);
  await fsp.rm(dir, { recursive: true, force: true });
}
