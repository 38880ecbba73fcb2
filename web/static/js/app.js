// devtrack admin UI: session handling and the hash router.
// Routes: #/map (default), #/device/<id>, #/logs[?device=&level=&q=], #/queue, #/alerts.

import { api, errorText, onUnauthorized } from './api.js';
import { $, setText, showAlert } from './dom.js';
import { live } from './live.js';
import { initLogin, showLogin, hideLogin } from './login.js';
import { initMapPage, showMapPage, hideMapPage, resetMapPage } from './map.js';
import { initDevicePage, showDevicePage, hideDevicePage, resetDevicePage } from './device.js';
import { initLogsPage, showLogsPage, hideLogsPage, resetLogsPage } from './logs.js';
import { initQueuePage, showQueuePage, hideQueuePage, resetQueuePage } from './queue.js';
import { initAlertsPage, showAlertsPage, hideAlertsPage, resetAlertsPage } from './alerts.js';
import { initAdminPage, showAdminPage, hideAdminPage, resetAdminPage } from './admin.js';
import { startDevices, stopDevices } from './store.js';

const pages = {
  map: { el: 'page-map', nav: 'nav-map', title: 'Map', show: showMapPage, hide: hideMapPage, reset: resetMapPage },
  device: { el: 'page-device', nav: 'nav-map', title: 'Device', show: showDevicePage, hide: hideDevicePage, reset: resetDevicePage },
  logs: { el: 'page-logs', nav: 'nav-logs', title: 'Logs', show: showLogsPage, hide: hideLogsPage, reset: resetLogsPage },
  queue: { el: 'page-queue', nav: 'nav-queue', title: 'Queue', show: showQueuePage, hide: hideQueuePage, reset: resetQueuePage },
  alerts: { el: 'page-alerts', nav: 'nav-alerts', title: 'Alerts', show: showAlertsPage, hide: hideAlertsPage, reset: resetAlertsPage },
  admin: { el: 'page-admin', nav: 'nav-admin', title: 'Admin', show: showAdminPage, hide: hideAdminPage, reset: resetAdminPage },
};

let user = null; // /api/v1/me while logged in
let current = null; // name of the page shown

/** parseRoute reads location.hash into {page, id, params}. */
function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/');
  if (parts[0] === 'device' && parts[1]) {
    let id;
    try {
      id = decodeURIComponent(parts.slice(1).join('/'));
    } catch {
      id = parts.slice(1).join('/');
    }
    return { page: 'device', id, params };
  }
  if (parts[0] in pages && parts[0] !== 'device') return { page: parts[0], params };
  return { page: 'map', params };
}

function route() {
  if (!user) return;
  let r = parseRoute();
  if ((r.page === 'queue' || r.page === 'admin') && user.role !== 'admin') r = { page: 'map', params: new URLSearchParams() };
  if (!location.hash.startsWith(`#/${r.page}`)) {
    history.replaceState(null, '', '#/map');
  }
  if (current && current !== r.page) {
    pages[current].hide();
    $(pages[current].el).hidden = true;
  }
  current = r.page;
  const page = pages[r.page];
  $(page.el).hidden = false;
  for (const id of ['nav-map', 'nav-logs', 'nav-alerts', 'nav-queue', 'nav-admin']) {
    $(id).classList.toggle('active', id === page.nav);
    if (id === page.nav) $(id).setAttribute('aria-current', 'page');
    else $(id).removeAttribute('aria-current');
  }
  document.title = `${page.title} · devtrack`;
  try {
    page.show(r, { user });
  } catch (err) {
    console.error(`show ${r.page}:`, err);
  }
}

/** enterApp runs once logged in: header, live socket, devices, route. */
async function enterApp() {
  user = await api('/api/v1/me');
  hideLogin();
  showAlert($('app-error'), '');
  setText($('whoami'), `${user.name} · ${user.role}`);
  $('nav-queue').hidden = user.role !== 'admin';
  $('nav-admin').hidden = user.role !== 'admin';
  for (const id of ['nav', 'session-bar']) $(id).hidden = false;
  route();
  try {
    await startDevices();
  } catch (err) {
    if (err.status === 401) return; // signed out meanwhile: the login form is back
    showAlert($('app-error'), `Cannot load devices: ${errorText(err)}`);
  }
  // The socket starts once names and groups are known, so that its snapshot
  // never shows a device by its bare id first.
  live.start();
}

/** leaveApp hides everything a logged-in user sees and shows the login form. */
function leaveApp(note) {
  if (current) {
    pages[current].hide();
    $(pages[current].el).hidden = true;
  }
  for (const p of Object.values(pages)) if (p.reset) p.reset();
  live.stop();
  stopDevices();
  current = null;
  user = null;
  for (const id of ['nav', 'session-bar']) $(id).hidden = true;
  document.title = 'Log in · devtrack';
  showLogin(note);
}

async function logout() {
  try {
    await api('/api/v1/logout', { method: 'POST', quiet401: true });
  } catch (err) {
    console.warn('logout:', err.message); // the form comes back anyway
  }
  leaveApp();
}

async function start() {
  initLogin(enterApp);
  initMapPage();
  initDevicePage();
  initLogsPage();
  initQueuePage();
  initAlertsPage();
  initAdminPage();
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  onUnauthorized(() => {
    if (user) leaveApp('Your session has ended; please log in again.');
  });
  // The gateway closes the live socket with 4001 when the user's token was
  // replaced or the user deleted (their session has ended too: /me says so
  // and the login form comes back), and with 4003 when their role or groups
  // changed: the page starts again with what they may see now.
  live.on('close', ({ code }) => {
    if (!user) return;
    if (code === 4001) api('/api/v1/me').catch(() => {});
    else if (code === 4003) location.reload();
  });
  try {
    await enterApp();
  } catch (err) {
    if (err.status === 401) leaveApp();
    else {
      showAlert($('app-error'), `Cannot start: ${errorText(err)}`);
      $('app-retry').hidden = false;
    }
  }
}

$('app-retry').addEventListener('click', () => location.reload());
start();
