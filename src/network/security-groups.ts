// Security groups and their rules (security-group, stateful-security-group),
// the project's `default` group made on first use with OpenStack's default
// rules, and address groups (address-group,
// security-groups-remote-address-group) that rules may name as their remote.
import { Type, type Static } from 'typebox';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import { ignoreDuplicate } from '../db/unique.ts';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route } from '../http/service.ts';
import type { NetworkContext } from './context.ts';
import { conflict, invalidAttr, NeutronError, notFound } from './errors.ts';
import { formatCidr, parseCidr } from './ipnet.ts';
import type { View } from './list.ts';
import { checkQuota } from './quotas.ts';
import { bool, bumpRevision, createRoute, ifMatchRevision, int, newStandard, projectFor, Resources, standardView, type ResourceDef } from './resource.ts';
import type { NetworkTables } from './schema.ts';

export type GroupRow = NetworkTables['network_security_groups'];
export type RuleRow = NetworkTables['network_security_group_rules'];
export type AddressGroupRow = NetworkTables['network_address_groups'];

/** Protocol names Neutron accepts, with their numbers (neutron_lib/constants.py IP_PROTOCOL_MAP). */
export const PROTOCOLS: Record<string, number> = {
  ah: 51, dccp: 33, egp: 8, esp: 50, gre: 47, hopopt: 0, icmp: 1, igmp: 2, ipip: 4, ipv6_encap: 41, 'ipv6-encap': 41,
  'ipv6-frag': 44, 'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, 'ipv6-route': 43, ospf: 89, pgm: 113,
  rsvp: 46, sctp: 132, tcp: 6, udp: 17, udplite: 136, vrrp: 112,
};
/** Protocols whose rules may carry a port range. */
const WITH_PORTS = new Set(['tcp', 'udp', 'sctp', 'dccp', 'udplite', '6', '17', '132', '33', '136']);
const ICMP = new Set(['icmp', 'icmpv6', 'ipv6-icmp', '1', '58']);

const ruleView = (r: RuleRow): View => ({
  id: r.id, security_group_id: r.security_group_id, direction: r.direction, ethertype: r.ethertype, protocol: r.protocol,
  port_range_min: r.port_range_min, port_range_max: r.port_range_max, remote_ip_prefix: r.remote_ip_prefix,
  normalized_cidr: r.remote_ip_prefix, remote_group_id: r.remote_group_id, remote_address_group_id: r.remote_address_group_id,
  description: r.description, project_id: r.project_id, tenant_id: r.project_id, revision_number: r.revision_number,
  created_at: standardView(r, []).created_at, updated_at: standardView(r, []).updated_at,
});

export function groupDef(ctx: NetworkContext): ResourceDef<GroupRow> {
  const db = ctx.db as unknown as Kysely<any>;
  return {
    kind: 'security_group', table: 'network_security_groups', resource: 'security_group', collection: 'security_groups', path: 'security-groups',
    attrs: { name: 'string', stateful: 'bool', security_group_rules: 'none', shared: 'bool' },
    visible: (q, c) => q.where('network_security_groups.project_id', '=', c.projectId),
    async views(rows) {
      const ids = rows.map((r) => r.id);
      const tags = await new Resources(ctx, this).tags(ids);
      const rules = new Map<string, View[]>(ids.map((id) => [id, []]));
      for (let i = 0; i < ids.length; i += 500) {
        for (const r of await db.selectFrom('network_security_group_rules').selectAll().where('security_group_id', 'in', ids.slice(i, i + 500))
          .orderBy('created_at').orderBy('id').execute() as RuleRow[]) rules.get(r.security_group_id)!.push(ruleView(r));
      }
      return rows.map((r) => ({
        ...standardView(r, tags.get(r.id) ?? []), name: r.name, stateful: bool(r.stateful), shared: false,
        security_group_rules: rules.get(r.id) ?? [],
      }));
    },
  };
}

