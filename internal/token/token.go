// Package token makes and hashes the secrets of devtrack: device tokens and
// user API tokens. Tokens are 32 random bytes, base64url-encoded behind a
// short kind prefix (so secret scanners and humans can tell them apart); only
// their SHA-256 hash is stored, which is fast enough to check at every
// handshake and useless to whoever steals the database.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// Prefixes of the token kinds.
const (
	DevicePrefix = "dtd_"
	UserPrefix   = "dtu_"
)

// New returns a fresh random token with the given prefix.
func New(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is the stored form of a token.
func Hash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// FromRequest returns the token of a request: "Authorization: Bearer TOKEN",
// else the "token" query parameter (for clients that cannot set headers).
func FromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}
