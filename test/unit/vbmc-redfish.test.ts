// The Redfish client (src/agent/drivers/baremetal/bmc/redfish.ts) against
// Stratus's Redfish emulator (src/vbmc), without qemu or root: a machine
// that stays powered off (its files only), so everything but power on is
// served: boot overrides, virtual media inserted from a local HTTP server
// and ejected, sessions, ETags, Redfish error bodies, and the client's
// classification of a wrong password, an untrusted certificate, a dead port
// and a refused request. The serial console: the system's
// SerialConsole.Telnet port (a TCP server of the test's standing in for the
// machine's relay) read through the client's openConsole, Telnet option
// requests refused and left out; a system without one is console_unavailable.
// The console recorder's stop() ends an opening still waiting for a BMC that
// takes the connection and never answers, and an open Telnet session, with
// their sockets closed when it resolves. Out-of-band inspection: the system's
// EthernetInterfaces (the boot NIC and the second, unwired one), Processors and
// SimpleStorage as the emulator serves them and as the client's inspect() reads
// them. The emulator runs as its daemon (pid file), stopped at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { pino } from 'pino';
import { ConsoleRecorders } from '../../src/agent/drivers/baremetal/console.ts';
import { CONSOLE_UNAVAILABLE } from '../../src/agent/drivers/baremetal/bmc.ts';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedfishBmc } from '../../src/agent/drivers/baremetal/bmc/redfish.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';
import type { BmcAccess } from '../../src/baremetal/protocol.ts';
import { Machine, writeJson, type MachineConfig } from '../../src/vbmc/machine.ts';
import { ensureRedfishEmulator, redfishEmulatorPid, stopRedfishEmulator, type RedfishEndpoint } from '../../src/vbmc/redfish-control.ts';

const haveOpenssl = (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, 'openssl')));
const skip = haveOpenssl ? false : 'openssl is not installed';

let dir: string;
let ep: RedfishEndpoint;
let http: Server;
let isoUrl: string;
let machine: Machine;
const uuid = '6c0b3d50-0a6e-4f0e-9a55-1c5e0f3b2a11';

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'stratus-vbmc-unit-'));
  ep = await ensureRedfishEmulator({ stateDir: dir, address: '127.0.0.1' });
  const mdir = join(dir, 'machines', 'm1');
  const config: MachineConfig = {
    name: 'm1', uuid, mac: '52:54:00:aa:bb:cc', spareMac: '52:54:00:aa:bb:dd', bridge: 'none', tap: 'none', memoryMb: 512, diskMb: 16, cpus: 1, accel: 'tcg',
    bmc: { kind: 'redfish', address: ep.address, port: ep.port, username: ep.username, password: ep.password },
  };
  mkdirSync(mdir, { recursive: true });
  await writeJson(join(mdir, 'machine.json'), config);
  machine = new Machine(mdir, config);
  http = createServer((req, res) => {
    if (req.url === '/moved.iso') return void res.writeHead(302, { location: '/tiny.iso' }).end();
    if (req.url !== '/tiny.iso') return void res.writeHead(404).end();
    res.writeHead(200).end(Buffer.alloc(4096, 7));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  isoUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
});

after(async () => {
  if (skip) return;
  http?.close();
  await stopRedfishEmulator(dir);
  rmSync(dir, { recursive: true, force: true });
});

const access = (o: Partial<BmcAccess> = {}): BmcAccess => ({
  type: 'redfish', address: `https://${ep.address}:${ep.port}`, system_id: `/redfish/v1/Systems/${uuid}`, username: ep.username, password: ep.password, verify_tls: false, ...o,
});

function raw(method: string, path: string, o: { body?: unknown; headers?: Record<string, string>; password?: string; auth?: boolean } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.auth !== false) headers.authorization = `Basic ${Buffer.from(`${ep.username}:${o.password ?? ep.password}`).toString('base64')}`;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const req = request({ host: ep.address, port: ep.port, path, method, headers, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(o.body === undefined ? undefined : JSON.stringify(o.body));
  });
}

