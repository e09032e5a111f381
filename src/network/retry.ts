// Transactions that claim a unique thing (a VNI, an IP address, a MAC) pick a
// free one and insert it; the database's unique constraint refuses a value a
// concurrent transaction took first. Such a transaction is run again from the
// start, with what the other one committed now in sight. So is one PostgreSQL
// chose as a deadlock victim (two ports locking the same subnets in another
// order) or could not serialise.
import { conflictOnDuplicate } from '../db/unique.ts';
import { ApiError } from '../common/errors.ts';

class Collided extends ApiError {
  constructor() {
    super('Conflict', 'a concurrent claim took the same value');
  }
}

/** PostgreSQL's deadlock_detected and serialization_failure. */
const isRetryable = (e: unknown): boolean => ['40P01', '40001'].includes((e as { code?: string })?.code ?? '');

/** Runs `attempt` until it commits without a collision (or `tries` run out: `exhausted()`). */
export async function retryOnCollision<T>(attempt: () => Promise<T>, exhausted: () => ApiError, tries = 25): Promise<T> {
  for (let i = 0; i < tries; i++) {
    try {
      return await conflictOnDuplicate(attempt(), () => new Collided());
    } catch (e) {
      if (!(e instanceof Collided) && !isRetryable(e)) throw e;
      // a little jitter so colliding twins do not collide again in lockstep
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5 * (i + 1))));
    }
  }
  throw exhausted();
}
