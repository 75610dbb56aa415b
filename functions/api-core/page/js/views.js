// The page's two views, Jobs and Schedules, chosen by the URL's hash (`#schedules`) so
// each can be linked and reloaded; the tabs, the breadcrumb and the title follow.

import { $ } from './dom.js';
import { state } from './state.js';
import { showSchedulesView } from './schedules.js';

const tabs = $('tabs');
const tabJobs = $('tab-jobs');
const tabSchedules = $('tab-schedules');
const jobsView = $('console');
const crumb = $('crumb');
const heading = $('view-title');

// The tabs show while someone is signed in.
export function showTabs(on) {
  tabs.hidden = !on;
}

// Shows the view the URL's hash names.
export function showView() {
  const onSchedules = location.hash === '#schedules';
  jobsView.hidden = onSchedules;
  crumb.textContent = onSchedules ? 'Schedules' : 'Jobs';
  heading.textContent = onSchedules ? 'Schedules' : 'Jobs';
  document.title = `System → ${onSchedules ? 'Schedules' : 'Jobs'}`;
  for (const [tab, current] of [[tabJobs, !onSchedules], [tabSchedules, onSchedules]]) {
    if (current) tab.setAttribute('aria-current', 'page'); else tab.removeAttribute('aria-current');
  }
  showSchedulesView(onSchedules);
}

window.addEventListener('hashchange', () => { if (state.token) showView(); });
