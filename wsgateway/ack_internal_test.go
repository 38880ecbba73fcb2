package wsgateway

import (
	"encoding/json"
	"testing"

	"github.com/devtrack/devtrack/internal/protocol"
)

// appendAck writes what json.Marshal makes of protocol.Ack, byte for byte,
// also for ids that need escaping.
func TestAppendAckIsTheJSONOfAck(t *testing.T) {
	for _, ids := range [][]string{
		{},
		{"1"},
		{"a-1", "b_2.3:4", "x"},
		{`q"uote`, `back\slash`, "tab\t", "<html>&", "ünïcode", "\u2028", "\x7f", ""},
	} {
		want, err := json.Marshal(protocol.Ack{Type: protocol.TypeAck, IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendAck(nil, ids); string(got) != string(want) {
			t.Errorf("ids %q: got %s, want %s", ids, got, want)
		}
	}
	want, _ := json.Marshal(map[string]string{"type": protocol.TypePong})
	if string(pongFrame) != string(want) {
		t.Errorf("pong frame %s, want %s", pongFrame, want)
	}
}
