// `stratus baremetal virtual create|list|delete`: virtual bare-metal machines
// (src/vbmc: QEMU guests with an IPMI or Redfish BMC of their own) for tests
// and demos, enrolled into a running cloud through its bare-metal API as an
// operator would enrol physical servers: a node per machine (hardware type
// ipmi or redfish with its driver_info, resource class, properties from the
// machine's size) and a port for its boot NIC with its MAC on the physical
// network of the provisioning bridge (the second NIC, wired to nothing, is
// left for inspection to find). The cloud is reached with the admin credentials
// of its data directory (DATA_DIR/admin-password; the URL from
// DATA_DIR/clouds.yaml unless given), as `stratus up` leaves them. Each
// machine remembers the node it became, and `delete` removes that node
// (through maintenance when its state does not allow a delete) before the
// machine.
import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MachineInfo } from '../vbmc/fleet.ts';
import type { BmcKind } from '../vbmc/machine.ts';

// The machines' modules load only when a command runs (the CLI's start stays small).
const vbmc = () => import('../vbmc/fleet.ts');
/** src/vbmc/fleet.ts's DEFAULT_STATE_DIR (not imported: see above). */
const DEFAULT_STATE_DIR = '/var/lib/stratus-vbmc';

const DEFAULT_DATA_DIR = '/var/lib/stratus';

interface CloudFlags { dataDir: string; url?: string }

