// Random bytes for per-request values on hot paths (token IVs, audit ids),
// served from a pool filled by the CSPRNG: one randomBytes call per token
// showed in profiles. Every byte is handed out once.
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

/** `n` fresh random bytes (n <= 4096), copied out of the pool. */
export function pooledRandomBytes(n: number): Buffer {
  if (n > POOL_SIZE) throw new RangeError(`pooledRandomBytes: ${n} > ${POOL_SIZE}`);
  if (offset + n > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + n));
  offset += n;
  return out;
}
