// What the conductor asks of a node's BMC, whatever speaks to it: IPMI
// through `ipmitool -I lanplus` (ipmi.ts) or Redfish through Stratus's own
// client (redfish.ts). One client per node, made from the spec's BmcAccess.
// A client throws ResourceFailure (../../errors.ts) with
// BaremetalErrorCode.bmcUnreachable, bmcAuth or bmcRefused; it never puts a
// password in an error, a log line or a process's argv (ipmitool reads it
// from the environment: `-E` and IPMI_PASSWORD).
import type { BmcAccess, BootDevice, NodeInventory, PowerState } from '../../../baremetal/protocol.ts';

export interface BmcClient {
  power(): Promise<PowerState>;
  /** Sets the power and returns once the BMC reports it (or throws after `timeoutMs`). */
  setPower(target: PowerState, timeoutMs?: number): Promise<void>;
  /** A hard reset of a powered-on node (power on when it is off). */
  reboot(timeoutMs?: number): Promise<void>;
  /** An ACPI power button press; false when the BMC cannot do it (the caller then powers off hard). */
  softPowerOff(timeoutMs?: number): Promise<boolean>;
  /** The next boot's device (persistent: every boot). */
  setBootDevice(device: BootDevice, persistent: boolean): Promise<void>;
  /** Virtual media (redfish): the ISO at `url` inserted as a CD; null when the BMC has none. */
  readonly virtualMedia: VirtualMedia | null;
  /**
   * Connects to the node's serial console (IPMI Serial over LAN; a Redfish
   * BMC's serial console over Telnet): the node's output until the session
   * ends. A BMC that offers none throws a user ResourceFailure with code
   * `console_unavailable`. An abort of `signal` ends the opening at once
   * (whatever it waits for: the BMC, a process, a connection) and rejects
   * with the signal's reason once nothing of it is left (no process, no
   * socket); an abort after it opened ends the session as close() does.
   */
  openConsole(signal?: AbortSignal): Promise<ConsoleSession>;
  /**
   * Out-of-band inspection (Ironic's `redfish` inspect interface): the
   * hardware as the BMC describes it, no boot, no power change; absent when
   * the BMC cannot (IPMI).
   */
  inspect?(): Promise<NodeInventory>;
}

export const CONSOLE_UNAVAILABLE = 'console_unavailable';

/** One serial console session: the node's output (bytes), ending when the BMC or the node drops it or on close(). */
export interface ConsoleSession {
  readonly output: AsyncIterable<Buffer>;
  /** Ends the session; resolves once nothing of it is left (its process reaped, its socket closed). */
  close(): Promise<void>;
}

export interface VirtualMedia {
  insert(url: string): Promise<void>;
  eject(): Promise<void>;
}

export type BmcFactory = (access: BmcAccess) => BmcClient;
