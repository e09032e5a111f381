// The Redfish BMC client: Stratus's own, over node:http(s) (no dependency;
// node:https takes the per-request TLS options a BMC's self-signed
// certificate needs when the node's driver_info turns verification off).
//
// What it uses of the Redfish schema (DSP0266/DSP8010), the subset Ironic's
// redfish hardware type (through sushy) uses too:
//   - the ComputerSystem: `redfish_system_id` (a path such as
//     /redfish/v1/Systems/<id>, or an id), else the only member of
//     /redfish/v1/Systems;
//   - PowerState (On, Off, PoweringOn, PoweringOff: the last two count as
//     where they are going, as Ironic maps them) and the
//     #ComputerSystem.Reset action (On, ForceOff, ForceRestart,
//     GracefulShutdown), within its ResetType@Redfish.AllowableValues when the
//     BMC lists them;
//   - Boot.BootSourceOverrideTarget (Pxe, Hdd, Cd, BiosSetup) with
//     BootSourceOverrideEnabled Once or Continuous, PATCHed on the system
//     (with If-Match when the system carries an ETag);
//   - VirtualMedia: the system's own VirtualMedia collection (Redfish 2021.1
//     and later) or else that of the Manager in its Links.ManagedBy, the
//     first member whose MediaTypes holds CD or DVD; #VirtualMedia.InsertMedia
//     (Image, Inserted, WriteProtected) and #VirtualMedia.EjectMedia, or a
//     PATCH of Image/Inserted when the BMC has no such action.
//   - out-of-band inspection (Ironic's redfish inspect interface): the
//     system's ProcessorSummary.Count, MemorySummary.TotalSystemMemoryGiB,
//     the first member of Processors for the architecture
//     (ProcessorArchitecture x86/ARM/..., InstructionSet x86-64/ARM-A64 to
//     tell 64-bit), the disks of Storage (Drives' CapacityBytes) and
//     SimpleStorage (Devices' CapacityBytes), and the MACAddress of each
//     EthernetInterfaces member whose Status.State is Enabled (or absent),
//     as sushy's enabled MACs;
//   - the serial console: the system's SerialConsole (ComputerSystem 1.13)
//     `Telnet` {ServiceEnabled, Port} on the BMC's host, read as a byte
//     stream (Telnet option requests refused, IAC sequences left out); a
//     system without an enabled one has no console (console_unavailable).
// HTTP basic authentication on every request (no session: nothing to leak
// or expire). Failures: no connection, a timeout or a 5xx is bmc_unreachable
// (transient), a certificate the client does not trust is bmc_unreachable
// (the user's: the node's redfish_verify_ca), 401/403 is bmc_auth, another
// 4xx is bmc_refused with the BMC's own Redfish message. The password never
// appears in an error.
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { BmcAccess, BootDevice, NodeInventory, PowerState } from '../../../../baremetal/protocol.ts';
import { BaremetalErrorCode } from '../../../../baremetal/protocol.ts';
import { ResourceFailure, transient, userError } from '../../../errors.ts';
import { CONSOLE_UNAVAILABLE, type BmcClient, type ConsoleSession, type VirtualMedia } from '../bmc.ts';

const REQUEST_TIMEOUT_MS = 30_000;
/** A BMC answers InsertMedia once it has fetched or mounted the image: longer. */
const MEDIA_TIMEOUT_MS = 300_000;
const POLL_MS = 500;
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_BODY = 4 << 20;

/** Redfish's BootSourceOverrideTarget for each boot device. */
const BOOT_TARGET: Record<BootDevice, string> = { pxe: 'Pxe', disk: 'Hdd', cdrom: 'Cd', bios: 'BiosSetup' };

type Json = Record<string, any>;

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Json | null; text: string }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The messages of a Redfish error body (`error.message` and each `@Message.ExtendedInfo[].Message`). */
export function redfishMessage(body: Json | null): string {
  const e = body?.error;
  if (!e || typeof e !== 'object') return '';
  const parts = [typeof e.message === 'string' ? e.message : ''];
  for (const i of Array.isArray(e['@Message.ExtendedInfo']) ? e['@Message.ExtendedInfo'] : []) {
    if (typeof i?.Message === 'string' && !parts.includes(i.Message)) parts.push(i.Message);
  }
  return parts.filter(Boolean).join(' ').slice(0, 500);
}

export class RedfishBmc implements BmcClient {
  readonly virtualMedia: VirtualMedia;
  private readonly access: BmcAccess;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private systemPath: string | null = null;

