package main

import (
	"errors"
	"testing"
)

func TestCheckTeeRefusesDevtrackKeysAndNoBound(t *testing.T) {
	tests := []struct {
		key, prefix string
		max         int
		want        string
	}{
		{"", "devtrack", 0, ""},
		{"device:log:list", "devtrack", 100000, ""},
		{"devtrack:queue", "devtrack", 1, ""},
		{"{devtrack}:queue", "devtrack", 100, `--tee-list "{devtrack}:queue": one of devtrack's own keys; give the list the legacy consumer reads, e.g. device:log:list`},
		{"{fleet}:queue:dead", "fleet", 100, `--tee-list "{fleet}:queue:dead": one of devtrack's own keys; give the list the legacy consumer reads, e.g. device:log:list`},
		{"device:log:list", "devtrack", 0, "--tee-max 0: want at least 1"},
	}
	for _, tt := range tests {
		err := checkTee(tt.key, tt.max, tt.prefix)
		got := ""
		if err != nil {
			got = err.Error()
			if ue := (usageError{}); !errors.As(err, &ue) {
				t.Errorf("checkTee(%q, %d): %v is not a usage error (exit 2)", tt.key, tt.max, err)
			}
		}
		if got != tt.want {
			t.Errorf("checkTee(%q, %d, %q) = %q; want %q", tt.key, tt.max, tt.prefix, got, tt.want)
		}
	}
}