export function ruleDef(): ResourceDef<RuleRow> {
  return {
    kind: 'security_group_rule', table: 'network_security_group_rules', resource: 'security_group_rule', collection: 'security_group_rules',
    path: 'security-group-rules',
    attrs: {
      security_group_id: 'string', direction: 'string', ethertype: 'string', protocol: 'string', port_range_min: 'int', port_range_max: 'int',
      remote_ip_prefix: 'string', normalized_cidr: 'string', remote_group_id: 'string', remote_address_group_id: 'string',
    },
    visible: (q, c) => q.where((eb) => eb.or([
      eb('network_security_group_rules.project_id', '=', c.projectId),
      eb('network_security_group_rules.security_group_id', 'in', eb.selectFrom('network_security_groups').select('id').where('project_id', '=', c.projectId)),
    ])),
    views: async (rows) => rows.map(ruleView),
  };
}

export function addressGroupDef(ctx: NetworkContext): ResourceDef<AddressGroupRow> {
  return {
    kind: 'address_group', table: 'network_address_groups', resource: 'address_group', collection: 'address_groups', path: 'address-groups',
    attrs: { name: 'string', addresses: 'list' },
    visible: (q, c) => q.where('network_address_groups.project_id', '=', c.projectId),
    async views(rows) {
      const tags = await new Resources(ctx, this).tags(rows.map((r) => r.id));
      return rows.map((r) => ({ ...standardView(r, tags.get(r.id) ?? []), name: r.name, addresses: JSON.parse(r.addresses) }));
    },
  };
}

type NewRule = Omit<RuleRow, 'id' | 'project_id' | 'description' | 'revision_number' | 'created_at' | 'updated_at'>;

/** The default rules of a project's default group: ingress from the group itself, all egress; IPv4 and IPv6. */
const defaultRules = (groupId: string): NewRule[] => (['IPv4', 'IPv6'] as const).flatMap((ethertype) => [
  { security_group_id: groupId, direction: 'ingress', ethertype, protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: groupId, remote_address_group_id: null },
  { security_group_id: groupId, direction: 'egress', ethertype, protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, remote_address_group_id: null },
]);

/**
 * The project's default group, made with its default rules on first use. Two
 * requests making it at once: the project's row in
 * network_default_security_groups lets one of them in, the other's
 * transaction rolls back and it reads the winner's.
 */
export async function ensureDefaultGroup(db: Kysely<any>, projectId: string): Promise<string> {
  const have = async () => (await db.selectFrom('network_default_security_groups').select('security_group_id').where('project_id', '=', projectId).executeTakeFirst())?.security_group_id;
  const existing = await have();
  if (existing) return existing;
  const id = uuid();
  await ignoreDuplicate(db.transaction().execute(async (tx) => {
    await tx.insertInto('network_default_security_groups').values({ project_id: projectId, security_group_id: id }).execute();
    await tx.insertInto('network_security_groups').values({ ...newStandard(id, projectId, 'Default security group'), name: 'default', stateful: 1 }).execute();
    await tx.insertInto('network_security_group_rules').values(defaultRules(id).map((r) => ({ ...newStandard(uuid(), projectId, ''), ...r }))).execute();
  }));
  return (await have())!;
}

