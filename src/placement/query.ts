// Query filters shared by GET /resource_providers and GET
// /allocation_candidates: resources, required (and forbidden) traits,
// member_of, in_tree; and the request groups of allocation candidates
// (granular `resourcesN`, 1.25).
import type { Db } from '../db/database.ts';
import { isStandardClass, isStandardTrait } from './classes.ts';
import { badRequest, PlacementCode } from './errors.ts';
import type { PlacementVersion } from './http.ts';
import type { ProviderState, Resources } from './store.ts';
import { firstUnfit } from './store.ts';

export interface RequestGroup {
  resources: Resources;
  required: string[];
  forbidden: string[];
  /** Each entry: the provider must be in one of these aggregates. */
  memberOf: string[][];
}

const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const one = (name: string, v: string | string[] | undefined): string | undefined => {
  const list = all(v);
  if (list.length > 1) throw badRequest(`Invalid query string parameters: '${name}' may be given once.`, PlacementCode.queryBadValue);
  return list[0];
};

export function parseResources(s: string): Resources {
  const out: Resources = {};
  for (const part of s.split(',')) {
    const m = /^\s*([A-Z0-9_]+)\s*:\s*(\d+)\s*$/.exec(part);
    if (!m) throw badRequest(`Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: ${s}.`, PlacementCode.queryBadValue);
    const n = Number(m[2]);
    if (n < 1) throw badRequest(`Requested resource ${m[1]} expected positive integer amount. Got: ${m[2]}.`, PlacementCode.queryBadValue);
    if (out[m[1]!] !== undefined) throw badRequest(`Badly formed resources parameter: resource class ${m[1]} given twice.`, PlacementCode.queryBadValue);
    out[m[1]!] = n;
  }
  return out;
}

export function parseTraits(s: string, v: PlacementVersion): { required: string[]; forbidden: string[] } {
  const required: string[] = [];
  const forbidden: string[] = [];
  for (const raw of s.split(',').map((t) => t.trim())) {
    if (!raw) throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: ${s}`, PlacementCode.queryBadValue);
    if (raw.startsWith('!')) {
      if (v.lt('1.22')) throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: ${s}`, PlacementCode.queryBadValue);
      forbidden.push(raw.slice(1));
    } else required.push(raw);
  }
  const both = required.filter((t) => forbidden.includes(t));
  if (both.length) throw badRequest(`Conflicting required and forbidden traits found in the following traits keys: ${both.join(', ')}`, PlacementCode.queryBadValue);
  return { required, forbidden };
}

/** member_of=in:a,b or member_of=a (several member_of params from 1.24). */
export function parseMemberOf(values: string[], v: PlacementVersion): string[][] {
  if (values.length > 1 && v.lt('1.24')) throw badRequest("Invalid query string parameters: 'member_of' may be given once.", PlacementCode.queryBadValue);
  return values.map((val) => {
    const list = val.startsWith('in:') ? val.slice(3).split(',') : [val];
    for (const u of list) {
      if (!/^[0-9a-fA-F-]{32,36}$/.test(u)) throw badRequest(`Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: ${val}`, PlacementCode.queryBadValue);
    }
    return list.map((u) => u.toLowerCase());
  });
}

/** Refuses resource classes and traits no one defined (Placement's 400s). */
export async function checkNames(db: Db, groups: RequestGroup[]): Promise<void> {
  const classes = [...new Set(groups.flatMap((g) => Object.keys(g.resources)))].filter((c) => !isStandardClass(c));
  if (classes.length) {
    const known = new Set((await db.selectFrom('placement_resource_classes').select('name').where('name', 'in', classes).execute()).map((r) => r.name));
    const missing = classes.filter((c) => !known.has(c));
    if (missing.length) throw badRequest(`Invalid resource class in resources parameter: No such resource class ${missing[0]}.`);
  }
  const traits = [...new Set(groups.flatMap((g) => [...g.required, ...g.forbidden]))].filter((t) => !isStandardTrait(t));
  if (traits.length) {
    const known = new Set((await db.selectFrom('placement_traits').select('name').where('name', 'in', traits).execute()).map((r) => r.name));
    const missing = traits.filter((t) => !known.has(t));
    if (missing.length) throw badRequest(`No such trait(s): ${missing.join(', ')}.`);
  }
}

