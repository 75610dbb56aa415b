// The Schedules view (#schedules): a tenant's recurring jobs, with Run now, the Enabled
// switch and Delete on each row. The server computes every run time (one cron and
// daylight-saving implementation); the page only shows them in the browser's time zone.
// Creating and editing happen in schedule-dialog.js.

import { $, el, timeEl } from './dom.js';
import { state, isAdmin, may } from './state.js';
import { api, describeError } from './api.js';
import { toast, confirmDialog } from './feedback.js';
import { showJob, closeDetails } from './details.js';
import { openSchedule } from './schedule-dialog.js';

const view = $('schedules');
const rows = $('s-rows');
const stateBox = $('s-state');
const summary = $('s-summary');
const more = $('s-more');
const tenantForm = $('s-tenant-form');
const tenantFilter = $('s-tenant-filter');

const schedules = { items: new Map(), cursor: null, generation: 0 };

// The tenant whose schedules are shown: an admin's choice, else the caller's own.
export function schedulesTenant() {
  return (isAdmin() && tenantFilter.value.trim()) || state.claims.tenant;
}

// A run time, in the browser's time zone.
export function localRun(iso) {
  return new Date(iso).toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function whenText(s) {
  return s.cron ? `${s.cron} (${s.timezone})` : s.rate;
}

function lastRunCell(s) {
  const run = (s.runs || [])[0];
  if (!run) return el('span', { className: 'muted' }, 'never');
  return el('span', {}, timeEl(run.at), ' ', el('span', { className: `badge outcome-${run.outcome}` }, run.outcome),
    run.job_id && run.outcome === 'started'
      ? [' ', el('button', { type: 'button', className: 'link', dataset: { action: 'show-job', id: run.job_id } }, 'job')] : '');
}

function scheduleRow(s) {
  const toggle = el('input', {
    type: 'checkbox', checked: s.enabled, dataset: { action: 'toggle', id: s.id },
    disabled: !may('updateSchedule'), attrs: { 'aria-label': `Enabled: ${s.name}` },
  });
  return el('tr', { dataset: { id: s.id } },
    el('td', { dataset: { label: 'Name' } }, el('button', { type: 'button', className: 'link', dataset: { action: 'edit', id: s.id } }, s.name)),
    el('td', { dataset: { label: 'Type' } }, s.type_label || s.type),
    el('td', { dataset: { label: 'Tenant' } }, s.tenant),
    el('td', { dataset: { label: 'When' } }, el('code', {}, whenText(s))),
    el('td', { dataset: { label: 'Next run' } }, s.enabled ? timeEl(s.next_run_at) : el('span', { className: 'muted' }, 'disabled')),
    el('td', { dataset: { label: 'Last run' } }, lastRunCell(s)),
    el('td', { dataset: { label: 'Enabled' } }, toggle),
    el('td', { dataset: { label: 'Actions' }, className: 'col-actions' },
      may('runSchedule') ? el('button', { type: 'button', className: 'btn btn-small', dataset: { action: 'run', id: s.id } }, 'Run now') : null,
      may('deleteSchedule') ? el('button', { type: 'button', className: 'btn btn-small btn-ghost', dataset: { action: 'delete', id: s.id }, attrs: { 'aria-label': `Delete ${s.name}` } }, 'Delete') : null),
  );
}

function renderSchedules() {
  rows.replaceChildren(...[...schedules.items.values()].map(scheduleRow));
  const n = schedules.items.size;
  stateBox.hidden = n > 0;
  if (n === 0) stateBox.replaceChildren(el('p', {}, 'No schedules yet.'), el('p', { className: 'muted' }, 'A schedule starts a job of its type at each due time, e.g. every hour close the sessions idle for more than 30 minutes.'));
  summary.textContent = `${n} schedule${n === 1 ? '' : 's'} · tenant ${schedulesTenant()}${schedules.cursor ? ' · more available' : ''}`;
  more.hidden = !schedules.cursor;
}

// A schedule saved in the dialog: shown if it belongs to the tenant listed.
export function storeSchedule(saved) {
  if (saved.tenant === schedulesTenant()) { schedules.items.set(saved.id, saved); renderSchedules(); }
}

async function loadSchedules(next = false) {
  const generation = next ? schedules.generation : ++schedules.generation;
  if (!next) { schedules.items.clear(); schedules.cursor = null; }
  const query = new URLSearchParams({ limit: '50', tenant: schedulesTenant() });
  if (next && schedules.cursor) query.set('cursor', schedules.cursor);
  view.setAttribute('aria-busy', 'true');
  try {
    const page = await api(`schedules?${query}`);
    if (generation !== schedules.generation) return;
    for (const s of page.items) schedules.items.set(s.id, s);
    schedules.cursor = page.next_cursor;
    renderSchedules();
  } catch (err) {
    if (err.handled || generation !== schedules.generation) return;
    stateBox.hidden = false;
    stateBox.replaceChildren(el('p', { className: 'notice notice-error' }, `Could not load the schedules: ${describeError(err)}`));
  } finally {
    if (generation === schedules.generation) view.removeAttribute('aria-busy');
  }
}

// Shows or hides the view; showing it loads the list afresh.
export function showSchedulesView(on) {
  view.hidden = !on;
  tenantForm.hidden = !isAdmin();
  if (on) loadSchedules();
}

// Hides the view and forgets the schedules (on sign-out).
export function clearSchedules() {
  view.hidden = true;
  rows.replaceChildren();
  schedules.items.clear();
}

async function runSchedule(id) {
  try {
    const job = await api(`schedules/${encodeURIComponent(id)}/run`, { method: 'POST' });
    toast('Job started.', 'info', { label: 'Open job', run: () => showJob(job.id) });
    refreshSchedule(id);
  } catch (err) {
    if (!err.handled) toast(`Could not run the schedule: ${describeError(err)}`, 'error');
    refreshSchedule(id);
  }
}

async function refreshSchedule(id) {
  try {
    const s = await api(`schedules/${encodeURIComponent(id)}`);
    if (schedules.items.has(id)) { schedules.items.set(id, s); renderSchedules(); }
    return s;
  } catch (err) {
    if (!err.handled && err.status === 404) { schedules.items.delete(id); renderSchedules(); }
    return null;
  }
}

async function toggleSchedule(id, enabled) {
  try {
    const s = await api(`schedules/${encodeURIComponent(id)}`, { method: 'PATCH', body: { enabled } });
    schedules.items.set(id, s);
    renderSchedules();
    toast(enabled ? `Enabled. Next run ${localRun(s.next_run_at)}.` : 'Disabled: it starts nothing until enabled again.');
  } catch (err) {
    if (!err.handled) toast(`Could not change the schedule: ${describeError(err)}`, 'error');
    refreshSchedule(id);
  }
}

async function deleteSchedule(id) {
  const s = schedules.items.get(id);
  const yes = await confirmDialog({
    title: 'Delete this schedule?', yes: 'Delete schedule', no: 'Keep it',
    text: `“${s ? s.name : id}” will start no more jobs. The jobs it already started are not touched.`,
  });
  if (!yes) return;
  try {
    await api(`schedules/${encodeURIComponent(id)}`, { method: 'DELETE' });
    schedules.items.delete(id);
    renderSchedules();
    toast('Schedule deleted.');
  } catch (err) {
    if (!err.handled) toast(`Could not delete the schedule: ${describeError(err)}`, 'error');
  }
}

// Opens a schedule from a job's details ("Open its schedule").
export async function showSchedule(id) {
  closeDetails();
  if (location.hash !== '#schedules') location.hash = '#schedules';
  const s = await refreshSchedule(id);
  if (s) openSchedule(s); else toast('That schedule no longer exists.', 'error');
}

function onScheduleAction(event) {
  const target = event.target.closest('[data-action]');
  if (!target) return;
  const { action, id } = target.dataset;
  if (action === 'edit') openSchedule(schedules.items.get(id));
  else if (action === 'run') runSchedule(id);
  else if (action === 'delete') deleteSchedule(id);
  else if (action === 'toggle') toggleSchedule(id, target.checked);
  else if (action === 'show-job') showJob(id);
}

$('s-new').addEventListener('click', () => openSchedule());
more.addEventListener('click', () => loadSchedules(true));
tenantForm.addEventListener('submit', (event) => { event.preventDefault(); loadSchedules(); });
rows.addEventListener('click', (event) => { if (event.target.dataset.action !== 'toggle') onScheduleAction(event); });
rows.addEventListener('change', onScheduleAction);
