// `stratus baremetal virtual create|list|delete` against a running cloud (an
// in-process server): two machines, one per BMC kind, enrolled through the
// bare-metal API as nodes (driver, driver_info with the password hidden by
// the API, resource class, properties) with a port each (MAC, physical
// network); the BMCs answer with the enrolled credentials; delete removes
// the nodes, the machines, their daemons and taps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startCloud, type Cloud } from '../harness.ts';
import { bmcClient } from '../../src/agent/drivers/baremetal/bmc/factory.ts';
import { listMachines } from '../../src/vbmc/fleet.ts';
import { stopIpmiBmc } from '../../src/vbmc/ipmi-bmc.ts';
import { Machine } from '../../src/vbmc/machine.ts';
import { stopRedfishEmulator } from '../../src/vbmc/redfish-control.ts';
import { leaks, makeBed, skipWithout, tearDown, type Bed } from './vbmc-lib.ts';

const CLI = join(import.meta.dirname, '../../src/cli/main.ts');
const skip = skipWithout('ipmi_sim', 'ipmitool', 'qemu-system-x86_64', 'openssl');

let bed: Bed | undefined;
let cloud: Cloud | undefined;

before(async () => {
  if (skip) return;
  bed = await makeBed('vbe');
  cloud = await startCloud();
});

after(async () => {
  const failed = await tearDown(bed);
  await cloud?.close();
  assert.deepEqual(failed, []);
});

function stratus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const bm = (method: string, path: string, body?: unknown) =>
  cloud!.call(method, `/baremetal${path}`, { token: cloud!.adminToken, body, headers: { 'X-OpenStack-Ironic-API-Version': 'latest' } });

test('baremetal virtual create enrols an IPMI and a Redfish machine with their ports; delete removes nodes, machines and daemons', { skip, timeout: 180_000 }, async () => {
  const t0 = Date.now();
  const common = ['--state-dir', bed!.stateDir, '--data-dir', cloud!.dataDir, '--url', cloud!.url];
  const made = await stratus('baremetal', 'virtual', 'create', '--count', '2', '--bridge', bed!.bridge, '--disk-mb', '64', '--name-prefix', 'enr', ...common);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stdout, /^enr-1 .*ipmi 127\.0\.0\.1:\d+ .*node [0-9a-f-]{36}$/m);
  assert.match(made.stdout, /^enr-2 .*redfish https:\/\/127\.0\.0\.1:\d+\/redfish\/v1\/Systems\/.*node [0-9a-f-]{36}$/m);

  const machines = await listMachines(bed!.stateDir);
  assert.deepEqual(machines.map((m) => [m.name, m.config.bmc.kind, m.power]), [['enr-1', 'ipmi', 'off'], ['enr-2', 'redfish', 'off']]);
  for (const m of machines) {
    const node = (await bm('GET', `/v1/nodes/${m.config.enrolled!.node}`)).body;
    assert.equal(node.name, m.name);
    assert.equal(node.driver, m.config.bmc.kind);
    assert.equal(node.resource_class, 'baremetal');
    assert.equal(node.provision_state, 'enroll');
    assert.deepEqual([node.properties.cpus, node.properties.memory_mb, node.properties.cpu_arch], [1, 512, 'x86_64']);
    const pw = m.config.bmc.kind === 'ipmi' ? 'ipmi_password' : 'redfish_password';
    assert.equal(node.driver_info[pw], '******', 'the API hides the BMC password');
    if (m.config.bmc.kind === 'redfish') {
      assert.equal(node.boot_interface, 'redfish-virtual-media');
      assert.equal(node.driver_info.redfish_system_id, `/redfish/v1/Systems/${m.config.uuid}`);
      assert.equal(node.driver_info.redfish_verify_ca, false);
    }
    const ports = (await bm('GET', `/v1/ports/detail?node=${node.uuid}`)).body.ports;
    assert.deepEqual(ports.map((p: any) => [p.address, p.physical_network, p.pxe_enabled]), [[m.config.mac, 'baremetal', true]]);
    // the BMC answers with what was enrolled
    const d = m.driverInfo as Record<string, any>;
    const access = m.config.bmc.kind === 'ipmi'
      ? { type: 'ipmi' as const, address: d.ipmi_address, port: d.ipmi_port, username: d.ipmi_username, password: d.ipmi_password }
      : { type: 'redfish' as const, address: d.redfish_address, system_id: d.redfish_system_id, username: d.redfish_username, password: d.redfish_password, verify_tls: false };
    assert.equal(await bmcClient(access).power(), 'power off');
  }

  const listed = await stratus('baremetal', 'virtual', 'list', '--state-dir', bed!.stateDir, '--json');
  assert.equal(listed.code, 0, listed.stderr);
  const json = JSON.parse(listed.stdout);
  assert.deepEqual(json.map((m: any) => m.name), ['enr-1', 'enr-2']);
  assert.ok(!listed.stdout.includes(machines[0]!.config.bmc.password), 'list --json shows no password');

  // BMCs that stopped (a host reboot) start again, answering on the enrolled ports
  const ipmiMachine = await Machine.load(machines[0]!.dir);
  assert.ok(await stopIpmiBmc(ipmiMachine));
  assert.ok(await stopRedfishEmulator(bed!.stateDir));
  assert.match((await stratus('baremetal', 'virtual', 'list', '--state-dir', bed!.stateDir)).stdout, /BMC not running/);
  const started = await stratus('baremetal', 'virtual', 'start', '--state-dir', bed!.stateDir);
  assert.equal(started.code, 0, started.stderr);
  assert.doesNotMatch(started.stdout, /BMC not running/);
  assert.deepEqual((await listMachines(bed!.stateDir)).map((m) => [m.config.bmc.port, !!m.bmcPid]), machines.map((m) => [m.config.bmc.port, true]));

  // an unknown name is refused; then everything goes
  const none = await stratus('baremetal', 'virtual', 'delete', 'nope', ...common);
  assert.notEqual(none.code, 0);
  const gone = await stratus('baremetal', 'virtual', 'delete', '--all', ...common);
  assert.equal(gone.code, 0, gone.stderr);
  for (const m of machines) assert.equal((await bm('GET', `/v1/nodes/${m.config.enrolled!.node}`)).status, 404);
  assert.deepEqual((await bm('GET', '/v1/ports')).body.ports, []);
  assert.deepEqual(await listMachines(bed!.stateDir), []);
  assert.deepEqual(await leaks(bed!, ['enr-1', 'enr-2']), []);
  process.stderr.write(`vbmc-enroll: ${Date.now() - t0} ms\n`);
});
