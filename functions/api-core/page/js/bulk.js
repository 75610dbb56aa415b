// Selecting jobs and acting on many at once: the row checkboxes, "select all", the bar
// that counts the selection, and its Remove from list / Cancel jobs (POST jobs/bulk).

import { $ } from './dom.js';
import { state } from './state.js';
import { api, describeError } from './api.js';
import { toast, confirmDialog } from './feedback.js';
import { FILTERS } from './filters.js';
import { reload } from './list.js';

const rows = $('rows');
const selectAll = $('select-all');
const bar = $('bulkbar');
const count = $('bulk-count');
const selectMatching = $('bulk-matching');

// The bar and the "select all" box, from the selection.
export function renderBulk() {
  const n = state.selected.size;
  const shown = state.jobs.size;
  bar.hidden = n === 0 && !state.allMatching;
  count.textContent = state.allMatching
    ? `All jobs matching these filters are selected (${shown}${state.cursor ? '+' : ''} shown).`
    : `${n} selected.`;
  selectMatching.hidden = state.allMatching || !state.cursor || n === 0 || n < shown;
  selectAll.checked = state.allMatching || (n > 0 && n === shown);
  selectAll.indeterminate = !state.allMatching && n > 0 && n < shown;
}

function select(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  if (!on) state.allMatching = false;
  const box = state.jobs.get(id)?.tr.querySelector('input[data-select]');
  if (box) box.checked = on;
}

// Hides or cancels the selection: the ticked rows by id, or every job matching the
// filters (1,000 per request at most, following next_cursor).
async function bulkAction(action) {
  const what = state.allMatching ? 'all jobs matching these filters' : `${state.selected.size} job${state.selected.size === 1 ? '' : 's'}`;
  const ok = await confirmDialog(action === 'hide'
    ? { title: `Remove ${what} from the list?`, text: 'This only removes the entries from the Jobs list (for everyone). It does NOT cancel the jobs: their work carries on.', yes: 'Remove from list', no: 'Keep them' }
    : { title: `Cancel ${what}?`, text: 'Workers stop at their next checkpoint: items already processed stay processed, the rest are skipped. This cannot be undone.', yes: 'Cancel jobs', no: 'Keep running' });
  if (!ok) return;
  const counts = { done: 0, not_found: 0, already_ended: 0, failed: 0 };
  try {
    if (state.allMatching) {
      const filter = Object.fromEntries(FILTERS.filter((k) => state.filters[k]).map((k) => [k, state.filters[k]]));
      let cursor = null;
      do {
        const answer = await api('jobs/bulk', { method: 'POST', body: { action, filter, ...(cursor ? { cursor } : {}) } });
        for (const r of answer.results) counts[r.outcome] += 1;
        cursor = answer.next_cursor;
        toast(`${action === 'hide' ? 'Removing' : 'Cancelling'}… ${counts.done} done so far.`);
      } while (cursor);
    } else {
      // A call that runs out of time answers `not_attempted` for the jobs it did not
      // reach (it always works some): they go again with the next call.
      let pending = [...state.selected];
      while (pending.length) {
        const answer = await api('jobs/bulk', { method: 'POST', body: { action, ids: pending.slice(0, 1000) } });
        const again = answer.results.filter((r) => r.outcome === 'not_attempted').map((r) => r.id);
        for (const r of answer.results) if (r.outcome !== 'not_attempted') counts[r.outcome] += 1;
        pending = again.concat(pending.slice(1000));
        if (pending.length) toast(`${action === 'hide' ? 'Removing' : 'Cancelling'}… ${counts.done} done so far.`);
      }
    }
  } catch (err) {
    if (!err.handled) toast(`The bulk action stopped: ${describeError(err)} (${counts.done} done before).`, 'error');
    reload();
    return;
  }
  const extra = [
    counts.already_ended ? `${counts.already_ended} had already ended` : '',
    counts.not_found ? `${counts.not_found} not found` : '',
    counts.failed ? `${counts.failed} could not be changed now: try again` : '',
  ].filter(Boolean).join(', ');
  toast(`${action === 'hide' ? 'Removed from the list' : 'Cancel requested for'}: ${counts.done} job${counts.done === 1 ? '' : 's'}${extra ? `; ${extra}` : ''}.`,
    counts.failed ? 'error' : 'info');
  reload();
}

rows.addEventListener('change', (event) => {
  const box = event.target.closest('input[data-select]');
  if (!box) return;
  select(box.dataset.select, box.checked);
  renderBulk();
});
selectAll.addEventListener('change', () => {
  const on = selectAll.checked;
  for (const id of state.jobs.keys()) select(id, on);
  renderBulk();
});
selectMatching.addEventListener('click', () => { state.allMatching = true; renderBulk(); });
$('bulk-clear').addEventListener('click', () => {
  for (const id of [...state.selected]) select(id, false);
  state.allMatching = false;
  renderBulk();
});
$('bulk-hide').addEventListener('click', () => bulkAction('hide'));
$('bulk-cancel').addEventListener('click', () => bulkAction('cancel'));
