// bench/baremetal: how long a bare-metal server takes from `server create` to
// SSH on a virtual bare-metal machine, against the same image (stratus-tiny)
// booted as a VM through the same cloud in the same run, split by phase; and
// how many nodes deploy in parallel before the rate stops growing.
//
// The cloud and the machines are made as conformance/baremetal-e2e.sh makes
// them: conformance/lib.sh's cloud_start (`stratus up` on a temp data dir: its
// agent is the conductor on br-bm 172.24.8.1 and the VM host, its flat network
// `baremetal` the provisioning network), run by a bash child of this process
// that stops the cloud and its data plane when its stdin closes; machines from
// `stratus baremetal virtual create` (qemu under TCG, 384 MiB, a 256 MiB disk):
// machine 1 behind ipmi_sim (PXE, iPXE), machine 2 behind the Redfish emulator
// (virtual media), machine 3 IPMI again. Each machine has a resource class of
// its own (CUSTOM_BENCH<k>) and a flavor asking for it, so each server lands on
// the machine chosen. The nodes have automated_clean off: a deleted server's
// node goes back to available without the ~45 s of cleaning, which this
// benchmark does not measure (conformance/baremetal-e2e.sh does clean).
//
//   1. --n rounds per machine kind (IPMI, Redfish), the VM and the bare-metal
//      server alternating (which goes first alternates too): POST /servers
//      (flavor, stratus-tiny, network baremetal, key pair; the VM a security
//      group letting TCP 22 in) to ACTIVE (launched_at) and to the SSH banner
//      (dropbear's `SSH-` on a TCP connect to port 22 from the host, which has
//      172.24.8.1 on br-bm, tried every 100 ms). The bare-metal time is split
//      by phase from the node's history (the API's and the conductor's
//      reports, whose provision_updated_at is the conductor's
//      phase_started_at) and from the machine's serial console (console.log,
//      read every 100 ms: the ramdisk's `stratus-ramdisk:` lines):
//        schedule   POST /servers -> node `deploying` (Nova schedules, the
//                   port is bound, the deploy asked of Ironic)
//        power on   -> `wait call-back` (the conductor's power_on phase: the
//                   image and ramdisk prepared, boot device, BMC power on)
//        pxe        -> the ramdisk's kernel runs (`booting: kernel`): firmware,
//                   DHCP, iPXE, kernel and initramfs over HTTP (Redfish: the
//                   ISO from virtual media)
//        ramdisk    -> `deploying` again (the ramdisk's network, its call back,
//                   the conductor's write_image phase begins)
//        image write -> `image written`/`config drive in partition`
//        reboot     -> node `active` (boot device disk, BMC reset: the
//                   conductor's set_boot_device, reboot and done phases)
//        boot       -> SSH banner (firmware, the guest's kernel, DHCP, dropbear)
//      Prints each round, the medians and the ratio bare metal / VM to SSH.
//   2. 1, 2, 3 (--parallel-max) servers at once on machines 1..p: servers per
//      minute to SSH (count / time from the first create to the last banner),
//      until the rate grows less than 5 % over the best so far.
//   3. Deletes the servers through the API (waits for their nodes to be
//      available), the flavors, key pair and group; `stratus baremetal virtual
//      delete --all` (nodes, qemu, BMCs, taps); then closes the cloud holder's
//      stdin (lib.sh stops `stratus up` by its PID and removes its data plane
//      and temp dir), also on failure and on SIGINT; then checks that nothing
//      is left: no qemu or BMC of this run's machines, no tap of theirs, no
//      temp dir, the holder gone.
//
// Usage (as root, a cloud of its own: under flock /tmp/stratus-cloud.lock):
//   bin/bench baremetal [--n 1] [--parallel-max 3]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readSync, closeSync, readFileSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { api, launchedAt, median, numberFlag, request, sleep, waitServer, type Session } from './lib.ts';

