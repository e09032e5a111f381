// Subnet pools (subnet_allocation, default-subnetpools): prefixes a subnet
// takes its CIDR from by prefix length. Allocation bumps the pool's
// ipam_generation first, which serialises allocators of one pool (the row
// lock on PostgreSQL, the write lock on SQLite), then takes the lowest
// aligned block no subnet of the pool overlaps.
import { Type } from 'typebox';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import type { Credentials } from '../http/auth.ts';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { badRequest, conflict, invalidAttr, NeutronError } from './errors.ts';
import { cidrRange, formatCidr, parseCidr, rangesOverlap, type Cidr } from './ipnet.ts';
import { adminOnly } from './policy.ts';
import { checkQuota } from './quotas.ts';
import { bool, bumpRevision, ifMatchRevision, int, newStandard, projectFor, Resources, standardView, type ResourceDef } from './resource.ts';
import type { NetworkTables } from './schema.ts';

export type PoolRow = NetworkTables['network_subnetpools'];

const Len = Type.Integer({ minimum: 0, maximum: 128 });
const Mutable = {
  name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })),
  prefixes: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
  default_prefixlen: Type.Optional(Len), min_prefixlen: Type.Optional(Len), max_prefixlen: Type.Optional(Len),
  is_default: Type.Optional(Type.Boolean()), default_quota: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
};
const CreateBody = Type.Object({
  subnetpool: Type.Object({
    ...Mutable, prefixes: Type.Array(Type.String(), { minItems: 1 }), shared: Type.Optional(Type.Boolean()),
    address_scope_id: Type.Optional(Type.Null()),
    project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const UpdateBody = Type.Object({ subnetpool: Type.Object(Mutable, { additionalProperties: false }) }, { additionalProperties: false });

const bitsOf = (v: number) => (v === 4 ? 32 : 128);

export function subnetPoolDef(ctx: NetworkContext): ResourceDef<PoolRow> {
  return {
    kind: 'subnetpool', table: 'network_subnetpools', resource: 'subnetpool', collection: 'subnetpools',
    attrs: {
      name: 'string', ip_version: 'int', prefixes: 'list', default_prefixlen: 'int', min_prefixlen: 'int', max_prefixlen: 'int',
      shared: 'bool', is_default: 'bool', default_quota: 'int', address_scope_id: 'string',
    },
    visible: (q, c) => q.where((eb) => eb.or([eb('network_subnetpools.project_id', '=', c.projectId), eb('network_subnetpools.shared', '=', 1)])),
    async views(rows) {
      const tags = await new Resources(ctx, this).tags(rows.map((r) => r.id));
      return rows.map((r) => ({
        ...standardView(r, tags.get(r.id) ?? []), name: r.name, ip_version: r.ip_version, prefixes: JSON.parse(r.prefixes),
        default_prefixlen: r.default_prefixlen, min_prefixlen: r.min_prefixlen, max_prefixlen: r.max_prefixlen,
        shared: bool(r.shared), is_default: bool(r.is_default), default_quota: r.default_quota, address_scope_id: null,
      }));
    },
  };
}

/** Prefixes as canonical CIDRs of one version, sorted; Neutron's errors otherwise. */
function checkPrefixes(prefixes: string[]): { version: 4 | 6; cidrs: Cidr[] } {
  const cidrs = prefixes.map((p) => {
    const c = parseCidr(p, false);
    if (!c) throw invalidAttr('prefixes', `'${p}' is not a valid IP subnet`);
    return parseCidr(formatCidr(c))!;
  });
  const version = cidrs[0]!.version;
  if (cidrs.some((c) => c.version !== version)) throw new NeutronError('BadRequest', 'PrefixVersionMismatch', 'Cannot mix IPv4 and IPv6 prefixes in a subnet pool.');
  const unique = [...new Map(cidrs.map((c) => [formatCidr(c), c])).values()].sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : a.prefix - b.prefix));
  return { version, cidrs: unique };
}

function checkBounds(version: number, min: number, max: number, def: number): void {
  const bits = bitsOf(version);
  const bad = (type: string, len: number, base: string, baseLen: number) =>
    new NeutronError('BadRequest', 'IllegalSubnetPoolPrefixBounds', `Illegal prefix bounds: ${type}=${len}, ${base}=${baseLen}.`);
  if (max > bits) throw bad('max_prefixlen', max, 'ip_version_max', bits);
  if (min > max) throw bad('min_prefixlen', min, 'max_prefixlen', max);
  if (def < min) throw bad('default_prefixlen', def, 'min_prefixlen', min);
  if (def > max) throw bad('default_prefixlen', def, 'max_prefixlen', max);
}

export interface SubnetPools {
  /** The pool a subnet names (or the default pool of its version), visible to the caller. */
  forSubnet(tx: Kysely<any>, cred: Credentials, id: string | null, ipVersion: number): Promise<PoolRow>;
  /** A CIDR from the pool: the given one checked, or the lowest free block of `prefixlen` (the pool's default). */
  allocate(tx: Kysely<any>, pool: PoolRow, given: Cidr | null, prefixlen: number | undefined): Promise<Cidr>;
}

export function subnetPools(ctx: NetworkContext, resources: Resources<PoolRow>): SubnetPools {
  return {
    async forSubnet(tx, cred, id, ipVersion) {
      let pool: PoolRow | undefined;
      if (id !== null) pool = await resources.find(cred, id, tx);
      else {
        pool = await tx.selectFrom('network_subnetpools').selectAll().where('is_default', '=', 1).where('ip_version', '=', ipVersion).executeTakeFirst() as PoolRow | undefined;
        if (!pool) throw badRequest(`No default subnetpool found for IPv${ipVersion}`);
      }
      if (pool.ip_version !== ipVersion) throw badRequest(`Cannot allocate IPv${ipVersion} subnet from IPv${pool.ip_version} subnet pool`);
      return pool;
    },
    async allocate(tx, pool, given, prefixlen) {
      await tx.updateTable('network_subnetpools').set((eb: any) => ({ ipam_generation: eb('ipam_generation', '+', 1) })).where('id', '=', pool.id).execute();
      const prefixes = (JSON.parse(pool.prefixes) as string[]).map((p) => parseCidr(p)!);
      const used = (await tx.selectFrom('network_subnets').select('cidr').where('subnetpool_id', '=', pool.id).execute()).map((s) => cidrRange(parseCidr(s.cidr)!));
      const len = given?.prefix ?? prefixlen ?? pool.default_prefixlen;
      if (len < pool.min_prefixlen) {
        throw new NeutronError('BadRequest', 'MinPrefixSubnetAllocationError', `Unable to allocate subnet with prefix length ${len}, minimum allowed prefix is ${pool.min_prefixlen}.`);
      }
      if (len > pool.max_prefixlen) {
        throw new NeutronError('BadRequest', 'MaxPrefixSubnetAllocationError', `Unable to allocate subnet with prefix length ${len}, maximum allowed prefix is ${pool.max_prefixlen}.`);
      }
      const failed = (reason: string) => new NeutronError('Conflict', 'SubnetAllocationError', `Failed to allocate subnet: ${reason}.`);
      if (given) {
        const r = cidrRange(given);
        if (!prefixes.some((p) => { const pr = cidrRange(p); return r.first >= pr.first && r.last <= pr.last; })) {
          throw failed(`Cidr ${formatCidr(given)} is not within any prefix of the subnet pool`);
        }
        if (used.some((u) => rangesOverlap(u, r))) throw failed(`Cidr ${formatCidr(given)} overlaps with another subnet of the pool`);
        return given;
      }
      const size = 1n << BigInt(bitsOf(pool.ip_version) - len);
      for (const p of prefixes.filter((x) => x.prefix <= len)) {
        const pr = cidrRange(p);
        let at = pr.first;
        while (at + size - 1n <= pr.last) {
          const block = { first: at, last: at + size - 1n };
          const clash = used.find((u) => rangesOverlap(u, block));
          if (!clash) return { version: pool.ip_version as 4 | 6, network: at, prefix: len };
          // past the clash, aligned up to the block size
          at = ((clash.last + 1n + size - 1n) / size) * size;
        }
      }
      throw failed(`Insufficient prefix space to allocate subnet size /${len}`);
    },
  };
}

export function subnetPoolRoutes(ctx: NetworkContext, pools: Resources<PoolRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  /** One default pool per IP version: setting a new one is refused while another is (Neutron's DefaultSubnetPoolExists). */
  const checkDefault = async (tx: Kysely<any>, version: number, except: string) => {
    const other = await tx.selectFrom('network_subnetpools').select('id').where('is_default', '=', 1).where('ip_version', '=', version).where('id', '!=', except).executeTakeFirst();
    if (other) throw conflict('DefaultSubnetPoolExists', `A default subnetpool for this IP family has already been set. Only one default may exist per IP family`);
  };
  return [
    ...pools.routes(),
    route({
      method: 'POST', path: '/v2.0/subnetpools', rule: 'create_subnetpool', schema: { body: CreateBody }, status: 201,
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.subnetpool;
        adminOnly(cred, 'create_subnetpool', b, ['shared', 'is_default']);
        const projectId = projectFor(cred, b, 'create_subnetpool');
        const { version, cidrs } = checkPrefixes(b.prefixes);
        const min = b.min_prefixlen ?? (version === 4 ? 8 : 64);
        const max = b.max_prefixlen ?? bitsOf(version);
        const def = b.default_prefixlen ?? min;
        checkBounds(version, min, max, def);
        const id = uuid();
        await db.transaction().execute(async (tx) => {
          await checkQuota(tx, projectId, 'subnetpool');
          if (b.is_default) await checkDefault(tx, version, id);
          await tx.insertInto('network_subnetpools').values({
            ...newStandard(id, projectId, b.description), name: b.name ?? '', ip_version: version, prefixes: JSON.stringify(cidrs.map(formatCidr)),
            default_prefixlen: def, min_prefixlen: min, max_prefixlen: max, shared: int(b.shared ?? false), is_default: int(b.is_default ?? false),
            default_quota: b.default_quota ?? null, ipam_generation: 0,
          }).execute();
        });
        return { subnetpool: await pools.view(cred, id) };
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/subnetpools/:id', rule: 'update_subnetpool', schema: { body: UpdateBody },
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.subnetpool;
        const id = rc.params.id!;
        adminOnly(cred, 'update_subnetpool', b, ['is_default']);
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await pools.findOwn(cred, id, 'update_subnetpool', tx);
          let cidrs = (JSON.parse(row.prefixes) as string[]).map((p) => parseCidr(p)!);
          if (b.prefixes !== undefined) {
            const next = checkPrefixes(b.prefixes);
            if (next.version !== row.ip_version) throw new NeutronError('BadRequest', 'PrefixVersionMismatch', 'Cannot mix IPv4 and IPv6 prefixes in a subnet pool.');
            // prefixes only grow: each old one must lie within a new one
            const lost = cidrs.find((o) => !next.cidrs.some((n) => { const a = cidrRange(o), c = cidrRange(n); return a.first >= c.first && a.last <= c.last; }));
            if (lost) throw new NeutronError('BadRequest', 'IllegalSubnetPoolPrefixUpdate', `Illegal update to prefixes: ${formatCidr(lost)} in the subnet pool would be lost.`);
            cidrs = next.cidrs;
          }
          const min = b.min_prefixlen ?? row.min_prefixlen;
          const max = b.max_prefixlen ?? row.max_prefixlen;
          const def = b.default_prefixlen ?? row.default_prefixlen;
          checkBounds(row.ip_version, min, max, def);
          if (b.is_default) await checkDefault(tx, row.ip_version, id);
          await bumpRevision(tx, 'network_subnetpools', id, expected, 'subnetpool');
          const set: Partial<PoolRow> = { prefixes: JSON.stringify(cidrs.map(formatCidr)), min_prefixlen: min, max_prefixlen: max, default_prefixlen: def };
          if (b.name !== undefined) set.name = b.name;
          if (b.description !== undefined) set.description = b.description;
          if (b.is_default !== undefined) set.is_default = int(b.is_default);
          if (b.default_quota !== undefined) set.default_quota = b.default_quota;
          await tx.updateTable('network_subnetpools').set(set).where('id', '=', id).execute();
        });
        return { subnetpool: await pools.view(cred, id) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/subnetpools/:id', rule: 'delete_subnetpool', status: 204,
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        await db.transaction().execute(async (tx) => {
          const row = await pools.findOwn(cred, id, 'delete_subnetpool', tx);
          await bumpRevision(tx, 'network_subnetpools', id, ifMatchRevision(rc), 'subnetpool');
          if (await tx.selectFrom('network_subnets').select('id').where('subnetpool_id', '=', id).executeTakeFirst()) {
            throw conflict('SubnetPoolInUse', `Subnet pool ${id} cannot be deleted as it is in use by: subnets`);
          }
          await tx.deleteFrom('network_tags').where('resource_type', '=', 'subnetpools').where('resource_id', '=', id).execute();
          await tx.deleteFrom('network_subnetpools').where('id', '=', row.id).execute();
        });
      },
    }),
  ];
}

