package protocol

import (
	"time"
)

// Default limits, used for every Limits field left at zero (or set negative).
const (
	DefaultMaxFrameBytes = 64 << 10            // one WebSocket message or HTTP body
	DefaultMaxIDLen      = 64                  // bytes of a message id
	DefaultMaxBatch      = 500                 // frames in one batch frame or top-level array
	DefaultMaxMessageLen = 8 << 10             // bytes of a log message, after JSON unescaping
	DefaultMaxFieldsLen  = 8 << 10             // bytes of the raw JSON of log fields
	DefaultMaxFuture     = 10 * time.Minute    // how far ahead of the receive time ts may be
	DefaultMaxPast       = 30 * 24 * time.Hour // how far behind the receive time ts may be
)

// MaxDeviceIDLen bounds the device id of a queue item (DecodeItem). Device ids
// come from registration, not from frames, so this only guards against a
// broken third-party producer.
const MaxDeviceIDLen = 128

// Limits bound what a device frame may contain. The zero value is ready to
// use: every zero (or negative) field takes the Default* value of the same
// name.
type Limits struct {
	// MaxFrameBytes bounds one WebSocket message or one HTTP body. Callers
	// should refuse larger input before reading it all; Parse checks len(raw)
	// again and answers too_large.
	MaxFrameBytes int
	// MaxIDLen bounds a frame's "id" in bytes; longer ids are invalid_frame.
	MaxIDLen int
	// MaxBatch bounds the frames in one batch frame or top-level array; more
	// refuse the whole message with too_large.
	MaxBatch int
	// MaxMessageLen bounds a log message in bytes (invalid_frame beyond it).
	MaxMessageLen int
	// MaxFieldsLen bounds the raw JSON of a log's fields (invalid_frame beyond it).
	MaxFieldsLen int
	// MaxFuture: a ts later than now+MaxFuture is invalid_frame.
	MaxFuture time.Duration
	// MaxPast: a ts earlier than now-MaxPast is invalid_frame.
	MaxPast time.Duration
}

// WithDefaults returns l with every zero or negative field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if l.MaxIDLen <= 0 {
		l.MaxIDLen = DefaultMaxIDLen
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	if l.MaxMessageLen <= 0 {
		l.MaxMessageLen = DefaultMaxMessageLen
	}
	if l.MaxFieldsLen <= 0 {
		l.MaxFieldsLen = DefaultMaxFieldsLen
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = DefaultMaxFuture
	}
	if l.MaxPast <= 0 {
		l.MaxPast = DefaultMaxPast
	}
	return l
}

// FrameError is a refused frame. Code is one of the Code* constants; ID is
// the frame's id when it could be read, so that the device can match the
// error to what it sent, and empty otherwise.
type FrameError struct {
	ID      string
	Code    string
	Message string
}

func (e FrameError) Error() string {
	if e.ID != "" {
		return e.Code + ": frame " + e.ID + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// Frame returns the {"type":"error"} frame that tells the device about e.
func (e FrameError) Frame() ErrorFrame {
	return ErrorFrame{Type: TypeError, ID: e.ID, Code: e.Code, Message: e.Message}
}
