// Network IP availability (network-ip-availability, admin only): per network
// and subnet, how many addresses the allocation pools hold and how many are
// allocated.
import type { Kysely } from 'kysely';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { notFound } from './errors.ts';
import { parseCidr } from './ipnet.ts';
import { listAnswer, selectFields, type View } from './list.ts';
import type { NetworkRow } from './networks.ts';
import { poolRanges, type SubnetRow } from './subnets.ts';

export function ipAvailabilityRoutes(ctx: NetworkContext): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const spec = {
    collection: 'network_ip_availabilities', notFound: (id: string) => notFound.network(id),
    attrs: { network_id: 'string', network_name: 'string', ip_version: 'int', total_ips: 'int', used_ips: 'int', subnet_ip_availability: 'none' } as const,
  };
  const views = async (networkId?: string): Promise<Array<View & { ip_versions: number[] }>> => {
    let nq = db.selectFrom('network_networks').selectAll();
    if (networkId !== undefined) nq = nq.where('id', '=', networkId);
    const nets = await nq.orderBy('created_at').orderBy('id').execute() as NetworkRow[];
    const subnets = await db.selectFrom('network_subnets').selectAll().orderBy('created_at').execute() as SubnetRow[];
    const used = new Map((await db.selectFrom('network_ip_allocations').select(['subnet_id', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('subnet_id').execute())
      .map((r) => [r.subnet_id, Number(r.n)]));
    return nets.map((n) => {
      const mine = subnets.filter((s) => s.network_id === n.id).map((s) => {
        const cidr = parseCidr(s.cidr)!;
        const total = poolRanges(cidr, JSON.parse(s.allocation_pools)).reduce((a, r) => a + (r.last - r.first + 1n), 0n);
        return { subnet_id: s.id, subnet_name: s.name, cidr: s.cidr, ip_version: s.ip_version, total_ips: Number(total), used_ips: used.get(s.id) ?? 0 };
      });
      return {
        network_id: n.id, id: n.id, network_name: n.name, project_id: n.project_id, tenant_id: n.project_id,
        total_ips: mine.reduce((a, s) => a + s.total_ips, 0), used_ips: mine.reduce((a, s) => a + s.used_ips, 0),
        subnet_ip_availability: mine, ip_versions: [...new Set(mine.map((s) => s.ip_version))],
      };
    });
  };
  const strip = ({ id: _id, ip_versions: _v, ...rest }: View & { ip_versions: number[] }): View => rest;
  return [
    route({
      method: 'GET', path: '/v2.0/network-ip-availabilities', rule: 'get_network_ip_availability',
      async handler(rc) {
        // ip_version filters networks that have a subnet of that version
        const { ip_version: v, ...query } = rc.query;
        let all = await views();
        if (v !== undefined) all = all.filter((n) => [v].flat().some((x) => n.ip_versions.includes(Number(x))));
        const answer = listAnswer({ ...rc, query }, spec, all.map((n) => ({ ...n, ip_version: n.ip_versions[0] ?? null })));
        answer.network_ip_availabilities = (answer.network_ip_availabilities as Array<View & { ip_versions: number[] }>)
          .map((n) => { const { ip_version: _i, ...r } = strip(n); return r; });
        return answer;
      },
    }),
    route({
      method: 'GET', path: '/v2.0/network-ip-availabilities/:id', rule: 'get_network_ip_availability',
      async handler(rc) {
        const [n] = await views(rc.params.id!);
        if (!n) throw notFound.network(rc.params.id!);
        return { network_ip_availability: selectFields(rc.query, strip(n)) };
      },
    }),
  ];
}
