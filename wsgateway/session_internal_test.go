package wsgateway

import (
	"net/http"
	"testing"
)

func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{cfg: Config{TrustedProxies: proxies}}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "198.51.100.7:4000", nil, "198.51.100.7"},
		{"untrusted peer's header ignored", "198.51.100.7:4000", []string{"203.0.113.1"}, "198.51.100.7"},
		{"trusted proxy", "10.1.2.3:80", []string{"203.0.113.1"}, "203.0.113.1"},
		{"client-written hops left of the real one", "10.1.2.3:80", []string{"1.1.1.1, 203.0.113.1"}, "203.0.113.1"},
		{"chain of trusted proxies", "10.1.2.3:80", []string{"203.0.113.1, 192.0.2.1", "10.9.9.9"}, "203.0.113.1"},
		{"garbage hop", "10.1.2.3:80", []string{"203.0.113.1, nonsense"}, "10.1.2.3"},
		{"only proxies", "10.1.2.3:80", []string{"10.0.0.1"}, "10.0.0.1"},
		{"no header", "10.1.2.3:80", nil, "10.1.2.3"},
		{"ipv6 peer", "[2001:db8::1]:80", []string{"203.0.113.1"}, "2001:db8::1"},
	}
	for _, tc := range tests {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := g.clientAddr(r); got != tc.want {
			t.Errorf("%s: clientAddr = %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,not-a-cidr"); err == nil {
		t.Errorf("ParseTrustedProxies accepted not-a-cidr")
	}
}

func TestThrottleKeyGroupsIPv6By64(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"not an address", "not an address"},
	} {
		if got := throttleKey(c.in); got != c.want {
			t.Errorf("throttleKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
