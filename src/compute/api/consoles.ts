// Remote consoles (Nova's os-remote-consoles): a console URL with a token,
// the token check for admins (os-console-auth-tokens), and the console
// proxies themselves, WebSockets on the server's public port bridged through
// the host agent's stream channel to the server's console:
//   - serial (Nova's nova-serialproxy): the `binary` subprotocol, raw bytes both ways;
//   - noVNC (nova-novncproxy): the noVNC page (./novnc.ts) opens a WebSocket
//     that carries raw RFB bytes to the VM's VNC server.
//
//   POST /v2.1/servers/{id}/action {"os-getSerialConsole" | "os-getVNCConsole": {type}}  2.1 - 2.5
//   POST /v2.1/servers/{id}/remote-consoles {"remote_console": {protocol, type}}        2.6 -
//   GET  /v2.1/os-console-auth-tokens/{token}                                            admin
//   GET  /compute/serial-console?token=...                                               WebSocket
//   GET  /compute/novnc/vnc_lite.html?path=compute%2Fvnc-console%3Ftoken%3D...           the noVNC page
//   GET  /compute/vnc-console?token=...                                                  WebSocket
//
// Tokens live in the database (only their SHA-256), so any replica can check
// one; they stay valid for Nova's default token_ttl (600 s).
import { createHash, randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { kindOf } from '../kinds.ts';
import { ApiError, badRequest, conflict, notFound } from '../../common/errors.ts';
import { nowIso } from '../../common/ids.ts';
import { bridge } from '../../common/mux.ts';
import type { Credentials } from '../../http/auth.ts';
import { route, type Route, type RouteContext, type Service } from '../../http/service.ts';
import { acceptWebSocket, isUpgrade } from '../../http/websocket.ts';
import type { StreamHub } from '../../fleet/stream.ts';
import type { ComputeContext } from './context.ts';
import { NOVNC_PATH } from './novnc.ts';
import { hostUrl, mv, PREFIX, renderComputeError, validate, versioned } from './http.ts';
import { serverTarget, loadServer, type ServerRow } from './servers-store.ts';
import { TaskState, VmState } from './state.ts';

/** Nova's [consoleauth] token_ttl default, in seconds. */
export const CONSOLE_TOKEN_TTL = 600;
/** Where the console proxies listen, under the server's public port. */
export const SERIAL_PROXY_PATH = `${PREFIX}/serial-console`;
export const VNC_PROXY_PATH = `${PREFIX}/vnc-console`;

/** Protocols and their types as Nova's schema lists them (2.8 adds mks/webmks). */
const PROTOCOL_TYPES: Record<string, string[]> = {
  vnc: ['novnc', 'xvpvnc'], spice: ['spice-html5'], rdp: ['rdp-html5'], serial: ['serial'], mks: ['webmks'],
};
const ACTIONS: Record<string, string> = {
  'os-getVNCConsole': 'vnc', 'os-getSPICEConsole': 'spice', 'os-getRDPConsole': 'rdp', 'os-getSerialConsole': 'serial',
};
/** The action names os-remote-consoles answers below 2.6. */
export const CONSOLE_ACTIONS = Object.keys(ACTIONS);

const typesUpTo = (v: { lt(s: string): boolean }) => [...new Set(Object.entries(PROTOCOL_TYPES).filter(([p]) => p !== 'mks' || !v.lt('2.8')).flatMap(([, t]) => t))];

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/** Checks the server can have a console of this protocol and type now, and issues a token and URL for it. */
async function issue(ctx: ComputeContext, rc: RouteContext, s: ServerRow, protocol: string, type: string): Promise<string> {
  const offered = kindOf(s.kind).consoles[protocol];
  if (!offered) throw badRequest(`Unavailable console type ${type}.`);
  if (!offered.includes(type)) throw badRequest(`Invalid console type ${type}`);
  if (!s.host || s.vm_state !== VmState.ACTIVE || s.task_state === TaskState.DELETING) throw conflict(`Instance ${s.id} is not ready`);
  const token = randomUUID();
  const now = new Date();
  await ctx.db.deleteFrom('compute_console_auth_tokens').where('expires_at', '<', now.toISOString()).execute();
  await ctx.db.insertInto('compute_console_auth_tokens').values({
    token_hash: hashOf(token), console_type: type, server_id: s.id, host: s.host,
    expires_at: new Date(now.getTime() + CONSOLE_TOKEN_TTL * 1000).toISOString(), created_at: now.toISOString(),
  }).execute();
  const base = hostUrl(rc.req);
  // Nova's novnc URL is the page, told where its WebSocket is by `path` (relative to the page's host and port)
  if (type === 'novnc') return `${base}${NOVNC_PATH}/vnc_lite.html?path=${encodeURIComponent(`${VNC_PROXY_PATH.slice(1)}?token=${token}`)}`;
  return `${base.replace(/^http/, 'ws')}${SERIAL_PROXY_PATH}?token=${token}`;
}

async function findToken(ctx: ComputeContext, token: string) {
  const row = await ctx.db.selectFrom('compute_console_auth_tokens').selectAll().where('token_hash', '=', hashOf(token)).executeTakeFirst();
  return row && row.expires_at > nowIso() ? row : null;
}

/** The os-get*Console actions (2.1 - 2.5), called from the server action route with the loaded server. */
export async function consoleAction(ctx: ComputeContext, rc: RouteContext, s: ServerRow, action: string, arg: unknown): Promise<unknown> {
  const protocol = ACTIONS[action]!;
  if (mv(rc).ge('2.6')) throw notFound('The resource could not be found.');
  const body = validate(Type.Object({
    type: Type.Union(PROTOCOL_TYPES[protocol]!.map((t) => Type.Literal(t))),
  }, { additionalProperties: false }), arg);
  rc.enforce('os_compute_api:os-remote-consoles', { project_id: s.project_id, user_id: s.user_id });
  const url = await issue(ctx, rc, s, protocol, body.type);
  rc.reply.code(200);
  return { console: { type: body.type, url } };
}

const RemoteConsoleBody = Type.Object({
  remote_console: Type.Object({
    protocol: Type.Union(Object.keys(PROTOCOL_TYPES).map((p) => Type.Literal(p))),
    type: Type.String(),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

export function consoleRoutes(ctx: ComputeContext): Route[] {
  return [
    versioned(route({
      method: 'POST', path: '/v2.1/servers/:server_id/remote-consoles', rule: 'os_compute_api:os-remote-consoles',
      schema: { body: RemoteConsoleBody }, target: (rc) => serverTarget(ctx, rc),
      async handler(rc) {
        const v = mv(rc);
        const { protocol, type } = rc.body.remote_console;
        if (protocol === 'mks' && v.lt('2.8')) throw badRequest(`Invalid input for field/attribute protocol. Value: mks. 'mks' is not one of ['vnc', 'spice', 'rdp', 'serial']`);
        if (!typesUpTo(v).includes(type)) throw badRequest(`Invalid input for field/attribute type. Value: ${type.slice(0, 64)}. '${type.slice(0, 64)}' is not one of [${typesUpTo(v).map((t) => `'${t}'`).join(', ')}]`);
        const s = await loadServer(ctx, rc);
        return { remote_console: { protocol, type, url: await issue(ctx, rc, s, protocol, type) } };
      },
    }), '2.6'),
    {
      method: 'GET', path: '/v2.1/os-console-auth-tokens/:console_token', rule: 'os_compute_api:os-console-auth-tokens',
      async handler(rc) {
        const row = await findToken(ctx, rc.params.console_token ?? '');
        if (!row) throw notFound('Token not found');
        // before 2.31 only RDP consoles' details were shown
        if (mv(rc).lt('2.31') && row.console_type !== 'rdp-html5') throw new ApiError('Unauthorized', 'The requested console type details are not accessible');
        return { console: { instance_uuid: row.server_id, host: row.host, internal_access_path: null } };
      },
    },
  ];
}

const CONSOLE_ROLE = 'stratus:console';
const CONSOLE_RULE = 'console-token';

/** No Origin (not a browser), or one whose host name is the request's (Nova's origin check, ports aside). */
function sameHostOrigin(rc: RouteContext): boolean {
  const origin = rc.req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).hostname === new URL(`http://${rc.req.headers.host ?? ''}`).hostname;
  } catch {
    return false;
  }
}

/** A console proxy: its path, the console type its tokens must be for, and the agent stream it opens. */
interface ProxyKind { name: string; prefix: string; consoleType: string; stream: string }
const PROXIES: ProxyKind[] = [
  { name: 'serial-console', prefix: SERIAL_PROXY_PATH, consoleType: 'serial', stream: 'serial-console' },
  { name: 'vnc-console', prefix: VNC_PROXY_PATH, consoleType: 'novnc', stream: 'vnc-console' },
];

/** The console proxies (serial, noVNC's WebSocket), each a service of its own. */
export function consoleProxyServices(ctx: ComputeContext, streams: StreamHub): Service[] {
  return PROXIES.map((p) => proxyService(ctx, streams, p));
}

/**
 * One console proxy: a service of its own (as nova-serialproxy and
 * nova-novncproxy are), whose one credential is a console token of its type
 * in the query string; `binary` is the subprotocol it speaks (noVNC asks for it).
 */
function proxyService(ctx: ComputeContext, streams: StreamHub, p: ProxyKind): Service {
  return {
    name: p.name,
    prefix: p.prefix,
    rules: { [CONSOLE_RULE]: (c) => c.roles.has(CONSOLE_ROLE) },
    renderError: renderComputeError,
    setup(app) {
      // a refused upgrade is its status alone: a client that reads WebSocket frames
      // right after the answer (Tempest's novnc tests) must find no bytes there
      app.addHook('onSend', async (req, reply, payload) => (reply.statusCode >= 400 && String(req.headers.upgrade ?? '').toLowerCase() === 'websocket' ? '' : payload));
    },
    authenticators: [{
      async authenticate(req) {
        const token = (req.query as Record<string, unknown> | undefined)?.token;
        if (typeof token !== 'string' || token === '') return null;
        const row = await findToken(ctx, token);
        if (!row || row.console_type !== p.consoleType) throw new ApiError('Unauthorized', 'The console token is invalid or has expired.');
        const cred: Credentials = {
          userId: 'console', userName: 'console', userDomainId: '', projectId: null, projectDomainId: null, domainId: null,
          system: false, roles: new Set([CONSOLE_ROLE]), roleIds: [], token: row,
        };
        return cred;
      },
    }],
    routes: [{
      method: 'GET', path: '/', rule: CONSOLE_RULE,
      async handler(rc) {
        const t = rc.cred!.token as { server_id: string };
        if (!isUpgrade(rc)) throw badRequest('This resource speaks WebSocket: send an upgrade request.');
        // as Nova's proxies: a browser's page from another host may not use a token it learnt
        if (!sameHostOrigin(rc)) throw new ApiError('Forbidden', 'The console origin is not allowed.');
        const s = await ctx.db.selectFrom('compute_servers').select(['id', 'host', 'vm_state', 'task_state', 'deleted_at'])
          .where('id', '=', t.server_id).executeTakeFirst();
        if (!s || s.deleted_at !== null) throw notFound(`Instance ${t.server_id} could not be found.`);
        if (!s.host || s.vm_state !== VmState.ACTIVE || s.task_state === TaskState.DELETING) throw conflict(`Instance ${s.id} is not ready`);
        // the console first: a host that cannot serve it is an HTTP error, not a WebSocket that closes at once
        const stream = await streams.open(s.host, p.stream, { server_id: s.id });
        let ws;
        try {
          ws = await acceptWebSocket(rc, { protocols: ['binary'], maxPayload: 64 * 1024 });
        } catch (err) {
          stream.destroy();
          throw err;
        }
        ctx.log.info({ server: s.id, host: s.host, console: p.consoleType }, 'console connected');
        const { createWebSocketStream } = await import('ws');
        bridge(createWebSocketStream(ws), stream);
        // a closed WebSocket ends the session both ways (its stream would only end the reading side)
        ws.once('close', () => stream.destroy());
      },
    }],
  };
}
