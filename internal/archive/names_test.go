package archive

import (
	"strings"
	"testing"
)

func TestEncodeName(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"truck-7", "truck-7"},
		{"a.b_c@d", "a.b_c@d"},
		{"../x", "%2E.%2Fx"},
		{".hidden", "%2Ehidden"},
		{"a/b c", "a%2Fb%20c"},
		{"%41", "%2541"},
		{"ü", "%C3%BC"},
		{"a:b", "a%3Ab"},
	} {
		if got := encodeName(tc.id); got != tc.want {
			t.Errorf("encodeName(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func FuzzEncodeName(f *testing.F) {
	for _, s := range []string{"d1", "../..", "a/b", "%", "\x00", "é", ".", "CON"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		name := encodeName(id)
		if strings.ContainsAny(name, "/\\\x00 :") || strings.HasPrefix(name, ".") {
			t.Fatalf("encodeName(%q) = %q: not a safe file name", id, name)
		}
		back, err := decodeName(name)
		if err != nil || back != id {
			t.Fatalf("decodeName(encodeName(%q)) = %q, %v", id, back, err)
		}
	})
}
