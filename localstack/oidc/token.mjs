// Gets an access token from the local provider without a browser, for tests, the fuzz and
// the benches: drives the real Authorization Code + PKCE flow over HTTP (the login form is
// posted like a browser would), then exchanges the code. Prints the access token.
//
//   node localstack/oidc/token.mjs --user tara@acme --password tara-demo [--client jobs-page|jobs-short] [--json]
//
// OIDC_PORT (4580) and OIDC_RUN_DIR locate the provider and its redirect URIs.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    user: { type: 'string' }, password: { type: 'string' },
    client: { type: 'string', default: 'jobs-page' }, 'redirect-uri': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
if (!args.user || !args.password) {
  console.error('usage: token.mjs --user LOGIN --password PASSWORD [--client jobs-page|jobs-short] [--json]');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${process.env.OIDC_PORT || 4580}`;
const run = process.env.OIDC_RUN_DIR || path.join(HERE, '..', '.run', 'oidc');
const redirectsFile = path.join(run, 'redirect-uris.json');
const redirectUri = args['redirect-uri']
  || (fs.existsSync(redirectsFile) ? JSON.parse(fs.readFileSync(redirectsFile, 'utf8'))[0] : 'http://localhost:4566/');

const b64url = (buf) => buf.toString('base64url');
const verifier = b64url(crypto.randomBytes(32));
const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
const state = b64url(crypto.randomBytes(16));

const jar = new Map();
async function request(url, options = {}) {
  const response = await fetch(url, {
    ...options,
    redirect: 'manual',
    headers: { ...(options.headers || {}), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
  });
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(';');
    const [name, ...value] = pair.split('=');
    jar.set(name.trim(), value.join('='));
  }
  return response;
}
const fail = (message) => { console.error(`token.mjs: ${message}`); process.exit(1); };

const auth = new URL(`${issuer}/auth`);
Object.entries({
  client_id: args.client, response_type: 'code', redirect_uri: redirectUri, scope: 'openid profile',
  code_challenge: challenge, code_challenge_method: 'S256', state, nonce: b64url(crypto.randomBytes(16)),
}).forEach(([k, v]) => auth.searchParams.set(k, v));

// Follow redirects by hand (cookies), posting the login form when it shows; stop at the
// redirect URI, whose code is the point.
let location = auth.toString();
let code = null;
for (let step = 0; step < 10 && !code; step += 1) {
  const url = new URL(location, issuer);
  if (url.toString().startsWith(redirectUri) && url.searchParams.has('code')) {
    if (url.searchParams.get('state') !== state) fail('the state came back changed');
    code = url.searchParams.get('code');
    break;
  }
  if (url.searchParams.has('error')) fail(`${url.searchParams.get('error')}: ${url.searchParams.get('error_description')}`);
  let response = await request(url);
  if (response.status === 200 && /\/interaction\/[^/]+$/.test(url.pathname)) {
    response = await request(`${url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login: args.user, password: args.password }).toString(),
    });
    if (response.status === 401) fail(`wrong user or password for ${args.user}`);
  }
  location = response.headers.get('location');
  if (!location) fail(`no redirect from ${url.pathname} (${response.status}): ${(await response.text()).slice(0, 200)}`);
}
if (!code) fail('the flow did not reach the redirect URI');

const tokenResponse = await fetch(`${issuer}/token`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: args.client, code_verifier: verifier,
  }).toString(),
});
const tokens = await tokenResponse.json();
if (!tokenResponse.ok) fail(`token endpoint: ${JSON.stringify(tokens)}`);
console.log(args.json ? JSON.stringify(tokens) : tokens.access_token);
