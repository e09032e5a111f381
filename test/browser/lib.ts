// Helpers for the dashboard's tests in a real browser: Debian's chromium
// driven by playwright-core, axe-core's accessibility check run in the page,
// screenshots under the run's output directory, and the page's Content-
// Security-Policy violations collected (there must be none). `browserSuite`
// is every file's before/after: a cloud (or a data plane), a browser, tabs
// logged in, and all of it torn down.
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { startCloud, type Cloud } from '../harness.ts';
import { skipUnlessRoot, startPlane, type Plane } from '../dataplane/lib.ts';

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

export interface BrowserSuiteOptions {
  /** A data plane (startPlane: a cloud with an in-process agent running containers; `volume`: serving volumes too) instead of a bare cloud. */
  plane?: { volume?: boolean };
  /** Why the file's tests are skipped (default: not root). */
  skip?: string | false;
  /** The file's own fixtures, once the cloud is up and before the browser starts. */
  setup?: (s: BrowserSuite) => Promise<void>;
  /** The file's own cleanup, after the tabs, the browser and the suite's servers are gone and before the cloud stops. */
  teardown?: (s: BrowserSuite) => Promise<void>;
}

export interface BrowserSuite {
  readonly skip: string | false;
  /** The cloud (the plane's, for a data-plane suite); only once before() ran. */
  readonly cloud: Cloud;
  /** The data plane; only for a suite started with `plane`. */
  readonly plane: Plane;
  readonly browser: Browser;
  /** Servers the tests made (a data-plane suite): deleted, and waited for, in after(). */
  readonly servers: string[];
  /** A new tab (its own session) at the dashboard, logged in as `user` (password PASSWORD unless given) when there is one. */
  tab(user?: string, o?: { password?: string; width?: number; height?: number; dark?: boolean }): Promise<Tab>;
}

/**
 * The before/after of a file of browser tests: starts a cloud (or a data
 * plane) and Chromium (screenshots under OUTPUT/`name`), runs the file's
 * setup; after the tests closes every tab and the browser, deletes the
 * servers the tests recorded in `servers` and waits until they are gone, runs
 * the file's teardown and stops the cloud, each step also after a failure.
 */
export function browserSuite(name: string, o: BrowserSuiteOptions = {}): BrowserSuite {
  const skip = o.skip ?? skipUnlessRoot;
  let cloud: Cloud | undefined;
  let plane: Plane | undefined;
  let browser: Browser | undefined;
  const tabs: Tab[] = [];
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`browserSuite(${name}): no ${what} (skipped, or before() failed)`);
    return v;
  };
  const suite: BrowserSuite = {
    skip,
    get cloud() { return need(cloud, 'cloud'); },
    get plane() { return need(plane, 'data plane'); },
    get browser() { return need(browser, 'browser'); },
    servers: [],
    async tab(user, t = {}) {
      const tab = await open(suite.browser, `${suite.cloud.url}/`, t);
      tabs.push(tab);
      if (user !== undefined) await login(tab.page, user, t.password ?? PASSWORD);
      return tab;
    },
  };
  before(async () => {
    if (skip) return;
    if (o.plane) {
      plane = await startPlane({ agent: 'inproc', volume: o.plane.volume });
      cloud = plane.cloud;
    } else cloud = await startCloud();
    await o.setup?.(suite);
    browser = await launch(name);
  });
  after(async () => {
    if (skip) return;
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    if (plane) {
      for (const id of suite.servers) await plane.api('DELETE', `/compute/v2.1/servers/${id}`).catch(() => undefined);
      for (const id of suite.servers) await plane.waitGone(id, 60_000).catch(() => undefined);
    }
    await o.teardown?.(suite).catch(() => undefined);
    if (plane) await plane.cleanup();
    else await cloud?.close();
  });
  return suite;
}


/** What has the keyboard focus: its tag, role and name (aria-label, its label's text, else its text), whether it shows a focus ring, and whether it is in an open dialog. */
export async function focused(page: Page): Promise<{ tag: string; role: string | null; name: string; ring: boolean; inDialog: boolean }> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el || el === document.body) return { tag: 'body', role: null, name: '', ring: false, inDialog: false };
    const labels = (el as HTMLInputElement).labels;
    const name = el.getAttribute('aria-label') ?? (labels?.[0] ? labels[0].querySelector('span')?.textContent ?? labels[0].textContent : null) ?? el.textContent ?? '';
    const s = getComputedStyle(el);
    const ring = el.matches(':focus-visible') && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    return { tag: el.tagName.toLowerCase(), role: el.getAttribute('role'), name: name.trim(), ring, inDialog: !!el.closest('dialog[open]') };
  });
}

/**
 * Presses Tab (Shift+Tab with `back`) until the focus is on an element named
 * `name` (exactly, or matching), as someone without a mouse would; fails
 * after `max` presses naming the stops it passed. The element reached must
 * show its focus ring.
 */
export async function tabTo(page: Page, name: string | RegExp, o: { back?: boolean; max?: number } = {}): Promise<void> {
  const passed: string[] = [];
  for (let i = 0; i < (o.max ?? 60); i++) {
    await page.keyboard.press(o.back ? 'Shift+Tab' : 'Tab');
    const f = await focused(page);
    if (typeof name === 'string' ? f.name === name : name.test(f.name)) {
      assert.ok(f.ring, `the focus on “${f.name}” (${f.tag}) is visible`);
      return;
    }
    passed.push(`${f.tag}:${f.name.slice(0, 30)}`);
  }
  assert.fail(`no “${name}” within ${o.max ?? 60} presses of ${o.back ? 'Shift+Tab' : 'Tab'}: passed ${passed.join(' | ')}`);
}

/** Waits until the canvas `chart` has been painted (some of its pixels are no longer transparent): its chart's code loaded and drew. */
export async function waitPainted(chart: Locator): Promise<void> {
  await chart.waitFor();
  await chart.page().waitForFunction((el) => {
    const c = el as HTMLCanvasElement;
    if (!c.width || !c.height) return false;
    const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
    return false;
  }, await chart.elementHandle(), { polling: 200 });
}
