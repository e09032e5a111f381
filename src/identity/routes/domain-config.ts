// /v3/domains/{id}/config: domain-specific identity configuration, as Keystone
// keeps it for domains backed by their own (e.g. LDAP) identity driver. Only
// the identity and ldap groups and Keystone's whitelisted options are accepted;
// sensitive options are stored but never returned.
import { Type } from 'typebox';
import { badRequest, forbidden, notFound } from '../../common/errors.ts';
import { type Route, route } from '../../http/service.ts';
import type { IdentityContext } from '../context.ts';
import { getDomain, mustGet } from '../lookup.ts';

type Config = Record<string, Record<string, unknown>>;

const DEFAULTS: Config = {
  identity: { driver: 'sql', list_limit: null },
  ldap: {
    url: 'ldap://localhost', user: null, suffix: 'cn=example,cn=com', query_scope: 'one', page_size: 0,
    alias_dereferencing: 'default', debug_level: null, chase_referrals: null,
    user_tree_dn: null, user_filter: null, user_objectclass: 'inetOrgPerson', user_id_attribute: 'cn',
    user_name_attribute: 'sn', user_description_attribute: 'description', user_mail_attribute: 'mail',
    user_pass_attribute: 'userPassword', user_enabled_attribute: 'enabled', user_enabled_invert: false,
    user_enabled_mask: 0, user_enabled_default: 'True', user_attribute_ignore: ['default_project_id'],
    user_default_project_id_attribute: null, user_enabled_emulation: false, user_enabled_emulation_dn: null,
    user_additional_attribute_mapping: [], group_tree_dn: null, group_filter: null, group_objectclass: 'groupOfNames',
    group_id_attribute: 'cn', group_name_attribute: 'ou', group_member_attribute: 'member',
    group_desc_attribute: 'description', group_attribute_ignore: [], group_additional_attribute_mapping: [],
    tls_cacertfile: null, tls_cacertdir: null, use_tls: false, tls_req_cert: 'demand', use_pool: true, pool_size: 10,
    pool_retry_max: 3, pool_retry_delay: 0.1, pool_connection_timeout: -1, pool_connection_lifetime: 600,
    use_auth_pool: true, auth_pool_size: 100, auth_pool_connection_lifetime: 60,
  },
};
const SENSITIVE: Record<string, string[]> = { identity: [], ldap: ['password'] };

const allowed = (group: string, option: string) =>
  Object.hasOwn(DEFAULTS, group) && (Object.hasOwn(DEFAULTS[group]!, option) || SENSITIVE[group]!.includes(option));

function checkGroup(group: string): void {
  if (!Object.hasOwn(DEFAULTS, group)) throw forbidden(`Invalid domain specific configuration: group ${group} is not supported.`);
}

function validate(config: unknown): Config {
  if (!config || typeof config !== 'object' || Array.isArray(config) || Object.keys(config).length === 0) {
    throw badRequest('Invalid domain specific configuration: config must be a non-empty object of groups.');
  }
  for (const [group, options] of Object.entries(config)) {
    checkGroup(group);
    if (!options || typeof options !== 'object' || Array.isArray(options)) throw badRequest(`Invalid domain specific configuration: group ${group} must be an object.`);
    for (const option of Object.keys(options)) {
      if (!allowed(group, option)) throw forbidden(`Invalid domain specific configuration: option ${option} in group ${group} is not supported.`);
    }
  }
  return config as Config;
}

const Body = Type.Object({ config: Type.Object({}, { additionalProperties: true }) });

