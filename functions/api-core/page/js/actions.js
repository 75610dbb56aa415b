// What the buttons on a job do: Cancel, ❌ Remove from list (and its Undo), Download the
// report or the failed items, Retry failed items. One click handler serves the table, the
// box under it and the details panel, by each button's `data-action` (rows are rebuilt as jobs change).

import { $, el } from './dom.js';
import { api, describeError } from './api.js';
import { toast, confirmDialog } from './feedback.js';
import { clearFilters } from './filters.js';
import { reload, retryLoad, updateJob, dropRow } from './list.js';
import { schedulePoll } from './polling.js';
import { openDetails, showJob } from './details.js';
import { showSchedule } from './schedules.js';

const rows = $('rows');

async function removeJob(id) {
  const ok = await confirmDialog({
    title: 'Remove this job from the list?',
    text: 'This only removes the entry from the Jobs list (for everyone). It does NOT cancel the job: '
      + 'queued or running work carries on. To stop the work, use Cancel instead.',
    yes: 'Remove from list', no: 'Keep it',
  });
  if (!ok) return;
  try {
    await api(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  } catch (err) {
    if (err.handled) return;
    if (err.status !== 404) { toast(`Could not remove the job: ${describeError(err)}`, 'error'); return; }
  }
  dropRow(id);
  toast('Removed from the list. The job itself was not cancelled.', 'info', { label: 'Undo', run: () => restoreJob(id) });
}

// Undo of a removal: the job comes back in its place.
async function restoreJob(id) {
  try {
    await api(`jobs/${encodeURIComponent(id)}/unhide`, { method: 'POST' });
    toast('Restored to the list.');
    reload();
  } catch (err) {
    if (!err.handled) toast(`Could not restore the job: ${describeError(err)}`, 'error');
  }
}

async function cancelJob(id) {
  const ok = await confirmDialog({
    title: 'Cancel this job?',
    text: 'Workers stop at their next checkpoint: items already processed stay processed, the rest are skipped. '
      + 'This cannot be undone.',
    yes: 'Cancel job', no: 'Keep running',
  });
  if (!ok) return;
  try {
    const job = await api(`jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
    if (job && job.id) updateJob(job);
    toast('Cancellation requested. The row updates when the job stops.');
    schedulePoll(0);
  } catch (err) {
    if (err.handled) return;
    if (err.status === 409) {
      toast('This job has already finished: there is nothing to cancel.', 'error');
      try { updateJob(await api(`jobs/${encodeURIComponent(id)}`)); } catch { /* the toast said enough */ }
    } else {
      toast(`Could not cancel the job: ${describeError(err)}`, 'error');
    }
  }
}

// A report of any size: the exporter writes it to S3 (POST …/items/export), the page
// waits for it, then the browser downloads it from its presigned URL (saved as
// job-<id>-<outcome>.csv). Gives up waiting after 15 minutes.
async function downloadReport(id, outcome) {
  const what = outcome === 'failed' ? 'the failed items' : 'the report';
  const job = encodeURIComponent(id);
  try {
    const asked = await api(`jobs/${job}/items/export?outcome=${outcome}`, { method: 'POST' });
    const path = `jobs/${job}/items/export/${encodeURIComponent(asked.export_id)}`;
    const until = Date.now() + 15 * 60 * 1000;
    for (let wait = 300; Date.now() < until; wait = Math.min(wait * 2, 5000)) {
      await new Promise((resolve) => { setTimeout(resolve, wait); });
      const ready = await api(path);
      if (ready.status === 'ready') {
        const a = el('a', { href: ready.url });
        document.body.append(a);
        a.click();
        a.remove();
        return;
      }
      if (ready.status === 'failed') {
        toast(`Could not write ${what}: ${ready.error}`, 'error');
        return;
      }
      if (wait === 1200) toast(`Preparing ${what}: the download starts when it is written.`, 'info');
    }
    toast(`${what[0].toUpperCase()}${what.slice(1)} is still being written: try again in a few minutes.`, 'error');
  } catch (err) {
    if (!err.handled) toast(`Could not download ${what}: ${describeError(err)}`, 'error');
  }
}

async function retryItems(id) {
  try {
    const job = await api(`jobs/${encodeURIComponent(id)}/retry`, { method: 'POST' });
    toast(`Retry job created for ${job.progress ? job.progress.total : 'the failed'} items.`);
    reload(); // the new job is the newest: it heads the list
    showJob(job.id);
  } catch (err) {
    if (!err.handled) toast(`Could not retry the failed items: ${describeError(err)}`, 'error');
  }
}

function onAction(event) {
  const button = event.target.closest('button[data-action]');
  if (button) {
    const { action, id } = button.dataset;
    if (action === 'open') openDetails(id, button);
    else if (action === 'cancel') cancelJob(id);
    else if (action === 'remove') removeJob(id);
    else if (action === 'download-failed') downloadReport(id, 'failed');
    else if (action === 'download-report') downloadReport(id, 'all');
    else if (action === 'retry-items') retryItems(id);
    else if (action === 'show-job') showJob(id);
    else if (action === 'show-schedule') showSchedule(id);
    else if (action === 'retry') retryLoad();
    else if (action === 'clear') clearFilters();
    return;
  }
  // A click anywhere else on a row opens its details (unless the user is selecting text,
  // or ticking the row).
  if (event.target.closest('input')) return;
  const tr = event.target.closest('tr[data-id]');
  if (tr && rows.contains(tr) && !String(window.getSelection())) openDetails(tr.dataset.id);
}

rows.addEventListener('click', onAction);
$('state').addEventListener('click', onAction);
$('details-body').addEventListener('click', onAction);
