// Listing in a fresh tenant: pagination with cursors, search, status/type/date filters in the
// URL, empty states, local times, keyboard use, the phone layout (long ids included), and
// accessibility (axe-core) in each of these states.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  env, launch, openPage, signIn, rows, row, listSettled, shot, parkedJob, embeddingJob, profileJob, sessionJob,
  setJob, localDay, sleep, TIME_ZONE, LOCALE, expectNoSeriousAxeViolations, expectFitsViewport,
} from '../lib.mjs';

const token = env.tokens.lister;
const jobs = []; // oldest first
let browser;

before(async () => {
  browser = await launch();
  // 30 jobs: more than one page (25). Two session and two profile jobs to filter on. They
  // are parked (no worker runs them), so their statuses stay what this test sets.
  for (let i = 0; i < 30; i += 1) {
    const body = i === 10 || i === 20 ? sessionJob() : i === 12 || i === 22 ? profileJob(3) : embeddingJob(1 + (i % 3));
    jobs.push(parkedJob(env.tenants.list, 'pat', body));
    await sleep(2); // distinct created_at milliseconds keep "newest first" unambiguous
  }
  // What workers would have done to two of them…
  setJob(jobs[5].id, { status: 'failed', failed: 1, completed_at: new Date().toISOString() });
  setJob(jobs[6].id, { status: 'completed', succeeded: jobs[6].progress.total, completed_at: new Date().toISOString() });
  // …and two created ten days ago (the list index sorts on list_sk = <created_at>#<id>).
  const old = new Date(Date.now() - 10 * 86400e3);
  for (const job of [jobs[0], jobs[1]]) {
    const at = new Date(old.getTime() + (job === jobs[1] ? 1000 : 0)).toISOString();
    setJob(job.id, { created_at: at, list_sk: `${at}#${job.id}`, list_month: at.slice(0, 7) });
  }
});
after(async () => { await browser?.close(); });

// List pages; the metrics strip's count of running jobs (limit=100) is not one.
const listRequests = (s) => s.requests.filter((r) => /\/jobs\?/.test(r.url) && !/[?&]limit=100(&|$)/.test(r.url));

test('pagination follows next_cursor with "Load more", one page at a time', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  assert.equal(await rows(page).count(), 25, 'first page only');
  assert.match(await page.locator('#summary').textContent(), /25 jobs shown · tenant .* · more available/);
  assert.equal(listRequests(s).length, 1);
  assert.match(listRequests(s)[0].url, /limit=25/);
  assert.doesNotMatch(listRequests(s)[0].url, /cursor=/);
  // Newest first.
  assert.equal(await rows(page).first().getAttribute('data-id'), jobs[29].id);
  // A member has no tenant filter: their tenant is the only one.
  assert.equal(await page.locator('#f-tenant').isVisible(), false);
  await shot(page, '04-member-first-page');
  await expectNoSeriousAxeViolations(page, 'list');

  await page.getByRole('button', { name: 'Load more' }).click();
  await listSettled(page);
  assert.equal(await rows(page).count(), 30);
  assert.equal(await page.locator('#load-more').isVisible(), false, 'no more pages');
  const ids = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  assert.deepEqual([...ids].sort(), jobs.map((j) => j.id).sort(), 'every job exactly once');
  assert.equal(listRequests(s).length, 2);
  assert.match(listRequests(s)[1].url, /cursor=/);
  // Only relative URLs: every request stays under the page's stage path.
  for (const r of s.requests) assert.ok(r.url.startsWith(env.pageUrl), `request outside the stage: ${r.url}`);
  s.assertClean();
  await s.close();
});

test('search (q) narrows the list, is in the URL, and survives a reload', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await page.getByLabel('Search').fill('sess');
  await page.waitForURL(/[?&]q=sess/);
  await listSettled(page);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2);
  for (const t of await page.locator('#rows td[data-label="Type"]').allTextContents()) assert.equal(t, 'Session Termination');
  await page.reload();
  await listSettled(page);
  assert.equal(await page.getByLabel('Search').inputValue(), 'sess');
  assert.equal(await rows(page).count(), 2);

  // Nothing matches: an empty state that says what to do, and a way out.
  await page.getByLabel('Search').fill('zzz-nothing');
  await page.waitForURL(/q=zzz-nothing/);
  await listSettled(page);
  await page.getByText('No jobs match these filters.').waitFor();
  await shot(page, '05-empty-state');
  await expectNoSeriousAxeViolations(page, 'list: no jobs match');
  await page.locator('#state').getByRole('button', { name: 'Clear filters' }).click();
  await listSettled(page);
  assert.equal(new URL(page.url()).search, '');
  assert.equal(await rows(page).count(), 25);
  s.assertClean();
  await s.close();
});

