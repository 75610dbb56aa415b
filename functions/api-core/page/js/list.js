// The jobs table: loading pages of GET jobs for the filters, "Load more", the summary line
// and the loading / empty / error box, and one row per job. Rows of queued and running jobs
// are kept fresh by polling.js.

import { $, el, timeEl } from './dom.js';
import { state, isAdmin, may } from './state.js';
import { api, describeError } from './api.js';
import { FILTER_LABELS, apiQuery, showFilterError } from './filters.js';
import { statusBadge, progressBar, actionButtons } from './job-parts.js';
import { renderBulk } from './bulk.js';
import { schedulePoll, stopPolling } from './polling.js';
import { loadMetrics } from './metrics.js';
import { showsJob, renderDetails, closeDetails } from './details.js';

// A page may be empty and still have a next_cursor (filters are applied after the index
// read); follow a few such cursors per click so "Load more" shows something, but never
// walk the whole table.
const MAX_HOPS = 5;

const table = $('jobs');
const rows = $('rows');
const summary = $('summary');
const stateBox = $('state');
const loadMore = $('load-more');
const refresh = $('refresh');

let loading = false;
let error = null;

// Starts the list again from the newest job (new filters, a refresh, a change made here).
export function reload() {
  state.generation += 1;
  state.cursor = null;
  error = null;
  state.jobs.clear();
  state.selected.clear();
  state.allMatching = false;
  renderBulk();
  rows.replaceChildren();
  stopPolling();
  showFilterError(null, '');
  loadPage();
  loadMetrics();
}

// Empties the list on sign-out; answers still under way are dropped.
export function clearList() {
  state.generation += 1;
  stopPolling();
  state.jobs.clear();
  rows.replaceChildren();
}

// The Retry button of the error box: the next page again, or the first.
export function retryLoad() {
  if (state.jobs.size) loadPage(); else reload();
}

// The next page (the first after a reload), appended to the table.
export async function loadPage() {
  const generation = state.generation;
  loading = true;
  error = null;
  renderListState();
  let cursor = state.cursor;
  let added = 0;
  try {
    for (let hop = 0; hop < MAX_HOPS && (hop === 0 || (added === 0 && cursor)); hop += 1) {
      const page = await api(`jobs?${apiQuery(state.filters, cursor)}`);
      if (generation !== state.generation) return;
      for (const job of page.items || []) {
        if (!state.jobs.has(job.id)) { addRow(job); added += 1; }
      }
      cursor = page.next_cursor || null;
    }
    state.cursor = cursor;
  } catch (err) {
    if (generation !== state.generation || err.handled) return;
    error = err;
    if (err.status === 400 && err.field) showFilterError(err.field, `${FILTER_LABELS[err.field] || err.field}: ${err.message}`);
  } finally {
    if (generation === state.generation) {
      loading = false;
      renderListState();
      schedulePoll();
    }
  }
}

const hasFilters = () => Object.keys(state.filters).length > 0;

