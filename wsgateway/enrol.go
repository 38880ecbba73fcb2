package wsgateway

// Device enrolment for admins: an app's backend registers a device for each
// new user and hands the token to the app (POST /api/v1/devices), issues a
// new token when one is lost (POST /api/v1/devices/{id}/token), and sets
// the device's default crs, name and group (PATCH /api/v1/devices/{id}).
// The CLI's device add, rotate, set-crs, rename and move do the same from a
// shell.
//
// The gateway otherwise only reads the store; these write, through a store
// that is also a DeviceRegistry (both of devtrack's are). A token replaced
// here stops working on every gateway within the rotation poll, as one
// replaced from the CLI. A new crs applies to the device's next requests
// and connections on this gateway, and on the others once their token
// cache entry expires (--token-cache-ttl, a minute by default); a socket
// already open keeps the crs it was opened with.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
)

// DeviceRegistry is what enrolment writes in the store.
type DeviceRegistry interface {
	EnrolDevice(ctx context.Context, d storage.Device, tokenHash []byte) (storage.Device, bool, error)
	RotateDeviceToken(ctx context.Context, id string, tokenHash []byte) (storage.Device, error)
	SetDeviceCRS(ctx context.Context, id, crs string) (storage.Device, error)
	UpdateDevice(ctx context.Context, id string, ch storage.DeviceChange) (storage.Device, error)
}

// enrolledDevice is the answer of the enrolment API: the device and, when
// one was made, its token, shown this once.
type enrolledDevice struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Group     string `json:"group"`
	CRS       string `json:"crs"`
	CreatedAt int64  `json:"created_at"`
	Token     string `json:"token,omitempty"`
}

func enrolled(d storage.Device, tok string) enrolledDevice {
	crs := d.CRS
	if crs == "" {
		crs = protocol.CRSWGS84
	}
	return enrolledDevice{ID: d.ID, Name: d.Name, Group: d.Group, CRS: crs, CreatedAt: d.CreatedAt, Token: tok}
}

// registry returns the store as a DeviceRegistry, or the error to answer.
func (g *Gateway) registry() (DeviceRegistry, error) {
	reg, ok := g.store.(DeviceRegistry)
	if !ok {
		return nil, &httpError{http.StatusNotImplemented, protocol.CodeInternal, "this gateway's store cannot register devices"}
	}
	return reg, nil
}

// deviceCRS reads a crs as the API takes it: wgs84 (or empty), gcj02 or
// bd09, in any case; the store's form is "" for WGS-84.
func deviceCRS(s string) (string, error) {
	if c, ok := storage.ParseDeviceCRS(s); ok {
		return c, nil
	}
	return "", badRequest("crs " + strconv.Quote(s) + " is not one of wgs84, gcj02, bd09")
}

// decodeBody reads a small JSON object body into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body must be " + shape + ": " + err.Error())
	}
	return nil
}

// createDevice registers a device: 201 with its token.
func (g *Gateway) createDevice(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	reg, err := g.registry()
	if err != nil {
		return err
	}
	var req struct{ ID, Name, Group, CRS string }
	if err := decodeBody(w, r, &req, `{"id":...,"name":...,"group":...,"crs":...}`); err != nil {
		return err
	}
	if !storage.ValidName(req.ID) {
		return badRequest("id " + strconv.Quote(req.ID) + ": use 1 to 64 letters, digits and . _ : @ - (not first)")
	}
	if req.Group != "" && !storage.ValidName(req.Group) {
		return badRequest("group " + strconv.Quote(req.Group) + ": use 1 to 64 letters, digits and . _ : @ -")
	}
	if len(req.Name) > 256 {
		return badRequest("name is longer than 256 bytes")
	}
	crs, err := deviceCRS(req.CRS)
	if err != nil {
		return err
	}
	tok := token.New(token.DevicePrefix)
	d := storage.Device{ID: req.ID, Name: req.Name, Group: req.Group, CRS: crs, CreatedAt: time.Now().UnixMilli()}
	// A revoked id is enrolled again, with the new token.
	d, _, err = reg.EnrolDevice(r.Context(), d, token.Hash(tok))
	switch {
	case errors.Is(err, storage.ErrExists):
		return &httpError{http.StatusConflict, "exists", "device " + strconv.Quote(req.ID) + " already exists"}
	case errors.Is(err, storage.ErrInvalid):
		return badRequest(err.Error())
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusCreated, enrolled(d, tok))
	return nil
}

// rotateDevice issues a new token for a device; the old one stops working.
func (g *Gateway) rotateDevice(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	reg, err := g.registry()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	tok := token.New(token.DevicePrefix)
	d, err := reg.RotateDeviceToken(r.Context(), id, token.Hash(tok))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return notFound("no device " + strconv.Quote(id))
	case errors.Is(err, storage.ErrRevoked):
		return &httpError{http.StatusConflict, "revoked", "device " + strconv.Quote(id) + " is revoked"}
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, enrolled(d, tok))
	return nil
}

// updateDevice changes what a device may change: its default crs, name
// and group. A device moved to another group leaves the live sockets here
// of users who may no longer see it (closed with 4003, they reconnect);
// the other gateways close theirs within a RevokePoll (the device's change
// stamp, credentials.go).
func (g *Gateway) updateDevice(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	reg, err := g.registry()
	if err != nil {
		return err
	}
	var req struct{ CRS, Name, Group *string }
	const shape = `{"crs":...,"name":...,"group":...} (any of them)`
	if err := decodeBody(w, r, &req, shape); err != nil {
		return err
	}
	if req.CRS == nil && req.Name == nil && req.Group == nil {
		return badRequest("body must be " + shape)
	}
	ch := storage.DeviceChange{Name: req.Name, Group: req.Group}
	if err := storage.CheckDeviceChange(ch); err != nil {
		return badRequest(strings.TrimSuffix(err.Error(), ": "+storage.ErrInvalid.Error()))
	}
	var crs string
	if req.CRS != nil {
		if crs, err = deviceCRS(*req.CRS); err != nil {
			return err
		}
	}
	id := r.PathValue("id")
	var d storage.Device
	if req.Name != nil || req.Group != nil {
		d, err = reg.UpdateDevice(r.Context(), id, ch)
	}
	if err == nil && req.CRS != nil {
		d, err = reg.SetDeviceCRS(r.Context(), id, crs)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("no device " + strconv.Quote(id))
	}
	if err != nil {
		return err
	}
	g.tokens.forget(id)
	if req.Group != nil {
		g.closeViewersNotSeeing(d)
	}
	writeJSON(w, http.StatusOK, enrolled(d, ""))
	return nil
}