export function domainConfigRoutes(ctx: IdentityContext): Route[] {
  const db = ctx.db;
  async function read(domainId: string, withSensitive = false): Promise<Config> {
    const rows = await db.selectFrom('identity_domain_configs').selectAll().where('domain_id', '=', domainId).execute();
    const out: Config = {};
    for (const r of rows) {
      if (!withSensitive && SENSITIVE[r.group_name]?.includes(r.option)) continue;
      (out[r.group_name] ??= {})[r.option] = JSON.parse(r.value);
    }
    return out;
  }
  async function write(domainId: string, config: Config): Promise<void> {
    for (const [group, options] of Object.entries(config)) {
      for (const [option, value] of Object.entries(options)) {
        await db.deleteFrom('identity_domain_configs').where('domain_id', '=', domainId).where('group_name', '=', group).where('option', '=', option).execute();
        await db.insertInto('identity_domain_configs').values({ domain_id: domainId, group_name: group, option, value: JSON.stringify(value) }).execute();
      }
    }
  }
  const domain = (id: string) => mustGet(getDomain(db, id), 'domain', id);
  async function existing(domainId: string): Promise<Config> {
    await domain(domainId);
    const config = await read(domainId, true);
    if (Object.keys(config).length === 0) throw notFound(`Could not find Domain Config: ${domainId}.`);
    return config;
  }
  async function group(domainId: string, name: string): Promise<Record<string, unknown>> {
    checkGroup(name);
    const config = await existing(domainId);
    if (!config[name]) throw notFound(`Could not find Domain Config: group ${name} of ${domainId}.`);
    return config[name]!;
  }
  const visible = async (domainId: string) => ({ config: await read(domainId) });

  return [
    {
      method: 'GET', path: '/v3/domains/config/default', rule: 'identity:get_domain_config_default',
      handler: () => ({ config: DEFAULTS }),
    },
    {
      method: 'GET', path: '/v3/domains/config/:group/default', rule: 'identity:get_domain_config_default',
      handler(rc) {
        checkGroup(rc.params.group!);
        return { config: { [rc.params.group!]: DEFAULTS[rc.params.group!] } };
      },
    },
    {
      method: 'GET', path: '/v3/domains/config/:group/:option/default', rule: 'identity:get_domain_config_default',
      handler(rc) {
        const { group: g, option } = rc.params as { group: string; option: string };
        checkGroup(g);
        if (!Object.hasOwn(DEFAULTS[g]!, option)) throw forbidden(`Invalid domain specific configuration: option ${option} in group ${g} is not supported.`);
        return { config: { [option]: DEFAULTS[g]![option] } };
      },
    },
    route({
      method: 'PUT', path: '/v3/domains/:domain_id/config', rule: 'identity:create_domain_config', schema: { body: Body },
      async handler(rc) {
        const id = rc.params.domain_id!;
        await domain(id);
        const config = validate(rc.body.config);
        const had = Object.keys(await read(id, true)).length > 0;
        await db.deleteFrom('identity_domain_configs').where('domain_id', '=', id).execute();
        await write(id, config);
        rc.reply.code(had ? 200 : 201);
        return visible(id);
      },
    }),
    { method: 'GET', path: '/v3/domains/:domain_id/config', rule: 'identity:get_domain_config', handler: async (rc) => {
      await existing(rc.params.domain_id!);
      return visible(rc.params.domain_id!);
    } },
    route({
      method: 'PATCH', path: '/v3/domains/:domain_id/config', rule: 'identity:update_domain_config', schema: { body: Body },
      async handler(rc) {
        const id = rc.params.domain_id!;
        await existing(id);
        await write(id, validate(rc.body.config));
        return visible(id);
      },
    }),
    {
      method: 'DELETE', path: '/v3/domains/:domain_id/config', rule: 'identity:delete_domain_config', status: 204,
      async handler(rc) {
        await existing(rc.params.domain_id!);
        await db.deleteFrom('identity_domain_configs').where('domain_id', '=', rc.params.domain_id!).execute();
      },
    },
    {
      method: 'GET', path: '/v3/domains/:domain_id/config/:group', rule: 'identity:get_domain_config',
      async handler(rc) {
        const g = rc.params.group!;
        const opts = Object.fromEntries(Object.entries(await group(rc.params.domain_id!, g)).filter(([k]) => !SENSITIVE[g]!.includes(k)));
        return { config: { [g]: opts } };
      },
    },
    route({
      method: 'PATCH', path: '/v3/domains/:domain_id/config/:group', rule: 'identity:update_domain_config', schema: { body: Body },
      async handler(rc) {
        const { domain_id: id, group: g } = rc.params as { domain_id: string; group: string };
        await group(id, g);
        const config = validate(rc.body.config);
        if (Object.keys(config).some((k) => k !== g)) throw badRequest(`Invalid domain specific configuration: only group ${g} may be updated here.`);
        await write(id, config);
        return visible(id);
      },
    }),
    {
      method: 'DELETE', path: '/v3/domains/:domain_id/config/:group', rule: 'identity:delete_domain_config', status: 204,
      async handler(rc) {
        const { domain_id: id, group: g } = rc.params as { domain_id: string; group: string };
        await group(id, g);
        await db.deleteFrom('identity_domain_configs').where('domain_id', '=', id).where('group_name', '=', g).execute();
      },
    },
    {
      method: 'GET', path: '/v3/domains/:domain_id/config/:group/:option', rule: 'identity:get_domain_config',
      async handler(rc) {
        const { domain_id: id, group: g, option } = rc.params as { domain_id: string; group: string; option: string };
        const opts = await group(id, g);
        if (!Object.hasOwn(opts, option) || SENSITIVE[g]!.includes(option)) throw notFound(`Could not find Domain Config: option ${option} of group ${g}.`);
        return { config: { [option]: opts[option] } };
      },
    },
    route({
      method: 'PATCH', path: '/v3/domains/:domain_id/config/:group/:option', rule: 'identity:update_domain_config', schema: { body: Body },
      async handler(rc) {
        const { domain_id: id, group: g, option } = rc.params as { domain_id: string; group: string; option: string };
        const opts = await group(id, g);
        const body = rc.body.config as Record<string, unknown>;
        if (Object.keys(body).length !== 1 || !Object.hasOwn(body, option)) throw badRequest(`Invalid domain specific configuration: the body must hold option ${option} only.`);
        if (!allowed(g, option)) throw forbidden(`Invalid domain specific configuration: option ${option} in group ${g} is not supported.`);
        if (!Object.hasOwn(opts, option)) throw notFound(`Could not find Domain Config: option ${option} of group ${g}.`);
        await write(id, { [g]: { [option]: body[option] } });
        return visible(id);
      },
    }),
    {
      method: 'DELETE', path: '/v3/domains/:domain_id/config/:group/:option', rule: 'identity:delete_domain_config', status: 204,
      async handler(rc) {
        const { domain_id: id, group: g, option } = rc.params as { domain_id: string; group: string; option: string };
        const opts = await group(id, g);
        if (!Object.hasOwn(opts, option)) throw notFound(`Could not find Domain Config: option ${option} of group ${g}.`);
        await db.deleteFrom('identity_domain_configs').where('domain_id', '=', id).where('group_name', '=', g).where('option', '=', option).execute();
      },
    },
  ];
}

