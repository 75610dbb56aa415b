// The strip above the list: the last 24 hours of GET /metrics (items per hour, failure
// rate, p95 wait), the jobs running now and the tenant's creates this minute against its
// limit, for the tenant the list shows (a member's own; an admin's filter, or every
// tenant). Admins also get the queue health table.

import { $, el } from './dom.js';
import { state, isAdmin } from './state.js';
import { api, describeError } from './api.js';

const METRICS_MS = 60000;       // the strip's refresh while jobs are polled
const SVG = 'http://www.w3.org/2000/svg';

const strip = $('metrics');
const queues = $('queues');
const qRows = $('q-rows');
const mScope = $('m-scope');
const mRunning = $('m-running');
const mItems = $('m-items');
const mFailure = $('m-failure');
const mWait = $('m-wait');
const mLimit = $('m-limit');
const mChart = $('m-chart');

let metricsAt = 0;              // when the strip was last loaded (ms)

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [a, v] of Object.entries(attrs)) node.setAttribute(a, String(v));
  node.append(...children);
  return node;
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `≤ ${ms} ms`;
  if (ms < 60000) return `≤ ${ms / 1000} s`;
  if (ms < 3600000) return `≤ ${ms / 60000} min`;
  return `≤ ${ms / 3600000} h`;
}

export async function loadMetrics() {
  metricsAt = Date.now();
  const generation = state.generation;
  strip.setAttribute('aria-busy', 'true');
  const tenant = isAdmin() ? state.filters.tenant : null;
  // 24 whole hourly bars: from the start of the hour 23 hours ago (the API's default, the
  // last 24 hours to the millisecond, would touch 25 hours).
  const from = new Date(Date.now() - 23 * 3600000);
  from.setUTCMinutes(0, 0, 0);
  const query = `from=${encodeURIComponent(from.toISOString())}${tenant ? `&tenant=${encodeURIComponent(tenant)}` : ''}`;
  try {
    const [series, running] = await Promise.all([
      api(`metrics?${query}`),
      api(`jobs?status=running&limit=100${tenant ? `&tenant=${encodeURIComponent(tenant)}` : ''}`),
    ]);
    if (generation !== state.generation) return;
    renderMetrics(series, running);
    // One tenant's limit: the caller's own, or the one an admin filters on.
    const limitTenant = isAdmin() ? state.filters.tenant : state.me.tenant;
    mLimit.hidden = !limitTenant;
    if (limitTenant) {
      const limits = await api(`tenants/${encodeURIComponent(limitTenant)}/limits`);
      if (generation !== state.generation) return;
      mLimit.textContent = limitsText(limits);
    }
    if (isAdmin()) {
      const health = await api('queues');
      if (generation !== state.generation) return;
      renderQueues(health);
    }
  } catch (err) {
    if (err.handled || generation !== state.generation) return;
    mChart.replaceChildren(el('p', { className: 'muted' }, `Metrics unavailable: ${describeError(err)}`));
  } finally {
    if (generation === state.generation) strip.setAttribute('aria-busy', 'false');
  }
}

// Reloads the strip when it is older than a minute (called after each clean poll round).
export function refreshMetricsIfStale() {
  if (Date.now() - metricsAt > METRICS_MS) loadMetrics();
}

// Hides the queue health table (on sign-out).
export function clearQueues() {
  queues.hidden = true;
  qRows.replaceChildren();
}

