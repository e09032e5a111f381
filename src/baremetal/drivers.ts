// The hardware types Stratus serves (Ironic's `ipmi` and `redfish`), their
// interfaces (enabled and default per interface type), the driver_info each
// needs and how it is checked, and the driver properties Ironic documents
// (GET /v1/drivers/{name}/properties).
import { E } from './errors.ts';
import { HARDWARE_TYPES, type BmcAccess, type HardwareType } from './protocol.ts';

export const INTERFACE_TYPES = ['bios', 'boot', 'console', 'deploy', 'inspect', 'management', 'network', 'power', 'raid', 'rescue', 'storage', 'vendor'] as const;
export type InterfaceType = (typeof INTERFACE_TYPES)[number];

/** Interface type -> [default, ...enabled] per hardware type. */
const COMMON: Record<InterfaceType, string[]> = {
  bios: ['no-bios'], boot: ['ipxe', 'pxe'], console: ['no-console'], deploy: ['direct'], inspect: ['agent', 'no-inspect'],
  management: [], network: ['flat', 'noop'], power: [], raid: ['no-raid'], rescue: ['no-rescue', 'agent'], storage: ['noop'], vendor: ['no-vendor'],
};
export const INTERFACES: Record<HardwareType, Record<InterfaceType, string[]>> = {
  ipmi: { ...COMMON, management: ['ipmitool'], power: ['ipmitool'] },
  // redfish: Ironic's out-of-band `redfish` inspect interface beside the agent's (the default stays the agent's)
  redfish: { ...COMMON, boot: ['ipxe', 'pxe', 'redfish-virtual-media'], inspect: ['agent', 'redfish', 'no-inspect'], management: ['redfish'], power: ['redfish'] },
};

export const isHardwareType = (d: string): d is HardwareType => (HARDWARE_TYPES as readonly string[]).includes(d);

/** The interfaces of a new node: the given ones checked against its hardware type, defaults for the rest. */
export function interfacesFor(driver: HardwareType, given: Partial<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of INTERFACE_TYPES) {
    const v = given[`${t}_interface`];
    out[`${t}_interface`] = v === undefined || v === null ? INTERFACES[driver][t][0]! : checkInterface(driver, t, v);
  }
  return out;
}

export function checkInterface(driver: HardwareType, type: InterfaceType, value: unknown): string {
  if (typeof value !== 'string') throw E.invalid(`Invalid ${type}_interface: ${JSON.stringify(value)}`);
  const anywhere = new Set(HARDWARE_TYPES.flatMap((h) => INTERFACES[h][type]));
  if (!anywhere.has(value)) {
    throw E.invalid(`Could not find the following interface in the 'ironic.hardware.interfaces.${type}' entrypoint: ${value}. Valid interfaces are ${JSON.stringify([...anywhere])}.`);
  }
  if (!INTERFACES[driver][type].includes(value)) throw E.invalid(`${type} interface implementation '${value}' is not supported by hardware type ${driver}.`);
  return value;
}

export const PROPERTIES: Record<HardwareType, Record<string, string>> = {
  ipmi: {
    ipmi_address: 'IP address or hostname of the node. Required.',
    ipmi_password: 'password. Optional.',
    ipmi_port: 'remote IPMI RMCP port. Optional.',
    ipmi_username: 'username; default is NULL user. Optional.',
    ipmi_priv_level: 'privilege level; default is ADMINISTRATOR. One of ADMINISTRATOR, CALLBACK, OPERATOR, USER. Optional.',
    ipmi_protocol_version: "the version of the IPMI protocol; default is \"2.0\". One of \"1.5\", \"2.0\". Optional.",
    deploy_kernel: 'UUID (from Glance) of the deployment kernel. Stratus boots its own deploy ramdisk: ignored. Optional.',
    deploy_ramdisk: 'UUID (from Glance) of the ramdisk with agent that is used at deploy time. Stratus boots its own deploy ramdisk: ignored. Optional.',
    force_persistent_boot_device: 'True to keep a boot device set persistently. Optional.',
  },
  redfish: {
    redfish_address: 'The URL address to the Redfish controller. It must include the authority portion of the URL. If the scheme is missing, https is assumed. For example: https://mgmt.vendor.com. Required',
    redfish_system_id: 'The canonical path to the ComputerSystem resource that the driver will interact with. For example: /redfish/v1/Systems/1. Optional',
    redfish_username: 'User account with admin/server-profile access privilege. Optional',
    redfish_password: 'User account password. Optional',
    redfish_verify_ca: 'Either a Boolean value or a path to a CA_BUNDLE file. If set to True the driver will verify the host certificates; if False the driver will ignore verifying the SSL certificate. Defaults to True. Optional',
    deploy_kernel: 'UUID (from Glance) of the deployment kernel. Stratus boots its own deploy ramdisk: ignored. Optional.',
    deploy_ramdisk: 'UUID (from Glance) of the ramdisk with agent that is used at deploy time. Stratus boots its own deploy ramdisk: ignored. Optional.',
  },
};

