// Layers only depend downward: routes -> services -> store/drivers; no module
// imports itself through others; services use each other only through their
// declared in-process interfaces. Checked on the import statements of every
// source file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const SRC = resolve(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
    out.push(relative(SRC, resolve(dirname(file), (m[1] ?? m[2])!)));
  }
  return out;
}

/** What each layer may never import. */
const FORBIDDEN: Array<{ from: RegExp; to: RegExp; why: string }> = [
  { from: /^common\//, to: /^(?!common\/)/, why: 'common is the bottom layer' },
  { from: /^http\//, to: /^(?!(common|http)\/)/, why: 'the HTTP layer knows no service' },
  { from: /^db\//, to: /^(?!(db\/|common\/|[a-z]+\/schema\.ts$))/, why: 'the database layer knows only schemas' },
  { from: /^agent\//, to: /(^|\/)(routes|api)\/|^http\/server|^server\//, why: 'drivers never import routes' },
  { from: /^fleet\//, to: /^(?!(common|http|db|fleet)\/)/, why: 'the fleet knows no service: services register their resource kinds with it (its own tables: fleet/schema.ts)' },
  { from: /^agent\//, to: /^fleet\/(?!protocol\.ts$)/, why: 'the agent knows the fleet only by its wire protocol' },
  { from: /^dashboard\//, to: /^(?!(common|http|dashboard)\/)/, why: 'the dashboard only serves its files: it reaches the services through their public APIs, as every client' },
  { from: /^(?!cli\/)/, to: /^cli\//, why: 'nothing imports the CLI' },
  { from: /^(?!(cli|server)\/)/, to: /^server\//, why: 'only the CLI starts servers' },
  { from: /^(?!(cli|vbmc)\/)/, to: /^vbmc\//, why: 'the virtual bare-metal machines and BMCs are the CLI\'s (tests and demos), never the product\'s' },
  { from: /^vbmc\//, to: /^(?!(common|vbmc)\/|agent\/drivers\/vm\/(qmp|accel)\.ts$|agent\/exec\.ts$)/, why: 'the virtual BMCs use common, the QMP client, the accelerator probe and exec, nothing of a service' },
];

test('source layers depend only downward', () => {
  const violations: string[] = [];
  for (const f of files(SRC)) {
    const from = relative(SRC, f);
    for (const to of imports(f)) {
      for (const rule of FORBIDDEN) {
        if (rule.from.test(from) && rule.to.test(to)) violations.push(`${from} -> ${to}: ${rule.why}`);
      }
    }
  }
  assert.deepEqual(violations, []);
});

/** Every source file and the source files it imports, type-only imports included. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(SRC)) g.set(relative(SRC, f), imports(f));
  return g;
}

/**
 * The import cycles among source files: each strongly connected component of
 * more than one file (Tarjan's algorithm), as a sorted list of its files.
 */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (g.get(v) ?? []).includes(v)) out.push(component.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

// Type-only imports count: a cycle through types still ties two modules'
// designs together (the API's context named the engine's module, which named
// the service wiring the API), and breaking one costs only moving the shared
// type to a module below both.
test('no import cycles among source files', () => {
  assert.deepEqual(cycles(graph()), []);
});

test('the cycle check finds a cycle', () => {
  const g = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]]);
  assert.deepEqual(cycles(g), [['a.ts', 'b.ts', 'c.ts']]);
});

/**
 * The in-process interfaces of each service (and of compute's agent protocol):
 * the only modules of a service that another service (or the agent) may
 * import. Code in no service is not held to them: the wiring (server/, cli/)
 * and the database layer (which reads every service's schema.ts).
 */
const INTERFACES: Record<string, readonly string[]> = {
  // IdentityContext; lookups of projects and unified limits; REGION, the one
  // region bootstrap registers endpoints in (bootstrap.ts holds it today).
  // basic-auth.ts: HTTP Basic logins for the registry's token endpoint.
  // ec2.ts: EC2 credentials' secrets and callers, for the object store's S3 signatures.
  identity: ['identity/context.ts', 'identity/lookup.ts', 'identity/bootstrap.ts', 'identity/ec2.ts', 'identity/basic-auth.ts'],
  // ImageService: records and data (never HTTP to ourselves).
  image: ['image/service.ts'],
  // What the host agent speaks and the server states it reads.
  compute: ['compute/engine/protocol.ts', 'compute/schema.ts'],
  // NetworkService wiring; the wire contract of the network kinds agents converge.
  network: ['network/service.ts', 'network/protocol.ts'],
  // VolumeService wiring; the wire contract of the volume kind a volume backend will converge.
  volume: ['volume/service.ts', 'volume/protocol.ts'],
  // ObjectService: the ObjectStore every API keeping bytes uses (S3 and Swift live in the folder).
  object: ['object/service.ts'],
  // RegistryService wiring (the registry's GC, for the CLI and the server).
  registry: ['registry/service.ts'],
  // BaremetalService wiring and compute's way to nodes; the wire contract of the baremetal_node kind conductors converge.
  baremetal: ['baremetal/service.ts', 'baremetal/protocol.ts'],
};
const SERVICES = ['identity', 'image', 'compute', 'network', 'volume', 'object', 'registry', 'baremetal', 'agent'];

const serviceOf = (file: string): string | undefined => SERVICES.find((s) => file.startsWith(`${s}/`));

function undeclaredServiceImports(g: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [from, targets] of g) {
    const own = serviceOf(from);
    if (!own) continue;
    for (const to of targets) {
      const other = serviceOf(to);
      if (!other || other === own) continue;
      if (!(INTERFACES[other] ?? []).includes(to)) out.push(`${from} -> ${to}: ${other} is used only through ${(INTERFACES[other] ?? []).join(', ') || 'nothing'}`);
    }
  }
  return out;
}

test('services use each other only through their declared interfaces', () => {
  assert.deepEqual(undeclaredServiceImports(graph()), []);
});

test('the service check finds an undeclared import', () => {
  const g = new Map([['compute/api/x.ts', ['image/routes/images.ts', 'image/service.ts', 'compute/api/y.ts']]]);
  assert.deepEqual(undeclaredServiceImports(g), ['compute/api/x.ts -> image/routes/images.ts: image is used only through image/service.ts']);
});
