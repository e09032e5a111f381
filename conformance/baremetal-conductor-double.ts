// TEST DOUBLE, not part of the product: a bare-metal "conductor" that drives
// no hardware. It registers with a running Stratus server over the real agent
// API (/agent/v1) as an agent serving the `baremetal_node` kind (ipmi and
// redfish), long-polls the watch, and answers every node spec with the
// report a conductor whose BMC and ramdisk always succeed would send: the
// power state asked for, each operation running in its ramdisk phase and
// then succeeded (an inspection with a small made-up inventory: 2 CPUs,
// 2048 MiB, one 10 GiB disk, the node's known NICs plus one more). Used by
// conformance/baremetal-cli.sh so the `openstack baremetal` flow runs
// without machines; the real conductor is `stratus agent --baremetal`.
//
//   node conformance/baremetal-conductor-double.ts <server url> <agent token file> [hostname] [conductor group]
//
// It registers in its own conductor group (default `test-double`), so only
// nodes enrolled with that conductor_group reach it, never a real
// conductor's.
import { readFileSync } from 'node:fs';
import { PROTOCOL_VERSION } from '../src/fleet/protocol.ts';

const [url, tokenFile, hostname = 'bm-double', group = 'test-double'] = process.argv.slice(2);
if (!url || !tokenFile) {
  console.error('usage: baremetal-conductor-double.ts <server url> <agent token file> [hostname]');
  process.exit(2);
}
const token = readFileSync(tokenFile, 'utf8').trim();
const call = async (method: string, path: string, body: unknown): Promise<any> => {
  const r = await fetch(`${url}/agent/v1/hosts/${hostname}${path}`, {
    method, headers: { 'x-stratus-agent-token': token, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};
const info = {
  protocol: PROTOCOL_VERSION, kinds: { baremetal_node: ['ipmi', 'redfish'] }, vcpus: 0, memory_mb: 0, disk_gb: 0, version: 'test-double',
  host_ip: '127.0.0.1',
};
let withGroup = true;
// HostInfo.baremetal (protocol 2.5) names the conductor group; a server whose schema does not take it yet hears the rest
const register = () => (withGroup
  ? call('PUT', '', { ...info, baremetal: { address: '127.0.0.1', http_port: 9, tftp: false, conductor_group: group } }).catch((err: Error) => {
    console.error(`registering with a conductor group refused (${err.message}); registering without`);
    withGroup = false;
    return call('PUT', '', info);
  })
  : call('PUT', '', info));

const known: Record<string, number> = {};
/** What each node's simulated machine is: its power, and the operations already answered. */
const machines = new Map<string, { power: 'power on' | 'power off'; powerSeq: number; bootSeq: number; done: Set<string> }>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function answer(id: string, version: number, spec: any): Promise<void> {
  const m = machines.get(id) ?? { power: 'power off' as const, powerSeq: 0, bootSeq: 0, done: new Set<string>() };
  machines.set(id, m);
  if (spec.power && spec.power.seq > m.powerSeq) {
    m.powerSeq = spec.power.seq;
    m.power = spec.power.target === 'power off' || spec.power.target === 'soft power off' ? 'power off' : 'power on';
  }
  if (spec.boot_device) m.bootSeq = spec.boot_device.seq;
  const observed: any = { power_state: m.power, power_seq: m.powerSeq, boot_device_seq: m.bootSeq };
  const op = spec.operation;
  if (op && !spec.maintenance && !m.done.has(op.id)) {
    m.done.add(op.id);
    const now = () => new Date().toISOString();
    if (op.type !== 'verify' && op.type !== 'tear_down' && op.type !== 'unrescue') {
      await call('POST', '/report', { resources: [{ kind: 'baremetal_node', id, version, observed: { ...observed, power_state: 'power on', operation: { id: op.id, status: 'running', phase: 'ramdisk', phase_started_at: now() } } }] });
      await sleep(300);
    }
    const inventory = op.type === 'inspect' ? {
      cpus: 2, cpu_arch: 'x86_64', memory_mb: 2048, disks: [{ name: '/dev/vda', size_bytes: 10 * 2 ** 30 }],
      nics: [...spec.nics.map((n: any, i: number) => ({ name: `eth${i}`, mac: n.mac })), { name: 'eth9', mac: `52:54:00:${id.slice(0, 2)}:${id.slice(2, 4)}:99` }],
      boot_mac: spec.nics[0]?.mac,
    } : undefined;
    m.power = op.type === 'deploy' || op.type === 'rescue' || op.type === 'unrescue' ? 'power on' : op.type === 'verify' ? m.power : 'power off';
    observed.power_state = m.power;
    observed.operation = { id: op.id, status: 'succeeded', phase: 'done', phase_started_at: now(), ...(inventory ? { inventory } : {}) };
  }
  await call('POST', '/report', { resources: [{ kind: 'baremetal_node', id, version, observed }] });
}

let lastRegister = 0;
for (;;) {
  try {
    if (Date.now() - lastRegister > 5000) {
      await register();
      lastRegister = Date.now();
    }
    const r = await call('POST', '/watch', { known: { baremetal_node: known }, wait: 5 });
    for (const g of r.gone) if (g.kind === 'baremetal_node') { delete known[g.id]; machines.delete(g.id); }
    for (const res of r.resources) {
      if (res.kind !== 'baremetal_node') continue;
      known[res.id] = res.version;
      await answer(res.id, res.version, res.spec).catch((err: Error) => console.error(`node ${res.id}: ${err.message}`));
    }
  } catch (err) {
    console.error(`conductor double: ${(err as Error).message}`);
    await sleep(1000);
  }
}
