// tracker.js: the location reporting of a uni-app (or WeChat) mini-program
// page for devtrack, kept apart from the page so that it runs, and is
// tested, outside the mini-program runtime. It asks for the location
// permission (and, once refused, sends the user to the settings page), starts
// location updates, and posts each uni.onLocationChange object as it is to
// devtrack's POST /api/v1/ingest with the device's token. Objects that could
// not be posted (offline, gateway unavailable) are kept, up to a bound, and
// posted together as a JSON array with the next one.
//
// The objects are GCJ-02, as the mini-program APIs report them: register the
// device with `devtrack device add ID --crs gcj02` (or the enrolment API's
// "crs":"gcj02") and devtrack converts them to WGS-84.

const MAX_BUFFERED = 500;

/**
 * createTracker returns {start, stop, flush, pending}.
 * @param {object} uni the runtime (uni or wx), or a stand-in in tests
 * @param {{url: string, token: string, onStatus?: (s: string) => void}} opts
 *   url: the gateway's base URL, e.g. https://track.example.com
 */
export function createTracker(uni, opts) {
  const status = opts.onStatus || (() => {});
  let buffered = [];
  let sending = false;
  let listener = null;

  function post() {
    if (sending || buffered.length === 0) return Promise.resolve();
    sending = true;
    const batch = buffered;
    buffered = [];
    return new Promise((resolve) => {
      uni.request({
        url: opts.url + '/api/v1/ingest',
        method: 'POST',
        header: { Authorization: 'Bearer ' + opts.token, 'Content-Type': 'application/json' },
        data: batch.length === 1 ? batch[0] : batch,
        success(res) {
          if (res.statusCode === 200) {
            status('sent ' + batch.length);
          } else if (res.statusCode === 401) {
            status('token refused: ask for a new one');
          } else if (res.statusCode >= 500 || res.statusCode === 429) {
            keep(batch); // retried with the next position
            status('gateway busy (' + res.statusCode + '), kept ' + buffered.length);
          } else {
            status('refused (' + res.statusCode + '): ' + JSON.stringify(res.data));
          }
        },
        fail() {
          keep(batch);
          status('offline, kept ' + buffered.length);
        },
        complete() {
          sending = false;
          resolve();
        },
      });
    });
  }

  function keep(batch) {
    buffered = batch.concat(buffered).slice(-MAX_BUFFERED);
  }

  function onLocation(obj) {
    buffered.push(obj);
    if (buffered.length > MAX_BUFFERED) buffered.shift();
    return post();
  }

  function startUpdates() {
    return new Promise((resolve, reject) => {
      uni.startLocationUpdate({
        success() {
          listener = onLocation;
          uni.onLocationChange(listener);
          status('tracking');
          resolve();
        },
        fail(err) {
          status('cannot start location updates: ' + (err && err.errMsg));
          reject(err);
        },
      });
    });
  }

  // The permission flow: authorize; once refused, the mini-program will not
  // ask again by itself, so explain and open the settings page.
  function start() {
    return new Promise((resolve, reject) => {
      uni.authorize({
        scope: 'scope.userLocation',
        success: () => startUpdates().then(resolve, reject),
        fail() {
          uni.showModal({
            title: 'Location needed',
            content: 'Deliveries are tracked while this page is open. Allow location in the settings.',
            success(res) {
              if (!res.confirm) {
                status('location refused');
                reject(new Error('location refused'));
                return;
              }
              uni.openSetting({
                success(s) {
                  if (s.authSetting && s.authSetting['scope.userLocation']) {
                    startUpdates().then(resolve, reject);
                  } else {
                    status('location refused');
                    reject(new Error('location refused'));
                  }
                },
              });
            },
          });
        },
      });
    });
  }

  function stop() {
    if (listener) {
      uni.offLocationChange(listener);
      listener = null;
    }
    uni.stopLocationUpdate({});
    status('stopped');
  }

  return { start, stop, flush: post, pending: () => buffered.length };
}
