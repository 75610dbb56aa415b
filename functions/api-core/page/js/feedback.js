// Telling the user what happened and asking before a change: the toast at the bottom of
// the page (with an optional button such as Undo) and the confirmation dialog.

import { $, el } from './dom.js';

const toastBox = $('toast');
const confirmBox = $('confirm');
const confirmTitle = $('confirm-title');
const confirmText = $('confirm-text');
const confirmYes = $('confirm-yes');
const confirmNo = $('confirm-no');

let toastTimer = null;

// `action`: an optional {label, run} button in the toast (e.g. Undo), for as long as it shows.
export function toast(message, kind = 'info', action = null) {
  toastBox.replaceChildren(message, action
    ? el('button', { type: 'button', className: 'toast-action', onclick: () => { toastBox.hidden = true; action.run(); } }, action.label)
    : '');
  toastBox.className = `toast toast-${kind}`;
  toastBox.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toastBox.hidden = true; }, action ? 10000 : 7000);
}

// Resolves to true when the user chose `yes`. The safe choice (`no`) has the focus.
export function confirmDialog({ title, text, yes, no }) {
  confirmTitle.textContent = title;
  confirmText.textContent = text;
  confirmYes.textContent = yes;
  confirmNo.textContent = no;
  confirmBox.returnValue = '';
  confirmBox.showModal();
  confirmNo.focus(); // the safe choice is the default
  return new Promise((resolve) => {
    confirmBox.addEventListener('close', () => resolve(confirmBox.returnValue === 'yes'), { once: true });
  });
}

confirmYes.addEventListener('click', () => confirmBox.close('yes'));
confirmNo.addEventListener('click', () => confirmBox.close('no'));
