package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/devtrack/devtrack/internal/protocol"
)

// Bounds of what ValidateGeofence, ValidateAlertRule and ValidateWebhook
// accept; every store calls them before it writes, so all refuse alike.
const (
	MaxGeofenceRadiusM = 1_000_000 // 1000 km
	MaxGeofencePoints  = 10_000
	MaxAlertNameLen    = 200 // characters of a geofence's or rule's name
	MaxOfflineMinutes  = 7 * 24 * 60
	MaxSpeedKMH        = 2000
	MaxLogRuleText     = 500
	MaxWebhookURLLen   = 2000
	MaxWebhookSecret   = 500
)

// NewAlertingID is the id a store gives a geofence, rule or webhook created
// without one: 16 random hex digits.
func NewAlertingID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DeliveryID is the id of the delivery of an alert to a webhook.
func DeliveryID(alert, webhook string) string { return alert + ":" + webhook }

// ValidateGeofence refuses, wrapping ErrInvalid, a geofence no store keeps:
// an id that is not a ValidName (when set), a group that is not one, a name
// that is not UTF-8 or too long, a circle whose centre is no WGS-84 point or
// whose radius is not in (0, 1000 km], a polygon of fewer than 3 distinct
// points or with a point that is no WGS-84 [lng, lat].
func ValidateGeofence(g Geofence) error {
	if err := validateGeofence(g); err != nil {
		return fmt.Errorf("geofence %q: %w: %w", g.ID, err, ErrInvalid)
	}
	return nil
}

func validateGeofence(g Geofence) error {
	if g.ID != "" && !ValidName(g.ID) {
		return errors.New("bad id")
	}
	if !ValidName(g.Group) {
		return fmt.Errorf("bad group %q", g.Group)
	}
	if err := validAlertName(g.Name); err != nil {
		return err
	}
	switch g.Kind {
	case GeofenceCircle:
		if !validLatLng(g.Lat, g.Lng) {
			return fmt.Errorf("centre %v, %v is not a WGS-84 point", g.Lat, g.Lng)
		}
		if !(g.RadiusM > 0 && g.RadiusM <= MaxGeofenceRadiusM) {
			return fmt.Errorf("radius %v m: want more than 0 and at most %d", g.RadiusM, MaxGeofenceRadiusM)
		}
		if len(g.Ring) > 0 {
			return errors.New("a circle has no ring")
		}
	case GeofencePolygon:
		if len(g.Ring) > MaxGeofencePoints {
			return fmt.Errorf("%d points: at most %d", len(g.Ring), MaxGeofencePoints)
		}
		distinct := map[[2]float64]bool{}
		for i, p := range g.Ring {
			if !validLatLng(p[1], p[0]) {
				return fmt.Errorf("point %d [%v, %v] is not a WGS-84 [lng, lat]", i, p[0], p[1])
			}
			distinct[p] = true
		}
		if len(distinct) < 3 {
			return fmt.Errorf("a polygon needs at least 3 distinct points, has %d", len(distinct))
		}
		if g.RadiusM != 0 {
			return errors.New("a polygon has no radius")
		}
	default:
		return fmt.Errorf("kind %q: want %s or %s", g.Kind, GeofenceCircle, GeofencePolygon)
	}
	return nil
}

func validLatLng(lat, lng float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lng) && lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180
}

func validAlertName(s string) error {
	switch {
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return errors.New("name is not UTF-8 text")
	case utf8.RuneCountInString(s) > MaxAlertNameLen:
		return fmt.Errorf("name longer than %d characters", MaxAlertNameLen)
	}
	return nil
}

// ValidateAlertRule refuses, wrapping ErrInvalid, a rule no store keeps: a
// bad id (when set), group or name, an unknown kind, or parameters that do
// not fit it: geofence_enter/exit name a Geofence (the store checks that it
// exists in the rule's group); offline has OfflineMinutes in [1, 7 days];
// speed has SpeedKMH in (0, 2000]; log has a Level of protocol.Levels or a
// Text (or both), Text at most 500 bytes. Parameters of other kinds must be
// empty.
func ValidateAlertRule(r AlertRule) error {
	if err := validateAlertRule(r); err != nil {
		return fmt.Errorf("alert rule %q: %w: %w", r.ID, err, ErrInvalid)
	}
	return nil
}

