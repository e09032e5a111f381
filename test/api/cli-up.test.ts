// `stratus up` as a user runs it: what it prints, what it writes to the data
// directory and with which modes. The real CLI in a child process (no agent).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Up { dataDir: string; stdout(): string; url: string }

/** Runs `stratus up --no-agent` on a temp data dir until its banner is out; stopped (SIGTERM) when the test ends. */
async function up(t: TestContext, extra: string[] = []): Promise<Up> {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-up-'));
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, 'up', '--no-agent',
    '--data-dir', dataDir, '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });
  let out = '', err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => { if (out.includes('Press Ctrl-C to stop.')) resolve(); });
    child.once('exit', (code) => reject(new Error(`stratus up exited (${code}) before its banner:\n${out}\n${err}`)));
  });
  const url = /Stratus is up: (\S+)/.exec(out)?.[1];
  assert.ok(url, out);
  return { dataDir, stdout: () => out, url };
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** The variables an openrc sets, as a shell that sources it sees them. */
function sourced(openrc: string): Record<string, string> {
  const env = execFileSync('/bin/sh', ['-c', '. "$1" && env', 'sh', openrc], { env: {}, encoding: 'utf8' });
  return Object.fromEntries(env.split('\n').filter((l) => l.startsWith('OS_')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

test('up prints where the credentials are, never the password; the JSON log goes to DATA_DIR/stratus.log', { timeout: 120_000 }, async (t) => {
  const u = await up(t);
  const password = readFileSync(join(u.dataDir, 'admin-password'), 'utf8').trim();
  const banner = u.stdout();
  assert.ok(password.length >= 16);
  assert.ok(!banner.includes(password), `the banner holds the admin password:\n${banner}`);
  for (const file of ['clouds.yaml', 'openrc', 'admin-password', 'stratus.log']) assert.ok(banner.includes(join(u.dataDir, file)), `the banner names ${file}`);
  assert.ok(!banner.split('\n').some((l) => l.startsWith('{')), `no JSON log line on stdout:\n${banner}`);

  const log = readFileSync(join(u.dataDir, 'stratus.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg?: string });
  assert.ok(log.some((e) => e.msg === 'stratus server listening'), 'the server logs to the file');
  assert.ok(!readFileSync(join(u.dataDir, 'stratus.log'), 'utf8').includes(password));

  // Every file that holds a secret is its owner's only.
  for (const file of ['stratus.db', 'clouds.yaml', 'openrc', 'admin-password', 'stratus.log']) assert.equal(mode(join(u.dataDir, file)), '600', file);
});

test('the openrc works for a client that reads OS_DOMAIN_NAME and OS_PROJECT_ID only (as gophercloud does)', { timeout: 120_000 }, async (t) => {
  const u = await up(t);
  const env = sourced(join(u.dataDir, 'openrc'));
  assert.equal(env.OS_DOMAIN_NAME, 'Default');
  assert.match(env.OS_PROJECT_ID ?? '', /^[0-9a-f]{32}$/);
  assert.equal(env.OS_AUTH_URL, `${u.url}/identity/v3`);
  // The login gophercloud's AuthOptionsFromEnv builds from these: user by name in
  // OS_DOMAIN_NAME, scope by project id.
  const r = await fetch(`${env.OS_AUTH_URL}/auth/tokens`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth: {
      identity: { methods: ['password'], password: { user: { name: env.OS_USERNAME, domain: { name: env.OS_DOMAIN_NAME }, password: env.OS_PASSWORD } } },
      scope: { project: { id: env.OS_PROJECT_ID } },
    } }),
  });
  assert.equal(r.status, 201);
  const token = (await r.json()) as { token: { project: { id: string; name: string } } };
  assert.equal(token.token.project.id, env.OS_PROJECT_ID);
  assert.equal(token.token.project.name, env.OS_PROJECT_NAME);

  const clouds = readFileSync(join(u.dataDir, 'clouds.yaml'), 'utf8');
  assert.match(clouds, new RegExp(`^ {6}project_id: ${env.OS_PROJECT_ID}$`, 'm'), 'clouds.yaml names the project by id too');
});

test('up --log-file - writes the JSON log to stdout beside the banner, still without the password', { timeout: 120_000 }, async (t) => {
  const u = await up(t, ['--log-file', '-']);
  const password = readFileSync(join(u.dataDir, 'admin-password'), 'utf8').trim();
  // pino writes asynchronously: the log line may land after the banner
  const logged = (o: string) => o.split('\n').some((l) => l.startsWith('{') && (JSON.parse(l) as { msg?: string }).msg === 'stratus server listening');
  for (let i = 0; i < 100 && !logged(u.stdout()); i++) await new Promise((r) => setTimeout(r, 100));
  const out = u.stdout();
  assert.ok(logged(out), out);
  assert.match(out, /^ {2}log: +stdout$/m);
  assert.ok(!out.includes(password));
});
