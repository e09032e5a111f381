// /servers/{id}/os-interface (Nova's attach-interfaces): a server's ports as
// interface attachments, and attaching or detaching one on a live server.
// The network service makes or takes the port and binds it to the server's
// host; that host's agent plugs it into the running server as its lowest free ethN
// (the port kind, src/network/kinds.ts). Which ports the user gave (kept,
// unbound, when detached or when the server goes) and each attachment's tag
// (2.49) are recorded in the server's requested_networks, as the ports named
// at create are.
import { Type } from 'typebox';
import { sql } from 'kysely';
import { kindOf } from '../kinds.ts';
import { ApiError, badRequest, conflict, notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ServerNetworking } from '../../network/service.ts';
import type { ComputeContext } from './context.ts';
import { mv, validate } from './http.ts';
import { isComputeAdmin } from './policy.ts';
import { unexpectedField } from './servers.ts';
import { forgetServer, loadServer, recordAction, serverTarget, type ServerRow } from './servers-store.ts';
import { checkState, VmState } from './state.ts';

type ServerInterface = Awaited<ReturnType<ServerNetworking['interfaces']>>[number];

const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$' });
const AttachBody = Type.Object({
  interfaceAttachment: Type.Optional(Type.Object({
    net_id: Type.Optional(Uuid),
    port_id: Type.Optional(Uuid),
    fixed_ips: Type.Optional(Type.Array(Type.Object({ ip_address: Type.String() }, { additionalProperties: false }), { maxItems: 1 })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' })),
  }, { additionalProperties: false })),
}, { additionalProperties: false });

/** One entry of requested_networks: a port named at create ({port}), or one os-interface attached ({port} given, {attached} made). */
interface Requested { uuid?: string; port?: string; attached?: string; fixed_ip?: string; tag?: string }

const requestedOf = (s: ServerRow): Requested[] => {
  try {
    const r = JSON.parse(s.requested_networks ?? 'null') as unknown;
    return Array.isArray(r) ? r as Requested[] : [];
  } catch {
    return [];
  }
};

/** The states Nova attaches and detaches in (compute API's check_instance_state). */
const ATTACHABLE = [VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED];

export function interfaceRoutes(ctx: ComputeContext): Route[] {
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  const network = (): ServerNetworking => {
    if (!ctx.network) throw badRequest('Network service is not available: this cloud runs compute without networking.');
    return ctx.network;
  };
  const view = (rc: RouteContext, s: ServerRow, i: ServerInterface) => {
    const { physical_network: _physnet, ...shown } = i;
    const out: Record<string, unknown> = { ...shown };
    if (mv(rc).ge('2.70')) out.tag = requestedOf(s).find((r) => r.port === i.port_id || r.attached === i.port_id)?.tag ?? null;
    return out;
  };
  const findAttached = async (s: ServerRow, portId: string) => {
    const found = (await network().interfaces(s.id)).find((i) => i.port_id === portId);
    if (!found) throw notFound(`Instance ${s.id} does not have a port with id ${portId}`);
    return found;
  };
  const checkLock = (rc: RouteContext, s: ServerRow) => {
    if (s.locked && !isComputeAdmin(rc.cred)) throw conflict(`Instance ${s.id} is locked`);
  };

  return [
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-interface', rule: 'os_compute_api:os-attach-interfaces:list', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const list = ctx.network ? await ctx.network.interfaces(s.id) : [];
        return { interfaceAttachments: list.map((i) => view(rc, s, i)) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/:server_id/os-interface/:port_id', rule: 'os_compute_api:os-attach-interfaces:show', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        return { interfaceAttachment: view(rc, s, await findAttached(s, rc.params.port_id!)) };
      },
    }),
    route({
      method: 'POST', path: '/v2.1/servers/:server_id/os-interface', rule: 'os_compute_api:os-attach-interfaces:create', target,
      async handler(rc) {
        const body = validate(AttachBody, rc.body ?? {}).interfaceAttachment ?? {};
        if (body.tag !== undefined && mv(rc).lt('2.49')) throw unexpectedField('tag', 'interfaceAttachment');
        if (body.net_id && body.port_id) throw badRequest('Must not input both network_id and port_id');
        const fixedIp = body.fixed_ips?.[0]?.ip_address;
        if (fixedIp !== undefined && !body.net_id) throw badRequest('Must input network_id when request IP address');
        const s = await loadServer(ctx, rc);
        const net = network();
        checkLock(rc, s);
        checkState('attach_interface', s, ATTACHABLE, [null], false);
        const groups = await serverGroupIds(net, s);
        let portId: string;
        try {
          portId = await net.attach({
            serverId: s.id, projectId: s.project_id, availabilityZone: s.availability_zone ?? ctx.config.defaultAvailabilityZone, host: s.host,
            vifType: kindOf(s.kind).vifType, portId: body.port_id, networkId: body.net_id, fixedIp, securityGroups: groups,
          });
        } catch (err) {
          throw novaError(err);
        }
        await remember(ctx, s, body.port_id ? { port: portId, ...(body.tag ? { tag: body.tag } : {}) } : { attached: portId, ...(body.tag ? { tag: body.tag } : {}) });
        await ctx.db.transaction().execute((tx) => recordAction(tx, s, rc.cred!, rc.req.id, { action: 'attach_interface', event: 'api_attach_interface' }));
        forgetServer(rc);
        const fresh = await loadServer(ctx, rc);
        return { interfaceAttachment: view(rc, fresh, await findAttached(fresh, portId)) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/servers/:server_id/os-interface/:port_id', rule: 'os_compute_api:os-attach-interfaces:delete', target, status: 202,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const net = network();
        const portId = rc.params.port_id!;
        checkLock(rc, s);
        checkState('detach_interface', s, ATTACHABLE, [null], false);
        if (!(await net.interfaces(s.id)).some((i) => i.port_id === portId)) throw notFound(`Port ${portId} is not attached`);
        const requested = requestedOf(s);
        const given = requested.some((r) => r.port === portId);
        await net.detach(s.id, portId, given);
        await forget(ctx, s, portId);
        await ctx.db.transaction().execute((tx) => recordAction(tx, s, rc.cred!, rc.req.id, { action: 'detach_interface', event: 'api_detach_interface' }));
      },
    }),
  ];
}

