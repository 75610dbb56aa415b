// Signing in on the page through the local identity provider (localstack/oidc): the
// Authorization Code + PKCE flow through its login form, for each of the four roles, a
// tenant admin's API keys, and an expired token renewed through the provider without
// losing the page's filters.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, listSettled, shot, api } from '../lib.mjs';

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

test('each role signs in through the provider and sees what it may do', async () => {
  for (const [login, password, role, mayWrite, keys, queues] of [
    ['vera@acme', 'vera-demo', 'viewer', false, false, false],
    ['oscar@acme', 'oscar-demo', 'operator', true, false, false],
    ['tara@acme', 'tara-demo', 'tenant_admin', true, true, false],
    ['pat', 'pat-demo', 'platform_admin', true, true, true],
  ]) {
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
    assert.equal(await page.locator('#who-role').textContent(), role.replace('_', ' '));
    assert.equal(await page.locator('#tab-keys').isVisible(), keys, 'API keys only for admins');
    assert.equal(await page.locator('#tenant-field').isVisible(), queues, 'every tenant only for platform admins');
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

test('an expired token is renewed through the provider without a password, and the filters survive', async () => {
  const s = await openPage(browser, { path: '?status=completed' });
  const { page } = s;
  await signInWithProvider(page, 'oscar@acme', 'oscar-demo');
  await listSettled(page);
  assert.match(page.url(), /status=completed/);
  // The token goes bad (a key the provider no longer has, as after it expires or rotates):
  // the next call is a 401.
  const spoil = () => page.evaluate(() => {
    const b64 = (o) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const bad = `${b64({ alg: 'RS256', kid: 'gone' })}.${b64({ sub: 'oscar', tenant: 'acme', exp })}.c2ln`;
    sessionStorage.setItem('jobs.token', bad);
    return bad;
  });
  const bad = await spoil();
  await page.reload();
  // The provider's session is still open: the page goes there and comes back signed in.
  await page.waitForFunction((b) => {
    const t = sessionStorage.getItem('jobs.token');
    return t && t !== b && !document.getElementById('console').hidden;
  }, bad);
  await listSettled(page);
  assert.match(page.url(), /status=completed/, 'the filters came back');
  assert.equal(await page.locator('#f-status').inputValue(), 'completed');
  // A second refusal within a minute ends on the sign-in card with the reason: no loop.
  await spoil();
  await page.reload();
  const message = page.locator('#signin-message');
  await message.waitFor({ state: 'visible' });
  assert.match(await message.textContent(), /did not accept the token.*Sign in again/);
  assert.match(page.url(), /status=completed/, 'the filters are still in the URL');
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  await page.locator('#console').waitFor({ state: 'visible' });
  s.assertClean(/status of 401/);
  await s.close();
});

test('a tenant admin creates an API key shown once, a machine calls with it, and a revocation stops it', async () => {
  const s = await openPage(browser);
  const { page } = s;
  await signInWithProvider(page, 'tara@acme', 'tara-demo');
  await page.locator('#tab-keys').click();
  await page.locator('#keys').waitFor({ state: 'visible' });
  const name = `nightly import ${Date.now()}`;
  await page.locator('#k-name').fill(name);
  await page.locator('#k-role').selectOption('operator');
  await page.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Your new API key' });
  await dialog.waitFor();
  const key = await page.locator('#k-secret').inputValue();
  assert.match(key, /^jobs_[0-9a-z]{12}_[A-Za-z0-9_-]{43}$/);
  await shot(page, '11-api-key-shown-once');
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await page.locator('#k-secret').inputValue(), '', 'the key leaves the page');
  const row = page.locator('#k-rows tr', { hasText: name });
  await row.waitFor();
  assert.doesNotMatch(await page.locator('#keys').textContent(), new RegExp(key.slice(18)), 'the secret is not listed');

  const me = await api('GET', '/me', key);
  assert.deepEqual([me.status, me.body.tenant, me.body.role, me.body.user], [200, 'acme', 'operator', `api_key:${key.slice(5, 17)}`]);

  await row.getByRole('button', { name: `Revoke ${name}` }).click();
  await page.getByRole('button', { name: 'Revoke key' }).click();
  await row.waitFor({ state: 'detached' });
  assert.equal((await api('GET', '/me', key)).status, 401, 'revoked at once');
  s.assertClean();
  await s.close();
});
