// The network topology as a picture: external networks, routers, the
// project's networks and the servers on them, laid out left to right (top to
// bottom on a narrow screen) in layers by dagre (@dagrejs/dagre, a layered graph layout: external network →
// router → network → server), which only computes positions; the picture is
// SVG that Preact renders from them, so nothing is drawn outside the page's
// CSP and every node is a link: reachable with the keyboard, opening its
// resource's page, its accessible name saying what it connects (the drawn,
// possibly shortened, text is hidden from assistive technology in its
// favour). dagre is a chunk of its own, loaded when the picture is first
// shown. What Neutron and Nova list (routers' gateways, router interface
// ports, servers' ports) makes the graph.
import type { Graph, GraphLabel, NodeLabel, EdgeLabel } from '@dagrejs/dagre';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { call } from '../api.ts';
import { ErrorNote, useLoad } from '../ui.tsx';

type Row = Record<string, any> & { id: string };
export interface TopologyData { networks: Row[]; routers: Row[]; ports: Row[]; subnets: Row[] }
type Kind = 'network' | 'router' | 'server';
interface Node { kind: Kind; id: string; label: string; drawn: string; sub: string; href: string; external?: boolean }

/** At most this many servers are drawn (the rest are counted below the picture). */
const MAX_SERVERS = 300;
const WIDTH = 176;
const HEIGHT = 44;

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

let dagre: Promise<typeof import('@dagrejs/dagre')> | null = null;
/** The layout library, loaded once (its chunk fetched the first time a picture is drawn). */
const loadDagre = () => (dagre ??= import('@dagrejs/dagre').catch((err: unknown) => {
  dagre = null;
  throw err;
}));

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The picture's nodes and edges (from → to, in the layers' order), and how many servers were left out. */
export function graphOf(d: TopologyData, servers: Map<string, { name: string; status: string }>): { nodes: Node[]; edges: Array<[string, string]>; hidden: number } {
  const nets = [...d.networks].sort((a, b) => Number(!!b['router:external']) - Number(!!a['router:external']) || String(a.name).localeCompare(String(b.name)));
  const netIds = new Set(nets.map((n) => n.id));
  const external = new Set(nets.filter((n) => n['router:external']).map((n) => n.id));
  const netName = new Map(nets.map((n) => [n.id, String(n.name || n.id)]));
  const cidrs = (n: Row) => d.subnets.filter((s) => s.network_id === n.id).map((s) => s.cidr).join(', ');
  const subOf = (n: Row) => cidrs(n) || (n['router:external'] ? 'external' : '');
  const nodes: Node[] = nets.map((n) => {
    // the accessible name starts with the text drawn (shortened or not), then says in full what was shortened
    const name = String(n.name || n.id);
    const drawn = [clip(name, 20), clip(subOf(n), 22)].filter(Boolean).join(' ');
    const full = [name, subOf(n)].filter(Boolean).join(' ');
    return {
      kind: 'network', id: n.id, external: external.has(n.id), drawn: clip(name, 20), sub: clip(subOf(n), 22), href: '#/networks?tab=networks',
      label: `Network ${drawn}${full !== drawn ? ` (${full})` : ''}${n['router:external'] && cidrs(n) ? ', external' : ''}`,
    };
  });
  const edges: Array<[string, string]> = [];
  const device = (kind: 'router' | 'server', id: string, name: string, status: string, on: string[], href: string): Node => {
    const drawn = clip(name, 20);
    const joins = on.map((n) => netName.get(n)).join(', ');
    return {
      kind, id, drawn, sub: status, href,
      label: `${kind === 'router' ? 'Router' : 'Server'} ${drawn}${drawn !== name ? ` (${name})` : ''}${status ? ` ${status}` : ''}, on ${joins || 'no network'}`,
    };
  };
  for (const r of [...d.routers].sort((a, b) => String(a.name).localeCompare(String(b.name)))) {
    const on = new Set<string>();
    if (r.external_gateway_info?.network_id) on.add(r.external_gateway_info.network_id);
    for (const p of d.ports) if (p.device_id === r.id && String(p.device_owner).startsWith('network:router')) on.add(p.network_id);
    const joined = [...on].filter((n) => netIds.has(n)).sort((a, b) => Number(external.has(b)) - Number(external.has(a)));
    nodes.push(device('router', r.id, String(r.name || r.id), r.status ?? '', joined, '#/networks?tab=routers'));
    // an external network before its routers, a router before the networks behind it
    for (const n of joined) edges.push(external.has(n) ? [n, r.id] : [r.id, n]);
  }
  const byServer = new Map<string, Set<string>>();
  for (const p of d.ports) {
    if (!String(p.device_owner).startsWith('compute:') || !p.device_id || !netIds.has(p.network_id)) continue;
    if (!byServer.has(p.device_id)) byServer.set(p.device_id, new Set());
    byServer.get(p.device_id)!.add(p.network_id);
  }
  const all = [...byServer].map(([id, on]) => ({ id, on: [...on], name: servers.get(id)?.name || id, status: servers.get(id)?.status ?? '' }))
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const s of all.slice(0, MAX_SERVERS)) {
    nodes.push(device('server', s.id, s.name, s.status, s.on, `#/servers/${s.id}`));
    for (const n of s.on) edges.push([n, s.id]);
  }
  return { nodes, edges, hidden: Math.max(0, all.length - MAX_SERVERS) };
}

