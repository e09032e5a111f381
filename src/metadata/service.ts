// The metadata service's control-plane side: one agent API route
// (POST /agent/v1/metadata, agent token only) that the agent's metadata proxy
// relays each guest request to, with the network it came in on and its
// source address as the proxy saw them. The requester is the compute port on
// that network holding that address as a fixed IP (never an allowed address
// pair, never what the guest says of itself), its server the port's device:
// a server only ever sees its own data (Neutron's metadata proxy + Nova's
// metadata API, without the shared secret: the agent token authenticates the
// relay). The answer is the metadata answer itself (render.ts), marked with
// METADATA_ANSWER_HEADER so the agent tells it from an agent API error.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Type } from 'typebox';
import { canonicalIp } from '../network/ipnet.ts';
import type { Db } from '../db/database.ts';
import { AGENT_RULE } from '../fleet/api.ts';
import { route, type Route } from '../http/service.ts';
import { serverMetadataNetworking } from '../network/service.ts';
import { METADATA_ANSWER_HEADER, METADATA_RELAY_PATH, MAX_RELAY_BODY } from './protocol.ts';
import { conflict, notFound, passwordToStore, renderMetadata, type MetadataAnswer, type ServerMetadata } from './render.ts';

export const MetadataRelayBody = Type.Object({
  network_id: Type.String({ minLength: 1, maxLength: 64 }),
  remote_ip: Type.String({ minLength: 1, maxLength: 64 }),
  method: Type.Union([Type.Literal('GET'), Type.Literal('HEAD'), Type.Literal('POST')]),
  path: Type.String({ minLength: 1, maxLength: 2048 }),
  /** The request body, base64 (a password post); a little over the password limit is still relayed, to be refused as too large. */
  body: Type.Optional(Type.String({ maxLength: Math.ceil(MAX_RELAY_BODY / 3) * 4 })),
}, { additionalProperties: false });

export interface MetadataService {
  /** The server whose port on `networkId` holds `ip`; null when none. */
  lookup(networkId: string, ip: string): Promise<ServerMetadata | null>;
  answer(o: { network_id: string; remote_ip: string; method: string; path: string; body: Buffer }): Promise<MetadataAnswer>;
}

const ec2Id = (prefix: string, n: number) => `${prefix}-${n.toString(16).padStart(8, '0')}`;

/** EC2's number for a uuid, given on first use. */
async function ec2Number(db: Kysely<any>, uuid: string): Promise<number> {
  const read = () => db.selectFrom('metadata_ec2_ids').select('id').where('uuid', '=', uuid).executeTakeFirst();
  const have = await read();
  if (have) return Number(have.id);
  await db.insertInto('metadata_ec2_ids').values({ uuid }).onConflict((c) => c.column('uuid').doNothing()).execute();
  return Number((await read())!.id);
}

/** The password a server's guest posted to the metadata service (Nova's os-server-password), '' when none. */
export async function serverPassword(database: Db, serverId: string): Promise<string> {
  const db = database as unknown as Kysely<any>;
  const r = await db.selectFrom('metadata_passwords').select('password').where('server_id', '=', serverId).executeTakeFirst();
  return (r?.password as string | undefined) ?? '';
}

/** Clears it (Nova's DELETE os-server-password): the guest may post a new one. */
export async function clearServerPassword(database: Db, serverId: string): Promise<void> {
  await (database as unknown as Kysely<any>).deleteFrom('metadata_passwords').where('server_id', '=', serverId).execute();
}

/**
 * Everything the metadata answers of server `serverId` are made of (null:
 * no such server). `via`: the port and address the request came from (the
 * EC2 local-ipv4 and mac); otherwise the server's first IPv4 address. Also
 * what a config drive is rendered from (compute's bare-metal driver: Ironic's
 * JSON config drive holds metaDataJson and network_data).
 */