const N = numberFlag('n', 1);
const PARALLEL_MAX = numberFlag('parallel-max', 3);
const ROOT = join(import.meta.dirname, '..');
/** The machines' and the VM flavor's size (the e2e run's: what the ramdisk needs). */
const RAM_MB = 384;
const DISK_MB = 256;
/** Not a timing assertion: how long a deploy may take under TCG on a loaded box before the run gives up. */
const WAIT_MS = 900_000;
const IRONIC_VERSION = '1.78';
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const s1 = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs `stratus <args>` to its end; its output, or an error with it. */
function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(join(ROOT, 'bin/stratus'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => { out += d; });
    c.stderr!.on('data', (d: Buffer) => { out += d; });
    c.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`stratus ${args.slice(0, 3).join(' ')}: exit ${code}: ${out.slice(-500)}`))));
  });
}

/** The time the host first gets dropbear's `SSH-` banner from ip:22 (tried every 100 ms). */
async function sshBanner(ip: string, until: number): Promise<number> {
  for (;;) {
    const at = await new Promise<number | null>((resolve) => {
      const s = net.connect({ host: ip, port: 22, timeout: 1000 });
      let buf = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        buf += d;
        if (buf.length >= 4) { s.destroy(); resolve(buf.startsWith('SSH-') ? Date.now() : null); }
      });
      s.on('timeout', () => { s.destroy(); resolve(null); });
      s.on('error', () => resolve(null));
      s.on('close', () => resolve(null));
    });
    if (at) return at;
    if (Date.now() > until) throw new Error(`no SSH banner from ${ip}`);
    await sleep(100);
  }
}

/** A machine's serial console (console.log, appended across boots): when each marker first appears after `start()`. */
class ConsoleWatch {
  private offset = 0;
  private rest = '';
  private timer: NodeJS.Timeout | null = null;
  readonly seen = new Map<string, number>();
  private readonly file: string;
  private readonly markers: string[];
  constructor(file: string, markers: string[]) {
    this.file = file;
    this.markers = markers;
  }
  start(): void {
    this.offset = existsSync(this.file) ? statSync(this.file).size : 0;
    this.rest = '';
    this.seen.clear();
    this.timer = setInterval(() => this.poll(), 100);
  }
  poll(): void {
    if (!existsSync(this.file)) return;
    const size = statSync(this.file).size;
    if (size < this.offset) this.offset = 0;
    if (size === this.offset) return;
    const fd = openSync(this.file, 'r');
    const buf = Buffer.alloc(size - this.offset);
    readSync(fd, buf, 0, buf.length, this.offset);
    closeSync(fd);
    this.offset = size;
    const now = Date.now();
    const text = this.rest + buf.toString('latin1');
    for (const m of this.markers) if (!this.seen.has(m) && text.includes(m)) this.seen.set(m, now);
    this.rest = text.slice(-200);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.poll();
  }
}

const M_KERNEL = 'stratus-ramdisk: booting: kernel';
const M_WRITE = 'stratus-ramdisk: writing the image';
const M_WRITTEN = 'stratus-ramdisk: image written';
const M_CONFIG = 'stratus-ramdisk: config drive in partition';
const PHASES = ['schedule', 'power on', 'pxe', 'ramdisk', 'image write', 'reboot', 'boot'] as const;

interface Boot { id: string; t0: number; active: number; ssh: number; phases?: Record<(typeof PHASES)[number], number> }

interface Machine { k: number; name: string; kind: 'ipmi' | 'redfish'; node: string; flavor: string; console: ConsoleWatch }

