// The project's quota usage: Nova's, Cinder's and Neutron's limits with what
// the project uses, a bar chart per service (chart.ts, Chart.js, a chunk
// loaded once the figures show) above the same figures as text; for admins
// each host's capacity the same way.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, hasService, isAdmin, session } from '../api.ts';
import { ErrorNote, Loading, Page, errorText, useLoad } from '../ui.tsx';

interface Usage { label: string; used: number; limit: number; unit?: string }

const usageText = (u: Usage): string => `${u.used}${u.unit ? ` ${u.unit}` : ''} of ${u.limit < 0 ? 'unlimited' : `${u.limit}${u.unit ? ` ${u.unit}` : ''}`}`;

/**
 * A bar chart of `usage` with the figures as text below it: the canvas is one
 * image whose accessible name says every figure; the chart is drawn once its
 * module has loaded (the text is there before).
 */
function UsageChart({ title, usage }: { title: string; usage: Usage[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    let undo: (() => void) | undefined;
    import('../chart.ts').then((m) => {
      if (live && canvas.current) undo = m.drawUsage(canvas.current, usage.map((u) => ({ label: u.label, used: u.used, limit: u.limit, text: usageText(u) })));
    }, (err: unknown) => setError(`The chart could not be loaded: ${errorText(err)}`));
    return () => {
      live = false;
      undo?.();
    };
  }, [usage]);
  if (usage.length === 0) return <p class="muted">Nothing to show.</p>;
  return (
    <figure class="usage">
      <div class="chart-box" style={{ height: `${usage.length * 30 + 36}px` }}>
        <canvas ref={canvas} role="img" aria-label={`${title}: ${usage.map((u) => `${u.label}: ${usageText(u)}`).join('; ')}`} />
      </div>
      <ErrorNote error={error} />
      <ul class="figures">
        {usage.map((u) => <li key={u.label}><span>{u.label}</span> <span class="muted">{usageText(u)}</span></li>)}
      </ul>
    </figure>
  );
}

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
      {loading && !data ? <Loading what={title.toLowerCase()} /> : data && <UsageChart title={`${title} quota usage`} usage={data} />}
    </section>
  );
}

/** For admins: each host's capacity (placement inventories: (total - reserved) x allocation ratio) against its allocations. */
async function hostsUsage(): Promise<Array<{ name: string; usage: Usage[] }>> {
  const providers = (await call('GET', 'placement', '/resource_providers')).body.resource_providers as Array<{ uuid: string; name: string }>;
  const UNITS: Record<string, [string, string?]> = { VCPU: ['vCPUs'], MEMORY_MB: ['RAM', 'MiB'], DISK_GB: ['Disk', 'GiB'] };
  const rank = (rc: string) => (rc in UNITS ? Object.keys(UNITS).indexOf(rc) : 99);
  return Promise.all(providers.sort((a, b) => a.name.localeCompare(b.name)).map(async (p) => {
    const [inv, use] = await Promise.all([
      call('GET', 'placement', `/resource_providers/${p.uuid}/inventories`).then((r) => r.body.inventories as Record<string, { total: number; reserved: number; allocation_ratio: number }>),
      call('GET', 'placement', `/resource_providers/${p.uuid}/usages`).then((r) => r.body.usages as Record<string, number>),
    ]);
    return {
      name: p.name,
      // vCPUs, RAM, disk, then any other class by name
      usage: Object.entries(inv).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)).map(([rc, i]) => ({
        label: UNITS[rc]?.[0] ?? rc, unit: UNITS[rc]?.[1], used: use[rc] ?? 0, limit: Math.floor((i.total - i.reserved) * i.allocation_ratio),
      })),
    };
  }));
}

function Hosts() {
  const { data, error, loading } = useLoad(hostsUsage, []);
  return (
    <section aria-label="Hosts">
      <h2>Hosts</h2>
      <ErrorNote error={error} />
      {loading && !data ? <Loading what="hosts" /> : data?.length === 0 ? <p class="muted">No hosts have registered.</p> : (
        <div class="grid">
          {(data ?? []).map((h) => <section class="card" key={h.name} aria-label={`Host ${h.name}`}><h3>{h.name}</h3><UsageChart title={`Host ${h.name} capacity used`} usage={h.usage} /></section>)}
        </div>
      )}
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
      {isAdmin() && hasService('placement') && <Hosts />}
    </Page>
  );
}
