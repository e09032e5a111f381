// The bare-metal conductor: the agent's driver of `baremetal_node` resources
// (src/baremetal/protocol.ts). An agent started with `--baremetal` serves the
// hardware types `ipmi` and `redfish` (HostInfo.kinds) and announces its
// endpoint (HostInfo.baremetal). For each node it converges NodeSpec:
//
//   power / boot device  a request is carried out once per seq (BmcClient)
//   operation            step by step, each step a phase reported with when it began:
//     verify     read the power through the BMC
//     inspect out of band (inspect_interface redfish)
//                done: the BMC's description of the hardware (BmcClient.inspect)
//                is the inventory; nothing boots, the power stays as it is
//     inspect, clean, deploy, rescue
//                power_on (the image fetched and made raw, the config drive
//                image built, a token made; boot device pxe or the ISO
//                inserted as virtual media and boot device cdrom; power on or
//                reset) -> pxe | vmedia (until the ramdisk asks for its
//                command, or ramdisk_timeout) -> inspect | erase |
//                write_image (-> config_drive) | ramdisk (the ramdisk works
//                and reports) -> power_off (inspect, clean) or
//                set_boot_device (disk, persistent) -> reboot (deploy) ->
//                done; rescue is done once the ramdisk has set the password
//     unrescue   set_boot_device (disk) -> reboot -> done
//     tear_down  power_off -> set_boot_device (pxe) -> done
//   maintenance          nothing is done; the power is observed
//
// A failure anywhere powers the node off and reports the operation `failed`
// with a message for people (never a secret: BMC passwords stay in the BMC
// client, tokens in this process and the state file) and the error's code.
// The node's state (the operation's phase, its token, the seqs carried out)
// is kept in <state>/baremetal/nodes/<id>.json (0600), so an agent restarted
// mid-operation carries on: its endpoint comes back on the same port and the
// ramdisk, which keeps asking, finds it again.
//
// While a node is powered on (from just before the conductor powers it on),
// the conductor records its serial console (console.ts: IPMI Serial over
// LAN, a Redfish BMC's Telnet serial console) into
// <state>/baremetal/consoles/<id>.log, capped; the `console` request
// (reconciler.ts) reads its tail.
//
// The endpoint (HTTP on --baremetal-address:--baremetal-port): the iPXE
// scripts (ipxe.ts) and the ramdisk's kernel and initramfs are public; the
// rest (the ramdisk's command and reports, the raw image, the config drive,
// the ISO) needs the node's current operation token (`X-Stratus-Token`, or
// `?token=` for the ISO a BMC fetches by URL), compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import {
  BAREMETAL_NODE_KIND, BaremetalErrorCode, HARDWARE_TYPES, type BootInterface, type ConfigDrive, type NodeInventory, type NodeObserved, type NodeOperation,
  type NodeSpec, type OperationPhase, type PowerState,
} from '../../../baremetal/protocol.ts';
import { KeyedLock } from '../../../common/keyed-lock.ts';
import type { BaremetalConductor as ConductorEndpoint, ResourceError } from '../../../fleet/protocol.ts';
import { toResourceError, transient, userError } from '../../errors.ts';
import type { Driver } from '../driver.ts';
import { IPXE_DIR } from '../network/dhcp.ts';
import { writeConfigDriveIso } from '../vm/configdrive.ts';
import type { BmcClient, BmcFactory } from './bmc.ts';
import { ConsoleRecorders } from './console.ts';
import { ImageCache, type RawImage } from './images.ts';
import { chainScript, localBootScript, macFromPath, ramdiskScript } from './ipxe.ts';
import { buildRamdisk, buildRamdiskIso, ramdiskCmdline, type Ramdisk } from './ramdisk/build.ts';
import { parseReport, renderCommand, type RamdiskCommand } from './ramdisk/protocol.ts';

export const DEFAULT_BAREMETAL_PORT = 6386;
/** How long a power on waits for the node's console session to open (its first words recorded). */
const CONSOLE_OPEN_WAIT_MS = 10_000;
export const TOKEN_HEADER = 'x-stratus-token';

/** The clean steps the ramdisk does (Ironic's automated one). */
export const CLEAN_STEPS = ['erase_devices_metadata'];

