// Small read-only compute routes: /extensions (Nova's fixed, deprecated
// extension list), /servers/{id}/ips and /servers/{id}/topology (2.78).
import { notFound } from '../../common/errors.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { versioned } from './http.ts';
import { floatingIpRoutes } from './floating-ips.ts';
import { interfaceRoutes } from './interfaces.ts';
import { volumeAttachmentRoutes } from './volume-attachments.ts';
import { networkProxyRoutes } from './network-proxies.ts';
import { securityGroupRoutes } from './security-groups.ts';
import { loadServer, serverTarget } from './servers-store.ts';

/** alias|name of every extension Nova v2.1 lists. */
const EXTENSIONS = [
  'NMN|Multinic', 'OS-DCF|DiskConfig', 'OS-EXT-AZ|ExtendedAvailabilityZone', 'OS-EXT-IMG-SIZE|ImageSize', 'OS-EXT-IPS|ExtendedIps',
  'OS-EXT-IPS-MAC|ExtendedIpsMac', 'OS-EXT-SRV-ATTR|ExtendedServerAttributes', 'OS-EXT-STS|ExtendedStatus',
  'OS-FLV-DISABLED|FlavorDisabled', 'OS-FLV-EXT-DATA|FlavorExtraData', 'OS-SCH-HNT|SchedulerHints', 'OS-SRV-USG|ServerUsage',
  'os-access-ips|AccessIPs', 'os-admin-actions|AdminActions', 'os-admin-password|AdminPassword', 'os-agents|Agents',
  'os-aggregates|Aggregates', 'os-assisted-volume-snapshots|AssistedVolumeSnapshots', 'os-attach-interfaces|AttachInterfaces',
  'os-availability-zone|AvailabilityZone', 'os-baremetal-ext-status|BareMetalExtStatus', 'os-baremetal-nodes|BareMetalNodes',
  'os-block-device-mapping|BlockDeviceMapping', 'os-block-device-mapping-v2-boot|BlockDeviceMappingV2Boot',
  'os-cell-capacities|CellCapacities', 'os-cells|Cells', 'os-certificates|Certificates', 'os-cloudpipe|Cloudpipe',
  'os-cloudpipe-update|CloudpipeUpdate', 'os-config-drive|ConfigDrive', 'os-console-auth-tokens|ConsoleAuthTokens',
  'os-console-output|ConsoleOutput', 'os-consoles|Consoles', 'os-create-backup|CreateBackup', 'os-create-server-ext|Createserverext',
  'os-deferred-delete|DeferredDelete', 'os-evacuate|Evacuate', 'os-extended-evacuate-find-host|ExtendedEvacuateFindHost',
  'os-extended-floating-ips|ExtendedFloatingIps', 'os-extended-hypervisors|ExtendedHypervisors', 'os-extended-networks|ExtendedNetworks',
  'os-extended-quotas|ExtendedQuotas', 'os-extended-rescue-with-image|ExtendedRescueWithImage', 'os-extended-services|ExtendedServices',
  'os-extended-services-delete|ExtendedServicesDelete', 'os-extended-status|ExtendedStatus', 'os-extended-volumes|ExtendedVolumes',
  'os-fixed-ips|FixedIPs', 'os-flavor-access|FlavorAccess', 'os-flavor-extra-specs|FlavorExtraSpecs', 'os-flavor-manage|FlavorManage',
  'os-flavor-rxtx|FlavorRxtx', 'os-flavor-swap|FlavorSwap', 'os-floating-ip-dns|FloatingIpDns', 'os-floating-ip-pools|FloatingIpPools',
  'os-floating-ips|FloatingIps', 'os-floating-ips-bulk|FloatingIpsBulk', 'os-fping|Fping', 'os-hide-server-addresses|HideServerAddresses',
  'os-hosts|Hosts', 'os-hypervisor-status|HypervisorStatus', 'os-hypervisors|Hypervisors', 'os-instance-actions|InstanceActions',
  'os-instance_usage_audit_log|OSInstanceUsageAuditLog', 'os-keypairs|Keypairs', 'os-lock-server|LockServer',
  'os-migrate-server|MigrateServer', 'os-migrations|Migrations', 'os-multiple-create|MultipleCreate', 'os-networks|Networks',
  'os-networks-associate|NetworkAssociationSupport', 'os-pause-server|PauseServer', 'os-personality|Personality',
  'os-preserve-ephemeral-rebuild|PreserveEphemeralOnRebuild', 'os-quota-class-sets|QuotaClasses', 'os-quota-sets|Quotas',
  'os-rescue|Rescue', 'os-security-group-default-rules|SecurityGroupDefaultRules', 'os-security-groups|SecurityGroups',
  'os-server-diagnostics|ServerDiagnostics', 'os-server-external-events|ServerExternalEvents', 'os-server-group-quotas|ServerGroupQuotas',
  'os-server-groups|ServerGroups', 'os-server-list-multi-status|ServerListMultiStatus', 'os-server-password|ServerPassword',
  'os-server-sort-keys|ServerSortKeys', 'os-server-start-stop|ServerStartStop', 'os-services|Services', 'os-shelve|Shelve',
  'os-simple-tenant-usage|SimpleTenantUsage', 'os-suspend-server|SuspendServer', 'os-tenant-networks|OSTenantNetworks',
  'os-used-limits|UsedLimits', 'os-used-limits-for-admin|UsedLimitsForAdmin', 'os-user-data|UserData', 'os-user-quotas|UserQuotas',
  'os-virtual-interfaces|VirtualInterfaces', 'os-volume-attachment-update|VolumeAttachmentUpdate', 'os-volumes|Volumes',
].map((s) => {
  const [alias, name] = s.split('|') as [string, string];
  return { alias, description: `${name} support.`, links: [], name, namespace: 'http://docs.openstack.org/compute/ext/fake_xml', updated: '2014-12-03T00:00:00Z' };
});

