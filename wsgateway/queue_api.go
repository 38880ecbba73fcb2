package wsgateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// adminOnly lets only admins through: the dead letters hold any device's data.
func adminOnly(h apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, u storage.User) error {
		if u.Role != storage.RoleAdmin {
			return forbidden("only admins may do this")
		}
		return h(w, r, u)
	}
}

func (g *Gateway) queueStats(w http.ResponseWriter, r *http.Request, u storage.User) error {
	st, err := g.queue.Stats(r.Context())
	if err != nil {
		return unavailable(err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// listDead serves dead letters, newest first: GET /api/v1/queue/dead?limit=&offset=.
func (g *Gateway) listDead(w http.ResponseWriter, r *http.Request, u storage.User) error {
	limit, _, err := page(r)
	if err != nil {
		return err
	}
	offset, err := intParam(r, "offset", 0, 0, 1<<30)
	if err != nil {
		return err
	}
	items, err := g.queue.DeadLetters(r.Context(), offset, limit)
	if err != nil {
		return unavailable(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// requeueDead puts dead letters back on the ingest list, oldest first:
// POST /api/v1/queue/dead/requeue with an optional {"count":N} (default all).
func (g *Gateway) requeueDead(w http.ResponseWriter, r *http.Request, u storage.User) error {
	var req struct {
		Count int `json:"count"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			return badRequest(`body must be empty or {"count":N}`)
		}
	}
	if req.Count < 0 {
		return badRequest("count must not be negative")
	}
	moved, err := g.queue.RequeueDead(r.Context(), req.Count) // 0: all
	if err != nil {
		return unavailable(err)
	}
	g.log.Info("dead letters requeued", zap.String("user", u.Name), zap.Int("count", moved))
	writeJSON(w, http.StatusOK, map[string]int{"requeued": moved})
	return nil
}

// requeueDeadLetter puts one dead letter back on the ingest list:
// POST /api/v1/queue/dead/{id}/requeue (id from the list).
func (g *Gateway) requeueDeadLetter(w http.ResponseWriter, r *http.Request, u storage.User) error {
	return g.deadLetter(w, r, u, "requeued", g.queue.RequeueDeadLetter)
}

// deleteDeadLetter drops one dead letter: DELETE /api/v1/queue/dead/{id}.
func (g *Gateway) deleteDeadLetter(w http.ResponseWriter, r *http.Request, u storage.User) error {
	return g.deadLetter(w, r, u, "deleted", g.queue.DeleteDeadLetter)
}

// deadLetter does one letter's action: 404 when the letter is not there
// (any more: another admin got to it first).
func (g *Gateway) deadLetter(w http.ResponseWriter, r *http.Request, u storage.User, done string,
	act func(ctx context.Context, id string) (bool, error)) error {
	id := r.PathValue("id")
	if len(id) != 40 {
		return badRequest("a dead letter id is the 40 hex digits of its id in the list")
	}
	found, err := act(r.Context(), id)
	if err != nil {
		return unavailable(err)
	}
	if !found {
		return notFound("no dead letter " + id + " (already handled?)")
	}
	g.log.Info("dead letter "+done, zap.String("user", u.Name), zap.String("id", id))
	if done == "deleted" {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]int{"requeued": 1})
	return nil
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(name + " must be an integer from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi))
	}
	return n, nil
}
