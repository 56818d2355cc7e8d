package sqsapi

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts and times requests per action. Labels stay bounded: the
// action is one of the served actions or "unknown", and the code is "ok",
// "forwarded" or one of the API's error codes.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, actions map[string]action) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "qakka",
			Subsystem: "sqs",
			Name:      "requests_total",
			Help:      "SQS API requests by action and result code (ok, forwarded to the node that serves the queue, or the SQS error code).",
		}, []string{"action", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "qakka",
			Subsystem: "sqs",
			Name:      "request_duration_seconds",
			Help:      "Time to serve an SQS API request, long-poll waits included.",
			Buckets:   []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30},
		}, []string{"action"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				return nil, fmt.Errorf("sqs api: register metrics: %w (create one API per registry)", err)
			}
			return nil, fmt.Errorf("sqs api: register metrics: %w", err)
		}
	}
	// Create the series of every action so that rates start at zero.
	for name := range actions {
		m.requests.WithLabelValues(name, "ok")
		m.duration.WithLabelValues(name)
	}
	return m, nil
}

func (m *metrics) observe(action, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(action, code).Inc()
	m.duration.WithLabelValues(action).Observe(d.Seconds())
}
