// Package storage defines the archive that workers write and the query API
// reads: devices, users and their groups, locations and logs. Implementations
// live in sub-packages (storage/sqlite); Open picks one from a DSN.
// All of them pass the conformance suite in storage/storagetest.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
)

// Sentinel errors that callers branch on. Implementations wrap them.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrRevoked  = errors.New("revoked")
	// ErrInvalid marks a record that can never be stored (a permanent error):
	// the worker dead-letters it at once instead of retrying.
	ErrInvalid = errors.New("invalid record")
	// ErrBadCursor is returned for a pagination cursor that this store did not issue.
	ErrBadCursor = errors.New("bad cursor")
	// ErrUnavailable marks a failure of the store itself, one that any write
	// would get now: a full or read-only disk, an I/O error, a lock held too
	// long, a database that is down or does not answer in time. It says
	// nothing about the records: the worker waits and retries the same
	// batch, and never counts it against them.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSchemaTooNew is returned by Migrate and SchemaVersion when the
	// database holds a schema newer than this binary knows: it was migrated
	// by a later release. Nothing is changed; run that release.
	ErrSchemaTooNew = errors.New("schema is newer than this binary knows")
)

// Kind names the kind of archived record that retention and export address.
type Kind string

// Record kinds.
const (
	KindLocations Kind = "locations"
	KindLogs      Kind = "logs"
)

// Roles of users.
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
)

// Device is a registered device. Its token is stored only as a SHA-256 hash.
type Device struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Group     string `json:"group"`
	CreatedAt int64  `json:"created_at"`           // Unix ms
	RevokedAt int64  `json:"revoked_at,omitempty"` // Unix ms, 0 when active
	// TokenRotatedAt is when the token was last replaced (RotateDeviceToken),
	// Unix ms, 0 if never. It changes at every rotation.
	TokenRotatedAt int64 `json:"token_rotated_at,omitempty"`
	// CRS is the coordinate system of the device's locations that name
	// none: "" (WGS-84), "gcj02" or "bd09" (ValidDeviceCRS). A mini-program
	// reports GCJ-02 and cannot say so in the object it posts.
	CRS string `json:"crs,omitempty"`
}

// ParseDeviceCRS reads a crs as people write it, wgs84 (or empty), gcj02 or
// bd09 in any case, into its Device.CRS form; false for anything else.
func ParseDeviceCRS(s string) (string, bool) {
	switch c := strings.ToLower(s); c {
	case "", "wgs84":
		return "", true
	case "gcj02", "bd09":
		return c, true
	}
	return "", false
}

// ValidDeviceCRS reports whether crs can be a Device.CRS.
func ValidDeviceCRS(crs string) bool {
	switch crs {
	case "", "gcj02", "bd09":
		return true
	}
	return false
}

// LegacyKey tells which device holds a legacy firmware key and when it was
// issued (devtrack device legacy-key). The key authenticates firmware that
// cannot send a token (the gateway's legacy listener, ?key=); like tokens it
// is stored only as a SHA-256 hash.
type LegacyKey struct {
	Device string `json:"device"`
	// IssuedAt is when the key was issued, Unix ms. It changes at every new
	// key of the device, so a gateway can tell a connection opened with the
	// key before.
	IssuedAt int64 `json:"issued_at"`
}

// Share is a share link: whoever holds its URL may watch one device's live
// position until ExpiresAt, unless it is revoked first. Its secret (in the
// URL) is stored only as a SHA-256 hash, like device tokens.
type Share struct {
	ID        string `json:"id"`
	Device    string `json:"device"`
	CreatedBy string `json:"created_by"`           // the user's name
	CreatedAt int64  `json:"created_at"`           // Unix ms
	ExpiresAt int64  `json:"expires_at"`           // Unix ms
	RevokedAt int64  `json:"revoked_at,omitempty"` // Unix ms, 0 while not revoked
}

// ActiveAt reports whether the share works at nowMS (Unix ms): not revoked
// and not expired.
func (s Share) ActiveAt(nowMS int64) bool { return s.RevokedAt == 0 && nowMS < s.ExpiresAt }

// User is an operator or admin of the web UI and the query API.
type User struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Groups    []string `json:"groups"`
	CreatedAt int64    `json:"created_at"`
	// RevokedAt is when the API token was last replaced (RevokeUser), Unix
	// ms, 0 if never. It changes at every revoke, so a gateway can tell a
	// connection or session opened before it.
	RevokedAt int64 `json:"revoked_at,omitempty"`
	// PasswordChangedAt is when the password was last set or removed
	// (SetUserPassword), Unix ms, 0 if never. It changes at every change,
	// so a gateway can tell a web session opened before it.
	PasswordChangedAt int64 `json:"password_changed_at,omitempty"`
}

