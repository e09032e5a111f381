// Stratus's Redfish BMC emulator: one HTTPS server per state directory
// serving every Redfish virtual machine in it (machine.ts) as a
// ComputerSystem with its Chassis and its Manager (the three share the
// machine's UUID as their Id). Debian has Redfish clients (redfishtool,
// python3-sushy) but no emulator, hence this one. What it serves:
//   /redfish, /redfish/v1/ (ServiceRoot: no authentication, as the spec has it)
//   /redfish/v1/Systems[/<id>]            PowerState, Boot (override target
//       None/Pxe/Cd/Hdd/BiosSetup, enabled Disabled/Once/Continuous, mode
//       Legacy; PATCH with If-Match checked against @odata.etag), memory, CPUs
//   /redfish/v1/Systems/<id>/Actions/ComputerSystem.Reset
//       On, ForceOff, GracefulShutdown (ACPI button), ForceRestart, PowerCycle
//   /redfish/v1/Systems/<id>/EthernetInterfaces[/nic0|nic1]   the boot NIC's
//       MAC (LinkUp) and the second NIC's (NoLink: attached to nothing)
//   /redfish/v1/Systems/<id>/Processors[/CPU0]   x86 (x86-64), the vCPUs
//   /redfish/v1/Systems/<id>/SimpleStorage[/virtio]   the disk and its size
//       (what out-of-band inspection reads, with ProcessorSummary and
//       MemorySummary)
//   /redfish/v1/Chassis[/<id>], /redfish/v1/Managers[/<id>]
//   /redfish/v1/Managers/<id>/VirtualMedia[/Cd]
//       .../Cd/Actions/VirtualMedia.InsertMedia {Image, Inserted, WriteProtected}:
//       the ISO is downloaded (http or https, redirects followed, 4 GiB at
//       most) into the machine's directory and put in its CD drive (through
//       QMP when it runs, else at its next start); .../VirtualMedia.EjectMedia;
//       PATCH Image/Inserted does the same
//   /redfish/v1/SessionService, .../Sessions (POST logs in: X-Auth-Token)
// HTTP basic authentication or a session token on everything else: the one
// user of STATE_DIR/redfish/emulator.json. Errors are Redfish error bodies
// (`{"error": {"code": "Base.1.8.<Id>", "message", "@Message.ExtendedInfo"}}`).
// Run as `node redfish-emulator.ts <state dir>`.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Machine, type BootDevice, type MachineState } from './machine.ts';
import { readEndpoint, redfishDir, type RedfishEndpoint } from './redfish-control.ts';

const MAX_MEDIA = 4 * 1024 ** 3;
const MAX_BODY = 1 << 20;
const RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PowerCycle'] as const;
const TARGETS: Record<string, BootDevice | null> = { None: null, Pxe: 'pxe', Cd: 'cdrom', Hdd: 'disk', BiosSetup: 'bios' };
const TARGET_OF: Record<BootDevice, string> = { pxe: 'Pxe', cdrom: 'Cd', disk: 'Hdd', bios: 'BiosSetup' };
const ENABLED = ['Disabled', 'Once', 'Continuous'];

type Json = Record<string, unknown>;

class RedfishError extends Error {
  readonly status: number;
  readonly id: string;
  readonly args: string[];
  constructor(status: number, id: string, message: string, args: string[] = []) {
    super(message);
    this.status = status;
    this.id = id;
    this.args = args;
  }
}

const notFound = (path: string) => new RedfishError(404, 'ResourceMissingAtURI', `The resource at the URI ${path} was not found.`, [path]);

export function errorBody(e: RedfishError): Json {
  return {
    error: {
      code: `Base.1.8.${e.id}`,
      message: e.message,
      '@Message.ExtendedInfo': [{
        '@odata.type': '#Message.v1_1_1.Message', MessageId: `Base.1.8.${e.id}`, Message: e.message, MessageArgs: e.args,
        Severity: e.status >= 500 ? 'Critical' : 'Warning', Resolution: e.status === 401 ? 'Log in with valid credentials and resubmit the request.' : 'Correct the request and resubmit it.',
      }],
    },
  };
}

const ref = (id: string) => ({ '@odata.id': id });

