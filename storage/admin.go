package storage

import (
	"context"
	"fmt"
)

// UserChange is what UpdateUser changes; a nil field is kept.
type UserChange struct {
	Role *string
	// Groups replaces the user's groups (sorted and deduplicated); an
	// empty non-nil slice removes them all, which only an admin may have.
	Groups *[]string
}

// DeviceChange is what UpdateDevice changes; a nil field is kept.
type DeviceChange struct {
	Name  *string
	Group *string
}

// DeletedDevice tells what DeleteDevice removed.
type DeletedDevice struct {
	Locations int64 `json:"locations"`
	Logs      int64 `json:"logs"`
}

// AccountAdmin is what an admin changes in users and devices (devtrack user
// edit|passwd, device rename|move|delete, the admin API of wsgateway).
// Store embeds it.
type AccountAdmin interface {
	// UpdateUser changes the user's role and groups in one transaction and
	// returns the user as it is now. It is ErrNotFound for an unknown
	// user and ErrInvalid for an unknown role, or for an operator that
	// would be left without a group (who would see nothing). The token
	// and RevokedAt are not touched: requests look users up at each call,
	// and the gateway's credentials poll closes the live sockets of a
	// user whose role or groups differ from those at their handshake.
	UpdateUser(ctx context.Context, name string, ch UserChange) (User, error)
	// SetUserPassword replaces the user's password hash; nil removes the
	// password (no web UI login). It sets PasswordChangedAt to now (later
	// than its previous value), which ends the user's web sessions (the
	// gateway compares it at each session lookup and in its credentials
	// poll); the API token is kept. ErrNotFound for an unknown user.
	SetUserPassword(ctx context.Context, name string, passwordHash []byte) error

	// UpdateDevice changes the device's name and group, revoked or not,
	// and returns it as it is now. It stamps the device as changed now
	// (DevicesChangedSince). ErrNotFound for an unknown device,
	// ErrInvalid for a group ValidName refuses (empty is no group) or a
	// name longer than 256 bytes.
	UpdateDevice(ctx context.Context, id string, ch DeviceChange) (Device, error)
	// DevicesChangedSince lists, as they are now and ordered by id, the
	// devices whose name or group was changed at or after sinceMS: by
	// UpdateDevice, or by enrolling a revoked device again (EnrolDevice,
	// ReenrollDevice). Gateways poll it to drop a moved device from the
	// live sockets of users who may no longer see it. A device's stamp is
	// the store's clock, and later than its previous one.
	DevicesChangedSince(ctx context.Context, sinceMS int64) ([]Device, error)
	// EnrolDevice registers d with the hash of its token or, if d.ID is a
	// revoked device, enrols it again (ReenrollDevice: new token, d's
	// name, group and crs, its archive kept), in one transaction; again
	// tells which. ErrExists if d.ID is an active device or the hash is
	// taken, ErrInvalid as AddDevice.
	EnrolDevice(ctx context.Context, d Device, tokenHash []byte) (_ Device, again bool, err error)
	// DeleteDevice removes a device: its registration and token, its
	// legacy key, its share links and its whole archive (locations and
	// logs). It first revokes the device, then deletes the archive in
	// steps of at most 5,000 locations or 500 logs, each its own
	// transaction (a big
	// archive does not hold the store's writers), and last the device
	// itself. A call that fails or is cancelled midway leaves the device
	// revoked with part of its archive; calling again finishes. The id is
	// reported by RevokedSince for a while after (a tombstone), so that
	// gateways close its connections and drop its cached token. It is
	// ErrNotFound for an unknown device.
	DeleteDevice(ctx context.Context, id string) (DeletedDevice, error)
}

// CheckAccount tells why a user with role and groups cannot be stored,
// wrapping ErrInvalid: an unknown role, a group ValidName refuses, or an
// operator without a group. Nil if it can.
func CheckAccount(role string, groups []string) error {
	if role != RoleAdmin && role != RoleOperator {
		return fmt.Errorf("unknown role %q (want admin or operator): %w", role, ErrInvalid)
	}
	for _, g := range groups {
		if !ValidName(g) {
			return fmt.Errorf("group %q: use 1 to 64 letters, digits and . _ : @ -: %w", g, ErrInvalid)
		}
	}
	if role == RoleOperator && len(groups) == 0 {
		return fmt.Errorf("an operator needs at least one group (they see only their groups' devices): %w", ErrInvalid)
	}
	return nil
}

// CheckDeviceChange tells why ch cannot be applied, wrapping ErrInvalid: a
// name longer than 256 bytes or a group ValidName refuses (empty is no
// group). Nil if it can.
func CheckDeviceChange(ch DeviceChange) error {
	if ch.Name != nil && len(*ch.Name) > 256 {
		return fmt.Errorf("name is longer than 256 bytes: %w", ErrInvalid)
	}
	if ch.Group != nil && *ch.Group != "" && !ValidName(*ch.Group) {
		return fmt.Errorf("group %q: use 1 to 64 letters, digits and . _ : @ -: %w", *ch.Group, ErrInvalid)
	}
	return nil
}
