// Signing in with the identity provider: OpenID Connect Authorization Code + PKCE (S256) as
// a public client (RFC 7636, RFC 9700 §2.1.1), with `state` and `nonce`. The code is
// exchanged here in the browser; the tokens are kept in this tab only (sessionStorage) and
// the code leaves the URL at once. The provider and client come from index.html's
// <meta name="jobs-config"> (the API's OidcIssuer, OidcClientId, OidcScopes).

const CONFIG = JSON.parse(document.querySelector('meta[name="jobs-config"]')?.content || '{}');
const PENDING = 'jobs.oidc.pending';
const ID_TOKEN = 'jobs.oidc.id_token';

// The provider ({issuer, client_id, scopes}) or null; whether dev tokens may be pasted.
export const provider = CONFIG.oidc || null;
export const devTokens = Boolean(CONFIG.dev_tokens);

// This page's own URL, the redirect URI registered with the provider.
const redirectUri = () => `${location.origin}${location.pathname}`;

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = (n = 32) => b64url(crypto.getRandomValues(new Uint8Array(n)));

let discovery = null;
async function endpoints() {
  if (!discovery) {
    const response = await fetch(`${provider.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    if (!response.ok) throw new Error(`the identity provider answered ${response.status}`);
    discovery = await response.json();
  }
  return discovery;
}

// Goes to the provider's sign-in; the page's query (its filters) and view come back after.
export async function beginSignIn() {
  const { authorization_endpoint: authorize } = await endpoints();
  const verifier = random();
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const pending = { verifier, state: random(16), nonce: random(16), back: `${location.search}${location.hash}` };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(authorize);
  Object.entries({
    client_id: provider.client_id, response_type: 'code', redirect_uri: redirectUri(), scope: provider.scopes,
    code_challenge: challenge, code_challenge_method: 'S256', state: pending.state, nonce: pending.nonce,
  }).forEach(([k, v]) => url.searchParams.set(k, v));
  location.assign(url.toString());
}

// After the provider sends the browser back: the access token, or null when this load is
// not a sign-in's return. Throws with a message for the user when the sign-in failed.
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (!provider || (!params.has('code') && !params.has('error'))) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  // The code and state leave the address bar and the history at once.
  history.replaceState(null, '', `${location.pathname}${pending?.back || ''}`);
  if (params.has('error')) throw new Error(`the identity provider refused: ${params.get('error_description') || params.get('error')}`);
  if (!pending || params.get('state') !== pending.state) throw new Error('the sign-in did not come back as it left (state); sign in again');
  const { token_endpoint: tokenEndpoint } = await endpoints();
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(),
      client_id: provider.client_id, code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.access_token) throw new Error(`the identity provider did not give a token (${tokens.error || response.status})`);
  if (tokens.id_token) {
    const claims = JSON.parse(atob(tokens.id_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (claims.nonce !== pending.nonce) throw new Error('the sign-in did not come back as it left (nonce); sign in again');
    sessionStorage.setItem(ID_TOKEN, tokens.id_token);
  }
  return tokens.access_token;
}

// Ends the provider's session too, when it supports it (RP-initiated logout); else false.
export async function endProviderSession() {
  const idToken = sessionStorage.getItem(ID_TOKEN);
  sessionStorage.removeItem(ID_TOKEN);
  if (!provider || !idToken) return false;
  const { end_session_endpoint: end } = await endpoints().catch(() => ({}));
  if (!end) return false;
  const url = new URL(end);
  url.searchParams.set('id_token_hint', idToken);
  url.searchParams.set('post_logout_redirect_uri', redirectUri());
  url.searchParams.set('client_id', provider.client_id);
  location.assign(url.toString());
  return true;
}