// Admins: per type, the jobs waiting and running, their chunks left, the oldest waiting
// job's age and the queues' depths; dead letters stand out when there are any.
function renderQueues(health) {
  queues.hidden = false;
  const age = (s) => (s === null || s === undefined ? '–' : s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`);
  const capped = (n, c) => `${n}${c ? '+' : ''}`;
  const cell = (label, text, className = '') => el('td', { className, dataset: { label } }, text);
  qRows.replaceChildren(...(health.types || []).map((t) => el('tr', { dataset: { type: t.type } },
    el('th', { scope: 'row' }, t.type_label),
    cell('Waiting', capped(t.queued, t.counts_capped)),
    cell('Running', capped(t.running, t.counts_capped)),
    cell('Chunks left', `${t.chunks_remaining}${t.chunks_remaining_exact ? '' : '+'}`),
    cell('Oldest waiting', age(t.oldest_queued_age_seconds)),
    cell('Queued messages', String(t.messages_visible)),
    cell('In flight', String(t.messages_in_flight)),
    cell('Dead letters', t.dlq_messages > 0 ? `⚠ ${t.dlq_messages}` : '0', t.dlq_messages > 0 ? 'dlq-alert' : ''))));
}

function renderMetrics(series, running) {
  const total = series.total;
  const done = total.items.succeeded + total.items.failed;
  mScope.textContent = series.tenant ? `· ${series.tenant}` : (isAdmin() ? '· all tenants' : '');
  const runningCount = (running.items || []).length;
  mRunning.textContent = `${runningCount}${running.next_cursor ? '+' : ''}`;
  mItems.textContent = done.toLocaleString();
  mFailure.textContent = done ? `${((total.items.failed * 100) / done).toFixed(1)} %` : '–';
  mFailure.classList.toggle('m-dc-red', total.items.failed > 0);
  mWait.textContent = formatMs(total.wait_ms.p95);
  const buckets = series.buckets || [];
  const most = Math.max(1, ...buckets.map((b) => b.items.succeeded + b.items.failed));
  const width = 10;
  const height = 60;
  const bars = buckets.map((b, i) => {
    const ok = (b.items.succeeded / most) * height;
    const bad = (b.items.failed / most) * height;
    const hour = new Date(b.start).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    return svg('g', { 'data-start': b.start },
      svg('title', {}, `${hour}: ${b.items.succeeded} succeeded, ${b.items.failed} failed`),
      svg('rect', { class: 'm-ok', x: i * width + 1, y: height - ok, width: width - 2, height: ok }),
      svg('rect', { class: 'm-failed', x: i * width + 1, y: height - ok - bad, width: width - 2, height: bad }));
  });
  const busiest = buckets.reduce((a, b) => ((b.items.succeeded + b.items.failed) > (a ? a.items.succeeded + a.items.failed : -1) ? b : a), null);
  const label = done
    ? `Items per hour over the last 24 hours: ${total.items.succeeded} succeeded and ${total.items.failed} failed in all; the busiest hour started ${new Date(busiest.start).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })} with ${busiest.items.succeeded + busiest.items.failed} items.`
    : 'No items were processed in the last 24 hours.';
  const axis = svg('line', { class: 'm-axis', x1: 0, y1: height - 0.5, x2: buckets.length * width, y2: height - 0.5 });
  mChart.replaceChildren(svg('svg', { viewBox: `0 0 ${buckets.length * width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label }, axis, ...bars));
}

// A tenant's usage against its limits (GET /tenants/{tenant}/limits), in one line.
export function limitsText(limits) {
  const n = (v) => Number(v || 0).toLocaleString();
  const { usage } = limits;
  const running = Object.entries(usage.running_jobs || {}).filter(([, v]) => v > 0)
    .map(([type, v]) => `${type.replaceAll('_', ' ')} ${n(v)}`);
  const waiting = Object.values(usage.waiting_jobs || {}).reduce((a, b) => a + b, 0);
  return [
    `Tenant's limits: created this minute ${n(usage.creates_this_minute)} of ${n(limits.creates_per_minute)}`,
    `queued ${n(usage.queued_jobs)} of ${n(limits.max_queued_jobs)}`,
    `running ${running.length ? running.join(', ') : 0} (of ${n(limits.max_running_jobs)} per type)`,
    `waiting for the limit ${n(waiting)}`,
  ].join(' · ');
}
