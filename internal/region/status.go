package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qakka/qakka/internal/queue"
)

// collectTimeout bounds how long one scrape waits for the outboxes.
const collectTimeout = 2 * time.Second

// Status describes the regions of this server.
type Status struct {
	Local   string
	Remotes []RemoteStatus
}

// RemoteStatus describes one remote region and its outbox.
type RemoteStatus struct {
	Name      string
	Endpoints []string
	// LastAttempt is when the sender last POSTed to the region, or zero
	// before its first POST. Reachable is true when that POST got a reply.
	// Otherwise LastError is the reason.
	LastAttempt time.Time
	Reachable   bool
	LastError   string
	// LastSuccess is when a POST last got a reply, and Endpoint is the
	// endpoint that sent it.
	LastSuccess time.Time
	Endpoint    string
	// Backlog counts the outbox entries not yet transferred: Available
	// plus Inflight (being sent) plus Delayed (waiting to be retried).
	Backlog   int64
	Available int64
	Inflight  int64
	Delayed   int64
	// OldestAge is the age of the oldest entry at the head of the outbox's
	// available, delayed and inflight entries, or zero when it is empty.
	// An entry retried more often than the head ones can be older.
	OldestAge time.Duration
	// Transferred and Failures count entries since the server started:
	// those the region stored, and failed attempts to send one.
	Transferred int64
	Failures    int64
	// Expired counts entries that expired in the outbox, over its life.
	Expired int64
}

// Status returns the state of every remote region and its outbox.
func (r *Router) Status(ctx context.Context) (Status, error) {
	st := Status{Local: r.cfg.Local, Remotes: make([]RemoteStatus, 0, len(r.remotes))}
	for _, rm := range r.remotes {
		rs, err := r.remoteStatus(ctx, rm)
		if err != nil {
			return Status{}, err
		}
		st.Remotes = append(st.Remotes, rs)
	}
	return st, nil
}

func (r *Router) remoteStatus(ctx context.Context, rm *remote) (RemoteStatus, error) {
	rm.mu.Lock()
	rs := RemoteStatus{
		Name:        rm.name,
		Endpoints:   rm.endpoints,
		LastAttempt: rm.lastAttempt,
		Reachable:   !rm.lastAttempt.IsZero() && rm.lastError == "",
		LastError:   rm.lastError,
		LastSuccess: rm.lastSuccess,
		Endpoint:    rm.endpoint,
		Transferred: rm.transferred.Load(),
		Failures:    rm.failures.Load(),
	}
	rm.mu.Unlock()

	s, err := r.engine.Stats(ctx, rm.outbox)
	if errors.Is(err, queue.ErrQueueNotFound) {
		// Start has not created the outbox yet.
		return rs, nil
	}
	if err != nil {
		return RemoteStatus{}, fmt.Errorf("read outbox %s: %w", rm.outbox, err)
	}
	rs.Available, rs.Inflight, rs.Delayed = s.Available, s.Inflight, s.Delayed
	rs.Backlog = s.Available + s.Inflight + s.Delayed
	rs.Expired = s.Totals.Expired
	if rs.Backlog > 0 {
		oldest, err := r.oldestEntry(ctx, rm.outbox)
		if err != nil {
			return RemoteStatus{}, err
		}
		if !oldest.IsZero() {
			rs.OldestAge = max(r.clock.Now().Sub(oldest), 0)
		}
	}
	return rs, nil
}

// oldestEntry returns the earliest send time among the first entry of each
// state of an outbox, or zero when it has none.
func (r *Router) oldestEntry(ctx context.Context, outbox string) (time.Time, error) {
	var oldest time.Time
	for _, state := range []string{"available", "delayed", "inflight"} {
		page, err := r.engine.Peek(ctx, outbox, queue.PeekRequest{State: state, Limit: 1})
		if err != nil {
			return time.Time{}, fmt.Errorf("peek outbox %s: %w", outbox, err)
		}
		for _, e := range page.Entries {
			if oldest.IsZero() || e.SentAt.Before(oldest) {
				oldest = e.SentAt
			}
		}
	}
	return oldest, nil
}

// metrics exports the state of the remote regions at each scrape.
type metrics struct {
	r *Router
}

var (
	regionLabels    = []string{"region"}
	descBacklog     = prometheus.NewDesc("qakka_region_transfer_backlog", "Outbox entries not yet stored by the remote region: available, being sent, or waiting to be retried.", regionLabels, nil)
	descOldestAge   = prometheus.NewDesc("qakka_region_transfer_oldest_age_seconds", "Age of the oldest entry at the head of the outbox of the remote region.", regionLabels, nil)
	descReachable   = prometheus.NewDesc("qakka_region_transfer_reachable", "1 when the last POST to the remote region got a reply, else 0.", regionLabels, nil)
	descTransferred = prometheus.NewDesc("qakka_region_transfer_transferred_total", "Outbox entries the remote region stored, since the server started.", regionLabels, nil)
	descFailures    = prometheus.NewDesc("qakka_region_transfer_failures_total", "Failed attempts to send an outbox entry to the remote region, since the server started.", regionLabels, nil)
	descExpired     = prometheus.NewDesc("qakka_region_transfer_expired_total", "Outbox entries that expired before the remote region stored them, over the life of the outbox.", regionLabels, nil)
)

func newMetrics(r *Router, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{r: r}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("region: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBacklog, descOldestAge, descReachable, descTransferred, descFailures, descExpired} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	for _, rm := range m.r.remotes {
		rs, err := m.r.remoteStatus(ctx, rm)
		if err != nil {
			m.r.log.Warn("collecting region metrics failed", slog.String("remote_region", rm.name), slog.Any("error", err))
			continue
		}
		metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, t, v, rm.name)
		}
		reachable := 0.0
		if rs.Reachable {
			reachable = 1
		}
		metric(descBacklog, prometheus.GaugeValue, float64(rs.Backlog))
		metric(descOldestAge, prometheus.GaugeValue, rs.OldestAge.Seconds())
		metric(descReachable, prometheus.GaugeValue, reachable)
		metric(descTransferred, prometheus.CounterValue, float64(rs.Transferred))
		metric(descFailures, prometheus.CounterValue, float64(rs.Failures))
		metric(descExpired, prometheus.CounterValue, float64(rs.Expired))
	}
}