test('status and type filters, shareable through the URL', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await page.getByLabel('Status').selectOption('failed');
  await page.waitForURL(/status=failed/);
  await listSettled(page);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  assert.equal(await rows(page).first().getAttribute('data-id'), jobs[5].id);
  assert.equal(await rows(page).first().locator('td[data-label="Status"]').textContent(), 'failed');

  // The URL alone reproduces a view in a new tab.
  const shared = await openPage(browser, { path: '?status=completed&type=ai_text_embedding' });
  await signIn(shared.page, token);
  await listSettled(shared.page);
  assert.equal(await shared.page.getByLabel('Status').inputValue(), 'completed');
  assert.equal(await shared.page.getByLabel('Type').inputValue(), 'ai_text_embedding');
  assert.deepEqual(await rows(shared.page).evaluateAll((trs) => trs.map((tr) => tr.dataset.id)), [jobs[6].id]);
  await shared.close();

  await page.getByLabel('Status').selectOption('');
  await page.getByLabel('Type').selectOption('profile_field_update');
  await page.waitForURL((url) => url.search === '?type=profile_field_update');
  await listSettled(page);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2);
  for (const t of await page.locator('#rows td[data-label="Type"]').allTextContents()) assert.equal(t, 'Profile Field Update');
  // Back steps through the previous views (status cleared, then status=failed).
  await page.goBack();
  await page.waitForURL((url) => url.search === '');
  await page.goBack();
  await page.waitForURL(/status=failed/);
  assert.equal(await page.getByLabel('Status').inputValue(), 'failed');
  await listSettled(page);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  s.assertClean();
  await s.close();
});

test('created-date range filters by local calendar day', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const fiveDaysAgo = localDay(new Date(Date.now() - 5 * 86400e3));
  await page.getByLabel('Created to').fill(fiveDaysAgo);
  await page.waitForURL(new RegExp(`created_to=${fiveDaysAgo}`));
  await listSettled(page);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2);
  assert.deepEqual(await rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.id)), [jobs[1].id, jobs[0].id]);

  await page.getByLabel('Created to').fill('');
  await page.getByLabel('Created from').fill(localDay(new Date()));
  await page.waitForURL((url) => url.search === `?created_from=${localDay(new Date())}`);
  await listSettled(page);
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 25);
  await page.getByRole('button', { name: 'Load more' }).click();
  await listSettled(page);
  assert.equal(await rows(page).count(), 28, 'all but the two old jobs');

  // A reversed range is explained on the spot, without asking the API.
  const before = s.requests.length;
  await page.getByLabel('Created to').fill(fiveDaysAgo);
  await page.locator('#filter-error').waitFor();
  assert.match(await page.locator('#filter-error').textContent(), /after/);
  assert.equal(await page.getByLabel('Created from').getAttribute('aria-invalid'), 'true');
  assert.equal(s.requests.length, before);
  await expectNoSeriousAxeViolations(page, 'filters: reversed date range');
  s.assertClean();
  await s.close();
});

test('times are local with the UTC value on hover', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const created = page.locator(`#rows tr[data-id="${jobs[29].id}"] td[data-label="Created At"] time`);
  const iso = jobs[29].created_at;
  assert.equal(await created.getAttribute('datetime'), iso);
  assert.equal(await created.getAttribute('title'), `${iso.replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`);
  const expected = new Date(iso).toLocaleString(LOCALE, {
    timeZone: TIME_ZONE, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  assert.equal(await created.textContent(), expected);
  s.assertClean();
  await s.close();
});

test('keyboard: a row opens its details, Escape closes them and focus returns', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const opener = page.locator(`#rows tr[data-id="${jobs[5].id}"] [data-action="open"]`);
  await opener.focus();
  await page.keyboard.press('Enter');
  const details = page.locator('#details');
  await details.waitFor({ state: 'visible' });
  assert.equal(await page.locator('#details-close').evaluate((b) => b === document.activeElement), true);
  assert.match(await details.textContent(), new RegExp(jobs[5].id));
  assert.match(await details.textContent(), /Documents/); // params_summary
  await shot(page, '06-details');
  await expectNoSeriousAxeViolations(page, 'details panel');
  await page.keyboard.press('Escape');
  await details.waitFor({ state: 'hidden' });
  assert.equal(await opener.evaluate((b) => b === document.activeElement), true, 'focus back on the row');
  // A click on the row itself opens the details too.
  await page.locator(`#rows tr[data-id="${jobs[6].id}"] td[data-label="Tenant"]`).click();
  await details.waitFor({ state: 'visible' });
  await page.locator('#details-close').click();
  await details.waitFor({ state: 'hidden' });
  s.assertClean();
  await s.close();
});

