// Shared helpers of the browser tests: the stack under test (from run.sh), Chromium,
// the API (to create jobs), DynamoDB writes that stand in for workers, and screenshots.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

// run.sh exports JOBS_BROWSER_ENV: {pageUrl, apiUrl, table, endpoint, python, run, tenants, tokens}.
if (!process.env.JOBS_BROWSER_ENV) {
  throw new Error('JOBS_BROWSER_ENV is not set: run the tests with `bash tests/browser/run.sh`');
}
export const env = JSON.parse(process.env.JOBS_BROWSER_ENV);

// The browser's time zone differs from the machine's (UTC) on purpose: times must be shown
// in local time with the UTC value on hover.
export const TIME_ZONE = 'America/New_York';
export const LOCALE = 'en-US';

export const SCREENSHOTS = join(here, 'screenshots');
mkdirSync(SCREENSHOTS, { recursive: true });

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

// A fresh context (own sessionStorage) and page. Collects what must never happen:
// page errors, console errors (CSP violations among them) and JS dialogs (alert = injection).
export async function openPage(browser, { width = 1400, height = 900, path = '' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, timezoneId: TIME_ZONE, locale: LOCALE });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('dialog', (d) => { problems.push(`JS dialog: ${d.message()}`); d.dismiss().catch(() => {}); });
  const requests = [];
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), at: Date.now() }));
  if (path !== null) await page.goto(env.pageUrl + path);
  return {
    page, context, problems, requests,
    // Console errors from expected HTTP failures (e.g. the 401 of a bad token) are allowed
    // by passing a pattern.
    assertClean(allowed = null) {
      const left = problems.filter((p) => !(allowed && allowed.test(p)));
      assert.deepEqual(left, [], 'the page reported errors');
    },
    close: () => context.close(),
  };
}

export async function signIn(page, token) {
  await page.locator('#token').fill(token);
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.locator('#console').waitFor({ state: 'visible' });
}

export const rows = (page) => page.locator('#rows tr');
export const row = (page, id) => page.locator(`#rows tr[data-id="${id}"]`);

// Waits until the list and the metrics strip above it finished loading (no "Loading…"
// state; the strip's figures and, for admins, the queue health are drawn).
export async function listSettled(page) {
  await page.waitForFunction(() => document.getElementById('jobs').getAttribute('aria-busy') === 'false'
    && document.getElementById('metrics').getAttribute('aria-busy') === 'false');
}

export async function shot(page, name, options = {}) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), ...options });
}

// ---------- accessibility (axe-core) -------------------------------------------------------

// axe-core, pinned in package.json, from node_modules (no network at run time). It is
// evaluated through the DevTools protocol rather than added as a <script>: the page's CSP
// (script-src 'self') refuses inline scripts, and must stay as it is served.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);

// Runs axe on the whole document as it is now (open dialogs included) and returns its
// violations as {id, impact, help, nodes: [{target, summary}]}.
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String).join(' >> '), impact: n.impact, summary: n.failureSummary })),
    }));
  });
}

export function formatViolations(violations) {
  return violations.map((v) => [
    `  [${v.impact}] ${v.id}: ${v.help} (${v.nodes.length} element${v.nodes.length === 1 ? '' : 's'})`,
    ...v.nodes.slice(0, 10).map((n) => `      ${n.target}`),
    ...(v.nodes.length > 10 ? [`      … and ${v.nodes.length - 10} more`] : []),
  ].join('\n')).join('\n');
}

// Fails the test on any serious or critical axe violation in the page's current state
// (`state` names it in the message), listing rule id, impact and the elements' selectors.
export async function expectNoSeriousAxeViolations(page, state) {
  const violations = await axeViolations(page);
  const blocking = violations.filter((v) => BLOCKING_IMPACTS.has(v.impact));
  if (blocking.length) {
    const report = `axe: ${blocking.length} serious or critical violation(s) in state "${state}":\n${formatViolations(blocking)}`;
    console.error(report);
    assert.fail(report);
  }
  return violations;
}

// ---------- layout -------------------------------------------------------------------------

