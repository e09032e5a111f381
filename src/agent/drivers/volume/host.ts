// What the volume backend and the server drivers' attachments share on one
// host: where the agent's file backend keeps its pool, and one lock per
// volume (by id) that every call touching a volume's file holds, whichever
// driver makes it: the backend's create, extend, snapshot, delete... and an
// attachment's device being made or released (volume-attach.ts). So a qcow2
// snapshot, which refuses a volume a storage daemon holds open and otherwise
// renames its file, never runs while an attach is starting that daemon.
import { join } from 'node:path';
import { KeyedLock } from '../../../common/keyed-lock.ts';

/** The file backend's directory under the agent's state directory (the only place attachments are taken from). */
export const volumeDirOf = (stateDir: string): string => join(stateDir, 'volumes');

/** One lock per volume id for the whole agent process; ALL_KEYS for the backend's pool-wide scans. */
export const volumeLocks = new KeyedLock();
