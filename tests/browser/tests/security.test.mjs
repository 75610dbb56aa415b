// Tenancy as the page shows it, and user-supplied markup rendered as text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  env, launch, openPage, signIn, rows, row, listSettled, shot, api, createJob, embeddingJob, setJob, expectNoSeriousAxeViolations,
} from '../lib.mjs';

const MARKUP = '<img src=x onerror=alert(1)>';
let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a member sees only their own tenant, whatever the URL says', async () => {
  const theirs = await createJob(env.tokens.memberA, embeddingJob(1));
  const mine = await createJob(env.tokens.memberB, embeddingJob(2));
  const s = await openPage(browser, { path: `?tenant=${env.tenants.a}` });
  const { page } = s;
  await signIn(page, env.tokens.memberB);
  await listSettled(page);
  assert.equal(await page.locator('#who-role').textContent(), 'operator');
  assert.equal(await page.locator('#f-tenant').isVisible(), false, 'operators get no tenant filter');
  assert.deepEqual(await rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.id)), [mine.id]);
  assert.equal(await row(page, theirs.id).count(), 0);
  for (const tenant of await page.locator('#rows td[data-label="Tenant"]').allTextContents()) assert.equal(tenant, env.tenants.b);
  // No request ever asked for the other tenant.
  for (const r of s.requests.filter((q) => /\/jobs/.test(q.url))) assert.doesNotMatch(r.url, new RegExp(`tenant=${env.tenants.a}`));
  // And the API agrees: the other tenant's job does not exist for this member.
  assert.equal((await api('GET', `/jobs/${theirs.id}`, env.tokens.memberB)).status, 404);
  assert.equal((await api('GET', `/jobs?tenant=${env.tenants.a}`, env.tokens.memberB)).status, 403);
  s.assertClean();
  await s.close();
});

test('a viewer sees no Cancel, no ❌, no checkboxes and no schedule form, and the API refuses them anyway', async () => {
  const job = await createJob(env.tokens.memberB, { ...embeddingJob(3) });
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, env.tokens.viewerB);
  await listSettled(page);
  assert.equal(await page.locator('#who-role').textContent(), 'viewer');
  assert.equal(await row(page, job.id).count(), 1, 'a viewer reads its tenant\'s jobs');
  for (const selector of ['#rows input.select', '#rows [data-action="cancel"]', '#rows [data-action="remove"]']) {
    assert.equal(await page.locator(selector).count(), 0, `no ${selector}`);
  }
  assert.equal(await page.locator('#select-all').isVisible(), false);
  await page.locator('#tab-schedules').click();
  await page.locator('#schedules').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#s-new').isVisible(), false, 'no New schedule');
  // The server decides, whatever the page shows.
  for (const [method, path, body] of [
    ['POST', '/jobs', embeddingJob(4)],
    ['POST', `/jobs/${job.id}/cancel`],
    ['DELETE', `/jobs/${job.id}`],
    ['POST', '/jobs/bulk', { action: 'hide', ids: [job.id] }],
    ['POST', '/schedules', { name: 'n', type: 'session_termination', params: { idle_for_seconds: 1800 }, rate: 'rate(1 day)' }],
  ]) {
    const reply = await api(method, path, env.tokens.viewerB, body);
    assert.equal(reply.status, 403, `${method} ${path}`);
  }
  s.assertClean();
  await s.close();
});

test('markup in user, params and errors is shown as text, never as HTML', async () => {
  const token = env.tokens.markup;
  // The tenant's own sender: a bulk job sends from nothing else.
  const from = `news-${env.run}@example.com`;
  assert.equal((await api('POST', '/senders', env.tokens.markupAdmin, { address: from })).status, 201);
  const job = await createJob(token, {
    type: 'bulk_message_sending',
    params: {
      channel: 'email', from, subject: `Hello ${MARKUP}`,
      body: `<script>alert(2)</script>`, recipients: ['a@example.com', 'b@example.com', 'c@example.com'],
    },
  });
  // A worker's error sample can echo input too.
  setJob(job.id, {
    status: 'completed_with_errors', succeeded: 2, failed: 1, started_at: job.created_at, completed_at: new Date().toISOString(),
    errors: [{ item: MARKUP, reason: `<b>bounced</b> ${MARKUP}` }],
  });
  const s = await openPage(browser);
  const { page } = s;
  await signIn(page, token);
  await listSettled(page);
  assert.equal(await page.locator('#who-name').textContent(), `${MARKUP} · ${env.tenants.x}`);
  assert.equal(await row(page, job.id).locator('td[data-label="User"]').textContent(), MARKUP);

  await row(page, job.id).getByRole('button', { name: 'Bulk Message Sending', exact: true }).click();
  const details = page.locator('#details');
  await details.waitFor({ state: 'visible' });
  await details.getByText(`Hello ${MARKUP}`, { exact: true }).waitFor();
  await details.getByText(`<b>bounced</b> ${MARKUP}`, { exact: true }).waitFor();
  await details.locator('table.errors code').getByText(MARKUP, { exact: true }).waitFor();
  await shot(page, '11-markup-as-text');
  await expectNoSeriousAxeViolations(page, 'details panel with errors');

  // No element was made from the data, and nothing ran (an alert would be a JS dialog,
  // which assertClean reports).
  assert.equal(await page.locator('img, b, script:not([src])').count(), 0);
  s.assertClean();
  await s.close();
});
