// The details panel of one job (a modal dialog: Escape or a click outside closes it, focus
// returns to the row): overview, progress, related jobs and schedule, the timeline of its
// events, its parameters and its sample of failed items. Its buttons are handled in
// actions.js.

import { $, el, timeEl } from './dom.js';
import { state, may } from './state.js';
import { api, describeError } from './api.js';
import { toast } from './feedback.js';
import { ACTIVE, statusBadge, progressBar, actionButtons } from './job-parts.js';

const dialog = $('details');
const title = $('details-title');
const body = $('details-body');
const closeButton = $('details-close');

let detailsId = null;      // the job shown
let detailsReturn = null;  // element to focus when the details close
let events = null;         // { key, items }: the open job's events, while the job is unchanged

// Is the panel showing this job?
export function showsJob(id) {
  return detailsId === id;
}

export function closeDetails() {
  if (dialog.open) dialog.close();
}

// Opens the panel on a job of the list; `opener` gets the focus back when it closes.
export function openDetails(id, opener) {
  const entry = state.jobs.get(id);
  if (!entry) return;
  detailsId = id;
  detailsReturn = opener || entry.tr.querySelector('[data-action="open"]');
  renderDetails(entry.job);
  if (!dialog.open) dialog.showModal();
  closeButton.focus();
}

// Opens the panel on any job, listed or not (a retry, a schedule's run…), fetched first.
export async function showJob(id) {
  try {
    const job = await api(`jobs/${encodeURIComponent(id)}`);
    detailsId = job.id;
    renderDetails(job);
    if (!dialog.open) dialog.showModal();
  } catch (err) {
    if (!err.handled) toast(`Could not open the job: ${describeError(err)}`, 'error');
  }
}

const humanize = (key) => key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

