// The serial console of a container: what it prints (its stdout and stderr,
// appended to STATE_DIR/servers/<id>/console.log) followed as it grows, the
// recent part first; what the user types goes to the container's stdin, a
// FIFO at STATE_DIR/servers/<id>/console.in that the container holds open
// read-write from its start (so it never blocks and never sees an end,
// across agent restarts). The busybox image's init runs a shell on it.
import { constants, open } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { followConsoleLog } from '../console-log.ts';
import type { ConsoleProvider } from '../../stream.ts';

/** The console input FIFO, in the server's directory. */
export const CONSOLE_INPUT = 'console.in';
const UUIDISH = /^[0-9a-zA-Z][0-9a-zA-Z-]{0,63}$/;

export class ContainerConsoles implements ConsoleProvider {
  private readonly serversDir: string;
  constructor(stateDir: string) {
    this.serversDir = join(stateDir, 'servers');
  }

  /** A container's directory is here (the VM driver keeps its servers elsewhere). */
  async hasServer(serverId: string): Promise<boolean> {
    return UUIDISH.test(serverId) && fsp.stat(join(this.serversDir, serverId)).then((s) => s.isDirectory(), () => false);
  }

  async serialConsole(serverId: string): Promise<Duplex> {
    if (!(await this.hasServer(serverId))) throw new Error(`server ${serverId} is not on this host`);
    const dir = join(this.serversDir, serverId);
    const log = await fsp.open(join(dir, 'console.log'), constants.O_RDONLY | constants.O_CREAT, 0o600);
    let input: Socket | null = null;
    try {
      // O_NONBLOCK: opening a FIFO for writing fails at once (ENXIO) when no container holds it, instead of waiting
      // a raw descriptor (a FileHandle would close it when collected, under the Socket)
      const fd = await new Promise<number | null>((resolve, reject) => open(join(dir, CONSOLE_INPUT), constants.O_WRONLY | constants.O_NONBLOCK, (err, n) => {
        if (!err) resolve(n);
        else if (err.code === 'ENXIO' || err.code === 'ENOENT') resolve(null);
        else reject(err);
      }));
      // a Socket over the FIFO writes with backpressure (a full pipe waits, it does not fail)
      if (fd !== null) input = new Socket({ fd, readable: false, writable: true });
      return await followConsoleLog(log, join(dir, 'console.log'), input);
    } catch (err) {
      await log.close();
      input?.destroy();
      throw err;
    }
  }
}
