// Starts a real Stratus server in-process for API tests: a temp data dir, a
// temp SQLite database, or a fresh PostgreSQL database when
// STRATUS_TEST_DATABASE holds a postgres:// URL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { pino } from 'pino';
import { startStratus, type Stratus, type StratusOptions } from '../src/server/stratus.ts';

export interface Reply<T = any> { status: number; headers: Headers; body: T }

export interface Cloud {
  server: Stratus;
  url: string;
  /** The server's data directory: a temp one removed by close(), unless the caller gave its own. */
  dataDir: string;
  adminPassword: string;
  adminToken: string;
  /** An HTTP call to the server; the body is parsed as JSON when it is JSON. */
  call<T = any>(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<Reply<T>>;
  /** Issues a token by password for a user in the Default domain, optionally scoped to a project id. */
  login(user: string, password: string, projectId?: string): Promise<string>;
  close(): Promise<void>;
}

/** A new, empty PostgreSQL database on the server of `base`, and how to drop it. */
export async function freshPostgres(base: string, prefix = 'stratus_test'): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startCloud(opts: Partial<StratusOptions> = {}): Promise<Cloud> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'stratus-test-'));
  const pgBase = process.env.STRATUS_TEST_DATABASE;
  const database = pgBase ? await freshPostgres(pgBase) : undefined;
  // STRATUS_TEST_IMAGE_STORE=object runs the image tests against the object store (Glance's swift store); a test naming its image directory keeps files
  const imageStore = process.env.STRATUS_TEST_IMAGE_STORE === 'object' && !opts.imageDir ? { imageStore: 'object' as const } : {};
  const server = await startStratus({
    dataDir, port: 0, database: database?.url, logger: pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' }),
    adminPassword: 'admin-secret-1', ...imageStore, ...opts,
  });
  const call: Cloud['call'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token) headers['X-Auth-Token'] = o.token;
    let body: string | undefined = o.raw;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['Content-Type'] ??= 'application/json';
    }
    const r = await fetch(`${server.url}${path}`, { method, headers, body });
    const text = await r.text();
    let parsed: unknown = text;
    if ((r.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: r.status, headers: r.headers, body: parsed as any };
  };
  const login = async (user: string, password: string, projectId?: string) => {
    const r = await call('POST', '/identity/v3/auth/tokens', {
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password } } },
          ...(projectId ? { scope: { project: { id: projectId } } } : {}),
        },
      },
    });
    if (r.status !== 201) throw new Error(`login ${user} failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.headers.get('x-subject-token')!;
  };
  const close = async () => {
    await server.close();
    await database?.drop();
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  let adminToken: string;
  try {
    const adminProject = await server.database.db.selectFrom('identity_projects').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow();
    adminToken = await login('admin', server.adminPassword, adminProject.id);
  } catch (err) {
    // A half-started cloud would keep the test process alive forever.
    await close();
    throw err;
  }
  return { server, url: server.url, dataDir, adminPassword: server.adminPassword, adminToken, call, login, close };
}

/**
 * Starts a cloud before the tests of this file, then runs `setup` on it, and
 * closes it after them; the Cloud returned stands for that server. Node starts
 * a file's top-level `before` hooks all at once, so setup that needs the cloud
 * goes in `setup`, not in a `before` hook of its own.
 */
export function useCloud(setup?: (cloud: Cloud) => Promise<void>, opts: Partial<StratusOptions> = {}): Cloud {
  let started: Cloud | undefined;
  before(async () => {
    started = await startCloud(opts);
    await setup?.(started);
  });
  after(async () => { await started?.close(); });
  const cloud = (): Cloud => started ?? assert.fail('useCloud: the cloud has not started yet (see setup)');
  return {
    get server() { return cloud().server; },
    get url() { return cloud().url; },
    get dataDir() { return cloud().dataDir; },
    get adminPassword() { return cloud().adminPassword; },
    get adminToken() { return cloud().adminToken; },
    call: (method, path, o) => cloud().call(method, path, o),
    login: (user, password, projectId) => cloud().login(user, password, projectId),
    // Closed once, after the file's tests: a test closing it too would close it twice.
    close: () => Promise.reject(new Error('useCloud closes its cloud itself, after the tests of the file')),
  };
}

let seq = 0;
/** A name no other test process or call uses: `${prefix}-${pid}-${n}`. */
/** Polls `fn` every `everyMs` until it gives a value (not null, undefined or false); fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const uniqueName = (prefix: string): string => `${prefix}-${process.pid}-${++seq}`;

export interface Tenant { projectId: string; userId: string; token: string }

/**
 * A new project and a user holding `roles` on it, made through the identity
 * API as the admin, with that user's project token.
 */
export async function tenant(cloud: Cloud, roles: string[] = ['member']): Promise<Tenant> {
  const name = uniqueName('t');
  const password = 'secret-pw-1';
  const admin = (method: string, path: string, body?: unknown) =>
    cloud.call(method, `/identity/v3${path}`, { token: cloud.adminToken, body });
  const p = await admin('POST', '/projects', { project: { name, domain_id: 'default' } });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  const projectId: string = p.body.project.id;
  const u = await admin('POST', '/users', { user: { name, domain_id: 'default', password, default_project_id: projectId } });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  const userId: string = u.body.user.id;
  const all = (await admin('GET', '/roles')).body.roles as Array<{ id: string; name: string }>;
  for (const role of roles) {
    const r = all.find((x) => x.name === role);
    assert.ok(r, `no role ${role}`);
    assert.equal((await admin('PUT', `/projects/${projectId}/users/${userId}/roles/${r.id}`)).status, 204);
  }
  return { projectId, userId, token: await cloud.login(name, password, projectId) };
}
