// Servers: the project's list from the compute API, paged with its
// marker/limit, sorted with sort_key/sort_dir, filtered by name, and kept
// live by the event stream (status changes, new and deleted servers).
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, canWrite } from '../api.ts';
import { onEvent } from '../events.ts';
import { navigate } from '../router.ts';
import { ErrorNote, Page, Status, Table, useLoad, val, type Column, type Sort } from '../ui.tsx';
import type { KindName } from '../../../src/compute/kinds.ts';

export interface Server {
  id: string; name: string; status: string; created: string; updated?: string;
  'OS-EXT-STS:task_state'?: string | null; 'OS-EXT-STS:power_state'?: number;
  addresses: Record<string, Array<{ addr: string; 'OS-EXT-IPS:type'?: string; version: number }>>;
  flavor: { original_name?: string; vcpus?: number; ram?: number; id?: string; extra_specs?: Record<string, string> };
  image: { id: string } | '';
  key_name?: string | null; tenant_id: string; user_id: string;
  security_groups?: Array<{ name: string }>;
  metadata?: Record<string, string>;
  fault?: { message: string; code: number };
}

/** The kinds of server (src/compute/kinds.ts's KINDS) as the pages name them. */
export const KIND_LABEL: Record<KindName, string> = { container: 'Container', vm: 'Virtual machine', 'vm-container': 'VM-isolated container', baremetal: 'Bare metal' };

export const addressText = (s: Server): string =>
  Object.entries(s.addresses ?? {}).flatMap(([net, list]) => list.map((a) => `${a.addr}${a['OS-EXT-IPS:type'] === 'floating' ? ' (floating)' : ''} on ${net}`)).join(', ');

const PAGE = 25;
const SORTS: Record<string, string> = { name: 'display_name', status: 'vm_state', created: 'created_at' };

export function ServerList({ query }: { query: URLSearchParams }) {
  const [sort, setSort] = useState<Sort>({ key: 'created', dir: 'desc' });
  const [name, setName] = useState(query.get('name') ?? '');
  const [applied, setApplied] = useState(name);
  const [markers, setMarkers] = useState<string[]>([]);
  const marker = markers[markers.length - 1];
  const { data, error, reload, set } = useLoad(async () => {
    const q = new URLSearchParams({ limit: String(PAGE), sort_key: SORTS[sort.key]!, sort_dir: sort.dir });
    if (applied) q.set('name', applied.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    if (marker) q.set('marker', marker);
    const r = await call('GET', 'compute', `/servers/detail?${q}`);
    return { servers: r.body.servers as Server[], more: (r.body.servers_links ?? []).some((l: { rel: string }) => l.rel === 'next') };
  }, [sort.key, sort.dir, applied, marker]);
  // live: a status change is applied in place; a new or deleted server reloads the page (once per burst)
  const latest = useRef(data);
  latest.current = data;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const soon = () => {
      timer ??= setTimeout(() => {
        timer = null;
        reload();
      }, 300);
    };
    const off = onEvent((e) => {
      if (e.type !== 'server') return;
      const d = latest.current;
      const known = d?.servers.find((s) => s.id === e.id);
      if (e.action === 'updated' && known) {
        set({ ...d!, servers: d!.servers.map((s) => (s.id === e.id ? { ...s, status: e.status ?? s.status, name: e.name ?? s.name, 'OS-EXT-STS:task_state': (e.detail?.task_state as string | null | undefined) ?? null } : s)) });
        // addresses and power come from the API once it settles
        if (e.status === 'ACTIVE' && !e.detail?.task_state) soon();
      } else if (e.action !== 'updated') soon();
    });
    return () => {
      off();
      if (timer) clearTimeout(timer);
    };
  }, []);
  const columns: Column<Server>[] = [
    { key: 'name', label: 'Name', value: (s) => s.name, render: (s) => <a href={`#/servers/${s.id}`}>{s.name || s.id}</a> },
    { key: 'status', label: 'Status', value: (s) => s.status, render: (s) => <><Status value={s.status} />{s['OS-EXT-STS:task_state'] ? <span class="muted"> {s['OS-EXT-STS:task_state']}</span> : null}</> },
    { key: 'addresses', label: 'Addresses', value: addressText, sortable: false },
    { key: 'flavor', label: 'Flavor', value: (s) => s.flavor?.original_name ?? s.flavor?.id ?? '', sortable: false },
    { key: 'created', label: 'Created', value: (s) => s.created, render: (s) => <time dateTime={s.created}>{new Date(s.created).toLocaleString()}</time> },
  ];
  return (
    <Page title="Servers" actions={canWrite() && <button type="button" class="primary" onClick={() => navigate('/servers/new')}>Launch server</button>}>
      <form class="toolbar" role="search" onSubmit={(e) => { e.preventDefault(); setMarkers([]); setApplied(name.trim()); }}>
        <label>Name contains <input type="search" value={name} onInput={(e) => setName(val(e))} /></label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={error} />
      <Table caption="Servers" columns={columns} rows={data?.servers ?? []} rowKey={(s) => s.id} sort={sort}
        onSort={(s) => { setMarkers([]); setSort(s); }} empty={data ? 'No servers.' : 'Loading servers…'} />
      <nav class="pager" aria-label="Server pages">
        <button type="button" disabled={!markers.length} onClick={() => setMarkers(markers.slice(0, -1))}>Previous</button>
        <span>Page {markers.length + 1}</span>
        <button type="button" disabled={!data?.more} onClick={() => setMarkers([...markers, data!.servers[data!.servers.length - 1]!.id])}>Next</button>
      </nav>
    </Page>
  );
}
