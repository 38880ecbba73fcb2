package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// ValidateBatch finds the first record of b that no store keeps. Its error
// names the record (kind, index in b, device and id) and wraps ErrInvalid;
// it is nil when every record may be stored. Every store calls it before it
// writes anything, so that all of them refuse the same records; a store adds
// its own rules after it, if it has any. A refused record fails the whole
// batch: the worker then saves the batch record by record and dead-letters
// only those refused.
//
// The rules:
//   - device and id are required;
//   - device, id, level and crs are UTF-8 without NUL bytes. They name or
//     classify a record, so a store that cannot hold a byte (PostgreSQL
//     text holds neither NUL nor invalid UTF-8) may not replace it either.
//     The gateway never sends one: device ids are registered names, message
//     ids refuse invalid UTF-8 and control characters, and level and crs are
//     words of the protocol;
//   - a message is UTF-8; a NUL in it is allowed, and a store that cannot
//     hold it replaces it with U+FFFD, as the gateway does;
//   - fields, when present, are valid JSON in UTF-8;
//   - the numbers of a location are finite: no map can show NaN or Inf
//     (and SQLite would store NaN as NULL).
func ValidateBatch(b Batch) error {
	for i := range b.Locations {
		l := &b.Locations[i]
		if err := validateLocation(l); err != nil {
			return fmt.Errorf("location %d (device %q, id %q): %w: %w", i, l.Device, l.ID, err, ErrInvalid)
		}
	}
	for i := range b.Logs {
		e := &b.Logs[i]
		if err := validateLog(e); err != nil {
			return fmt.Errorf("log %d (device %q, id %q): %w: %w", i, e.Device, e.ID, err, ErrInvalid)
		}
	}
	return nil
}

func validateLocation(l *Location) error {
	if err := validateKey(l.Device, l.ID); err != nil {
		return err
	}
	if err := validateName("crs", l.CRS); err != nil {
		return err
	}
	for _, f := range [...]struct {
		name string
		v    *float64
	}{
		{"lat", &l.Lat}, {"lng", &l.Lng},
		{"accuracy", l.Accuracy}, {"speed", l.Speed}, {"heading", l.Heading},
		{"altitude", l.Altitude}, {"orig_lat", l.OrigLat}, {"orig_lng", l.OrigLng},
	} {
		if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
			return fmt.Errorf("%s is %v", f.name, *f.v)
		}
	}
	return nil
}

func validateLog(e *LogEntry) error {
	if err := validateKey(e.Device, e.ID); err != nil {
		return err
	}
	if err := validateName("level", e.Level); err != nil {
		return err
	}
	if !utf8.ValidString(e.Message) {
		return errors.New("message is not valid UTF-8")
	}
	if len(e.Fields) > 0 {
		// json.Valid lets invalid UTF-8 through inside strings.
		if !json.Valid(e.Fields) {
			return errors.New("fields are not valid JSON")
		}
		if !utf8.Valid(e.Fields) {
			return errors.New("fields are not valid UTF-8")
		}
	}
	return nil
}

// validateKey checks the (device, id) that names a record.
func validateKey(device, id string) error {
	switch {
	case device == "":
		return errors.New("empty device")
	case id == "":
		return errors.New("empty id")
	}
	if err := validateName("device", device); err != nil {
		return err
	}
	return validateName("id", id)
}

// validateName refuses a NUL byte or invalid UTF-8 in a text that names or
// classifies a record.
func validateName(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s holds a NUL byte", what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	return nil
}
