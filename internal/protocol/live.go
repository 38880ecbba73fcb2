package protocol

import "encoding/json"

// Live is a message of the viewer protocol about one device: a location or a
// log as a worker publishes it on the device's live channel after storing it.
type Live struct {
	Type       string          `json:"type"` // TypeLocation or TypeLog
	Device     string          `json:"device"`
	ID         string          `json:"id"`
	TS         int64           `json:"ts"`
	ReceivedAt int64           `json:"received_at"`
	Data       json.RawMessage `json:"data"`
}

// LiveOf is the live message of a stored item.
func LiveOf(it Item) Live {
	return Live{Type: it.Type, Device: it.Device, ID: it.ID, TS: it.TS, ReceivedAt: it.ReceivedAt, Data: it.Data}
}
