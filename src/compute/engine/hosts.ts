// Compute's host registry for the fleet: a host's registration and heartbeat
// write its compute_hosts row (capacity, server kinds, overcommit, zone, a VM
// host's hypervisor), the record the scheduler places servers on and
// os-services/os-hypervisors show.
import { nowIso, uuid } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import type { HostRegistry } from '../../fleet/kinds.ts';
import type { HostInfo } from '../../fleet/protocol.ts';
import type { Logger } from 'pino';
import { SERVER_KIND } from './protocol.ts';

export function computeHosts(db: Db, log: Logger, o: { defaultAvailabilityZone?: string }): HostRegistry {
  return {
    async register(hostname: string, info: HostInfo) {
      const now = nowIso();
      // the server kinds this host runs (the scheduler's kind filter reads them)
      const kinds = JSON.stringify([...new Set(info.kinds[SERVER_KIND] ?? [])].sort());
      const fields = {
        kinds, vcpus: info.vcpus, memory_mb: info.memory_mb, disk_gb: info.disk_gb, agent_version: info.version,
        host_ip: info.host_ip ?? '', last_seen_at: now,
        // a VM host's hypervisor; a host that no longer runs VMs says none
        hypervisor_type: info.hypervisor?.type ?? null, hypervisor_accel: info.hypervisor?.accel ?? null, hypervisor_version: info.hypervisor?.version ?? null,
        ...(info.availability_zone ? { availability_zone: info.availability_zone } : {}),
        ...(info.cpu_allocation_ratio ? { cpu_allocation_ratio: info.cpu_allocation_ratio } : {}),
        ...(info.ram_allocation_ratio ? { ram_allocation_ratio: info.ram_allocation_ratio } : {}),
        ...(info.disk_allocation_ratio ? { disk_allocation_ratio: info.disk_allocation_ratio } : {}),
      };
      for (let attempt = 0; ; attempt++) {
        const existing = await db.selectFrom('compute_hosts').select(['id', 'service_id']).where('hostname', '=', hostname).executeTakeFirst();
        if (existing) {
          await db.updateTable('compute_hosts').set(fields).where('id', '=', existing.id).execute();
          return { host_id: existing.id, service_id: existing.service_id };
        }
        const row = {
          id: uuid(), hostname, service_id: uuid(), ...fields, availability_zone: info.availability_zone ?? o.defaultAvailabilityZone ?? 'nova',
          cpu_allocation_ratio: info.cpu_allocation_ratio ?? 16, ram_allocation_ratio: info.ram_allocation_ratio ?? 1.5,
          disk_allocation_ratio: info.disk_allocation_ratio ?? 1, status: 'enabled', disabled_reason: null, forced_down: 0,
          created_at: now,
        };
        try {
          await db.insertInto('compute_hosts').values(row).execute();
          log.info({ host: hostname, kinds: info.kinds }, 'host registered');
          return { host_id: row.id, service_id: row.service_id };
        } catch (err) {
          if (attempt > 2) throw err; // a concurrent first registration won: update it instead
        }
      }
    },

    async seen(hostname: string) {
      const r = await db.updateTable('compute_hosts').set({ last_seen_at: nowIso() }).where('hostname', '=', hostname).executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
  };
}
