package wsgateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Embedding the gateway in another site (Config.CORSOrigins): the listed
// origins may call the query API from their pages with a bearer token and
// frame the web UI. Credentials are never allowed across origins: the
// session cookie stays same-origin (sessionUser refuses it from another
// Origin), so a page elsewhere acts only with a token it was given. The
// viewer socket needs no CORS: a token may open it from any page (see
// viewerUpgrader), a cookie only from the gateway's own.

// corsMaxAge is how long a browser may cache a preflight answer, in seconds.
const corsMaxAge = "600"

// ParseCORSOrigins reads a comma-separated list of exact origins (the
// --cors-origins flag) for Config.CORSOrigins: scheme://host[:port], no
// path, no wildcard. Empty entries are skipped.
func ParseCORSOrigins(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		o, err := canonicalOrigin(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// canonicalOrigin checks one allowed origin and returns it as browsers
// send it in Origin: lower-case scheme and host, no default port.
func canonicalOrigin(s string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("cors origin %q: %s; want an exact origin like https://admin.example.com or http://localhost:3000", s, why)
	}
	if strings.Contains(s, "*") {
		return "", bad("wildcards are not allowed")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", bad("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", bad("scheme must be http or https")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", bad("only scheme, host and port")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// corsAllowed reports whether origin (an Origin header) is in the list.
func (g *Gateway) corsAllowed(origin string) bool {
	return origin != "" && slices.Contains(g.cfg.CORSOrigins, origin)
}

// corsPath reports whether the path belongs to the query API, the part of
// the gateway that CORS opens. Device ingest, login and logout are not
// part of it: login sets a cookie, which is same-origin only anyway.
func corsPath(p string) bool {
	if !strings.HasPrefix(p, "/api/v1/") {
		return false
	}
	switch p {
	case "/api/v1/ingest", "/api/v1/login", "/api/v1/logout":
		return false
	}
	return true
}

// cors answers preflights and adds the CORS headers of the query API for
// the allowed origins; without Config.CORSOrigins it is next itself.
func (g *Gateway) cors(next http.Handler) http.Handler {
	if len(g.cfg.CORSOrigins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !corsPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		allowed := g.corsAllowed(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if allowed {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", corsMaxAge)
			}
			// Another origin gets the same 204 without the headers: its
			// browser then refuses the request.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "Content-Disposition")
		}
		next.ServeHTTP(w, r)
	})
}
