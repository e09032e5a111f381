// Starts a real Stratus server in-process for API tests: a temp data dir, a
// temp SQLite database, or a fresh PostgreSQL database when
// STRATUS_TEST_DATABASE holds a postgres:// URL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { startStratus, type Stratus, type StratusOptions } from '../src/server/stratus.ts';

export interface Reply<T = any> { status: number; headers: Headers; body: T }

export interface Cloud {
  server: Stratus;
  url: string;
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
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-test-'));
  const pgBase = process.env.STRATUS_TEST_DATABASE;
  const database = pgBase ? await freshPostgres(pgBase) : undefined;
  const server = await startStratus({
    dataDir, port: 0, database: database?.url, logger: pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' }),
    adminPassword: 'admin-secret-1', ...opts,
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
    rmSync(dataDir, { recursive: true, force: true });
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
  return { server, url: server.url, adminPassword: server.adminPassword, adminToken, call, login, close };
}
