package devclient

import (
	"encoding/json"
)

// The types of this file are devclient's own, not the gateway's: a program
// outside this module cannot name the gateway's internal/protocol types, and
// a device needs only its side of each frame. The client converts them to
// and from the wire form (see the README's "Device protocol") at the socket;
// wire_test.go checks that both sides agree.

// Frame types that Send sends.
const (
	TypeLocation = "location" // Data is a Location
	TypeLog      = "log"      // Data is a Log
)

// Frame is a location or log frame to send.
type Frame struct {
	// Type is TypeLocation or TypeLog.
	Type string `json:"type"`
	// ID is the frame's message id, up to 64 bytes; the gateway stores a
	// (device, id) once, and takes a later frame with a stored id for a
	// resend. If empty, Send assigns one that is not reused by another Client
	// or a later run of the program.
	ID string `json:"id"`
	// TS is the device's clock when the frame was taken, in Unix
	// milliseconds; zero means now (the time of Send).
	TS int64 `json:"ts"`
	// Data is a Location or a Log, or any value whose JSON has the same shape.
	Data any `json:"data"`
}

// Location is the data of a location frame. The optional fields are pointers
// so that zero (standing still, heading north, sea level) can be told apart
// from unknown; new(12.5) makes one.
type Location struct {
	Lat      float64  `json:"lat"`                // degrees, [-90, 90]
	Lng      float64  `json:"lng"`                // degrees, [-180, 180]
	Accuracy *float64 `json:"accuracy,omitempty"` // metres, >= 0
	Speed    *float64 `json:"speed,omitempty"`    // metres per second, >= 0
	Heading  *float64 `json:"heading,omitempty"`  // degrees clockwise from north, [0, 360]
	Altitude *float64 `json:"altitude,omitempty"` // metres
	// CRS is the reference system of Lat and Lng: "wgs84" (the default, when
	// empty), "gcj02" or "bd09". The gateway converts to WGS-84 and keeps
	// what was sent.
	CRS string `json:"crs,omitempty"`
}

// Log is the data of a log frame.
type Log struct {
	Level   string         `json:"level"`            // "debug", "info", "warn", "error" or "fatal"
	Message string         `json:"message"`          // up to 8 KiB
	Fields  map[string]any `json:"fields,omitempty"` // optional; its JSON up to 8 KiB
}

// Error codes of FrameError.Code, as the gateway sends them. Others may be
// added; treat an unknown code as a refusal for good.
const (
	CodeInvalidJSON  = "invalid_json"  // the message was not JSON
	CodeInvalidFrame = "invalid_frame" // a field is missing, of the wrong type or out of range
	CodeTooLarge     = "too_large"     // the message is over the gateway's --max-frame
	// The frame may be sent again later with the same id. The client does
	// that by itself: these two never reach Config.OnError.
	CodeRateLimited = "rate_limited" // the device sends faster than its --device-rate
	CodeUnavailable = "unavailable"  // the gateway could not reach its ingest list
)

// FrameError is a frame that the gateway refused for good; it is no longer
// pending and will not be resent.
type FrameError struct {
	// ID is the id of the refused frame, as Send returned it, or empty when
	// the gateway could not read the frame's id.
	ID      string
	Code    string // one of the Code constants
	Message string // for people, not for matching
}

// Error makes a FrameError usable as an error.
func (e FrameError) Error() string {
	if e.ID == "" {
		return "devclient: frame refused: " + e.Code + ": " + e.Message
	}
	return "devclient: frame " + e.ID + " refused: " + e.Code + ": " + e.Message
}

// Command is a downlink command, sent to the device through the gateway's
// POST /api/v1/devices/{id}/commands.
type Command struct {
	ID   string          // the command's id; the client copies it into the result
	Name string          // what to do, as the operator named it
	Args json.RawMessage // the command's arguments as JSON, or nil
}

// CommandResult is the device's answer to a Command; it reaches the operator
// on /ws/live.
type CommandResult struct {
	OK bool
	// Data is any JSON value, or nil. If it is not valid JSON, the client
	// sends OK false with an error saying so instead.
	Data json.RawMessage
	// Error says why the command failed, when OK is false.
	Error string
}
