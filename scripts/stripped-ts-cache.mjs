// Preloaded into every Node process the bin/ scripts start (NODE_OPTIONS,
// scripts/node-env.sh): serves our TypeScript modules already type-stripped
// from a cache on disk, keyed by Node's version and the file's content.
//
// Why not Node's own compile cache (NODE_COMPILE_CACHE): it also keeps V8's
// code cache of every loaded module in memory for the life of the process,
// about 6 MiB for the server's ~960 modules, with no measured gain in start
// time. Without any cache, Node loads the type stripper's wasm, which stays
// at about 12 MiB. A miss here strips with Node's own stripper (the same
// code path Node takes) and writes the result for the next start.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { registerHooks, stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The cache directory, when it is ours alone: the files in it are run as
 * code, so a directory another user can write to would let them plant some.
 */
function privateDir(dir) {
  if (!dir) return undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    return st.uid === process.getuid() && (st.mode & 0o022) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

const dir = privateDir(process.env.STRATUS_TS_CACHE);

registerHooks({
  load(url, context, nextLoad) {
    // Only our ES modules: Node itself refuses to strip types under node_modules.
    if (!dir || !url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/') || context.format === 'commonjs-typescript') {
      return nextLoad(url, context);
    }
    const source = readFileSync(fileURLToPath(url), 'utf8');
    const file = join(dir, createHash('sha256').update(`${process.version}\0strip\0${source}`).digest('hex') + '.js');
    try {
      return { format: 'module', source: readFileSync(file, 'utf8'), shortCircuit: true };
    } catch {
      // Not cached yet: strip below.
    }
    // Positions are kept (types become blanks), so stack traces point at the .ts lines.
    const stripped = stripTypeScriptTypes(source, { mode: 'strip' });
    try {
      // Concurrent processes may strip the same file: each writes its own temp file, the rename is atomic.
      const temp = `${file}.${process.pid}`;
      writeFileSync(temp, stripped, { mode: 0o600 });
      renameSync(temp, file);
    } catch {
      // A full or read-only disk costs the next start a strip, nothing more.
    }
    return { format: 'module', source: stripped, shortCircuit: true };
  },
});
