// /flavors, /flavors/detail, /flavors/{id}, extra specs (os-extra_specs),
// flavor access (os-flavor-access, addTenantAccess/removeTenantAccess), and the
// default flavors a fresh cloud starts with.
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badRequest, conflict, notFound } from '../../common/errors.ts';
import { nowIso, uuid } from '../../common/ids.ts';
import type { Db } from '../../db/database.ts';
import type { Credentials } from '../../http/auth.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import { getProject } from '../../identity/lookup.ts';
import type { ComputeContext } from './context.ts';
import { actionOf, keyedBy, apiVersion, boolFrom, checkName, isPrintable, links, mv, nextLinks, pageParams, q, strictQuery, validate, versioned, objectOf } from './http.ts';
import { conflictOnDuplicate, ignoreDuplicate } from '../../db/unique.ts';
import { isComputeAdmin } from './policy.ts';

export type FlavorRow = {
  id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number;
  rxtx_factor: number; is_public: number; disabled: number; description: string | null; created_at: string; deleted_at: string | null;
};

/** The flavors a fresh cloud starts with: devstack's, plus a small one for containers. */
export const DEFAULT_FLAVORS: Array<Pick<FlavorRow, 'id' | 'name' | 'ram' | 'vcpus' | 'disk'> & { description?: string }> = [
  { id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1 },
  { id: '2', name: 'm1.small', ram: 2048, vcpus: 1, disk: 20 },
  { id: '3', name: 'm1.medium', ram: 4096, vcpus: 2, disk: 40 },
  { id: '4', name: 'm1.large', ram: 8192, vcpus: 4, disk: 80 },
  { id: '5', name: 'm1.xlarge', ram: 16384, vcpus: 8, disk: 160 },
  { id: '42', name: 'm1.nano', ram: 128, vcpus: 1, disk: 1 },
  { id: '84', name: 'm1.micro', ram: 192, vcpus: 1, disk: 1 },
  { id: 'c1', name: 'c1.container', ram: 64, vcpus: 1, disk: 1, description: 'A small flavor for container servers' },
];

/** Creates the default flavors once per cloud (a marker row remembers it, so deleted defaults stay deleted). */
export async function seedDefaultFlavors(db: Db): Promise<void> {
  const seeded = await db.selectFrom('compute_meta').select('value').where('key', '=', 'default_flavors').executeTakeFirst();
  if (seeded) return;
  // Another replica may seed at the same moment: its marker row makes ours a duplicate.
  await ignoreDuplicate(db.transaction().execute(async (tx) => {
    await tx.insertInto('compute_meta').values({ key: 'default_flavors', value: nowIso() }).execute();
    for (const f of DEFAULT_FLAVORS) {
      const exists = await tx.selectFrom('compute_flavors').select('id').where((eb) => eb.or([eb('id', '=', f.id), eb('name', '=', f.name)])).executeTakeFirst();
      if (exists) continue;
      await tx.insertInto('compute_flavors').values({
        id: f.id, name: f.name, vcpus: f.vcpus, ram: f.ram, disk: f.disk, ephemeral: 0, swap: 0, rxtx_factor: 1,
        is_public: 1, disabled: 0, description: f.description ?? null, created_at: nowIso(), deleted_at: null,
      }).execute();
    }
  }));
}

