// OpenStack microversions, shared by the services that have them (compute,
// placement, volume): the `OpenStack-API-Version: <service> X.Y` header read
// as microversion_parse reads it, the X.Y value compared, and a request's
// version negotiated against the range a service serves. What a service
// answers for a malformed or unserved version is its own (each has its own
// error body and words), so `negotiate` says which case it is and the
// service throws.
import type { FastifyRequest } from 'fastify';

/** A microversion X.Y (no leading zeros, as every service's parser has it); `ge`/`lt` compare it with 'X.Y' strings. */
export class Microversion {
  readonly major: number;
  readonly minor: number;
  constructor(major: number, minor: number) {
    this.major = major;
    this.minor = minor;
  }
  static parse(s: string): Microversion | null {
    const m = /^([1-9]\d*)\.([1-9]\d*|0)$/.exec(s.trim());
    return m ? new Microversion(Number(m[1]), Number(m[2])) : null;
  }
  /** A version the code names (a constant): a bad one is a programming error. */
  static of(s: string): Microversion {
    const v = Microversion.parse(s);
    if (!v) throw new Error(`bad version ${s}`);
    return v;
  }
  cmp(other: Microversion | string): number {
    const o = typeof other === 'string' ? Microversion.of(other) : other;
    return this.major === o.major ? this.minor - o.minor : this.major - o.major;
  }
  /** True when this version is at least `v`. */
  ge(v: Microversion | string): boolean {
    return this.cmp(v) >= 0;
  }
  lt(v: Microversion | string): boolean {
    return this.cmp(v) < 0;
  }
  toString(): string {
    return `${this.major}.${this.minor}`;
  }
}

/** The version a request asks of `service` in `OpenStack-API-Version` (null when none). */
export function askedVersion(req: FastifyRequest, service: string): string | null {
  const h = req.headers['openstack-api-version'];
  if (h === undefined) return null;
  for (const part of (Array.isArray(h) ? h.join(',') : h).split(',')) {
    const [name, ...rest] = part.trim().split(/\s+/);
    if (name?.toLowerCase() === service && rest.length) return rest.join(' ');
  }
  return null;
}

export type Negotiated =
  | { ok: Microversion }
  | { malformed: string }
  | { unserved: string };

/** The version to serve: the lowest when none is asked, the highest for `latest`. */
export function negotiate(asked: string | null, min: string, max: string): Negotiated {
  if (asked === null) return { ok: Microversion.of(min) };
  if (asked.trim().toLowerCase() === 'latest') return { ok: Microversion.of(max) };
  const v = Microversion.parse(asked);
  if (!v) return { malformed: asked };
  if (v.lt(min) || v.cmp(max) > 0) return { unserved: asked };
  return { ok: v };
}

/** True when `v` is outside a route's own microversion range (the route then answers 404). */
export function outsideRange(v: Microversion, range?: { min?: string; max?: string }): boolean {
  return !!range && ((!!range.min && v.lt(range.min)) || (!!range.max && v.cmp(range.max) > 0));
}