// Location is one archived position. Times are Unix milliseconds.
type Location struct {
	Device     string   `json:"device"`
	ID         string   `json:"id"`
	TS         int64    `json:"ts"`
	ReceivedAt int64    `json:"received_at"`
	Lat        float64  `json:"lat"`
	Lng        float64  `json:"lng"`
	Accuracy   *float64 `json:"accuracy,omitempty"`
	Speed      *float64 `json:"speed,omitempty"`
	Heading    *float64 `json:"heading,omitempty"`
	Altitude   *float64 `json:"altitude,omitempty"`
	CRS        string   `json:"crs,omitempty"`
	OrigLat    *float64 `json:"orig_lat,omitempty"`
	OrigLng    *float64 `json:"orig_lng,omitempty"`
}

// LogEntry is one archived log line. Times are Unix milliseconds.
type LogEntry struct {
	Device     string          `json:"device"`
	ID         string          `json:"id"`
	TS         int64           `json:"ts"`
	ReceivedAt int64           `json:"received_at"`
	Level      string          `json:"level"`
	Message    string          `json:"message"`
	Fields     json.RawMessage `json:"fields,omitempty"`
}

// Batch is what a worker writes in one transaction.
type Batch struct {
	Locations []Location
	Logs      []LogEntry
}

// Len is the number of records in the batch.
func (b Batch) Len() int { return len(b.Locations) + len(b.Logs) }

// SaveResult tells how many records of a batch were new; the rest were
// duplicates of (device, id) pairs already stored.
type SaveResult struct {
	Inserted   int
	Duplicates int
}

// LocationQuery selects a device's locations, newest first.
// FromMS/ToMS are inclusive bounds on the device timestamp; 0 means unbounded.
type LocationQuery struct {
	Device string
	FromMS int64
	ToMS   int64
	Limit  int    // 1..1000
	Cursor string // from a previous page; empty for the first
}

// LogQuery selects logs, newest first. Empty fields do not filter.
// Devices, when not nil, restricts the result to those devices (an operator's
// visible set); an empty non-nil slice matches nothing.
type LogQuery struct {
	Device  string
	Devices []string
	Level   string // exact level
	Text    string // search terms, all must occur in the message: see SearchTerms
	FromMS  int64
	ToMS    int64
	Limit   int
	Cursor  string
}

