// Sign-in, sign-out, the 401 path, and the seeded jobs as an admin sees them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { env, launch, openPage, signIn, rows, listSettled, shot, expectNoSeriousAxeViolations, deadLetter } from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// A well-formed token the API must refuse: signed with some other secret.
function forgedToken(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', randomBytes(32)).update(head).digest('base64url')}`;
}

test('the page is served with its CSP and asks for a sign-in first: the provider, or a dev token', async () => {
  const response = await fetch(env.pageUrl);
  assert.equal(response.status, 200);
  const csp = response.headers.get('content-security-policy') || '';
  assert.match(csp, /script-src 'self'/);
  // The identity provider, and the input bucket the page uploads job files to (here on
  // LocalStack's own port): nothing wider.
  assert.match(csp, /connect-src 'self' http:\/\/127\.0\.0\.1:4580 http:\/\/127\.0\.0\.1:4566;/, 'the issuer and the bucket, nothing wider');
  const s = await openPage(browser);
  await s.page.locator('#signin').waitFor();
  assert.equal(await s.page.locator('#console').isVisible(), false);
  const provider = s.page.getByRole('button', { name: 'Sign in with your identity provider' });
  assert.equal(await provider.evaluate((b) => b === document.activeElement), true, 'the provider button has focus');
  assert.equal(await s.page.locator('#token').isVisible(), true, 'dev tokens are on in LocalStack: the paste card shows');
  await shot(s.page, '01-sign-in');
  await expectNoSeriousAxeViolations(s.page, 'sign-in');
  s.assertClean();
  await s.close();
});

test('an admin signs in, sees the seeded jobs and who they are; sign-out forgets the token', async () => {
  const s = await openPage(browser, { path: '?tenant=acme' });
  const { page } = s;
  await signIn(page, env.tokens.admin);
  await listSettled(page);
  assert.equal(await page.locator('#who-name').textContent(), 'alice · acme');
  assert.equal(await page.locator('#who-role').textContent(), 'platform admin');
  assert.equal(await page.locator('#f-tenant').isVisible(), true, 'admins get a tenant filter');
  assert.equal(await page.locator('#f-tenant').inputValue(), 'acme', 'the URL filter fills the form');
  // Seeded by `infra seed` (as its admin user `seed`): acme has a newsletter, a session
  // termination and an embedding job.
  const acme = rows(page);
  assert.ok(await acme.count() >= 3);
  for (const type of ['Bulk Message Sending', 'Session Termination', 'AI Text Embedding']) {
    await acme.filter({ hasText: type }).first().waitFor();
  }
  for (const tenant of await page.locator('#rows td[data-label="Tenant"]').allTextContents()) assert.equal(tenant, 'acme');

  // Another tenant through the filter box: the URL follows.
  await page.locator('#f-tenant').fill('globex');
  await page.locator('#f-tenant').press('Enter');
  await page.waitForURL(/tenant=globex/);
  await listSettled(page);
  await rows(page).filter({ hasText: 'Profile Field Update' }).first().waitFor();
  for (const tenant of await page.locator('#rows td[data-label="Tenant"]').allTextContents()) assert.equal(tenant, 'globex');

  // Queue health, for admins: a row per type; dead letters stand out.
  deadLetter('profile_field_update');
  await page.locator('#f-tenant').fill('');
  await page.locator('#f-tenant').press('Enter');
  await listSettled(page);
  const health = page.getByRole('region', { name: 'Queue health' });
  await health.locator('tbody tr').nth(3).waitFor();
  assert.equal(await health.locator('tbody tr').count(), 4);
  const dead = health.locator('tr[data-type="profile_field_update"] td').last();
  await dead.filter({ hasText: '⚠' }).waitFor();
  assert.match(await dead.innerText(), /^⚠ [1-9]/);
  assert.equal(await dead.getAttribute('class'), 'dlq-alert');
  deadLetter('profile_field_update', true);

  // All tenants, for the screenshot of the console.
  await page.locator('#f-tenant').fill('');
  await page.locator('#f-tenant').press('Enter');
  await listSettled(page);
  await shot(page, '02-admin-all-tenants');
  await expectNoSeriousAxeViolations(page, 'admin list, all tenants');

  // The token survives a reload (sessionStorage) …
  await page.reload();
  await listSettled(page);
  assert.equal(await page.locator('#who').isVisible(), true);
  // … and sign-out forgets it.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.getByText('You signed out').waitFor();
  s.assertClean();
  await s.close();
});

test('a token the API refuses (401) sends the user back to sign-in with a clear message', async () => {
  const s = await openPage(browser);
  const { page } = s;
  const exp = Math.floor(Date.now() / 1000) + 600;
  await page.locator('#token').fill(forgedToken({ sub: 'mallory', tenant: 'acme', role: 'admin', exp }));
  await page.getByRole('button', { name: 'Use this token' }).click();
  const message = page.locator('#signin-message');
  await message.waitFor({ state: 'visible' });
  assert.match(await message.textContent(), /did not accept the token.*Sign in again/);
  assert.equal(await page.locator('#console').isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');
  await shot(page, '03-sign-in-after-401');
  await expectNoSeriousAxeViolations(page, 'sign-in after a 401');

  // Garbage and expired tokens are caught before any request.
  await page.locator('#token').fill('not a token');
  await page.getByRole('button', { name: 'Use this token' }).click();
  assert.match(await message.textContent(), /not a bearer token/);
  await page.locator('#token').fill(forgedToken({ sub: 'x', tenant: 'acme', role: 'member', exp: 1000 }));
  await page.getByRole('button', { name: 'Use this token' }).click();
  assert.match(await message.textContent(), /expired/);
  s.assertClean(/status of 401/);
  await s.close();
});
