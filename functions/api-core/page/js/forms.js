// The parameters part of the schedule and new-job forms, one form per job type: which
// fields it shows, how their values become the type's params (`read`) and how a schedule's
// params fill them again (`write`); for a job from a file, which fields stay (`file`: the
// rest is the item list the file gives) and how they become params (`readFile`).
//
// PARAM_FORMS has exactly one entry per job type of the registry
// (functions/jobs-core/src/registry.rs), each written as `  <key>: {` on a line of its
// own; a unit test in api/http/page.rs checks both ways, so a new type cannot be left with
// an empty form that sends `{}`.

import { el } from './dom.js';

// `lines`: one value per line of a textarea, blank lines left out.
const lines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);

// Each field: `id` (the form's own name), `label`, `kind` (an input type, `select` with
// `options`, or `textarea`), `path` (the params key, and the API's error field
// `params.<path>`), `when: [id, value]` (shown only while that select has that value) and
// `value` (the default).
const PARAM_FORMS = {
  session_termination: {
    fields: [
      { id: 'sel', label: 'Which sessions', kind: 'select', options: [['idle', 'Idle for longer than…'], ['users', 'Of these users'], ['all', 'All users']] },
      { id: 'idle', label: 'Idle minutes', kind: 'number', path: 'idle_for_seconds', when: ['sel', 'idle'], value: '30' },
      { id: 'users', label: 'User ids (one per line)', kind: 'textarea', path: 'user_ids', when: ['sel', 'users'] },
    ],
    read: (v) => (v.sel === 'users' ? { user_ids: lines(v.users) } : v.sel === 'all' ? { all_users: true } : { idle_for_seconds: Math.round(Number(v.idle) * 60) }),
    write: (p) => (p.user_ids ? { sel: 'users', users: p.user_ids.join('\n') } : p.all_users ? { sel: 'all' } : { sel: 'idle', idle: String((p.idle_for_seconds || 1800) / 60) }),
    file: [],
    readFile: () => ({}),
    columns: 'user_id or session_id',
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
    file: ['from', 'subject', 'body'],
    readFile: (v) => ({ channel: 'email', from: v.from.trim(), subject: v.subject, body: v.body }),
    columns: 'email, and any others: {{column}} in the subject and body is the recipient\'s value',
  },
  ai_text_embedding: {
    fields: [{ id: 'documents', label: 'Documents (one per line: id: text)', kind: 'textarea', path: 'documents' }],
    read: (v) => ({ documents: lines(v.documents).map((l) => { const at = l.indexOf(':'); return at < 0 ? { id: l, text: '' } : { id: l.slice(0, at).trim(), text: l.slice(at + 1).trim() }; }) }),
    write: (p) => ({ documents: (p.documents || []).map((d) => `${d.id}: ${d.text}`).join('\n') }),
    file: [],
    readFile: () => ({}),
    columns: 'id, text',
  },
  profile_field_update: {
    fields: [
      { id: 'field', label: 'Field', kind: 'text', path: 'field' },
      { id: 'value', label: 'Value', kind: 'text', path: 'value' },
      { id: 'users', label: 'User ids (one per line)', kind: 'textarea', path: 'user_ids' },
    ],
    read: (v) => ({ field: v.field.trim(), value: v.value, user_ids: lines(v.users) }),
    write: (p) => ({ field: p.field || '', value: typeof p.value === 'string' ? p.value : JSON.stringify(p.value ?? ''), users: (p.user_ids || []).join('\n') }),
    file: ['field', 'value'],
    readFile: (v) => ({ field: v.field.trim(), value: v.value }),
    columns: 'user_id, and value (optional: a user\'s own value)',
  },
};

// Replaces the fields of `fieldset` with those of `type` (with `fromFile`, those a job from
// a file keeps), filled from `values` (by field id).
export function renderParamFields(fieldset, type, values = {}, { fromFile = false } = {}) {
  const form = PARAM_FORMS[type];
  const legend = fieldset.querySelector('legend');
  fieldset.replaceChildren(legend);
  if (!form) return;
  for (const f of form.fields.filter((field) => !fromFile || form.file.includes(field.id))) {
    const id = `${fieldset.id}-${f.id}`;
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
    fieldset.append(row);
  }
  syncParamVisibility(fieldset);
}

// Shows each `when` field of `fieldset` only while its select has the value it waits for.
export function syncParamVisibility(fieldset) {
  for (const row of fieldset.querySelectorAll('[data-when]')) {
    const [id, value] = row.dataset.when.split('=');
    const control = fieldset.querySelector(`[data-param="${id}"]`);
    row.hidden = !control || control.value !== value;
  }
}

// The params of `type` from the fields of `fieldset` (with `fromFile`, of a job from a file).
export function readParams(fieldset, type, { fromFile = false } = {}) {
  const values = {};
  for (const control of fieldset.querySelectorAll('[data-param]')) values[control.dataset.param] = control.value;
  const form = PARAM_FORMS[type];
  if (!form) return {};
  return fromFile ? form.readFile(values) : form.read(values);
}

// The columns a file of `type` has (for the new-job form's help).
export function fileColumns(type) {
  return PARAM_FORMS[type] ? PARAM_FORMS[type].columns : '';
}

// The field values that show a schedule's `params` of `type`.
export function formValues(type, params) {
  return PARAM_FORMS[type] ? PARAM_FORMS[type].write(params) : {};
}
