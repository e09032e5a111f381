// A server's ports through the network service's in-process interface
// (src/network/service.ts): made or taken at create from Nova's `networks`,
// bound to the host the scheduler picks (engine), shown as `addresses`, and
// released once the server is deleted (made ports deleted, given ones kept).
import { ApiError, badRequest, conflict } from '../../common/errors.ts';
import type { ComputeContext } from './context.ts';
import type { RequestedNetworks, ServerNetworking } from '../../network/service.ts';

/** The ports the user named in `networks` (kept when the server goes). */
export function givenPorts(requested: string | null): string[] {
  if (!requested) return [];
  try {
    const r = JSON.parse(requested) as unknown;
    return Array.isArray(r) ? r.map((n: { port?: string }) => n.port).filter((p): p is string => typeof p === 'string') : [];
  } catch {
    return [];
  }
}

/** Makes the servers' ports; all or nothing. Network errors become Nova's (a missing network or port is a 400). */
export async function allocatePorts(net: ServerNetworking, o: { serverIds: string[]; projectId: string; availabilityZone: string; requested: RequestedNetworks; securityGroups?: string[] }): Promise<void> {
  const done: string[] = [];
  try {
    for (const serverId of o.serverIds) {
      done.push(serverId);
      await net.allocate({ serverId, projectId: o.projectId, availabilityZone: o.availabilityZone, requested: o.requested, securityGroups: o.securityGroups });
    }
  } catch (err) {
    for (const id of done) await net.release(id, givenPorts(JSON.stringify(o.requested))).catch(() => undefined);
    if (err instanceof ApiError && err.status === 404) throw badRequest(err.message);
    throw err;
  }
}

/**
 * The security groups asked for at create, by name or id, as the project's
 * groups: their names (the server view's) and ids (its ports'). Unknown: 400;
 * a name several groups have: 409 (Nova's NoUniqueMatch). Without a network
 * service only `default` is known.
 */
export async function resolveGroups(ctx: ComputeContext, projectId: string, asked: string[]): Promise<{ names: string[]; ids: string[] }> {
  if (!ctx.network) {
    for (const g of asked) if (g !== 'default') throw badRequest(`Security group ${g} not found for project ${projectId}.`);
    return { names: asked, ids: [] };
  }
  const names: string[] = [];
  const ids: string[] = [];
  for (const g of asked) {
    try {
      const found = await ctx.network.findSecurityGroup(projectId, g);
      if (!ids.includes(found.id)) { ids.push(found.id); names.push(found.name); }
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) throw badRequest(`Security group ${g} not found for project ${projectId}.`);
      if (err instanceof ApiError && err.status === 409) throw conflict(err.message);
      throw err;
    }
  }
  return { names, ids };
}
