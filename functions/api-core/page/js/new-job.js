// The dialog that starts a job from a file: the type and the params its file does not give
// (forms.js), a file chosen or dropped, its upload straight to S3 with a progress bar
// (POST uploads gives a presigned PUT; fetch reports no upload progress, so the PUT is an
// XMLHttpRequest), then POST jobs with `input.upload_id`. The new job's row then shows
// "planning" and its rows read until its worker has read the whole file.

import { $, el } from './dom.js';
import { ApiError, api, describeError } from './api.js';
import { toast } from './feedback.js';
import { renderParamFields, syncParamVisibility, readParams, fileColumns } from './forms.js';
import { reload } from './list.js';
import { showJob } from './details.js';

const dialog = $('j-dialog');
const form = $('j-form');
const error = $('j-error');
const type = $('j-type');
const params = $('j-params');
const file = $('j-file');
const drop = $('j-drop');
const columns = $('j-columns');
const upload = $('j-upload');
const progress = $('j-progress');
const progressText = $('j-progress-text');
const start = $('j-start');

// The last file uploaded whose job was not created (a refused param): sent again as it is,
// without a second upload, while the same file stays chosen.
let uploaded = null; // { file, uploadId }

// What POST uploads declares, from the file's name: NDJSON for .ndjson or .jsonl, CSV
// otherwise; gzip for a trailing .gz.
export function fileFormat(name) {
  const lower = name.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  const ndjson = base.endsWith('.ndjson') || base.endsWith('.jsonl');
  return { content_type: ndjson ? 'application/x-ndjson' : 'text/csv', ...(gzip ? { content_encoding: 'gzip' } : {}) };
}

const megabytes = (bytes) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

// PUTs `body` to the presigned URL with its signed headers; `onProgress(sent, total)`.
function put(target, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(target.method, target.url);
    for (const [name, value] of Object.entries(target.headers || {})) {
      if (name !== 'host' && name !== 'content-length') xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
    xhr.addEventListener('load', () => (xhr.status < 300 ? resolve() : reject(new Error(`The storage refused the file (HTTP ${xhr.status}). Try again.`))));
    xhr.addEventListener('error', () => reject(new Error('The upload could not reach the storage. Check your connection, then try again.')));
    xhr.send(body);
  });
}

function showError(message, field = null) {
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  error.hidden = false;
  error.textContent = message;
  const control = field && form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
}

function showType() {
  renderParamFields(params, type.value, {}, { fromFile: true });
  params.hidden = !params.querySelector('[data-param]');
  columns.textContent = `Columns: ${fileColumns(type.value)}.`;
}

export function openNewJob() {
  if (!type.options.length) {
    // The job types, as the list's type filter names them (served from the registry).
    for (const o of $('f-type').options) if (o.value) type.append(el('option', { value: o.value }, o.textContent));
  }
  error.hidden = true;
  upload.hidden = true;
  form.reset();
  uploaded = null;
  showType();
  if (!dialog.open) dialog.showModal();
  type.focus();
}

async function startJob() {
  const chosen = file.files[0];
  if (!chosen) { showError('Choose a file.', 'input.upload_id'); return; }
  const jobType = type.value;
  const body = { type: jobType, params: readParams(params, jobType, { fromFile: true }) };
  error.hidden = true;
  form.setAttribute('aria-busy', 'true');
  start.disabled = true;
  try {
    if (!uploaded || uploaded.file !== chosen) {
      const target = await api('uploads', { method: 'POST', body: fileFormat(chosen.name) });
      if (chosen.size > target.max_bytes) {
        showError(`The file is ${megabytes(chosen.size)}: at most ${megabytes(target.max_bytes)}.`, 'input.upload_id');
        return;
      }
      upload.hidden = false;
      await put(target, chosen, (sent, total) => {
        progress.value = Math.floor((100 * sent) / total);
        progressText.textContent = `${megabytes(sent)} of ${megabytes(total)}`;
      });
      progress.value = 100;
      progressText.textContent = `${megabytes(chosen.size)} uploaded`;
      uploaded = { file: chosen, uploadId: target.upload_id };
    }
    body.input = { upload_id: uploaded.uploadId };
    const job = await api('jobs', { method: 'POST', body });
    uploaded = null;
    dialog.close();
    toast('Job created: its worker reads the file, and the row counts the rows read.');
    reload();
    showJob(job.id);
  } catch (err) {
    if (err.handled) return;
    if (err.field === 'input.upload_id') uploaded = null; // that upload cannot be used again
    if (!(err instanceof ApiError)) showError(err.message);
    else showError(err.field ? `${err.message} (${err.field})` : describeError(err), err.field);
  } finally {
    form.removeAttribute('aria-busy');
    start.disabled = false;
  }
}

form.addEventListener('submit', (event) => { event.preventDefault(); startJob(); });
form.addEventListener('change', (event) => {
  if (event.target === type) showType();
  else if (event.target.dataset.param) syncParamVisibility(params);
});
for (const name of ['dragenter', 'dragover']) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add('dragging'); });
}
drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('dragging');
  if (event.dataTransfer && event.dataTransfer.files.length) file.files = event.dataTransfer.files;
});
$('j-new').addEventListener('click', () => openNewJob());
$('j-close').addEventListener('click', () => dialog.close());
$('j-cancel').addEventListener('click', () => dialog.close());
