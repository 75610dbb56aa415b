// The Schedules view: create a schedule with the type's own params form and a server-computed
// preview in the browser's time zone, a field error from the server on the field, run now,
// the job in the Jobs list, and the way back from the job to its schedule. Axe and the
// phone layout in each state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, launch, openPage, signIn, listSettled, shot, api, expectNoSeriousAxeViolations, expectFitsViewport, sleep } from '../lib.mjs';

const token = env.tokens.scheduler;
let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function until(check, what, timeout = 20000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('create a schedule, run it now, find its job, and go back to the schedule', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  await page.getByRole('link', { name: 'Schedules' }).click();
  await page.locator('#schedules').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#console').isVisible(), false, 'the jobs view is away');
  assert.match(page.url(), /#schedules$/);
  await until(async () => /No schedules yet/.test(await page.locator('#s-state').textContent()), 'the empty state');
  assert.equal(await page.locator('#view-title').textContent(), 'Schedules');

  await page.getByRole('button', { name: 'New schedule' }).click();
  const dialog = page.locator('#s-dialog');
  await dialog.waitFor({ state: 'visible' });
  await page.getByLabel('Name', { exact: true }).fill('Close idle sessions');
  assert.equal(await page.locator('#s-type').inputValue(), 'session_termination');
  assert.equal(await page.getByLabel('Which sessions').inputValue(), 'idle');
  await page.getByLabel('Idle minutes').fill('30');
  assert.equal(await page.locator('#s-tz').inputValue(), 'America/New_York', 'the browser\'s zone by default');
  await page.getByLabel('Cron expression').fill('0 2 * * *');
  // Five runs from the server, at 02:00 on five days of the browser's clock.
  await until(async () => (await page.locator('#s-preview li').count()) === 5, 'the preview');
  const runs = await page.locator('#s-preview li').allTextContents();
  assert.ok(runs.every((r) => /02:00 AM/.test(r)), runs.join(' | '));
  const expected = await api('GET', '/schedules/preview?cron=0%202%20*%20*%20*&timezone=America%2FNew_York', token);
  const times = await page.locator('#s-preview time').evaluateAll((ts) => ts.map((t) => t.dateTime));
  assert.deepEqual(times, expected.body.next_runs);
  await expectNoSeriousAxeViolations(page, 'new schedule form');
  await shot(page, '20-schedule-form');

  // Too frequent: the server's refusal lands on the field.
  await page.getByLabel('Cron expression').fill('* * * * *');
  await until(async () => /No preview: runs more often/.test(await page.locator('#s-preview-title').textContent()), 'the preview refusal');
  await page.getByRole('button', { name: 'Save' }).click();
  await until(async () => (await page.locator('#s-expr').getAttribute('aria-invalid')) === 'true', 'the field error');
  assert.match(await page.locator('#s-error').textContent(), /every 5 minutes \(cron\)/);
  await page.getByLabel('Cron expression').fill('0 * * * *');
  await page.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });

  const schedRow = page.locator('#s-rows tr');
  await until(async () => (await schedRow.count()) === 1, 'the new row');
  assert.match(await schedRow.locator('td[data-label="When"]').textContent(), /^0 \* \* \* \* \(America\/New_York\)$/);
  assert.match(await schedRow.locator('td[data-label="Next run"]').textContent(), /:00/);
  assert.match(await schedRow.locator('td[data-label="Last run"]').textContent(), /never/);
  await expectNoSeriousAxeViolations(page, 'schedules list');
  await shot(page, '21-schedules');

  await schedRow.getByRole('button', { name: 'Run now' }).click();
  await until(async () => /started/.test(await schedRow.locator('td[data-label="Last run"]').textContent()), 'the run in the row');
  const jobId = await schedRow.locator('td[data-label="Last run"] button').getAttribute('data-id');
  assert.ok(jobId, 'the run links its job');

  // The job is in the Jobs list…
  await page.getByRole('link', { name: 'Jobs' }).click();
  await page.locator('#console').waitFor({ state: 'visible' });
  await listSettled(page);
  const jobRow = page.locator(`#rows tr[data-id="${jobId}"]`);
  await jobRow.waitFor({ state: 'visible' });
  assert.match(await jobRow.locator('td[data-label="Type"]').textContent(), /Session Termination/);
  // …and its details lead back to its schedule, which lists the run.
  await jobRow.locator('[data-action="open"]').click();
  await page.getByRole('button', { name: 'Open its schedule' }).click();
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await page.locator('#s-dialog-title').textContent(), 'Schedule: Close idle sessions');
  assert.match(await page.locator('#s-run-list').textContent(), /run now: started/);
  assert.equal(await page.locator('#s-type').isDisabled(), true, 'the type never changes');
  await expectNoSeriousAxeViolations(page, 'schedule with a run');
  await page.locator('#s-close').click();

  // Disable from the row: no next run.
  await schedRow.getByRole('checkbox').uncheck();
  await until(async () => /disabled/.test(await schedRow.locator('td[data-label="Next run"]').textContent()), 'disabled');
  // The refused preview (400) and save (422) are the only failed requests.
  s.assertClean(/status of (400|422)/);
  await s.close();
});

test('the schedules view fits a phone', async () => {
  const s = await openPage(browser, { width: 390, height: 844 });
  const { page } = s;
  await signIn(page, token);
  await page.getByRole('link', { name: 'Schedules' }).click();
  await page.locator('#s-rows tr').first().waitFor({ state: 'visible' });
  await expectFitsViewport(page, 'schedules on a phone', page.locator('#s-rows tr').first().getByRole('button', { name: 'Run now' }));
  await page.getByRole('button', { name: 'New schedule' }).click();
  await page.locator('#s-dialog').waitFor({ state: 'visible' });
  await expectFitsViewport(page, 'schedule form on a phone', page.getByRole('button', { name: 'Save' }));
  await shot(page, '22-schedule-form-phone');
  s.assertClean();
  await s.close();
});
