// Builds the dashboard (ui/src) into static files under ui/dist, which the
// Stratus server serves at / (src/dashboard/service.ts):
//
//   node ui/build.mjs           builds when the sources, the lock file or this script changed since the last build
//   node ui/build.mjs --force   builds anyway
//
// esbuild bundles and minifies the TypeScript/JSX into ES modules named by
// their content hash (cached for a year by browsers), splitting what pages
// load on demand (xterm.js for the serial console) into chunks of their own.
// Each file is also written compressed (.br, .gz). index.html names the entry
// script and style sheet; manifest.json lists every file with its sizes and
// which of them the first page loads (what bench/dashboard.ts measures).
// The new build is made aside and moved in place, so a running server never
// serves half of one.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const UI = import.meta.dirname;
const ROOT = join(UI, '..');
const DIST = process.env.STRATUS_UI_DIST ?? join(UI, 'dist');
const force = process.argv.includes('--force');

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  }).sort();
}

/** What a build depends on: the sources, the page template, this script, the locked dependency versions. */
function inputsHash() {
  const h = createHash('sha256');
  for (const f of [...files(join(UI, 'src')), join(UI, 'index.html'), join(UI, 'build.mjs'), join(ROOT, 'package-lock.json')]) {
    h.update(relative(ROOT, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex');
}

const stamp = inputsHash();
const stampFile = join(DIST, 'stamp');
if (!force && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === stamp) process.exit(0);

const { build } = await import('esbuild');
const out = `${DIST}.new-${process.pid}`;
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
const started = Date.now();
const result = await build({
  entryPoints: { main: join(UI, 'src/main.tsx') },
  bundle: true, splitting: true, format: 'esm', platform: 'browser',
  target: ['chrome111', 'firefox111', 'safari16.4'],
  outdir: join(out, 'assets'), entryNames: '[name]-[hash]', chunkNames: '[name]-[hash]', assetNames: '[name]-[hash]',
  minify: true, sourcemap: false, metafile: true, legalComments: 'linked',
  jsx: 'automatic', jsxImportSource: 'preact',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

const outputs = result.metafile.outputs;
const name = (p) => basename(p);
const entry = Object.entries(outputs).find(([, o]) => o.entryPoint && o.entryPoint.endsWith('main.tsx'));
if (!entry) throw new Error('esbuild made no entry script');
const [entryPath, entryOut] = entry;
// what the first page loads: the entry, the chunks it imports statically, its style sheet
const firstLoad = new Set([name(entryPath)]);
const walk = (p) => {
  for (const imp of outputs[p]?.imports ?? []) {
    if (imp.kind !== 'import-statement') continue;
    const key = Object.keys(outputs).find((k) => k.endsWith(`/${name(imp.path)}`));
    if (key && !firstLoad.has(name(key))) {
      firstLoad.add(name(key));
      walk(key);
    }
  }
};
walk(entryPath);
const css = entryOut.cssBundle ? name(entryOut.cssBundle) : null;
if (css) firstLoad.add(css);

const html = readFileSync(join(UI, 'index.html'), 'utf8')
  .replace('<!-- STYLES -->', css ? `<link rel="stylesheet" href="/dashboard/assets/${css}">` : '')
  .replace('<!-- SCRIPTS -->', `<script type="module" src="/dashboard/assets/${name(entryPath)}"></script>`);
writeFileSync(join(out, 'index.html'), html);
firstLoad.add('index.html');

const manifest = { built: new Date().toISOString(), stamp, files: {}, firstLoad: [...firstLoad].sort() };
for (const f of files(out)) {
  const data = readFileSync(f);
  const br = brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
  const gz = gzipSync(data, { level: 9 });
  writeFileSync(`${f}.br`, br);
  writeFileSync(`${f}.gz`, gz);
  manifest.files[relative(out, f)] = { bytes: data.length, br: br.length, gz: gz.length };
}
const firstBr = manifest.firstLoad.reduce((n, f) => n + (manifest.files[f === 'index.html' ? f : `assets/${f}`]?.br ?? 0), 0);
manifest.firstLoadBr = firstBr;
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
writeFileSync(join(out, 'stamp'), stamp + '\n');

// in place: the old build moved aside first, then removed
const old = `${DIST}.old-${process.pid}`;
if (existsSync(DIST)) renameSync(DIST, old);
renameSync(out, DIST);
rmSync(old, { recursive: true, force: true });
process.stderr.write(`dashboard built in ${Date.now() - started} ms: first page ${(firstBr / 1024).toFixed(1)} KiB (brotli) in ${manifest.firstLoad.length} files\n`);