export class RedfishEmulator {
  private readonly stateDir: string;
  private readonly ep: RedfishEndpoint;
  private readonly sessions = new Map<string, { id: string; user: string; token: string }>();
  /** One change at a time per machine. */
  private readonly chains = new Map<string, Promise<unknown>>();
  readonly server: https.Server;

  constructor(stateDir: string, ep: RedfishEndpoint) {
    this.stateDir = stateDir;
    this.ep = ep;
    const dir = redfishDir(stateDir);
    this.server = https.createServer({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const e = err instanceof RedfishError ? err : new RedfishError(500, 'InternalError', `The request failed due to an internal service error: ${err instanceof Error ? err.message : String(err)}`);
        this.send(res, e.status, errorBody(e), e.status === 401 ? { 'www-authenticate': 'Basic realm="Stratus virtual BMC"' } : {});
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.ep.port, this.ep.address, () => resolve());
    });
  }

  private send(res: http.ServerResponse, status: number, body: Json | null, headers: Record<string, string> = {}): void {
    const data = body ? Buffer.from(JSON.stringify(body)) : null;
    res.writeHead(status, {
      'odata-version': '4.0', 'cache-control': 'no-store',
      ...(data ? { 'content-type': 'application/json; charset=utf-8', 'content-length': String(data.length) } : {}),
      ...headers,
    });
    res.end(data ?? undefined);
  }

  // --- authentication

  private equal(a: string, b: string): boolean {
    const x = createHash('sha256').update(a).digest();
    const y = createHash('sha256').update(b).digest();
    return timingSafeEqual(x, y);
  }

  private authenticated(req: http.IncomingMessage): boolean {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string' && [...this.sessions.values()].some((s) => this.equal(s.token, token))) return true;
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || !/^basic /i.test(auth)) return false;
    const text = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i < 0) return false;
    return this.equal(text.slice(0, i), this.ep.username) && this.equal(text.slice(i + 1), this.ep.password);
  }

  // --- dispatch

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://bmc');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/redfish' && method === 'GET') return this.send(res, 200, { v1: '/redfish/v1/' });
    if (path === '/redfish/v1' && method === 'GET') return this.send(res, 200, this.serviceRoot());
    if (path === '/redfish/v1/SessionService/Sessions' && method === 'POST') return this.login(req, res);
    if (!this.authenticated(req)) throw new RedfishError(401, 'NoValidSession', 'There is no valid session established with the implementation.');
    const body = ['POST', 'PATCH', 'PUT'].includes(method) ? await readBody(req) : null;
    const p = path.split('/').slice(1); // ['redfish', 'v1', ...]
    if (p[0] !== 'redfish' || p[1] !== 'v1') throw notFound(path);
    const [kind, id, sub, subId, action, actionName] = p.slice(2);
    const only = (...methods: string[]) => {
      if (!methods.includes(method)) throw new RedfishError(405, 'OperationNotAllowed', `The HTTP method ${method} is not allowed on ${path}.`);
    };
    switch (kind) {
      case 'SessionService': {
        if (!id) { only('GET'); return this.send(res, 200, this.sessionService()); }
        if (id !== 'Sessions') throw notFound(path);
        if (!sub) {
          only('GET');
          return this.send(res, 200, collection('/redfish/v1/SessionService/Sessions', '#SessionCollection.SessionCollection', 'Sessions', [...this.sessions.keys()].map((s) => `/redfish/v1/SessionService/Sessions/${s}`)));
        }
        const s = this.sessions.get(sub);
        if (!s) throw notFound(path);
        only('GET', 'DELETE');
        if (method === 'DELETE') {
          this.sessions.delete(sub);
          return this.send(res, 204, null);
        }
        return this.send(res, 200, { '@odata.type': '#Session.v1_3_0.Session', '@odata.id': `/redfish/v1/SessionService/Sessions/${s.id}`, Id: s.id, Name: 'User Session', UserName: s.user });
      }
      case 'Systems': case 'Chassis': case 'Managers': {
        const machines = await this.machines();
        if (!id) {
          only('GET');
          const type = { Systems: '#ComputerSystemCollection.ComputerSystemCollection', Chassis: '#ChassisCollection.ChassisCollection', Managers: '#ManagerCollection.ManagerCollection' }[kind];
          return this.send(res, 200, collection(`/redfish/v1/${kind}`, type, `${kind} Collection`, machines.map((m) => `/redfish/v1/${kind}/${m.config.uuid}`)));
        }
        const m = machines.find((x) => x.config.uuid === id || x.config.name === id);
        if (!m) throw notFound(path);
        if (kind === 'Systems') return this.system(req, res, m, method, path, body, sub, subId, action, only);
        if (kind === 'Chassis') {
          if (sub) throw notFound(path);
          only('GET');
          return this.send(res, 200, this.chassis(m));
        }
        return this.manager(res, m, method, path, body, sub, subId, action, actionName, only);
      }
      default:
        throw notFound(path);
    }
  }

  private async system(req: http.IncomingMessage, res: http.ServerResponse, m: Machine, method: string, path: string, body: Json | null,
    sub: string | undefined, subId: string | undefined, action: string | undefined, only: (...m: string[]) => void): Promise<void> {
    const base = `/redfish/v1/Systems/${m.config.uuid}`;
    if (!sub) {
      only('GET', 'PATCH');
      if (method === 'PATCH') {
        const doc = await this.systemDoc(m);
        const match = req.headers['if-match'];
        if (typeof match === 'string' && match !== '*' && match !== doc['@odata.etag']) {
          throw new RedfishError(412, 'PreconditionFailed', 'The ETag supplied did not match the ETag required to change this resource.');
        }
        await this.serial(m, () => this.patchSystem(m, body!));
        return this.send(res, 204, null);
      }
      const doc = await this.systemDoc(m);
      return this.send(res, 200, doc, { etag: String(doc['@odata.etag']) });
    }
    if (sub === 'EthernetInterfaces' || sub === 'Processors' || sub === 'SimpleStorage') {
      only('GET');
      const members = sub === 'EthernetInterfaces' ? ethernetInterfaces(m) : sub === 'Processors' ? processors(m) : simpleStorage(m);
      const type = { EthernetInterfaces: 'EthernetInterface', Processors: 'Processor', SimpleStorage: 'SimpleStorage' }[sub];
      const names = { EthernetInterfaces: 'Ethernet Interfaces', Processors: 'Processors', SimpleStorage: 'Simple Storage' }[sub];
      if (!subId) return this.send(res, 200, collection(`${base}/${sub}`, `#${type}Collection.${type}Collection`, names, members.map((x) => `${base}/${sub}/${String(x.Id)}`)));
      const doc = members.find((x) => x.Id === subId);
      if (!doc || action) throw notFound(path);
      return this.send(res, 200, { '@odata.id': `${base}/${sub}/${subId}`, ...doc });
    }
    if (sub === 'Actions' && subId === 'ComputerSystem.Reset' && !action) {
      only('POST');
      const type = body?.ResetType;
      if (type === undefined) throw new RedfishError(400, 'ActionParameterMissing', 'The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.', ['ComputerSystem.Reset', 'ResetType']);
      if (typeof type !== 'string' || !(RESET_TYPES as readonly string[]).includes(type)) {
        throw new RedfishError(400, 'ActionParameterNotSupported', `The parameter ResetType for the action ComputerSystem.Reset is not supported on the target resource (allowed: ${RESET_TYPES.join(', ')}).`, [String(type), 'ComputerSystem.Reset']);
      }
      await this.serial(m, () => this.reset(m, type as (typeof RESET_TYPES)[number]));
      return this.send(res, 204, null);
    }
    throw notFound(path);
  }

  private async manager(res: http.ServerResponse, m: Machine, method: string, path: string, body: Json | null,
    sub: string | undefined, subId: string | undefined, action: string | undefined, actionName: string | undefined, only: (...m: string[]) => void): Promise<void> {
    const base = `/redfish/v1/Managers/${m.config.uuid}`;
    if (!sub) {
      only('GET');
      return this.send(res, 200, {
        '@odata.type': '#Manager.v1_10_0.Manager', '@odata.id': base, Id: m.config.uuid, Name: `BMC of ${m.config.name}`, ManagerType: 'BMC',
        UUID: m.config.uuid, FirmwareVersion: 'stratus-vbmc', Status: { State: 'Enabled', Health: 'OK' },
        VirtualMedia: ref(`${base}/VirtualMedia`),
        Links: { ManagerForServers: [ref(`/redfish/v1/Systems/${m.config.uuid}`)], ManagerForChassis: [ref(`/redfish/v1/Chassis/${m.config.uuid}`)] },
      });
    }
    if (sub !== 'VirtualMedia') throw notFound(path);
    if (!subId) {
      only('GET');
      return this.send(res, 200, collection(`${base}/VirtualMedia`, '#VirtualMediaCollection.VirtualMediaCollection', 'Virtual Media', [`${base}/VirtualMedia/Cd`]));
    }
    if (subId !== 'Cd') throw notFound(path);
    if (!action) {
      only('GET', 'PATCH');
      if (method === 'PATCH') {
        const b = body!;
        if (b.Inserted === false || b.Image === null || b.Image === '') await this.serial(m, () => m.ejectMedia());
        else if (typeof b.Image === 'string') await this.serial(m, () => this.insert(m, b.Image as string));
        else throw new RedfishError(400, 'PropertyMissing', 'The property Image is a required property and must be included in the request.', ['Image']);
        return this.send(res, 204, null);
      }
      return this.send(res, 200, await this.mediaDoc(m));
    }
    if (action !== 'Actions') throw notFound(path);
    only('POST');
    if (actionName === 'VirtualMedia.InsertMedia') {
      const image = body?.Image;
      if (image === undefined) throw new RedfishError(400, 'ActionParameterMissing', 'The action VirtualMedia.InsertMedia requires the parameter Image to be present in the request body.', ['VirtualMedia.InsertMedia', 'Image']);
      if (typeof image !== 'string') throw new RedfishError(400, 'ActionParameterValueTypeError', 'The value for the parameter Image in the action VirtualMedia.InsertMedia is of a different type than the parameter can accept.', [JSON.stringify(image), 'Image', 'VirtualMedia.InsertMedia']);
      if (body?.Inserted === false) throw new RedfishError(400, 'ActionParameterNotSupported', 'Inserted false is not supported by InsertMedia.', ['Inserted', 'VirtualMedia.InsertMedia']);
      await this.serial(m, () => this.insert(m, image));
      return this.send(res, 204, null);
    }
    if (actionName === 'VirtualMedia.EjectMedia') {
      await this.serial(m, () => m.ejectMedia());
      return this.send(res, 204, null);
    }
    throw notFound(path);
  }

  // --- documents

  private serviceRoot(): Json {
    return {
      '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot', '@odata.id': '/redfish/v1/', Id: 'RootService', Name: 'Stratus virtual BMC',
      RedfishVersion: '1.11.0', UUID: uuidOf(this.stateDir), Product: 'Stratus Redfish emulator',
      Systems: ref('/redfish/v1/Systems'), Chassis: ref('/redfish/v1/Chassis'), Managers: ref('/redfish/v1/Managers'),
      SessionService: ref('/redfish/v1/SessionService'), Links: { Sessions: ref('/redfish/v1/SessionService/Sessions') },
    };
  }

  private sessionService(): Json {
    return {
      '@odata.type': '#SessionService.v1_1_8.SessionService', '@odata.id': '/redfish/v1/SessionService', Id: 'SessionService', Name: 'Session Service',
      ServiceEnabled: true, SessionTimeout: 1800, Sessions: ref('/redfish/v1/SessionService/Sessions'),
    };
  }

  private async systemDoc(m: Machine): Promise<Json> {
    const c = m.config;
    const st = await m.state();
    const base = `/redfish/v1/Systems/${c.uuid}`;
    const doc: Json = {
      '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem', '@odata.id': base, Id: c.uuid, Name: c.name, UUID: c.uuid,
      SystemType: 'Physical', Manufacturer: 'Stratus', Model: 'QEMU virtual bare-metal machine', SerialNumber: c.uuid.slice(0, 8),
      PowerState: m.isOn() ? 'On' : 'Off', Status: { State: 'Enabled', Health: 'OK' },
      Boot: {
        BootSourceOverrideEnabled: st.boot.override ? (st.boot.persistent ? 'Continuous' : 'Once') : 'Disabled',
        BootSourceOverrideTarget: st.boot.override ? TARGET_OF[st.boot.device] : 'None',
        'BootSourceOverrideTarget@Redfish.AllowableValues': Object.keys(TARGETS),
        BootSourceOverrideMode: 'Legacy',
      },
      ProcessorSummary: { Count: c.cpus, Model: c.accel === 'kvm' ? 'QEMU (KVM)' : 'QEMU (TCG)', Status: { State: 'Enabled', Health: 'OK' } },
      // exact: a client reads memory_mb back as GiB * 1024
      MemorySummary: { TotalSystemMemoryGiB: c.memoryMb / 1024, Status: { State: 'Enabled', Health: 'OK' } },
      EthernetInterfaces: ref(`${base}/EthernetInterfaces`), Processors: ref(`${base}/Processors`), SimpleStorage: ref(`${base}/SimpleStorage`),
      // the serial port through the machine's relay (serial-relay.ts): plain bytes on a TCP port, offered as Telnet
      SerialConsole: {
        MaxConcurrentSessions: 1,
        Telnet: c.serial ? { ServiceEnabled: true, Port: c.serial.port } : { ServiceEnabled: false },
        SSH: { ServiceEnabled: false }, IPMI: { ServiceEnabled: false },
      },
      Links: { Chassis: [ref(`/redfish/v1/Chassis/${c.uuid}`)], ManagedBy: [ref(`/redfish/v1/Managers/${c.uuid}`)] },
      Actions: { '#ComputerSystem.Reset': { target: `${base}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': [...RESET_TYPES] } },
    };
    doc['@odata.etag'] = `W/"${createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 16)}"`;
    return doc;
  }

  private chassis(m: Machine): Json {
    const c = m.config;
    return {
      '@odata.type': '#Chassis.v1_11_0.Chassis', '@odata.id': `/redfish/v1/Chassis/${c.uuid}`, Id: c.uuid, Name: `Chassis of ${c.name}`,
      ChassisType: 'RackMount', Manufacturer: 'Stratus', PowerState: m.isOn() ? 'On' : 'Off', Status: { State: 'Enabled', Health: 'OK' },
      Links: { ComputerSystems: [ref(`/redfish/v1/Systems/${c.uuid}`)], ManagedBy: [ref(`/redfish/v1/Managers/${c.uuid}`)] },
    };
  }

  private async mediaDoc(m: Machine): Promise<Json> {
    const base = `/redfish/v1/Managers/${m.config.uuid}/VirtualMedia/Cd`;
    const media = (await m.state()).media;
    return {
      '@odata.type': '#VirtualMedia.v1_4_0.VirtualMedia', '@odata.id': base, Id: 'Cd', Name: 'Virtual CD',
      MediaTypes: ['CD', 'DVD'], Image: media?.image ?? null, ImageName: media ? (new URL(media.image).pathname.split('/').pop() || null) : null,
      Inserted: !!media, WriteProtected: true, ConnectedVia: media ? 'URI' : 'NotConnected',
      Actions: {
        '#VirtualMedia.InsertMedia': { target: `${base}/Actions/VirtualMedia.InsertMedia` },
        '#VirtualMedia.EjectMedia': { target: `${base}/Actions/VirtualMedia.EjectMedia` },
      },
    };
  }

  // --- acting

  private async machines(): Promise<Machine[]> {
    const dir = join(this.stateDir, 'machines');
    const out: Machine[] = [];
    for (const n of (await fsp.readdir(dir).catch(() => [] as string[])).sort()) {
      const m = await Machine.load(join(dir, n)).catch(() => null);
      if (m && m.config.bmc.kind === 'redfish') out.push(m);
    }
    return out;
  }

  private serial<T>(m: Machine, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(m.config.uuid) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.chains.set(m.config.uuid, next.catch(() => undefined));
    return next;
  }

  private async patchSystem(m: Machine, body: Json): Promise<void> {
    const boot = body.Boot;
    for (const k of Object.keys(body)) {
      if (k !== 'Boot') throw new RedfishError(400, 'PropertyNotWritable', `The property ${k} is a read only property and cannot be assigned a value.`, [k]);
    }
    if (!boot || typeof boot !== 'object' || Array.isArray(boot)) throw new RedfishError(400, 'PropertyValueTypeError', 'The value for the property Boot is of a different type than the property can accept.', [JSON.stringify(boot), 'Boot']);
    const b = boot as Json;
    for (const k of Object.keys(b)) {
      if (!['BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode'].includes(k)) throw new RedfishError(400, 'PropertyNotWritable', `The property Boot/${k} cannot be set here.`, [k]);
    }
    if (b.BootSourceOverrideMode !== undefined && b.BootSourceOverrideMode !== 'Legacy') {
      throw new RedfishError(400, 'PropertyValueNotInList', `The value ${JSON.stringify(b.BootSourceOverrideMode)} for the property BootSourceOverrideMode is not in the list of acceptable values (Legacy).`, [String(b.BootSourceOverrideMode), 'BootSourceOverrideMode']);
    }
    if (b.BootSourceOverrideTarget !== undefined && (typeof b.BootSourceOverrideTarget !== 'string' || !(b.BootSourceOverrideTarget in TARGETS))) {
      throw new RedfishError(400, 'PropertyValueNotInList', `The value ${JSON.stringify(b.BootSourceOverrideTarget)} for the property BootSourceOverrideTarget is not in the list of acceptable values (${Object.keys(TARGETS).join(', ')}).`, [String(b.BootSourceOverrideTarget), 'BootSourceOverrideTarget']);
    }
    if (b.BootSourceOverrideEnabled !== undefined && (typeof b.BootSourceOverrideEnabled !== 'string' || !ENABLED.includes(b.BootSourceOverrideEnabled))) {
      throw new RedfishError(400, 'PropertyValueNotInList', `The value ${JSON.stringify(b.BootSourceOverrideEnabled)} for the property BootSourceOverrideEnabled is not in the list of acceptable values (${ENABLED.join(', ')}).`, [String(b.BootSourceOverrideEnabled), 'BootSourceOverrideEnabled']);
    }
    const st: MachineState = await m.state();
    const target = b.BootSourceOverrideTarget !== undefined ? TARGETS[b.BootSourceOverrideTarget as string]! : (st.boot.override ? st.boot.device : null);
    const enabled = (b.BootSourceOverrideEnabled as string | undefined) ?? (st.boot.override ? (st.boot.persistent ? 'Continuous' : 'Once') : 'Once');
    if (target === null || enabled === 'Disabled') await m.clearBoot();
    else await m.setBoot(target, enabled === 'Continuous');
  }

  private async reset(m: Machine, type: (typeof RESET_TYPES)[number]): Promise<void> {
    switch (type) {
      case 'On': return m.powerOn();
      case 'ForceOff': return m.powerOff();
      case 'GracefulShutdown': await m.softOff(); return;
      case 'ForceRestart': case 'PowerCycle': return m.reset();
    }
  }

  /** Downloads the ISO at `image` into the machine's directory and inserts it. */
  private async insert(m: Machine, image: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(image);
    } catch {
      throw new RedfishError(400, 'ActionParameterValueFormatError', `The value ${JSON.stringify(image)} for the parameter Image in the action VirtualMedia.InsertMedia is of a different format than the parameter can accept.`, [image, 'Image', 'VirtualMedia.InsertMedia']);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RedfishError(400, 'ActionParameterValueFormatError', `The Image ${url.protocol} URL cannot be fetched: only http and https are supported.`, [image, 'Image', 'VirtualMedia.InsertMedia']);
    }
    if ((await m.state()).media) await m.ejectMedia();
    const file = m.file('media.iso');
    const part = `${file}.part`;
    try {
      await download(url, part, 5);
    } catch (err) {
      await fsp.rm(part, { force: true });
      throw new RedfishError(400, 'ResourceAtUriUnauthorized', `The image at ${url.origin}${url.pathname} could not be downloaded: ${err instanceof Error ? err.message : String(err)}`, [image, 'download']);
    }
    await fsp.rename(part, file);
    await m.insertMedia(image, file);
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const user = body.UserName;
    const pass = body.Password;
    if (typeof user !== 'string' || typeof pass !== 'string' || !this.equal(user, this.ep.username) || !this.equal(pass, this.ep.password)) {
      throw new RedfishError(401, 'NoValidSession', 'There is no valid session established with the implementation: the user name or password is wrong.');
    }
    const id = randomBytes(8).toString('hex');
    const token = randomBytes(24).toString('base64url');
    this.sessions.set(id, { id, user, token });
    const location = `/redfish/v1/SessionService/Sessions/${id}`;
    this.send(res, 201, { '@odata.type': '#Session.v1_3_0.Session', '@odata.id': location, Id: id, Name: 'User Session', UserName: user }, { 'x-auth-token': token, location });
  }
}

/**
 * The machine's NICs: nic0 the boot NIC on its tap, nic1 the second one,
 * attached to nothing (enabled, no link), as a server's unwired port.
 */
export function ethernetInterfaces(m: Machine): Json[] {
  const nic = (id: string, name: string, mac: string, link: 'LinkUp' | 'NoLink'): Json => ({
    '@odata.type': '#EthernetInterface.v1_6_0.EthernetInterface', Id: id, Name: name, InterfaceEnabled: true,
    MACAddress: mac.toUpperCase(), PermanentMACAddress: mac.toUpperCase(), LinkStatus: link, Status: { State: 'Enabled', Health: 'OK' },
  });
  return [nic('nic0', 'NIC 0', m.config.mac, 'LinkUp'), ...(m.config.spareMac ? [nic('nic1', 'NIC 1', m.config.spareMac, 'NoLink')] : [])];
}

/** One processor package with the machine's vCPUs (qemu's x86_64 guest). */
export function processors(m: Machine): Json[] {
  return [{
    '@odata.type': '#Processor.v1_7_0.Processor', Id: 'CPU0', Name: 'Processor 0', Socket: 'CPU 0', ProcessorType: 'CPU',
    ProcessorArchitecture: 'x86', InstructionSet: 'x86-64', Manufacturer: 'QEMU', Model: m.config.accel === 'kvm' ? 'QEMU (KVM)' : 'QEMU (TCG)',
    TotalCores: m.config.cpus, TotalThreads: m.config.cpus, Status: { State: 'Enabled', Health: 'OK' },
  }];
}

/** The machine's virtio disk (disk.img's size) as a SimpleStorage device. */
export function simpleStorage(m: Machine): Json[] {
  return [{
    '@odata.type': '#SimpleStorage.v1_3_0.SimpleStorage', Id: 'virtio', Name: 'virtio block controller', UefiDevicePath: 'PciRoot(0x0)',
    Devices: [{ Name: 'disk', Model: 'QEMU virtio disk', CapacityBytes: m.config.diskMb * 1024 * 1024, Status: { State: 'Enabled', Health: 'OK' } }],
    Status: { State: 'Enabled', Health: 'OK' },
  }];
}

function collection(id: string, type: string, name: string, members: string[]): Json {
  return { '@odata.type': type, '@odata.id': id, Name: name, 'Members@odata.count': members.length, Members: members.map(ref) };
}

function uuidOf(s: string): string {
  const h = createHash('sha256').update(s).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

async function readBody(req: http.IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new RedfishError(413, 'GeneralError', 'The request body is too large.');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RedfishError(400, 'MalformedJSON', 'The request body submitted was malformed JSON and could not be parsed by the receiving service.');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new RedfishError(400, 'MalformedJSON', 'The request body must be a JSON object.');
  return v as Json;
}

/** GETs `url` into `file` (redirects followed, at most MAX_MEDIA bytes, TLS certificates not checked: a BMC has no CA store). */
function download(url: URL, file: string, redirects: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, { timeout: 30_000, rejectUnauthorized: false }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects <= 0) return reject(new Error('too many redirects'));
        return download(new URL(res.headers.location, url), file, redirects - 1).then(resolve, reject);
      }
      if (status !== 200) {
        res.resume();
        return reject(new Error(`HTTP ${status}`));
      }
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_MEDIA) res.destroy(new Error(`larger than ${MAX_MEDIA} bytes`));
      });
      pipeline(res, createWriteStream(file, { mode: 0o600 })).then(resolve, reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
  });
}

export async function serveRedfish(stateDir: string): Promise<RedfishEmulator> {
  const ep = await readEndpoint(stateDir);
  if (!ep) throw new Error(`${stateDir}: no Redfish emulator configuration (redfish/emulator.json)`);
  const e = new RedfishEmulator(stateDir, ep);
  await e.listen();
  return e;
}

if (import.meta.main) {
  const stateDir = process.argv[2];
  if (!stateDir) {
    process.stderr.write('usage: redfish-emulator.ts <state dir>\n');
    process.exit(2);
  }
  serveRedfish(stateDir).then((e) => {
    process.stdout.write(`${new Date().toISOString()} Redfish emulator of ${stateDir} listening on https://${e.server.address() && typeof e.server.address() === 'object' ? `${(e.server.address() as { address: string }).address}:${(e.server.address() as { port: number }).port}` : '?'}\n`);
    const stop = () => {
      e.server.close(() => process.exit(0));
      e.server.closeAllConnections();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  }, (err: unknown) => {
    process.stderr.write(`Redfish emulator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
