// Neutron's part of the resource event stream (src/http/events.ts): the
// collections whose API writes are events, and how each resource is shown
// (project, status, name) from its table.
import type { Kysely } from 'kysely';
import type { WriteWatch } from '../http/events.ts';

const TABLES: Record<string, { table: string; name: string; status: boolean }> = {
  network: { table: 'network_networks', name: 'name', status: true },
  subnet: { table: 'network_subnets', name: 'name', status: false },
  port: { table: 'network_ports', name: 'name', status: true },
  router: { table: 'network_routers', name: 'name', status: true },
  floatingip: { table: 'network_floatingips', name: 'floating_ip_address', status: true },
  security_group: { table: 'network_security_groups', name: 'name', status: false },
};

export function networkWriteWatch(db: Kysely<any>): WriteWatch {
  return {
    collections: {
      networks: { type: 'network', key: 'network' }, subnets: { type: 'subnet', key: 'subnet' }, ports: { type: 'port', key: 'port' },
      routers: { type: 'router', key: 'router' }, floatingips: { type: 'floatingip', key: 'floatingip' },
      'security-groups': { type: 'security_group', key: 'security_group' },
    },
    async describe(type, id) {
      const t = TABLES[type];
      if (!t) return null;
      const row = await db.selectFrom(t.table).select(['project_id', `${t.name} as name`, ...(t.status ? ['status'] : [])]).where('id', '=', id).executeTakeFirst();
      return row ? { project_id: row.project_id || null, name: row.name, status: row.status ?? null } : null;
    },
  };
}
