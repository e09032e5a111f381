// Allocation candidates: the ways a request can be met. Each request group
// (the unnumbered one, and granular ones from 1.25) is met by one provider
// that has the group's traits and aggregates and the capacity for all of its
// resources; the groups of one candidate come from providers of the same tree,
// distinct ones under group_policy=isolate. Spreading one group over several
// providers of a tree, and sharing providers (MISC_SHARES_VIA_AGGREGATE), are
// not done: every provider Stratus makes today is a root that holds its own
// inventory.
import type { CandidateQuery, RequestGroup } from './query.ts';
import { satisfies } from './query.ts';
import { firstUnfit, type AllocationMap, type ProviderState } from './store.ts';

/** The candidates for `q` among `states`, in provider-name order, at most q.limit. */
export function findCandidates(states: Map<string, ProviderState>, q: CandidateQuery): AllocationMap[] {
  const trees = new Map<string, ProviderState[]>();
  for (const s of states.values()) {
    if (q.inTree && s.provider.root_provider_uuid !== rootOf(states, q.inTree)) continue;
    const list = trees.get(s.provider.root_provider_uuid) ?? [];
    list.push(s);
    trees.set(s.provider.root_provider_uuid, list);
  }
  const groups = [...q.groups.entries()].sort(([a], [b]) => a.localeCompare(b));
  const out: AllocationMap[] = [];
  for (const members of trees.values()) {
    const options = groups.map(([, g]) => members.filter((s) => satisfies(s, g)));
    if (options.some((o) => !o.length)) continue;
    for (const pick of product(options)) {
      if (q.groupPolicy === 'isolate') {
        const numbered = pick.filter((_, i) => groups[i]![0] !== '').map((s) => s.provider.uuid);
        if (new Set(numbered).size !== numbered.length) continue;
      }
      const alloc = combine(pick, groups.map(([, g]) => g));
      if (!alloc) continue;
      if (out.some((o) => sameAllocation(o, alloc))) continue;
      out.push(alloc);
      if (q.limit !== null && out.length >= q.limit) return out;
    }
  }
  return out;
}

function rootOf(states: Map<string, ProviderState>, uuid: string): string | undefined {
  return states.get(uuid)?.provider.root_provider_uuid;
}

function* product<T>(lists: T[][]): Generator<T[]> {
  if (!lists.length) {
    yield [];
    return;
  }
  const [first, ...rest] = lists;
  for (const x of first!) for (const tail of product(rest)) yield [x, ...tail];
}

/** The groups' resources summed per provider, or null when a provider picked twice cannot give the sum. */
function combine(pick: ProviderState[], groups: RequestGroup[]): AllocationMap | null {
  const alloc: AllocationMap = {};
  pick.forEach((s, i) => {
    const res = (alloc[s.provider.uuid] ??= {});
    for (const [rc, n] of Object.entries(groups[i]!.resources)) res[rc] = (res[rc] ?? 0) + n;
  });
  for (const [uuid, res] of Object.entries(alloc)) {
    if (firstUnfit(pick.find((s) => s.provider.uuid === uuid)!, res) !== null) return null;
  }
  return alloc;
}

function sameAllocation(a: AllocationMap, b: AllocationMap): boolean {
  const norm = (m: AllocationMap) => JSON.stringify(Object.keys(m).sort().map((k) => [k, Object.entries(m[k]!).sort()]));
  return norm(a) === norm(b);
}