/** The ids of the groups on the server (its ports', else the names it was made with): a port attached gets them. */
async function serverGroupIds(net: ServerNetworking, s: ServerRow): Promise<string[]> {
  const onPorts = (await net.securityGroupsOf([s.id])).get(s.id);
  if (onPorts?.length) return onPorts.map((g) => g.id);
  const ids: string[] = [];
  for (const name of JSON.parse(s.security_groups || '[]') as string[]) {
    try {
      ids.push((await net.findSecurityGroup(s.project_id, name)).id);
    } catch {
      // a group deleted since: the port gets the others (or the default)
    }
  }
  return ids;
}

/** A network error as Nova's attach answers it: unknown port/network 404, in use 409, no address left or a bad address 400. */
export function novaError(err: unknown): unknown {
  if (!(err instanceof ApiError)) return err;
  const type = (err as { type?: string }).type;
  if (type === 'IpAddressGenerationFailure') return badRequest(`No more fixed IPs available: ${err.message}`);
  if (err.status === 409 && type !== 'PortInUse' && type !== 'IpAddressAlreadyAllocated' && type !== 'IpAddressInUse') return badRequest(err.message);
  return err;
}

/** Adds a port attached through os-interface to the server's requested networks (bumps the version: the agent's spec changes). */
async function remember(ctx: ComputeContext, s: ServerRow, entry: Requested): Promise<void> {
  const next = [...requestedOf(s).filter((r) => r.port !== (entry.port ?? entry.attached) && r.attached !== (entry.port ?? entry.attached)), entry];
  await ctx.db.updateTable('compute_servers').set({ requested_networks: JSON.stringify(next), updated_at: nowIso(), version: sql`version + 1` }).where('id', '=', s.id).execute();
  if (s.host) ctx.engine.notify(s.host);
}

async function forget(ctx: ComputeContext, s: ServerRow, portId: string): Promise<void> {
  const r = s.requested_networks === null ? null : JSON.parse(s.requested_networks) as unknown;
  if (!Array.isArray(r)) return;
  const next = (r as Requested[]).filter((x) => x.port !== portId && x.attached !== portId);
  await ctx.db.updateTable('compute_servers').set({ requested_networks: JSON.stringify(next), updated_at: nowIso(), version: sql`version + 1` }).where('id', '=', s.id).execute();
  if (s.host) ctx.engine.notify(s.host);
}
