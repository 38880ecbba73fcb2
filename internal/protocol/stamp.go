package protocol

import (
	"encoding/json"
	"fmt"
	"time"
)

// Stamp marks accepted frames (Parsed.Items) with what the sender cannot
// claim: the device they belong to, the receive time and the producer that
// took them (a gateway's id, or a bridge's), and encodes each as a queue item
// for the ingest list. It returns the encoded items and their ids, in order.
// The gateway and the bridge both stamp through it, so that an item looks the
// same whoever pushed it.
func Stamp(device, producer string, items []Item, now time.Time) ([][]byte, []string, error) {
	raws := make([][]byte, len(items))
	ids := make([]string, len(items))
	for i := range items {
		it := &items[i]
		it.V = ItemVersion
		it.Device = device
		it.ReceivedAt = now.UnixMilli()
		it.Gateway = producer
		raw, err := json.Marshal(it)
		if err != nil {
			return nil, nil, fmt.Errorf("encode item %s: %w", it.ID, err)
		}
		raws[i] = raw
		ids[i] = it.ID
	}
	return raws, ids, nil
}
