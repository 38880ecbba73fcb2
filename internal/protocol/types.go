package protocol

import (
	"encoding/json"
)

// Frame types, device to gateway and gateway to device.
const (
	TypeLocation      = "location"
	TypeLog           = "log"
	TypeBatch         = "batch"
	TypePing          = "ping"
	TypePong          = "pong"
	TypeAck           = "ack"
	TypeError         = "error"
	TypeCommand       = "command"
	TypeCommandResult = "command_result"
)

// Error codes sent to devices in {"type":"error"} frames and in HTTP error
// bodies. They are part of the contract: add, never rename.
const (
	CodeInvalidJSON  = "invalid_json"  // not JSON, or not a JSON object/array where one is needed
	CodeInvalidFrame = "invalid_frame" // JSON, but a field is missing, of the wrong type or out of range
	CodeTooLarge     = "too_large"     // frame, batch or body beyond its size limit
	CodeRateLimited  = "rate_limited"  // connection over its frame rate; retry later with the same id
	CodeUnavailable  = "unavailable"   // the ingest list could not be reached; retry later with the same id
	CodeUnauthorized = "unauthorized"  // HTTP only: missing, wrong or revoked token
	CodeForbidden    = "forbidden"     // authenticated but not allowed
	CodeBadRequest   = "bad_request"   // HTTP only: bad query parameters
	CodeNotFound     = "not_found"     // HTTP only
	CodeInternal     = "internal"      // a bug or an unexpected failure on our side
	// Viewer protocol (/ws/live) only.
	CodeTooManyDevices     = "too_many_devices"     // a subscribe would watch more devices than one socket may
	CodeTooManyConnections = "too_many_connections" // HTTP 429 at the handshake: the user has its most live sockets open
)

// ItemVersion is the current version of the queue item format.
const ItemVersion = 1

// Item is one accepted device frame as it travels on the ingest list, from the
// gateway (or any other producer that LPUSHes onto the list) to the workers.
// Its JSON form is documented in the README.
type Item struct {
	V          int             `json:"v"`
	Device     string          `json:"device"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`        // TypeLocation or TypeLog
	TS         int64           `json:"ts"`          // device clock, Unix milliseconds
	ReceivedAt int64           `json:"received_at"` // gateway clock, Unix milliseconds
	Gateway    string          `json:"gateway,omitempty"`
	Data       json.RawMessage `json:"data"` // Location or Log, normalised
}

// Location is the data of a location frame. Lat and Lng are always WGS-84
// once the gateway has normalised the frame; when the device reported another
// reference system, CRS names it and OrigLat/OrigLng keep what it sent.
type Location struct {
	Lat      float64  `json:"lat"`
	Lng      float64  `json:"lng"`
	Accuracy *float64 `json:"accuracy,omitempty"` // metres
	Speed    *float64 `json:"speed,omitempty"`    // metres per second
	Heading  *float64 `json:"heading,omitempty"`  // degrees clockwise from north, [0, 360)
	Altitude *float64 `json:"altitude,omitempty"` // metres
	CRS      string   `json:"crs,omitempty"`      // "wgs84" (default), "gcj02" or "bd09" as reported
	OrigLat  *float64 `json:"orig_lat,omitempty"` // as reported, when CRS is not wgs84
	OrigLng  *float64 `json:"orig_lng,omitempty"`
}

// Log is the data of a log frame.
type Log struct {
	Level   string          `json:"level"` // one of Levels
	Message string          `json:"message"`
	Fields  json.RawMessage `json:"fields,omitempty"` // a JSON object or absent
}

// Levels are the accepted log levels, from least to most severe.
var Levels = []string{"debug", "info", "warn", "error", "fatal"}

// CRS names.
const (
	CRSWGS84 = "wgs84"
	CRSGCJ02 = "gcj02"
	CRSBD09  = "bd09"
)

// Ack is sent to a device once frames are durably on the ingest list.
type Ack struct {
	Type string   `json:"type"` // TypeAck
	IDs  []string `json:"ids"`
}

// ErrorFrame is sent to a device for a refused frame.
type ErrorFrame struct {
	Type    string `json:"type"` // TypeError
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Command is a downlink command sent to a device.
type Command struct {
	Type string          `json:"type"` // TypeCommand
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// CommandResult is a device's answer to a Command.
type CommandResult struct {
	Type  string          `json:"type"` // TypeCommandResult
	ID    string          `json:"id"`
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error string          `json:"error,omitempty"`
}
