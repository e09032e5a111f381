// What the deploy ramdisk and the conductor say to each other over the
// conductor's HTTP endpoint (http.ts), every call with the operation's token
// in `X-Stratus-Token`:
//
//   GET  /v1/nodes/{node}/command      text, one `key=value` a line (the ramdisk's shell reads it with sed):
//        op=inspect|clean|deploy|rescue|poweroff|reboot|wait, id=<operation id>, and for deploy
//        image_size, image_sha256 (of the raw bytes), configdrive_size (0: none); for rescue rescue_password_hash
//   GET  /v1/nodes/{node}/image        the raw image
//   GET  /v1/nodes/{node}/configdrive  the config drive image (ISO 9660, config-2)
//   POST /v1/nodes/{node}/report       JSON {op_id, status: running|ok|failed, phase, message, inventory?}
//
// Pure: rendering a command and checking a report.
import type { NodeInventory, OperationPhase } from '../../../../baremetal/protocol.ts';

export type RamdiskCommand =
  | { op: 'wait' | 'poweroff' | 'reboot' }
  | { op: 'inspect' | 'clean'; id: string }
  | { op: 'deploy'; id: string; image_size: number; image_sha256: string; configdrive_size: number }
  | { op: 'rescue'; id: string; rescue_password_hash: string };

const SAFE_VALUE = /^[A-Za-z0-9._:/$=+-]*$/;

/** A command as the ramdisk reads it; a value that could break its parsing is refused. */
export function renderCommand(c: RamdiskCommand): string {
  return Object.entries(c).map(([k, v]) => {
    const s = String(v);
    if (!SAFE_VALUE.test(s)) throw new Error(`a ramdisk command's ${k} holds characters the ramdisk cannot take`);
    return `${k}=${s}\n`;
  }).join('');
}

export interface RamdiskReport {
  op_id: string;
  status: 'running' | 'ok' | 'failed';
  phase: OperationPhase;
  message: string;
  inventory?: NodeInventory;
}

const PHASES: readonly OperationPhase[] = ['ramdisk', 'inspect', 'erase', 'write_image', 'config_drive'];
const MAX_MESSAGE = 300;

/** A report from the ramdisk, checked (a ramdisk is a machine someone else may control: nothing unchecked reaches the API). */
export function parseReport(body: unknown): RamdiskReport {
  const bad = (why: string) => new Error(`bad report: ${why}`);
  if (typeof body !== 'object' || body === null) throw bad('not an object');
  const b = body as Record<string, unknown>;
  if (typeof b.op_id !== 'string' || !b.op_id) throw bad('op_id');
  if (b.status !== 'running' && b.status !== 'ok' && b.status !== 'failed') throw bad('status');
  const phase = PHASES.includes(b.phase as OperationPhase) ? b.phase as OperationPhase : 'ramdisk';
  const message = typeof b.message === 'string' ? b.message.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MAX_MESSAGE) : '';
  const r: RamdiskReport = { op_id: b.op_id, status: b.status, phase, message };
  if (b.inventory !== undefined) r.inventory = parseInventory(b.inventory);
  return r;
}

const str = (v: unknown, max = 128): string | undefined => (typeof v === 'string' ? v.slice(0, max) : undefined);
const int = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function parseInventory(v: unknown): NodeInventory {
  if (typeof v !== 'object' || v === null) throw new Error('bad report: inventory');
  const i = v as Record<string, unknown>;
  const disks = (Array.isArray(i.disks) ? i.disks : []).slice(0, 64).flatMap((d: unknown) => {
    if (typeof d !== 'object' || d === null) return [];
    const x = d as Record<string, unknown>;
    const name = str(x.name, 64);
    if (!name) return [];
    return [{
      name, size_bytes: int(x.size_bytes),
      ...(str(x.model) ? { model: str(x.model)! } : {}), ...(str(x.serial) ? { serial: str(x.serial)! } : {}),
      ...(typeof x.rotational === 'boolean' ? { rotational: x.rotational } : {}),
    }];
  }).sort((a, b) => b.size_bytes - a.size_bytes);
  const nics = (Array.isArray(i.nics) ? i.nics : []).slice(0, 64).flatMap((n: unknown) => {
    if (typeof n !== 'object' || n === null) return [];
    const x = n as Record<string, unknown>;
    const mac = str(x.mac)?.toLowerCase();
    const name = str(x.name, 32);
    if (!mac || !MAC.test(mac) || !name) return [];
    return [{ name, mac, ...(typeof x.has_carrier === 'boolean' ? { has_carrier: x.has_carrier } : {}) }];
  });
  const boot = str(i.boot_mac)?.toLowerCase();
  return {
    cpus: int(i.cpus), cpu_arch: str(i.cpu_arch, 32) ?? 'unknown', memory_mb: int(i.memory_mb), disks, nics,
    ...(boot && MAC.test(boot) ? { boot_mac: boot } : {}),
  };
}
