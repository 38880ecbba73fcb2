// Package web is devtrack's admin web UI: static pages embedded in the
// binary and served by the gateway. The front-end libraries (Leaflet and
// Leaflet.markercluster) come pinned from the npm registry; scripts/web-vendor
// copies them into static/vendor, where they are committed, so that building
// devtrack needs Go alone.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// Static is the UI's file tree, index.html at its root.
var Static, _ = fs.Sub(files, "static")

// contentSecurityPolicy allows only this origin's scripts and styles, so that
// even a device-provided string that reached the DOM as markup could not run.
// Images may come from any tile server. frame-ancestors is appended:
// 'none' unless Options.FrameAncestors lists the sites that may frame it.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob: https: http:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors "

// ClientPath is the folder of the embeddable viewer client
// (static/client): the ES module devtrack-live.js and its usage page.
const ClientPath = "/client/"

// Options tune Handler.
type Options struct {
	// FrameAncestors are the origins (scheme://host[:port]) whose pages may
	// show the UI in a frame. Empty (default): none may (X-Frame-Options
	// DENY, frame-ancestors 'none').
	FrameAncestors []string
}

// Handler serves the UI with security headers and content-hash ETags, and
// framing denied.
func Handler() http.Handler { return NewHandler(Options{}) }

// NewHandler serves the UI with the given options.
func NewHandler(o Options) http.Handler {
	csp := contentSecurityPolicy + "'none'"
	if len(o.FrameAncestors) > 0 {
		csp = contentSecurityPolicy + strings.Join(o.FrameAncestors, " ")
	}
	etags := map[string]string{}
	_ = fs.WalkDir(Static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Static, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags["/"+p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	files := http.FileServerFS(Static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		if len(o.FrameAncestors) == 0 {
			// X-Frame-Options cannot name sites; with a list, CSP alone
			// decides (browsers ignore X-Frame-Options beside frame-ancestors).
			h.Set("X-Frame-Options", "DENY")
		}
		h.Set("Referrer-Policy", "same-origin")
		p := path.Clean(r.URL.Path)
		if p == "/" || strings.HasSuffix(r.URL.Path, "/") {
			p = strings.TrimSuffix(p, "/") + "/index.html"
		}
		if strings.HasPrefix(p, ClientPath) && strings.HasSuffix(p, ".js") {
			// The embeddable client is public code, without secrets: any
			// page may import it (module scripts are fetched with CORS).
			// It carries no credentials; what it may see is decided by the
			// token it is given.
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		}
		if tag, ok := etags[p]; ok {
			h.Set("ETag", tag)
			h.Set("Cache-Control", "no-cache")
		}
		if strings.HasSuffix(r.URL.Path, "/index.html") {
			// FileServer would redirect to the folder; serve it as is.
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimSuffix(r.URL.Path, "index.html")
			r = r2
		}
		files.ServeHTTP(w, r)
	})
}
