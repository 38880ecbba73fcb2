// Runs tracker.js in Node with a stand-in for the uni runtime whose
// uni.request is a real HTTP request, for uniapp_test.go:
//   node tracker_run.mjs GATEWAY_URL TOKEN
// It goes through the permission flow as a user who first refused (authorize
// fails, the settings page grants it), then reports 5 GCJ-02 positions (the
// third while "offline", so it is posted with the fourth as an array), and
// prints one JSON line: {"statuses":[...],"pending":N}.
import { createTracker } from './tracker.js';

const [url, token] = process.argv.slice(2);
const statuses = [];
let onChange = null;
let offline = false;

const uni = {
  authorize: ({ fail }) => fail({ errMsg: 'authorize:fail auth deny' }),
  showModal: ({ success }) => success({ confirm: true }),
  openSetting: ({ success }) => success({ authSetting: { 'scope.userLocation': true } }),
  startLocationUpdate: ({ success }) => success(),
  stopLocationUpdate: () => {},
  onLocationChange: (fn) => { onChange = fn; },
  offLocationChange: () => { onChange = null; },
  request({ url, method, header, data, success, fail, complete }) {
    if (offline) {
      fail({ errMsg: 'request:fail' });
      complete();
      return;
    }
    fetch(url, { method, headers: header, body: JSON.stringify(data) })
      .then(async (res) => success({ statusCode: res.status, data: await res.json() }))
      .catch((err) => fail({ errMsg: String(err) }))
      .finally(() => complete());
  },
};

const tracker = createTracker(uni, { url, token, onStatus: (s) => statuses.push(s) });
await tracker.start();
// Positions as uni.onLocationChange gives them (GCJ-02, iOS speed -1).
const base = { latitude: 31.22845773757727, longitude: 121.47822305927693, speed: -1, accuracy: 65,
  altitude: 8, verticalAccuracy: 3, horizontalAccuracy: 12.5 };
for (let i = 0; i < 5; i++) {
  offline = i === 2;
  await onChange({ ...base, altitude: 10 + i });
}
tracker.stop();
console.log(JSON.stringify({ statuses, pending: tracker.pending() }));
