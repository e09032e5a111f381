// Durability of the object store under kill -9: a real `stratus server`
// process takes concurrent PUTs (new and overwriting), DELETEs and server-side
// copies, and is killed with SIGKILL at a random moment, again and again.
// After each restart every object whose write was acknowledged reads back
// whole (its MD5), an operation in flight at the kill left either the old or
// the new object, and at the end `stratus object audit` finds no orphan,
// missing or corrupt blob.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshPostgres } from '../../harness.ts';

const CLI = new URL('../../../src/cli/main.ts', import.meta.url).pathname;
const PASSWORD = 'durability-secret-1';

interface Server { child: ChildProcess; url: string }

/** The database: SQLite in the data dir, or a fresh PostgreSQL one when the suite runs on PostgreSQL. */
let database: string[] = [];

async function startServer(t: TestContext, dataDir: string): Promise<Server> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, 'server', '--data-dir', dataDir, '--port', '0',
    '--admin-password', PASSWORD, '--log-level', 'info', ...database], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /"url":"([^"]+)"[^\n]*stratus server listening/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`stratus server exited (${code}):\n${out.slice(-2000)}\n${err.slice(-2000)}`)));
  });
  // keep draining its output
  child.stdout!.resume();
  return { child, url };
}

async function kill9(s: Server): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const gone = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGKILL');
  await gone;
}

async function login(url: string): Promise<{ token: string; project: string }> {
  const r = await fetch(`${url}/identity/v3/auth/tokens`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: PASSWORD } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
  });
  assert.equal(r.status, 201);
  const body = (await r.json()) as { token: { project: { id: string } } };
  return { token: r.headers.get('x-subject-token')!, project: body.token.project.id };
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** What a name may hold: its acknowledged content (null: absent), and an outcome in flight when the server died. */
interface NameState { acked: string | null; inflight?: string | null | undefined; hasInflight: boolean }

test('kill -9 during PUTs, overwrites, DELETEs and copies loses nothing acknowledged and leaves no orphan', { timeout: 180_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-durability-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  if (process.env.STRATUS_TEST_DATABASE) {
    const pg = await freshPostgres(process.env.STRATUS_TEST_DATABASE);
    t.after(() => pg.drop());
    database = ['--database', pg.url];
  }
  const state = new Map<string, NameState>();
  const WORKERS = 8;
  const NAMES_PER_WORKER = 6;
  for (let w = 0; w < WORKERS; w++) for (let i = 0; i < NAMES_PER_WORKER; i++) state.set(`w${w}/o${i}`, { acked: null, hasInflight: false });
  let acknowledged = 0;
  const rounds = 4;
  for (let round = 0; round < rounds; round++) {
    const s = await startServer(t, dataDir);
    const { token, project } = await login(s.url);
    const base = `${s.url}/object/v1/AUTH_${project}/dur`;
    assert.ok([201, 202].includes((await fetch(base, { method: 'PUT', headers: { 'X-Auth-Token': token } })).status));

    // every object reads back as acknowledged, or as the outcome in flight at the kill
    for (const [name, st] of state) {
      const r = await fetch(`${base}/${name}`, { headers: { 'X-Auth-Token': token } });
      const body = Buffer.from(await r.arrayBuffer());
      const seen = r.status === 200 ? md5(body) : r.status === 404 ? null : assert.fail(`GET ${name}: ${r.status}`);
      const allowed = [st.acked, ...(st.hasInflight ? [st.inflight ?? null] : [])];
      assert.ok(allowed.includes(seen), `round ${round}: ${name} holds ${seen}, expected one of ${JSON.stringify(allowed)}`);
      if (r.status === 200) assert.equal(r.headers.get('etag'), seen);
      state.set(name, { acked: seen, hasInflight: false });
    }
    if (round === rounds - 1) {
      await kill9(s);
      break;
    }

    // the workload: each worker works on its own names, one operation at a time
    let stop = false;
    const worker = async (w: number) => {
      while (!stop) {
        const i = Math.floor(Math.random() * NAMES_PER_WORKER);
        const name = `w${w}/o${i}`;
        const st = state.get(name)!;
        const op = Math.random();
        try {
          if (op < 0.6 || st.acked === null) {
            const size = Math.random() < 0.2 ? 64 * 1024 * 3 + Math.floor(Math.random() * 500_000) : Math.floor(Math.random() * 9000);
            const data = randomBytes(size);
            const sum = md5(data);
            st.inflight = sum;
            st.hasInflight = true;
            const r = await fetch(`${base}/${name}`, { method: 'PUT', headers: { 'X-Auth-Token': token, ETag: sum }, body: data });
            if (r.status === 201) {
              st.acked = sum;
              acknowledged++;
            }
          } else if (op < 0.8) {
            st.inflight = null;
            st.hasInflight = true;
            const r = await fetch(`${base}/${name}`, { method: 'DELETE', headers: { 'X-Auth-Token': token } });
            if (r.status === 204) st.acked = null;
          } else {
            const j = (i + 1) % NAMES_PER_WORKER;
            const dst = `w${w}/o${j}`;
            const dstState = state.get(dst)!;
            dstState.inflight = st.acked;
            dstState.hasInflight = true;
            const r = await fetch(`${base}/${name}`, { method: 'COPY', headers: { 'X-Auth-Token': token, Destination: `dur/${dst}` } });
            if (r.status === 201) dstState.acked = st.acked;
            dstState.hasInflight = false;
          }
          st.hasInflight = false;
        } catch {
          return; // the server died under the request: its outcome stays in flight
        }
      }
    };
    const running = Array.from({ length: WORKERS }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
    await kill9(s);
    stop = true;
    await Promise.all(running);
  }
  assert.ok(acknowledged > 20, `only ${acknowledged} writes were acknowledged`);

  // a clean start has removed what the kills left; the audit finds nothing wrong
  const s = await startServer(t, dataDir);
  await kill9(s);
  const { stdout } = await promisify(execFile)(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, 'object', 'audit', '--data-dir', dataDir, '--json', ...database])
    .catch((e: { stdout: string; stderr: string }) => assert.fail(`audit failed: ${e.stdout} ${e.stderr}`));
  const report = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.deepEqual({ corrupt: report.corrupt, orphanFiles: report.orphanFiles, missingFiles: report.missingFiles }, { corrupt: [], orphanFiles: [], missingFiles: [] });
  assert.ok(report.blobsChecked > 0);
});
