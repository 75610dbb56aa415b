// What the page knows right now, shared by the modules of the Jobs view: who is signed in,
// the filters applied, and the jobs shown. State that only one module needs lives in that
// module.

export const state = {
  token: null,
  claims: null,         // the token's claims, for display only: the API checks the token
  me: null,             // GET me: user, tenant, role and the operations the role may call
  filters: {},          // applied filters, as in the URL
  cursor: null,         // next_cursor of the last page loaded
  jobs: new Map(),      // id -> { job, tr, key }
  generation: 0,        // bumped on every reload; responses of older generations are dropped
  selected: new Set(),  // ids of the rows ticked
  allMatching: false,   // the selection is every job matching the filters, shown or not
};

// Platform admins see every tenant; every other role its own.
export function isAdmin() {
  return Boolean(state.me && state.me.role === 'platform_admin');
}

// Whether the caller's role may call an operation (an operationId of openapi.json). The
// page shows only what the role may do; the API refuses the rest anyway.
export function may(operationId) {
  return Boolean(state.me && state.me.operations.includes(operationId));
}
