package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

// defaultPeekLimit is the page size of a peek that gives no limit.
const defaultPeekLimit = 100

// stats serves GET /api/queues/{q}/stats.
func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	s, err := a.engine.Stats(r.Context(), r.PathValue("q"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	t := s.Totals
	writeJSON(w, http.StatusOK, client.Stats{
		QueueName:            s.Queue,
		Available:            s.Available,
		Inflight:             s.Inflight,
		Delayed:              s.Delayed,
		DeadLettered:         s.DeadLettered,
		OldestAvailableAgeMs: s.OldestAvailableAge.Milliseconds(),
		Totals: client.Totals{
			Sent:         t.Sent,
			Received:     t.Received,
			Acked:        t.Acked,
			Nacked:       t.Nacked,
			TimedOut:     t.TimedOut,
			Expired:      t.Expired,
			DeadLettered: t.DeadLettered,
			Redriven:     t.Redriven,
			Purged:       t.Purged,
		},
	})
}

// audit serves GET /api/queues/{q}/messages/{id}/audit, where id is the
// messageId: every event of the message, in every queue it passed through.
func (a *API) audit(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "messageId")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	evs, err := a.engine.Audit(r.Context(), r.PathValue("q"), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := client.AuditTrail{MessageID: id.String(), Events: make([]client.AuditEvent, 0, len(evs))}
	for i := range evs {
		ev := &evs[i]
		e := client.AuditEvent{
			MessageID:    ev.MessageID.String(),
			Date:         millis(ev.Time),
			Action:       ev.Action,
			QueueName:    ev.Queue,
			ReceiveCount: int(ev.ReceiveCount),
			Detail:       ev.Detail,
		}
		if ev.QueueMessageID != uuid.Nil {
			e.QueueMessageID = ev.QueueMessageID.String()
		}
		out.Events = append(out.Events, e)
	}
	writeJSON(w, http.StatusOK, out)
}

// peek serves GET /api/queues/{q}/peek?state=&cursor=&limit=: one page of
// the queue's messages, listed without changing them.
func (a *API) peek(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", defaultPeekLimit, "use a whole number of messages")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if limit < 1 || limit > queue.MaxPeekLimit {
		a.writeError(w, r, invalid("limit", strconv.FormatInt(limit, 10), "must be between 1 and %d", queue.MaxPeekLimit))
		return
	}
	q := r.URL.Query()
	page, err := a.engine.Peek(r.Context(), r.PathValue("q"), queue.PeekRequest{
		State:  q.Get("state"),
		Cursor: q.Get("cursor"),
		Limit:  int(limit),
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := client.PeekPage{Entries: make([]client.PeekEntry, 0, len(page.Entries)), Next: page.Next}
	for i := range page.Entries {
		e := &page.Entries[i]
		out.Entries = append(out.Entries, client.PeekEntry{
			State:          e.State,
			QueueMessageID: e.QueueMessageID.String(),
			MessageID:      e.MessageID.String(),
			CreateDate:     millis(e.CreatedAt),
			SentDate:       millis(e.SentAt),
			DueDate:        millis(e.DueAt),
			ExpirationDate: millis(e.ExpiresAt),
			ReceiveCount:   e.ReceiveCount,
			ContentType:    e.ContentType,
			Size:           e.Size,
			SourceQueue:    e.SourceQueue,
			TargetQueue:    e.TargetQueue,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// redrive serves POST /api/queues/{q}/redrive?max=N: up to N messages of a
// dead-letter queue go back to the queues they came from, all of them when
// N is 0 or absent.
func (a *API) redrive(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "max", 0, "use a whole number of messages, or 0 for all")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if n < 0 || n > int64(^uint32(0)>>1) {
		a.writeError(w, r, invalid("max", strconv.FormatInt(n, 10), "must be 0 (all) or a positive number of messages"))
		return
	}
	res, err := a.engine.Redrive(r.Context(), r.PathValue("q"), int(n))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.RedriveResult{Moved: res.Moved, Skipped: res.Skipped})
}

// status serves GET /api/status.
func (a *API) status(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	regions, err := a.regions.Status(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.Status{
		Name:      "Qakka",
		Version:   a.cfg.Version,
		Storage:   a.cfg.StorageName,
		Region:    a.cfg.Region,
		StartDate: millis(a.cfg.StartedAt),
		UptimeSec: int64(now.Sub(a.cfg.StartedAt) / time.Second),
		Regions:   wireRegions(&regions),
		Cluster:   clusterStatus(a.cfg.Cluster),
	})
}

func clusterStatus(f func() *client.ClusterStatus) *client.ClusterStatus {
	if f == nil {
		return nil
	}
	return f()
}

// wireRegions converts the state of the regions to its wire form.
func wireRegions(st *region.Status) *client.RegionsStatus {
	out := &client.RegionsStatus{Local: st.Local, Remotes: make([]client.RemoteStatus, 0, len(st.Remotes))}
	for i := range st.Remotes {
		rs := &st.Remotes[i]
		var reachable *bool
		if !rs.LastAttempt.IsZero() {
			reachable = &rs.Reachable
		}
		out.Remotes = append(out.Remotes, client.RemoteStatus{
			Name:            rs.Name,
			Endpoints:       rs.Endpoints,
			Reachable:       reachable,
			LastAttemptDate: millis(rs.LastAttempt),
			LastError:       rs.LastError,
			LastSuccessDate: millis(rs.LastSuccess),
			Endpoint:        rs.Endpoint,
			Backlog:         rs.Backlog,
			Available:       rs.Available,
			Inflight:        rs.Inflight,
			Delayed:         rs.Delayed,
			OldestAgeMs:     rs.OldestAge.Milliseconds(),
			Transferred:     rs.Transferred,
			Failures:        rs.Failures,
			Expired:         rs.Expired,
		})
	}
	return out
}
