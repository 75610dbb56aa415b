// Rotates the local provider's RSA signing key: a new key signs from now on and the old
// RSA keys leave the key set (the EC key stays). Restart the provider after it
// (oidc.sh restart): it reads its keys at start.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const file = path.join(process.env.OIDC_RUN_DIR || path.join(HERE, '..', '.run', 'oidc'), 'keys.json');
const { keys } = JSON.parse(fs.readFileSync(file, 'utf8'));
const fresh = {
  ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: crypto.randomUUID(), alg: 'RS256', use: 'sig',
};
const kept = keys.filter((k) => k.kty !== 'RSA');
fs.writeFileSync(file, JSON.stringify({ keys: [fresh, ...kept] }, null, 1), { mode: 0o600 });
console.log(JSON.stringify({ added: fresh.kid, removed: keys.filter((k) => k.kty === 'RSA').map((k) => k.kid) }));
