package wsgateway

import (
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"go.uber.org/zap"
)

// ingestResponse is the 200 body of POST /api/v1/ingest. Errors lists the
// frames that were refused while the others were accepted (an extension of
// the contract: nothing good is lost because of a bad neighbour).
type ingestResponse struct {
	Accepted        int                   `json:"accepted"`
	IDs             []string              `json:"ids"`
	UpdateIntervalS int                   `json:"update_interval_s"`
	Errors          []protocol.ErrorFrame `json:"errors,omitempty"`
}

// serveIngest accepts one frame, a batch frame or a JSON array of frames, and
// a mini-program's location object in place of a frame.
func (g *Gateway) serveIngest(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	dev, ok := g.authDevice(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge,
				"body larger than "+strconv.FormatInt(g.cfg.MaxBodyBytes, 10)+" bytes")
			return
		}
		writeError(w, http.StatusBadRequest, protocol.CodeInvalidJSON, "cannot read body: "+err.Error())
		return
	}
	limits := g.cfg.Limits
	limits.MaxFrameBytes = int(min(g.cfg.MaxBodyBytes, math.MaxInt32))
	now := time.Now()
	// A mini-program posts the location object of wx.onLocationChange as
	// it is (protocol.Options.BareLocations), in the device's crs.
	p := limits.ParseWith(body, now, nil, protocol.Options{DefaultCRS: dev.CRS, BareLocations: true})
	if len(p.Results) > 0 {
		// After the push: a slow publish must not use up its deadline.
		defer func() { g.commandResults(time.Now().Add(g.cfg.RedisTimeout), dev.ID, p.Results) }()
	}
	resp := ingestResponse{IDs: []string{}, UpdateIntervalS: int(g.cfg.UpdateInterval / time.Second)}
	for _, fe := range p.Errors {
		framesRefused.WithLabelValues(fe.Code).Inc()
		resp.Errors = append(resp.Errors, fe.Frame())
	}
	if len(p.Items) == 0 {
		if len(p.Errors) > 0 {
			status := http.StatusBadRequest
			if p.Errors[0].Code == protocol.CodeTooLarge {
				status = http.StatusRequestEntityTooLarge
			}
			writeJSON(w, status, struct {
				apiError
				Errors []protocol.ErrorFrame `json:"errors"`
			}{apiErrorOf(p.Errors[0].Code, p.Errors[0].Message), resp.Errors})
			return
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	if !g.ingest.allow(dev.ID, len(p.Items), now) {
		framesRefused.WithLabelValues(protocol.CodeRateLimited).Add(float64(len(p.Items)))
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, protocol.CodeRateLimited,
			"over "+strconv.FormatFloat(g.cfg.FrameRate, 'f', -1, 64)+" frames/s for this device; retry later with the same ids")
		return
	}
	raws, ids, err := g.stamp(dev.ID, p.Items, now)
	if err == nil {
		err = g.pushRaw(arrived.Add(g.cfg.PushTimeout), raws)
	}
	if err != nil {
		g.log.Warn("push to ingest list", zap.String("device", dev.ID), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "ingest list unavailable; retry later")
		return
	}
	resp.Accepted = len(ids)
	resp.IDs = ids
	writeJSON(w, http.StatusOK, resp)
}
