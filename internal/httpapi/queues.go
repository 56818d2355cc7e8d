package httpapi

import (
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

// maxConfigBody bounds the body of a queue create or update.
const maxConfigBody = 1 << 20

// createQueue serves POST /api/queues: 201 with a Location for a new queue,
// 200 with the stored configuration, unchanged, when the queue exists.
func (a *API) createQueue(w http.ResponseWriter, r *http.Request) {
	var in client.Queue
	if err := decodeJSON(w, r, min(maxConfigBody, a.cfg.MaxBodyBytes), &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	cfg, err := configOf(&in)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// The router creates the queue here and, through the outboxes, in
	// every other region that cfg.Regions names. It rejects the names of
	// the outboxes.
	stored, created, _, err := a.regions.CreateQueue(r.Context(), cfg)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		w.Header().Set("Location", "/api/queues/"+url.PathEscape(stored.Name))
		status = http.StatusCreated
	}
	writeJSON(w, status, client.Response{Queues: []client.Queue{wireQueue(&stored)}})
}

// listQueues serves GET /api/queues with a bare JSON array of names, as
// the original Qakka did. The outboxes of the transfer log are left out.
func (a *API) listQueues(w http.ResponseWriter, r *http.Request) {
	cfgs, err := a.engine.Queues(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	names := make([]string, 0, len(cfgs))
	for i := range cfgs {
		if !region.IsReserved(cfgs[i].Name) {
			names = append(names, cfgs[i].Name)
		}
	}
	writeJSON(w, http.StatusOK, names)
}

// getConfig serves GET /api/queues/{q}/config.
func (a *API) getConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := a.engine.Queue(r.Context(), r.PathValue("q"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.Response{Queues: []client.Queue{wireQueue(&cfg)}})
}

// updateConfig serves PUT /api/queues/{q}/config. The body replaces the
// whole configuration, here and in every other region that its regions
// name.
func (a *API) updateConfig(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("q")
	var in client.Queue
	if err := decodeJSON(w, r, min(maxConfigBody, a.cfg.MaxBodyBytes), &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Name == "" {
		in.Name = name
	}
	if in.Name != name {
		a.writeError(w, r, invalid("name", in.Name, "must match the queue in the path, %s; queues cannot be renamed", strconv.Quote(name)))
		return
	}
	cfg, err := configOf(&in)
	if err != nil {
		a.writeError(w, r, err)
		return
	}

	stored, _, err := a.regions.UpdateQueue(r.Context(), cfg)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.Response{Queues: []client.Queue{wireQueue(&stored)}})
}

// deleteQueue serves DELETE /api/queues/{q}?confirm=true.
func (a *API) deleteQueue(w http.ResponseWriter, r *http.Request) {
	if !confirmed(r) {
		a.writeError(w, r, invalid("confirm", r.URL.Query().Get("confirm"), "must be true to delete the queue and all its messages"))
		return
	}
	if err := a.engine.DeleteQueue(r.Context(), r.PathValue("q")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.Response{})
}

// configOf converts a wire configuration to the engine's, which validates
// the values against the server's limits.
func configOf(q *client.Queue) (queue.Config, error) {
	switch q.QueueType {
	case "", client.QueueTypeMultiRegion, "_LOCAL":
	default:
		return queue.Config{}, invalid("queueType", q.QueueType, "use %s or leave it out", client.QueueTypeMultiRegion)
	}
	visibility, err := toDuration("handlingTimeoutSec", q.HandlingTimeoutSec, time.Second)
	if err != nil {
		return queue.Config{}, err
	}
	delay, err := toDuration("defaultDelayMs", q.DefaultDelayMs, time.Millisecond)
	if err != nil {
		return queue.Config{}, err
	}
	retention, err := toDuration("retentionSec", q.RetentionSec, time.Second)
	if err != nil {
		return queue.Config{}, err
	}
	wait, err := toDuration("receiveWaitMs", q.ReceiveWaitMs, time.Millisecond)
	if err != nil {
		return queue.Config{}, err
	}
	return queue.Config{
		Name:                q.Name,
		VisibilityTimeout:   visibility,
		DefaultDelay:        delay,
		RetryCount:          q.RetryCount,
		DeadLetterQueue:     q.DeadLetterQueue,
		MaxMessageSize:      q.MaxMessageSize,
		Retention:           retention,
		ReceiveWait:         wait,
		Regions:             q.Regions,
		DefaultDestinations: q.DefaultDestinations,
		Tags:                maps.Clone(q.Tags),
	}, nil
}

// wireQueue converts a stored configuration to its wire form. Zero values
// mean the server's defaults and are reported as zero.
func wireQueue(c *queue.Config) client.Queue {
	return client.Queue{
		Name:                c.Name,
		QueueType:           client.QueueTypeMultiRegion,
		Regions:             c.Regions,
		DefaultDestinations: c.DefaultDestinations,
		DefaultDelayMs:      c.DefaultDelay.Milliseconds(),
		RetryCount:          c.RetryCount,
		HandlingTimeoutSec:  int64(c.VisibilityTimeout / time.Second),
		DeadLetterQueue:     c.DeadLetterQueue,
		MaxMessageSize:      c.MaxMessageSize,
		RetentionSec:        int64(c.Retention / time.Second),
		ReceiveWaitMs:       c.ReceiveWait.Milliseconds(),
		Tags:                c.Tags,
		CreateDate:          millis(c.CreatedAt),
		UpdateDate:          millis(c.UpdatedAt),
	}
}

// millis returns t in milliseconds since the Unix epoch, or 0 for the zero
// time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// queueLimit returns the maximum payload size of a queue in bytes.
func (a *API) queueLimit(cfg *queue.Config) int64 {
	if cfg.MaxMessageSize > 0 {
		return cfg.MaxMessageSize
	}
	return a.engine.Options().MaxMessageSize
}
