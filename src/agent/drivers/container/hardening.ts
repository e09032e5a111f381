// What the container driver asks of the host-side hardening, at the points of
// a server's life where it applies: the writable layer with the flavor's disk
// limit (quota.ts) and owned by the ids the container runs as (userns.ts)
// before the spec is written; the user namespace's shifted layers and network
// sysctls before the container starts; their removal with the server. The
// spec side (seccomp, capabilities, masked paths, id mappings) is in spec.ts.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { DesiredServer } from '../../../compute/engine/protocol.ts';
import type { Spawner } from '../../exec.ts';
import { DiskPool, diskLimitBytes } from './quota.ts';
import { loadSeccompProfile } from './seccomp.ts';
import { Userns, usernsWanted } from './userns.ts';

export class Hardening {
  private readonly disks: DiskPool;
  private readonly userns: Userns;
  private readonly serversDir: string;

  constructor(stateDir: string, serversDir: string, sp: Spawner) {
    this.serversDir = serversDir;
    this.disks = new DiskPool(stateDir, sp);
    this.userns = new Userns(stateDir, serversDir, sp);
  }

  /** At agent start: the seccomp profile must be there (no container runs unconfined). */
  async start(): Promise<void> {
    await loadSeccompProfile();
    await this.sweep();
  }

  /** The server's upper/, work/ and rootfs/ under `dir`, limited and owned as its flavor says. */
  async prepareDisk(d: DesiredServer, dir: string): Promise<void> {
    await this.disks.ensure(d.id, dir, diskLimitBytes(d.flavor.disk));
    await fsp.mkdir(join(dir, 'rootfs'), { recursive: true, mode: 0o755 });
    await this.userns.prepare(dir, join(dir, 'upper'), usernsWanted(d.flavor));
  }

  /** Another writable layer of the server (a rescue root's), owned as its upper/ is. */
  async prepareUpper(d: DesiredServer, dir: string, upper: string): Promise<void> {
    await this.userns.prepare(dir, upper, usernsWanted(d.flavor));
  }

  /** The overlay's lower layers for this server (shifted copies in a user namespace); sets its network sysctls. */
  async beforeStart(d: DesiredServer, layerDirs: string[], netnsPath: string): Promise<string[]> {
    if (!usernsWanted(d.flavor)) return layerDirs;
    await this.userns.netnsSysctls(netnsPath);
    return this.userns.lowers(layerDirs);
  }

  async release(id: string): Promise<void> {
    await this.disks.remove(id);
  }

  /** Also at agent start: what a crash or a deleted server left behind. */
  async sweep(): Promise<void> {
    await this.disks.sweep(this.serversDir);
    await this.userns.prune();
  }
}