func validateAlertRule(r AlertRule) error {
	if r.ID != "" && !ValidName(r.ID) {
		return errors.New("bad id")
	}
	if !ValidName(r.Group) {
		return fmt.Errorf("bad group %q", r.Group)
	}
	if err := validAlertName(r.Name); err != nil {
		return err
	}
	var geofence, offline, speed, log bool
	switch r.Kind {
	case RuleGeofenceEnter, RuleGeofenceExit:
		if !ValidName(r.Geofence) {
			return fmt.Errorf("bad geofence %q", r.Geofence)
		}
		geofence = true
	case RuleOffline:
		if r.OfflineMinutes < 1 || r.OfflineMinutes > MaxOfflineMinutes {
			return fmt.Errorf("offline_minutes %d: want 1 to %d", r.OfflineMinutes, MaxOfflineMinutes)
		}
		offline = true
	case RuleSpeed:
		if !(r.SpeedKMH > 0 && r.SpeedKMH <= MaxSpeedKMH) {
			return fmt.Errorf("speed_kmh %v: want more than 0 and at most %d", r.SpeedKMH, MaxSpeedKMH)
		}
		speed = true
	case RuleLog:
		if r.Level == "" && r.Text == "" {
			return errors.New("a log rule needs a level or a text")
		}
		if r.Level != "" && !slices.Contains(protocol.Levels, r.Level) {
			return fmt.Errorf("level %q: want one of %s", r.Level, strings.Join(protocol.Levels, ", "))
		}
		if !utf8.ValidString(r.Text) || strings.IndexByte(r.Text, 0) >= 0 || len(r.Text) > MaxLogRuleText {
			return fmt.Errorf("text: want UTF-8 of at most %d bytes", MaxLogRuleText)
		}
		log = true
	default:
		return fmt.Errorf("kind %q: want %s, %s, %s, %s or %s", r.Kind,
			RuleGeofenceEnter, RuleGeofenceExit, RuleOffline, RuleSpeed, RuleLog)
	}
	switch {
	case !geofence && r.Geofence != "":
		return errors.New("geofence given to a rule of another kind")
	case !offline && r.OfflineMinutes != 0:
		return errors.New("offline_minutes given to a rule of another kind")
	case !speed && r.SpeedKMH != 0:
		return errors.New("speed_kmh given to a rule of another kind")
	case !log && (r.Level != "" || r.Text != ""):
		return errors.New("level or text given to a rule of another kind")
	}
	return nil
}

// ValidateWebhook refuses, wrapping ErrInvalid, a webhook no store keeps: a
// bad id (when set), a group that is neither "" (every group) nor a
// ValidName, a URL that is not absolute http or https with a host, or a
// secret that is not UTF-8 text of at most 500 bytes.
func ValidateWebhook(w Webhook) error {
	if err := validateWebhook(w); err != nil {
		return fmt.Errorf("webhook %q: %w: %w", w.ID, err, ErrInvalid)
	}
	return nil
}

func validateWebhook(w Webhook) error {
	if w.ID != "" && !ValidName(w.ID) {
		return errors.New("bad id")
	}
	if w.Group != "" && !ValidName(w.Group) {
		return fmt.Errorf("bad group %q", w.Group)
	}
	if len(w.URL) > MaxWebhookURLLen || !utf8.ValidString(w.URL) {
		return errors.New("url too long or not UTF-8")
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an http or https URL", w.URL)
	}
	if len(w.Secret) > MaxWebhookSecret || !utf8.ValidString(w.Secret) || strings.IndexByte(w.Secret, 0) >= 0 {
		return fmt.Errorf("secret: want UTF-8 text of at most %d bytes", MaxWebhookSecret)
	}
	return nil
}

// ValidateAlerting refuses, wrapping ErrInvalid, transitions and alerts that
// ApplyAlerts cannot store: an empty device or key, or text that is not
// UTF-8 (PostgreSQL holds neither NUL nor invalid UTF-8), or an alert or
// event without id.
func ValidateAlerting(ts []Transition, alerts []Alert) error {
	for i, t := range ts {
		if t.Device == "" || t.Key == "" || !cleanText(t.Device, t.Key) {
			return fmt.Errorf("transition %d (device %q, key %q): empty or not UTF-8: %w", i, t.Device, t.Key, ErrInvalid)
		}
		if e := t.Event; e != nil && (e.ID == "" || !cleanText(e.ID, e.Device, e.Geofence, e.Type, e.Location)) {
			return fmt.Errorf("transition %d: event %q: empty id or text not UTF-8: %w", i, e.ID, ErrInvalid)
		}
		for _, a := range t.Alerts {
			if err := validAlert(a); err != nil {
				return fmt.Errorf("transition %d: %w", i, err)
			}
		}
	}
	for _, a := range alerts {
		if err := validAlert(a); err != nil {
			return err
		}
	}
	return nil
}

func validAlert(a Alert) error {
	if a.ID == "" || !cleanText(a.ID, a.Rule, a.Kind, a.Device, a.Group, a.Cause, a.Message) {
		return fmt.Errorf("alert %q: empty id or text not UTF-8: %w", a.ID, ErrInvalid)
	}
	return nil
}

func cleanText(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}
