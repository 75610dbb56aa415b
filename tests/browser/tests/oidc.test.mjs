// Signing in on the page through the local identity provider (localstack/oidc): the
// Authorization Code + PKCE flow through its login form, for two roles, and an expired
// session that leads back to sign-in without losing the page's filters.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, listSettled, shot } from '../lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function signInWithProvider(page, login, password) {
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  await page.waitForURL(/127\.0\.0\.1:4580\/interaction\//);
  await page.getByLabel('User').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#console').waitFor({ state: 'visible' });
}

test('a viewer and an operator sign in through the provider and see what their role may do', async () => {
  for (const [login, password, role, mayWrite] of [['vera@acme', 'vera-demo', 'viewer', false], ['oscar@acme', 'oscar-demo', 'operator', true]]) {
    const s = await openPage(browser);
    const { page } = s;
    // A wrong password stays on the provider's form.
    await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
    await page.waitForURL(/127\.0\.0\.1:4580\/interaction\//);
    await page.getByLabel('User').fill(login);
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong user or password.').waitFor();
    await page.getByLabel('User').fill(login);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#console').waitFor({ state: 'visible' });
    await listSettled(page);
    assert.equal(await page.locator('#who-role').textContent(), role);
    assert.doesNotMatch(page.url(), /[?&](code|state)=/, 'the code leaves the URL');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    assert.equal(await page.locator('#select-all').isVisible(), mayWrite, 'checkboxes only for a role that may act');
    await page.locator('#tab-schedules').click();
    assert.equal(await page.locator('#s-new').isVisible(), mayWrite, 'the schedule form only for a role that may write');
    await shot(page, `10-signed-in-with-provider-${role}`);
    s.assertClean(/status of 401/); // the wrong password's answer
    await s.close();
  }
});

test('an expired session leads back to sign-in and the filters survive signing in again', async () => {
  const s = await openPage(browser, { path: '?status=completed' });
  const { page } = s;
  await signInWithProvider(page, 'oscar@acme', 'oscar-demo');
  await listSettled(page);
  assert.match(page.url(), /status=completed/);
  // The token goes bad (a key the provider no longer has, as after it expires or rotates):
  // the next call is a 401.
  await page.evaluate(() => {
    const b64 = (o) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const exp = Math.floor(Date.now() / 1000) + 600;
    sessionStorage.setItem('jobs.token', `${b64({ alg: 'RS256', kid: 'gone' })}.${b64({ sub: 'oscar', tenant: 'acme', exp })}.c2ln`);
  });
  await page.reload();
  const message = page.locator('#signin-message');
  await message.waitFor({ state: 'visible' });
  assert.match(await message.textContent(), /did not accept the token.*Sign in again/);
  assert.match(page.url(), /status=completed/, 'the filters are still in the URL');
  // The provider's session is still open: signing in again needs no password.
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  await page.locator('#console').waitFor({ state: 'visible' });
  await listSettled(page);
  assert.match(page.url(), /status=completed/, 'the filters came back');
  assert.equal(await page.locator('#f-status').inputValue(), 'completed');
  s.assertClean(/status of 401/);
  await s.close();
});
