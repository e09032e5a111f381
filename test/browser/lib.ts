// Helpers for the dashboard's tests in a real browser: Debian's chromium
// driven by playwright-core, axe-core's accessibility check run in the page,
// screenshots under the run's output directory, and the page's Content-
// Security-Policy violations collected (there must be none).
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Cloud } from '../harness.ts';

const require = createRequire(import.meta.url);

/** Where screenshots go: $STRATUS_TEST_OUTPUT/browser/<suite> (bin/test sets it), else test-output/browser/<suite> in the checkout. */
export const OUTPUT = join(process.env.STRATUS_TEST_OUTPUT ?? resolve(import.meta.dirname, '../../test-output'), 'browser');

export const CHROMIUM = process.env.STRATUS_CHROMIUM ?? '/usr/bin/chromium';

let shots = OUTPUT;

/** Chromium, headless; screenshots go to OUTPUT/`suite` (one per test file), those of an earlier run removed first. */
export async function launch(suite: string): Promise<Browser> {
  shots = join(OUTPUT, suite);
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    // root in CI: chromium's sandbox needs an unprivileged user
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

export interface Tab { page: Page; context: BrowserContext; cspViolations: string[]; dialogs: string[] }

/** A new browser context (its own sessionStorage) and page at `url`, watching for CSP violations and dialogs. */
export async function open(browser: Browser, url: string, o: { width?: number; height?: number; dark?: boolean } = {}): Promise<Tab> {
  const context = await browser.newContext({ viewport: { width: o.width ?? 1280, height: o.height ?? 900 }, colorScheme: o.dark ? 'dark' : 'light' });
  const page = await context.newPage();
  const tab: Tab = { page, context, cspViolations: [], dialogs: [] };
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) tab.cspViolations.push(m.text());
  });
  page.on('dialog', (d) => {
    tab.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(url);
  return tab;
}

let shot = 0;
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = join(shots, `${String(++shot).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9_-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const axeSource: string = require('axe-core').source;

/**
 * axe-core's check of the page as it is; fails on a serious or critical
 * violation. Injected with evaluate (the DevTools protocol, which the page's
 * CSP does not govern), so the page itself needs no inline script.
 */
export async function checkA11y(page: Page, what: string): Promise<void> {
  await page.evaluate(`${axeSource};0`);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as any).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v: any) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n: any) => n.target.join(' ')) }));
  }) as Array<{ id: string; impact: string; help: string; nodes: string[] }>;
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${what}: accessibility violations ${JSON.stringify(serious, null, 1)}`);
}

export async function login(page: Page, user: string, password: string, domain = 'Default'): Promise<void> {
  await page.getByLabel('Domain').fill(domain);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

export const PASSWORD = 'browser-pw-1';

/** A project of the Default domain made by the admin; its id. */
export async function makeProject(cloud: Cloud, name: string): Promise<string> {
  const r = await cloud.call('POST', '/identity/v3/projects', { token: cloud.adminToken, body: { project: { name, domain_id: 'default' } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.project.id as string;
}

/** A user of the Default domain (password PASSWORD) with `role` on `project`; its name. */
export async function makeUser(cloud: Cloud, project: string, role: string, name: string): Promise<string> {
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await cloud.call(method, `/identity/v3${path}`, { token: cloud.adminToken, body });
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const u = await admin('POST', '/users', { user: { name, domain_id: 'default', password: PASSWORD, default_project_id: project } });
  const roles = (await admin('GET', '/roles')).roles as Array<{ id: string; name: string }>;
  await admin('PUT', `/projects/${project}/users/${u.user.id}/roles/${roles.find((r) => r.name === role)!.id}`);
  return name;
}