const GroupCreate = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })),
  stateful: Type.Optional(Type.Boolean()),
  project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
}, { additionalProperties: false });
const GroupUpdate = Type.Object({
  security_group: Type.Object({
    name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })), stateful: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const Nullable = <T extends import('typebox').TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const RuleCreate = Type.Object({
  security_group_id: Type.String(), direction: Type.Union([Type.Literal('ingress'), Type.Literal('egress')]),
  ethertype: Type.Optional(Type.Union([Type.Literal('IPv4'), Type.Literal('IPv6')])),
  protocol: Nullable(Type.Union([Type.String(), Type.Integer()])),
  port_range_min: Nullable(Type.Union([Type.Integer(), Type.String()])), port_range_max: Nullable(Type.Union([Type.Integer(), Type.String()])),
  remote_ip_prefix: Nullable(Type.String()), remote_group_id: Nullable(Type.String()), remote_address_group_id: Nullable(Type.String()),
  description: Type.Optional(Type.String({ maxLength: 255 })),
  project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
}, { additionalProperties: false });
const AddressGroupCreate = Type.Object({
  address_group: Type.Object({
    name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })),
    addresses: Type.Optional(Type.Array(Type.String())),
    project_id: Type.Optional(Type.String({ maxLength: 255 })), tenant_id: Type.Optional(Type.String({ maxLength: 255 })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const AddressGroupUpdate = Type.Object({
  address_group: Type.Object({ name: Type.Optional(Type.String({ maxLength: 255 })), description: Type.Optional(Type.String({ maxLength: 255 })) }, { additionalProperties: false }),
}, { additionalProperties: false });
const Addresses = Type.Object({ addresses: Type.Array(Type.String()) }, { additionalProperties: false });

function port(v: number | string | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new NeutronError('BadRequest', 'SecurityGroupInvalidPortValue', `Invalid value for port ${v}.`);
  return n;
}

/** A rule as stored: protocol normalised, port range and remote checked (Neutron's errors). */
function normaliseRule(b: Static<typeof RuleCreate>): NewRule {
  const ethertype = b.ethertype ?? 'IPv4';
  let protocol: string | null = b.protocol === undefined || b.protocol === null || b.protocol === '' || b.protocol === 'any' ? null : String(b.protocol).toLowerCase();
  if (protocol !== null) {
    if (/^\d+$/.test(protocol)) {
      if (Number(protocol) > 255) throw new NeutronError('BadRequest', 'SecurityGroupRuleInvalidProtocol', `Security group rule protocol ${b.protocol} not supported. Only protocol values [${Object.keys(PROTOCOLS).join(', ')}] and integer representations [0 to 255] are supported.`);
      protocol = String(Number(protocol));
    } else if (!(protocol in PROTOCOLS)) {
      throw new NeutronError('BadRequest', 'SecurityGroupRuleInvalidProtocol', `Security group rule protocol ${b.protocol} not supported. Only protocol values [${Object.keys(PROTOCOLS).join(', ')}] and integer representations [0 to 255] are supported.`);
    }
  }
  if (ethertype === 'IPv4' && protocol !== null && ['ipv6-icmp', 'icmpv6', '58'].includes(protocol)) {
    throw new NeutronError('BadRequest', 'SecurityGroupEthertypeConflictWithProtocol', `Invalid ethertype ${ethertype} for protocol ${protocol}.`);
  }
  const min = port(b.port_range_min);
  let max = port(b.port_range_max);
  if ((min !== null || max !== null) && protocol === null) {
    throw new NeutronError('BadRequest', 'SecurityGroupProtocolRequiredWithPorts', 'Must also specify protocol if port range is given.');
  }
  if (protocol !== null && WITH_PORTS.has(protocol)) {
    // a maximum without a minimum is an empty range to Neutron; a minimum alone is one port
    if (min === null && max !== null) throw new NeutronError('BadRequest', 'SecurityGroupInvalidPortRange', 'For TCP/UDP protocols, port_range_min must be <= port_range_max');
    if (max === null && min !== null) max = min;
    if (min === 0 || max === 0) throw new NeutronError('BadRequest', 'SecurityGroupInvalidPortValue', 'Invalid value for port 0.');
    if (min !== null && max !== null && min > max) {
      throw new NeutronError('BadRequest', 'SecurityGroupInvalidPortRange', 'For TCP/UDP protocols, port_range_min must be <= port_range_max');
    }
  } else if (protocol !== null && ICMP.has(protocol)) {
    if (min === null && max !== null) throw new NeutronError('BadRequest', 'SecurityGroupMissingIcmpType', `ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`);
    for (const [attr, v] of [['type', min], ['code', max]] as const) {
      if (v !== null && v > 255) throw new NeutronError('BadRequest', 'SecurityGroupInvalidIcmpValue', `Invalid value for ICMP ${attr} (port-range-${attr === 'type' ? 'min' : 'max'}): ${v}. It must be 0 to 255.`);
    }
  } else if (min !== null || max !== null) {
    throw new NeutronError('BadRequest', 'SecurityGroupInvalidProtocolForPort', `Invalid protocol ${protocol} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP protocols.`);
  }
  const remotes = [b.remote_ip_prefix, b.remote_group_id, b.remote_address_group_id].filter((r) => r !== undefined && r !== null);
  if (remotes.length > 1) {
    throw new NeutronError('BadRequest', 'SecurityGroupMultipleRemoteEntites', 'Only one of remote_ip_prefix, remote_group_id, and remote_address_group_id may be provided.');
  }
  let prefix: string | null = null;
  if (b.remote_ip_prefix !== undefined && b.remote_ip_prefix !== null) {
    const c = parseCidr(b.remote_ip_prefix.includes('/') ? b.remote_ip_prefix : `${b.remote_ip_prefix}/${b.remote_ip_prefix.includes(':') ? 128 : 32}`, false);
    if (!c) throw invalidAttr('remote_ip_prefix', `'${b.remote_ip_prefix}' is not a valid IP subnet`);
    if ((c.version === 4) !== (ethertype === 'IPv4')) {
      throw new NeutronError('BadRequest', 'SecurityGroupRuleParameterConflict', `Conflicting value ethertype ${ethertype} for CIDR ${b.remote_ip_prefix}`);
    }
    prefix = formatCidr(c);
  }
  return {
    security_group_id: b.security_group_id, direction: b.direction, ethertype, protocol, port_range_min: min, port_range_max: max,
    remote_ip_prefix: prefix, remote_group_id: b.remote_group_id ?? null, remote_address_group_id: b.remote_address_group_id ?? null,
  };
}

function normaliseAddresses(list: string[]): string[] {
  return [...new Set(list.map((a) => {
    const c = parseCidr(a.includes('/') ? a : `${a}/${a.includes(':') ? 128 : 32}`, false);
    if (!c) throw invalidAttr('addresses', `'${a}' is not a valid IP subnet`);
    return formatCidr(c);
  }))];
}

export function securityGroupRoutes(ctx: NetworkContext, groups: Resources<GroupRow>, rules: Resources<RuleRow>, addressGroups: Resources<AddressGroupRow>): Route[] {
  const db = ctx.db as unknown as Kysely<any>;
  const ensureOwn = async (cred: Credentials) => { if (cred.projectId) await ensureDefaultGroup(db, cred.projectId); };
  const [listGroups, ...groupRest] = groups.routes();
  return [
    // listing one's groups makes the default group first, as in Neutron
    { ...listGroups!, handler: async (rc) => { await ensureOwn(rc.cred!); return listGroups!.handler(rc); } },
    ...groupRest,
    ...rules.routes().filter((r) => !r.path.includes('/tags')),
    ...addressGroups.routes(),
    createRoute({
      def: groups.def, rule: 'create_security_group', item: GroupCreate, view: (cred, id) => groups.view(cred, id),
      undo: (id) => db.transaction().execute(async (tx) => {
        await tx.deleteFrom('network_security_group_rules').where('security_group_id', '=', id).execute();
        await tx.deleteFrom('network_security_groups').where('id', '=', id).execute();
      }),
      async create(rc, b) {
        const cred = rc.cred!;
        const projectId = projectFor(cred, b, 'create_security_group');
        if (b.name === 'default') throw conflict('SecurityGroupDefaultAlreadyExists', 'Default security group already exists.');
        await ensureDefaultGroup(db, projectId);
        const id = uuid();
        await db.transaction().execute(async (tx) => {
          await checkQuota(tx, projectId, 'security_group');
          await tx.insertInto('network_security_groups').values({ ...newStandard(id, projectId, b.description), name: b.name ?? '', stateful: int(b.stateful ?? true) }).execute();
          // a new group lets everything out, as Neutron's does
          await tx.insertInto('network_security_group_rules').values((['IPv4', 'IPv6'] as const).map((ethertype) => ({
            ...newStandard(uuid(), projectId, ''), security_group_id: id, direction: 'egress', ethertype, protocol: null,
            port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, remote_address_group_id: null,
          }))).execute();
        });
        return id;
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/security-groups/:id', rule: 'update_security_group', schema: { body: GroupUpdate },
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.security_group;
        const id = rc.params.id!;
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await groups.findOwn(cred, id, 'update_security_group', tx);
          if (row.name === 'default' && b.name !== undefined && b.name !== 'default') {
            throw new NeutronError('BadRequest', 'SecurityGroupCannotUpdateDefault', 'Updating default security group not allowed.');
          }
          if (row.name !== 'default' && b.name === 'default') throw conflict('SecurityGroupDefaultAlreadyExists', 'Default security group already exists.');
          if (b.stateful !== undefined && int(b.stateful) !== row.stateful
            && await tx.selectFrom('network_port_security_groups').select('port_id').where('security_group_id', '=', id).executeTakeFirst()) {
            throw conflict('SecurityGroupInUse', `Security Group ${id} in use.`);
          }
          await bumpRevision(tx, 'network_security_groups', id, expected, 'security_group');
          const set: Partial<GroupRow> = {};
          if (b.name !== undefined) set.name = b.name;
          if (b.description !== undefined) set.description = b.description;
          if (b.stateful !== undefined) set.stateful = int(b.stateful);
          if (Object.keys(set).length) await tx.updateTable('network_security_groups').set(set).where('id', '=', id).execute();
        });
        return { security_group: await groups.view(cred, id) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/security-groups/:id', rule: 'delete_security_group', status: 204,
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          const row = await groups.findOwn(cred, id, 'delete_security_group', tx);
          await bumpRevision(tx, 'network_security_groups', id, expected, 'security_group');
          const isDefault = await tx.selectFrom('network_default_security_groups').select('project_id').where('security_group_id', '=', id).executeTakeFirst();
          if (isDefault && !isAdmin(cred)) throw conflict('SecurityGroupCannotRemoveDefault', 'Insufficient rights for removing default security group.');
          if (await tx.selectFrom('network_port_security_groups').select('port_id').where('security_group_id', '=', id).executeTakeFirst()) {
            throw conflict('SecurityGroupInUse', `Security Group ${id} in use.`);
          }
          const gone = await tx.selectFrom('network_security_group_rules').select('id').where((eb) => eb.or([eb('security_group_id', '=', id), eb('remote_group_id', '=', id)])).execute();
          if (gone.length) await tx.deleteFrom('network_security_group_rules').where('id', 'in', gone.map((g) => g.id)).execute();
          await tx.deleteFrom('network_tags').where('resource_type', '=', 'security_groups').where('resource_id', '=', id).execute();
          await tx.deleteFrom('network_default_security_groups').where('security_group_id', '=', id).execute();
          await tx.deleteFrom('network_security_groups').where('id', '=', id).execute();
          void row;
        });
      },
    }),
    createRoute({
      def: rules.def, rule: 'create_security_group_rule', item: RuleCreate, view: (cred, id) => rules.view(cred, id),
      undo: (id) => db.deleteFrom('network_security_group_rules').where('id', '=', id).execute(),
      async create(rc, b) {
        const cred = rc.cred!;
        const rule = normaliseRule(b);
        const id = uuid();
        await db.transaction().execute(async (tx) => {
          const group = await groups.find(cred, b.security_group_id, tx);
          const projectId = b.project_id || b.tenant_id ? projectFor(cred, b, 'create_security_group_rule') : group.project_id;
          if (rule.remote_group_id) await groups.find(cred, rule.remote_group_id, tx);
          if (rule.remote_address_group_id) await addressGroups.find(cred, rule.remote_address_group_id, tx);
          await checkQuota(tx, projectId, 'security_group_rule');
          await bumpRevision(tx, 'network_security_groups', group.id, null, 'security_group');
          const same = await tx.selectFrom('network_security_group_rules').selectAll().where('security_group_id', '=', group.id).execute() as RuleRow[];
          const dup = same.find((r) => (Object.keys(rule) as Array<keyof NewRule>).every((k) => r[k] === rule[k]));
          if (dup) throw conflict('SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${dup.id}.`);
          await tx.insertInto('network_security_group_rules').values({ ...newStandard(id, projectId, b.description), ...rule }).execute();
        });
        return id;
      },
    }),
    route({
      method: 'DELETE', path: '/v2.0/security-group-rules/:id', rule: 'delete_security_group_rule', status: 204,
      async handler(rc) {
        const cred = rc.cred!;
        await db.transaction().execute(async (tx) => {
          const row = await rules.find(cred, rc.params.id!, tx);
          const group = await tx.selectFrom('network_security_groups').select('project_id').where('id', '=', row.security_group_id).executeTakeFirst();
          if (!isAdmin(cred) && group?.project_id !== cred.projectId && row.project_id !== cred.projectId) throw notFound.security_group_rule(row.id);
          await bumpRevision(tx, 'network_security_groups', row.security_group_id, null, 'security_group');
          await tx.deleteFrom('network_security_group_rules').where('id', '=', row.id).execute();
        });
      },
    }),
    route({
      method: 'POST', path: '/v2.0/address-groups', rule: 'create_address_group', schema: { body: AddressGroupCreate }, status: 201,
      async handler(rc) {
        const cred = rc.cred!;
        const b = rc.body.address_group;
        const projectId = projectFor(cred, b, 'create_address_group');
        const id = uuid();
        await db.insertInto('network_address_groups').values({
          ...newStandard(id, projectId, b.description), name: b.name ?? '', addresses: JSON.stringify(normaliseAddresses(b.addresses ?? [])),
        }).execute();
        return { address_group: await addressGroups.view(cred, id) };
      },
    }),
    route({
      method: 'PUT', path: '/v2.0/address-groups/:id', rule: 'update_address_group', schema: { body: AddressGroupUpdate },
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        const expected = ifMatchRevision(rc);
        await db.transaction().execute(async (tx) => {
          await addressGroups.findOwn(cred, id, 'update_address_group', tx);
          await bumpRevision(tx, 'network_address_groups', id, expected, 'address_group');
          const set: Partial<AddressGroupRow> = {};
          if (rc.body.address_group.name !== undefined) set.name = rc.body.address_group.name;
          if (rc.body.address_group.description !== undefined) set.description = rc.body.address_group.description;
          if (Object.keys(set).length) await tx.updateTable('network_address_groups').set(set).where('id', '=', id).execute();
        });
        return { address_group: await addressGroups.view(cred, id) };
      },
    }),
    ...(['add_addresses', 'remove_addresses'] as const).map((action) => route({
      method: 'PUT', path: `/v2.0/address-groups/:id/${action}`, rule: 'update_address_group', schema: { body: Addresses },
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        const given = normaliseAddresses(rc.body.addresses);
        await db.transaction().execute(async (tx) => {
          const row = await addressGroups.findOwn(cred, id, 'update_address_group', tx);
          const now: string[] = JSON.parse(row.addresses);
          let next: string[];
          if (action === 'add_addresses') next = [...new Set([...now, ...given])];
          else {
            const missing = given.filter((a) => !now.includes(a));
            if (missing.length) throw new NeutronError('NotFound', 'AddressesNotFound', `Addresses ${missing.join(', ')} not found in the address group ${id}.`);
            next = now.filter((a) => !given.includes(a));
          }
          await bumpRevision(tx, 'network_address_groups', id, null, 'address_group');
          await tx.updateTable('network_address_groups').set({ addresses: JSON.stringify(next) }).where('id', '=', id).execute();
        });
        return { address_group: await addressGroups.view(cred, id) };
      },
    })),
    route({
      method: 'DELETE', path: '/v2.0/address-groups/:id', rule: 'delete_address_group', status: 204,
      async handler(rc) {
        const cred = rc.cred!;
        const id = rc.params.id!;
        await db.transaction().execute(async (tx) => {
          await addressGroups.findOwn(cred, id, 'delete_address_group', tx);
          if (await tx.selectFrom('network_security_group_rules').select('id').where('remote_address_group_id', '=', id).executeTakeFirst()) {
            throw conflict('AddressGroupInUse', `Address group ${id} is in use on one or more security group rules.`);
          }
          await tx.deleteFrom('network_tags').where('resource_type', '=', 'address_groups').where('resource_id', '=', id).execute();
          await tx.deleteFrom('network_address_groups').where('id', '=', id).execute();
        });
      },
    }),
  ];
}