type RamdiskOp = Extract<NodeOperation, { boot_interface: BootInterface }>;
const isRamdiskOp = (o: NodeOperation): o is RamdiskOp => 'boot_interface' in o;
/** Operations that power the node on: the ramdisk's, and unrescue's boot from disk. */
const powersOn = (o: NodeOperation): boolean => isRamdiskOp(o) || o.type === 'unrescue';

/** What the ramdisk does for each operation, as the phase reported while it works. */
const WORK_PHASE: Record<RamdiskOp['type'], OperationPhase> = { inspect: 'inspect', clean: 'erase', deploy: 'write_image', rescue: 'ramdisk' };
const WAITING: ReadonlySet<OperationPhase> = new Set(['pxe', 'vmedia', 'ramdisk', 'inspect', 'erase', 'write_image', 'config_drive']);

interface OpState {
  id: string;
  type: NodeOperation['type'];
  status: 'running' | 'succeeded' | 'failed';
  phase: OperationPhase;
  phase_started_at: string;
  /** When the waiting phase gives up (epoch ms). */
  deadline?: number;
  token?: string;
  boot_interface?: BootInterface;
  image?: RawImage;
  configdrive?: { path: string; size: number };
  iso?: string;
  rescue_password_hash?: string;
  /** Out-of-band inspection: the BMC is read, the node left as it is (no power change, even on failure). */
  out_of_band?: boolean;
  inventory?: NodeInventory;
  /** Set once the operation failed; the node is then powered off. */
  failure?: { code: string; class: ResourceError['class']; message: string; phase: OperationPhase };
  message?: string;
}

interface NodeState {
  id: string;
  nics: string[];
  power_seq?: number;
  boot_device_seq?: number;
  op?: OpState;
}

export interface ConductorOptions {
  stateDir: string;
  log: Logger;
  /** The conductor's address on the provisioning network (its endpoint listens there; the ramdisk calls it). */
  address: string;
  port?: number;
  /** Listen on another address than `address` (tests: 0.0.0.0 behind a namespace). */
  listenAddress?: string;
  fetchImage(imageId: string, dest: string): Promise<void>;
  bmc: BmcFactory;
  /** The ramdisk (default: built under the guest cache). */
  ramdisk?: () => Promise<Ramdisk>;
  /** How long a node may take from power-on to its ramdisk's first call (default 15 min). */
  ramdiskTimeoutMs?: number;
  /** How long the ramdisk may work on one step (default 1 h). */
  stepTimeoutMs?: number;
  /** A BMC's power change (default 60 s). */
  powerTimeoutMs?: number;
  /** Ask the agent to converge a node again (the endpoint heard from its ramdisk, a deadline passed). */
  requeue?: (id: string) => void;
  /** A node's recorded serial console is kept under this many bytes (default 1 MiB). */
  consoleCap?: number;
}

const now = () => new Date().toISOString();
const hashToken = (t: string) => createHash('sha256').update(t).digest();
const NODE_ID = /^[A-Za-z0-9-]{1,64}$/;

export class BaremetalConductor implements Driver {
  readonly name = 'baremetal';
  readonly serves = { [BAREMETAL_NODE_KIND]: [...HARDWARE_TYPES] };
  readonly o: ConductorOptions & { port: number; ramdiskTimeoutMs: number; stepTimeoutMs: number; powerTimeoutMs: number };
  private readonly log: Logger;
  private readonly root: string;
  private readonly nodes = new Map<string, NodeState>();
  private readonly locks = new KeyedLock();
  private readonly images: ImageCache;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly consoles: ConsoleRecorders;
  /** The BMC access each recorded console was opened with (new credentials: opened again). */
  private readonly consoleAccess = new Map<string, string>();
  private server: Server | null = null;
  private ramdiskP: Promise<Ramdisk> | null = null;
  requeue: (id: string) => void;

  constructor(o: ConductorOptions) {
    this.o = { ...o, port: o.port ?? DEFAULT_BAREMETAL_PORT, ramdiskTimeoutMs: o.ramdiskTimeoutMs ?? 900_000, stepTimeoutMs: o.stepTimeoutMs ?? 3_600_000, powerTimeoutMs: o.powerTimeoutMs ?? 60_000 };
    this.log = o.log;
    this.root = join(o.stateDir, 'baremetal');
    this.images = new ImageCache(join(this.root, 'images'), o.fetchImage, this.locks);
    this.consoles = new ConsoleRecorders(this.root, o.log, o.consoleCap ?? 1 << 20);
    this.requeue = o.requeue ?? (() => {});
  }