test('Redfish emulator: EthernetInterfaces, Processors, SimpleStorage; the client inspects out of band (no power change)', { skip }, async () => {
  const base = `/redfish/v1/Systems/${uuid}`;
  const sys = (await raw('GET', base)).body;
  assert.equal(sys.EthernetInterfaces['@odata.id'], `${base}/EthernetInterfaces`);
  const nics = (await raw('GET', `${base}/EthernetInterfaces`)).body;
  assert.equal(nics['Members@odata.count'], 2);
  assert.deepEqual(nics.Members.map((m: { '@odata.id': string }) => m['@odata.id']), [`${base}/EthernetInterfaces/nic0`, `${base}/EthernetInterfaces/nic1`]);
  const nic0 = (await raw('GET', `${base}/EthernetInterfaces/nic0`)).body;
  const nic1 = (await raw('GET', `${base}/EthernetInterfaces/nic1`)).body;
  assert.deepEqual([nic0.MACAddress, nic0.LinkStatus, nic0.Status.State], ['52:54:00:AA:BB:CC', 'LinkUp', 'Enabled']);
  assert.deepEqual([nic1.MACAddress, nic1.LinkStatus, nic1.Status.State], ['52:54:00:AA:BB:DD', 'NoLink', 'Enabled']);
  assert.equal((await raw('GET', `${base}/EthernetInterfaces/nic2`)).status, 404);
  assert.equal((await raw('POST', `${base}/EthernetInterfaces/nic0`, { body: {} })).status, 405);
  const cpu = (await raw('GET', `${base}/Processors/CPU0`)).body;
  assert.deepEqual([cpu.ProcessorArchitecture, cpu.InstructionSet, cpu.TotalCores], ['x86', 'x86-64', 1]);
  const disk = (await raw('GET', `${base}/SimpleStorage/virtio`)).body;
  assert.equal(disk.Devices[0].CapacityBytes, 16 * 1024 * 1024);
  assert.equal(sys.MemorySummary.TotalSystemMemoryGiB, 0.5);

  // the conductor's side: Ironic's redfish inspection, the machine left off
  const inv = await new RedfishBmc(access()).inspect();
  assert.deepEqual(inv, {
    cpus: 1, cpu_arch: 'x86_64', memory_mb: 512,
    disks: [{ name: 'disk', size_bytes: 16 * 1024 * 1024 }],
    nics: [{ name: 'nic0', mac: '52:54:00:aa:bb:cc', has_carrier: true }, { name: 'nic1', mac: '52:54:00:aa:bb:dd', has_carrier: false }],
  });
  assert.equal(await new RedfishBmc(access()).power(), 'power off');
  assert.ok(!machine.isOn());

  // qemu's side: the second NIC has its MAC, no netdev (wired to nothing), no option ROM and no boot index
  const args = machine.args('pxe', null);
  const devices = args.filter((a) => a.startsWith('virtio-net-pci,'));
  assert.equal(devices.length, 2);
  assert.match(devices[0]!, /netdev=net0,id=nic,mac=52:54:00:aa:bb:cc,bootindex=1/);
  assert.equal(devices[1], 'virtio-net-pci,id=nic2,mac=52:54:00:aa:bb:dd,romfile=');
  assert.equal(args.filter((a) => a.startsWith('tap,')).length, 1, 'one netdev: the boot NIC\'s tap');
});

const failure = (code: string, cls?: string, re?: RegExp) => (e: unknown) =>
  e instanceof ResourceFailure && e.code === code && (!cls || e.class === cls) && (!re || re.test(e.message)) && !e.message.includes(ep.password);

