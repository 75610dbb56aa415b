// Behaviour of the System → Jobs page.
//
// Plain JS, no build step. Rules the code keeps:
// - Only relative URLs (`jobs?…`, `jobs/<id>`): the page lives under a stage path
//   (`/v1/` on AWS, `/_aws/execute-api/<id>/v1/` on LocalStack) and the CSP allows
//   `connect-src 'self'` only.
// - Job fields come from users (user ids, e-mail subjects, error reasons…): the DOM is built
//   with createElement/textContent only, never innerHTML, so no data is ever parsed as HTML.
// - The URL's query string holds the search and filters, so a view can be shared and reloaded.
'use strict';

(() => {
  const TOKEN_KEY = 'jobs.token';
  const PAGE_SIZE = 25;
  // Filters as named in the URL and the API (dates stay YYYY-MM-DD in the URL).
  const FILTERS = ['q', 'status', 'type', 'tenant', 'created_from', 'created_to'];
  const FILTER_LABELS = { q: 'Search', status: 'Status', type: 'Type', tenant: 'Tenant', created_from: 'Created from', created_to: 'Created to' };
  const ACTIVE = new Set(['queued', 'running']);
  const STATUS_LABELS = {
    queued: 'queued', running: 'running', completed: 'completed',
    completed_with_errors: 'completed with errors', failed: 'failed', cancelled: 'cancelled',
  };
  const POLL_MS = 2000;          // refresh of queued/running rows while the tab is visible
  const POLL_HIDDEN_MS = 30000;  // …and while it is hidden (nobody is looking; spare the API)
  const POLL_MAX_MS = 30000;     // back-off ceiling after failed polls
  const POLL_BATCH = 6;          // parallel GETs per poll round
  // A page may be empty and still have a next_cursor (filters are applied after the index
  // read); follow a few such cursors per click so "Load more" shows something, but never
  // walk the whole table.
  const MAX_HOPS = 5;

  const $ = (id) => document.getElementById(id);
  const ui = {
    who: $('who'), whoName: $('who-name'), whoRole: $('who-role'), signOut: $('sign-out'),
    signin: $('signin'), signinForm: $('signin-form'), signinMessage: $('signin-message'), token: $('token'),
    console: $('console'), filters: $('filters'), tenantField: $('tenant-field'), filterError: $('filter-error'),
    clear: $('clear-filters'), summary: $('summary'), refresh: $('refresh'), table: $('jobs'), rows: $('rows'),
    state: $('state'), loadMore: $('load-more'), toast: $('toast'),
    details: $('details'), detailsTitle: $('details-title'), detailsBody: $('details-body'), detailsClose: $('details-close'),
    confirm: $('confirm'), confirmTitle: $('confirm-title'), confirmText: $('confirm-text'),
    confirmYes: $('confirm-yes'), confirmNo: $('confirm-no'),
    selectAll: $('select-all'), bulkbar: $('bulkbar'), bulkCount: $('bulk-count'), bulkMatching: $('bulk-matching'),
    bulkHide: $('bulk-hide'), bulkCancel: $('bulk-cancel'), bulkClear: $('bulk-clear'),
    metrics: $('metrics'), queues: $('queues'), qRows: $('q-rows'),
    mScope: $('m-scope'), mRunning: $('m-running'), mItems: $('m-items'), mFailure: $('m-failure'), mWait: $('m-wait'), mChart: $('m-chart'),
  };
  const input = (name) => ui.filters.elements.namedItem(name);

  const state = {
    token: null,
    claims: null,
    filters: {},          // applied filters, as in the URL
    cursor: null,         // next_cursor of the last page loaded
    jobs: new Map(),      // id -> { job, tr, key }
    generation: 0,        // bumped on every reload; responses of older generations are dropped
    loading: false,
    error: null,
    pollTimer: null,
    pollDelay: POLL_MS,
    polling: false,
    detailsId: null,
    detailsReturn: null,  // element to focus when the details close
    events: null,         // { key, items }: the open job's events, while the job is unchanged
    metricsAt: 0,         // when the metrics strip was last loaded (ms)
    selected: new Set(),  // ids of the rows ticked
    allMatching: false,   // the selection is every job matching the filters, shown or not
  };

  // ---------- DOM helpers ---------------------------------------------------------------

  // el('td', {className: 'x', dataset: {label: 'Type'}}, 'text', node…). Strings become text
  // nodes; `attrs` go through setAttribute, which never parses HTML.
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'attrs') for (const [a, v] of Object.entries(value)) node.setAttribute(a, String(v));
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  let toastTimer = null;
  // `action`: an optional {label, run} button in the toast (e.g. Undo), for as long as it shows.
  function toast(message, kind = 'info', action = null) {
    ui.toast.replaceChildren(message, action
      ? el('button', { type: 'button', className: 'toast-action', onclick: () => { ui.toast.hidden = true; action.run(); } }, action.label)
      : '');
    ui.toast.className = `toast toast-${kind}`;
    ui.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { ui.toast.hidden = true; }, action ? 10000 : 7000);
  }

  // Local time for reading; the exact UTC value on hover (and in `datetime`).
  function timeEl(iso) {
    if (!iso) return el('span', { className: 'muted', attrs: { 'aria-label': 'not yet' } }, '—');
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return el('span', {}, iso);
    // The year only when it is not this year: keeps the table narrow.
    const local = date.toLocaleString(undefined, {
      year: date.getFullYear() === new Date().getFullYear() ? undefined : 'numeric',
      month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    });
    return el('time', { dateTime: iso, title: `${date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC` }, local);
  }

  // What an active job is waiting for (the API's `waiting_for`), instead of a bare 0 %.
  const WAITING = { capacity: 'waiting for capacity', rate_limit: 'paced by a rate limit' };

  function statusBadge(job) {
    // Cancel is cooperative: the job stays running until a worker notices the request.
    if (job.cancel_requested_at && ACTIVE.has(job.status)) {
      return el('span', { className: 'badge status-cancelling' }, 'cancelling…');
    }
    return el('span', { className: `badge status-${job.status}` }, STATUS_LABELS[job.status] || job.status);
  }

  // `label` names the bar for assistive technology (a progressbar needs an accessible name;
  // the numbers are in aria-valuetext).
  function progressBar(job, label) {
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
        // Criteria-based jobs (e.g. idle sessions) learn their total when a worker plans them.
        total === 0 && ACTIVE.has(job.status) ? el('span', {}, 'counting items…') : null,
        WAITING[job.waiting_for] && total > 0 ? el('span', { className: 'waiting' }, WAITING[job.waiting_for]) : null));
  }

  // ---------- API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      Object.assign(this, { status, code, field, handled: false });
    }
  }

  // Every call sends the bearer token; every error becomes an ApiError from the API's
  // {"error": {code, message, field}}. A 401 signs out at once (marked `handled`).
  async function api(path, { method = 'GET', body } = {}) {
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
      signOut(`Your session ended: the API did not accept the token (${err.message}). Paste a new token to continue.`, 'error');
    }
    throw err;
  }

  function describeError(err) {
    const hints = {
      0: '', 400: 'Check the search and filters.', 403: 'Your token does not allow this.',
      404: 'It may have been removed, or belong to another tenant.', 503: 'The service is busy; retry in a moment.',
    };
    const field = err.field ? ` (${FILTER_LABELS[err.field] || err.field})` : '';
    const hint = hints[err.status] ?? (err.status >= 500 ? 'Something failed on the server; retry in a moment.' : '');
    return `${err.message}${field}. ${hint}`.replace(/\.\. /, '. ').trim();
  }

  // ---------- sign-in ---------------------------------------------------------------------

  // Reads the JWT payload for display only (who, tenant, admin?). The API verifies the
  // signature; nothing here trusts these claims for access.
  function decodeClaims(token) {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    try {
      const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims === 'object' && typeof claims.sub === 'string' ? claims : null;
    } catch {
      return null;
    }
  }

  const isAdmin = () => state.claims && state.claims.role === 'admin';

  function showSignIn(message, kind = 'error') {
    ui.console.hidden = true;
    ui.who.hidden = true;
    ui.signin.hidden = false;
    ui.signinMessage.hidden = !message;
    ui.signinMessage.textContent = message || '';
    ui.signinMessage.className = `notice notice-${kind}`;
    ui.signinMessage.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    ui.token.value = '';
    ui.token.focus();
  }

  function signIn(raw) {
    const token = raw.trim().replace(/^Bearer\s+/i, '');
    const claims = decodeClaims(token);
    if (!claims) {
      showSignIn('That is not a bearer token (expected a JWT: three base64url parts separated by dots).');
      return;
    }
    if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
      showSignIn(`That token expired at ${new Date(claims.exp * 1000).toLocaleString()}. Get a new one.`);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.token = token;
    state.claims = claims;
    showConsole();
  }

  function signOut(message, kind = 'info') {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.claims = null;
    state.generation += 1;
    stopPolling();
    state.jobs.clear();
    ui.rows.replaceChildren();
    ui.queues.hidden = true;
    ui.qRows.replaceChildren();
    for (const dialog of [ui.confirm, ui.details, S.dialog]) if (dialog.open) dialog.close();
    S.view.hidden = true;
    S.tabs.hidden = true;
    S.rows.replaceChildren();
    schedules.items.clear();
    showSignIn(message, kind);
  }

  function showConsole() {
    ui.signin.hidden = true;
    ui.console.hidden = false;
    ui.who.hidden = false;
    ui.whoName.textContent = `${state.claims.sub} · ${state.claims.tenant || '?'}`;
    ui.whoName.title = `Signed in as ${state.claims.sub} in tenant ${state.claims.tenant || '?'}`;
    ui.whoRole.textContent = isAdmin() ? 'admin' : 'member';
    ui.whoRole.className = `badge badge-role ${isAdmin() ? 'role-admin' : ''}`;
    // Admins list across tenants; a member's list is their own tenant, so no tenant filter.
    ui.tenantField.hidden = !isAdmin();
    S.tabs.hidden = false;
    state.filters = filtersFromUrl();
    writeForm(state.filters);
    reload();
    showView();
  }

  // ---------- filters and the URL ---------------------------------------------------------

  function filtersFromUrl() {
    const params = new URLSearchParams(location.search);
    const filters = {};
    for (const name of FILTERS) {
      const value = (params.get(name) || '').trim();
      if (value) filters[name] = value;
    }
    if (!isAdmin()) delete filters.tenant;
    return filters;
  }

  function filtersFromForm() {
    const filters = {};
    for (const name of FILTERS) {
      const field = input(name);
      const value = field && !field.closest('[hidden]') ? field.value.trim() : '';
      if (value) filters[name] = value;
    }
    return filters;
  }

  function writeForm(filters) {
    for (const name of FILTERS) {
      const field = input(name);
      if (field) field.value = filters[name] || '';
    }
  }

  // The date inputs give local calendar days; the API reads a bare date as a UTC day. Send
  // the local day's bounds as RFC 3339 instants so the range matches the local times shown
  // in the table. The URL keeps the plain YYYY-MM-DD.
  function dayBound(day, end) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
    if (!m) return day; // not a date: let the API explain what it expects
    const date = end ? new Date(+m[1], m[2] - 1, +m[3], 23, 59, 59, 999) : new Date(+m[1], m[2] - 1, +m[3]);
    return Number.isNaN(date.getTime()) ? day : date.toISOString();
  }

  function apiQuery(filters, cursor) {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = filters[name];
      if (!value) continue;
      params.set(name, name.startsWith('created_') ? dayBound(value, name === 'created_to') : value);
    }
    params.set('limit', String(PAGE_SIZE));
    if (cursor) params.set('cursor', cursor);
    return params.toString();
  }

  function showFilterError(field, message) {
    for (const name of FILTERS) input(name)?.removeAttribute('aria-invalid');
    ui.filterError.hidden = !message;
    ui.filterError.textContent = message || '';
    if (field && input(field)) input(field).setAttribute('aria-invalid', 'true');
  }

  function applyFilters() {
    if (!state.token) return; // a late debounce after sign-out
    const filters = filtersFromForm();
    if (filters.created_from && filters.created_to && filters.created_from > filters.created_to) {
      showFilterError('created_from', '“Created from” is after “Created to”: swap the dates or clear one.');
      return;
    }
    const query = new URLSearchParams(filters).toString();
    if (query !== new URLSearchParams(state.filters).toString()) {
      // pushState: Back returns to the previous view; the URL can be shared as is.
      history.pushState(null, '', query ? `?${query}` : location.pathname);
    }
    state.filters = filters;
    reload();
  }

  // ---------- the list --------------------------------------------------------------------

  function reload() {
    state.generation += 1;
    state.cursor = null;
    state.error = null;
    state.jobs.clear();
    state.selected.clear();
    state.allMatching = false;
    renderBulk();
    ui.rows.replaceChildren();
    stopPolling();
    showFilterError(null, '');
    loadPage();
    loadMetrics();
  }

  // ---------- metrics strip ---------------------------------------------------------------

  const METRICS_MS = 60000;       // the strip's refresh while jobs are polled
  const SVG = 'http://www.w3.org/2000/svg';

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

  // The last 24 hours of GET /metrics for the tenant the list shows (a member's own; an
  // admin's filter, or every tenant), and the jobs running now.
  async function loadMetrics() {
    state.metricsAt = Date.now();
    const generation = state.generation;
    ui.metrics.setAttribute('aria-busy', 'true');
    const tenant = isAdmin() ? state.filters.tenant : null;
    const scope = tenant ? `?tenant=${encodeURIComponent(tenant)}` : '';
    try {
      const [series, running] = await Promise.all([
        api(`metrics${scope}`),
        api(`jobs?status=running&limit=100${tenant ? `&tenant=${encodeURIComponent(tenant)}` : ''}`),
      ]);
      if (generation !== state.generation) return;
      renderMetrics(series, running);
      if (isAdmin()) {
        const health = await api('queues');
        if (generation !== state.generation) return;
        renderQueues(health);
      }
    } catch (err) {
      if (err.handled || generation !== state.generation) return;
      ui.mChart.replaceChildren(el('p', { className: 'muted' }, `Metrics unavailable: ${describeError(err)}`));
    } finally {
      if (generation === state.generation) ui.metrics.setAttribute('aria-busy', 'false');
    }
  }

  // Admins: per type, the jobs waiting and running, their chunks left, the oldest waiting
  // job's age and the queues' depths; dead letters stand out when there are any.
  function renderQueues(health) {
    ui.queues.hidden = false;
    const age = (s) => (s === null || s === undefined ? '–' : s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`);
    const capped = (n, c) => `${n}${c ? '+' : ''}`;
    const cell = (label, text, className = '') => el('td', { className, dataset: { label } }, text);
    ui.qRows.replaceChildren(...(health.types || []).map((t) => el('tr', { dataset: { type: t.type } },
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
    ui.mScope.textContent = series.tenant ? `· ${series.tenant}` : (isAdmin() ? '· all tenants' : '');
    const runningCount = (running.items || []).length;
    ui.mRunning.textContent = `${runningCount}${running.next_cursor ? '+' : ''}`;
    ui.mItems.textContent = done.toLocaleString();
    ui.mFailure.textContent = done ? `${((total.items.failed * 100) / done).toFixed(1)} %` : '–';
    ui.mFailure.classList.toggle('m-dc-red', total.items.failed > 0);
    ui.mWait.textContent = formatMs(total.wait_ms.p95);
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
    ui.mChart.replaceChildren(svg('svg', { viewBox: `0 0 ${buckets.length * width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label }, axis, ...bars));
  }

  async function loadPage() {
    const generation = state.generation;
    state.loading = true;
    state.error = null;
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
      state.error = err;
      if (err.status === 400 && err.field) showFilterError(err.field, `${FILTER_LABELS[err.field] || err.field}: ${err.message}`);
    } finally {
      if (generation === state.generation) {
        state.loading = false;
        renderListState();
        schedulePoll();
      }
    }
  }

  const hasFilters = () => Object.keys(state.filters).length > 0;

  // Summary line, "Load more", and the loading / empty / error box under the table.
  function renderListState() {
    const count = state.jobs.size;
    ui.table.setAttribute('aria-busy', String(state.loading));
    ui.loadMore.hidden = !state.cursor || (state.loading && count === 0) || (state.error && count === 0);
    ui.loadMore.disabled = state.loading;
    ui.loadMore.textContent = state.loading ? 'Loading…' : 'Load more';
    const scope = isAdmin() ? (state.filters.tenant ? `tenant ${state.filters.tenant}` : 'all tenants') : `tenant ${state.claims?.tenant}`;
    ui.summary.textContent = state.loading && count === 0 ? `Loading jobs (${scope})…`
      : `${count} job${count === 1 ? '' : 's'} shown · ${scope}${hasFilters() ? ' · filtered' : ''}${state.cursor ? ' · more available' : ''}`;

    const box = ui.state;
    box.replaceChildren();
    box.className = 'state';
    if (state.error) {
      box.classList.add('state-error');
      box.append(
        el('p', { className: 'state-title' }, count ? 'Could not load more jobs.' : 'Could not load jobs.'),
        el('p', {}, describeError(state.error)),
        el('button', { type: 'button', className: 'btn', dataset: { action: 'retry' } }, 'Retry'));
    } else if (state.loading && count === 0) {
      box.append(el('p', { className: 'muted' }, 'Loading jobs…'));
    } else if (!state.loading && count === 0) {
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
    ui.rows.append(tr);
  }

  function updateJob(job) {
    const entry = state.jobs.get(job.id);
    if (!entry) return;
    const key = JSON.stringify(job);
    if (key === entry.key) return; // unchanged: leave the DOM (and focus) alone
    Object.assign(entry, { job, key });
    fillRow(entry.tr, job);
    if (state.detailsId === job.id) renderDetails(job);
  }

  function dropRow(id) {
    const entry = state.jobs.get(id);
    if (!entry) return;
    state.selected.delete(id);
    renderBulk();
    // Keep keyboard users in place: focus moves to the next (or previous) row.
    const neighbour = entry.tr.nextElementSibling || entry.tr.previousElementSibling;
    const hadFocus = entry.tr.contains(document.activeElement) || state.detailsId === id;
    entry.tr.remove();
    state.jobs.delete(id);
    if (state.detailsId === id && ui.details.open) ui.details.close();
    if (hadFocus) (neighbour?.querySelector('[data-action="open"]') || ui.refresh).focus();
    renderListState();
  }

  const cell = (label, ...content) => el('td', { dataset: { label } }, ...content);

  // Small buttons (in a row) name the job they act on, as a row has many such buttons; the
  // details drawer's buttons are named by their visible text (a name must contain the text a
  // user sees, so that speech control works: "click Remove from list"). The drawer itself is
  // labelled by the job's type.
  function actionButtons(job, small = true) {
    const size = small ? ' btn-small' : '';
    const what = job.type_label || job.type;
    const buttons = [];
    if (ACTIVE.has(job.status) && !job.cancel_requested_at) {
      buttons.push(el('button', {
        type: 'button', className: `btn${size}`, dataset: { action: 'cancel', id: job.id },
        attrs: small ? { 'aria-label': `Cancel ${what} job` } : undefined,
      }, small ? 'Cancel' : 'Cancel job'));
    }
    buttons.push(el('button', {
      type: 'button', className: `btn btn-remove${size}`, dataset: { action: 'remove', id: job.id },
      title: 'Remove from the list (does not cancel the job)',
      attrs: small ? { 'aria-label': `Remove ${what} job from the list` } : undefined,
    }, el('span', { attrs: { 'aria-hidden': 'true' } }, '❌'), small ? null : ' Remove from list'));
    return buttons;
  }

  function fillRow(tr, job) {
    // Rebuilding a row would drop focus from its buttons; remember which one had it.
    const focused = tr.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    tr.className = `row-${job.status}`;
    tr.replaceChildren(
      cell('Select', el('input', {
        type: 'checkbox', className: 'select', checked: state.allMatching || state.selected.has(job.id),
        dataset: { select: job.id }, attrs: { 'aria-label': `Select ${job.type_label || job.type} job ${job.id}` },
      })),
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

  // ---------- selection and bulk actions ----------------------------------------------------

  function renderBulk() {
    const n = state.selected.size;
    const shown = state.jobs.size;
    ui.bulkbar.hidden = n === 0 && !state.allMatching;
    ui.bulkCount.textContent = state.allMatching
      ? `All jobs matching these filters are selected (${shown}${state.cursor ? '+' : ''} shown).`
      : `${n} selected.`;
    ui.bulkMatching.hidden = state.allMatching || !state.cursor || n === 0 || n < shown;
    ui.selectAll.checked = state.allMatching || (n > 0 && n === shown);
    ui.selectAll.indeterminate = !state.allMatching && n > 0 && n < shown;
  }

  function select(id, on) {
    if (on) state.selected.add(id); else state.selected.delete(id);
    if (!on) state.allMatching = false;
    const box = state.jobs.get(id)?.tr.querySelector('input[data-select]');
    if (box) box.checked = on;
  }

  ui.rows.addEventListener('change', (event) => {
    const box = event.target.closest('input[data-select]');
    if (!box) return;
    select(box.dataset.select, box.checked);
    renderBulk();
  });
  ui.selectAll.addEventListener('change', () => {
    const on = ui.selectAll.checked;
    for (const id of state.jobs.keys()) select(id, on);
    renderBulk();
  });
  ui.bulkMatching.addEventListener('click', () => { state.allMatching = true; renderBulk(); });
  ui.bulkClear.addEventListener('click', () => {
    for (const id of [...state.selected]) select(id, false);
    state.allMatching = false;
    renderBulk();
  });

  // Hides or cancels the selection: the ticked rows by id, or every job matching the
  // filters (1,000 per request, following next_cursor).
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
        const ids = [...state.selected];
        for (let i = 0; i < ids.length; i += 1000) {
          const answer = await api('jobs/bulk', { method: 'POST', body: { action, ids: ids.slice(i, i + 1000) } });
          for (const r of answer.results) counts[r.outcome] += 1;
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
  ui.bulkHide.addEventListener('click', () => bulkAction('hide'));
  ui.bulkCancel.addEventListener('click', () => bulkAction('cancel'));

  // ---------- polling of queued / running rows --------------------------------------------

  const activeIds = () => [...state.jobs.values()].filter((e) => ACTIVE.has(e.job.status)).map((e) => e.job.id);

  function stopPolling() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  // One timer for all rows. Only queued/running jobs are fetched (GET jobs/<id>); finished
  // ones never change, so they are never re-fetched. A hidden tab polls rarely.
  function schedulePoll(delay) {
    stopPolling();
    if (state.polling || !state.token || activeIds().length === 0) return; // a poll in flight reschedules itself
    const wait = delay ?? (document.hidden ? Math.max(POLL_HIDDEN_MS, state.pollDelay) : state.pollDelay);
    state.pollTimer = setTimeout(pollActive, wait);
  }

  async function pollActive() {
    state.pollTimer = null;
    state.polling = true;
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
      state.pollDelay = failures ? Math.min(state.pollDelay * 2, POLL_MAX_MS) : POLL_MS;
      state.polling = false;
      if (!failures && Date.now() - state.metricsAt > METRICS_MS) loadMetrics();
      schedulePoll();
    }
  }

  document.addEventListener('visibilitychange', () => schedulePoll(document.hidden ? undefined : 0));

  // ---------- details ---------------------------------------------------------------------

  const humanize = (key) => key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

  function dl(pairs) {
    return el('dl', { className: 'kv' }, pairs.filter(Boolean).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }

  function paramValue(value) {
    if (value === null) return el('span', { className: 'muted' }, 'null');
    if (typeof value === 'object') return el('code', {}, JSON.stringify(value));
    return String(value);
  }

  function renderDetails(job) {
    const p = job.progress || {};
    ui.detailsTitle.textContent = job.type_label || job.type;
    const params = Object.entries(job.params_summary || {});
    const errors = Array.isArray(job.errors) ? job.errors : [];
    ui.detailsBody.replaceChildren(
      el('p', { className: 'details-id' }, el('span', { className: 'muted' }, 'Job '), el('code', {}, job.id)),
      el('div', { className: 'details-actions' }, actionButtons(job, false)),
      el('section', {}, el('h3', {}, 'Overview'), dl([
        ['Status', statusBadge(job)], ['Tenant', job.tenant], ['User', el('span', { className: 'user' }, job.user)],
      ])),
      el('section', {}, el('h3', {}, 'Progress'), progressBar(job, 'Job progress'), dl([
        ['Total items', String(p.total)], ['Succeeded', String(p.succeeded)], ['Failed', String(p.failed)],
        p.cancelled ? ['Cancelled', String(p.cancelled)] : null, ['Done', `${p.percent} %`],
      ])),
      relatedJobs(job),
      el('section', {}, el('h3', {}, 'Timeline'), timeline(job)),
      el('section', {}, el('h3', {}, 'Parameters'),
        params.length ? dl(params.map(([k, v]) => [humanize(k), paramValue(v)])) : el('p', { className: 'muted' }, 'No parameters.')),
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
    if (state.events && state.events.key === key) {
      fillTimeline(list, state.events.items);
    } else {
      api(`jobs/${encodeURIComponent(job.id)}/events?limit=100`).then((page) => {
        state.events = { key, items: page.items || [] };
        fillTimeline(list, state.events.items);
      }).catch((err) => {
        list.setAttribute('aria-busy', 'false');
        list.replaceChildren(el('li', { className: 'muted' }, `Could not load the events: ${describeError(err)}`));
      });
    }
    return list;
  }

  function fillTimeline(list, events) {
    list.setAttribute('aria-busy', 'false');
    if (events.length === 0) {
      list.replaceChildren(el('li', { className: 'muted' }, 'No events recorded.'));
      return;
    }
    list.replaceChildren(...events.map((e) => {
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
      p.failed ? el('button', { type: 'button', className: 'btn', dataset: { action: 'download-failed', id: job.id } }, 'Download failed items (CSV)') : null,
      n ? el('button', { type: 'button', className: 'btn', dataset: { action: 'retry-items', id: job.id } }, `Retry failed items (${n})`) : null);
  }

  // The job this one retries, and the jobs that retry it.
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

  async function showJob(id) {
    try {
      const job = await api(`jobs/${encodeURIComponent(id)}`);
      state.detailsId = job.id;
      renderDetails(job);
      if (!ui.details.open) ui.details.showModal();
    } catch (err) {
      if (!err.handled) toast(`Could not open the job: ${describeError(err)}`, 'error');
    }
  }

  async function downloadFailed(id) {
    try {
      const response = await fetch(`jobs/${encodeURIComponent(id)}/items?outcome=failed&format=csv`, {
        cache: 'no-store', headers: { Accept: 'text/csv', Authorization: `Bearer ${state.token}` },
      });
      if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, `The API answered ${response.status}.`, null);
      const url = URL.createObjectURL(await response.blob());
      const a = el('a', { href: url, download: `job-${id}-failed.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      toast(`Could not download the failed items: ${describeError(err)}`, 'error');
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

  function openDetails(id, opener) {
    const entry = state.jobs.get(id);
    if (!entry) return;
    state.detailsId = id;
    state.detailsReturn = opener || entry.tr.querySelector('[data-action="open"]');
    renderDetails(entry.job);
    if (!ui.details.open) ui.details.showModal();
    ui.detailsClose.focus();
  }

  // Escape closes a modal <dialog> natively; focus goes back to the row that opened it.
  ui.details.addEventListener('close', () => {
    state.detailsId = null;
    const back = state.detailsReturn;
    state.detailsReturn = null;
    if (back && back.isConnected) back.focus();
  });
  ui.detailsClose.addEventListener('click', () => ui.details.close());
  // A click on the backdrop (outside the drawer's box) closes it too.
  ui.details.addEventListener('click', (event) => { if (event.target === ui.details) ui.details.close(); });

  // ---------- confirmations and row actions ---------------------------------------------

  function confirmDialog({ title, text, yes, no }) {
    ui.confirmTitle.textContent = title;
    ui.confirmText.textContent = text;
    ui.confirmYes.textContent = yes;
    ui.confirmNo.textContent = no;
    ui.confirm.returnValue = '';
    ui.confirm.showModal();
    ui.confirmNo.focus(); // the safe choice is the default
    return new Promise((resolve) => {
      ui.confirm.addEventListener('close', () => resolve(ui.confirm.returnValue === 'yes'), { once: true });
    });
  }
  ui.confirmYes.addEventListener('click', () => ui.confirm.close('yes'));
  ui.confirmNo.addEventListener('click', () => ui.confirm.close('no'));

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

  // One listener for all rows and the details drawer (rows are rebuilt as jobs change).
  function onAction(event) {
    const button = event.target.closest('button[data-action]');
    if (button) {
      const { action, id } = button.dataset;
      if (action === 'open') openDetails(id, button);
      else if (action === 'cancel') cancelJob(id);
      else if (action === 'remove') removeJob(id);
      else if (action === 'download-failed') downloadFailed(id);
      else if (action === 'retry-items') retryItems(id);
      else if (action === 'show-job') showJob(id);
      else if (action === 'show-schedule') showSchedule(id);
      else if (action === 'retry') (state.jobs.size ? loadPage() : reload());
      else if (action === 'clear') ui.clear.click();
      return;
    }
    // A click anywhere else on a row opens its details (unless the user is selecting text,
    // or ticking the row).
    if (event.target.closest('input')) return;
    const tr = event.target.closest('tr[data-id]');
    if (tr && ui.rows.contains(tr) && !String(window.getSelection())) openDetails(tr.dataset.id);
  }
  ui.rows.addEventListener('click', onAction);
  ui.state.addEventListener('click', onAction);
  ui.detailsBody.addEventListener('click', onAction);

  // ---------- schedules (#schedules) ------------------------------------------------------
  // Recurring jobs. The server computes every run time (one cron/DST implementation); the
  // page only shows them in the browser's time zone.

  const S = {
    view: $('schedules'), rows: $('s-rows'), state: $('s-state'), summary: $('s-summary'), more: $('s-more'),
    create: $('s-new'), tenantForm: $('s-tenant-form'), tenantFilter: $('s-tenant-filter'),
    dialog: $('s-dialog'), title: $('s-dialog-title'), form: $('s-form'), error: $('s-error'), close: $('s-close'),
    cancel: $('s-cancel'), name: $('s-name'), type: $('s-type'), tenantRow: $('s-tenant-row'), tenant: $('s-tenant'),
    params: $('s-params'), expr: $('s-expr'), exprLabel: $('s-expr-label'), exprHelp: $('s-expr-help'), tz: $('s-tz'),
    previewTitle: $('s-preview-title'), preview: $('s-preview'), enabled: $('s-enabled'), runs: $('s-runs'), runList: $('s-run-list'),
    tabs: $('tabs'), tabJobs: $('tab-jobs'), tabSchedules: $('tab-schedules'), crumb: $('crumb'), title1: $('view-title'),
  };
  const schedules = { items: new Map(), cursor: null, editing: null, previewTimer: null, previewSeq: 0, generation: 0 };
  const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const OUTCOME_TEXT = { started: 'started', skipped: 'skipped (previous job still running)', refused: 'refused' };

  // Each type's params as form fields: `path` is the params key (and the API's error field
  // `params.<path>`); `list` fields are one value per line.
  const lines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);
  const PARAM_FORMS = {
    session_termination: {
      fields: [
        { id: 'sel', label: 'Which sessions', kind: 'select', options: [['idle', 'Idle for longer than…'], ['users', 'Of these users'], ['all', 'All users']] },
        { id: 'idle', label: 'Idle minutes', kind: 'number', path: 'idle_for_seconds', when: ['sel', 'idle'], value: '30' },
        { id: 'users', label: 'User ids (one per line)', kind: 'textarea', path: 'user_ids', when: ['sel', 'users'] },
      ],
      read: (v) => (v.sel === 'users' ? { user_ids: lines(v.users) } : v.sel === 'all' ? { all_users: true } : { idle_for_seconds: Math.round(Number(v.idle) * 60) }),
      write: (p) => (p.user_ids ? { sel: 'users', users: p.user_ids.join('\n') } : p.all_users ? { sel: 'all' } : { sel: 'idle', idle: String((p.idle_for_seconds || 1800) / 60) }),
    },
    bulk_message_sending: {
      fields: [
        { id: 'from', label: 'From (a verified SES identity)', kind: 'email', path: 'from' },
        { id: 'subject', label: 'Subject', kind: 'text', path: 'subject' },
        { id: 'body', label: 'Body', kind: 'textarea', path: 'body' },
        { id: 'recipients', label: 'Recipients (one per line)', kind: 'textarea', path: 'recipients' },
      ],
      read: (v) => ({ channel: 'email', from: v.from.trim(), subject: v.subject, body: v.body, recipients: lines(v.recipients) }),
      write: (p) => ({ from: p.from || '', subject: p.subject || '', body: p.body || '', recipients: (p.recipients || []).join('\n') }),
    },
    ai_text_embedding: {
      fields: [{ id: 'documents', label: 'Documents (one per line: id: text)', kind: 'textarea', path: 'documents' }],
      read: (v) => ({ documents: lines(v.documents).map((l) => { const at = l.indexOf(':'); return at < 0 ? { id: l, text: '' } : { id: l.slice(0, at).trim(), text: l.slice(at + 1).trim() }; }) }),
      write: (p) => ({ documents: (p.documents || []).map((d) => `${d.id}: ${d.text}`).join('\n') }),
    },
    profile_field_update: {
      fields: [
        { id: 'field', label: 'Field', kind: 'text', path: 'field' },
        { id: 'value', label: 'Value', kind: 'text', path: 'value' },
        { id: 'users', label: 'User ids (one per line)', kind: 'textarea', path: 'user_ids' },
      ],
      read: (v) => ({ field: v.field.trim(), value: v.value, user_ids: lines(v.users) }),
      write: (p) => ({ field: p.field || '', value: typeof p.value === 'string' ? p.value : JSON.stringify(p.value ?? ''), users: (p.user_ids || []).join('\n') }),
    },
  };

  function renderParamFields(type, values = {}) {
    const form = PARAM_FORMS[type];
    const legend = S.params.querySelector('legend');
    S.params.replaceChildren(legend);
    if (!form) return;
    for (const f of form.fields) {
      const id = `sp-${f.id}`;
      const attrs = { id, 'data-param': f.id };
      if (f.path) attrs['data-field'] = `params.${f.path}`;
      let control;
      if (f.kind === 'select') {
        control = el('select', { attrs }, f.options.map(([value, label]) => el('option', { value }, label)));
      } else if (f.kind === 'textarea') {
        control = el('textarea', { attrs: { ...attrs, rows: '3', spellcheck: 'false' } });
      } else {
        control = el('input', { attrs: { ...attrs, type: f.kind, autocomplete: 'off', ...(f.kind === 'number' ? { min: '1', step: '1' } : {}) } });
      }
      control.value = values[f.id] ?? f.value ?? (f.kind === 'select' ? f.options[0][0] : '');
      const row = el('div', { className: 'field', dataset: f.when ? { when: f.when.join('=') } : {} }, el('label', { htmlFor: id }, f.label), control);
      S.params.append(row);
    }
    syncParamVisibility();
  }

  function syncParamVisibility() {
    for (const row of S.params.querySelectorAll('[data-when]')) {
      const [id, value] = row.dataset.when.split('=');
      const control = S.params.querySelector(`[data-param="${id}"]`);
      row.hidden = !control || control.value !== value;
    }
  }

  function readParams(type) {
    const values = {};
    for (const control of S.params.querySelectorAll('[data-param]')) values[control.dataset.param] = control.value;
    return PARAM_FORMS[type] ? PARAM_FORMS[type].read(values) : {};
  }

  const timingKind = () => (S.form.querySelector('input[name="s-kind"]:checked') || {}).value || 'cron';

  function syncTimingKind() {
    const cron = timingKind() === 'cron';
    S.exprLabel.textContent = cron ? 'Cron expression' : 'Rate';
    S.expr.dataset.field = cron ? 'cron' : 'rate';
    S.expr.placeholder = cron ? '0 * * * *' : 'rate(1 hour)';
    S.exprHelp.textContent = cron
      ? 'minute hour day-of-month month day-of-week, e.g. 0 2 * * * (daily at 02:00). At most every 5 minutes.'
      : 'rate(<n> minutes|hours|days), counted from the schedule\'s creation; at least 5 minutes.';
  }

  function whenText(s) {
    return s.cron ? `${s.cron} (${s.timezone})` : s.rate;
  }

  function localRun(iso) {
    return new Date(iso).toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  // Next runs from the server, shown in the browser's zone; a stale answer is dropped.
  function schedulePreview() {
    clearTimeout(schedules.previewTimer);
    schedules.previewTimer = setTimeout(async () => {
      const seq = ++schedules.previewSeq;
      const expr = S.expr.value.trim();
      if (!expr) { S.previewTitle.textContent = ''; S.preview.replaceChildren(); return; }
      const query = new URLSearchParams({ [timingKind()]: expr, timezone: S.tz.value.trim() || 'UTC' });
      try {
        const answer = await api(`schedules/preview?${query}`);
        if (seq !== schedules.previewSeq) return;
        S.previewTitle.textContent = `Next runs, in your time zone (${BROWSER_ZONE}):`;
        S.preview.replaceChildren(...answer.next_runs.map((iso) => el('li', {}, el('time', { dateTime: iso }, localRun(iso)))));
      } catch (err) {
        if (seq !== schedules.previewSeq || err.handled) return;
        S.previewTitle.textContent = `No preview: ${err.message}`;
        S.preview.replaceChildren();
      }
    }, 250);
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
      attrs: { 'aria-label': `Enabled: ${s.name}` },
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
        el('button', { type: 'button', className: 'btn btn-small', dataset: { action: 'run', id: s.id } }, 'Run now'),
        el('button', { type: 'button', className: 'btn btn-small btn-ghost', dataset: { action: 'delete', id: s.id }, attrs: { 'aria-label': `Delete ${s.name}` } }, 'Delete')),
    );
  }

  function renderSchedules() {
    S.rows.replaceChildren(...[...schedules.items.values()].map(scheduleRow));
    const n = schedules.items.size;
    S.state.hidden = n > 0;
    if (n === 0) S.state.replaceChildren(el('p', {}, 'No schedules yet.'), el('p', { className: 'muted' }, 'A schedule starts a job of its type at each due time, e.g. every hour close the sessions idle for more than 30 minutes.'));
    S.summary.textContent = `${n} schedule${n === 1 ? '' : 's'} · tenant ${schedulesTenant()}${schedules.cursor ? ' · more available' : ''}`;
    S.more.hidden = !schedules.cursor;
  }

  const schedulesTenant = () => (isAdmin() && S.tenantFilter.value.trim()) || state.claims.tenant;

  async function loadSchedules(more = false) {
    const generation = more ? schedules.generation : ++schedules.generation;
    if (!more) { schedules.items.clear(); schedules.cursor = null; }
    const query = new URLSearchParams({ limit: '50', tenant: schedulesTenant() });
    if (more && schedules.cursor) query.set('cursor', schedules.cursor);
    S.view.setAttribute('aria-busy', 'true');
    try {
      const page = await api(`schedules?${query}`);
      if (generation !== schedules.generation) return;
      for (const s of page.items) schedules.items.set(s.id, s);
      schedules.cursor = page.next_cursor;
      renderSchedules();
    } catch (err) {
      if (err.handled || generation !== schedules.generation) return;
      S.state.hidden = false;
      S.state.replaceChildren(el('p', { className: 'notice notice-error' }, `Could not load the schedules: ${describeError(err)}`));
    } finally {
      if (generation === schedules.generation) S.view.removeAttribute('aria-busy');
    }
  }

  function showFieldError(err) {
    for (const c of S.form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    S.error.hidden = false;
    S.error.textContent = err.field ? `${err.message} (${err.field})` : describeError(err);
    const control = err.field && S.form.querySelector(`[data-field="${CSS.escape(err.field)}"]`);
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      control.focus();
    }
  }

  function openSchedule(s = null) {
    schedules.editing = s;
    S.title.textContent = s ? `Schedule: ${s.name}` : 'New schedule';
    S.error.hidden = true;
    for (const c of S.form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    if (!S.type.options.length) {
      for (const o of input('type').options) if (o.value) S.type.append(el('option', { value: o.value }, o.textContent));
    }
    S.name.value = s ? s.name : '';
    S.type.value = s ? s.type : 'session_termination';
    S.type.disabled = Boolean(s);
    S.tenantRow.hidden = !isAdmin() || Boolean(s);
    S.tenant.value = s ? s.tenant : '';
    renderParamFields(S.type.value, s && PARAM_FORMS[s.type] ? PARAM_FORMS[s.type].write(s.params || {}) : {});
    const kind = s && s.rate ? 'rate' : 'cron';
    S.form.querySelector(`input[name="s-kind"][value="${kind}"]`).checked = true;
    syncTimingKind();
    S.expr.value = s ? (s.cron || s.rate) : '0 * * * *';
    S.tz.value = s ? s.timezone : BROWSER_ZONE;
    S.enabled.checked = s ? s.enabled : true;
    S.runs.hidden = !s || !(s.runs || []).length;
    S.runList.replaceChildren(...(s ? s.runs || [] : []).map((run) => el('li', {},
      timeEl(run.at), ' ', run.trigger === 'manual' ? 'run now' : 'due', ': ', OUTCOME_TEXT[run.outcome] || run.outcome,
      run.job_id ? [' ', el('button', { type: 'button', className: 'link', dataset: { action: 'show-job', id: run.job_id } }, el('code', {}, run.job_id))] : '',
      run.error ? [' — ', run.error.message] : '')));
    schedulePreview();
    if (!S.dialog.open) S.dialog.showModal();
    S.name.focus();
  }

  async function saveSchedule() {
    const s = schedules.editing;
    const type = S.type.value;
    const timing = timingKind() === 'cron' ? { cron: S.expr.value.trim() } : { rate: S.expr.value.trim() };
    const body = { name: S.name.value, params: readParams(type), ...timing, timezone: S.tz.value.trim() || 'UTC', enabled: S.enabled.checked };
    if (!s) {
      body.type = type;
      if (isAdmin() && S.tenant.value.trim()) body.tenant = S.tenant.value.trim();
    }
    S.form.setAttribute('aria-busy', 'true');
    try {
      const saved = s
        ? await api(`schedules/${encodeURIComponent(s.id)}`, { method: 'PATCH', body })
        : await api('schedules', { method: 'POST', body });
      S.dialog.close();
      toast(saved.next_run_at ? `Saved. Next run ${localRun(saved.next_run_at)}.` : 'Saved. It is disabled.');
      if (saved.tenant === schedulesTenant()) { schedules.items.set(saved.id, saved); renderSchedules(); }
    } catch (err) {
      if (!err.handled) showFieldError(err);
    } finally {
      S.form.removeAttribute('aria-busy');
    }
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

  async function showSchedule(id) {
    if (ui.details.open) ui.details.close();
    if (location.hash !== '#schedules') location.hash = '#schedules';
    const s = await refreshSchedule(id);
    if (s) openSchedule(s); else toast('That schedule no longer exists.', 'error');
  }

  // Jobs or Schedules, from the URL's hash (so each view can be linked and reloaded).
  function showView() {
    const onSchedules = location.hash === '#schedules';
    ui.console.hidden = onSchedules;
    S.view.hidden = !onSchedules;
    S.crumb.textContent = onSchedules ? 'Schedules' : 'Jobs';
    S.title1.textContent = onSchedules ? 'Schedules' : 'Jobs';
    document.title = `System → ${onSchedules ? 'Schedules' : 'Jobs'}`;
    for (const [tab, current] of [[S.tabJobs, !onSchedules], [S.tabSchedules, onSchedules]]) {
      if (current) tab.setAttribute('aria-current', 'page'); else tab.removeAttribute('aria-current');
    }
    S.tenantForm.hidden = !isAdmin();
    if (onSchedules) loadSchedules();
  }

  window.addEventListener('hashchange', () => { if (state.token) showView(); });
  S.create.addEventListener('click', () => openSchedule());
  S.more.addEventListener('click', () => loadSchedules(true));
  S.tenantForm.addEventListener('submit', (event) => { event.preventDefault(); loadSchedules(); });
  S.form.addEventListener('submit', (event) => { event.preventDefault(); saveSchedule(); });
  S.form.addEventListener('change', (event) => {
    if (event.target === S.type) renderParamFields(S.type.value);
    else if (event.target.name === 's-kind') { syncTimingKind(); S.expr.value = timingKind() === 'cron' ? '0 * * * *' : 'rate(1 hour)'; schedulePreview(); }
    else if (event.target.dataset.param) syncParamVisibility();
  });
  for (const c of [S.expr, S.tz]) c.addEventListener('input', schedulePreview);
  S.close.addEventListener('click', () => S.dialog.close());
  S.cancel.addEventListener('click', () => S.dialog.close());
  function onScheduleAction(event) {
    const target = event.target.closest('[data-action]');
    if (!target) return;
    const { action, id } = target.dataset;
    if (action === 'edit') openSchedule(schedules.items.get(id));
    else if (action === 'run') runSchedule(id);
    else if (action === 'delete') deleteSchedule(id);
    else if (action === 'toggle') toggleSchedule(id, target.checked);
    else if (action === 'show-job') { if (S.dialog.open) S.dialog.close(); showJob(id); }
  }
  S.rows.addEventListener('click', (event) => { if (event.target.dataset.action !== 'toggle') onScheduleAction(event); });
  S.rows.addEventListener('change', onScheduleAction);
  S.runList.addEventListener('click', onScheduleAction);

  // ---------- wiring ----------------------------------------------------------------------

  ui.signinForm.addEventListener('submit', (event) => { event.preventDefault(); signIn(ui.token.value); });
  ui.signOut.addEventListener('click', () => signOut('You signed out. Paste a token to sign in again.', 'info'));

  ui.filters.addEventListener('submit', (event) => { event.preventDefault(); applyFilters(); });
  // Selects and dates apply at once; typing applies after a short pause.
  ui.filters.addEventListener('change', (event) => {
    const t = event.target;
    if (t.tagName === 'SELECT' || t.type === 'date' || t.name === 'tenant') applyFilters();
  });
  let typingTimer = null;
  ui.filters.addEventListener('input', (event) => {
    if (event.target.type !== 'search') return;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(applyFilters, 350);
  });
  ui.clear.addEventListener('click', () => { writeForm({}); applyFilters(); });
  ui.refresh.addEventListener('click', () => reload());
  ui.loadMore.addEventListener('click', () => loadPage());

  // Back/forward between filtered views.
  window.addEventListener('popstate', () => {
    if (!state.token) return;
    state.filters = filtersFromUrl();
    writeForm(state.filters);
    reload();
  });

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved); else showSignIn('');
})();
