package protocol

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Parsed is the result of parsing one WebSocket message (or one HTTP body).
type Parsed struct {
	// Items are the accepted location and log frames, in the order sent,
	// with V, ID, Type, TS and Data (normalised JSON) set. Device,
	// ReceivedAt and Gateway are left for the caller.
	Items []Item
	// Errors holds one entry per refused frame. A batch may have good and
	// bad frames: the good ones are still in Items.
	Errors []FrameError
	// Pings counts {"type":"ping"} frames.
	Pings int
	// Results are the command_result frames, with Type, ID, OK, Data and
	// Error set.
	Results []CommandResult
}

// frameIn is any device frame before validation: the raw JSON of the
// members Parse knows (nil when absent), so that one bad member gives a
// precise invalid_frame for its frame instead of an error for the message.
type frameIn struct {
	typ, id, ts, data, items, ok, err []byte
	// obj is the whole object, and bare tells that it has a latitude
	// member: a mini-program's location object (Options.BareLocations).
	obj  []byte
	bare bool
}

// readFrame collects the known members of a valid JSON object. Keys are
// matched exactly; on duplicates the last wins, as with encoding/json.
func readFrame(obj []byte) frameIn {
	f := frameIn{obj: obj}
	it := newObjectIter(obj)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		switch string(unescapeKey(k)) {
		case "latitude":
			f.bare = true
		case "type":
			f.typ = v
		case "id":
			f.id = v
		case "ts":
			f.ts = v
		case "data":
			f.data = v
		case "items":
			f.items = v
		case "ok":
			f.ok = v
		case "error":
			f.err = v
		}
	}
	return f
}

// Where a frame sits, which decides the frame types it may have.
const (
	atTop   = iota // the whole message: any frame type
	inArray        // an element of a top-level array: anything but batch
	inBatch        // an item of a batch frame: location or log only
)

// Parse parses one message: a single frame object, a batch frame
// {"type":"batch","items":[...]}, or a JSON array of frames (the HTTP ingest
// form, also accepted on the WebSocket). now is the receive time, against
// which ts is checked and which frames without ts get; newID is called for
// each accepted frame without an "id" (nil: random ids).
//
// A message that is not JSON, or whose top level is neither an object nor an
// array, gives one invalid_json error; one beyond MaxFrameBytes or with more
// than MaxBatch frames gives one too_large error. Otherwise each frame is
// accepted or refused on its own. Parse never panics.
func (l Limits) Parse(raw []byte, now time.Time, newID func() string) Parsed {
	return l.ParseWith(raw, now, newID, Options{})
}

// Options are what a sender may leave out, where the transport knows it.
type Options struct {
	// DefaultCRS is the crs of a location that names none: the device's
	// (storage.Device.CRS). "" is WGS-84.
	DefaultCRS string
	// BareLocations accepts, where a frame may be, a location object with
	// no frame around it, as a WeChat or uni-app mini-program gets it from
	// wx.onLocationChange ({"latitude","longitude","speed","accuracy",...}):
	// a frame without "type" that has "latitude" is a location frame whose
	// data is the object. Its id and ts are its own "id" and "ts" if it has
	// them; it usually has neither, so it gets a new id and the receive time,
	// and a resend is stored again.
	BareLocations bool
}

