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
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { registerHooks, stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = process.env.STRATUS_TS_CACHE;
let writable = !!dir;

registerHooks({
  load(url, context, nextLoad) {
    if (!dir || !url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
    const source = readFileSync(fileURLToPath(url), 'utf8');
    const file = join(dir, createHash('sha256').update(`${process.version}\0${source}`).digest('hex') + '.js');
    try {
      return { format: 'module', source: readFileSync(file, 'utf8'), shortCircuit: true };
    } catch {
      // Not cached yet (or unreadable): strip below.
    }
    // Positions are kept (types become blanks), so stack traces point at the .ts lines.
    const stripped = stripTypeScriptTypes(source, { mode: 'strip' });
    if (writable) {
      try {
        mkdirSync(dir, { recursive: true });
        // Concurrent processes may strip the same file: each writes its own temp file, the rename is atomic.
        const temp = `${file}.${process.pid}`;
        writeFileSync(temp, stripped);
        renameSync(temp, file);
      } catch {
        writable = false; // a read-only cache still serves what it has
      }
    }
    return { format: 'module', source: stripped, shortCircuit: true };
  },
});