  constructor(access: BmcAccess) {
    if (access.type !== 'redfish') throw new Error(`RedfishBmc for a ${access.type} node`);
    this.access = access;
    let base: URL;
    try {
      base = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(access.address) ? access.address : `https://${access.address}`);
    } catch {
      throw userError(BaremetalErrorCode.bmcUnreachable, `Redfish address ${JSON.stringify(access.address)} is not a URL`);
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw userError(BaremetalErrorCode.bmcUnreachable, `Redfish address ${base.origin}: not http or https`);
    this.base = base;
    this.agent = base.protocol === 'https:'
      ? new https.Agent({ keepAlive: false, rejectUnauthorized: access.verify_tls !== false })
      : new http.Agent({ keepAlive: false });
    this.virtualMedia = { insert: (url) => this.insertMedia(url), eject: () => this.ejectMedia() };
  }

  async power(): Promise<PowerState> {
    const s = await this.system();
    switch (s.PowerState) {
      case 'On': case 'PoweringOn': return 'power on';
      case 'Off': case 'PoweringOff': return 'power off';
      default: throw transient(BaremetalErrorCode.bmcRefused, `${this.where()}: the system reports no known PowerState (${JSON.stringify(s.PowerState ?? null)})`);
    }
  }

  async setPower(target: PowerState, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const s = await this.system();
    if (powerOf(s) === target) return;
    await this.reset(s, target === 'power on' ? 'On' : 'ForceOff');
    await this.waitFor(target, timeoutMs);
  }

  async reboot(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const s = await this.system();
    if (powerOf(s) === 'power off') {
      await this.reset(s, 'On');
    } else if (this.allows(s, 'ForceRestart')) {
      await this.reset(s, 'ForceRestart');
    } else {
      await this.reset(s, 'ForceOff');
      await this.waitFor('power off', timeoutMs);
      await this.reset(s, 'On');
    }
    await this.waitFor('power on', timeoutMs);
  }