async function main(): Promise<void> {
  let holder: ChildProcess | null = null;
  let session: Session | null = null;
  let cloudTmp = '';
  let cloudDir = '';
  const vbmcDir = () => join(cloudTmp, 'bench-baremetal-vbmc');
  const servers = new Set<string>();
  const flavors: string[] = [];
  let sgId = '';
  let cleaning = false;
  const left: string[] = [];
  let machines: Machine[] = [];

  const ironic = async <T = any>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await request(`${session!.base}/baremetal${path}`, method, { 'X-Auth-Token': session!.token, 'X-OpenStack-Ironic-API-Version': IRONIC_VERSION },
      body === undefined ? undefined : JSON.stringify(body));
    if (r.status >= 300) throw new Error(`${method} /baremetal${path}: ${r.status} ${r.body}`);
    return (r.body ? JSON.parse(r.body) : {}) as T;
  };
  const nodeState = async (node: string) => (await ironic<{ provision_state: string; last_error: string | null }>('GET', `/v1/nodes/${node}`));
  const nodesReach = async (nodes: string[], state: string): Promise<void> => {
    const until = Date.now() + WAIT_MS;
    for (;;) {
      const st = await Promise.all(nodes.map(nodeState));
      const bad = st.find((s) => s.provision_state.endsWith('failed') || s.provision_state === 'error');
      if (bad) throw new Error(`a node is ${bad.provision_state}: ${bad.last_error}`);
      if (st.every((s) => s.provision_state === state)) return;
      if (Date.now() > until) throw new Error(`nodes not ${state}: ${st.map((s) => s.provision_state).join(', ')}`);
      await sleep(500);
    }
  };

  const cleanup = async (): Promise<void> => {
    if (cleaning) return;
    cleaning = true;
    if (session) {
      const s = session;
      for (const id of servers) await request(`${s.base}/compute/v2.1/servers/${id}`, 'DELETE', s.H).catch(() => undefined);
      for (const id of servers) {
        for (let i = 0; i < 3000; i++) {
          const r = await request(`${s.base}/compute/v2.1/servers/${id}`, 'GET', s.H).catch(() => null);
          if (r?.status === 404) break;
          await sleep(200);
        }
      }
      for (const f of flavors) await request(`${s.base}/compute/v2.1/flavors/${f}`, 'DELETE', s.H).catch(() => undefined);
      await request(`${s.base}/compute/v2.1/os-keypairs/bench-bm`, 'DELETE', s.H).catch(() => undefined);
      if (sgId) await request(`${s.base}/network/v2.0/security-groups/${sgId}`, 'DELETE', s.H).catch(() => undefined);
    }
    for (const m of machines) m.console.stop();
    const taps = machines.map((m) => /"tap":\s*"([^"]+)"/.exec(safeRead(join(vbmcDir(), 'machines', m.name, 'machine.json')))?.[1]).filter((t): t is string => !!t);
    if (cloudTmp && existsSync(vbmcDir())) {
      await cli(['baremetal', 'virtual', 'delete', '--all', '--state-dir', vbmcDir(), '--data-dir', cloudDir])
        .catch(() => cli(['baremetal', 'virtual', 'delete', '--all', '--state-dir', vbmcDir(), '--no-unenroll']))
        .catch((err: Error) => left.push(`the machines: ${err.message}`));
    }
    // what is left of the machines: their qemu and BMCs (by this run's state dir), their taps
    if (cloudTmp) {
      const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(vbmcDir()); } catch { return false; }
      });
      if (procs.length) left.push(`processes of the machines ${procs.join(' ')}`);
    }
    for (const tap of taps) if (existsSync(`/sys/class/net/${tap}`)) left.push(`tap ${tap}`);
    // the cloud: the holder stops it (lib.sh's _cloud_stop) when its stdin closes
    if (holder && holder.exitCode === null && holder.signalCode === null) {
      const exited = new Promise((r) => holder!.once('exit', r));
      holder.stdin!.end();
      const timer = setTimeout(() => { if (holder!.pid) process.kill(-holder!.pid, 'SIGTERM'); }, 300_000);
      await exited;
      clearTimeout(timer);
    }
    if (cloudTmp && existsSync(cloudTmp)) left.push(`the cloud's temp dir ${cloudTmp}`);
    console.log(left.length ? `LEFT BEHIND: ${left.join('; ')}` : 'cleanup: nothing left behind (servers, nodes, machines\' qemu, BMCs and taps, the cloud and its temp dir)');
    if (left.length) process.exitCode = 1;
  };
  process.once('SIGINT', () => {
    console.log('SIGINT: cleaning up');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    console.log(`stratus bare-metal benchmark: ${N} round(s) per kind, parallel up to ${PARALLEL_MAX}, ${cpus().length} CPUs; load average ${load()}`);
    // ---- the cloud, as the e2e run starts it (its own process group: a Ctrl-C is ours to handle)
    const script = `. "${ROOT}/conformance/lib.sh"; here=$STRATUS_ROOT . "$STRATUS_ROOT/scripts/node-env.sh" >/dev/null; cloud_start
      echo "CLOUD $CLOUD_URL $CLOUD_DIR $_cloud_tmp"; read -r _ || true`;
    const t0 = Date.now();
    holder = spawn('bash', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: holder!.stdout! });
      rl.on('line', (l) => { if (l.startsWith('CLOUD ')) resolve(l); else console.log(`cloud: ${l}`); });
      holder!.once('exit', (code) => reject(new Error(`the cloud did not start (exit ${code})`)));
    });
    const [, url, dir, tmp] = line.split(' ');
    cloudDir = dir!;
    cloudTmp = tmp!;
    session = await waitServer(url!, readFileSync(join(cloudDir, 'admin-password'), 'utf8').trim());
    const s = session;
    console.log(`cloud up in ${s1(Date.now() - t0)} at ${url}`);
    let imageId = '';
    for (let i = 0; !imageId; i++) {
      const im = (await api<{ images: Array<{ id: string; status: string }> }>(s, 'GET', '/image/v2/images?name=stratus-tiny')).images[0];
      if (im?.status === 'active') imageId = im.id;
      else if (i > 3000) throw new Error('stratus-tiny did not become active');
      else await sleep(200);
    }
    for (let i = 0; ; i++) {
      const d = await ironic<{ drivers: Array<{ name: string }> }>('GET', '/v1/drivers').catch(() => ({ drivers: [] }));
      if (d.drivers.some((x) => x.name === 'redfish')) break;
      if (i > 600) throw new Error('no conductor');
      await sleep(200);
    }
    const baremetal = (await api<{ networks: Array<{ id: string }> }>(s, 'GET', '/network/v2.0/networks?name=baremetal')).networks[0]!.id;

    // ---- the machines: one per resource class, automated cleaning off, provided to available
    const count = Math.max(2, PARALLEL_MAX);
    for (let k = 1; k <= count; k++) {
      const kind = k === 2 ? 'redfish' : 'ipmi';
      await cli(['baremetal', 'virtual', 'create', '--count', '1', '--bmc', kind, '--state-dir', vbmcDir(), '--data-dir', cloudDir,
        '--name-prefix', `bench${k}`, '--memory-mb', String(RAM_MB), '--disk-mb', String(DISK_MB), '--resource-class', `bench${k}`]);
      const name = `bench${k}-1`;
      const node = (await ironic<{ uuid: string }>('GET', `/v1/nodes/${name}`)).uuid;
      await ironic('PATCH', `/v1/nodes/${node}`, [{ op: 'replace', path: '/automated_clean', value: false }]);
      const flavor = (await api<{ flavor: { id: string } }>(s, 'POST', '/compute/v2.1/flavors', { flavor: { name: `bench-bm-${k}`, ram: RAM_MB, vcpus: 1, disk: 0 } })).flavor.id;
      flavors.push(flavor);
      await api(s, 'POST', `/compute/v2.1/flavors/${flavor}/os-extra_specs`, { extra_specs: {
        [`resources:CUSTOM_BENCH${k}`]: '1', 'resources:VCPU': '0', 'resources:MEMORY_MB': '0', 'resources:DISK_GB': '0' } });
      machines.push({ k, name, kind, node, flavor, console: new ConsoleWatch(join(vbmcDir(), 'machines', name, 'console.log'), [M_KERNEL, M_WRITE, M_WRITTEN, M_CONFIG]) });
    }
    for (const m of machines) await ironic('PUT', `/v1/nodes/${m.node}/states/provision`, { target: 'manage' });
    await nodesReach(machines.map((m) => m.node), 'manageable');
    for (const m of machines) await ironic('PUT', `/v1/nodes/${m.node}/states/provision`, { target: 'provide' });
    await nodesReach(machines.map((m) => m.node), 'available');
    console.log(`${machines.length} machines available (${machines.map((m) => `${m.name} ${m.kind}`).join(', ')}) at ${s1(Date.now() - t0)}`);

    const vmFlavor = (await api<{ flavor: { id: string } }>(s, 'POST', '/compute/v2.1/flavors', { flavor: { name: 'bench-bm-vm', ram: RAM_MB, vcpus: 1, disk: 1 } })).flavor.id;
    flavors.push(vmFlavor);
    const key = await new Promise<string>((resolve, reject) => {
      const c = spawn('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-bm', '-f', join(cloudTmp, 'bench-bm-key')], { stdio: 'ignore' });
      c.once('exit', (code) => (code === 0 ? resolve(readFileSync(join(cloudTmp, 'bench-bm-key.pub'), 'utf8').trim()) : reject(new Error('ssh-keygen'))));
    });
    await api(s, 'POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'bench-bm', public_key: key } });
    sgId = (await api<{ security_group: { id: string } }>(s, 'POST', '/network/v2.0/security-groups', { security_group: { name: 'bench-bm-ssh' } })).security_group.id;
    await api(s, 'POST', '/network/v2.0/security-group-rules', { security_group_rule: { security_group_id: sgId, direction: 'ingress', protocol: 'tcp', port_range_min: 22, port_range_max: 22 } });

    /** POST /servers to ACTIVE and to the SSH banner; for a bare-metal one, its phases. */
    let serial = 0;
    const boot = async (m: Machine | null): Promise<Boot> => {
      if (cleaning) throw new Error('interrupted');
      m?.console.start();
      const t0 = Date.now();
      const r = await api<{ server: { id: string } }>(s, 'POST', '/compute/v2.1/servers', { server: {
        name: `bench-bm-${m ? `bm${m.k}` : 'vm'}-${serial++}`, imageRef: imageId, flavorRef: m ? m.flavor : vmFlavor, key_name: 'bench-bm',
        networks: [{ uuid: baremetal }], ...(m ? {} : { security_groups: [{ name: 'bench-bm-ssh' }] }),
      } });
      const id = r.server.id;
      servers.add(id);
      const until = t0 + WAIT_MS;
      let ip = '';
      let active = 0;
      while (!active) {
        const v = (await api<{ server: Record<string, any> }>(s, 'GET', `/compute/v2.1/servers/${id}`)).server;
        if (v.status === 'ERROR') throw new Error(`server ${id}: ERROR ${JSON.stringify(v.fault ?? {})}`);
        if (v.status === 'ACTIVE') {
          active = launchedAt(v);
          ip = Object.values((v.addresses ?? {}) as Record<string, Array<{ addr: string }>>).flat()[0]?.addr ?? '';
        }
        if (Date.now() > until) throw new Error(`server ${id} stayed ${v.status}`);
        if (!active) await sleep(200);
      }
      const ssh = await sshBanner(ip, until);
      if (!m) return { id, t0, active, ssh };
      m.console.stop();
      const history = (await ironic<{ history: Array<{ created_at: string; event: string }> }>('GET', `/v1/nodes/${m.node}/history`)).history
        .map((h) => ({ at: Date.parse(h.created_at), event: h.event })).filter((h) => h.at >= t0 - 1000).sort((a, b) => a.at - b.at);
      const when = (re: RegExp) => history.find((h) => re.test(h.event))?.at ?? NaN;
      const tDeploying = when(/to "deploying" by/);
      const tWait = when(/to "wait call-back"/);
      const tResume = when(/from "wait call-back" to "deploying"/);
      const tNodeActive = when(/to "active"/);
      const c = m.console.seen;
      const tKernel = c.get(M_KERNEL) ?? NaN;
      const tWritten = c.get(M_CONFIG) ?? c.get(M_WRITTEN) ?? NaN;
      const phases = {
        schedule: tDeploying - t0, 'power on': tWait - tDeploying, pxe: tKernel - tWait, ramdisk: tResume - tKernel,
        'image write': tWritten - tResume, reboot: tNodeActive - tWritten, boot: ssh - tNodeActive,
      };
      return { id, t0, active, ssh, phases };
    };
    const drop = async (ids: string[], nodes: string[]): Promise<void> => {
      for (const id of ids) await api(s, 'DELETE', `/compute/v2.1/servers/${id}`);
      for (const id of ids) {
        for (let i = 0; (await request(`${s.base}/compute/v2.1/servers/${id}`, 'GET', s.H)).status !== 404; i++) {
          if (i > 3000) throw new Error(`server ${id} was not deleted`);
          await sleep(200);
        }
        servers.delete(id);
      }
      await nodesReach(nodes, 'available');
    };
    const phaseLine = (b: Boot) => PHASES.map((p) => `${p} ${s1(b.phases![p])}`).join(', ');

    // warm-up (not timed): the agent fetches the image into its VM cache
    console.log('warm-up: one VM');
    const w = await boot(null);
    await drop([w.id], []);

    // ---- 1. one at a time, per kind
    for (const m of machines.slice(0, 2)) {
      const vms: Boot[] = [];
      const bms: Boot[] = [];
      for (let r = 0; r < N; r++) {
        const loadAt = load();
        const doVm = async () => { const b = await boot(null); await drop([b.id], []); vms.push(b); return b; };
        const doBm = async () => { const b = await boot(m); await drop([b.id], [m.node]); bms.push(b); return b; };
        let vb: Boot;
        let bb: Boot;
        if (r % 2 === 0) { bb = await doBm(); vb = await doVm(); } else { vb = await doVm(); bb = await doBm(); }
        console.log(`${m.kind} round ${r + 1}: VM to ACTIVE ${s1(vb.active - vb.t0)}, to SSH ${s1(vb.ssh - vb.t0)}; bare metal to ACTIVE ${s1(bb.active - bb.t0)}, to SSH ${s1(bb.ssh - bb.t0)}; ratio ${((bb.ssh - bb.t0) / (vb.ssh - vb.t0)).toFixed(2)}x (load ${loadAt})`);
        console.log(`  phases: ${phaseLine(bb)}`);
      }
      const vm = median(vms.map((b) => b.ssh - b.t0));
      const bm = median(bms.map((b) => b.ssh - b.t0));
      const med: Record<string, number> = {};
      for (const p of PHASES) med[p] = median(bms.map((b) => b.phases![p]));
      console.log(`${m.kind} medians of ${N}: VM to SSH ${s1(vm)}; bare metal to ACTIVE ${s1(median(bms.map((b) => b.active - b.t0)))}, to SSH ${s1(bm)}`);
      console.log(`${m.kind} phases (medians): ${PHASES.map((p) => `${p} ${s1(med[p]!)} (${((100 * med[p]!) / bm).toFixed(0)} %)`).join(', ')}`);
      console.log(`RATIO ${m.kind} time to SSH (bare metal / VM): ${(bm / vm).toFixed(2)}x`);
    }

    // ---- 2. in parallel, until the rate stops growing
    let best = 0;
    for (let p = 1; p <= Math.min(PARALLEL_MAX, machines.length); p++) {
      const loadAt = load();
      const ms = machines.slice(0, p);
      const bs = await Promise.all(ms.map((m) => boot(m)));
      await drop(bs.map((b) => b.id), ms.map((m) => m.node));
      const rate = (bs.length * 60_000) / (Math.max(...bs.map((b) => b.ssh)) - Math.min(...bs.map((b) => b.t0)));
      console.log(`parallel ${p}: ${rate.toFixed(2)} servers/min to SSH (slowest ${s1(Math.max(...bs.map((b) => b.ssh - b.t0)))}, ACTIVE median ${s1(median(bs.map((b) => b.active - b.t0)))}; image write median ${s1(median(bs.map((b) => b.phases!['image write'])))}, pxe median ${s1(median(bs.map((b) => b.phases!.pxe)))}) (load ${loadAt})`);
      if (p > 1 && rate < best * 1.05) {
        console.log(`the rate stopped growing at ${p} in parallel (best ${best.toFixed(2)} servers/min)`);
        break;
      }
      best = Math.max(best, rate);
    }
    console.log(`load average at the end ${load()}`);
  } finally {
    await cleanup();
  }
}

function safeRead(f: string): string {
  try { return readFileSync(f, 'utf8'); } catch { return ''; }
}

await main();