/** True when a provider's traits and aggregates satisfy the group (resources aside). */
export function qualifies(s: ProviderState, g: RequestGroup): boolean {
  if (!g.required.every((t) => s.traits.has(t))) return false;
  if (g.forbidden.some((t) => s.traits.has(t))) return false;
  return g.memberOf.every((any) => any.some((a) => s.aggregates.has(a)));
}

/** True when the provider can give the whole group by itself. */
export const satisfies = (s: ProviderState, g: RequestGroup): boolean => qualifies(s, g) && firstUnfit(s, g.resources) === null;

export interface CandidateQuery {
  /** '' is the unnumbered group; '1', '2'... the granular ones. */
  groups: Map<string, RequestGroup>;
  groupPolicy: 'none' | 'isolate' | null;
  limit: number | null;
  inTree: string | null;
}

const GROUP_KEY = /^(resources|required|member_of)(\d*)$/;

export function parseCandidateQuery(query: Record<string, string | string[] | undefined>, v: PlacementVersion): CandidateQuery {
  const groups = new Map<string, RequestGroup>();
  const group = (suffix: string) => {
    let g = groups.get(suffix);
    if (!g) groups.set(suffix, g = { resources: {}, required: [], forbidden: [], memberOf: [] });
    return g;
  };
  const allowed = new Set(['resources', 'required', 'member_of', 'limit', 'in_tree', 'group_policy']);
  for (const [key, value] of Object.entries(query)) {
    const m = GROUP_KEY.exec(key);
    const numbered = m && m[2] !== '';
    if (!allowed.has(key) && !(numbered && v.ge('1.25'))) throw badRequest(`Invalid query string parameters: Additional properties are not allowed ('${key}' was unexpected)`);
    if (!m) continue;
    const [, kind, suffix] = m as unknown as [string, 'resources' | 'required' | 'member_of', string];
    if (kind === 'resources') group(suffix).resources = parseResources(one(key, value) ?? '');
    else if (kind === 'required') {
      if (v.lt('1.17')) throw badRequest("Invalid query string parameters: Additional properties are not allowed ('required' was unexpected)");
      const t = parseTraits(one(key, value) ?? '', v);
      Object.assign(group(suffix), { required: t.required, forbidden: t.forbidden });
    } else {
      if (v.lt('1.21')) throw badRequest("Invalid query string parameters: Additional properties are not allowed ('member_of' was unexpected)");
      group(suffix).memberOf = parseMemberOf(all(value), v);
    }
  }
  for (const [suffix, g] of groups) {
    if (!Object.keys(g.resources).length) {
      throw badRequest(suffix === '' && groups.size === 1
        ? "Invalid query string parameters: 'resources' is a required property"
        : `All request groups must specify resources. (group ${suffix || 'unnumbered'})`, PlacementCode.queryMissingValue);
    }
  }
  if (!groups.size) throw badRequest("Invalid query string parameters: 'resources' is a required property", PlacementCode.queryMissingValue);
  const limitRaw = one('limit', query.limit);
  let limit: number | null = null;
  if (limitRaw !== undefined) {
    if (v.lt('1.16') || !/^[1-9]\d*$/.test(limitRaw)) throw badRequest(`Invalid query string parameters: limit must be a positive integer. Got: ${limitRaw}`, PlacementCode.queryBadValue);
    limit = Number(limitRaw);
  }
  const policy = one('group_policy', query.group_policy);
  if (policy !== undefined && (v.lt('1.25') || (policy !== 'none' && policy !== 'isolate'))) {
    throw badRequest(`Invalid query string parameters: group_policy must be none or isolate. Got: ${policy}`, PlacementCode.queryBadValue);
  }
  const numbered = [...groups.keys()].filter((k) => k !== '').length;
  if (numbered > 1 && policy === undefined) throw badRequest('The "group_policy" parameter is required when specifying more than one "resources{N}" parameter.', PlacementCode.queryMissingValue);
  const inTree = one('in_tree', query.in_tree) ?? null;
  if (inTree !== null && v.lt('1.14')) throw badRequest("Invalid query string parameters: Additional properties are not allowed ('in_tree' was unexpected)");
  return { groups, groupPolicy: (policy as 'none' | 'isolate' | undefined) ?? null, limit, inTree: inTree?.toLowerCase() ?? null };
}