/** Nova's /ips view of a server's addresses: version and address by network name. */
async function ipsOf(ctx: ComputeContext, serverId: string): Promise<Record<string, Array<{ version: number; addr: string }>>> {
  const all = ctx.network ? (await ctx.network.addresses([serverId])).get(serverId) ?? {} : {};
  return Object.fromEntries(Object.entries(all).map(([net, list]) => [net, list.map((a) => ({ version: a.version, addr: a.addr }))]));
}

export function miscRoutes(ctx: ComputeContext): Route[] {
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  return [
    ...interfaceRoutes(ctx),
    ...volumeAttachmentRoutes(ctx),
    ...securityGroupRoutes(ctx),
    ...networkProxyRoutes(ctx),
    ...floatingIpRoutes(ctx),
    route({ method: 'GET', path: '/v2.1/extensions', rule: 'os_compute_api:extensions', handler: () => ({ extensions: EXTENSIONS }) }),
    route({
      method: 'GET', path: '/v2.1/extensions/:alias', rule: 'os_compute_api:extensions',
      handler(rc) {
        const e = EXTENSIONS.find((x) => x.alias === rc.params.alias);
        if (!e) throw notFound('The resource could not be found.');
        return { extension: e };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/ips', rule: 'os_compute_api:ips:index', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        return { addresses: await ipsOf(ctx, s.id) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/ips/:network', rule: 'os_compute_api:ips:index', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const addrs = await ipsOf(ctx, s.id);
        const name = rc.params.network!;
        if (!(name in addrs)) throw notFound("There's no such network.");
        return { [name]: addrs[name] };
      },
    }),
    versioned(route({
      method: 'GET', path: '/v2.1/servers/:server_id/topology', rule: 'os_compute_api:servers:topology', target,
      async handler(rc) {
        await loadServer(ctx, rc);
        return { nodes: [], pagesize_kb: null };
      },
    }), '2.78'),
  ];
}
