package main

import "testing"

// TestAdminInBrowser: the admin creates an operator of group ga on the admin
// page (web/test/admin.js); the operator signs in in a fresh browser and
// sees only ga's located devices while gb's are located too, and their
// token is refused a gb device (403); the admin rotates the operator's
// token on the page: the old token gets 401 at once and the operator's open
// page is signed out, its live socket closed by the gateway.
func TestAdminInBrowser(t *testing.T) {
	needBrowser(t)
	f := newBrowserFleet(t)
	cfg := f.config()
	cfg["operatorDataDir"] = t.TempDir()
	runNode(t, "admin.js", cfg, nil)
}