export async function extraSpecsOf(db: Db, flavorId: string): Promise<Record<string, string>> {
  const rows = await db.selectFrom('compute_flavor_extra_specs').select(['key', 'value']).where('flavor_id', '=', flavorId).orderBy('key').execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** A flavor the caller may use: public, or private with access for the caller's project (admins see all). */
export async function findFlavor(db: Db, cred: Credentials, id: string): Promise<FlavorRow | undefined> {
  const f = await db.selectFrom('compute_flavors').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
  if (!f) return undefined;
  if (f.is_public || isComputeAdmin(cred)) return f;
  if (!cred.projectId) return undefined;
  const access = await db.selectFrom('compute_flavor_access').select('project_id').where('flavor_id', '=', id).where('project_id', '=', cred.projectId).executeTakeFirst();
  return access ? f : undefined;
}

const flavorMissing = (id: string) => notFound(`Flavor ${id} could not be found.`);

export function flavorBrief(req: FastifyRequest, f: FlavorRow) {
  const v = apiVersion(req);
  return { id: f.id, name: f.name, links: links(req, 'flavors', f.id), ...(v.ge('2.55') ? { description: f.description } : {}) };
}

export function flavorDetail(req: FastifyRequest, f: FlavorRow, extraSpecs?: Record<string, string>) {
  const v = apiVersion(req);
  const out: Record<string, unknown> = {
    id: f.id, name: f.name, ram: f.ram, disk: f.disk, swap: v.ge('2.75') ? f.swap : f.swap || '',
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeral, 'OS-FLV-DISABLED:disabled': f.disabled === 1, vcpus: f.vcpus,
    'os-flavor-access:is_public': f.is_public === 1, rxtx_factor: f.rxtx_factor, links: links(req, 'flavors', f.id),
  };
  if (v.ge('2.55')) out.description = f.description;
  if (v.ge('2.61') && extraSpecs) out.extra_specs = extraSpecs;
  return out;
}

const SORT_KEYS: Record<string, keyof FlavorRow> = {
  created_at: 'created_at', description: 'description', disabled: 'disabled', ephemeral_gb: 'ephemeral', flavorid: 'id', id: 'created_at',
  is_public: 'is_public', memory_mb: 'ram', name: 'name', root_gb: 'disk', rxtx_factor: 'rxtx_factor', swap: 'swap', updated_at: 'created_at',
  vcpu_weight: 'id', vcpus: 'vcpus',
};

function parseIsPublic(v: string | undefined): boolean | null {
  if (v === undefined) return true;
  if (v.toLowerCase() === 'none') return null;
  try {
    return boolFrom(v, true);
  } catch {
    throw badRequest(`Invalid is_public filter [${v}]`);
  }
}

async function listFlavors(ctx: ComputeContext, rc: RouteContext): Promise<FlavorRow[]> {
  const v = mv(rc);
  if (v.ge('2.75')) strictQuery(rc, ['limit', 'marker', 'is_public', 'minRam', 'minDisk', 'sort_key', 'sort_dir']);
  const cred = rc.cred!;
  const admin = isComputeAdmin(cred);
  const isPublic = admin ? parseIsPublic(q(rc, 'is_public')) : true;
  let rows = await ctx.db.selectFrom('compute_flavors').selectAll().where('deleted_at', 'is', null).execute();
  if (!admin) rows = rows.filter((f) => f.disabled === 0);
  if (isPublic !== null) {
    const access = cred.projectId
      ? new Set((await ctx.db.selectFrom('compute_flavor_access').select('flavor_id').where('project_id', '=', cred.projectId).execute()).map((r) => r.flavor_id))
      : new Set<string>();
    rows = rows.filter((f) => (f.is_public === 1) === isPublic || (isPublic && access.has(f.id)));
  }
  for (const [param, col] of [['minRam', 'ram'], ['minDisk', 'disk']] as const) {
    const raw = q(rc, param);
    if (raw === undefined) continue;
    if (!/^-?\d+$/.test(raw.trim())) throw badRequest(`Invalid ${param} filter [${raw}]`);
    const n = Number(raw);
    rows = rows.filter((f) => f[col] >= n);
  }
  const sortKey = q(rc, 'sort_key') || 'flavorid';
  const sortDir = q(rc, 'sort_dir') || 'asc';
  if (!(sortKey in SORT_KEYS)) throw badRequest(`Invalid input for query parameters sort_key. Value: ${sortKey}. '${sortKey}' is not one of ${Object.keys(SORT_KEYS).join(', ')}`);
  if (sortDir !== 'asc' && sortDir !== 'desc') throw badRequest(`Invalid input for query parameters sort_dir. Value: ${sortDir}. '${sortDir}' is not one of ['asc', 'desc']`);
  const col = SORT_KEYS[sortKey]!;
  const dir = sortDir === 'asc' ? 1 : -1;
  rows.sort((a, b) => {
    const x = a[col] ?? '';
    const y = b[col] ?? '';
    const c = x < y ? -1 : x > y ? 1 : 0;
    return c !== 0 ? c * dir : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const { limit, marker } = pageParams(rc);
  if (marker !== undefined) {
    const i = rows.findIndex((f) => f.id === marker);
    if (i < 0) throw badRequest(`marker [${marker}] not found`);
    rows = rows.slice(i + 1);
  }
  return rows.slice(0, limit);
}

// ---- request bodies

const IntLike = (min: number) => Type.Union([
  Type.Integer({ minimum: min, maximum: 2147483647 }),
  Type.String({ pattern: '^[0-9]+$', minLength: 1 }),
]);
const FlavorCreate = Type.Object({
  flavor: Type.Object({
    name: Type.String(),
    id: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^(?! )[a-zA-Z0-9. _-]+(?<! )$' }), Type.Number(), Type.Null()])),
    ram: IntLike(1),
    vcpus: IntLike(1),
    disk: IntLike(0),
    'OS-FLV-EXT-DATA:ephemeral': Type.Optional(IntLike(0)),
    swap: Type.Optional(IntLike(0)),
    rxtx_factor: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 3.40282e38 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' })])),
    'os-flavor-access:is_public': Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 65535 }), Type.Null()])),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
const FlavorUpdate = Type.Object({
  flavor: Type.Object({ description: Type.Union([Type.String({ maxLength: 65535 }), Type.Null()]) }, { additionalProperties: false }),
}, { additionalProperties: false });

const SPEC_KEY = '^[a-zA-Z0-9-_:. ]{1,255}$';
const SpecValue = Type.Union([Type.String({ minLength: 0, maxLength: 255 }), Type.Number(), Type.Boolean()]);
const SpecsBody = Type.Object({
  extra_specs: keyedBy(SPEC_KEY, SpecValue),
}, { additionalProperties: false });
const OneSpecBody = keyedBy(SPEC_KEY, SpecValue, { minProperties: 1, maxProperties: 1 });

const specString = (v: unknown): string => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));

