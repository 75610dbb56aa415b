// The dialog that creates or edits a schedule: name, job type and its params (forms.js),
// tenant (admins, on create), timing (cron or rate, time zone) with a preview of the next
// runs from the server, Enabled, and the schedule's recent runs.

import { $, el, timeEl } from './dom.js';
import { isAdmin, may } from './state.js';
import { api, describeError } from './api.js';
import { toast } from './feedback.js';
import { renderParamFields, syncParamVisibility, readParams, formValues } from './forms.js';
import { showJob } from './details.js';
import { localRun, storeSchedule } from './schedules.js';

const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const OUTCOME_TEXT = { started: 'started', skipped: 'skipped (previous job still running)', refused: 'refused' };

const dialog = $('s-dialog');
const title = $('s-dialog-title');
const form = $('s-form');
const error = $('s-error');
const name = $('s-name');
const type = $('s-type');
const tenantRow = $('s-tenant-row');
const tenant = $('s-tenant');
const expr = $('s-expr');
const exprLabel = $('s-expr-label');
const exprHelp = $('s-expr-help');
const tz = $('s-tz');
const previewTitle = $('s-preview-title');
const preview = $('s-preview');
const enabled = $('s-enabled');
const runs = $('s-runs');
const runList = $('s-run-list');
const params = $('s-params');

let editing = null;       // the schedule edited; null for a new one
let previewTimer = null;
let previewSeq = 0;       // a preview answer older than the latest request is dropped

const timingKind = () => (form.querySelector('input[name="s-kind"]:checked') || {}).value || 'cron';

function syncTimingKind() {
  const cron = timingKind() === 'cron';
  exprLabel.textContent = cron ? 'Cron expression' : 'Rate';
  expr.dataset.field = cron ? 'cron' : 'rate';
  expr.placeholder = cron ? '0 * * * *' : 'rate(1 hour)';
  exprHelp.textContent = cron
    ? 'minute hour day-of-month month day-of-week, e.g. 0 2 * * * (daily at 02:00). At most every 5 minutes.'
    : 'rate(<n> minutes|hours|days), counted from the schedule\'s creation; at least 5 minutes.';
}

// Next runs from the server, shown in the browser's zone; a stale answer is dropped.
function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(async () => {
    const seq = ++previewSeq;
    const text = expr.value.trim();
    if (!text) { previewTitle.textContent = ''; preview.replaceChildren(); return; }
    const query = new URLSearchParams({ [timingKind()]: text, timezone: tz.value.trim() || 'UTC' });
    try {
      const answer = await api(`schedules/preview?${query}`);
      if (seq !== previewSeq) return;
      previewTitle.textContent = `Next runs, in your time zone (${BROWSER_ZONE}):`;
      preview.replaceChildren(...answer.next_runs.map((iso) => el('li', {}, el('time', { dateTime: iso }, localRun(iso)))));
    } catch (err) {
      if (seq !== previewSeq || err.handled) return;
      previewTitle.textContent = `No preview: ${err.message}`;
      preview.replaceChildren();
    }
  }, 250);
}

// The API's refusal, with the field it names marked invalid and focused.
function showFieldError(err) {
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  error.hidden = false;
  error.textContent = err.field ? `${err.message} (${err.field})` : describeError(err);
  const control = err.field && form.querySelector(`[data-field="${CSS.escape(err.field)}"]`);
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
}

// Opens the dialog on schedule `s`, or empty for a new one.
export function openSchedule(s = null) {
  editing = s;
  title.textContent = s ? `Schedule: ${s.name}` : 'New schedule';
  error.hidden = true;
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  if (!type.options.length) {
    // The job types, as the list's type filter names them (served from the registry).
    for (const o of $('f-type').options) if (o.value) type.append(el('option', { value: o.value }, o.textContent));
  }
  name.value = s ? s.name : '';
  type.value = s ? s.type : 'session_termination';
  type.disabled = Boolean(s);
  tenantRow.hidden = !isAdmin() || Boolean(s);
  // A role that may not edit sees the schedule read-only.
  $('s-save').hidden = !may(s ? 'updateSchedule' : 'createSchedule');
  tenant.value = s ? s.tenant : '';
  renderParamFields(params, type.value, s ? formValues(s.type, s.params || {}) : {});
  const kind = s && s.rate ? 'rate' : 'cron';
  form.querySelector(`input[name="s-kind"][value="${kind}"]`).checked = true;
  syncTimingKind();
  expr.value = s ? (s.cron || s.rate) : '0 * * * *';
  tz.value = s ? s.timezone : BROWSER_ZONE;
  enabled.checked = s ? s.enabled : true;
  runs.hidden = !s || !(s.runs || []).length;
  runList.replaceChildren(...(s ? s.runs || [] : []).map((run) => el('li', {},
    timeEl(run.at), ' ', run.trigger === 'manual' ? 'run now' : 'due', ': ', OUTCOME_TEXT[run.outcome] || run.outcome,
    run.job_id ? [' ', el('button', { type: 'button', className: 'link', dataset: { action: 'show-job', id: run.job_id } }, el('code', {}, run.job_id))] : '',
    run.error ? [' — ', run.error.message] : '')));
  schedulePreview();
  if (!dialog.open) dialog.showModal();
  name.focus();
}

// POST schedules for a new one, PATCH schedules/<id> for an edit.
async function saveSchedule() {
  const s = editing;
  const jobType = type.value;
  const timing = timingKind() === 'cron' ? { cron: expr.value.trim() } : { rate: expr.value.trim() };
  const body = { name: name.value, params: readParams(params, jobType), ...timing, timezone: tz.value.trim() || 'UTC', enabled: enabled.checked };
  if (!s) {
    body.type = jobType;
    if (isAdmin() && tenant.value.trim()) body.tenant = tenant.value.trim();
  }
  form.setAttribute('aria-busy', 'true');
  try {
    const saved = s
      ? await api(`schedules/${encodeURIComponent(s.id)}`, { method: 'PATCH', body })
      : await api('schedules', { method: 'POST', body });
    dialog.close();
    toast(saved.next_run_at ? `Saved. Next run ${localRun(saved.next_run_at)}.` : 'Saved. It is disabled.');
    storeSchedule(saved);
  } catch (err) {
    if (!err.handled) showFieldError(err);
  } finally {
    form.removeAttribute('aria-busy');
  }
}

form.addEventListener('submit', (event) => { event.preventDefault(); saveSchedule(); });
form.addEventListener('change', (event) => {
  if (event.target === type) renderParamFields(params, type.value);
  else if (event.target.name === 's-kind') { syncTimingKind(); expr.value = timingKind() === 'cron' ? '0 * * * *' : 'rate(1 hour)'; schedulePreview(); }
  else if (event.target.dataset.param) syncParamVisibility(params);
});
for (const c of [expr, tz]) c.addEventListener('input', schedulePreview);
$('s-close').addEventListener('click', () => dialog.close());
$('s-cancel').addEventListener('click', () => dialog.close());
// A run's job link: the job's details replace the dialog.
runList.addEventListener('click', (event) => {
  const target = event.target.closest('[data-action="show-job"]');
  if (!target) return;
  if (dialog.open) dialog.close();
  showJob(target.dataset.id);
});