const BOOL_TRUE = new Set(['true', '1', 'yes', 'on', 't', 'y']);
const BOOL_FALSE = new Set(['false', '0', 'no', 'off', 'f', 'n']);

/** Checks the types of driver_info fields Stratus uses (presence is checked by validate / manage). */
export function checkDriverInfo(driver: HardwareType, info: Record<string, unknown>): void {
  if (driver === 'ipmi') {
    if (info.ipmi_port !== undefined && info.ipmi_port !== null) {
      const p = Number(info.ipmi_port);
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw E.invalid('IPMI port is not an integer.');
    }
    for (const k of ['ipmi_address', 'ipmi_username', 'ipmi_password']) {
      if (info[k] !== undefined && info[k] !== null && typeof info[k] !== 'string') throw E.invalid(`Invalid ${k}: must be a string.`);
    }
  } else {
    const a = info.redfish_address;
    if (a !== undefined && a !== null) {
      if (typeof a !== 'string' || !redfishUrl(a)) throw E.invalid(`Invalid Redfish address ${String(a)} set in driver_info/redfish_address on node.`);
    }
    const v = info.redfish_verify_ca;
    if (v !== undefined && v !== null && typeof v !== 'boolean' && !(typeof v === 'string' && (BOOL_TRUE.has(v.toLowerCase()) || BOOL_FALSE.has(v.toLowerCase()) || v.startsWith('/')))) {
      throw E.invalid(`Invalid value type set in driver_info/redfish_verify_ca on node. The value should be a Boolean or the path to a file/directory, not "${String(v)}"`);
    }
    for (const k of ['redfish_system_id', 'redfish_username', 'redfish_password']) {
      if (info[k] !== undefined && info[k] !== null && typeof info[k] !== 'string') throw E.invalid(`Invalid ${k}: must be a string.`);
    }
  }
}

function redfishUrl(a: string): string | null {
  try {
    const u = new URL(a.includes('://') ? a : `https://${a}`);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.toString().replace(/\/$/, '') : null;
  } catch {
    return null;
  }
}

/** What the power/management interfaces miss to reach the BMC (Ironic's validate), or null. */
export function missingDriverInfo(driver: string, info: Record<string, unknown>): string | null {
  if (driver === 'ipmi') {
    return info.ipmi_address ? null : "Missing the following IPMI credentials in node's driver_info: ['ipmi_address'].";
  }
  if (driver === 'redfish') {
    return info.redfish_address ? null : "Missing the following Redfish properties in node's driver_info: ['redfish_address'].";
  }
  return `Could not find the following driver(s) or hardware type(s): ${driver}.`;
}

/** How the conductor reaches the BMC (secrets in clear: the agent channel only). */
export function bmcAccess(driver: HardwareType, info: Record<string, unknown>): BmcAccess {
  const s = (k: string) => (typeof info[k] === 'string' ? (info[k] as string) : undefined);
  if (driver === 'ipmi') {
    return { type: 'ipmi', address: s('ipmi_address') ?? '', port: info.ipmi_port ? Number(info.ipmi_port) : 623, username: s('ipmi_username'), password: s('ipmi_password') };
  }
  const v = info.redfish_verify_ca;
  const verify = v === undefined || v === null ? true : typeof v === 'boolean' ? v : !BOOL_FALSE.has(String(v).toLowerCase());
  return {
    type: 'redfish', address: redfishUrl(s('redfish_address') ?? '') ?? '', system_id: s('redfish_system_id'), username: s('redfish_username'),
    password: s('redfish_password'), verify_tls: verify,
  };
}

/** Ironic's mask_dict_password: values of keys naming a secret are "******". */
const SECRET_KEY = /(password|passwd|pwd|secret|token|key|credential|auth)/i;
export function maskSecrets(d: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) {
    if (SECRET_KEY.test(k) && v !== null && v !== undefined && v !== '') out[k] = '******';
    else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = maskSecrets(v as Record<string, unknown>);
    else out[k] = v;
  }
  return out;
}
