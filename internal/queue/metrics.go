package queue

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricsMaxQueues bounds how many queues get their own series, so that a
// node with very many queues does not flood its scraper. Queues past it, in
// name order, are left out of the per-queue series.
const MetricsMaxQueues = 1000

// collectTimeout bounds how long one scrape waits for a queue's owner.
const collectTimeout = 2 * time.Second

// Collector returns a Prometheus collector of per-queue gauges (available,
// inflight, delayed, dead-lettered, oldest available age, waiting receives)
// and per-queue event counters taken from the stored totals, so they survive
// restarts.
func (e *Engine) Collector() prometheus.Collector {
	return &collector{e: e}
}

type collector struct{ e *Engine }

var (
	labels        = []string{"queue"}
	descAvailable = prometheus.NewDesc("qakka_queue_available_messages", "Messages waiting to be received.", labels, nil)
	descInflight  = prometheus.NewDesc("qakka_queue_inflight_messages", "Messages received and not yet acked.", labels, nil)
	descDelayed   = prometheus.NewDesc("qakka_queue_delayed_messages", "Messages waiting for their delay to end.", labels, nil)
	descDead      = prometheus.NewDesc("qakka_queue_dead_lettered_messages", "Messages in the queue's dead-letter queue.", labels, nil)
	descOldest    = prometheus.NewDesc("qakka_queue_oldest_available_age_seconds", "Age of the oldest available message.", labels, nil)
	descWaiters   = prometheus.NewDesc("qakka_queue_waiting_receives", "Receives waiting for a message.", labels, nil)
	descEvents    = prometheus.NewDesc("qakka_queue_events_total", "Message events by type, since the queue was created.", []string{"queue", "event"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAvailable, descInflight, descDelayed, descDead, descOldest, descWaiters, descEvents} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	e.mu.RLock()
	names := make([]string, 0, len(e.owners))
	for name := range e.owners {
		names = append(names, name)
	}
	e.mu.RUnlock()
	slices.Sort(names)
	if len(names) > MetricsMaxQueues {
		names = names[:MetricsMaxQueues]
	}

	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	for _, name := range names {
		s, err := e.Stats(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				e.log.Warn("collecting queue metrics timed out", slog.Duration("timeout", collectTimeout))
				return
			}
			continue
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		gauge(descAvailable, float64(s.Available))
		gauge(descInflight, float64(s.Inflight))
		gauge(descDelayed, float64(s.Delayed))
		gauge(descDead, float64(s.DeadLettered))
		gauge(descOldest, s.OldestAvailableAge.Seconds())
		gauge(descWaiters, float64(s.Waiters))
		t := s.Totals
		for _, ev := range []struct {
			name string
			n    int64
		}{
			{"sent", t.Sent}, {"received", t.Received}, {"acked", t.Acked}, {"nacked", t.Nacked},
			{"timed_out", t.TimedOut}, {"expired", t.Expired}, {"dead_lettered", t.DeadLettered},
			{"redriven", t.Redriven}, {"purged", t.Purged},
		} {
			ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(ev.n), name, ev.name)
		}
	}
}
