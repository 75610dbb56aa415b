// The System → Jobs page starts here. Plain JavaScript modules, no build step: each
// module holds one part of the page (see the list below), finds its own elements in
// index.html and listens to them; this one loads them all and signs in with the token
// kept in this tab, if any.
//
// Rules every module keeps:
// - Only relative URLs (`jobs?…`, `./api.js`): the page lives under a stage path
//   (`/v1/` on AWS, `/_aws/execute-api/<id>/v1/` on LocalStack) and the CSP allows
//   `script-src 'self'` and `connect-src 'self'` only.
// - Job fields come from users (user ids, e-mail subjects, error reasons…): the DOM is built
//   with createElement/textContent only, never innerHTML, so no data is ever parsed as HTML.
// - The URL's query string holds the search and filters, so a view can be shared and reloaded.
// - A module runs nothing at load but finding its elements and adding listeners, so the
//   modules may call each other's functions in any order.
//
// Every module that this file (or a module it imports) imports must be served by
// functions/jobs-core/src/api/http/page.rs: a unit test there checks it.

import { savedToken, signIn, showSignIn, resumeSignIn } from './signin.js';
import './filters.js';    // the search and filters, in the URL
import './list.js';       // the jobs table and "Load more"
import './polling.js';    // queued and running rows kept fresh
import './metrics.js';    // the last 24 hours and the queue health
import './bulk.js';       // selection and the bulk bar
import './details.js';    // one job's details panel
import './actions.js';    // Cancel, Remove, Undo, Retry, Download
import './schedules.js';  // the Schedules view
import './schedule-dialog.js'; // creating and editing a schedule
import './new-job.js';    // a new job from a file
import './api-keys.js';   // the API keys view
import './views.js';      // Jobs, Schedules or API keys, by the URL's hash

// A return from the identity provider's sign-in, else the token of an earlier sign-in in
// this tab, else the sign-in card.
if (!(await resumeSignIn())) {
  const saved = savedToken();
  if (saved) signIn(saved); else showSignIn('');
}
