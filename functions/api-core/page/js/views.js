// The page's views, Jobs, Schedules and API keys, chosen by the URL's hash (`#schedules`,
// `#api-keys`) so each can be linked and reloaded; the tabs, the breadcrumb and the title
// follow. A view the role may not use is neither offered nor shown.

import { $ } from './dom.js';
import { state, may } from './state.js';
import { showSchedulesView } from './schedules.js';
import { showKeysView } from './api-keys.js';

const tabs = $('tabs');
const jobsView = $('console');
const crumb = $('crumb');
const heading = $('view-title');

const VIEWS = [
  { hash: '', title: 'Jobs', tab: $('tab-jobs') },
  { hash: '#schedules', title: 'Schedules', tab: $('tab-schedules') },
  { hash: '#api-keys', title: 'API keys', tab: $('tab-keys'), operation: 'listApiKeys' },
];

// The tabs show while someone is signed in, each only when the role may use its view.
export function showTabs(on) {
  tabs.hidden = !on;
  for (const view of VIEWS) view.tab.hidden = Boolean(view.operation) && !may(view.operation);
}

// Shows the view the URL's hash names (the Jobs view for any other hash).
export function showView() {
  const current = VIEWS.find((v) => v.hash && v.hash === location.hash && (!v.operation || may(v.operation))) || VIEWS[0];
  jobsView.hidden = current !== VIEWS[0];
  crumb.textContent = current.title;
  heading.textContent = current.title;
  document.title = `System → ${current.title}`;
  for (const view of VIEWS) {
    if (view === current) view.tab.setAttribute('aria-current', 'page'); else view.tab.removeAttribute('aria-current');
  }
  showSchedulesView(current === VIEWS[1]);
  showKeysView(current === VIEWS[2]);
}

window.addEventListener('hashchange', () => { if (state.token) showView(); });
