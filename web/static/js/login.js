// The login form: POST /api/v1/login sets the HttpOnly session cookie.

import { api, errorText } from './api.js';
import { $, showAlert } from './dom.js';

let onLoggedIn = null;

export function initLogin(callback) {
  onLoggedIn = callback;
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
}

/** showLogin shows the form (optionally with a note, e.g. session ended). */
export function showLogin(note) {
  $('page-login').hidden = false;
  showAlert($('login-error'), note || '');
  $('login-password').value = '';
  ($('login-name').value ? $('login-password') : $('login-name')).focus();
}

export function hideLogin() {
  $('page-login').hidden = true;
}

async function submit() {
  const name = $('login-name').value.trim();
  const password = $('login-password').value;
  if (!name) return showAlert($('login-error'), 'Enter your name.');
  $('login-submit').disabled = true;
  showAlert($('login-error'), '');
  try {
    await api('/api/v1/login', { method: 'POST', body: { name, password }, quiet401: true });
    $('login-password').value = '';
    await onLoggedIn();
  } catch (err) {
    showAlert($('login-error'), err.status === 401 ? 'Wrong name or password' : errorText(err));
    $('login-password').select();
  } finally {
    $('login-submit').disabled = false;
  }
}