// Nova validates extra specs in the namespaces it knows from 2.86 on; a few keys
// are checked here, and unknown keys in the 'hw' namespace are refused.
const HW_ENUMS: Record<string, string[]> = {
  'hw:cpu_policy': ['dedicated', 'shared', 'mixed'],
  'hw:cpu_thread_policy': ['prefer', 'isolate', 'require'],
  'hw:emulator_threads_policy': ['share', 'isolate'],
  'hw:watchdog_action': ['none', 'pause', 'poweroff', 'reset', 'disabled'],
  'hw:mem_encryption': ['true', 'false', 'True', 'False', '1', '0', 'yes', 'no'],
  'hw:boot_menu': ['true', 'false', 'True', 'False', '1', '0', 'yes', 'no'],
  'hw:pmu': ['true', 'false', 'True', 'False', '1', '0', 'yes', 'no'],
  // Stratus's own: a container image's server in a VM of its own (kinds.ts isolatedKind)
  'hw:isolation': ['vm'],
};
const HW_INTS = new Set(['hw:numa_nodes', 'hw:cpu_sockets', 'hw:cpu_cores', 'hw:cpu_threads', 'hw:cpu_max_sockets', 'hw:cpu_max_cores',
  'hw:cpu_max_threads', 'hw:serial_port_count', 'hw:cpu_realtime_mask', 'hw:cpu_dedicated_mask', 'hw:mem_page_size', 'hw:vif_multiqueue_enabled',
  'hw:locked_memory', 'hw:tpm_version', 'hw:tpm_model', 'hw:cpu_realtime', 'hw:pci_numa_affinity_policy', 'hw:virtio_packed_ring',
  'hw:maxphysaddr_mode', 'hw:maxphysaddr_bits', 'hw:viommu_model', 'hw:ephemeral_encryption', 'hw:ephemeral_encryption_format',
  'hw:firmware_type', 'hw:machine_type', 'hw:hide_hypervisor_id', 'hw:cpu_model', 'hw:sound_model', 'hw:usb_model', 'hw:redirected_usb_ports',
  'hw:tpm_secret_security']);
const HW_PREFIXES = ['hw:numa_cpus.', 'hw:numa_mem.', 'hw:cpu_realtime'];

