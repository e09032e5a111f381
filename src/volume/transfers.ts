// Volume transfers (Cinder's os-volume-transfer, and volume-transfers from
// 3.55 with `no_snapshots`; 3.57's project fields; 3.59's pagination): a
// project offers an available volume (it is `awaiting-transfer` until the
// offer is accepted or withdrawn), and whoever holds the transfer's id and
// its auth key takes it into their own project, quota checked there, with
// its snapshots unless `no_snapshots`. The key is shown once, at create; the
// row keeps only an HMAC of it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { uuid } from '../common/ids.ts';
import { objectOf } from '../http/body.ts';
import { isAdmin } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import type { VolumeContext } from './context.ts';
import { badRequest, invalidSnapshot, invalidVolume, notFound } from './errors.ts';
import { mv, since } from './http.ts';
import { textOf } from './input.ts';
import { allTenants, applyFilters, applySort, paginate } from './list.ts';
import { checkQuota } from './quotas.ts';
import type { VolumeTables } from './schema.ts';
import { baseUrl, cinderTime, parseBoolean } from './view.ts';

type VDb = Kysely<VolumeTables>;
type TransferRow = VolumeTables['volume_transfers'];

const randomHex = (n: number) => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
const hmac = (salt: string, key: string) => createHmac('sha256', salt).update(key).digest('hex');

/** Withdraws the offers of a volume that goes away (in the caller's transaction). */
export async function dropTransfersOf(tx: VDb, volumeId: string): Promise<void> {
  await tx.deleteFrom('volume_transfers').where('volume_id', '=', volumeId).execute();
}

