// Renders the lists of Tempest tests expected to fail (conformance/expected/<service>.txt)
// into docs/conformance.md, between the two markers below, so the document cannot
// drift from what CI accepts: test/unit/conformance-expected.test.ts compares them.
//
//   node conformance/expected-doc.ts          exit 1 when docs/conformance.md is out of date
//   node conformance/expected-doc.ts --write  rewrite its section from the lists
//
// The list format (read the same way by tempest_results.py, which CI runs): one
// test a line, `<tempest test id without [tags]>  <reason>`; `#` starts a comment line.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
export const LIST_DIR = join(ROOT, 'conformance/expected');
export const DOC = join(ROOT, 'docs/conformance.md');
const BEGIN = '<!-- expected-failures: generated from conformance/expected/*.txt by `node conformance/expected-doc.ts --write`; do not edit by hand -->';
const END = '<!-- /expected-failures -->';

export interface Expected { id: string; reason: string }
export interface ServiceList { service: string; file: string; entries: Expected[] }

/** The entries of one list; throws on a line without a reason or an id listed twice (as tempest_results.py refuses them). */
export function parseList(text: string, file: string): Expected[] {
  const seen = new Set<string>();
  const entries: Expected[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)\s+(\S.*)$/.exec(line);
    if (!m || !m[1]!.startsWith('tempest.')) throw new Error(`${file}:${i + 1}: want \`<tempest test id>  <reason>\`: ${line}`);
    if (seen.has(m[1]!)) throw new Error(`${file}:${i + 1}: ${m[1]} is listed twice`);
    seen.add(m[1]!);
    entries.push({ id: m[1]!, reason: m[2]! });
  });
  return entries;
}

export function readLists(dir = LIST_DIR): ServiceList[] {
  return readdirSync(dir).filter((f) => f.endsWith('.txt')).sort().map((f) => ({
    service: f.slice(0, -'.txt'.length),
    file: `conformance/expected/${f}`,
    entries: parseList(readFileSync(join(dir, f), 'utf8'), `conformance/expected/${f}`),
  }));
}

/** The section: per service, the tests grouped by reason, in the order the list first gives each reason. */
export function render(lists: ServiceList[]): string {
  const out = [BEGIN];
  for (const l of lists) {
    out.push('', `**${l.service}** ([\`${l.file}\`](../${l.file})): ${l.entries.length === 0 ? 'none.' : `${l.entries.length} tests.`}`);
    const byReason = new Map<string, string[]>();
    for (const e of l.entries) byReason.set(e.reason, [...(byReason.get(e.reason) ?? []), e.id]);
    if (byReason.size) out.push('');
    for (const [reason, ids] of byReason) {
      out.push(`- ${reason} (${ids.length}):`);
      for (const id of ids) out.push(`  - \`${id.replace(/^tempest\.api\./, '')}\``);
    }
  }
  out.push('', END);
  return out.join('\n');
}

/** docs/conformance.md as it is, and as it should be with the section rendered from the lists. */
export function documents(doc = DOC, dir = LIST_DIR): { current: string; wanted: string } {
  const current = readFileSync(doc, 'utf8');
  const begin = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${doc}: no section between the markers ${BEGIN} and ${END}`);
  return { current, wanted: current.slice(0, begin) + render(readLists(dir)) + current.slice(end + END.length) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { current, wanted } = documents();
  if (process.argv.includes('--write')) {
    if (current !== wanted) writeFileSync(DOC, wanted);
  } else if (current !== wanted) {
    process.stderr.write('docs/conformance.md is out of date with conformance/expected/: run `node conformance/expected-doc.ts --write`\n');
    process.exitCode = 1;
  }
}
