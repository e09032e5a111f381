// A writer of the "newc" cpio format (SVR4 with no CRC), the format the Linux
// kernel unpacks as an initramfs. Writing it here means the guest's device
// nodes (/dev/console) and root-owned files need no root and no cpio binary.
//
// Each entry: the magic `070701`, thirteen 8-digit hex fields (ino, mode, uid,
// gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
// namesize with its NUL, check), the name and its NUL padded to 4 bytes, then
// the data padded to 4 bytes; the archive ends with the entry `TRAILER!!!`.

export type CpioEntry =
  | { name: string; type: 'dir'; mode?: number }
  | { name: string; type: 'file'; mode?: number; data: Buffer | string }
  | { name: string; type: 'symlink'; target: string }
  | { name: string; type: 'char' | 'block'; mode?: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(f: { ino: number; mode: number; nlink: number; size: number; rmajor?: number; rminor?: number; namesize: number }): Buffer {
  const fields = [f.ino, f.mode, 0, 0, f.nlink, 0, f.size, 0, 0, f.rmajor ?? 0, f.rminor ?? 0, f.namesize, 0];
  return Buffer.from(`070701${fields.map((v) => v.toString(16).padStart(8, '0')).join('')}`, 'latin1');
}

/** Normalises an entry name: no leading `/` or `./`, no empty, `.` or `..` component. */
export function cpioName(name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..')) throw new Error(`bad cpio entry name: ${JSON.stringify(name)}`);
  return parts.join('/');
}

/**
 * The archive of these entries (owned by root, mtime 0), in the order given;
 * a name given twice is an error. Parent directories must come before their
 * entries for the kernel (it does not make missing parents).
 */
export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  const seen = new Set<string>();
  let ino = 1;
  const push = (name: string, mode: number, nlink: number, data: Buffer, rmajor?: number, rminor?: number) => {
    const nameBuf = Buffer.from(`${name}\0`, 'utf8');
    chunks.push(header({ ino: name === 'TRAILER!!!' ? 0 : ino++, mode, nlink, size: data.length, rmajor, rminor, namesize: nameBuf.length }));
    chunks.push(nameBuf, Buffer.alloc(pad4(110 + nameBuf.length)));
    if (data.length) chunks.push(data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const name = cpioName(e.name);
    if (seen.has(name)) throw new Error(`cpio entry given twice: ${name}`);
    seen.add(name);
    switch (e.type) {
      case 'dir': push(name, S_IFDIR | (e.mode ?? 0o755), 2, Buffer.alloc(0)); break;
      case 'file': push(name, S_IFREG | (e.mode ?? 0o644), 1, typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data); break;
      case 'symlink': push(name, S_IFLNK | 0o777, 1, Buffer.from(e.target, 'utf8')); break;
      case 'char': push(name, S_IFCHR | (e.mode ?? 0o600), 1, Buffer.alloc(0), e.major, e.minor); break;
      case 'block': push(name, S_IFBLK | (e.mode ?? 0o600), 1, Buffer.alloc(0), e.major, e.minor); break;
    }
  }
  push('TRAILER!!!', 0, 1, Buffer.alloc(0));
  return Buffer.concat(chunks);
}