// ParseWith is Parse with the options of the transport.
func (l Limits) ParseWith(raw []byte, now time.Time, newID func() string, o Options) Parsed {
	p := parser{l: l.WithDefaults(), opts: o, now: now.UnixMilli(), newID: newID}
	if p.newID == nil {
		p.newID = randomID
	}
	if len(raw) > p.l.MaxFrameBytes {
		p.refuse("", CodeTooLarge, fmt.Sprintf("message is %d bytes, the limit is %d", len(raw), p.l.MaxFrameBytes))
		return p.out
	}
	if err := validJSON(raw); err != nil {
		p.refuse("", CodeInvalidJSON, err.Error())
		return p.out
	}
	switch firstByte(raw) {
	case '{':
		p.arenaHint = 256
		f := readFrame(raw)
		p.frame(&f, atTop, -1)
	case '[':
		p.list(raw, inArray)
	default:
		p.refuse("", CodeInvalidJSON, "a message must be a JSON object or array, not "+kindOf(bytes.TrimLeft(raw, " \t\r\n")))
	}
	return p.out
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// parser carries one Parse call's state.
type parser struct {
	l         Limits
	opts      Options
	now       int64 // Unix ms
	newID     func() string
	out       Parsed
	arena     []byte // backing store for the Data of items
	arenaHint int    // size of the next arena chunk
}

// frameType returns the frame type named by a raw JSON value, without
// allocating for the known types.
func frameType(v []byte) (string, bool) {
	switch string(v) {
	case `"location"`:
		return TypeLocation, true
	case `"log"`:
		return TypeLog, true
	case `"batch"`:
		return TypeBatch, true
	case `"ping"`:
		return TypePing, true
	case `"command_result"`:
		return TypeCommandResult, true
	}
	s, _, ok := jsonString(v)
	return s, ok
}

func (p *parser) refuse(id, code, msg string) {
	p.out.Errors = append(p.out.Errors, FrameError{ID: id, Code: code, Message: msg})
}

// list handles the frames of a batch or a top-level array (valid JSON).
func (p *parser) list(arr []byte, where int) {
	n := countElements(arr)
	if n > p.l.MaxBatch {
		p.refuse("", CodeTooLarge, fmt.Sprintf("%d frames in one message, the limit is %d", n, p.l.MaxBatch))
		return
	}
	if p.out.Items == nil {
		p.out.Items = make([]Item, 0, n)
	}
	p.arenaHint = min(max(n*160, 256), 16<<10)
	it := newArrayIter(arr)
	for i := 0; ; i++ {
		raw, ok := it.next()
		if !ok {
			return
		}
		if raw[0] != '{' {
			p.refuse("", CodeInvalidFrame, fmt.Sprintf("frame %d is %s, not an object", i, kindOf(raw)))
			continue
		}
		f := readFrame(raw)
		p.frame(&f, where, i)
	}
}

// frame validates one frame and files it under Items, Results, Pings or
// Errors. index is its position in a batch or array, -1 at the top.
func (p *parser) frame(f *frameIn, where, index int) {
	// The id comes first so that every later error can carry it.
	id, problem := p.frameID(f.id)
	if problem != "" {
		p.refuse("", CodeInvalidFrame, at(index)+problem)
		return
	}
	if isNull(f.typ) {
		if p.opts.BareLocations && f.bare && where != inBatch {
			f.data = f.obj
			p.item(f, TypeLocation, id, index)
			return
		}
		p.refuse(id, CodeInvalidFrame, at(index)+"type is missing")
		return
	}
	typ, ok := frameType(f.typ)
	if !ok {
		p.refuse(id, CodeInvalidFrame, at(index)+"type must be a string")
		return
	}
	switch typ {
	case TypeLocation, TypeLog:
		p.item(f, typ, id, index)
	case TypeBatch:
		if where != atTop {
			p.refuse(id, CodeInvalidFrame, at(index)+"a batch cannot hold another batch")
			return
		}
		if isNull(f.items) || f.items[0] != '[' {
			p.refuse(id, CodeInvalidFrame, "batch items must be an array")
			return
		}
		p.list(f.items, inBatch)
	case TypePing:
		if where == inBatch {
			p.refuse(id, CodeInvalidFrame, at(index)+"a batch may hold only location and log frames")
			return
		}
		p.out.Pings++
	case TypeCommandResult:
		if where == inBatch {
			p.refuse(id, CodeInvalidFrame, at(index)+"a batch may hold only location and log frames")
			return
		}
		p.commandResult(f, id, index)
	default:
		p.refuse(id, CodeInvalidFrame, fmt.Sprintf("%sunknown frame type %q", at(index), truncate(typ, 32)))
	}
}

// at prefixes a message with the frame's position in a batch or array.
func at(index int) string {
	if index < 0 {
		return ""
	}
	return "frame " + strconv.Itoa(index) + ": "
}

// frameID reads a frame's optional id. An absent, null or empty id gives ""
// (the caller assigns one if the frame is accepted).
func (p *parser) frameID(raw []byte) (string, string) {
	if isNull(raw) {
		return "", ""
	}
	id, valid, ok := jsonString(raw)
	if !ok {
		return "", "id must be a string"
	}
	if !valid {
		return "", "id is not valid UTF-8"
	}
	if problem := idProblem("id", id, p.l.MaxIDLen); problem != "" {
		return "", problem
	}
	return id, ""
}

// ts reads a frame's optional ts: an integer number of Unix milliseconds
// within [now-MaxPast, now+MaxFuture]. An integral float such as
// 1763900000000.0 is accepted; absent or null means now.
func (p *parser) ts(raw []byte) (int64, string) {
	if isNull(raw) {
		return p.now, ""
	}
	const mustInt = "ts must be an integer number of Unix milliseconds"
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, mustInt
	}
	s := string(raw)
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, mustInt
		}
		ts = int64(f)
	}
	if limit := p.now + p.l.MaxFuture.Milliseconds(); ts > limit {
		return 0, fmt.Sprintf("ts %d is %s in the future, the limit is %s", ts, msDuration(uint64(ts)-uint64(p.now)), p.l.MaxFuture)
	}
	if limit := p.now - p.l.MaxPast.Milliseconds(); ts < limit {
		return 0, fmt.Sprintf("ts %d is %s in the past, the limit is %s", ts, msDuration(uint64(p.now)-uint64(ts)), p.l.MaxPast)
	}
	return ts, ""
}