// What sticks out of the viewport horizontally: the page's scroll width, and every rendered
// element (in the document and open dialogs) whose box crosses the left or right edge.
// Boxes clipped away on purpose (the visually hidden caption and table head) are skipped.
export async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const width = window.innerWidth;
    const clipped = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const r = e.getBoundingClientRect();
        if (r.width <= 1 || r.height <= 1) return true;
      }
      return false;
    };
    const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}`;
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
      if (!el.checkVisibility()) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      if ((r.right > width + 0.5 || r.left < -0.5) && !clipped(el)) {
        out.push(`${describe(el)} [${Math.round(r.left)}..${Math.round(r.right)}]`);
      }
    }
    return { viewport: width, scrollWidth: document.documentElement.scrollWidth, elements: out };
  });
}

// Asserts that nothing is wider than the viewport and that `locator` is fully inside it.
export async function expectFitsViewport(page, what, locator = null) {
  const o = await horizontalOverflow(page);
  assert.ok(o.scrollWidth <= o.viewport, `${what}: the page is ${o.scrollWidth}px wide in a ${o.viewport}px viewport`);
  assert.deepEqual(o.elements, [], `${what}: elements cross the viewport's edges`);
  if (locator) {
    // Vertical scrolling only (the page cannot scroll sideways: its scroll width was checked).
    await locator.evaluate((el) => el.scrollIntoView({ block: 'nearest', inline: 'nearest' }));
    const box = await locator.boundingBox();
    const view = page.viewportSize();
    assert.ok(box, `${what}: ${locator} is not rendered`);
    assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= view.width && box.y + box.height <= view.height,
      `${what}: ${locator} is not fully inside the ${view.width}x${view.height} viewport (box ${JSON.stringify(box)})`);
  }
}

// ---------- API ----------------------------------------------------------------------------

export async function api(method, path, token, body) {
  const response = await fetch(`${env.apiUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

export async function createJob(token, body) {
  const reply = await api('POST', '/jobs', token, body);
  assert.equal(reply.status, 202, `create failed: ${JSON.stringify(reply.body)}`);
  return reply.body;
}

export const embeddingJob = (n = 1) => ({
  type: 'ai_text_embedding',
  params: { documents: Array.from({ length: n }, (_, i) => ({ id: `doc-${i}`, text: `Document number ${i}` })) },
});
export const profileJob = (users = 10) => ({
  type: 'profile_field_update',
  params: { field: 'locale', value: 'en-GB', user_ids: Array.from({ length: users }, (_, i) => `u-${i}`) },
});
export const sessionJob = () => ({ type: 'session_termination', params: { idle_for_seconds: 3600 } });

// ---------- DynamoDB: what a worker would write --------------------------------------------

export function setJob(id, attributes) {
  execFileSync(env.python, [join(here, 'ddb.py')], {
    input: JSON.stringify({ endpoint: env.endpoint, table: env.table, id, set: attributes }),
    stdio: ['pipe', 'inherit', 'inherit'],
  });
}

// A queued job written straight to the table: the API sent no plan for it, so no worker
// touches it and the test alone moves its progress. Returns {id, created_at, progress}.
export function parkedJob(tenant, user, body) {
  const p = body.params;
  const total = (p.documents || p.user_ids || p.recipients || []).length;
  // The params summary the API would have stored.
  const summary = p.documents ? { model: p.model || 'hashing-v1', documents: total }
    : p.field ? { field: p.field, value: typeof p.value, users: total }
      : p.recipients ? { channel: p.channel, from: p.from, subject: p.subject, recipients: total }
        : { selection: Object.keys(p)[0] };
  const out = execFileSync(env.python, [join(here, 'ddb.py')], {
    input: JSON.stringify({ endpoint: env.endpoint, table: env.table, insert: { tenant, user, type: body.type, total, summary } }),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const job = JSON.parse(out.toString());
  return { ...job, type: body.type, tenant, user, progress: { total, succeeded: 0, failed: 0 } };
}

// Puts one message on (or purges) the stack's dead-letter queue of `type`.
export function deadLetter(type, purge = false) {
  execFileSync(env.python, [join(here, 'ddb.py')], {
    input: JSON.stringify({ endpoint: env.endpoint, dead_letter: `${env.stack || 'jobs'}-dlq-${type}`, purge }),
    stdio: ['pipe', 'inherit', 'inherit'],
  });
}

// The raw item of a job (attributes as JSON).
export function getJob(id) {
  const out = execFileSync(env.python, [join(here, 'ddb.py')], {
    input: JSON.stringify({ endpoint: env.endpoint, table: env.table, id, get: true }),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return JSON.parse(out.toString());
}

// Progress as workers record it (the API computes percent from these).
export function setProgress(id, { status, succeeded, failed = 0, total, finished = false }) {
  const now = new Date().toISOString().replace(/(\.\d{3})\d*Z$/, '$1Z');
  setJob(id, {
    status, succeeded, failed, ...(total === undefined ? {} : { total }),
    started_at: now, ...(finished ? { completed_at: now } : {}),
  });
}

// YYYY-MM-DD of an instant in the browser's time zone (the date inputs are local days).
export function localDay(date) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(date);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