/** The cloud's bare-metal API as the admin: a request function with Ironic's latest microversion the cloud serves. */
export interface Ironic {
  base: string;
  call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

function cloudUrl(f: CloudFlags): string {
  if (f.url) return f.url.replace(/\/+$/, '');
  const clouds = join(resolve(f.dataDir), 'clouds.yaml');
  if (existsSync(clouds)) {
    const m = /auth_url:\s*(\S+)/.exec(readFileSync(clouds, 'utf8'));
    if (m) return m[1]!.replace(/\/identity\/v3\/?$/, '');
  }
  return 'http://127.0.0.1:5000';
}

export async function connectIronic(f: CloudFlags): Promise<Ironic> {
  const url = cloudUrl(f);
  const file = join(resolve(f.dataDir), 'admin-password');
  const password = process.env.STRATUS_ADMIN_PASSWORD || (existsSync(file) ? readFileSync(file, 'utf8').trim() : '');
  if (!password) throw new Error(`no admin password: ${file} is missing (give --data-dir of the running cloud, or set STRATUS_ADMIN_PASSWORD)`);
  const auth = await fetch(`${url}/identity/v3/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
  }).catch((err: Error) => { throw new Error(`cannot reach the cloud at ${url}: ${err.message}`); });
  const token = auth.headers.get('x-subject-token');
  if (auth.status !== 201 || !token) throw new Error(`cannot log in as admin at ${url} (${auth.status})`);
  const { token: t } = await auth.json() as { token: { catalog?: Array<{ type: string; endpoints: Array<{ interface: string; url: string }> }> } };
  const endpoint = t.catalog?.find((s) => s.type === 'baremetal')?.endpoints.find((e) => e.interface === 'public')?.url;
  if (!endpoint) throw new Error(`the cloud at ${url} has no bare-metal service in its catalog`);
  const base = endpoint.replace(/\/+$/, '');
  const root = await fetch(`${base}/`, { headers: { accept: 'application/json' } });
  const doc = root.ok ? await root.json() as { default_version?: { version?: string } } : {};
  const version = doc.default_version?.version ?? root.headers.get('x-openstack-ironic-api-maximum-version') ?? '1.1';
  return {
    base,
    async call<T>(method: string, path: string, body?: unknown) {
      const r = await fetch(`${base}${path}`, {
        method,
        headers: { 'x-auth-token': token, 'x-openstack-ironic-api-version': version, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      let parsed: unknown = null;
      try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
      return { status: r.status, body: parsed as T };
    },
  };
}

/** Ironic's error text: its error_message (a JSON string holding faultstring) or the body. */
function ironicError(body: unknown): string {
  const em = (body as { error_message?: unknown } | null)?.error_message;
  if (typeof em === 'string') {
    try {
      return String((JSON.parse(em) as { faultstring?: string }).faultstring ?? em);
    } catch {
      return em;
    }
  }
  return typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body).slice(0, 300);
}

export interface EnrollOptions { resourceClass: string; physicalNetwork: string; redfishBootInterface: string }

/** A node and its port for the machine; the node's uuid (remembered in machine.json). */
export async function enroll(ironic: Ironic, m: MachineInfo, o: EnrollOptions): Promise<string> {
  const c = m.config;
  const node = await ironic.call<{ uuid: string }>('POST', '/v1/nodes', {
    name: c.name,
    driver: c.bmc.kind,
    driver_info: m.driverInfo,
    resource_class: o.resourceClass,
    ...(c.bmc.kind === 'redfish' ? { boot_interface: o.redfishBootInterface } : {}),
    properties: { cpus: c.cpus, memory_mb: c.memoryMb, local_gb: Math.floor(c.diskMb / 1024), cpu_arch: 'x86_64', capabilities: 'boot_mode:bios' },
    extra: { stratus_virtual_machine: c.name },
  });
  if (node.status !== 201) throw new Error(`enrolling ${c.name}: ${node.status} ${ironicError(node.body)}`);
  const uuid = node.body.uuid;
  const port = await ironic.call('POST', '/v1/ports', { node_uuid: uuid, address: c.mac, physical_network: o.physicalNetwork, pxe_enabled: true });
  if (port.status !== 201) {
    await ironic.call('DELETE', `/v1/nodes/${uuid}`);
    throw new Error(`the port of ${c.name} (${c.mac}): ${port.status} ${ironicError(port.body)}`);
  }
  const { writeJson } = await import('../vbmc/machine.ts');
  await writeJson(join(m.dir, 'machine.json'), { ...c, enrolled: { url: ironic.base, node: uuid } });
  return uuid;
}

/** Removes the node enrolled for the machine (gone already: fine); through maintenance when its state refuses a delete. */
export async function unenroll(ironic: Ironic, node: string): Promise<void> {
  let r = await ironic.call('DELETE', `/v1/nodes/${node}`);
  if (r.status === 409 || r.status === 400) {
    await ironic.call('PUT', `/v1/nodes/${node}/maintenance`, { reason: 'stratus baremetal virtual delete' });
    r = await ironic.call('DELETE', `/v1/nodes/${node}`);
  }
  if (r.status !== 204 && r.status !== 404) throw new Error(`deleting node ${node}: ${r.status} ${ironicError(r.body)}`);
}

function bmcMode(v: string): 'ipmi' | 'redfish' | 'mixed' {
  if (v !== 'ipmi' && v !== 'redfish' && v !== 'mixed') throw new InvalidArgumentError('not ipmi, redfish or mixed');
  return v;
}
function positive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('not a positive whole number');
  return n;
}

const stateDirOption = (c: Command) => c.option('--state-dir <dir>', 'where the machines, their disks, logs and BMC daemons live', DEFAULT_STATE_DIR);
const cloudOptions = (c: Command) => c
  .option('--data-dir <dir>', 'the running cloud\'s data directory (its admin password and clouds.yaml)', DEFAULT_DATA_DIR)
  .option('--url <url>', 'the cloud\'s URL (default: from DATA_DIR/clouds.yaml, else http://127.0.0.1:5000)');

function describe(i: MachineInfo): string {
  const c = i.config;
  const bmc = c.bmc.kind === 'ipmi' ? `ipmi ${c.bmc.address}:${c.bmc.port}` : `redfish https://${c.bmc.address}:${c.bmc.port}/redfish/v1/Systems/${c.uuid}`;
  return `${c.name}  ${i.power.padEnd(3)}  ${c.mac}  ${bmc}${i.bmcPid ? '' : ' (BMC not running: `stratus baremetal virtual start`)'}  ${c.enrolled ? `node ${c.enrolled.node}` : 'not enrolled'}`;
}

export function registerBaremetalVirtual(program: Command): void {
  const virtual = program.command('baremetal').description('bare metal').command('virtual')
    .description('virtual bare-metal machines for tests and demos: QEMU guests with an IPMI (ipmi_sim) or Redfish (Stratus\'s emulator) BMC, as root');

  cloudOptions(stateDirOption(virtual.command('create')
    .description('make N machines with their BMCs (running, powered off) and enrol them into the running cloud: a node each and a port with its MAC')
    .option('--count <n>', 'how many', positive, 1)
    .option('--bmc <kind>', 'ipmi, redfish, or mixed (half each, IPMI first)', bmcMode, 'mixed')
    .option('--bridge <bridge>', 'the host bridge of the provisioning network their NICs join', 'br-bm')
    .option('--netns <name>', 'the network namespace holding the bridge (qemu and the taps go there; the BMCs listen in this one)')
    .option('--disk-mb <MiB>', 'disk size (a sparse file)', positive, 256)
    .option('--memory-mb <MiB>', 'RAM', positive, 512)
    .option('--name-prefix <prefix>', 'machine names are PREFIX-1, PREFIX-2, ... (the next free numbers)', 'vbm')
    .option('--bmc-address <ip>', 'where the BMCs listen', '127.0.0.1')
    .option('--resource-class <class>', 'the nodes\' resource class', 'baremetal')
    .option('--physical-network <name>', 'the ports\' physical network', 'baremetal')
    .option('--redfish-boot-interface <iface>', 'the boot interface of Redfish nodes (ipxe or redfish-virtual-media)', 'redfish-virtual-media')
    .option('--no-enroll', 'only make the machines')))
    .action(async (f: CloudFlags & { count: number; bmc: 'ipmi' | 'redfish' | 'mixed'; bridge: string; netns?: string; diskMb: number; memoryMb: number; namePrefix: string; bmcAddress: string; resourceClass: string; physicalNetwork: string; redfishBootInterface: string; enroll: boolean; stateDir: string }) => {
      const stateDir = resolve(f.stateDir);
      const { createMachine, deleteMachine, listMachines } = await vbmc();
      const ironic = f.enroll ? await connectIronic(f) : null;
      const taken = new Set((await listMachines(stateDir)).map((m) => m.name));
      let n = 0;
      for (let i = 0; i < f.count; i++) {
        let name: string;
        do name = `${f.namePrefix}-${++n}`; while (taken.has(name));
        taken.add(name);
        const kind: BmcKind = f.bmc === 'mixed' ? (i % 2 === 0 ? 'ipmi' : 'redfish') : f.bmc;
        const m = await createMachine({ stateDir, name, bmc: kind, bridge: f.bridge, netns: f.netns, diskMb: f.diskMb, memoryMb: f.memoryMb, bmcAddress: f.bmcAddress });
        if (ironic) {
          try {
            await enroll(ironic, m, { resourceClass: f.resourceClass, physicalNetwork: f.physicalNetwork, redfishBootInterface: f.redfishBootInterface });
          } catch (err) {
            await deleteMachine(stateDir, name).catch(() => undefined);
            throw err;
          }
        }
        process.stdout.write(`${describe((await listMachines(stateDir)).find((x) => x.name === name)!)}\n`);
      }
    });

  stateDirOption(virtual.command('list').description('the machines, their power, MAC, BMC and node'))
    .option('--json', 'as JSON (the BMC passwords left out)')
    .action(async (f: { stateDir: string; json?: boolean }) => {
      const all = await (await vbmc()).listMachines(resolve(f.stateDir));
      if (f.json) {
        process.stdout.write(`${JSON.stringify(all.map((i) => ({ ...i, config: { ...i.config, bmc: { ...i.config.bmc, password: undefined } }, driverInfo: undefined })), null, 2)}\n`);
        return;
      }
      for (const i of all) process.stdout.write(`${describe(i)}\n`);
    });

  stateDirOption(virtual.command('start').description('start the BMCs that do not run (after a reboot of the host); the machines stay powered off until their BMC powers them on'))
    .action(async (f: { stateDir: string }) => {
      const { listMachines, startBmcs } = await vbmc();
      const stateDir = resolve(f.stateDir);
      await startBmcs(stateDir);
      for (const i of await listMachines(stateDir)) process.stdout.write(`${describe(i)}\n`);
    });

  cloudOptions(stateDirOption(virtual.command('delete')
    .description('stop machines and their BMCs, remove their taps and files, and delete the nodes they were enrolled as')
    .argument('[names...]', 'the machines')
    .option('--all', 'every machine of the state directory')
    .option('--no-unenroll', 'leave their nodes alone (the cloud is gone, or keeps them)')))
    .action(async (names: string[], f: CloudFlags & { stateDir: string; all?: boolean; unenroll: boolean }) => {
      const stateDir = resolve(f.stateDir);
      const { deleteMachine, listMachines } = await vbmc();
      const all = await listMachines(stateDir);
      if (!f.all && !names.length) throw new Error('name the machines, or --all');
      const chosen = f.all ? all : names.map((n) => all.find((m) => m.name === n) ?? (() => { throw new Error(`no virtual machine ${n} in ${stateDir}`); })());
      let ironic: Ironic | null = null;
      for (const m of chosen) {
        const node = f.unenroll ? m.config.enrolled?.node : undefined;
        if (node) {
          ironic ??= await connectIronic(f);
          await unenroll(ironic, node);
        }
        await deleteMachine(stateDir, m.name);
        process.stdout.write(`deleted ${m.name}${node ? ` and node ${node}` : ''}\n`);
      }
    });
}