  async softPowerOff(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<boolean> {
    const s = await this.system();
    if (powerOf(s) === 'power off') return true;
    if (!this.allows(s, 'GracefulShutdown')) return false;
    await this.reset(s, 'GracefulShutdown');
    await this.waitFor('power off', timeoutMs);
    return true;
  }

  async setBootDevice(device: BootDevice, persistent: boolean): Promise<void> {
    const target = BOOT_TARGET[device];
    if (!target) throw userError(BaremetalErrorCode.bmcRefused, `${this.where()}: boot device ${String(device)} has no Redfish boot source`);
    const s = await this.system();
    const allowed = s.Boot?.['BootSourceOverrideTarget@Redfish.AllowableValues'];
    if (Array.isArray(allowed) && !allowed.includes(target)) {
      throw userError(BaremetalErrorCode.bmcRefused, `${this.where()}: the system cannot boot from ${target} (it allows ${allowed.join(', ')})`);
    }
    const etag = typeof s['@odata.etag'] === 'string' ? s['@odata.etag'] : undefined;
    await this.call('PATCH', this.systemPath!, { Boot: { BootSourceOverrideTarget: target, BootSourceOverrideEnabled: persistent ? 'Continuous' : 'Once' } }, etag ? { 'if-match': etag } : {});
  }

  // --- virtual media

  private async insertMedia(url: string): Promise<void> {
    const { path, media } = await this.cd();
    if (media.Inserted === true && media.Image === url) return;
    if (media.Inserted === true) await this.ejectFrom(path, media);
    const action = media.Actions?.['#VirtualMedia.InsertMedia']?.target;
    if (typeof action === 'string') await this.call('POST', action, { Image: url, Inserted: true, WriteProtected: true }, {}, MEDIA_TIMEOUT_MS);
    else await this.call('PATCH', path, { Image: url, Inserted: true, WriteProtected: true }, {}, MEDIA_TIMEOUT_MS);
  }

  private async ejectMedia(): Promise<void> {
    const { path, media } = await this.cd();
    if (media.Inserted !== true && !media.Image) return;
    await this.ejectFrom(path, media);
  }

  private async ejectFrom(path: string, media: Json): Promise<void> {
    const action = media.Actions?.['#VirtualMedia.EjectMedia']?.target;
    if (typeof action === 'string') await this.call('POST', action, {});
    else await this.call('PATCH', path, { Image: null, Inserted: false });
  }

  /** The system's CD/DVD virtual media device: from its own VirtualMedia collection, else its manager's. */
  private async cd(): Promise<{ path: string; media: Json }> {
    const s = await this.system();
    const collections: string[] = [];
    if (typeof s.VirtualMedia?.['@odata.id'] === 'string') collections.push(s.VirtualMedia['@odata.id']);
    for (const m of Array.isArray(s.Links?.ManagedBy) ? s.Links.ManagedBy : []) {
      if (typeof m?.['@odata.id'] !== 'string') continue;
      const mgr = await this.get(m['@odata.id']);
      if (typeof mgr.VirtualMedia?.['@odata.id'] === 'string') collections.push(mgr.VirtualMedia['@odata.id']);
    }
    for (const c of collections) {
      const coll = await this.get(c);
      for (const m of Array.isArray(coll.Members) ? coll.Members : []) {
        if (typeof m?.['@odata.id'] !== 'string') continue;
        const media = await this.get(m['@odata.id']);
        const types: unknown[] = Array.isArray(media.MediaTypes) ? media.MediaTypes : [];
        if (types.includes('CD') || types.includes('DVD')) return { path: m['@odata.id'], media };
      }
    }
    throw userError(BaremetalErrorCode.bmcRefused, `${this.where()}: the system has no CD or DVD virtual media`);
  }

  // --- out-of-band inspection

  async inspect(): Promise<NodeInventory> {
    const s = await this.system();
    const count = Number(s.ProcessorSummary?.Count);
    const gib = Number(s.MemorySummary?.TotalSystemMemoryGiB);
    const inv: NodeInventory = {
      cpus: Number.isInteger(count) && count > 0 ? count : 0,
      cpu_arch: 'unknown',
      memory_mb: Number.isFinite(gib) && gib > 0 ? Math.round(gib * 1024) : 0,
      disks: [], nics: [],
    };
    const cpus = await this.members(s.Processors);
    const first = cpus.find((c) => c.ProcessorType === undefined || c.ProcessorType === 'CPU');
    if (first) inv.cpu_arch = cpuArch(first.ProcessorArchitecture, first.InstructionSet);
    if (!inv.cpus) inv.cpus = cpus.reduce((n, c) => n + (Number(c.TotalThreads) || Number(c.TotalCores) || 0), 0);
    for (const st of await this.members(s.Storage)) {
      for (const d of Array.isArray(st.Drives) ? st.Drives : []) {
        if (typeof d?.['@odata.id'] !== 'string') continue;
        const drive = await this.get(d['@odata.id']);
        const size = Number(drive.CapacityBytes);
        if (size > 0) inv.disks.push({ name: String(drive.Name ?? drive.Id ?? d['@odata.id']), size_bytes: size });
      }
    }
    for (const st of await this.members(s.SimpleStorage)) {
      for (const d of Array.isArray(st.Devices) ? st.Devices : []) {
        const size = Number(d?.CapacityBytes);
        if (size > 0 && enabled(d)) inv.disks.push({ name: String(d.Name ?? st.Id), size_bytes: size });
      }
    }
    inv.disks.sort((a, b) => b.size_bytes - a.size_bytes);
    for (const nic of await this.members(s.EthernetInterfaces)) {
      const mac = String(nic.MACAddress ?? nic.PermanentMACAddress ?? '').toLowerCase();
      if (enabled(nic) && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) inv.nics.push({ name: String(nic.Id ?? mac), mac, has_carrier: nic.LinkStatus === 'LinkUp' });
    }
    if (!inv.cpus || !inv.memory_mb) {
      throw userError(BaremetalErrorCode.bmcRefused, `${this.where()}: the system does not say its ${!inv.cpus ? 'processor count (ProcessorSummary.Count)' : 'memory (MemorySummary.TotalSystemMemoryGiB)'}`);
    }
    return inv;
  }

  /** The members of the collection `link` points at (none when the system has no such link). */
  private async members(link: unknown): Promise<Json[]> {
    const id = (link as Json | undefined)?.['@odata.id'];
    if (typeof id !== 'string') return [];
    const coll = await this.get(id);
    const out: Json[] = [];
    for (const m of Array.isArray(coll.Members) ? coll.Members : []) {
      if (typeof m?.['@odata.id'] === 'string') out.push(await this.get(m['@odata.id']));
    }
    return out;
  }

  // --- the system and its actions

  /**
   * The system's serial console: a Telnet connection to its
   * SerialConsole.Telnet port. The socket is destroyed, and the promise
   * settles only once it is closed, on every way out: a connection refused or
   * unanswered, an abort of `signal` (the system's GET too), close(), an
   * output that ends or fails.
   */
  async openConsole(signal?: AbortSignal): Promise<ConsoleSession> {
    signal?.throwIfAborted();
    const s = await this.system(signal);
    const telnet = s.SerialConsole?.Telnet;
    const port = Number(telnet?.Port);
    if (!telnet || telnet.ServiceEnabled === false || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw userError(CONSOLE_UNAVAILABLE, `${this.where()}: the system offers no Telnet serial console (SerialConsole.Telnet)`);
    }
    signal?.throwIfAborted();
    const host = this.base.hostname.replace(/^\[|\]$/g, '');
    const sock = net.connect({ host, port });
    sock.on('error', () => { /* the opening fails or the output ends */ });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    const onAbortOpen = () => { sock.destroy(); };
    const close = async (): Promise<void> => {
      signal?.removeEventListener('abort', onAbortOpen);
      sock.destroy();
      await closed;
    };
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(transient(BaremetalErrorCode.bmcUnreachable, `${this.where()}: no answer on its serial console port ${port}`)), REQUEST_TIMEOUT_MS);
        sock.once('connect', resolve);
        sock.once('error', (err) => reject(transient(BaremetalErrorCode.bmcUnreachable, `${this.where()}: serial console port ${port}: ${err.message}`)));
        if (signal) {
          onAbort = () => reject(signal.reason);
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }
      });
    } catch (err) {
      await close();
      throw err;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    }
    // open: an abort ends the session as close() does
    signal?.addEventListener('abort', onAbortOpen, { once: true });
    const telnetFilter = new TelnetFilter((reply) => { if (!sock.destroyed) sock.write(reply); });
    async function* output(): AsyncIterable<Buffer> {
      try {
        for await (const chunk of sock as AsyncIterable<Buffer>) {
          const data = telnetFilter.take(chunk);
          if (data.length) yield data;
        }
      } catch (err) {
        if (!signal?.aborted) throw err;
      } finally {
        await close();
      }
    }
    return { output: output(), close };
  }

  /** The ComputerSystem resource (its path found once). */
  private async system(signal?: AbortSignal): Promise<Json> {
    if (!this.systemPath) {
      const id = this.access.system_id;
      if (id) {
        this.systemPath = id.startsWith('/') ? id : `/redfish/v1/Systems/${encodeURIComponent(id)}`;
      } else {
        const root = await this.get('/redfish/v1/', signal);
        const coll = await this.get(typeof root.Systems?.['@odata.id'] === 'string' ? root.Systems['@odata.id'] : '/redfish/v1/Systems', signal);
        const members = (Array.isArray(coll.Members) ? coll.Members : []).map((m: Json) => m?.['@odata.id']).filter((p: unknown): p is string => typeof p === 'string');
        if (members.length !== 1) {
          throw userError(BaremetalErrorCode.bmcRefused, `${this.where()}: ${members.length ? `${members.length} systems (${members.join(', ')})` : 'no system'}: set redfish_system_id`);
        }
        this.systemPath = members[0]!;
      }
    }
    return this.get(this.systemPath, signal);
  }

  private allows(s: Json, type: string): boolean {
    const allowed = s.Actions?.['#ComputerSystem.Reset']?.['ResetType@Redfish.AllowableValues'];
    return !Array.isArray(allowed) || allowed.includes(type);
  }

  private async reset(s: Json, type: string): Promise<void> {
    if (!this.allows(s, type)) throw userError(BaremetalErrorCode.bmcRefused, `${this.where()}: the system does not allow reset type ${type}`);
    const target = s.Actions?.['#ComputerSystem.Reset']?.target;
    await this.call('POST', typeof target === 'string' ? target : `${this.systemPath}/Actions/ComputerSystem.Reset`, { ResetType: type });
  }

  private async waitFor(target: PowerState, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.system();
      if (s.PowerState === (target === 'power on' ? 'On' : 'Off')) return;
      if (Date.now() >= until) throw transient(BaremetalErrorCode.bmcRefused, `${this.where()}: the system is not ${target} ${Math.round(timeoutMs / 1000)} s after the request (PowerState ${JSON.stringify(s.PowerState ?? null)})`);
      await sleep(POLL_MS);
    }
  }

  // --- HTTP

  private where(): string {
    return `Redfish BMC ${this.base.origin}`;
  }

  private async get(path: string, signal?: AbortSignal): Promise<Json> {
    const r = await this.call('GET', path, undefined, {}, REQUEST_TIMEOUT_MS, signal);
    if (!r.body) throw transient(BaremetalErrorCode.bmcRefused, `${this.where()}: GET ${path}: not JSON`);
    return r.body;
  }

  /** One request; a 2xx reply, or a classified ResourceFailure (an abort of `signal`: its reason, the request's socket destroyed). */
  private async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = REQUEST_TIMEOUT_MS, signal?: AbortSignal): Promise<Reply> {
    let r: Reply;
    try {
      r = await this.request(method, path, body, headers, timeoutMs, signal);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof ResourceFailure) throw err;
      const e = err as NodeJS.ErrnoException;
      const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME_MISMATCH|ALTNAME/.test(e.code ?? '');
      if (tls) throw userError(BaremetalErrorCode.bmcUnreachable, `${this.where()}: its TLS certificate is not trusted (${e.code}); set redfish_verify_ca to false for a self-signed one`);
      throw transient(BaremetalErrorCode.bmcUnreachable, `${this.where()}: ${method} ${path}: ${e.code ?? e.message}`);
    }
    if (r.status >= 200 && r.status < 300) return r;
    const said = redfishMessage(r.body) || r.text.trim().slice(0, 200);
    const what = `${this.where()}: ${method} ${path}: ${r.status}${said ? ` ${said}` : ''}`;
    if (r.status === 401 || r.status === 403) throw userError(BaremetalErrorCode.bmcAuth, `${this.where()}: the BMC refused the user name or password (${r.status})`);
    if (r.status >= 500) throw transient(BaremetalErrorCode.bmcRefused, what);
    throw userError(BaremetalErrorCode.bmcRefused, what);
  }

  private request(method: string, path: string, body: unknown, extra: Record<string, string>, timeoutMs: number, signal?: AbortSignal): Promise<Reply> {
    const url = new URL(path, this.base);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', 'odata-version': '4.0', ...extra };
    if (data) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(data.length);
    }
    if (this.access.username !== undefined || this.access.password !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${this.access.username ?? ''}:${this.access.password ?? ''}`).toString('base64')}`;
    }
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method, headers, agent: this.agent, timeout: timeoutMs, ...(signal ? { signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) req.destroy(Object.assign(new Error('reply too large'), { code: 'EMSGSIZE' }));
          else chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Json | null = null;
          try {
            const v = text ? JSON.parse(text) : null;
            json = v && typeof v === 'object' && !Array.isArray(v) ? v : null;
          } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: json, text });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(data);
    });
  }
}

