// OpenIPMI's ipmi_sim calls this program for every chassis command of a
// virtual machine's IPMI BMC (lan.conf `chassis_control "<this> <machine dir>"`,
// see ipmi.ts): `get power boot ...` prints `power:1`, `boot:pxe` lines;
// `set power 1`, `set reset 1`, `set shutdown 1`, `set boot pxe` act.
// Why not ipmi_sim's `startcmd`: ipmi_sim answers Set System Boot Options
// (ipmitool's `chassis bootdev`) only through a chassis control program (or a
// loadable module), "Invalid data field in request" otherwise; and once a
// chassis control program is set, ipmi_sim hands it power on/off/reset too
// (lanserv/bmc_chassis.c). So this program owns the machine, as the Redfish
// emulator does, through machine.ts.
//
// ipmi_sim's boot names (bmc_chassis.c's boot_map): none, pxe, default (the
// disk), cdrom, bios. It ignores the request's persistent bit, so a boot
// device set over IPMI holds for every boot.
// Run as `node chassis-control.ts <machine dir> get|set ...`; exit status 0 or 1.
import { Machine, type BootDevice } from './machine.ts';

const TO_IPMI: Record<BootDevice, string> = { pxe: 'pxe', disk: 'default', cdrom: 'cdrom', bios: 'bios' };
const FROM_IPMI: Record<string, BootDevice> = { pxe: 'pxe', default: 'disk', cdrom: 'cdrom', bios: 'bios', none: 'disk' };

export async function chassisControl(dir: string, op: string, items: string[]): Promise<string> {
  const m = await Machine.load(dir);
  const out: string[] = [];
  if (op === 'get') {
    for (const name of items) {
      if (name === 'power') out.push(`power:${m.isOn() ? 1 : 0}`);
      else if (name === 'boot') out.push(`boot:${TO_IPMI[(await m.state()).boot.device]}`);
      else if (name === 'identify') out.push('identify:0 0');
      else throw new Error(`cannot get ${name}`);
    }
  } else if (op === 'set') {
    for (let i = 0; i + 1 < items.length; i += 2) {
      const [name, value] = [items[i]!, items[i + 1]!];
      if (name === 'power') await (value === '1' ? m.powerOn() : m.powerOff());
      else if (name === 'reset') await m.reset();
      else if (name === 'shutdown') await m.softOff();
      else if (name === 'boot') {
        const dev = FROM_IPMI[value];
        if (!dev) throw new Error(`unknown boot device ${value}`);
        await m.setBoot(dev, true);
      } else if (name === 'identify') { /* no LED to blink */ } else throw new Error(`cannot set ${name}`);
    }
  } else if (op !== 'check') {
    throw new Error(`unknown operation ${op}`);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

if (import.meta.main) {
  const [dir, op, ...items] = process.argv.slice(2);
  chassisControl(dir ?? '', op ?? '', items).then((text) => {
    process.stdout.write(text);
  }, (err: unknown) => {
    process.stderr.write(`stratus chassis-control: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