test('Redfish emulator and client: boot overrides, virtual media, sessions, ETags, error bodies, failures classified', { skip }, async () => {
  assert.ok(redfishEmulatorPid(dir), 'the emulator runs as a daemon');
  const bmc = new RedfishBmc(access());
  assert.equal(await bmc.power(), 'power off');
  // discovery without a system id: the only system
  assert.equal(await new RedfishBmc(access({ system_id: undefined })).power(), 'power off');

  // the service root needs no credentials; the rest does
  assert.equal((await raw('GET', '/redfish/v1/', { auth: false })).body.Systems['@odata.id'], '/redfish/v1/Systems');
  const denied = await raw('GET', '/redfish/v1/Systems', { auth: false });
  assert.equal(denied.status, 401);
  assert.equal(denied.body.error.code, 'Base.1.8.NoValidSession');
  assert.match(String(denied.headers['www-authenticate']), /^Basic /);

  // boot overrides
  const boot = async () => (await raw('GET', `/redfish/v1/Systems/${uuid}`)).body.Boot;
  assert.deepEqual([(await boot()).BootSourceOverrideTarget, (await boot()).BootSourceOverrideEnabled], ['None', 'Disabled']);
  await bmc.setBootDevice('pxe', false);
  assert.deepEqual([(await boot()).BootSourceOverrideTarget, (await boot()).BootSourceOverrideEnabled], ['Pxe', 'Once']);
  await bmc.setBootDevice('disk', true);
  assert.deepEqual([(await boot()).BootSourceOverrideTarget, (await boot()).BootSourceOverrideEnabled], ['Hdd', 'Continuous']);
  await bmc.setBootDevice('bios', true);
  assert.equal((await boot()).BootSourceOverrideTarget, 'BiosSetup');
  assert.deepEqual((await machine.state()).boot, { device: 'bios', persistent: true, override: true });
  const off = await raw('PATCH', `/redfish/v1/Systems/${uuid}`, { body: { Boot: { BootSourceOverrideEnabled: 'Disabled' } } });
  assert.equal(off.status, 204);
  assert.equal((await boot()).BootSourceOverrideTarget, 'None');

  // ETags: a stale If-Match is 412
  const sys = await raw('GET', `/redfish/v1/Systems/${uuid}`);
  assert.equal(sys.headers.etag, sys.body['@odata.etag']);
  const stale = await raw('PATCH', `/redfish/v1/Systems/${uuid}`, { body: { Boot: { BootSourceOverrideTarget: 'Cd' } }, headers: { 'if-match': 'W/"0000"' } });
  assert.equal(stale.status, 412);
  assert.equal(stale.body.error.code, 'Base.1.8.PreconditionFailed');

  // virtual media: inserted from the HTTP server (a redirect followed), in the machine's directory; the same again changes nothing; eject
  await bmc.virtualMedia.insert(`${isoUrl}/moved.iso`);
  const media = await raw('GET', `/redfish/v1/Managers/${uuid}/VirtualMedia/Cd`);
  assert.deepEqual([media.body.Inserted, media.body.Image, media.body.ConnectedVia], [true, `${isoUrl}/moved.iso`, 'URI']);
  assert.equal(readFileSync(machine.file('media.iso')).length, 4096);
  await bmc.virtualMedia.insert(`${isoUrl}/moved.iso`);
  await bmc.virtualMedia.eject();
  assert.equal((await raw('GET', `/redfish/v1/Managers/${uuid}/VirtualMedia/Cd`)).body.Inserted, false);
  assert.ok(!existsSync(machine.file('media.iso')), 'the image is removed');
  await assert.rejects(bmc.virtualMedia.insert(`${isoUrl}/missing.iso`), failure('bmc_refused', 'user', /HTTP 404/));

  // sessions: a token instead of basic authentication, gone after DELETE
  const login = await raw('POST', '/redfish/v1/SessionService/Sessions', { auth: false, body: { UserName: ep.username, Password: ep.password } });
  assert.equal(login.status, 201);
  const token = String(login.headers['x-auth-token']);
  assert.equal((await raw('GET', '/redfish/v1/Systems', { auth: false, headers: { 'x-auth-token': token } })).status, 200);
  assert.equal((await raw('DELETE', String(login.headers.location), { auth: false, headers: { 'x-auth-token': token } })).status, 204);
  assert.equal((await raw('GET', '/redfish/v1/Systems', { auth: false, headers: { 'x-auth-token': token } })).status, 401);
  assert.equal((await raw('POST', '/redfish/v1/SessionService/Sessions', { auth: false, body: { UserName: ep.username, Password: 'nope' } })).status, 401);

  // error bodies
  const cases: Array<[string, string, unknown, number, string]> = [
    ['GET', '/redfish/v1/Systems/none', undefined, 404, 'ResourceMissingAtURI'],
    ['POST', `/redfish/v1/Systems/${uuid}/Actions/ComputerSystem.Reset`, {}, 400, 'ActionParameterMissing'],
    ['POST', `/redfish/v1/Systems/${uuid}/Actions/ComputerSystem.Reset`, { ResetType: 'Nmi' }, 400, 'ActionParameterNotSupported'],
    ['PATCH', `/redfish/v1/Systems/${uuid}`, { Name: 'x' }, 400, 'PropertyNotWritable'],
    ['PATCH', `/redfish/v1/Systems/${uuid}`, { Boot: { BootSourceOverrideMode: 'UEFI' } }, 400, 'PropertyValueNotInList'],
    ['DELETE', `/redfish/v1/Systems/${uuid}`, undefined, 405, 'OperationNotAllowed'],
    ['POST', `/redfish/v1/Managers/${uuid}/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia`, { Image: 'ftp://x/y.iso' }, 400, 'ActionParameterValueFormatError'],
  ];
  for (const [method, path, body, status, id] of cases) {
    const r = await raw(method, path, { body });
    assert.equal(r.status, status, `${method} ${path}`);
    assert.equal(r.body.error.code, `Base.1.8.${id}`);
    assert.equal(r.body.error['@Message.ExtendedInfo'][0].MessageId, `Base.1.8.${id}`);
    assert.equal(typeof r.body.error.message, 'string');
  }
  const malformed = await raw('PATCH', `/redfish/v1/Systems/${uuid}`, { headers: { 'content-type': 'application/json' }, body: undefined });
  assert.equal(malformed.status, 400);

  // the client's classification; no message holds the password
  await assert.rejects(new RedfishBmc(access({ password: 'wrong-password' })).power(), failure('bmc_auth', 'user'));
  await assert.rejects(new RedfishBmc(access({ verify_tls: true })).power(), failure('bmc_unreachable', 'user', /certificate/));
  await assert.rejects(new RedfishBmc(access({ address: 'https://127.0.0.1:1' })).power(), failure('bmc_unreachable', 'transient'));
  await assert.rejects(new RedfishBmc(access({ system_id: '/redfish/v1/Systems/none' })).power(), failure('bmc_refused', 'user', /404/));
  assert.throws(() => new RedfishBmc(access({ address: 'ftp://x' })), failure('bmc_unreachable', 'user'));
});

