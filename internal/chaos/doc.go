// Package chaos is devtrack's fault suite: it runs the built devtrack binary
// (gateways and workers as separate processes) against real redis-server
// processes, drives a fleet of devices through devclient, injects one fault
// per case (kill -9, SIGSTOP, a full or read-only store, a flood of slow
// clients, a cut network link between network namespaces), and then checks
// through the query API that every acked frame is stored exactly once and
// that none went to the dead letters.
//
// The harness (this package's non-test files) owns processes, namespaces and
// mounts and removes them when the test ends; the cases live in chaos_test.go.
// Each case yields one Result; the suite prints them as a markdown table.
//
// What is checked, and how:
//   - acked: the ids devclient reported acked (OnAck), per device;
//   - stored and duplicates: every row of GET /api/v1/devices/{id}/locations and
//     GET /api/v1/logs?device= (paged with next_cursor), counted per (device, id).
//     The store's UNIQUE (device, id) makes API duplicates impossible unless a
//     page repeats rows, so the store file is also read (read-only) with a
//     GROUP BY device, id HAVING COUNT(*) > 1 query;
//   - dead: dead letters (devtrack queue dead list) whose item is an acked frame,
//     and the dead count of GET /api/v1/queue;
//   - recovery: seconds from the end of the fault until a scan finds every
//     acked id stored.
package chaos