function validateExtraSpec(key: string, value: string): void {
  const fail = (why: string) => badRequest(`Validation failed; ${why}`);
  if (key.startsWith('hw:')) {
    if (key in HW_ENUMS) {
      if (!HW_ENUMS[key]!.includes(value)) throw fail(`value '${value}' for extra spec '${key}' is not one of: ${HW_ENUMS[key]!.join(', ')}.`);
      return;
    }
    if (key === 'hw:numa_nodes' && !/^\d+$/.test(value)) throw fail(`value '${value}' for extra spec '${key}' must be an integer.`);
    if (HW_INTS.has(key) || HW_PREFIXES.some((p) => key.startsWith(p))) return;
    throw fail(`extra spec '${key}' does not exist.`);
  }
  if (key.startsWith('resources') && key.includes(':') && !/^\d+$/.test(value)) throw fail(`value '${value}' for extra spec '${key}' must be an integer.`);
  if (key.startsWith('trait') && key.includes(':') && !['required', 'forbidden'].includes(value)) {
    throw fail(`value '${value}' for extra spec '${key}' is not one of: required, forbidden.`);
  }
}

function checkSpecs(rc: RouteContext, specs: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, raw] of Object.entries(specs)) {
    const v = specString(raw);
    if (v.length > 255) throw badRequest(`extra_specs value must be at most 255 characters long.`);
    if (mv(rc).ge('2.86')) validateExtraSpec(k, v);
    out[k] = v;
  }
  return out;
}

async function saveSpecs(db: Db, flavorId: string, specs: Record<string, string>): Promise<void> {
  await db.transaction().execute(async (tx) => {
    for (const [key, value] of Object.entries(specs)) {
      const r = await tx.updateTable('compute_flavor_extra_specs').set({ value }).where('flavor_id', '=', flavorId).where('key', '=', key).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) await tx.insertInto('compute_flavor_extra_specs').values({ flavor_id: flavorId, key, value }).execute();
    }
  });
}

async function accessList(db: Db, flavorId: string) {
  const rows = await db.selectFrom('compute_flavor_access').select('project_id').where('flavor_id', '=', flavorId).orderBy('project_id').execute();
  return { flavor_access: rows.map((r) => ({ flavor_id: flavorId, tenant_id: r.project_id })) };
}

