// The demo users: one per role in tenants acme and globex, a platform admin, and the
// fuzz's tenant admin. Passwords
// are stored as scrypt hashes (N = 16384, r = 8, p = 1, 32-byte salt); the plain demo
// passwords are in README.md, for development only.

import crypto from 'node:crypto';
import { promisify } from 'node:util';

import hashes from './password-hashes.json' with { type: 'json' };

const scrypt = promisify(crypto.scrypt);

// login, sub, tenant, role; password-hashes.json holds each login's salt and hash.
export const users = [
  ['vera@acme', 'vera', 'acme', 'viewer'],
  ['oscar@acme', 'oscar', 'acme', 'operator'],
  ['tara@acme', 'tara', 'acme', 'tenant_admin'],
  ['gwen@globex', 'gwen', 'globex', 'viewer'],
  ['otto@globex', 'otto', 'globex', 'operator'],
  ['tom@globex', 'tom', 'globex', 'tenant_admin'],
  ['pat', 'pat', 'acme', 'platform_admin'],
  // The API fuzz's caller (tests/security/run.sh): a tenant of its own.
  ['fiona@fuzz', 'fiona', 'fuzz', 'tenant_admin'],
].map(([login, sub, tenant, role]) => ({ login, sub, tenant, role, name: sub }));

/** The user whose login and password these are, or null. */
export async function checkPassword(login, password) {
  const user = users.find((u) => u.login === login);
  const stored = hashes[login];
  // Hash even for an unknown login, so timing does not tell which logins exist.
  const salt = Buffer.from(stored ? stored.salt : '00'.repeat(32), 'hex');
  const hash = await scrypt(String(password ?? ''), salt, 32);
  const expected = Buffer.from(stored ? stored.hash : '00'.repeat(32), 'hex');
  return user && stored && crypto.timingSafeEqual(hash, expected) ? user : null;
}
