// The project's quota usage: Nova's, Cinder's and Neutron's limits with what
// the project uses, one meter each.
import { call, hasService, session } from '../api.ts';
import { ErrorNote, Loading, Meter, Page, useLoad } from '../ui.tsx';

interface Usage { label: string; used: number; limit: number; unit?: string }

async function computeUsage(): Promise<Usage[]> {
  const a = (await call('GET', 'compute', '/limits')).body.limits.absolute;
  return [
    { label: 'Instances', used: a.totalInstancesUsed, limit: a.maxTotalInstances },
    { label: 'vCPUs', used: a.totalCoresUsed, limit: a.maxTotalCores },
    { label: 'RAM', used: a.totalRAMUsed, limit: a.maxTotalRAMSize, unit: 'MiB' },
    { label: 'Server groups', used: a.totalServerGroupsUsed ?? 0, limit: a.maxServerGroups },
  ];
}

async function volumeUsage(): Promise<Usage[]> {
  if (!hasService('volumev3')) return [];
  const a = (await call('GET', 'volumev3', '/limits')).body.limits.absolute;
  return [
    { label: 'Volumes', used: a.totalVolumesUsed, limit: a.maxTotalVolumes },
    { label: 'Volume storage', used: a.totalGigabytesUsed, limit: a.maxTotalVolumeGigabytes, unit: 'GiB' },
    { label: 'Volume snapshots', used: a.totalSnapshotsUsed, limit: a.maxTotalSnapshots },
  ];
}

const NEUTRON: Array<[string, string]> = [['network', 'Networks'], ['subnet', 'Subnets'], ['port', 'Ports'], ['router', 'Routers'], ['floatingip', 'Floating IPs'], ['security_group', 'Security groups']];
async function networkUsage(): Promise<Usage[]> {
  if (!hasService('network')) return [];
  const q = (await call('GET', 'network', `/v2.0/quotas/${session()!.project!.id}/details`)).body.quota;
  return NEUTRON.filter(([k]) => q[k]).map(([k, label]) => ({ label, used: q[k].used, limit: q[k].limit }));
}

function Group({ title, load }: { title: string; load: () => Promise<Usage[]> }) {
  const { data, error, loading } = useLoad(load, []);
  return (
    <section class="card" aria-label={title}>
      <h2>{title}</h2>
      <ErrorNote error={error} />
      {loading && !data ? <Loading what={title.toLowerCase()} /> : (data ?? []).map((u) => <Meter key={u.label} {...u} />)}
    </section>
  );
}

export function Overview() {
  const s = session()!;
  if (!s.project) return <Page title="Overview"><p>This login has no project: ask an administrator for a role on one.</p></Page>;
  return (
    <Page title="Overview">
      <p class="muted">Quota usage of project {s.project.name}.</p>
      <div class="grid">
        <Group title="Compute" load={computeUsage} />
        {hasService('volumev3') && <Group title="Block storage" load={volumeUsage} />}
        {hasService('network') && <Group title="Network" load={networkUsage} />}
      </div>
    </Page>
  );
}
