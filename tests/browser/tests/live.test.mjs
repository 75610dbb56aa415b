// Live rows: progress polling (and its back-off), removing an entry, cancelling a job.
// Polling and back-off are checked on parked jobs (no worker runs them; the test writes their
// progress as a worker would, at moments it chooses); one test watches a real worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  env, launch, openPage, signIn, row, listSettled, shot, api, createJob, parkedJob, embeddingJob, profileJob, setJob, getJob, setProgress, sleep,
  expectNoSeriousAxeViolations, expectFitsViewport,
} from '../lib.mjs';

const token = env.tokens.live;
let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const progressText = (page, id) => row(page, id).locator('td[data-label="Progress"] .progress-text');
const statusText = (page, id) => row(page, id).locator('td[data-label="Status"]');
const jobGets = (s, id) => s.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/jobs/${id}`)).length;

async function waitForText(locator, pattern, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await locator.textContent().catch(() => '')) || '';
    if (pattern.test(last)) return last;
    await sleep(200);
  }
  assert.fail(`expected ${pattern}, last saw ${JSON.stringify(last)}`);
}

// Makes the page believe its tab is hidden or visible again.
async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

test('a running job\'s bar moves to 100 % by itself; finished jobs are not re-fetched', async () => {
  const done = parkedJob(env.tenants.live, 'lou', profileJob(4));
  setProgress(done.id, { status: 'completed', succeeded: 4, finished: true });
  const job = parkedJob(env.tenants.live, 'lou', profileJob(10));
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await waitForText(progressText(page, job.id), /^0 %\s*0\/10\s*waiting for capacity$/);
  assert.equal(await statusText(page, job.id).textContent(), 'queued');
  // Past its tenant's running limit, a queued job waits in the tenant's line.
  setJob(job.id, { limit_wait: true });
  await waitForText(progressText(page, job.id), /^0 %\s*0\/10\s*waiting for the tenant's limit$/);
  assert.equal(await statusText(page, job.id).textContent(), 'queued');
  setJob(job.id, { limit_wait: null });
  // A job from a large file whose plan runs over several invocations: rows read so far.
  setJob(job.id, { total: 0, planned_rows: 12345 });
  await waitForText(progressText(page, job.id), /^0 %\s*0\/0\s*planning: 12,345 rows read$/);
  setJob(job.id, { total: 10, planned_rows: null });

  setProgress(job.id, { status: 'running', succeeded: 3 });
  await waitForText(progressText(page, job.id), /^30 %\s*3\/10$/);
  assert.equal(await statusText(page, job.id).textContent(), 'running');
  assert.equal(await row(page, job.id).locator('[role="progressbar"]').getAttribute('aria-valuenow'), '30');
  await shot(page, '08-running');
  await expectNoSeriousAxeViolations(page, 'list with a running job');

  // A chunk met a downstream rate limit a moment ago: the row says the job is paced.
  setJob(job.id, { paced_at: new Date().toISOString() });
  await waitForText(progressText(page, job.id), /^30 %\s*3\/10\s*paced by a rate limit$/);
  setJob(job.id, { paced_at: '2000-01-01T00:00:00.000Z' });

  setProgress(job.id, { status: 'running', succeeded: 6, failed: 1 });
  await waitForText(progressText(page, job.id), /^70 %\s*6\/10\s*1 failed$/);

  // A hidden tab backs off: no polls for a while…
  await setHidden(page, true);
  await sleep(500);
  const before = jobGets(s, job.id);
  setProgress(job.id, { status: 'completed_with_errors', succeeded: 9, failed: 1, finished: true });
  await sleep(5000);
  assert.equal(jobGets(s, job.id), before, 'no polling while hidden');
  assert.match(await progressText(page, job.id).textContent(), /^70 %/);
  // …and catches up as soon as it is visible again.
  await setHidden(page, false);
  await waitForText(progressText(page, job.id), /^100 %\s*9\/10\s*1 failed$/, 5000);
  assert.equal(await statusText(page, job.id).textContent(), 'completed with errors');
  assert.equal(await row(page, job.id).getByRole('button', { name: /^Cancel/ }).count(), 0, 'no Cancel once finished');
  assert.notEqual(await row(page, job.id).locator('td[data-label="Completed At"] time').count(), 0);

  // Finished: neither job is fetched again.
  const settled = jobGets(s, job.id);
  await sleep(4500);
  assert.equal(jobGets(s, job.id), settled, 'a finished job is not polled');
  assert.equal(jobGets(s, done.id), 0, 'a job finished from the start is never polled');
  s.assertClean();
  await s.close();
});

test('❌ removes an entry after a confirmation that says it does not cancel the work', async () => {
  const job = await createJob(token, profileJob(2));
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const remove = row(page, job.id).getByRole('button', { name: /^Remove .* from the list$/ });
  assert.equal(await remove.textContent(), '❌');

  // Changing one's mind keeps the entry.
  await remove.click();
  const confirm = page.locator('#confirm');
  await confirm.waitFor({ state: 'visible' });
  assert.match(await confirm.textContent(), /does NOT cancel the job/);
  await shot(page, '09-confirm-remove');
  await expectNoSeriousAxeViolations(page, 'confirm remove dialog');
  await confirm.getByRole('button', { name: 'Keep it' }).click();
  await confirm.waitFor({ state: 'hidden' });
  assert.equal(await row(page, job.id).count(), 1);
  assert.equal(s.requests.filter((r) => r.method === 'DELETE').length, 0);

  await remove.click();
  await confirm.getByRole('button', { name: 'Remove from list' }).click();
  await row(page, job.id).waitFor({ state: 'detached' });
  await page.getByText('The job itself was not cancelled').waitFor();
  assert.equal(s.requests.filter((r) => r.method === 'DELETE').length, 1);

  await page.reload();
  await listSettled(page);
  assert.equal(await row(page, job.id).count(), 0, 'still gone after a reload');
  // Hidden, not cancelled: the API no longer shows it, but the record is untouched.
  assert.equal((await api('GET', `/jobs/${job.id}`, token)).status, 404);
  const item = getJob(job.id);
  assert.notEqual(item.status, 'cancelled', 'the work went on');
  assert.equal(item.cancel_requested_at, undefined);
  assert.ok(item.hidden_at, 'hidden');
  const hidden = await api('GET', '/jobs?hidden=true', token);
  assert.ok(hidden.body.items.some((j) => j.id === job.id && j.hidden_at), 'listed with hidden=true');
  s.assertClean();
  await s.close();
});

test('Undo after ❌ puts the entry back in its place', async () => {
  const older = await createJob(token, profileJob(1));
  const job = await createJob(token, profileJob(1));
  const newer = await createJob(token, profileJob(1));
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const ids = async () => page.locator('#rows tr[data-id]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  const before = (await ids()).filter((id) => [older.id, job.id, newer.id].includes(id));
  assert.equal(before.length, 3);

  await row(page, job.id).getByRole('button', { name: /^Remove .* from the list$/ }).click();
  await page.locator('#confirm').getByRole('button', { name: 'Remove from list' }).click();
  await row(page, job.id).waitFor({ state: 'detached' });
  await shot(page, '15-removed-with-undo');
  await page.locator('#toast').getByRole('button', { name: 'Undo' }).click();
  await row(page, job.id).waitFor();
  await listSettled(page);
  const after = (await ids()).filter((id) => [older.id, job.id, newer.id].includes(id));
  assert.deepEqual(after, before, 'back in its place');
  assert.equal((await api('GET', `/jobs/${job.id}`, token)).status, 200);
  assert.ok(!(await api('GET', '/jobs?hidden=true', token)).body.items.some((j) => j.id === job.id), 'no longer in the hidden list');
  s.assertClean();
  await s.close();
});

test('Cancel stops a running job (cancelling… until the worker stops; 409 when already finished)', async (t) => {
  // POST jobs/{id}/cancel is built on another branch; probe it on a throwaway job.
  const probe = await createJob(token, profileJob(1));
  const probed = await api('POST', `/jobs/${probe.id}/cancel`, token);
  if (probed.status === 404 || probed.status === 405) {
    t.skip('cancel endpoint not deployed');
    return;
  }
  assert.equal(probed.status, 202, JSON.stringify(probed.body));

  const job = parkedJob(env.tenants.live, 'lou', profileJob(10));
  setProgress(job.id, { status: 'running', succeeded: 2 });
  const late = parkedJob(env.tenants.live, 'lou', profileJob(10));
  setProgress(late.id, { status: 'running', succeeded: 5 });
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await waitForText(statusText(page, job.id), /^running$/);

  await row(page, job.id).getByRole('button', { name: /^Cancel/ }).click();
  const confirm = page.locator('#confirm');
  await confirm.waitFor({ state: 'visible' });
  await expectNoSeriousAxeViolations(page, 'confirm cancel dialog');
  await confirm.getByRole('button', { name: 'Cancel job' }).click();
  await waitForText(statusText(page, job.id), /^(cancelling…|cancelled)$/);
  assert.equal(await row(page, job.id).getByRole('button', { name: /^Cancel/ }).count(), 0);
  await shot(page, '10-cancelling');
  await expectNoSeriousAxeViolations(page, 'list with a job cancelling');
  // The worker notices and stops.
  setJob(job.id, { status: 'cancelled', completed_at: new Date().toISOString() });
  await waitForText(statusText(page, job.id), /^cancelled$/);

  // The other job finishes while the page still shows it running (tab hidden: no polls).
  await setHidden(page, true);
  setProgress(late.id, { status: 'completed', succeeded: 10, finished: true });
  await row(page, late.id).getByRole('button', { name: /^Cancel/ }).click();
  await confirm.getByRole('button', { name: 'Cancel job' }).click();
  await page.getByText('already finished').waitFor();
  await waitForText(statusText(page, late.id), /^completed$/);
  s.assertClean(/status of 409/);
  await s.close();
});

test('a real worker moves a job\'s bar to 100 % while the page watches', async () => {
  const job = await createJob(token, embeddingJob(600));
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const seen = new Set();
  const deadline = Date.now() + 120000;
  for (;;) {
    const text = (await progressText(page, job.id).textContent().catch(() => '')) || '';
    const percent = Number((text.match(/^(\d+) %/) || [])[1]);
    if (!Number.isNaN(percent)) seen.add(percent);
    if (percent === 100 && /^completed$/.test((await statusText(page, job.id).textContent()) || '')) break;
    assert.ok(Date.now() < deadline, `job did not reach 100 % in the page; saw ${[...seen]}`);
    await sleep(100);
  }
  assert.match(await progressText(page, job.id).textContent(), /^100 %\s*600\/600$/);
  assert.ok(seen.size >= 2, `the bar moved (saw ${[...seen].join(', ')} %)`);
  await shot(page, '12-real-worker-done');
  s.assertClean();
  await s.close();
});

const apiJob = async (id) => (await api('GET', `/jobs/${id}`, token)).body;

test('the details of a failed job download its failed items as CSV and retry them', async () => {
  // Nobody in this tenant has a profile: every item fails, for its own reason.
  const job = await createJob(token, profileJob(3));
  const deadline = Date.now() + 60000;
  while ((await apiJob(job.id)).status !== 'failed') {
    assert.ok(Date.now() < deadline, 'the job did not fail in time');
    await sleep(200);
  }
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await row(page, job.id).locator('[data-action="open"]').click();
  const details = page.locator('#details');
  await details.getByRole('button', { name: 'Download failed items (CSV)' }).waitFor();

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    details.getByRole('button', { name: 'Download failed items (CSV)' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8');
  assert.equal(download.suggestedFilename(), `job-${job.id}-failed.csv`);
  assert.equal(csv, 'position,item,outcome,reason\r\n'
    + [0, 1, 2].map((i) => `${i},u-${i},failed,no profile for this user\r\n`).join(''));

  // The timeline: who created it, from where, and how it ended (the audit trail).
  const events = details.getByRole('list', { name: 'Job events' });
  await events.locator('li[data-kind="ended"]').waitFor();
  assert.deepEqual(await events.locator('li').evaluateAll((lis) => lis.map((li) => li.dataset.kind)), ['created', 'started', 'ended']);
  assert.match(await events.locator('li[data-kind="created"]').innerText(), /Created by lou \(operator, bt\S+-live\)/);
  assert.match(await events.locator('li[data-kind="created"] .event-origin').innerText(), /\S/, 'the source address and user agent');
  assert.match(await events.locator('li[data-kind="ended"]').innerText(), /Ended: Failed by the service/);

  await details.getByRole('button', { name: 'Retry failed items (3)' }).click();
  await details.getByText('Retry of').waitFor();
  const retryId = await details.locator('.details-id code').textContent();
  assert.notEqual(retryId, job.id, 'the details show the new job');
  const retry = await apiJob(retryId);
  assert.equal(retry.retry_of, job.id);
  assert.equal(retry.progress.total, 3);
  assert.deepEqual((await apiJob(job.id)).retries, [retryId]);
  const created = details.getByRole('list', { name: 'Job events' }).locator('li[data-kind="created"]');
  assert.equal(await created.getByRole('button', { name: job.id }).count(), 1, 'the retry names the job it retries');
  await shot(page, '14-retry-details');
  await expectNoSeriousAxeViolations(page, 'details of a retry job');
  s.assertClean();
  await s.close();
});

test('a new job from a file: the file goes to S3 with a progress bar, the job runs its rows', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await page.getByRole('button', { name: 'New job from a file' }).click();
  const dialog = page.locator('#j-dialog');
  await dialog.getByLabel('Job to run').selectOption('profile_field_update');
  assert.match(await dialog.locator('#j-columns').textContent(), /user_id/);
  assert.equal(await dialog.getByLabel('User ids (one per line)').count(), 0, 'the file gives the users');
  await dialog.getByLabel('Field').fill('locale');
  await dialog.getByLabel('Value').fill('fr');
  // Nobody in this tenant has a profile: each user fails for it; the empty row fails by its line.
  await dialog.locator('#j-file').setInputFiles({
    name: 'users.csv', mimeType: 'text/csv', buffer: Buffer.from('user_id\nfile-u1\nfile-u2\n""\n'),
  });
  await expectNoSeriousAxeViolations(page, 'the new-job dialog');
  await dialog.getByRole('button', { name: 'Upload and start' }).click();
  await page.waitForFunction(() => !document.querySelector('#j-dialog').open, null, { timeout: 15000 });
  const details = page.locator('#details');
  await details.getByRole('button', { name: 'Download report (CSV)' }).waitFor({ timeout: 60000 });
  const id = (await details.locator('.details-id code').textContent()).trim();
  const job = await apiJob(id);
  assert.equal(job.type, 'profile_field_update');
  assert.deepEqual([job.progress.total, job.progress.failed, job.from_file], [3, 3, true], JSON.stringify(job));
  // The error sample names the bad row by its line; the users come from the file.
  await details.locator('table.errors').getByText('line 4', { exact: true }).waitFor();
  assert.match(await details.locator('dl.kv').last().innerText(), /Users\s+from the file/);
  assert.doesNotMatch(await details.innerText(), /^null$/m, 'no stray null in the panel');
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 60000 }),
    details.getByRole('button', { name: 'Download report (CSV)' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `job-${id}-all.csv`);
  assert.equal(readFileSync(await download.path(), 'utf8'), 'position,item,outcome,reason\r\n'
    + '0,file-u1,failed,no profile for this user\r\n1,file-u2,failed,no profile for this user\r\n'
    + '2,line 4,failed,line 4: no user_id\r\n');
  await shot(page, '15-job-from-a-file');
  // The retry's plan reads the failed items from this job's item list: the bad row fails
  // again with its reason.
  await details.getByRole('button', { name: 'Retry failed items (3)' }).click();
  await details.getByText('Retry of').waitFor();
  const retryId = (await details.locator('.details-id code').textContent()).trim();
  assert.notEqual(retryId, id, 'the details show the retry');
  await details.getByRole('button', { name: 'Download report (CSV)' }).waitFor({ timeout: 60000 });
  const retry = await apiJob(retryId);
  assert.deepEqual([retry.retry_of, retry.from_file, retry.progress.total, retry.progress.failed],
    [id, true, 3, 3], JSON.stringify(retry));
  await details.locator('table.errors').getByText('line 4', { exact: true }).waitFor();
  s.assertClean();
  await s.close();
});

test('bulk: ticked rows are removed together; "all matching" cancels every queued job, also beyond the page', async () => {
  // More queued jobs than a page (25) holds: parked, so only the bulk cancel moves them.
  const parked = Array.from({ length: 30 }, () => parkedJob(env.tenants.live, 'lou', profileJob(1)));
  // Newer than the parked ones: on the first page.
  const picked = [await createJob(token, profileJob(1)), await createJob(token, profileJob(1))];
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);

  for (const job of picked) await row(page, job.id).locator('input[data-select]').check();
  await page.locator('#bulk-count').getByText('2 selected.').waitFor();
  await page.locator('#bulkbar').getByRole('button', { name: 'Remove from list' }).click();
  await page.locator('#confirm').getByRole('button', { name: 'Remove from list' }).click();
  for (const job of picked) await row(page, job.id).waitFor({ state: 'detached' });
  await page.getByText('Removed from the list: 2 jobs.').waitFor();
  const hidden = (await api('GET', '/jobs?hidden=true&limit=100', token)).body.items.map((j) => j.id);
  assert.ok(picked.every((j) => hidden.includes(j.id)), 'both hidden');

  await page.goto(`${env.pageUrl}?status=queued`);
  await listSettled(page);
  await page.locator('#select-all').check();
  await page.locator('#bulkbar').getByRole('button', { name: 'Select all jobs matching these filters' }).click();
  await page.locator('#bulk-count').getByText(/All jobs matching these filters are selected \(25\+ shown\)/).waitFor();
  await shot(page, '16-bulk-all-matching');
  await expectNoSeriousAxeViolations(page, 'bulk selection');
  await page.locator('#bulkbar').getByRole('button', { name: 'Cancel jobs' }).click();
  await page.locator('#confirm').getByRole('button', { name: 'Cancel jobs' }).click();
  await page.getByText(/^Cancel requested for: \d+ jobs/).waitFor({ timeout: 30000 });
  for (const job of parked) {
    assert.equal((await api('GET', `/jobs/${job.id}`, token)).body.status, 'cancelled', `parked job ${job.id}`);
  }
  s.assertClean();
  await s.close();
});

test('the metrics strip shows the last 24 hours of a tenant: items per hour, failure rate, p95 wait', async () => {
  const token = env.tokens.metrics;
  const jobs = [await createJob(token, embeddingJob(1)), await createJob(token, embeddingJob(2)), await createJob(token, profileJob(3))];
  for (const job of jobs) {
    const deadline = Date.now() + 60000;
    while (!['completed', 'failed'].includes((await api('GET', `/jobs/${job.id}`, token)).body.status)) {
      assert.ok(Date.now() < deadline, `job ${job.id} did not end in time`);
      await sleep(200);
    }
  }
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  const strip = page.getByRole('region', { name: /Last 24 hours/ });
  await strip.locator('#m-items').filter({ hasText: '6' }).waitFor();
  // 3 embedded documents succeeded (1 + 2), 3 profiles failed: known data.
  assert.equal(await strip.locator('#m-failure').innerText(), '50.0 %');
  assert.equal(await strip.locator('#m-running').innerText(), '0');
  assert.match(await strip.locator('#m-wait').innerText(), /^≤ /);
  assert.match(await strip.locator('#m-limit').innerText(), /^Tenant's limits: created this minute \d+ of 1,000 · queued \d+ of 1,000 · running .* \(of 100 per type\) · waiting for the limit \d+$/);
  const chart = strip.getByRole('img');
  assert.match(await chart.getAttribute('aria-label'), /3 succeeded and 3 failed in all/);
  assert.equal(await chart.locator('g').count(), 24, 'one bar per hour');
  const titles = await chart.locator('g title').allTextContents();
  const sum = (re) => titles.reduce((n, t) => n + Number((t.match(re) || [0, 0])[1]), 0);
  assert.deepEqual([sum(/(\d+) succeeded/), sum(/(\d+) failed/)], [3, 3], 'the bars hold the items, hour by hour');
  await shot(page, '17-metrics-strip');
  await expectNoSeriousAxeViolations(page, 'metrics strip');
  await page.setViewportSize({ width: 390, height: 844 });
  await expectFitsViewport(page, 'metrics strip on a phone', strip);
  await shot(page, '18-metrics-strip-phone');
  s.assertClean();
  await s.close();
});