test('confirm dialogs (cancel, remove) from a row and from the details panel', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const queued = row(page, jobs[29].id);
  const confirm = page.locator('#confirm');

  await queued.getByRole('button', { name: /^Cancel/ }).click();
  await confirm.waitFor({ state: 'visible' });
  assert.match(await confirm.textContent(), /Cancel this job\?/);
  await expectNoSeriousAxeViolations(page, 'confirm cancel dialog');
  await confirm.getByRole('button', { name: 'Keep running' }).click();
  await confirm.waitFor({ state: 'hidden' });

  await queued.getByRole('button', { name: /^Remove .* from the list$/ }).click();
  await confirm.waitFor({ state: 'visible' });
  await expectNoSeriousAxeViolations(page, 'confirm remove dialog');
  await confirm.getByRole('button', { name: 'Keep it' }).click();
  await confirm.waitFor({ state: 'hidden' });

  // The details panel's buttons are named by their visible text.
  await queued.locator('[data-action="open"]').click();
  const details = page.locator('#details');
  await details.waitFor({ state: 'visible' });
  await details.getByRole('button', { name: 'Cancel job', exact: true }).click();
  await confirm.waitFor({ state: 'visible' });
  await expectNoSeriousAxeViolations(page, 'confirm cancel dialog over the details panel');
  await confirm.getByRole('button', { name: 'Keep running' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await details.getByRole('button', { name: 'Remove from list', exact: true }).click();
  await confirm.waitFor({ state: 'visible' });
  await expectNoSeriousAxeViolations(page, 'confirm remove dialog over the details panel');
  await confirm.getByRole('button', { name: 'Keep it' }).click();
  await confirm.waitFor({ state: 'hidden' });
  assert.equal(s.requests.filter((r) => r.method !== 'GET').length, 0, 'nothing was cancelled or removed');
  s.assertClean();
  await s.close();
});

test('phone width: jobs become readable cards', async () => {
  const s = await openPage(browser, { width: 390, height: 844 });
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await expectFitsViewport(page, 'list at 390 px', page.locator('#refresh'));
  await shot(page, '07-phone');
  await expectNoSeriousAxeViolations(page, 'list at 390 px');
  await rows(page).first().locator('[data-action="open"]').click();
  await page.locator('#details').waitFor({ state: 'visible' });
  await expectNoSeriousAxeViolations(page, 'details panel at 390 px');
  s.assertClean();
  await s.close();
});

test('long unbroken tenant and user ids wrap: nothing is wider than a phone screen', async () => {
  // Tenant ids are at most 63 lower-case letters, digits, - and _; these have no hyphen or
  // underscore, so the browser finds no place of its own to break them.
  const tenant = `${env.run}${'longtenantid'.repeat(6)}`.slice(0, 63);
  const user = `${env.run}${'averylonguseridwithoutanybreak'.repeat(3)}`;
  assert.ok(tenant.length >= 60 && user.length >= 60 && /^[a-z0-9]+$/.test(tenant));
  const queued = parkedJob(tenant, user, profileJob(3));
  await sleep(2);
  const failed = parkedJob(tenant, user, profileJob(2));
  setJob(failed.id, {
    status: 'completed_with_errors', succeeded: 1, failed: 1, started_at: failed.created_at, completed_at: new Date().toISOString(),
    errors: [{ item: `${user}@${tenant}.example.com`, reason: `user ${user} not found in tenant ${tenant}` }],
  });

  // An admin's view of that tenant: the id is in the tenant filter, the summary, the cards
  // and the details panel.
  const s = await openPage(browser, { width: 390, height: 844, path: `?tenant=${tenant}` });
  const { page } = s;
  await signIn(page, env.tokens.admin);
  await listSettled(page);
  assert.equal(await rows(page).count(), 2);
  assert.equal(await page.locator('#f-tenant').inputValue(), tenant);
  assert.match(await page.locator('#summary').textContent(), new RegExp(`tenant ${tenant}`));
  assert.equal(await row(page, queued.id).locator('td[data-label="Tenant"]').textContent(), tenant, 'shown whole, not cut');
  assert.equal(await row(page, queued.id).locator('td[data-label="User"]').textContent(), user);
  await shot(page, '13-phone-long-ids');
  await expectFitsViewport(page, 'list with long ids at 390 px', page.locator('#refresh'));
  await expectNoSeriousAxeViolations(page, 'list with long ids at 390 px');

  await row(page, failed.id).locator('[data-action="open"]').click();
  const details = page.locator('#details');
  await details.waitFor({ state: 'visible' });
  await details.locator('table.errors').waitFor();
  await shot(page, '14-phone-long-ids-details');
  await expectFitsViewport(page, 'details panel with long ids at 390 px', page.locator('#details-close'));
  const drawer = await details.evaluate((d) => ({ scroll: d.scrollWidth, client: d.clientWidth }));
  assert.ok(drawer.scroll <= drawer.client, `the details panel scrolls sideways (${drawer.scroll} > ${drawer.client})`);
  await expectNoSeriousAxeViolations(page, 'details panel with long ids at 390 px');
  await page.keyboard.press('Escape');
  await details.waitFor({ state: 'hidden' });

  // On a wide screen the table does not need to scroll sideways either.
  await page.setViewportSize({ width: 1280, height: 800 });
  const card = await page.locator('#console .table-card').evaluate((c) => ({ scroll: c.scrollWidth, client: c.clientWidth }));
  assert.ok(card.scroll <= card.client, `the table scrolls sideways at 1280 px (${card.scroll} > ${card.client})`);
  await expectFitsViewport(page, 'list with long ids at 1280 px', page.locator('#refresh'));
  s.assertClean();
  await s.close();
});
