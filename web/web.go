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
// Images may come from any tile server.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob: https: http:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// Handler serves the UI with security headers and content-hash ETags.
func Handler() http.Handler {
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
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		p := path.Clean(r.URL.Path)
		if p == "/" {
			p = "/index.html"
		}
		if tag, ok := etags[p]; ok {
			h.Set("ETag", tag)
			h.Set("Cache-Control", "no-cache")
		}
		if strings.HasSuffix(r.URL.Path, "/index.html") {
			// FileServer would redirect to "/"; serve it as is.
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/"
			r = r2
		}
		files.ServeHTTP(w, r)
	})
}
