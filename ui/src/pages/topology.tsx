// The network topology as a picture: each network a vertical bar (external
// ones first), each router and server a box in the left column with a line
// across to the networks it is on, a dot where it joins one. Drawn as SVG from
// what Neutron and Nova list (routers' gateways, router interface ports,
// servers' ports); every box and bar links to its resource, is reachable with
// the keyboard and says what it connects in its accessible name (the drawn,
// possibly shortened, text is hidden from assistive technology in its favour). A fixed
// layout (a row per device, a column per network) needs no layout library and
// stays readable at any size by scrolling.
import { call } from '../api.ts';

type Row = Record<string, any> & { id: string };
export interface TopologyData { networks: Row[]; routers: Row[]; ports: Row[]; subnets: Row[] }
interface Device { kind: 'router' | 'server'; id: string; name: string; status: string; networks: string[]; href: string }

/** At most this many servers are drawn (the rest are counted below the picture). */
const MAX_SERVERS = 300;
const COL = 130;
const ROW = 44;
const GUTTER = 210;
const TOP = 64;

/** The servers' names and statuses for the ports' device ids (the compute API's detail list, paged). */
async function serversOf(): Promise<Map<string, { name: string; status: string }>> {
  const out = new Map<string, { name: string; status: string }>();
  let marker = '';
  for (let i = 0; i < 10; i++) {
    const r = await call('GET', 'compute', `/servers/detail?limit=1000${marker ? `&marker=${marker}` : ''}`);
    const page = r.body.servers as Array<{ id: string; name: string; status: string }>;
    for (const s of page) out.set(s.id, { name: s.name, status: s.status });
    if (page.length < 1000) break;
    marker = page[page.length - 1]!.id;
  }
  return out;
}

export async function loadServers(): Promise<Map<string, { name: string; status: string }>> {
  try {
    return await serversOf();
  } catch {
    return new Map();
  }
}

function devicesOf(d: TopologyData, servers: Map<string, { name: string; status: string }>): { devices: Device[]; hidden: number } {
  const routers: Device[] = d.routers.map((r) => {
    const nets = new Set<string>();
    if (r.external_gateway_info?.network_id) nets.add(r.external_gateway_info.network_id);
    for (const p of d.ports) if (p.device_id === r.id && String(p.device_owner).startsWith('network:router')) nets.add(p.network_id);
    return { kind: 'router', id: r.id, name: r.name || r.id, status: r.status, networks: [...nets], href: '#/networks?tab=routers' };
  });
  const byServer = new Map<string, Set<string>>();
  for (const p of d.ports) {
    if (!String(p.device_owner).startsWith('compute:') || !p.device_id) continue;
    if (!byServer.has(p.device_id)) byServer.set(p.device_id, new Set());
    byServer.get(p.device_id)!.add(p.network_id);
  }
  const all: Device[] = [...byServer].map(([id, nets]) => ({
    kind: 'server' as const, id, name: servers.get(id)?.name || id, status: servers.get(id)?.status ?? '', networks: [...nets], href: `#/servers/${id}`,
  })).sort((a, b) => a.name.localeCompare(b.name));
  return { devices: [...routers.sort((a, b) => a.name.localeCompare(b.name)), ...all.slice(0, MAX_SERVERS)], hidden: Math.max(0, all.length - MAX_SERVERS) };
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function Topology({ data, servers }: { data: TopologyData; servers: Map<string, { name: string; status: string }> }) {
  const { devices, hidden } = devicesOf(data, servers);
  // external networks first, then the others in the order devices first reach them
  const order = new Map<string, number>();
  const nets = [...data.networks].sort((a, b) => Number(!!b['router:external']) - Number(!!a['router:external']) || String(a.name).localeCompare(String(b.name)));
  nets.forEach((n, i) => order.set(n.id, i));
  const netName = new Map(nets.map((n) => [n.id, n.name || n.id]));
  const cidrs = (n: Row) => data.subnets.filter((s) => s.network_id === n.id).map((s) => s.cidr).join(', ');
  const subOf = (n: Row) => cidrs(n) || (n['router:external'] ? 'external' : '');
  // the accessible name starts with the text drawn (shortened or not), then says in full what was shortened
  const netLabel = (n: Row) => {
    const name = n.name || n.id;
    const drawn = [clip(name, 18), clip(subOf(n), 20)].filter(Boolean).join(' ');
    const full = [name, subOf(n)].filter(Boolean).join(' ');
    return `Network ${drawn}${full !== drawn ? ` (${full})` : ''}${n['router:external'] && cidrs(n) ? ', external' : ''}`;
  };
  const x = (netId: string) => GUTTER + (order.get(netId) ?? 0) * COL + COL / 2;
  const width = GUTTER + Math.max(1, nets.length) * COL + 20;
  const height = TOP + Math.max(1, devices.length) * ROW + 20;
  if (nets.length === 0) return <p>No networks yet.</p>;
  return (
    <figure class="topology">
      <div class="topology-scroll">
        <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="group" aria-label="Network topology">
          {/* the lines first: a line passes behind the networks it does not join */}
          <g class="links" aria-hidden="true">
            {devices.map((dv, i) => {
              const xs = dv.networks.filter((id) => order.has(id)).map(x);
              const y = TOP + i * ROW + ROW / 2;
              return xs.length ? <line key={dv.id} x1={GUTTER - 20} y1={y} x2={Math.max(...xs)} y2={y} /> : null;
            })}
          </g>
          {nets.map((n) => (
            <a key={n.id} href="#/networks?tab=networks" aria-label={netLabel(n)} class={`net${n['router:external'] ? ' external' : ''}`} data-network={n.id}>
              <title>{netLabel(n)}</title>
              <rect x={x(n.id) - 5} y={TOP - 8} width="10" height={height - TOP - 4} rx="4" />
              <text text-anchor="middle" aria-hidden="true">
                <tspan x={x(n.id)} y="18" class="label">{clip(n.name || n.id, 18)}</tspan>{' '}
                <tspan x={x(n.id)} y="36" class="sub">{clip(subOf(n), 20)}</tspan>
              </text>
            </a>
          ))}
          {devices.map((dv, i) => {
            const y = TOP + i * ROW + ROW / 2;
            const xs = dv.networks.filter((id) => order.has(id)).map(x);
            const joins = dv.networks.filter((id) => order.has(id)).map((id) => netName.get(id)).join(', ');
            const drawn = clip(dv.name, 20);
            const label = `${dv.kind === 'router' ? 'Router' : 'Server'} ${drawn}${drawn !== dv.name ? ` (${dv.name})` : ''}${dv.status ? ` ${dv.status}` : ''}, on ${joins || 'no network'}`;
            return (
              <a key={dv.id} href={dv.href} class={`dev ${dv.kind}`} data-device={dv.id} aria-label={label}>
                <title>{label}</title>
                {xs.map((cx) => <circle key={cx} cx={cx} cy={y} r="6" />)}
                <rect x="8" y={y - 16} width={GUTTER - 28} height="32" rx={dv.kind === 'router' ? 16 : 5} />
                <text x="22" y={y + 5} class="label" aria-hidden="true">{dv.kind === 'router' ? '⇄ ' : '▣ '}{clip(dv.name, 20)}</text>
              </a>
            );
          })}
        </svg>
      </div>
      <figcaption class="muted">
        Routers (rounded) and servers (square) on the left, each line reaching the networks it is on; external networks first. Each item opens its page.
        {hidden > 0 && ` ${hidden} more servers are not drawn.`}
      </figcaption>
    </figure>
  );
}
