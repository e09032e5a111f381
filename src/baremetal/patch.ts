// JSON Patch (RFC 6902) as Ironic takes it on PATCH: a list of
// {op: add|replace|remove, path, value} applied to the resource's updatable
// fields; internal fields are refused ("'/x' is an internal attribute and can
// not be updated"), a field the resource does not have is a 400, as is a
// remove of something absent.
import { E } from './errors.ts';

export type PatchOp = { op: string; path: string; value?: unknown };

export function checkPatch(body: unknown): PatchOp[] {
  if (!Array.isArray(body)) throw E.invalid('Invalid patch: the body must be a JSON patch (a list of operations).');
  return body.map((p) => {
    const o = p as Record<string, unknown>;
    if (!o || typeof o !== 'object' || typeof o.path !== 'string' || typeof o.op !== 'string') throw E.invalid(`Invalid patch: ${JSON.stringify(p)}`);
    if (!['add', 'replace', 'remove'].includes(o.op)) throw E.invalid(`Invalid patch: operation '${o.op}' is not one of add, replace, remove`);
    if (!/^\/[^/]/.test(o.path)) throw E.invalid(`Invalid patch path: '${o.path}'`);
    if (o.op !== 'remove' && !('value' in o)) throw E.invalid(`Invalid patch: '${o.op}' on ${o.path} needs a value`);
    return { op: o.op, path: o.path, value: o.value };
  });
}

const unescape = (s: string) => s.replaceAll('~1', '/').replaceAll('~0', '~');

/**
 * Applies `ops` to `doc` (a copy is made); `writable` names the top-level
 * fields that may change, `internal` those Ironic calls internal.
 */
export function applyPatch(doc: Record<string, unknown>, ops: PatchOp[], writable: ReadonlySet<string>, internal: ReadonlySet<string>): { doc: Record<string, unknown>; touched: Set<string> } {
  const out = structuredClone(doc);
  const touched = new Set<string>();
  for (const op of ops) {
    const parts = op.path.split('/').slice(1).map(unescape);
    const top = parts[0]!;
    if (internal.has(top)) throw E.invalid(`'/${top}' is an internal attribute and can not be updated`);
    if (!writable.has(top)) {
      if (op.op === 'add') throw E.invalid(`Adding a new attribute (/${top}) to the root of the resource is not allowed.`);
      throw E.invalid(`Cannot patch /${top}. The attribute does not exist or cannot be modified.`);
    }
    touched.add(top);
    let parent: Record<string, unknown> = out;
    for (const p of parts.slice(0, -1)) {
      const next = parent[p];
      if (next === undefined || next === null) {
        if (op.op === 'remove') throw E.invalid(`can't remove a non-existent object '${p}'`);
        parent[p] = {};
      } else if (typeof next !== 'object' || Array.isArray(next)) throw E.invalid(`Invalid patch path: '${op.path}'`);
      parent = parent[p] as Record<string, unknown>;
    }
    const last = parts[parts.length - 1]!;
    if (op.op === 'remove') {
      if (parts.length === 1) {
        parent[last] = null;
      } else {
        if (!(last in parent)) throw E.invalid(`can't remove a non-existent object '${last}'`);
        delete parent[last];
      }
    } else if (op.op === 'replace' && parts.length > 1 && !(last in parent)) {
      throw E.invalid(`can't replace a non-existent object '${last}'`);
    } else {
      parent[last] = op.value;
    }
  }
  return { doc: out, touched };
}
