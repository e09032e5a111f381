// A server's console log (a file its process appends to with O_APPEND: the
// container's output, a VM's serial port) kept under a cap by the drivers'
// sweeps.
import * as fsp from 'node:fs/promises';

/** Keeps the newest half of a console log that outgrew `cap` bytes, from a line start. */
export async function capConsoleLog(file: string, cap: number): Promise<void> {
  const size = await fsp.stat(file).then((s) => s.size, () => 0);
  if (size <= cap) return;
  const keep = Math.floor(cap / 2);
  const fh = await fsp.open(file, 'r+');
  try {
    const buf = Buffer.alloc(keep);
    const { bytesRead } = await fh.read(buf, 0, keep, size - keep);
    let tail = buf.subarray(0, bytesRead);
    const nl = tail.indexOf(10);
    if (nl >= 0 && nl < tail.length - 1) tail = tail.subarray(nl + 1);
    await fh.truncate(0);
    await fh.write(tail, 0, tail.length, 0);
  } finally {
    await fh.close();
  }
}