export function flavorRoutes(ctx: ComputeContext): Route[] {
  const db = ctx.db;
  const load = async (rc: RouteContext, id: string) => {
    const f = await findFlavor(db, rc.cred!, id);
    if (!f) throw flavorMissing(id);
    return f;
  };
  /** Extra specs in the flavor body from 2.61, for whoever may read them (everyone, by default). */
  const specsFor = async (rc: RouteContext, f: FlavorRow) => (mv(rc).ge('2.61') ? extraSpecsOf(db, f.id) : undefined);
  return [
    route({
      method: 'GET', path: '/v2.1/flavors', rule: 'os_compute_api:flavors',
      async handler(rc) {
        const rows = await listFlavors(ctx, rc);
        const { limit } = pageParams(rc);
        const next = nextLinks(rc.req, 'flavors', rows, rows.at(-1)?.id, limit);
        return { flavors: rows.map((f) => flavorBrief(rc.req, f)), ...(next ? { flavors_links: next } : {}) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/flavors/detail', rule: 'os_compute_api:flavors',
      async handler(rc) {
        const rows = await listFlavors(ctx, rc);
        const { limit } = pageParams(rc);
        const next = nextLinks(rc.req, 'flavors/detail', rows, rows.at(-1)?.id, limit);
        const out = [];
        for (const f of rows) out.push(flavorDetail(rc.req, f, await specsFor(rc, f)));
        return { flavors: out, ...(next ? { flavors_links: next } : {}) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/flavors/:flavor_id', rule: 'os_compute_api:flavors',
      async handler(rc) {
        const f = await load(rc, rc.params.flavor_id!);
        return { flavor: flavorDetail(rc.req, f, await specsFor(rc, f)) };
      },
    }),
    route({
      method: 'POST', path: '/v2.1/flavors', rule: 'os_compute_api:os-flavor-manage',
      async handler(rc) {
        const v = mv(rc);
        const body = validate(FlavorCreate, rc.body).flavor;
        if (body.description !== undefined && v.lt('2.55')) throw badRequest(`Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)`);
        if (typeof body.description === 'string' && !isPrintable(body.description)) throw badRequest('Invalid input for field/attribute description.');
        const name = checkName('name', body.name).trim();
        const id = body.id === undefined || body.id === null || body.id === '' ? uuid() : String(body.id);
        let isPublic = true;
        if (body['os-flavor-access:is_public'] !== undefined) {
          try {
            isPublic = boolFrom(body['os-flavor-access:is_public'], true);
          } catch {
            throw badRequest(`Invalid input for field/attribute os-flavor-access:is_public. Value: ${String(body['os-flavor-access:is_public'])}.`);
          }
        }
        const int = (x: unknown, d = 0) => (x === undefined ? d : Number(x));
        const row: FlavorRow = {
          id, name, ram: int(body.ram), vcpus: int(body.vcpus), disk: int(body.disk), ephemeral: int(body['OS-FLV-EXT-DATA:ephemeral']),
          swap: int(body.swap), rxtx_factor: body.rxtx_factor === undefined ? 1 : Number(body.rxtx_factor), is_public: isPublic ? 1 : 0,
          disabled: 0, description: v.ge('2.55') ? body.description ?? null : null, created_at: nowIso(), deleted_at: null,
        };
        for (const k of ['ram', 'vcpus', 'disk', 'ephemeral', 'swap'] as const) {
          if (!Number.isSafeInteger(row[k]) || row[k] > 2147483647) throw badRequest(`Invalid input for field/attribute ${k}.`);
        }
        if (row.ram < 1 || row.vcpus < 1) throw badRequest(`Invalid input for field/attribute ${row.ram < 1 ? 'ram' : 'vcpus'}. Value must be >= 1.`);
        if (!(row.rxtx_factor > 0)) throw badRequest(`'rxtx_factor' argument must be a float between 0 and 3.40282e+38`);
        await db.transaction().execute(async (tx) => {
          if (await tx.selectFrom('compute_flavors').select('id').where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirst()) {
            throw conflict(`Flavor with name ${name} already exists.`);
          }
          if (await tx.selectFrom('compute_flavors').select('id').where('id', '=', id).executeTakeFirst()) throw conflict(`Flavor with ID ${id} already exists.`);
          await tx.insertInto('compute_flavors').values(row).execute();
        });
        return { flavor: flavorDetail(rc.req, row, v.ge('2.61') ? {} : undefined) };
      },
    }),
    versioned(route({
      method: 'PUT', path: '/v2.1/flavors/:flavor_id', rule: 'os_compute_api:os-flavor-manage',
      async handler(rc) {
        const body = validate(FlavorUpdate, rc.body).flavor;
        if (typeof body.description === 'string' && !isPrintable(body.description)) throw badRequest('Invalid input for field/attribute description.');
        const f = await load(rc, rc.params.flavor_id!);
        f.description = body.description;
        await db.updateTable('compute_flavors').set({ description: f.description }).where('id', '=', f.id).execute();
        return { flavor: flavorDetail(rc.req, f, await specsFor(rc, f)) };
      },
    }), '2.55'),
    route({
      method: 'DELETE', path: '/v2.1/flavors/:flavor_id', rule: 'os_compute_api:os-flavor-manage', status: 202,
      async handler(rc) {
        const id = rc.params.flavor_id!;
        await db.transaction().execute(async (tx) => {
          const r = await tx.deleteFrom('compute_flavors').where('id', '=', id).executeTakeFirst();
          if (Number(r.numDeletedRows) === 0) throw flavorMissing(id);
          await tx.deleteFrom('compute_flavor_extra_specs').where('flavor_id', '=', id).execute();
          await tx.deleteFrom('compute_flavor_access').where('flavor_id', '=', id).execute();
        });
      },
    }),
    // extra specs
    route({
      method: 'GET', path: '/v2.1/flavors/:flavor_id/os-extra_specs', rule: 'os_compute_api:os-flavor-extra-specs:index',
      async handler(rc) {
        const f = await load(rc, rc.params.flavor_id!);
        return { extra_specs: await extraSpecsOf(db, f.id) };
      },
    }),
    route({
      method: 'POST', path: '/v2.1/flavors/:flavor_id/os-extra_specs', rule: 'os_compute_api:os-flavor-extra-specs:change',
      async handler(rc) {
        const body = validate(SpecsBody, rc.body);
        const specs = checkSpecs(rc, body.extra_specs);
        const f = await load(rc, rc.params.flavor_id!);
        await saveSpecs(db, f.id, specs);
        return { extra_specs: specs };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/flavors/:flavor_id/os-extra_specs/:key', rule: 'os_compute_api:os-flavor-extra-specs:index',
      async handler(rc) {
        const f = await load(rc, rc.params.flavor_id!);
        const key = rc.params.key!;
        const row = await db.selectFrom('compute_flavor_extra_specs').select('value').where('flavor_id', '=', f.id).where('key', '=', key).executeTakeFirst();
        if (!row) throw notFound(`Flavor ${f.id} has no extra specs with key ${key}.`);
        return { [key]: row.value };
      },
    }),
    route({
      method: 'PUT', path: '/v2.1/flavors/:flavor_id/os-extra_specs/:key', rule: 'os_compute_api:os-flavor-extra-specs:change',
      async handler(rc) {
        const body = validate(OneSpecBody, rc.body);
        const key = rc.params.key!;
        if (!(key in body)) throw badRequest('Request body and URI mismatch');
        const specs = checkSpecs(rc, body);
        const f = await load(rc, rc.params.flavor_id!);
        await saveSpecs(db, f.id, specs);
        return { [key]: specs[key] };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/flavors/:flavor_id/os-extra_specs/:key', rule: 'os_compute_api:os-flavor-extra-specs:change',
      async handler(rc) {
        const f = await load(rc, rc.params.flavor_id!);
        const key = rc.params.key!;
        const r = await db.deleteFrom('compute_flavor_extra_specs').where('flavor_id', '=', f.id).where('key', '=', key).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound(`Flavor ${f.id} has no extra specs with key ${key}.`);
      },
    }),
    // access
    route({
      method: 'GET', path: '/v2.1/flavors/:flavor_id/os-flavor-access', rule: 'os_compute_api:os-flavor-access',
      async handler(rc) {
        const f = await load(rc, rc.params.flavor_id!);
        if (f.is_public) throw notFound('Access list not available for public flavors.');
        return accessList(db, f.id);
      },
    }),
    route({
      method: 'POST', path: '/v2.1/flavors/:flavor_id/action', rule: 'os_compute_api:os-flavor-access',
      async handler(rc) {
        const [action, arg] = actionOf(rc.body);
        if (action !== 'addTenantAccess' && action !== 'removeTenantAccess') throw notFound('The resource could not be found.');
        const given = objectOf(arg);
        const tenant = given?.tenant;
        if (typeof tenant !== 'string' || !/^[a-zA-Z0-9-]{1,255}$/.test(tenant) || Object.keys(given!).length !== 1) {
          throw badRequest(`Invalid input for field/attribute ${action}. Value: ${JSON.stringify(arg)}. 'tenant' is a required property`);
        }
        const projectKnown = Boolean(await getProject(db, tenant));
        const f = await load(rc, rc.params.flavor_id!);
        if (action === 'addTenantAccess') {
          if (!projectKnown) throw badRequest(`Project ID ${tenant} is not a valid project.`);
          if (mv(rc).ge('2.7') && f.is_public) throw conflict('Can not add access to a public flavor.');
          await conflictOnDuplicate(db.insertInto('compute_flavor_access').values({ flavor_id: f.id, project_id: tenant }).execute(),
            () => conflict(`Flavor access already exists for flavor ${f.id} and project ${tenant} combination.`));
        } else {
          const r = await db.deleteFrom('compute_flavor_access').where('flavor_id', '=', f.id).where('project_id', '=', tenant).executeTakeFirst();
          if (Number(r.numDeletedRows) === 0) throw notFound(`Flavor access not found for ${f.id} / ${tenant} combination.`);
        }
        return accessList(db, f.id);
      },
    }),
  ];
}

