package storage

import "context"

// Geofence kinds.
const (
	GeofenceCircle  = "circle"
	GeofencePolygon = "polygon"
)

// Geofence is an area drawn on the map for the devices of one group.
type Geofence struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Group string `json:"group"`
	Kind  string `json:"kind"` // GeofenceCircle or GeofencePolygon
	// A circle: its centre (WGS-84) and radius in metres.
	Lat     float64 `json:"lat,omitempty"`
	Lng     float64 `json:"lng,omitempty"`
	RadiusM float64 `json:"radius_m,omitempty"`
	// A polygon: its outer ring as [lng, lat] pairs (GeoJSON order, WGS-84),
	// at least 3 distinct points; closing the ring is optional.
	Ring      [][2]float64 `json:"ring,omitempty"`
	CreatedAt int64        `json:"created_at"` // Unix ms
	UpdatedAt int64        `json:"updated_at"` // Unix ms
}

// Alert rule kinds.
const (
	RuleGeofenceEnter = "geofence_enter"
	RuleGeofenceExit  = "geofence_exit"
	RuleOffline       = "offline"
	RuleSpeed         = "speed"
	RuleLog           = "log"
)

// AlertRule says which events of the devices of Group raise an alert.
type AlertRule struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Group string `json:"group"`
	Kind  string `json:"kind"` // one of the Rule* kinds
	// Geofence is the geofence of a geofence_enter or geofence_exit rule.
	Geofence string `json:"geofence,omitempty"`
	// OfflineMinutes: an offline rule fires once when a device has been
	// silent (no frame reached a worker) this long.
	OfflineMinutes int `json:"offline_minutes,omitempty"`
	// SpeedKMH: a speed rule fires once per episode of locations whose
	// speed is above it (an episode ends at a location at or below it).
	SpeedKMH float64 `json:"speed_kmh,omitempty"`
	// Level and Text: a log rule fires for each log at or above Level (when
	// set) whose message contains Text, case-insensitively (when set).
	Level     string `json:"level,omitempty"`
	Text      string `json:"text,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// Webhook receives, by HTTP POST, every alert of the devices of Group ("" for
// every group). Secret signs each body (the worker's webhook sender); it is
// stored as given, since the sender needs it, and never listed by the API.
type Webhook struct {
	ID        string `json:"id"`
	URL       string `json:"url"`
	Group     string `json:"group"`
	Secret    string `json:"-"`
	CreatedAt int64  `json:"created_at"`
}

// GeofenceEvent is a device entering or leaving a geofence, archived.
type GeofenceEvent struct {
	// ID is deterministic: the same crossing computed twice (a batch
	// redelivered, two workers) has the same id and is stored once.
	ID       string  `json:"id"`
	Device   string  `json:"device"`
	Geofence string  `json:"geofence"`
	Type     string  `json:"type"` // "enter" or "exit"
	TS       int64   `json:"ts"`   // the location's device time, Unix ms
	Location string  `json:"location"`
	Lat      float64 `json:"lat"`
	Lng      float64 `json:"lng"`
}

// Alert is an alert rule matched by one event, archived. ID is
// deterministic (rule, device and cause), so that an event raises its alert
// once however often it is evaluated.
type Alert struct {
	ID        string  `json:"id"`
	Rule      string  `json:"rule"`
	Kind      string  `json:"kind"` // the rule's kind
	Device    string  `json:"device"`
	Group     string  `json:"group"`
	TS        int64   `json:"ts"`    // when the event happened, Unix ms
	Cause     string  `json:"cause"` // the location or log id, or the offline mark
	Message   string  `json:"message"`
	Lat       float64 `json:"lat,omitempty"`
	Lng       float64 `json:"lng,omitempty"`
	CreatedAt int64   `json:"created_at"`
}

// Transition proposes that a device's state under Key ("geofence:ID",
// "speed:RULE", "offline:RULE") is On as of TS. It applies only if TS is
// later than the state stored for the key (so a late, older location
// changes nothing); a key with no state is off. When it flips the state,
// Event (if set) and Alerts are stored with it, in the same transaction.
type Transition struct {
	Device string
	Key    string
	On     bool
	TS     int64
	Event  *GeofenceEvent
	Alerts []Alert
}

// Delivery is one alert to send to one webhook, claimed by a worker.
type Delivery struct {
	ID       string // alert id + webhook id
	Alert    Alert
	Webhook  Webhook
	Attempts int // attempts made before this claim
}

// EventQuery selects archived geofence events or alerts, newest first.
// Devices, when not nil, restricts to those devices; empty fields do not filter.
type EventQuery struct {
	Device  string
	Devices []string
	FromMS  int64
	ToMS    int64
	Limit   int
	Cursor  string
}

// Alerting is the part of the store that keeps geofences, alert rules,
// webhooks and what they raised. Store embeds it.
type Alerting interface {
	// CreateGeofence stores a new geofence (ID set by the caller or, when
	// empty, by the store); ErrInvalid for a bad shape or group, ErrExists
	// for a taken id. UpdateGeofence replaces name and shape, ErrNotFound if
	// unknown. DeleteGeofence also deletes its rules and states.
	CreateGeofence(ctx context.Context, g Geofence) (Geofence, error)
	UpdateGeofence(ctx context.Context, g Geofence) (Geofence, error)
	DeleteGeofence(ctx context.Context, id string) error
	Geofence(ctx context.Context, id string) (Geofence, error)
	// Geofences lists geofences ordered by id; groups, when not nil,
	// restricts to those groups.
	Geofences(ctx context.Context, groups []string) ([]Geofence, error)

	CreateAlertRule(ctx context.Context, r AlertRule) (AlertRule, error)
	DeleteAlertRule(ctx context.Context, id string) error
	AlertRule(ctx context.Context, id string) (AlertRule, error)
	AlertRules(ctx context.Context, groups []string) ([]AlertRule, error)

	CreateWebhook(ctx context.Context, w Webhook) (Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	// Webhooks lists webhooks, secrets included; groups, when not nil,
	// restricts to those groups (a webhook of "" is listed only for nil).
	Webhooks(ctx context.Context, groups []string) ([]Webhook, error)

	// ApplyAlerts, in one transaction, applies the transitions in order of
	// TS and stores the events and alerts of those that flipped, then
	// stores the alerts given alone (log rules); an alert or event whose id
	// is stored already is skipped. Each new alert is queued for delivery to
	// every webhook of its group and of "". It returns the events and
	// alerts that were new.
	ApplyAlerts(ctx context.Context, ts []Transition, alerts []Alert) ([]GeofenceEvent, []Alert, error)
	// GeofenceEvents and Alerts return one page, newest first, and the
	// cursor of the next ("" on the last).
	GeofenceEvents(ctx context.Context, q EventQuery) ([]GeofenceEvent, string, error)
	Alerts(ctx context.Context, q EventQuery) ([]Alert, string, error)

	// ClaimDeliveries leases up to limit deliveries that are due at nowMS
	// to worker for leaseMS: no other claim gets them until the lease ends.
	ClaimDeliveries(ctx context.Context, worker string, nowMS, leaseMS int64, limit int) ([]Delivery, error)
	// FinishDelivery records an attempt of a claimed delivery: delivered,
	// or failed with errText and due again at retryAtMS (0: give up).
	FinishDelivery(ctx context.Context, id string, delivered bool, errText string, retryAtMS int64) error
}