// Summary line, "Load more", and the loading / empty / error box under the table.
function renderListState() {
  const count = state.jobs.size;
  table.setAttribute('aria-busy', String(loading));
  loadMore.hidden = !state.cursor || (loading && count === 0) || (error && count === 0);
  loadMore.disabled = loading;
  loadMore.textContent = loading ? 'Loading…' : 'Load more';
  const scope = isAdmin() ? (state.filters.tenant ? `tenant ${state.filters.tenant}` : 'all tenants') : `tenant ${state.claims?.tenant}`;
  summary.textContent = loading && count === 0 ? `Loading jobs (${scope})…`
    : `${count} job${count === 1 ? '' : 's'} shown · ${scope}${hasFilters() ? ' · filtered' : ''}${state.cursor ? ' · more available' : ''}`;

  const box = stateBox;
  box.replaceChildren();
  box.className = 'state';
  if (error) {
    box.classList.add('state-error');
    box.append(
      el('p', { className: 'state-title' }, count ? 'Could not load more jobs.' : 'Could not load jobs.'),
      el('p', {}, describeError(error)),
      el('button', { type: 'button', className: 'btn', dataset: { action: 'retry' } }, 'Retry'));
  } else if (loading && count === 0) {
    box.append(el('p', { className: 'muted' }, 'Loading jobs…'));
  } else if (!loading && count === 0) {
    if (state.cursor) {
      box.append(el('p', { className: 'state-title' }, 'No matching jobs among the newest ones.'),
        el('p', {}, 'Use “Load more” to search further back, or change the filters.'));
    } else if (hasFilters()) {
      box.append(el('p', { className: 'state-title' }, 'No jobs match these filters.'),
        el('p', {}, 'Try another search term, widen the date range, or clear the filters.'),
        el('button', { type: 'button', className: 'btn', dataset: { action: 'clear' } }, 'Clear filters'));
    } else {
      box.append(el('p', { className: 'state-title' }, 'No jobs yet.'),
        el('p', {}, 'Jobs appear here as soon as they are created through the API (POST jobs).'));
    }
  }
  box.hidden = box.childElementCount === 0;
}

function addRow(job) {
  const tr = el('tr', { dataset: { id: job.id } });
  state.jobs.set(job.id, { job, tr, key: JSON.stringify(job) });
  fillRow(tr, job);
  rows.append(tr);
}

// A newer copy of a job shown: its row (and the details, if open on it) follow.
export function updateJob(job) {
  const entry = state.jobs.get(job.id);
  if (!entry) return;
  const key = JSON.stringify(job);
  if (key === entry.key) return; // unchanged: leave the DOM (and focus) alone
  Object.assign(entry, { job, key });
  fillRow(entry.tr, job);
  if (showsJob(job.id)) renderDetails(job);
}

// Takes a job's row out of the list (removed here or elsewhere).
export function dropRow(id) {
  const entry = state.jobs.get(id);
  if (!entry) return;
  state.selected.delete(id);
  renderBulk();
  // Keep keyboard users in place: focus moves to the next (or previous) row.
  const neighbour = entry.tr.nextElementSibling || entry.tr.previousElementSibling;
  const hadFocus = entry.tr.contains(document.activeElement) || showsJob(id);
  entry.tr.remove();
  state.jobs.delete(id);
  if (showsJob(id)) closeDetails();
  if (hadFocus) (neighbour?.querySelector('[data-action="open"]') || refresh).focus();
  renderListState();
}

const cell = (label, ...content) => el('td', { dataset: { label } }, ...content);

function fillRow(tr, job) {
  // Rebuilding a row would drop focus from its buttons; remember which one had it.
  const focused = tr.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  tr.className = `row-${job.status}`;
  tr.replaceChildren(
    cell('Select', may('bulkJobs') ? el('input', {
      type: 'checkbox', className: 'select', checked: state.allMatching || state.selected.has(job.id),
      dataset: { select: job.id }, attrs: { 'aria-label': `Select ${job.type_label || job.type} job ${job.id}` },
    }) : null),
    cell('Type', el('button', {
      type: 'button', className: 'link', dataset: { action: 'open', id: job.id },
      title: 'Show details', attrs: { 'aria-haspopup': 'dialog' },
    }, job.type_label || job.type)),
    cell('Tenant', job.tenant),
    cell('Progress', progressBar(job, `Progress of ${job.type_label || job.type} job`)),
    cell('Status', statusBadge(job)),
    cell('User', el('span', { className: 'user' }, job.user)),
    cell('Created At', timeEl(job.created_at)),
    cell('Completed At', timeEl(job.completed_at)),
    cell('Actions', el('div', { className: 'actions' }, actionButtons(job))),
  );
  if (focused) (tr.querySelector(`[data-action="${focused}"]`) || tr.querySelector('[data-action="open"]')).focus();
}

refresh.addEventListener('click', () => reload());
loadMore.addEventListener('click', () => loadPage());
