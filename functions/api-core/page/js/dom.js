// Small DOM helpers used by every module: find an element, build one, show a time.
//
// The page never parses HTML: every element is made with createElement and every piece of
// text goes in as a text node, so data from users (user ids, subjects, error reasons…) is
// always shown as text.

// The element with this id (the static skeleton in index.html).
export function $(id) {
  return document.getElementById(id);
}

// el('td', {className: 'x', dataset: {label: 'Type'}}, 'text', node…). Strings become text
// nodes; `attrs` go through setAttribute, which never parses HTML.
export function el(tag, props = {}, ...children) {
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

// Local time for reading; the exact UTC value on hover (and in `datetime`).
export function timeEl(iso) {
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
