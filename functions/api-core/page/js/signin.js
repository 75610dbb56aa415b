// Signing in and out: with the identity provider (oidc.js), or by pasting a dev token when
// the stack accepts them. The token is kept in this tab only (sessionStorage). Who the
// caller is and what its role may do come from GET me: the API verifies the token.

import { $ } from './dom.js';
import { state, isAdmin, may } from './state.js';
import { api } from './api.js';
import { provider, devTokens, beginSignIn, completeSignIn, endProviderSession } from './oidc.js';
import { filtersFromUrl, writeForm } from './filters.js';
import { reload, clearList } from './list.js';
import { clearQueues } from './metrics.js';
import { clearSchedules } from './schedules.js';
import { clearKeys } from './api-keys.js';
import { showView, showTabs } from './views.js';

const TOKEN_KEY = 'jobs.token';
// Set while the token came from the identity provider (not pasted).
const VIA_PROVIDER = 'jobs.via-provider';
// When the page last went back to the provider by itself after a 401.
const RESIGNED_AT = 'jobs.resigned-at';
const RESIGN_EVERY_MS = 60_000;

const signin = $('signin');
const signinForm = $('signin-form');
const signinMessage = $('signin-message');
const tokenField = $('token');
const jobsView = $('console');
const who = $('who');
const whoName = $('who-name');
const whoRole = $('who-role');
const tenantField = $('tenant-field');

// The JWT's payload, or null when the text is not a JWT with a `sub`.
function decodeClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' && typeof claims.sub === 'string' ? claims : null;
  } catch {
    return null;
  }
}

export function showSignIn(message, kind = 'error') {
  jobsView.hidden = true;
  who.hidden = true;
  signin.hidden = false;
  $('signin-provider').hidden = !provider;
  signinForm.hidden = !devTokens;
  signinMessage.hidden = !message;
  signinMessage.textContent = message || '';
  signinMessage.className = `notice notice-${kind}`;
  signinMessage.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  tokenField.value = '';
  (provider ? $('signin-oidc') : tokenField).focus();
}

export async function signIn(raw) {
  const token = raw.trim().replace(/^Bearer\s+/i, '');
  const claims = decodeClaims(token);
  if (!claims) {
    showSignIn('That is not a bearer token (expected a JWT: three base64url parts separated by dots).');
    return;
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
    showSignIn(`That token expired at ${new Date(claims.exp * 1000).toLocaleString()}. Get a new one.`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.token = token;
  state.claims = claims;
  try {
    state.me = await api('me');
  } catch (err) {
    // A 401 has signed out already, with its reason.
    if (!err.handled) showSignIn(`Could not sign in: ${err.message}`);
    return;
  }
  showConsole();
}

// The API refused the token (401): it expired, or its key was rotated away. A token of
// the provider is renewed at once by going back to the provider, which signs in again
// without a password while its own session lasts; the page's filters and view come back
// with it. At most once a minute, so a token the API keeps refusing ends on the sign-in
// card with the reason instead of a loop. Any other token: sign out with the reason.
export function sessionEnded(message) {
  const last = Number(sessionStorage.getItem(RESIGNED_AT) || 0);
  if (provider && sessionStorage.getItem(VIA_PROVIDER) && Date.now() - last > RESIGN_EVERY_MS) {
    sessionStorage.setItem(RESIGNED_AT, String(Date.now()));
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    beginSignIn().catch(() => signOut(message, 'error'));
    return;
  }
  signOut(message, 'error');
}

// Forgets the token and everything shown with it, then asks for a token again.
export function signOut(message, kind = 'info') {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(VIA_PROVIDER);
  state.token = null;
  state.claims = null;
  state.me = null;
  clearList();
  clearQueues();
  for (const dialog of [$('confirm'), $('details'), $('s-dialog')]) if (dialog.open) dialog.close();
  clearSchedules();
  clearKeys();
  showTabs(false);
  showSignIn(message, kind);
}

// The token of an earlier sign-in in this tab, if any.
export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function showConsole() {
  signin.hidden = true;
  jobsView.hidden = false;
  who.hidden = false;
  whoName.textContent = `${state.me.user} · ${state.me.tenant}`;
  whoName.title = `Signed in as ${state.me.user} in tenant ${state.me.tenant}`;
  whoRole.textContent = state.me.role.replace('_', ' ');
  whoRole.className = `badge badge-role role-${state.me.role}`;
  // Platform admins list across tenants; any other role lists its own tenant only.
  tenantField.hidden = !isAdmin();
  // What the role may not do is not offered (the API refuses it anyway).
  $('select-all').hidden = !may('bulkJobs');
  $('s-new').hidden = !may('createSchedule');
  $('j-new').hidden = !may('createJob') || !may('createUpload');
  showTabs(true);
  state.filters = filtersFromUrl();
  writeForm(state.filters);
  reload();
  showView();
}

// A return from the provider's sign-in: the token it gave, or why it failed.
export async function resumeSignIn() {
  try {
    const token = await completeSignIn();
    if (token) {
      sessionStorage.setItem(VIA_PROVIDER, '1');
      await signIn(token);
    }
    return Boolean(token);
  } catch (err) {
    showSignIn(`Could not sign in: ${err.message}.`);
    return true;
  }
}

signinForm.addEventListener('submit', (event) => { event.preventDefault(); signIn(tokenField.value); });
$('signin-oidc').addEventListener('click', () => beginSignIn().catch((err) => showSignIn(`Could not reach the identity provider: ${err.message}.`)));
$('sign-out').addEventListener('click', async () => {
  signOut('You signed out.', 'info');
  await endProviderSession();
});