function dl(pairs) {
  return el('dl', { className: 'kv' }, pairs.filter(Boolean).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function paramValue(value) {
  if (value === null) return el('span', { className: 'muted' }, 'null');
  if (typeof value === 'object') return el('code', {}, JSON.stringify(value));
  return String(value);
}

export function renderDetails(job) {
  const p = job.progress || {};
  title.textContent = job.type_label || job.type;
  const params = Object.entries(job.params_summary || {});
  const errors = Array.isArray(job.errors) ? job.errors : [];
  body.replaceChildren(
    el('p', { className: 'details-id' }, el('span', { className: 'muted' }, 'Job '), el('code', {}, job.id)),
    el('div', { className: 'details-actions' }, actionButtons(job, false)),
    el('section', {}, el('h3', {}, 'Overview'), dl([
      ['Status', statusBadge(job)], ['Tenant', job.tenant], ['User', el('span', { className: 'user' }, job.user)],
    ])),
    el('section', {}, el('h3', {}, 'Progress'), progressBar(job, 'Job progress'), dl([
      ['Total items', String(p.total)], ['Succeeded', String(p.succeeded)], ['Failed', String(p.failed)],
      p.cancelled ? ['Cancelled', String(p.cancelled)] : null, ['Done', `${p.percent} %`],
    ])),
    ...[relatedJobs(job)].filter(Boolean),
    el('section', {}, el('h3', {}, 'Timeline'), timeline(job)),
    el('section', {}, el('h3', {}, 'Parameters'),
      params.length ? dl(params.map(([k, v]) => [humanize(k), v === null && job.from_file ? el('span', { className: 'muted' }, 'from the file') : paramValue(v)])) : el('p', { className: 'muted' }, 'No parameters.')),
    el('section', {}, el('h3', {}, 'Errors'), errors.length === 0
      ? el('p', { className: 'muted' }, p.failed ? 'Failures were counted but no sample was kept.' : 'No item failures.')
      : [
        el('p', { className: 'muted' }, `Showing a sample of ${errors.length} of ${Math.max(p.failed || 0, errors.length)} failed items.`),
        el('table', { className: 'errors' },
          el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Item'), el('th', { scope: 'col' }, 'Reason'))),
          el('tbody', {}, errors.map((e) => el('tr', {}, el('td', {}, el('code', {}, e.item)), el('td', {}, e.reason))))),
      ], failureActions(job)),
  );
}

// The job's events from GET /jobs/{id}/events: who did what, when and from where. Fetched
// when the drawer opens and again when the job changes in a way that adds an event.
const EVENT_TEXT = {
  created: 'Created', started: 'Started', cancel_requested: 'Cancel requested', hidden: 'Removed from the list',
  unhidden: 'Restored to the list', retried: 'Failed items retried', ended: 'Ended',
};

function eventsKey(job) {
  return [job.id, job.status, job.started_at, job.cancel_requested_at, job.hidden_at, (job.retries || []).length].join('|');
}

function timeline(job) {
  const list = el('ol', { className: 'timeline', attrs: { 'aria-label': 'Job events', 'aria-busy': 'true' } },
    el('li', { className: 'muted' }, 'Loading events…'));
  const key = eventsKey(job);
  if (events && events.key === key) {
    fillTimeline(list, events.items);
  } else {
    api(`jobs/${encodeURIComponent(job.id)}/events?limit=100`).then((page) => {
      events = { key, items: page.items || [] };
      fillTimeline(list, events.items);
    }).catch((err) => {
      list.setAttribute('aria-busy', 'false');
      list.replaceChildren(el('li', { className: 'muted' }, `Could not load the events: ${describeError(err)}`));
    });
  }
  return list;
}

function fillTimeline(list, items) {
  list.setAttribute('aria-busy', 'false');
  if (items.length === 0) {
    list.replaceChildren(el('li', { className: 'muted' }, 'No events recorded.'));
    return;
  }
  list.replaceChildren(...items.map((e) => {
    const what = [EVENT_TEXT[e.kind] || humanize(e.kind)];
    if (e.kind === 'ended' && e.status) what.push(`: ${humanize(e.status)}`);
    if (e.outcome && e.outcome !== 'ok') what.push(` — refused (${humanize(e.outcome)})`);
    const who = e.actor ? `by ${e.actor.sub} (${e.actor.role}, ${e.actor.tenant})` : 'by the service';
    const where = [e.source_ip, e.user_agent].filter(Boolean).join(' · ');
    return el('li', { dataset: { kind: e.kind } },
      timeEl(e.at), ' ', el('strong', {}, what.join('')), ' ', el('span', { className: 'muted' }, who),
      e.related_job ? [' ', el('button', { type: 'button', className: 'link', dataset: { action: 'show-job', id: e.related_job } }, el('code', {}, e.related_job))] : null,
      where ? el('div', { className: 'muted event-origin' }, where) : null);
  }));
}

// Items a retry would run: the failed ones, and for a cancelled job the cancelled ones too.
function retryable(job) {
  const p = job.progress || {};
  return (p.failed || 0) + (job.status === 'cancelled' ? (p.cancelled || 0) : 0);
}

function failureActions(job) {
  if (ACTIVE.has(job.status)) return null;
  const p = job.progress || {};
  const n = retryable(job);
  return el('div', { className: 'details-actions' },
    el('button', { type: 'button', className: 'btn', dataset: { action: 'download-report', id: job.id } }, 'Download report (CSV)'),
    p.failed ? el('button', { type: 'button', className: 'btn', dataset: { action: 'download-failed', id: job.id } }, 'Download failed items (CSV)') : null,
    n && may('retryJob') ? el('button', { type: 'button', className: 'btn', dataset: { action: 'retry-items', id: job.id } }, `Retry failed items (${n})`) : null);
}

// The schedule that started the job, the job this one retries, and the jobs that retry it.
function relatedJobs(job) {
  const link = (id) => el('button', { type: 'button', className: 'link', dataset: { action: 'show-job', id } }, el('code', {}, id));
  const retries = Array.isArray(job.retries) ? job.retries : [];
  const schedule = job.schedule_id
    ? el('section', {}, el('h3', {}, 'Schedule'), el('p', {}, 'Started by a schedule. ',
      el('button', { type: 'button', className: 'link', dataset: { action: 'show-schedule', id: job.schedule_id } }, 'Open its schedule')))
    : null;
  if (!job.retry_of && retries.length === 0) return schedule;
  return el('section', {}, schedule, el('h3', {}, 'Retries'), dl([
    job.retry_of ? ['Retry of', link(job.retry_of)] : null,
    retries.length ? ['Retried by', el('span', {}, retries.map(link))] : null,
  ]));
}

// Escape closes a modal <dialog> natively; focus goes back to the row that opened it.
dialog.addEventListener('close', () => {
  detailsId = null;
  const back = detailsReturn;
  detailsReturn = null;
  if (back && back.isConnected) back.focus();
});
closeButton.addEventListener('click', () => dialog.close());
// A click on the backdrop (outside the drawer's box) closes it too.
dialog.addEventListener('click', (event) => { if (event.target === dialog) dialog.close(); });