  get base(): string {
    return `http://${this.o.address.includes(':') ? `[${this.o.address}]` : this.o.address}:${this.o.port}`;
  }

  /** HostInfo.baremetal. */
  baremetal(): ConductorEndpoint {
    return { address: this.o.address, http_port: this.o.port, tftp: existsSync(join(IPXE_DIR, 'undionly.kpxe')) };
  }

  async start(): Promise<void> {
    await fsp.mkdir(join(this.root, 'nodes'), { recursive: true, mode: 0o700 });
    await this.images.start();
    for (const f of await fsp.readdir(join(this.root, 'nodes'))) {
      if (!f.endsWith('.json')) continue;
      const st = await fsp.readFile(join(this.root, 'nodes', f), 'utf8').then((t) => JSON.parse(t) as NodeState).catch(() => null);
      if (st && NODE_ID.test(st.id)) this.nodes.set(st.id, st);
    }
    this.ramdiskP = (this.o.ramdisk ?? (() => buildRamdisk({ log: (m) => this.log.info(m) })))();
    this.ramdiskP.catch((err: Error) => this.log.error({ err: err.message }, 'the deploy ramdisk could not be built'));
    this.server = createServer((req, res) => {
      this.serve(req, res).catch((err: Error) => {
        this.log.warn({ err: err.message, url: req.url?.replace(/token=[^&]*/g, 'token=***') }, 'baremetal endpoint error');
        if (!res.headersSent) send(res, 500, 'error\n');
        else res.destroy();
      });
    });
    await this.listen();
  }

