// Keeps the rows of queued and running jobs fresh. One timer for all rows; only those jobs
// are fetched (GET jobs/<id>): finished ones never change, so they are never re-fetched.
// A hidden tab polls rarely, and failures back off.

import { state } from './state.js';
import { api } from './api.js';
import { toast } from './feedback.js';
import { ACTIVE } from './job-parts.js';
import { updateJob, dropRow } from './list.js';
import { refreshMetricsIfStale } from './metrics.js';

const POLL_MS = 2000;          // refresh of queued/running rows while the tab is visible
const POLL_HIDDEN_MS = 30000;  // …and while it is hidden (nobody is looking; spare the API)
const POLL_MAX_MS = 30000;     // back-off ceiling after failed polls
const POLL_BATCH = 6;          // parallel GETs per poll round

let pollTimer = null;
let pollDelay = POLL_MS;
let polling = false;           // a round is in flight (it reschedules itself)

const activeIds = () => [...state.jobs.values()].filter((e) => ACTIVE.has(e.job.status)).map((e) => e.job.id);

export function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

// The next round after `delay` ms (by default the current pace), if any row is active.
export function schedulePoll(delay) {
  stopPolling();
  if (polling || !state.token || activeIds().length === 0) return; // a poll in flight reschedules itself
  const wait = delay ?? (document.hidden ? Math.max(POLL_HIDDEN_MS, pollDelay) : pollDelay);
  pollTimer = setTimeout(pollActive, wait);
}

async function pollActive() {
  pollTimer = null;
  polling = true;
  const generation = state.generation;
  let failures = 0;
  try {
    const ids = activeIds();
    for (let i = 0; i < ids.length; i += POLL_BATCH) {
      await Promise.all(ids.slice(i, i + POLL_BATCH).map(async (id) => {
        try {
          const job = await api(`jobs/${encodeURIComponent(id)}`);
          if (generation === state.generation) updateJob(job);
        } catch (err) {
          if (err.handled) return;
          if (err.status === 404 && generation === state.generation) {
            dropRow(id); // removed elsewhere (hidden by a colleague): it is gone from the list
            toast('A job was removed from the list by someone else.');
          } else {
            failures += 1;
          }
        }
      }));
      if (generation !== state.generation || !state.token) return;
    }
  } finally {
    // Back off while the API or network fails; back to normal after a clean round.
    pollDelay = failures ? Math.min(pollDelay * 2, POLL_MAX_MS) : POLL_MS;
    polling = false;
    if (!failures) refreshMetricsIfStale();
    schedulePoll();
  }
}

document.addEventListener('visibilitychange', () => schedulePoll(document.hidden ? undefined : 0));