// Store is the whole archive. Consumers declare the smaller interfaces they
// need; this one is what Open returns and the conformance suite checks.
type Store interface {
	// Migrate creates or upgrades the schema. It is safe to call at every
	// start, from several processes at once. It fails with ErrSchemaTooNew,
	// changing nothing, when the database is newer than this binary.
	Migrate(ctx context.Context) error
	// SchemaVersion reports the version of the schema in the database (0
	// for an empty one) and the newest version this binary knows.
	SchemaVersion(ctx context.Context) (current, known int64, err error)
	Close() error

	// SaveBatch stores a batch in one transaction. It is idempotent on
	// (device, id) per kind: a record already stored is counted as a duplicate
	// and left unchanged. Errors wrap ErrInvalid when a record can never be
	// stored (ValidateBatch, the same rules in every store) and
	// ErrUnavailable when the store cannot write at all.
	SaveBatch(ctx context.Context, b Batch) (SaveResult, error)
	// CheckWrite makes the smallest durable write the store knows (one row,
	// committed). An error, wrapping ErrUnavailable, means that no write can
	// succeed now; it is how a failure that SaveBatch could not classify is
	// told apart from a fault of the records.
	CheckWrite(ctx context.Context) error

	// AddDevice registers a device with the SHA-256 hash of its token.
	// It fails with ErrExists if the id is taken (even by a revoked device).
	AddDevice(ctx context.Context, d Device, tokenHash []byte) error
	// DeviceByTokenHash returns the active device holding the token, ErrNotFound
	// if none, ErrRevoked if the device was revoked.
	DeviceByTokenHash(ctx context.Context, tokenHash []byte) (Device, error)
	Device(ctx context.Context, id string) (Device, error)
	// Devices lists devices ordered by id; groups, when not nil, restricts to those groups.
	Devices(ctx context.Context, groups []string) ([]Device, error)
	// RevokeDevice marks a device revoked now; ErrNotFound if unknown.
	RevokeDevice(ctx context.Context, id string) error
	// ReenrollDevice gives a revoked device (d.ID) a new token and d's name,
	// group and crs, and makes it active again; its archive stays. It is
	// ErrExists for an active device and ErrNotFound for an unknown one.
	ReenrollDevice(ctx context.Context, d Device, tokenHash []byte) (Device, error)
	// RevokedSince lists devices revoked at or after sinceMS.
	RevokedSince(ctx context.Context, sinceMS int64) ([]string, error)
	// RotateDeviceToken replaces the device's token hash, so the old token
	// stops working at once, and sets TokenRotatedAt to now (later than its
	// previous value). ErrNotFound if unknown, ErrRevoked if revoked.
	RotateDeviceToken(ctx context.Context, id string, tokenHash []byte) (Device, error)
	// SetDeviceCRS sets the coordinate system of the device's locations
	// that name none (Device.CRS), revoked or not: ErrNotFound for an
	// unknown device, ErrInvalid for a crs ValidDeviceCRS refuses.
	SetDeviceCRS(ctx context.Context, id, crs string) (Device, error)
	// DevicesRotatedSince lists the devices whose token was replaced at or
	// after sinceMS, ordered by id.
	DevicesRotatedSince(ctx context.Context, sinceMS int64) ([]Device, error)

	// SetLegacyKey gives an active device a new legacy firmware key: the
	// hash replaces the device's previous one, which stops working at once,
	// and IssuedAt is now (later than the previous key's). The device's token
	// is not touched. ErrNotFound if the device is unknown, ErrRevoked if it
	// is revoked, ErrExists if another device holds the hash.
	SetLegacyKey(ctx context.Context, device string, keyHash []byte) (LegacyKey, error)
	// DeviceByLegacyKey returns the device holding the legacy key and when
	// the key was issued; ErrNotFound if none, ErrRevoked if the device was
	// revoked.
	DeviceByLegacyKey(ctx context.Context, keyHash []byte) (Device, LegacyKey, error)
	// LegacyKeysIssuedSince lists the legacy keys issued at or after sinceMS,
	// ordered by device.
	LegacyKeysIssuedSince(ctx context.Context, sinceMS int64) ([]LegacyKey, error)

	// AddUser creates a user with the hash of its API token and an optional
	// password hash (nil for none). It returns the user with its id set.
	AddUser(ctx context.Context, u User, tokenHash, passwordHash []byte) (User, error)
	UserByTokenHash(ctx context.Context, tokenHash []byte) (User, error)
	// UserByName returns the user and its password hash (nil if none).
	UserByName(ctx context.Context, name string) (User, []byte, error)
	// Users lists every user ordered by name.
	Users(ctx context.Context) ([]User, error)
	// RevokeUser replaces the user's API token hash, so the old token stops
	// working at once, and sets RevokedAt to now (later than its previous
	// value). The password is kept. ErrNotFound if unknown.
	RevokeUser(ctx context.Context, name string, tokenHash []byte) (User, error)
	// DeleteUser removes the user and its groups; ErrNotFound if unknown.
	DeleteUser(ctx context.Context, name string) error
	// AccountAdmin: edit users, set passwords, rename, move, enrol and
	// delete devices (admin.go).
	AccountAdmin

	// CreateShare stores a share link of an active device with the hash of
	// its secret; CreatedAt defaults to now. ErrNotFound for an unknown
	// device, ErrRevoked for a revoked one, ErrExists if the id or the hash
	// is taken, ErrInvalid for an empty id or hash or an ExpiresAt not after
	// CreatedAt.
	CreateShare(ctx context.Context, sh Share, tokenHash []byte) (Share, error)
	// ShareByTokenHash returns the share holding the secret whatever its
	// state (the caller checks ActiveAt); ErrNotFound if none.
	ShareByTokenHash(ctx context.Context, tokenHash []byte) (Share, error)
	// Share returns a share by id whatever its state; ErrNotFound if none.
	Share(ctx context.Context, id string) (Share, error)
	// RevokeShare marks the share revoked now and returns it; a share
	// revoked before keeps its first RevokedAt. ErrNotFound if unknown.
	RevokeShare(ctx context.Context, id string) (Share, error)
	// SharesOf lists the device's shares active at nowMS (Share.ActiveAt),
	// oldest first.
	SharesOf(ctx context.Context, device string, nowMS int64) ([]Share, error)

	// Locations and Logs return one page, newest first, and the cursor of the
	// next page ("" on the last page).
	Locations(ctx context.Context, q LocationQuery) ([]Location, string, error)
	Logs(ctx context.Context, q LogQuery) ([]LogEntry, string, error)

	// Purge removes records of kind whose ts is before beforeMS (Unix ms),
	// at most about limit rows per call so that a caller can pace it, and
	// returns how many it removed; 0 means none is left. A store may drop a
	// whole time partition in one call when every row of it is older.
	Purge(ctx context.Context, kind Kind, beforeMS int64, limit int) (int64, error)
	// DeleteRecords removes the records of kind of one device with the given
	// ids (what an export has written and verified) and returns how many it
	// removed. Ids not stored are ignored.
	DeleteRecords(ctx context.Context, kind Kind, device string, ids []string) (int64, error)

	// Alerting: geofences, alert rules, webhooks and what they raise (alerts.go).
	Alerting
}