  /** Listens on the endpoint; an address not (yet) on this host or a port in use is retried every 5 s (the agent runs on meanwhile). */
  private async listen(): Promise<void> {
    const s = this.server;
    if (!s) return;
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(this.o.port, this.o.listenAddress ?? this.o.address, () => {
          s.off('error', reject);
          resolve();
        });
      });
      this.log.info({ endpoint: this.base }, 'bare-metal conductor listening');
    } catch (err) {
      this.log.error({ err: (err as Error).message, endpoint: this.base }, 'the bare-metal endpoint cannot listen; retrying in 5 s');
      const t = setTimeout(() => void this.listen(), 5000);
      t.unref();
      this.timers.set('\0listen', t);
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    await this.consoles.stopAll();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
  }

  async localNodes(): Promise<string[]> {
    return [...this.nodes.keys()];
  }

  /** The node is no longer this conductor's: its state goes (the machine is left as it is). */
  async forget(id: string): Promise<void> {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.nodes.delete(id);
    this.consoleAccess.delete(id);
    await this.consoles.remove(id);
    await fsp.rm(join(this.root, 'nodes', `${id}.json`), { force: true });
    await fsp.rm(join(this.root, 'nodes', id), { recursive: true, force: true });
  }

  private async save(st: NodeState): Promise<void> {
    const f = join(this.root, 'nodes', `${st.id}.json`);
    await fsp.writeFile(`${f}.tmp`, JSON.stringify(st), { mode: 0o600 });
    await fsp.rename(`${f}.tmp`, f);
  }

  private nodeDir(id: string): string {
    return join(this.root, 'nodes', id);
  }

  private setPhase(op: OpState, phase: OperationPhase, deadlineMs?: number): void {
    op.phase = phase;
    op.phase_started_at = now();
    op.deadline = deadlineMs === undefined ? undefined : Date.now() + deadlineMs;
  }

  /** Converges one node; returns what to report. */
  async converge(id: string, spec: NodeSpec): Promise<{ observed: NodeObserved; error?: ResourceError }> {
    if (!NODE_ID.test(id)) throw userError('spec_invalid', 'bad node id');
    return this.locks.run(`node:${id}`, async () => {
      let st = this.nodes.get(id);
      if (!st) {
        st = { id, nics: [] };
        this.nodes.set(id, st);
      }
      st.nics = spec.nics.map((n) => n.mac.toLowerCase());
      const bmc = this.o.bmc(spec.bmc);
      let error: ResourceError | undefined;
      // about to power the node on (a request, an operation): its console is recorded from its first words
      const poweringOn = !spec.maintenance && ((spec.power !== null && spec.power.seq !== st.power_seq && !spec.power.target.endsWith('off'))
        || (spec.operation !== null && powersOn(spec.operation) && st.op?.id !== spec.operation.id));
      if (poweringOn) await this.recordConsole(id, spec, bmc, 'power on', CONSOLE_OPEN_WAIT_MS);
      if (!spec.maintenance) {
        if (spec.power && spec.power.seq !== st.power_seq) {
          try {
            await this.applyPower(bmc, spec.power.target, spec.power.timeout_s ? spec.power.timeout_s * 1000 : this.o.powerTimeoutMs);
          } catch (err) {
            error = toResourceError(err);
          }
          st.power_seq = spec.power.seq;
        }
        if (spec.boot_device && spec.boot_device.seq !== st.boot_device_seq) {
          try {
            await bmc.setBootDevice(spec.boot_device.device, spec.boot_device.persistent);
          } catch (err) {
            error ??= toResourceError(err);
          }
          st.boot_device_seq = spec.boot_device.seq;
        }
        if (spec.operation) await this.step(st, spec.operation, bmc);
        else if (st.op?.status === 'running') await this.abandon(st, bmc);
      }
      await this.save(st);
      let power: PowerState | null = null;
      try {
        power = await bmc.power();
      } catch (err) {
        error ??= toResourceError(err);
      }
      await this.recordConsole(id, spec, bmc, power);
      const observed: NodeObserved = { power_state: power };
      if (st.power_seq !== undefined) observed.power_seq = st.power_seq;
      if (st.boot_device_seq !== undefined) observed.boot_device_seq = st.boot_device_seq;
      const op = st.op;
      if (op && spec.operation && op.id === spec.operation.id) {
        observed.operation = {
          id: op.id, status: op.status, phase: op.status === 'failed' && op.failure ? op.failure.phase : op.phase, phase_started_at: op.phase_started_at,
          ...(op.status === 'failed' && op.failure ? { message: op.failure.message } : {}),
          ...(op.inventory && op.status === 'succeeded' ? { inventory: op.inventory } : {}),
        };
        if (op.status === 'failed' && op.failure) error = { class: op.failure.class, code: op.failure.code, message: op.failure.message };
      }
      this.schedule(st);
      return { observed, ...(error ? { error } : {}) };
    });
  }

  /**
   * The serial console is recorded while the node is on, from just before the
   * conductor powers it on (a BMC that did not answer: left as it is).
   */
  private async recordConsole(id: string, spec: NodeSpec, bmc: BmcClient, power: PowerState | null, waitMs = 0): Promise<void> {
    if (power === null) return;
    const key = JSON.stringify(spec.bmc);
    if (power === 'power on') {
      // new BMC access: the old session has stopped writing before a new one appends to the same log
      if (this.consoleAccess.get(id) !== key && this.consoles.recording(id)) await this.consoles.stop(id);
      this.consoleAccess.set(id, key);
      await this.consoles.start(id, bmc, waitMs);
    } else if (this.consoles.recording(id)) {
      void this.consoles.stop(id);
    }
  }

  /** The node's recorded serial console (its last `lines` lines). */
  async consoleOutput(id: string, lines?: number): Promise<string> {
    if (!this.nodes.has(id)) throw userError('node_unknown', `node ${id} is not conducted by this host`);
    return this.consoles.output(id, lines);
  }

  /** A wake-up at the running phase's deadline. */
  private schedule(st: NodeState): void {
    clearTimeout(this.timers.get(st.id));
    this.timers.delete(st.id);
    const d = st.op?.status === 'running' ? st.op.deadline : undefined;
    if (d === undefined) return;
    const t = setTimeout(() => this.requeue(st.id), Math.max(0, d - Date.now()) + 50);
    t.unref();
    this.timers.set(st.id, t);
  }

  private async applyPower(bmc: BmcClient, target: NonNullable<NodeSpec['power']>['target'], timeoutMs: number): Promise<void> {
    switch (target) {
      case 'power on':
      case 'power off':
        return bmc.setPower(target, timeoutMs);
      case 'reboot':
        return bmc.reboot(timeoutMs);
      case 'soft power off':
        if (!(await bmc.softPowerOff(timeoutMs))) await bmc.setPower('power off', timeoutMs);
        return;
      case 'soft reboot':
        if (!(await bmc.softPowerOff(timeoutMs))) await bmc.setPower('power off', timeoutMs);
        return bmc.setPower('power on', timeoutMs);
    }
  }

  /** Runs the operation's steps until it waits (for the ramdisk) or ends. */
  private async step(st: NodeState, want: NodeOperation, bmc: BmcClient): Promise<void> {
    if (!st.op || st.op.id !== want.id) {
      // a new operation: the old one's files and token go
      await fsp.rm(this.nodeDir(st.id), { recursive: true, force: true });
      const oob = want.type === 'inspect' && !isRamdiskOp(want);
      const first: OperationPhase = want.type === 'verify' || oob ? 'done' : want.type === 'tear_down' ? 'power_off' : want.type === 'unrescue' ? 'set_boot_device' : 'power_on';
      st.op = { id: want.id, type: want.type, status: 'running', phase: first, phase_started_at: now(), ...(oob ? { out_of_band: true } : {}) };
      if (isRamdiskOp(want)) st.op.boot_interface = want.boot_interface;
      if (want.type === 'rescue') st.op.rescue_password_hash = want.rescue_password_hash;
      await this.save(st);
    }
    const op = st.op;
    for (let i = 0; i < 12 && op.status === 'running'; i++) {
      const before = op.phase;
      try {
        await this.advance(st, op, want, bmc);
      } catch (err) {
        await this.fail(st, op, bmc, err);
      }
      await this.save(st);
      if (op.phase === before && op.status === 'running') break;
    }
  }

  private async advance(st: NodeState, op: OpState, want: NodeOperation, bmc: BmcClient): Promise<void> {
    switch (op.phase) {
      case 'done':
        if (want.type === 'verify') await bmc.power();
        if (op.out_of_band) {
          if (!bmc.inspect) throw userError(BaremetalErrorCode.bmcRefused, 'this BMC cannot describe the hardware (out-of-band inspection needs Redfish)');
          op.inventory = await bmc.inspect();
        }
        op.status = 'succeeded';
        return;
      case 'power_on': {
        if (!isRamdiskOp(want)) throw new Error(`phase power_on in a ${want.type}`);
        await this.prepare(st, op, want);
        if (op.boot_interface === 'redfish-virtual-media') {
          if (!bmc.virtualMedia) throw userError(BaremetalErrorCode.bmcRefused, 'this BMC has no virtual media');
          await bmc.virtualMedia.eject().catch(() => undefined);
          await bmc.virtualMedia.insert(`${this.base}/v1/nodes/${st.id}/ramdisk.iso?token=${op.token}`);
          await bmc.setBootDevice('cdrom', false);
        } else {
          await bmc.setBootDevice('pxe', false);
        }
        if ((await bmc.power()) === 'power on') await bmc.reboot(this.o.powerTimeoutMs);
        else await bmc.setPower('power on', this.o.powerTimeoutMs);
        this.setPhase(op, op.boot_interface === 'redfish-virtual-media' ? 'vmedia' : 'pxe', this.o.ramdiskTimeoutMs);
        return;
      }
      case 'pxe':
      case 'vmedia':
        if (Date.now() > (op.deadline ?? Infinity)) {
          throw userError(BaremetalErrorCode.ramdiskTimeout, `the deploy ramdisk did not call back within ${Math.round(this.o.ramdiskTimeoutMs / 1000)} s of power on`);
        }
        return;
      case 'ramdisk':
      case 'inspect':
      case 'erase':
      case 'write_image':
      case 'config_drive':
        if (Date.now() > (op.deadline ?? Infinity)) throw userError(BaremetalErrorCode.ramdiskTimeout, `the deploy ramdisk did not finish ${op.phase} within ${Math.round(this.o.stepTimeoutMs / 1000)} s`);
        return;
      case 'power_off':
        if (op.failure) {
          // a failure the ramdisk reported: the node goes off and the operation ends failed
          await this.fail(st, op, bmc, new Error(op.failure.message));
          return;
        }
        await bmc.setPower('power off', this.o.powerTimeoutMs);
        if (op.boot_interface === 'redfish-virtual-media') await bmc.virtualMedia?.eject();
        if (want.type === 'tear_down') this.setPhase(op, 'set_boot_device');
        else this.setPhase(op, 'done');
        return;
      case 'set_boot_device':
        if (op.boot_interface === 'redfish-virtual-media') await bmc.virtualMedia?.eject();
        await bmc.setBootDevice(want.type === 'tear_down' ? 'pxe' : 'disk', true);
        this.setPhase(op, want.type === 'tear_down' ? 'done' : 'reboot');
        return;
      case 'reboot':
        if ((await bmc.power()) === 'power on') await bmc.reboot(this.o.powerTimeoutMs);
        else await bmc.setPower('power on', this.o.powerTimeoutMs);
        this.setPhase(op, 'done');
        return;
      default:
        throw new Error(`unknown phase ${op.phase}`);
    }
  }

  /** Before power on: the token, the raw image, the config drive image and the ISO, as the operation needs them. */
  private async prepare(st: NodeState, op: OpState, want: RamdiskOp): Promise<void> {
    const dir = this.nodeDir(st.id);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    op.token ??= randomBytes(32).toString('hex');
    if (want.type === 'clean') {
      const unknown = want.steps.filter((s) => !CLEAN_STEPS.includes(s.step));
      if (unknown.length) throw userError(BaremetalErrorCode.stepFailed, `clean steps this conductor does not do: ${unknown.map((s) => `${s.interface}.${s.step}`).join(', ')}`);
    }
    if (want.type === 'deploy') {
      op.image = await this.images.raw(want.image);
      if (want.config_drive) {
        const path = join(dir, 'configdrive.iso');
        await this.configDrive(st.id, want.config_drive, path, join(dir, 'configdrive.stage'));
        op.configdrive = { path, size: (await fsp.stat(path)).size };
      }
    }
    if (op.boot_interface === 'redfish-virtual-media') {
      const iso = join(dir, 'ramdisk.iso');
      await buildRamdiskIso(await this.ramdisk(), ramdiskCmdline(this.base, st.id, op.token), iso);
      op.iso = iso;
    } else {
      await this.ramdisk();
    }
  }

  /**
   * The config drive image: Ironic's string form (`image`: a gzipped,
   * base64-encoded image, or a URL to one) as it is, else an ISO 9660
   * `config-2` image made from the JSON form (as Ironic builds it).
   */
  private async configDrive(node: string, cd: ConfigDrive, path: string, staging: string): Promise<void> {
    if (cd.image) {
      let data: Buffer;
      if (/^https?:\/\//i.test(cd.image)) {
        const r = await fetch(cd.image, { signal: AbortSignal.timeout(120_000) }).catch((err: Error) => { throw userError(BaremetalErrorCode.stepFailed, `cannot fetch the config drive: ${err.message}`); });
        if (!r.ok) throw userError(BaremetalErrorCode.stepFailed, `cannot fetch the config drive: ${r.status}`);
        data = Buffer.from(await r.arrayBuffer());
      } else {
        data = Buffer.from(cd.image, 'base64');
      }
      if (data[0] === 0x1f && data[1] === 0x8b) {
        try {
          data = gunzipSync(data, { maxOutputLength: 64 << 20 });
        } catch {
          throw userError(BaremetalErrorCode.stepFailed, 'the config drive is not a gzipped image');
        }
      }
      if (data.length === 0 || data.length > 64 << 20) throw userError(BaremetalErrorCode.stepFailed, 'the config drive image is empty or larger than 64 MiB');
      await fsp.writeFile(path, data, { mode: 0o600 });
      return;
    }
    const files: Array<[string, Buffer]> = [
      ['openstack/latest/meta_data.json', Buffer.from(JSON.stringify({ uuid: node, ...cd.meta_data }))],
      ['openstack/latest/network_data.json', Buffer.from(JSON.stringify(cd.network_data ?? {}))],
      ['openstack/latest/vendor_data.json', Buffer.from(JSON.stringify(cd.vendor_data ?? {}))],
      ['openstack/latest/vendor_data2.json', Buffer.from('{}')],
    ];
    if (cd.user_data) files.push(['openstack/latest/user_data', Buffer.from(cd.user_data)]);
    await writeConfigDriveIso(files, path, staging);
  }

  private async ramdisk(): Promise<Ramdisk> {
    if (!this.ramdiskP) throw new Error('the conductor is not started');
    return this.ramdiskP.catch((err: Error) => { throw transient('ramdisk_unavailable', `the deploy ramdisk could not be built: ${err.message}`, err); });
  }

  /**
   * The service withdrew a running operation (an abort): its token goes, and
   * a node the ramdisk was booting or running on is powered off.
   */
  private async abandon(st: NodeState, bmc: BmcClient): Promise<void> {
    const op = st.op!;
    this.log.info({ node: st.id, operation: op.id, phase: op.phase }, 'operation withdrawn');
    const ramdiskUp = op.phase === 'power_on' || WAITING.has(op.phase);
    op.status = 'failed';
    op.failure = { code: 'aborted', class: 'user', message: `${op.type} aborted`, phase: op.phase };
    op.token = undefined;
    op.deadline = undefined;
    if (ramdiskUp) await bmc.setPower('power off', this.o.powerTimeoutMs).catch((err: Error) => this.log.warn({ node: st.id, err: err.message }, 'cannot power off a node whose operation was withdrawn'));
    if (op.boot_interface === 'redfish-virtual-media') await bmc.virtualMedia?.eject().catch(() => undefined);
  }

  /** The operation failed: record why, power the node off (best effort), end it. */
  private async fail(st: NodeState, op: OpState, bmc: BmcClient, err: unknown): Promise<void> {
    const e = toResourceError(err, BaremetalErrorCode.stepFailed);
    this.log.warn({ node: st.id, operation: op.id, type: op.type, phase: op.phase, code: e.code, err: e.message }, 'bare-metal operation failed');
    op.failure ??= { code: e.code, class: e.class === 'transient' ? 'transient' : e.class, message: e.message, phase: op.phase };
    op.status = 'failed';
    op.phase_started_at = now();
    op.deadline = undefined;
    if (op.out_of_band) return;
    try {
      await bmc.setPower('power off', this.o.powerTimeoutMs);
    } catch (perr) {
      this.log.warn({ node: st.id, err: (perr as Error).message }, 'cannot power off a node whose operation failed');
    }
    if (op.boot_interface === 'redfish-virtual-media') await bmc.virtualMedia?.eject().catch(() => undefined);
  }

  // ---- the endpoint ----

  private nodeByMac(mac: string): NodeState | undefined {
    for (const st of this.nodes.values()) if (st.nics.includes(mac)) return st;
    return undefined;
  }

  /** The node's state when `token` is its current operation's (constant-time compare), else null. */
  private authorized(id: string, token: string | undefined): NodeState | null {
    const st = this.nodes.get(id);
    const want = st?.op?.token;
    if (!token || !want) return null;
    return timingSafeEqual(hashToken(token), hashToken(want)) ? st! : null;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && path === '/boot.ipxe') return send(res, 200, chainScript(this.base));
    let m = /^\/ipxe\/([0-9A-Fa-f:-]{17})$/.exec(path);
    if (get && m) return send(res, 200, this.nodeScript(macFromPath(m[1]!)));
    m = /^\/ramdisk\/(vmlinuz|initrd\.img)$/.exec(path);
    if (get && m) {
      const r = await this.ramdisk().catch(() => null);
      if (!r) return send(res, 503, 'the deploy ramdisk is not ready\n');
      return sendFile(req, res, m[1] === 'vmlinuz' ? r.vmlinuz : r.initrd);
    }
    m = /^\/v1\/nodes\/([A-Za-z0-9-]{1,64})\/(command|report|image|configdrive|ramdisk\.iso)$/.exec(path);
    if (!m) return send(res, 404, 'not found\n');
    const id = m[1]!;
    const what = m[2]!;
    const token = (req.headers[TOKEN_HEADER] as string | undefined) ?? (what === 'ramdisk.iso' ? url.searchParams.get('token') ?? undefined : undefined);
    const st = this.authorized(id, token);
    if (!st) return send(res, 401, 'unauthorized\n');
    const op = st.op!;
    if (what === 'report') {
      if (req.method !== 'POST') return send(res, 405, 'POST\n');
      const body = await readBody(req, 1 << 20);
      let report;
      try {
        report = parseReport(JSON.parse(body));
      } catch (err) {
        return send(res, 400, `${(err as Error).message}\n`);
      }
      await this.locks.run(`node:${id}`, async () => this.takeReport(st, report));
      this.requeue(id);
      return send(res, 200, '{}\n', 'application/json');
    }
    if (!get) return send(res, 405, 'GET\n');
    if (what === 'command') {
      const cmd = await this.locks.run(`node:${id}`, async () => this.command(st));
      if (cmd.op !== 'wait') this.requeue(id);
      return send(res, 200, renderCommand(cmd));
    }
    if (what === 'image') return op.image ? sendFile(req, res, op.image.path) : send(res, 404, 'no image\n');
    if (what === 'configdrive') return op.configdrive ? sendFile(req, res, op.configdrive.path) : send(res, 404, 'no config drive\n');
    return op.iso ? sendFile(req, res, op.iso) : send(res, 404, 'no ISO\n');
  }

  /** The iPXE script of the NIC `mac`: the ramdisk while its node waits for it, else a local boot. */
  private nodeScript(mac: string | null): string {
    const st = mac ? this.nodeByMac(mac) : undefined;
    const op = st?.op;
    if (!st || !op?.token || op.status !== 'running' || op.boot_interface !== 'ipxe' || !WAITING.has(op.phase)) return localBootScript();
    return ramdiskScript(this.base, ramdiskCmdline(this.base, st.id, op.token));
  }

  /** What the ramdisk is to do now; its first call moves the operation on to the ramdisk's work. */
  private async command(st: NodeState): Promise<RamdiskCommand> {
    const op = st.op!;
    if (op.status === 'running' && (op.phase === 'pxe' || op.phase === 'vmedia')) {
      this.log.info({ node: st.id, operation: op.id }, 'the deploy ramdisk called back');
      this.setPhase(op, WORK_PHASE[op.type as RamdiskOp['type']], this.o.stepTimeoutMs);
      await this.save(st);
    }
    if (op.status === 'running' && WAITING.has(op.phase) && op.phase !== 'pxe' && op.phase !== 'vmedia') {
      switch (op.type) {
        case 'inspect': return { op: 'inspect', id: op.id };
        case 'clean': return { op: 'clean', id: op.id };
        case 'deploy': return { op: 'deploy', id: op.id, image_size: op.image!.size, image_sha256: op.image!.sha256, configdrive_size: op.configdrive?.size ?? 0 };
        case 'rescue': return { op: 'rescue', id: op.id, rescue_password_hash: op.rescue_password_hash ?? '' };
        default: return { op: 'wait' };
      }
    }
    // inspected or cleaned (or failed): the ramdisk powers itself off; the conductor's BMC power-off follows
    if (op.phase === 'power_off' || op.status === 'failed' || (op.status === 'succeeded' && (op.type === 'inspect' || op.type === 'clean'))) return { op: 'poweroff' };
    return { op: 'wait' };
  }

  private async takeReport(st: NodeState, r: ReturnType<typeof parseReport>): Promise<void> {
    const op = st.op!;
    if (r.op_id !== op.id || op.status !== 'running' || !WAITING.has(op.phase) || op.phase === 'pxe' || op.phase === 'vmedia') return;
    if (r.status === 'running') {
      if (r.phase !== op.phase && (r.phase === 'write_image' || r.phase === 'config_drive')) this.setPhase(op, r.phase, this.o.stepTimeoutMs);
    } else if (r.status === 'failed') {
      op.failure = { code: BaremetalErrorCode.stepFailed, class: 'user', message: `${op.type} failed in the deploy ramdisk: ${r.message || 'no reason given'}`, phase: op.phase };
      this.setPhase(op, 'power_off');
      // the failure is carried out (power off, status failed) by the next converge
    } else {
      if (r.inventory) op.inventory = r.inventory;
      if (op.type === 'inspect' && !r.inventory) {
        op.failure = { code: BaremetalErrorCode.stepFailed, class: 'user', message: 'the deploy ramdisk reported no inventory', phase: op.phase };
        this.setPhase(op, 'power_off');
      } else if (op.type === 'inspect' || op.type === 'clean') this.setPhase(op, 'power_off');
      else if (op.type === 'deploy') this.setPhase(op, 'set_boot_device');
      else if (op.type === 'rescue') this.setPhase(op, 'done');
    }
    await this.save(st);
  }
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

async function sendFile(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const st = await fsp.stat(path).catch(() => null);
  if (!st) return send(res, 404, 'not found\n');
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size, 'cache-control': 'no-store' });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((resolve) => {
    const s = createReadStream(path);
    s.on('error', () => res.destroy());
    res.on('close', () => {
      s.destroy();
      resolve();
    });
    s.pipe(res);
  });
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new Error('report too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