export async function serverMetadataOf(database: Db, serverId: string, via?: { port_id: string; ip: string }): Promise<ServerMetadata | null> {
  const db = database as unknown as Kysely<any>;
  const ports = serverMetadataNetworking(database);
  const s = await db.selectFrom('compute_servers').selectAll().where('id', '=', serverId).where('deleted_at', 'is', null).executeTakeFirst();
  if (!s) return null;
  const meta = Object.fromEntries((await db.selectFrom('compute_server_metadata').select(['key', 'value']).where('server_id', '=', s.id).orderBy('key').execute())
    .map((m) => [m.key as string, m.value as string]));
  let flavorName = '';
  try {
    flavorName = String((JSON.parse(s.flavor) as { name?: unknown }).name ?? '');
  } catch { /* a broken row: no name */ }
  const facts = await ports.facts(s.id);
  const v4 = facts.ports.flatMap((p) => p.fixed_ips.filter((f) => !f.ip_address.includes(':')).map((f) => ({ port: p, ip: f.ip_address })));
  const first = v4[0] ?? null;
  const networkData = (await ports.networkData([s.id])).get(s.id)!;
  const password = await serverPassword(database, s.id);
  const keys = s.key_name && s.key_data ? [{ name: s.key_name as string, type: (s.key_data as string).startsWith('-----BEGIN CERTIFICATE') ? 'x509' : 'ssh', data: s.key_data as string }] : [];
  return {
    uuid: s.id, name: s.name, hostname: s.hostname, project_id: s.project_id, availability_zone: s.availability_zone ?? 'nova',
    launch_index: s.launch_index, reservation_id: s.reservation_id, meta, keys,
    user_data: s.user_data ? Buffer.from(s.user_data, 'base64') : null, flavor_name: flavorName,
    ec2_instance_id: ec2Id('i', await ec2Number(db, s.id)), ec2_ami_id: s.image_id ? ec2Id('ami', await ec2Number(db, s.image_id)) : '',
    local_ipv4: first?.ip ?? via?.ip ?? '', mac: (facts.ports.find((p) => p.id === via?.port_id) ?? first?.port)?.mac_address ?? '',
    public_ipv4: facts.floating_ips.find((f) => !f.floating_ip_address.includes(':'))?.floating_ip_address ?? null,
    security_groups: facts.security_groups, network_data: networkData, password,
  };
}

export function createMetadataService(o: { db: Db; log: Logger }): MetadataService {
  const db = o.db as unknown as Kysely<any>;
  const ports = serverMetadataNetworking(o.db);

  async function lookup(networkId: string, ip: string): Promise<ServerMetadata | null> {
    const port = await ports.portAt(networkId, ip);
    if (!port) return null;
    return serverMetadataOf(o.db, port.device_id, { port_id: port.port_id, ip });
  }

  return {
    lookup,
    async answer(req) {
      const ip = canonicalIp(req.remote_ip);
      const md = ip ? await lookup(req.network_id, ip) : null;
      if (!md) {
        // who asked and where, never what they sent
        o.log.warn({ network_id: req.network_id, remote_ip: req.remote_ip, method: req.method }, 'metadata request from an address no server holds on that network');
        return notFound();
      }
      if (passwordToStore(md, req.method, req.path, req.body)) {
        // stored once: a second post (here or on another replica at once) finds the row and is refused
        const r = await db.insertInto('metadata_passwords').values({ server_id: md.uuid, password: req.body.toString('utf8'), created_at: new Date().toISOString() })
          .onConflict((c) => c.column('server_id').doNothing()).returning('server_id').executeTakeFirst();
        if (!r) return conflict();
      }
      return renderMetadata(md, req.method, req.path, req.body);
    },
  };
}

/** The agent API route the agents' metadata proxies relay to. */
export function metadataRoutes(service: MetadataService): Route[] {
  return [
    route({
      method: 'POST', path: METADATA_RELAY_PATH, rule: AGENT_RULE, schema: { body: MetadataRelayBody },
      async handler(rc) {
        const b = rc.body;
        const a = await service.answer({ network_id: b.network_id, remote_ip: b.remote_ip, method: b.method, path: b.path, body: Buffer.from(b.body ?? '', 'base64') });
        rc.reply.code(a.status).header('content-type', a.contentType).header(METADATA_ANSWER_HEADER, '1');
        return rc.reply.send(a.body);
      },
    }),
  ];
}
