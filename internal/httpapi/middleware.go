package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	duration *prometheus.HistogramVec
}

// newMetrics builds the collectors and registers them with reg, reusing
// collectors that an earlier API registered there. A nil reg registers
// nothing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "qakka",
		Subsystem: "http",
		Name:      "request_duration_seconds",
		Help:      "Time to serve a REST API request, by operation and status class (2xx, 4xx, 5xx).",
		Buckets:   prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"operation", "status_class"})
	if reg == nil {
		return &metrics{duration: duration}, nil
	}
	if err := reg.Register(duration); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.HistogramVec)
		if !ok {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
		duration = existing
	}
	return &metrics{duration: duration}, nil
}

// instrument wraps h to time it under the operation op and to log each
// request at Debug.
func (a *API) instrument(op string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)

		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(start)
		a.metrics.duration.WithLabelValues(op, statusClass(status)).Observe(elapsed.Seconds())
		if a.log.Enabled(r.Context(), slog.LevelDebug) {
			a.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
				slog.String("operation", op),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", elapsed))
		}
	})
}

func statusClass(status int) string {
	return strconv.Itoa(status/100) + "xx"
}

// statusWriter records the status a handler writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// authenticate requires HTTP basic authentication on every path when a
// username is configured. Both values are compared in constant time, over
// their SHA-256 digests so that the comparison does not reveal their
// lengths either. Credentials are never logged.
func (a *API) authenticate(next http.Handler) http.Handler {
	if a.cfg.Auth.Username == "" {
		return next
	}
	wantUser := sha256.Sum256([]byte(a.cfg.Auth.Username))
	wantPass := sha256.Sum256([]byte(a.cfg.Auth.Password))
	unauthorized := a.instrument("unauthorized", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="qakka"`)
		a.writeError(w, r, &httpError{status: http.StatusUnauthorized, msg: "authentication required: send the configured username and password with HTTP basic authentication"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(user))
		gotPass := sha256.Sum256([]byte(pass))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			unauthorized.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
