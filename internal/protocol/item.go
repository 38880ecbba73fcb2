package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidItem is wrapped by every error of DecodeItem: the item can never
// be stored as it is, so retrying it is pointless (dead-letter it).
var ErrInvalidItem = errors.New("invalid queue item")

// DecodedItem is a checked queue item together with its decoded data.
type DecodedItem struct {
	Item
	Location *Location // set when Type is TypeLocation
	Log      *Log      // set when Type is TypeLog
}

// itemIn is a queue item before validation; strings stay raw so that invalid
// UTF-8 is refused rather than silently replaced.
type itemIn struct {
	V          int             `json:"v"`
	Device     json.RawMessage `json:"device"`
	ID         json.RawMessage `json:"id"`
	Type       json.RawMessage `json:"type"`
	TS         int64           `json:"ts"`
	ReceivedAt int64           `json:"received_at"`
	Gateway    json.RawMessage `json:"gateway"`
	Data       json.RawMessage `json:"data"`
}

// DecodeItem decodes and checks one queue item read from the ingest list
// with the default Limits. See Limits.DecodeQueueItem.
func DecodeItem(raw []byte) (Item, error) {
	d, err := Limits{}.DecodeQueueItem(raw)
	return d.Item, err
}

// DecodeQueueItem decodes and checks one queue item read from the ingest
// list. Items may come from a third-party producer, so everything is checked
// as strictly as a device frame (except ts, which is not compared with the
// clock: a worker may drain old items after an outage):
//   - v is 1; 0 or absent is taken as 1;
//   - device is a non-empty string of at most MaxDeviceIDLen bytes, id one of
//     at most MaxIDLen bytes, neither with control characters;
//   - type is location or log and data passes the same checks as in Parse;
//   - ts 0 or absent takes received_at.
//
// The returned Item has V set and Data normalised as Parse would have made it.
// A location with crs gcj02 or bd09 but no orig_lat/orig_lng is taken to be
// unconverted and converted here. Errors wrap ErrInvalidItem.
func (l Limits) DecodeQueueItem(raw []byte) (DecodedItem, error) {
	l = l.WithDefaults()
	if firstByte(raw) != '{' {
		return DecodedItem{}, fmt.Errorf("%w: not a JSON object", ErrInvalidItem)
	}
	in, ok := scanItemIn(raw)
	if !ok {
		if err := json.Unmarshal(raw, &in); err != nil {
			return DecodedItem{}, fmt.Errorf("%w: %s", ErrInvalidItem, typeProblem("item", err))
		}
	}
	fail := func(format string, args ...any) (DecodedItem, error) {
		return DecodedItem{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidItem}, args...)...)
	}
	if in.V != 0 && in.V != ItemVersion {
		return fail("version %d is not supported (want %d)", in.V, ItemVersion)
	}
	device, problem := requiredString("device", in.Device, MaxDeviceIDLen)
	if problem != "" {
		return fail("%s", problem)
	}
	id, problem := requiredString("id", in.ID, l.MaxIDLen)
	if problem != "" {
		return fail("device %q: %s", device, problem)
	}
	var gateway string
	if !isNull(in.Gateway) {
		var valid, ok bool
		if gateway, valid, ok = jsonString(in.Gateway); !ok || !valid {
			return fail("device %q id %q: gateway must be a UTF-8 string", device, id)
		}
	}
	typ, _, _ := jsonString(in.Type)
	it := Item{V: ItemVersion, Device: device, ID: id, Type: typ, TS: in.TS, ReceivedAt: in.ReceivedAt, Gateway: gateway}
	if it.TS == 0 {
		it.TS = it.ReceivedAt
	}
	d := DecodedItem{}
	switch typ {
	case TypeLocation:
		f, problem := decodeLocation(in.Data, true, "")
		if problem != "" {
			return fail("device %q id %q: %s", device, id, problem)
		}
		it.Data = appendLocation(make([]byte, 0, 192), &f)
		loc := f.location()
		d.Location = &loc
	case TypeLog:
		f, problem := decodeLog(in.Data, &l)
		if problem != "" {
			return fail("device %q id %q: %s", device, id, problem)
		}
		it.Data = appendLog(make([]byte, 0, f.maxJSON()), &f)
		lg := Log{Level: f.level, Message: f.message}
		if f.fields != nil {
			lg.Fields = appendCompact(make([]byte, 0, len(f.fields)), f.fields)
		}
		d.Log = &lg
	default:
		return fail("device %q id %q: type must be %q or %q", device, id, TypeLocation, TypeLog)
	}
	d.Item = it
	return d, nil
}

// requiredString reads a non-empty id-like string of at most maxLen bytes.
func requiredString(what string, raw []byte, maxLen int) (string, string) {
	if isNull(raw) {
		return "", what + " is missing"
	}
	s, valid, ok := jsonString(raw)
	switch {
	case !ok:
		return "", what + " must be a string"
	case !valid:
		return "", what + " is not valid UTF-8"
	case s == "":
		return "", what + " is empty"
	}
	if problem := idProblem(what, s, maxLen); problem != "" {
		return "", problem
	}
	return s, ""
}

// itemKeys are the member names of itemIn, as encoding/json matches them.
var itemKeys = [...]string{"v", "device", "id", "type", "ts", "received_at", "gateway", "data"}

// scanItemIn reads raw into an itemIn with the frame scanner, as
// json.Unmarshal would, where it can tell that json.Unmarshal would succeed;
// ok is false for anything else (invalid JSON, a key that only
// encoding/json's case-insensitive or escaped matching would map onto a
// member, a member given twice, v, ts or received_at not an integer that
// fits), and then the caller runs json.Unmarshal, so that every refusal and
// its message stay exactly as they were. encoding/json was 77% of the
// worker's decode time (BenchmarkDrain profile): it validates the item,
// then scans it again with reflection and copies each raw member.
// FuzzDecodeQueueItem checks both ways agree. The raw members alias raw.
func scanItemIn(raw []byte) (in itemIn, ok bool) {
	if firstByte(raw) != '{' || validJSON(raw) != nil {
		return in, false
	}
	var seen [len(itemKeys)]bool
	it := newObjectIter(raw)
	for k, v, more := it.next(); more; k, v, more = it.next() {
		i := -1
		for j, name := range itemKeys {
			if string(k) == name {
				i = j
				break
			}
		}
		if i < 0 {
			// An unknown member is ignored, unless encoding/json would
			// match it to one (case folding, escapes, non-ASCII folds).
			for _, c := range k {
				if c == '\\' || c >= 0x80 {
					return in, false
				}
			}
			for _, name := range itemKeys {
				if strings.EqualFold(string(k), name) {
					return in, false
				}
			}
			continue
		}
		if seen[i] {
			return in, false
		}
		seen[i] = true
		switch i {
		case 0, 4, 5: // v, ts, received_at
			if isNull(v) {
				continue
			}
			if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
				return in, false
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return in, false
			}
			switch i {
			case 0:
				in.V = int(n)
			case 4:
				in.TS = n
			case 5:
				in.ReceivedAt = n
			}
		case 1:
			in.Device = v
		case 2:
			in.ID = v
		case 3:
			in.Type = v
		case 6:
			in.Gateway = v
		case 7:
			in.Data = v
		}
	}
	return in, true
}
