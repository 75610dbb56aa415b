// The search and filters of the Jobs view. The URL's query string holds them (dates stay
// YYYY-MM-DD there), so a view can be shared and reloaded, and Back returns to the
// previous one. The names are the API's.

import { $ } from './dom.js';
import { state, isAdmin } from './state.js';
import { reload } from './list.js';

export const FILTERS = ['q', 'status', 'type', 'tenant', 'created_from', 'created_to'];
export const FILTER_LABELS = { q: 'Search', status: 'Status', type: 'Type', tenant: 'Tenant', created_from: 'Created from', created_to: 'Created to' };
const PAGE_SIZE = 25;

const form = $('filters');
const filterError = $('filter-error');
const clearButton = $('clear-filters');
const input = (name) => form.elements.namedItem(name);

export function filtersFromUrl() {
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

export function writeForm(filters) {
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

// The query string of GET jobs for these filters, one page from `cursor`.
export function apiQuery(filters, cursor) {
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

// The message under the filters, and the field it is about marked invalid.
export function showFilterError(field, message) {
  for (const name of FILTERS) input(name)?.removeAttribute('aria-invalid');
  filterError.hidden = !message;
  filterError.textContent = message || '';
  if (field && input(field)) input(field).setAttribute('aria-invalid', 'true');
}

// Clears the search and every filter, and shows the unfiltered list.
export function clearFilters() {
  clearButton.click();
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

form.addEventListener('submit', (event) => { event.preventDefault(); applyFilters(); });
// Selects and dates apply at once; typing applies after a short pause.
form.addEventListener('change', (event) => {
  const t = event.target;
  if (t.tagName === 'SELECT' || t.type === 'date' || t.name === 'tenant') applyFilters();
});
let typingTimer = null;
form.addEventListener('input', (event) => {
  if (event.target.type !== 'search') return;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(applyFilters, 350);
});
clearButton.addEventListener('click', () => { writeForm({}); applyFilters(); });

// Back/forward between filtered views.
window.addEventListener('popstate', () => {
  if (!state.token) return;
  state.filters = filtersFromUrl();
  writeForm(state.filters);
  reload();
});