test('the Redfish serial console: SerialConsole.Telnet of the system, read as bytes with Telnet\'s commands left out; none: console_unavailable', { skip }, async () => {
  // a second machine whose serial port is a TCP server of the test's (as serial-relay.ts offers qemu's)
  const heard: Buffer[] = [];
  const tcp = createTcpServer((c) => {
    c.on('data', (d: Buffer) => heard.push(d));
    c.on('error', () => undefined);
    // IAC DO ECHO, text, a literal 255 (IAC IAC), IAC SB ... IAC SE, more text
    c.write(Buffer.concat([Buffer.from([255, 253, 1]), Buffer.from('Booting from Hard Disk...\r\n'), Buffer.from([255, 255]), Buffer.from([255, 250, 24, 1, 255, 240]), Buffer.from('login: ')]));
    setTimeout(() => c.end(), 200);
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const port = (tcp.address() as { port: number }).port;
  const uuid2 = '6c0b3d50-0a6e-4f0e-9a55-1c5e0f3b2a12';
  const mdir = join(dir, 'machines', 'm2');
  mkdirSync(mdir, { recursive: true });
  await writeJson(join(mdir, 'machine.json'), {
    ...machine.config, name: 'm2', uuid: uuid2, mac: '52:54:00:aa:bb:cd', serial: { address: '127.0.0.1', port },
  } satisfies MachineConfig);
  try {
    const doc = await raw('GET', `/redfish/v1/Systems/${uuid2}`);
    assert.deepEqual(doc.body.SerialConsole.Telnet, { ServiceEnabled: true, Port: port });
    const session = await new RedfishBmc(access({ system_id: `/redfish/v1/Systems/${uuid2}` })).openConsole();
    const out: Buffer[] = [];
    for await (const chunk of session.output) out.push(chunk);
    assert.deepEqual(Buffer.concat(out), Buffer.concat([Buffer.from('Booting from Hard Disk...\r\n'), Buffer.from([255]), Buffer.from('login: ')]));
    assert.deepEqual(Buffer.concat(heard), Buffer.from([255, 252, 1]), 'DO ECHO refused: WONT ECHO');
    // the first machine has no serial port: no console, said so
    await assert.rejects(new RedfishBmc(access()).openConsole(), failure(CONSOLE_UNAVAILABLE, 'user', /no Telnet serial console/));
  } finally {
    tcp.close();
    rmSync(mdir, { recursive: true, force: true });
  }
});

test('the console recorder\'s stop() ends an openConsole waiting for a Redfish BMC that never answers, and an open Telnet session: at once, no socket left', { skip, timeout: 60_000 }, async () => {
  // a TCP server that takes connections and says nothing (a BMC that hangs; a serial port that is quiet)
  const conns = new Set<Socket>();
  const mute = createTcpServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.on('error', () => undefined);
    c.resume(); // read (and drop) what comes: the client's FIN is seen
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  const port = (mute.address() as { port: number }).port;
  const until = async (what: string, pred: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!pred()) { if (Date.now() > end) assert.fail(`no ${what}`); await new Promise((r) => setTimeout(r, 20)); }
  };
  const uuid3 = '6c0b3d50-0a6e-4f0e-9a55-1c5e0f3b2a13';
  const mdir = join(dir, 'machines', 'm3');
  const rec = new ConsoleRecorders(join(dir, 'recorder'), pino({ level: 'silent' }), 1 << 20);
  try {
    // the system's GET waits (30 s before it gives up): stop() aborts it
    await rec.start('hung', new RedfishBmc(access({ address: `https://127.0.0.1:${port}` })));
    await until('the GET\'s connection', () => conns.size === 1);
    let stopping = Date.now();
    await rec.stop('hung');
    let took = Date.now() - stopping;
    assert.ok(took < 2000, `stop() took ${took} ms`);
    await until('the GET\'s connection closed', () => conns.size === 0, 1000);

    // an open Telnet session on a quiet serial port: stop() closes it
    mkdirSync(mdir, { recursive: true });
    await writeJson(join(mdir, 'machine.json'), { ...machine.config, name: 'm3', uuid: uuid3, mac: '52:54:00:aa:bb:ce', serial: { address: '127.0.0.1', port } } satisfies MachineConfig);
    await rec.start('quiet', new RedfishBmc(access({ system_id: `/redfish/v1/Systems/${uuid3}` })), 10_000);
    await until('the Telnet connection', () => conns.size === 1);
    stopping = Date.now();
    await rec.stop('quiet');
    took = Date.now() - stopping;
    assert.ok(took < 2000, `stop() took ${took} ms`);
    await until('the Telnet connection closed', () => conns.size === 0, 1000);

    // the serial port refuses (nothing listens any more): a transient bmc_unreachable, the socket closed before it settles
    await new Promise<void>((r) => mute.close(() => r()));
    await assert.rejects(new RedfishBmc(access({ system_id: `/redfish/v1/Systems/${uuid3}` })).openConsole(), failure('bmc_unreachable', 'transient', /serial console port/));
  } finally {
    await rec.stopAll();
    for (const c of conns) c.destroy();
    if (mute.listening) mute.close();
    rmSync(mdir, { recursive: true, force: true });
  }
});
