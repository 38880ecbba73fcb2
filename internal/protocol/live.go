package protocol

import (
	"encoding/json"
	"strconv"
)

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

// AppendLive appends json.Marshal(LiveOf(it)) to b, byte for byte, without
// reflection: the worker encodes one per stored item, and json.Marshal was
// 6-7% of its CPU in the BenchmarkDrain profile. it.Data must be normalised
// as Parse and DecodeQueueItem make it (a fixed point of json.Marshal);
// FuzzParse and FuzzDecodeQueueItem check the bytes against json.Marshal.
func AppendLive(b []byte, it Item) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, it.Type)
	b = append(b, `,"device":`...)
	b = appendString(b, it.Device)
	b = append(b, `,"id":`...)
	b = appendString(b, it.ID)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, it.TS, 10)
	b = append(b, `,"received_at":`...)
	b = strconv.AppendInt(b, it.ReceivedAt, 10)
	b = append(b, `,"data":`...)
	if len(it.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, it.Data...)
	}
	return append(b, '}')
}
