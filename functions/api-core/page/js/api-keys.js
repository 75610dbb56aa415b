// The API keys view (#api-keys, tenant admins): the tenant's live keys, a form that
// creates one, and Revoke on each row. A new key is shown once, in its own dialog with a
// Copy button: the API keeps only its hash, so neither it nor this page can show it again.

import { $, el, timeEl } from './dom.js';
import { state, isAdmin } from './state.js';
import { api, describeError } from './api.js';
import { toast, confirmDialog } from './feedback.js';

const view = $('keys');
const rows = $('k-rows');
const stateBox = $('k-state');
const summary = $('k-summary');
const form = $('k-form');
const formError = $('k-error');
const tenantRow = $('k-tenant-row');
const dialog = $('k-dialog');
const shown = $('k-secret');

const keys = { items: new Map(), generation: 0 };

// The tenant whose keys are shown: an admin's choice, else the caller's own.
function keysTenant() {
  return (isAdmin() && $('k-tenant').value.trim()) || state.me.tenant;
}

function keyRow(k) {
  return el('tr', { dataset: { id: k.id } },
    el('td', { dataset: { label: 'Name' } }, k.name),
    el('td', { dataset: { label: 'Role' } }, el('span', { className: `badge role-${k.role}` }, k.role)),
    el('td', { dataset: { label: 'Key' } }, el('code', {}, `jobs_${k.id}_…`)),
    el('td', { dataset: { label: 'Created by' } }, k.created_by),
    el('td', { dataset: { label: 'Created' } }, timeEl(k.created_at)),
    el('td', { dataset: { label: 'Expires' } }, k.expires_at ? timeEl(k.expires_at) : el('span', { className: 'muted' }, 'never')),
    el('td', { dataset: { label: 'Last used' } }, k.last_used_at ? timeEl(k.last_used_at) : el('span', { className: 'muted' }, 'never')),
    el('td', { dataset: { label: 'Actions' }, className: 'col-actions' },
      el('button', { type: 'button', className: 'btn btn-small btn-ghost', dataset: { action: 'revoke', id: k.id }, attrs: { 'aria-label': `Revoke ${k.name}` } }, 'Revoke')),
  );
}

function renderKeys() {
  rows.replaceChildren(...[...keys.items.values()].map(keyRow));
  const n = keys.items.size;
  stateBox.hidden = n > 0;
  if (n === 0) stateBox.replaceChildren(el('p', {}, 'No API keys yet.'), el('p', { className: 'muted' }, 'A key lets a machine (e.g. your backend) call the Jobs API as your tenant, as a viewer or an operator.'));
  summary.textContent = `${n} live key${n === 1 ? '' : 's'} · tenant ${keysTenant()}`;
}

async function loadKeys() {
  const generation = ++keys.generation;
  keys.items.clear();
  view.setAttribute('aria-busy', 'true');
  try {
    const page = await api(`api-keys?${new URLSearchParams({ tenant: keysTenant() })}`);
    if (generation !== keys.generation) return;
    for (const k of page.items) keys.items.set(k.id, k);
    renderKeys();
  } catch (err) {
    if (err.handled || generation !== keys.generation) return;
    stateBox.hidden = false;
    stateBox.replaceChildren(el('p', { className: 'notice notice-error' }, `Could not load the API keys: ${describeError(err)}`));
  } finally {
    if (generation === keys.generation) view.removeAttribute('aria-busy');
  }
}

async function createKey(event) {
  event.preventDefault();
  formError.hidden = true;
  const body = { name: $('k-name').value, role: $('k-role').value };
  const expires = $('k-expires').value;
  if (expires) body.expires_at = new Date(`${expires}T23:59:59`).toISOString();
  if (isAdmin()) body.tenant = keysTenant();
  try {
    const created = await api('api-keys', { method: 'POST', body });
    form.reset();
    const { key, ...kept } = created;
    keys.items.set(kept.id, kept);
    renderKeys();
    shown.value = key;
    dialog.showModal();
    shown.select();
  } catch (err) {
    if (err.handled) return;
    formError.textContent = describeError(err);
    formError.hidden = false;
  }
}

async function revokeKey(id) {
  const k = keys.items.get(id);
  const yes = await confirmDialog({
    title: 'Revoke this key?', yes: 'Revoke key', no: 'Keep it',
    text: `“${k ? k.name : id}” stops working at once: every call with it is refused from now on.`,
  });
  if (!yes) return;
  try {
    await api(`api-keys/${encodeURIComponent(id)}`, { method: 'DELETE' });
    keys.items.delete(id);
    renderKeys();
    toast('Key revoked.');
  } catch (err) {
    if (!err.handled) toast(`Could not revoke the key: ${describeError(err)}`, 'error');
  }
}

// Shows or hides the view; showing it loads the list afresh.
export function showKeysView(on) {
  view.hidden = !on;
  tenantRow.hidden = !isAdmin();
  if (on) loadKeys();
}

// Hides the view and forgets the keys (on sign-out).
export function clearKeys() {
  view.hidden = true;
  rows.replaceChildren();
  keys.items.clear();
  shown.value = '';
}

form.addEventListener('submit', createKey);
$('k-show').addEventListener('click', loadKeys);
rows.addEventListener('click', (event) => {
  const target = event.target.closest('[data-action="revoke"]');
  if (target) revokeKey(target.dataset.id);
});
$('k-copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(shown.value);
    toast('Key copied.');
  } catch {
    shown.select();
    toast('Select the key and copy it (Ctrl+C or ⌘C).', 'error');
  }
});
$('k-done').addEventListener('click', () => { shown.value = ''; dialog.close(); });
dialog.addEventListener('close', () => { shown.value = ''; });