export function transferRoutes(ctx: VolumeContext): Route[] {
  const db = ctx.vdb;
  const now = () => new Date().toISOString();

  /** Both collections: the legacy one at every version, the new one from 3.55 (with the newer fields). */
  const forms = [{ path: '/os-volume-transfer', modern: false }, { path: '/volume-transfers', modern: true }] as const;

  function view(rc: RouteContext, r: TransferRow, o: { collection: string; modern: boolean; detail: boolean }): Record<string, unknown> {
    const v = mv(rc);
    const out: Record<string, unknown> = {
      id: r.id, name: r.name, volume_id: r.volume_id,
      links: [
        { href: `${baseUrl(rc.req)}/v3/${r.project_id}${o.collection}/${r.id}`, rel: 'self' },
        { href: `${baseUrl(rc.req)}/${r.project_id}${o.collection}/${r.id}`, rel: 'bookmark' },
      ],
    };
    if (o.detail) out.created_at = cinderTime(r.created_at);
    if (o.modern && o.detail && v.ge('3.55')) out.no_snapshots = !!r.no_snapshots;
    if (o.modern && o.detail && v.ge('3.57')) Object.assign(out, { source_project_id: r.project_id, destination_project_id: null, accepted: false });
    return out;
  }

  async function load(rc: RouteContext, id: string): Promise<TransferRow> {
    const c = rc.cred!;
    const row = await db.selectFrom('volume_transfers').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || (!isAdmin(c) && row.project_id !== c.projectId)) throw notFound.transfer(id);
    return row;
  }

  async function create(rc: RouteContext, modern: boolean, collection: string) {
    const c = rc.cred!;
    const body = objectOf(rc.body);
    const t = objectOf(body?.transfer);
    if (!body || !t) throw badRequest(`Missing required element 'transfer' in request body.`);
    if (typeof t.volume_id !== 'string') throw badRequest(`Invalid input for field/attribute volume_id. Value: ${JSON.stringify(t.volume_id)}. 'volume_id' is a required property`);
    const name = textOf('name', t.name) ?? null;
    let noSnapshots = false;
    if (modern && t.no_snapshots !== undefined && t.no_snapshots !== null) {
      if (typeof t.no_snapshots === 'boolean') noSnapshots = t.no_snapshots;
      else if (typeof t.no_snapshots === 'string') noSnapshots = parseBoolean('no_snapshots', t.no_snapshots);
      else throw badRequest(`Invalid value for no_snapshots: ${JSON.stringify(t.no_snapshots)}`);
    }
    const volume = await db.selectFrom('volume_volumes').selectAll().where('id', '=', t.volume_id).executeTakeFirst();
    if (!volume || (!isAdmin(c) && volume.project_id !== c.projectId)) throw notFound.volume(t.volume_id);
    if (volume.status !== 'available') throw invalidVolume('status must be available');
    if (!noSnapshots) {
      const snap = await db.selectFrom('volume_snapshots').select(['id', 'status']).where('volume_id', '=', volume.id).where('status', '!=', 'available').executeTakeFirst();
      if (snap) throw invalidSnapshot(`snapshot: ${snap.id} status must be available`);
    }
    const salt = randomHex(8);
    const authKey = randomHex(16);
    const ts = now();
    const row: TransferRow = {
      id: uuid(), volume_id: volume.id, project_id: volume.project_id, name, salt, crypt_hash: hmac(salt, authKey),
      no_snapshots: noSnapshots ? 1 : 0, created_at: ts, updated_at: ts,
    };
    await db.transaction().execute(async (tx) => {
      // the status check again, in the statement that changes it: two offers of one volume cannot both win
      const r = await tx.updateTable('volume_volumes').set({ status: 'awaiting-transfer', updated_at: ts })
        .where('id', '=', volume.id).where('status', '=', 'available').executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw invalidVolume('status must be available');
      await tx.insertInto('volume_transfers').values(row).execute();
    });
    return { transfer: { ...view(rc, row, { collection, modern, detail: true }), auth_key: authKey } };
  }

  async function list(rc: RouteContext, modern: boolean, collection: string, detail: boolean) {
    const c = rc.cred!;
    const v = mv(rc);
    const all = allTenants(rc);
    let q = db.selectFrom('volume_transfers').selectAll();
    if (!all) q = q.where('project_id', '=', c.projectId ?? '');
    const rows = await q.execute();
    let items = rows.map((r) => ({ id: r.id, name: r.name, volume_id: r.volume_id, created_at: cinderTime(r.created_at), row: r }));
    let links: unknown[] | undefined;
    if (modern && v.ge('3.59')) {
      items = applySort(rc.query, applyFilters(rc.query, items, { resource: 'transfer', admin: isAdmin(c), v })) as typeof items;
      const p = paginate(rc.req, rc.query, items, { collection: 'transfers', path: rc.req.url.split('?')[0]!.replace(/^\/volume/, ''), notFound: notFound.transfer });
      items = p.page as typeof items;
      links = p.links;
    } else {
      items.sort((a, b) => (a.created_at! < b.created_at! ? 1 : a.created_at! > b.created_at! ? -1 : a.id < b.id ? 1 : -1));
    }
    return { transfers: items.map((i) => view(rc, i.row, { collection, modern, detail })), ...(links ? { transfers_links: links } : {}) };
  }

  async function accept(rc: RouteContext, modern: boolean, collection: string) {
    const c = rc.cred!;
    const id = rc.params.transfer_id!;
    const body = objectOf(rc.body);
    const a = objectOf(body?.accept);
    if (!body || !a || typeof a.auth_key !== 'string') throw badRequest(`Invalid input for field/attribute auth_key. Value: ${JSON.stringify(a?.auth_key)}. 'auth_key' is a required property`);
    const authKey = a.auth_key;
    const project = c.projectId ?? '';
    // the acceptor is another project: the transfer is found by id alone
    const row = await db.selectFrom('volume_transfers').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound.transfer(id);
    const want = Buffer.from(row.crypt_hash, 'hex');
    const got = Buffer.from(hmac(row.salt, authKey), 'hex');
    if (want.length !== got.length || !timingSafeEqual(want, got)) throw badRequest(`Invalid auth key: Attempt to transfer ${id} with invalid auth key.`);
    await db.transaction().execute(async (tx) => {
      const volume = await tx.selectFrom('volume_volumes').selectAll().where('id', '=', row.volume_id).executeTakeFirst();
      if (!volume || volume.status !== 'awaiting-transfer') throw invalidVolume(`Volume ${row.volume_id} is not awaiting a transfer.`);
      const type = await tx.selectFrom('volume_types').select('name').where('id', '=', volume.volume_type_id).executeTakeFirstOrThrow();
      const snaps = row.no_snapshots ? [] : await tx.selectFrom('volume_snapshots').select(['id', 'size']).where('volume_id', '=', volume.id).execute();
      if (volume.project_id !== project) {
        await checkQuota(tx, project, {
          typeName: type.name, size: volume.size, volumes: 1, snapshots: snaps.length,
          gigabytes: volume.size + snaps.reduce((s, x) => s + x.size, 0),
        });
      }
      const gone = await tx.deleteFrom('volume_transfers').where('id', '=', id).executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) throw notFound.transfer(id);
      const ts = now();
      await tx.updateTable('volume_volumes').set({ project_id: project, user_id: c.userId, status: 'available', updated_at: ts }).where('id', '=', volume.id).execute();
      if (snaps.length) await tx.updateTable('volume_snapshots').set({ project_id: project, user_id: c.userId, updated_at: ts }).where('volume_id', '=', volume.id).execute();
    });
    rc.reply.code(202);
    const accepted = { ...row, project_id: project };
    return { transfer: view(rc, accepted, { collection, modern, detail: false }) };
  }

  async function withdraw(rc: RouteContext) {
    const row = await load(rc, rc.params.transfer_id!);
    await db.transaction().execute(async (tx) => {
      await tx.deleteFrom('volume_transfers').where('id', '=', row.id).execute();
      await tx.updateTable('volume_volumes').set({ status: 'available', updated_at: now() })
        .where('id', '=', row.volume_id).where('status', '=', 'awaiting-transfer').execute();
    });
  }

  return forms.flatMap(({ path, modern }) => {
    const gated = (r: Route) => (modern ? since('3.55', r) : r);
    return [
      route({ method: 'POST', path, rule: 'volume:create_transfer', status: 202, handler: (rc) => create(rc, modern, path) }),
      route({ method: 'GET', path, rule: 'volume:get_all_transfers', handler: (rc) => list(rc, modern, path, false) }),
      route({ method: 'GET', path: `${path}/detail`, rule: 'volume:get_all_transfers', handler: (rc) => list(rc, modern, path, true) }),
      route({
        method: 'GET', path: `${path}/:transfer_id`, rule: 'volume:get_transfer',
        handler: async (rc) => ({ transfer: view(rc, await load(rc, rc.params.transfer_id!), { collection: path, modern, detail: true }) }),
      }),
      route({ method: 'DELETE', path: `${path}/:transfer_id`, rule: 'volume:delete_transfer', status: 202, handler: withdraw }),
      route({ method: 'POST', path: `${path}/:transfer_id/accept`, rule: 'volume:accept_transfer', handler: (rc) => accept(rc, modern, path) }),
    ].map(gated);
  });
}