interface Placed { nodes: Array<Node & { x: number; y: number }>; edges: Array<{ from: string; to: string; points: Array<{ x: number; y: number }> }>; width: number; height: number }

function place(lib: typeof import('@dagrejs/dagre'), nodes: Node[], edges: Array<[string, string]>, narrow: boolean): Placed {
  const g: Graph<GraphLabel, NodeLabel, EdgeLabel> = new lib.graphlib.Graph();
  g.setGraph({ rankdir: narrow ? 'TB' : 'LR', nodesep: 14, ranksep: narrow ? 36 : 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: WIDTH, height: HEIGHT });
  for (const [from, to] of edges) g.setEdge(from, to);
  lib.layout(g);
  const size = g.graph();
  return {
    nodes: nodes.map((n) => ({ ...n, x: g.node(n.id).x ?? 0, y: g.node(n.id).y ?? 0 })),
    edges: edges.map(([from, to]) => ({ from, to, points: g.edge(from, to)?.points ?? [] })),
    width: Math.ceil(size.width ?? WIDTH), height: Math.ceil(size.height ?? HEIGHT),
  };
}

const ICON: Record<Kind, string> = { network: '', router: '⇄ ', server: '▣ ' };

/** A narrow screen (a phone): the layers go top to bottom instead of left to right. */
const NARROW = '(max-width: 600px)';
function useNarrow(): boolean {
  const [narrow, setNarrow] = useState(() => matchMedia(NARROW).matches);
  useEffect(() => {
    const m = matchMedia(NARROW);
    const on = () => setNarrow(m.matches);
    m.addEventListener('change', on);
    return () => m.removeEventListener('change', on);
  }, []);
  return narrow;
}

export function Topology({ data, servers }: { data: TopologyData; servers: Map<string, { name: string; status: string }> }) {
  const lib = useLoad(loadDagre, []);
  const narrow = useNarrow();
  const drawn = useMemo(() => {
    if (!lib.data) return null;
    const g = graphOf(data, servers);
    return { hidden: g.hidden, p: place(lib.data, g.nodes, g.edges, narrow) };
  }, [lib.data, data, servers, narrow]);
  if (data.networks.length === 0) return <p>No networks yet.</p>;
  if (!drawn) return lib.error ? <ErrorNote error={`The topology's layout could not be loaded: ${lib.error}`} /> : <p class="muted">Drawing the topology…</p>;
  const { p, hidden } = drawn;
  return (
    <figure class="topology">
      <div class="topology-scroll">
        <svg width={p.width} height={p.height} viewBox={`0 0 ${p.width} ${p.height}`} role="group" aria-label="Network topology">
          <g class="links" aria-hidden="true">
            {p.edges.map((e) => <path key={`${e.from}-${e.to}`} data-from={e.from} data-to={e.to} d={e.points.map((pt, i) => `${i ? 'L' : 'M'}${pt.x.toFixed(1)} ${pt.y.toFixed(1)}`).join(' ')} />)}
          </g>
          {p.nodes.map((n) => (
            <a key={n.id} href={n.href} aria-label={n.label} class={`node ${n.kind}${n.external ? ' external' : ''}`} data-node={n.id}>
              <title>{n.label}</title>
              <rect x={n.x - WIDTH / 2} y={n.y - HEIGHT / 2} width={WIDTH} height={HEIGHT} rx={n.kind === 'router' ? HEIGHT / 2 : n.kind === 'network' ? 10 : 4} />
              <text aria-hidden="true">
                <tspan x={n.x - WIDTH / 2 + 12} y={n.y - 3} class="label">{ICON[n.kind]}{n.drawn}</tspan>{' '}
                <tspan x={n.x - WIDTH / 2 + 12} y={n.y + 13} class="sub">{n.sub}</tspan>
              </text>
            </a>
          ))}
        </svg>
      </div>
      <figcaption class="muted">
        External networks, the routers on them, the networks behind the routers and the servers on those, {narrow ? 'top to bottom' : 'left to right'}; each item opens its page.
        {hidden > 0 && ` ${hidden} more servers are not drawn.`}
      </figcaption>
    </figure>
  );
}
