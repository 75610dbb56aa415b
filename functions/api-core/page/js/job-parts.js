// How one job is drawn, in its table row and in the details panel alike: the status
// badge, the progress bar and the Cancel and ❌ (remove from the list) buttons.

import { el } from './dom.js';
import { may } from './state.js';

// A job in one of these statuses may still change; the others are final.
export const ACTIVE = new Set(['queued', 'running']);

const STATUS_LABELS = {
  queued: 'queued', running: 'running', completed: 'completed',
  completed_with_errors: 'completed with errors', failed: 'failed', cancelled: 'cancelled',
};

// What an active job is waiting for (the API's `waiting_for`), instead of a bare 0 %.
const WAITING = {
  capacity: 'waiting for capacity', rate_limit: 'paced by a rate limit', tenant_limit: "waiting for the tenant's limit",
};

export function statusBadge(job) {
  // Cancel is cooperative: the job stays running until a worker notices the request.
  if (job.cancel_requested_at && ACTIVE.has(job.status)) {
    return el('span', { className: 'badge status-cancelling' }, 'cancelling…');
  }
  return el('span', { className: `badge status-${job.status}` }, STATUS_LABELS[job.status] || job.status);
}

// `label` names the bar for assistive technology (a progressbar needs an accessible name;
// the numbers are in aria-valuetext).
export function progressBar(job, label) {
  const { total = 0, succeeded = 0, failed = 0 } = job.progress || {};
  let { percent = 0 } = job.progress || {};
  // A job may have no items (e.g. nobody was idle): once it completed, it is all done.
  const empty = total === 0 && job.status === 'completed';
  if (empty) percent = 100;
  const share = (n) => `${empty ? 100 : total > 0 ? Math.min(100, (n / total) * 100) : 0}%`;
  const ok = el('span', { className: 'bar-ok' });
  const bad = el('span', { className: 'bar-failed' });
  // CSSOM writes are allowed under `style-src 'self'` (only inline style attributes are not).
  ok.style.width = share(succeeded);
  bad.style.width = share(Math.min(failed, Math.max(0, total - succeeded)));
  const bar = el('div', {
    className: 'bar',
    attrs: {
      role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': percent,
      'aria-valuetext': `${percent} %: ${succeeded} of ${total} succeeded, ${failed} failed`,
    },
  }, ok, bad);
  return el('div', { className: 'progress' }, bar,
    el('div', { className: 'progress-text' },
      el('span', { className: 'pct' }, `${percent} %`),
      el('span', { className: 'counts' }, `${succeeded}/${total}`),
      failed > 0 ? el('span', { className: 'failed' }, `${failed} failed`) : null,
      // Criteria-based jobs (e.g. idle sessions) learn their total when a worker plans them;
      // a job from a large file says how many of its rows its plan has read.
      total === 0 && ACTIVE.has(job.status)
        ? el('span', { className: 'planning' },
          job.rows_read != null ? `planning: ${job.rows_read.toLocaleString('en')} rows read` : 'counting items…')
        : null,
      WAITING[job.waiting_for] && total > 0 ? el('span', { className: 'waiting' }, WAITING[job.waiting_for]) : null));
}

// Small buttons (in a row) name the job they act on, as a row has many such buttons; the
// details drawer's buttons are named by their visible text (a name must contain the text a
// user sees, so that speech control works: "click Remove from list"). The drawer itself is
// labelled by the job's type. Clicks are handled in actions.js, by `data-action`.
export function actionButtons(job, small = true) {
  const size = small ? ' btn-small' : '';
  const what = job.type_label || job.type;
  const buttons = [];
  if (ACTIVE.has(job.status) && !job.cancel_requested_at && may('cancelJob')) {
    buttons.push(el('button', {
      type: 'button', className: `btn${size}`, dataset: { action: 'cancel', id: job.id },
      attrs: small ? { 'aria-label': `Cancel ${what} job` } : undefined,
    }, small ? 'Cancel' : 'Cancel job'));
  }
  if (may('hideJob')) buttons.push(el('button', {
    type: 'button', className: `btn btn-remove${size}`, dataset: { action: 'remove', id: job.id },
    title: 'Remove from the list (does not cancel the job)',
    attrs: small ? { 'aria-label': `Remove ${what} job from the list` } : undefined,
  }, el('span', { attrs: { 'aria-hidden': 'true' } }, '❌'), small ? null : ' Remove from list'));
  return buttons;
}
