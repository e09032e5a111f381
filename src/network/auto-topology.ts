// Neutron's auto-allocated-topology ("get me a network"): on first GET for a
// project, a network, an IPv4 subnet (from the default subnet pool, else the
// configured CIDR) and a router with a gateway on the default external network
// (`is_default`) and an interface on the subnet. Each step goes through the
// service's own routes (their checks, quotas and transactions); a failure
// removes what was made. Two concurrent first GETs both build: the one that
// records its topology first wins and the other removes its own and answers
// the winner's (Neutron's way). Compute's `networks: auto` uses it.
import type { Kysely } from 'kysely';
import type { Credentials } from '../http/auth.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import { conflictOnDuplicate } from '../db/unique.ts';
import { ApiError } from '../common/errors.ts';
import type { NetworkContext } from './context.ts';
import { badResource, conflict, NeutronError, policyDenied } from './errors.ts';

export interface AutoTopology {
  /** The project's auto-allocated network, made if it has none; null when there is no default external network. */
  ensure(projectId: string): Promise<string | null>;
}

const failure = (reason: string) => conflict('AutoAllocationFailure', `Deployment error: ${reason}.`);

class Taken extends ApiError {
  constructor() {
    super('Conflict', 'another request recorded the topology first');
  }
}

export function autoTopology(ctx: NetworkContext, routes: Route[]): { routes: Route[]; topology: AutoTopology } {
  const db = ctx.db as unknown as Kysely<any>;

  /** Runs one of the service's routes in-process, as `cred`. */
  const invoke = async (method: string, path: string, cred: Credentials, body: unknown, params: Record<string, string> = {}): Promise<any> => {
    const r = routes.find((x) => x.method === method && x.path === path);
    if (!r) throw new Error(`no route ${method} ${path}`);
    const rc = { cred, body, params, query: {}, req: { headers: {} }, enforce() {} } as unknown as RouteContext;
    return await r.handler(rc as never);
  };

  const defaultExternal = async (): Promise<string> => {
    const n = await db.selectFrom('network_networks').select('id').where('external', '=', 1).where('is_default', '=', 1).orderBy('created_at').executeTakeFirst();
    if (!n) throw failure('No default router:external network');
    return n.id;
  };
  const recorded = async (projectId: string): Promise<string | null> =>
    (await db.selectFrom('network_auto_allocated_topologies').select('network_id').where('project_id', '=', projectId).executeTakeFirst())?.network_id ?? null;

  /** Removes a topology's router (interfaces, gateway) and network (subnets), what of them exists. */
  async function cleanup(cred: Credentials, networkId: string | null, routerId: string | null): Promise<void> {
    const quiet = async (f: () => Promise<unknown>) => { try { await f(); } catch (e) { if (!(e instanceof NeutronError && e.code === 'NotFound')) throw e; } };
    if (routerId) {
      const subnets = networkId ? await db.selectFrom('network_subnets').select('id').where('network_id', '=', networkId).execute() : [];
      for (const s of subnets) {
        const attached = await db.selectFrom('network_ports as p').innerJoin('network_ip_allocations as a', 'a.port_id', 'p.id').select('p.id')
          .where('p.device_id', '=', routerId).where('a.subnet_id', '=', s.id).executeTakeFirst();
        if (attached) await quiet(() => invoke('PUT', '/v2.0/routers/:id/remove_router_interface', cred, { subnet_id: s.id }, { id: routerId }));
      }
      await quiet(() => invoke('DELETE', '/v2.0/routers/:id', cred, undefined, { id: routerId }));
    }
    if (networkId) await quiet(() => invoke('DELETE', '/v2.0/networks/:id', cred, undefined, { id: networkId }));
  }

  async function build(cred: Credentials, projectId: string): Promise<string> {
    const external = await defaultExternal();
    let networkId: string | null = null;
    let routerId: string | null = null;
    try {
      networkId = (await invoke('POST', '/v2.0/networks', cred, { network: { name: 'auto_allocated_network', project_id: projectId } })).network.id as string;
      const pool = await db.selectFrom('network_subnetpools').select('id').where('is_default', '=', 1).where('ip_version', '=', 4).executeTakeFirst();
      const subnet = (await invoke('POST', '/v2.0/subnets', cred, {
        subnet: {
          name: 'auto_allocated_subnet_v4', network_id: networkId, ip_version: 4, project_id: projectId,
          ...(pool ? { subnetpool_id: pool.id } : { cidr: ctx.config.autoAllocatedCidr }),
        },
      })).subnet;
      routerId = (await invoke('POST', '/v2.0/routers', cred, { router: { name: 'auto_allocated_router', project_id: projectId, external_gateway_info: { network_id: external } } })).router.id as string;
      await invoke('PUT', '/v2.0/routers/:id/add_router_interface', cred, { subnet_id: subnet.id }, { id: routerId });
      await conflictOnDuplicate(db.insertInto('network_auto_allocated_topologies').values({ project_id: projectId, network_id: networkId, router_id: routerId }).execute(), () => new Taken());
      return networkId;
    } catch (e) {
      await cleanup(cred, networkId, routerId);
      if (e instanceof Taken) return (await recorded(projectId))!;
      if (e instanceof NeutronError && (e.code === 'BadRequest' || e.code === 'NotFound')) throw failure('Unable to provide tenant private network');
      throw e;
    }
  }

  /** The project a request names: the caller's own ('None' too) unless admin. */
  const projectOf = (rc: RouteContext): string => {
    const cred = rc.cred!;
    const p = rc.params.project_id === 'None' ? cred.projectId ?? '' : rc.params.project_id!;
    if (!isAdmin(cred) && p !== cred.projectId) throw policyDenied('get_auto_allocated_topology');
    return p;
  };

  /** Credentials acting for the project with the admin's reach (compute's in-process calls). */
  const serviceCred = (projectId: string): Credentials => ({
    userId: 'network', userName: 'network', userDomainId: 'default', projectId, projectDomainId: 'default', domainId: null, system: false,
    roles: new Set(['admin', 'member', 'reader']), roleIds: [], token: null,
  });

  return {
    routes: [
      route({
        method: 'GET', path: '/v2.0/auto-allocated-topology/:project_id', rule: 'get_auto_allocated_topology',
        async handler(rc) {
          const projectId = projectOf(rc);
          const raw = rc.query.fields;
          const fields = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).flatMap((f) => f.split(',')).filter((f) => f !== '');
          if (fields.includes('dry-run')) {
            await defaultExternal();
            return { auto_allocated_topology: { id: 'dry-run=pass', tenant_id: projectId, project_id: projectId } };
          }
          if (fields.length) throw badResource('auto_allocate', 'Unrecognized field');
          const id = (await recorded(projectId)) ?? await build(rc.cred!, projectId);
          return { auto_allocated_topology: { id, tenant_id: projectId, project_id: projectId } };
        },
      }),
      route({
        method: 'DELETE', path: '/v2.0/auto-allocated-topology/:project_id', rule: 'delete_auto_allocated_topology', status: 204,
        async handler(rc) {
          const projectId = projectOf(rc);
          const t = await db.selectFrom('network_auto_allocated_topologies').selectAll().where('project_id', '=', projectId).executeTakeFirst();
          if (!t) return;
          await cleanup(rc.cred!, t.network_id, t.router_id);
          await db.deleteFrom('network_auto_allocated_topologies').where('project_id', '=', projectId).execute();
        },
      }),
    ],
    topology: {
      async ensure(projectId) {
        const have = await recorded(projectId);
        if (have) return have;
        if (!(await db.selectFrom('network_networks').select('id').where('external', '=', 1).where('is_default', '=', 1).executeTakeFirst())) return null;
        return await build(serviceCred(projectId), projectId);
      },
    },
  };
}
