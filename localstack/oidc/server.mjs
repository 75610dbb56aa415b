// A local OpenID Connect provider for development and tests, on oidc-provider (an
// OpenID-certified implementation): demo users of each role and tenant whose passwords are
// checked, JWT access tokens for the Jobs API carrying `tenant` and `role`, Authorization
// Code + PKCE for the page (a public client), RP-initiated logout. Not for production.
//
// Environment: OIDC_PORT (4580), OIDC_AUDIENCE (jobs-api), OIDC_RUN_DIR (../.run/oidc):
// the signing keys (keys.json, made on first start) and the page's redirect URIs
// (redirect-uris.json, written by the deploy; read at start, so the deploy restarts this).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Provider from 'oidc-provider';

import { users, checkPassword } from './users.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PORT = Number(process.env.OIDC_PORT || 4580);
const ISSUER = `http://127.0.0.1:${PORT}`;
const AUDIENCE = process.env.OIDC_AUDIENCE || 'jobs-api';
const RESOURCE = `urn:${AUDIENCE}`;
const RUN = process.env.OIDC_RUN_DIR || path.join(HERE, '..', '.run', 'oidc');
const SHORT_TTL = 5; // seconds: the jobs-short client's access tokens, for expiry tests

fs.mkdirSync(RUN, { recursive: true });

// Private signing keys, made once: an RSA key (RS256, first: tokens are signed with it) and
// a P-256 key (ES256). rotate.mjs adds and removes keys.
const keysFile = path.join(RUN, 'keys.json');
if (!fs.existsSync(keysFile)) {
  const jwk = (type, opts, alg) => ({
    ...crypto.generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }),
    kid: crypto.randomUUID(), alg, use: 'sig',
  });
  const keys = [jwk('rsa', { modulusLength: 2048 }, 'RS256'), jwk('ec', { namedCurve: 'P-256' }, 'ES256')];
  fs.writeFileSync(keysFile, JSON.stringify({ keys }, null, 1), { mode: 0o600 });
}
const jwks = JSON.parse(fs.readFileSync(keysFile, 'utf8'));

const redirectsFile = path.join(RUN, 'redirect-uris.json');
const redirectUris = fs.existsSync(redirectsFile)
  ? JSON.parse(fs.readFileSync(redirectsFile, 'utf8'))
  : ['http://localhost:4566/'];

const accessTokenTtl = (client) => (client?.clientId === 'jobs-short' ? SHORT_TTL : 3600);

const pageClient = (clientId) => ({
  client_id: clientId,
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: redirectUris,
  post_logout_redirect_uris: redirectUris,
});

const provider = new Provider(ISSUER, {
  clients: [pageClient('jobs-page'), pageClient('jobs-short')],
  jwks,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  pkce: { required: () => true, methods: ['S256'] },
  scopes: ['openid', 'profile', 'offline_access', 'jobs'],
  claims: { openid: ['sub'], profile: ['name', 'tenant', 'role'] },
  findAccount: async (ctx, sub) => {
    const user = users.find((u) => u.sub === sub);
    if (!user) return undefined;
    return { accountId: sub, claims: async () => ({ sub, name: user.name, tenant: user.tenant, role: user.role }) };
  },
  // The Jobs API's tenant and role claims, in its access tokens.
  extraTokenClaims: async (ctx, token) => {
    const user = users.find((u) => u.sub === token.accountId);
    return user ? { tenant: user.tenant, role: user.role } : undefined;
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Access tokens are JWTs for the Jobs API even when the client names no resource.
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: 'jobs',
          audience: AUDIENCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: accessTokenTtl(client),
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // First-party clients: what they ask for is granted without a consent screen.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile offline_access');
    grant.addOIDCClaims(['tenant', 'role', 'name']);
    grant.addResourceScope(RESOURCE, 'jobs');
    await grant.save();
    return grant;
  },
  clientBasedCORS: (ctx, origin, client) => redirectUris.some((uri) => new URL(uri).origin === origin),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { AccessToken: (ctx, token, client) => accessTokenTtl(client), Session: 8 * 3600, Interaction: 600, Grant: 8 * 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 8 * 3600 },
  renderError: (ctx, out) => {
    ctx.type = 'text/plain';
    ctx.body = `${out.error}: ${out.error_description || ''}`;
  },
});
provider.proxy = false;

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function loginPage(uid, message) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · local identity provider</title>
<style>body{font:16px system-ui;max-width:22rem;margin:4rem auto}label{display:block;margin:.75rem 0}input{width:100%;padding:.4rem}button{padding:.5rem 1rem}.error{color:#b91c1c}</style></head>
<body><h1>Sign in</h1><p>Local identity provider for the Jobs service (development only).</p>
${message ? `<p class="error" role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>User <input name="login" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

// The login step of the interaction; any other prompt (consent) is granted by loadExistingGrant.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(loginPage(uid));
    }
    return provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'POST' && req.url.endsWith('/login')) {
    const form = await readForm(req);
    const user = await checkPassword(form.login, form.password);
    if (!user) {
      res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(loginPage(uid, 'Wrong user or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  res.writeHead(405).end();
}

const app = provider.callback();
const server = http.createServer((req, res) => {
  const started = Date.now();
  res.on('finish', () => {
    // One line per request: no query string (codes, states), no bodies, no tokens.
    console.log(JSON.stringify({ at: new Date().toISOString(), method: req.method, path: req.url.split('?')[0], status: res.statusCode, ms: Date.now() - started }));
  });
  if (req.url === '/favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}`);
    });
    return;
  }
  app(req, res);
});
server.listen(PORT, '127.0.0.1', () => console.log(JSON.stringify({ at: new Date().toISOString(), issuer: ISSUER, audience: AUDIENCE, redirect_uris: redirectUris })));