// msDuration formats a positive difference in milliseconds, which may exceed
// what a time.Duration holds.
func msDuration(ms uint64) string {
	if ms >= math.MaxInt64/uint64(time.Millisecond) {
		return "more than 290 years"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// item validates a location or log frame and appends it to Items.
func (p *parser) item(f *frameIn, typ, id string, index int) {
	ts, problem := p.ts(f.ts)
	if problem != "" {
		p.refuse(id, CodeInvalidFrame, at(index)+problem)
		return
	}
	var data []byte
	if typ == TypeLocation {
		loc, problem := decodeLocation(f.data, false, p.opts.DefaultCRS)
		if problem != "" {
			p.refuse(id, CodeInvalidFrame, at(index)+problem)
			return
		}
		start := p.reserve(256)
		p.arena = appendLocation(p.arena, &loc)
		data = p.arena[start:len(p.arena):len(p.arena)]
	} else {
		lg, problem := decodeLog(f.data, &p.l)
		if problem != "" {
			p.refuse(id, CodeInvalidFrame, at(index)+problem)
			return
		}
		start := p.reserve(lg.maxJSON())
		p.arena = appendLog(p.arena, &lg)
		data = p.arena[start:len(p.arena):len(p.arena)]
	}
	if id == "" {
		id = p.newID()
	}
	p.out.Items = append(p.out.Items, Item{V: ItemVersion, ID: id, Type: typ, TS: ts, Data: data})
}

// reserve makes room for n more bytes in the arena that backs the Data of
// the items, and returns where the next item starts. Sharing one allocation
// among the frames of a batch saves an allocation per frame; each Data is
// cut with a full slice expression so that appending to it cannot clobber
// its neighbour.
func (p *parser) reserve(n int) int {
	if cap(p.arena)-len(p.arena) < n {
		p.arena = make([]byte, 0, max(n, p.arenaHint))
	}
	return len(p.arena)
}

// commandResult validates a command_result frame and appends it to Results.
func (p *parser) commandResult(f *frameIn, id string, index int) {
	if id == "" {
		p.refuse("", CodeInvalidFrame, at(index)+"command_result needs the command's id")
		return
	}
	res := CommandResult{Type: TypeCommandResult, ID: id}
	if !isNull(f.ok) {
		switch string(f.ok) {
		case "true":
			res.OK = true
		case "false":
		default:
			p.refuse(id, CodeInvalidFrame, at(index)+"ok must be true or false")
			return
		}
	}
	if !isNull(f.err) {
		s, valid, ok := jsonString(f.err)
		switch {
		case !ok:
			p.refuse(id, CodeInvalidFrame, at(index)+"error must be a string")
			return
		case !valid:
			p.refuse(id, CodeInvalidFrame, at(index)+"error is not valid UTF-8")
			return
		case len(s) > p.l.MaxMessageLen:
			p.refuse(id, CodeInvalidFrame, fmt.Sprintf("%serror is %d bytes, the limit is %d", at(index), len(s), p.l.MaxMessageLen))
			return
		}
		res.Error = s
	}
	if !isNull(f.data) {
		// Passed on to viewers: it must be valid UTF-8, or a browser would
		// drop the WebSocket carrying it. Compacting also copies it out of
		// the caller's buffer.
		if !utf8.Valid(f.data) {
			p.refuse(id, CodeInvalidFrame, at(index)+"data is not valid UTF-8")
			return
		}
		res.Data = appendCompact(make([]byte, 0, len(f.data)), f.data)
	}
	p.out.Results = append(p.out.Results, res)
}

// randomID names a frame that came without an id when the caller gave no
// newID function.
func randomID() string {
	return "g-" + rand.Text()
}
