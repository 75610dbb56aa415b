// Calls to the API. URLs are relative (`jobs?…`, `jobs/<id>`): the page lives under a
// stage path (`/v1/` on AWS, `/_aws/execute-api/<id>/v1/` on LocalStack) and the CSP
// allows `connect-src 'self'` only. Every call sends the bearer token.

import { state } from './state.js';
import { FILTER_LABELS } from './filters.js';
import { sessionEnded } from './signin.js';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    Object.assign(this, { status, code, field, handled: false });
  }
}

// Every error becomes an ApiError from the API's {"error": {code, message, field}}. A 401
// ends the session at once (signin.js signs in again or out; marked `handled`, so callers
// say nothing more).
export async function api(path, { method = 'GET', body } = {}) {
  let response;
  try {
    const headers = { Accept: 'application/json', Authorization: `Bearer ${state.token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    response = await fetch(path, {
      method, cache: 'no-store', headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the API. Check your connection, then retry.', null);
  }
  const text = await response.text();
  let answer = null;
  try { answer = text ? JSON.parse(text) : null; } catch { answer = null; }
  if (response.ok) return answer;
  const e = (answer && answer.error) || {};
  const err = new ApiError(response.status, e.code || `http_${response.status}`,
    e.message || `The API answered ${response.status}.`, e.field || null);
  if (response.status === 401) {
    err.handled = true;
    sessionEnded(`Your session ended: the API did not accept the token (${err.message}). Sign in again to continue; your filters are kept.`);
  }
  throw err;
}

// One sentence for the user: the API's message, the field it names, and what to try.
export function describeError(err) {
  const hints = {
    0: '', 400: 'Check the search and filters.', 403: 'Your token does not allow this.',
    404: 'It may have been removed, or belong to another tenant.', 503: 'The service is busy; retry in a moment.',
  };
  const field = err.field ? ` (${FILTER_LABELS[err.field] || err.field})` : '';
  const hint = hints[err.status] ?? (err.status >= 500 ? 'Something failed on the server; retry in a moment.' : '');
  return `${err.message}${field}. ${hint}`.replace(/\.\. /, '. ').trim();
}