/** A resource whose Status.State is Enabled, or says none. */
const enabled = (r: Json): boolean => r.Status?.State === undefined || r.Status.State === 'Enabled';

/** Ironic's cpu_arch from a Redfish Processor's ProcessorArchitecture and InstructionSet. */
function cpuArch(arch: unknown, set: unknown): string {
  if (set === 'x86-64') return 'x86_64';
  if (set === 'ARM-A64') return 'aarch64';
  switch (arch) {
    case 'x86': return set === 'x86' ? 'i686' : 'x86_64';
    case 'IA-64': return 'ia64';
    case 'ARM': return 'arm';
    case 'MIPS': return 'mips';
    case 'Power': return 'ppc64le';
    default: return 'unknown';
  }
}

function powerOf(s: Json): PowerState | null {
  return s.PowerState === 'On' || s.PowerState === 'PoweringOn' ? 'power on' : s.PowerState === 'Off' || s.PowerState === 'PoweringOff' ? 'power off' : null;
}

/**
 * Telnet's in-band commands taken out of a byte stream (RFC 854): IAC IAC is
 * a 255 byte; WILL/DO requests are refused (DONT/WONT), so the server sends
 * plain bytes; subnegotiations and other commands are dropped.
 */
export class TelnetFilter {
  private state: 'data' | 'iac' | 'opt' | 'sb' | 'sb-iac' = 'data';
  private verb = 0;
  private readonly reply: (b: Buffer) => void;
  constructor(reply: (b: Buffer) => void) {
    this.reply = reply;
  }

  take(chunk: Buffer): Buffer {
    const out: number[] = [];
    for (const b of chunk) {
      switch (this.state) {
        case 'data':
          if (b === 255) this.state = 'iac';
          else out.push(b);
          break;
        case 'iac':
          if (b === 255) { out.push(255); this.state = 'data'; } else if (b >= 251 && b <= 254) { this.verb = b; this.state = 'opt'; } else if (b === 250) this.state = 'sb';
          else this.state = 'data';
          break;
        case 'opt':
          // WILL -> DONT, DO -> WONT; WONT/DONT need no answer
          if (this.verb === 251) this.reply(Buffer.from([255, 254, b]));
          else if (this.verb === 253) this.reply(Buffer.from([255, 252, b]));
          this.state = 'data';
          break;
        case 'sb':
          if (b === 255) this.state = 'sb-iac';
          break;
        case 'sb-iac':
          this.state = b === 240 ? 'data' : 'sb';
          break;
      }
    }
    return Buffer.from(out);
  }
}
