// Package httpapi serves Qakka's REST API under /api: queue administration,
// sends, receives, acks and the extensions the original Qakka lacked (batch
// send and ack, nack, extend, purge, stats, audit, peek and redrive).
//
// Paths and JSON shapes follow the original Qakka. Its defects are fixed:
// every bad request is a 400 with {"message": ...}, an unknown queue is a 404
// for every operation, a send replies only after the message is durable, a
// receive never returns more than count, and the data endpoint returns the
// stored Content-Type. One function, writeError, maps errors to statuses.
package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

// DefaultMaxBodyBytes is the default of Config.MaxBodyBytes: 16 MiB.
const DefaultMaxBodyBytes = 16 << 20

// Config holds what the API needs. Engine is required; every other field
// has a default.
type Config struct {
	// Engine serves the queues. It must be started.
	Engine *queue.Engine
	// Logger receives request logs (at Debug) and unexpected errors. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer takes the request latency histogram. Nil registers nothing.
	Registerer prometheus.Registerer
	// Auth turns on HTTP basic authentication when its Username is set.
	Auth Auth
	// Version, StorageName and Region are reported by GET /api/status.
	// Default region: the engine's.
	Version     string
	StorageName string
	Region      string
	// Regions routes sends and queue configurations to the regions they
	// name, and reports them in GET /api/status. It must be started.
	// Default: a router with Region as its only region, which stores every
	// send locally.
	Regions *region.Router
	// StartedAt is when the server started. Default: when New ran.
	StartedAt time.Time
	// Cluster returns the cluster section of GET /api/status; nil on a
	// single node.
	Cluster func() *client.ClusterStatus
	// MaxBodyBytes bounds the body of every request except a single send,
	// whose body is bounded by the queue's maximum message size. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Auth holds the single user that may call the API.
type Auth struct {
	Username string
	Password string
}

// API is the REST API. Its handler is safe for concurrent use.
type API struct {
	engine  *queue.Engine
	regions *region.Router
	log     *slog.Logger
	cfg     Config
	metrics *metrics
	handler http.Handler
}

// New checks cfg, registers the API's metrics and builds its routes.
func New(cfg Config) (*API, error) {
	if cfg.Engine == nil {
		return nil, errors.New("httpapi: engine is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Region == "" {
		cfg.Region = cfg.Engine.Options().Region
	}
	if cfg.Regions == nil {
		r, err := region.New(cfg.Engine, region.Config{Local: cfg.Region, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("httpapi: %w", err)
		}
		cfg.Regions = r
	}

	if cfg.StartedAt.IsZero() {
		cfg.StartedAt = time.Now()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes < 1 {
		return nil, fmt.Errorf("httpapi: maximum body size %d must be at least 1 byte", cfg.MaxBodyBytes)
	}
	if cfg.Auth.Username == "" && cfg.Auth.Password != "" {
		return nil, errors.New("httpapi: auth password is set but username is empty")
	}

	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	a := &API{
		engine:  cfg.Engine,
		regions: cfg.Regions,
		log:     cfg.Logger.With(slog.String("component", "httpapi")),
		cfg:     cfg,
		metrics: m,
	}
	a.handler = a.routes()
	return a, nil
}

// Handler returns the handler of every path under /api. It replies with a
// JSON 404 to any other path, so it may be mounted at / as well as at /api/.
func (a *API) Handler() http.Handler { return a.handler }

// routes registers every operation on a standard library mux.
func (a *API) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, op string, h http.HandlerFunc) {
		mux.Handle(pattern, a.instrument(op, h))
	}
	// Operations that would change an outbox reject its name; reads and
	// purge stay open to operators.
	write := func(pattern, op string, h http.HandlerFunc) {
		handle(pattern, op, a.rejectReserved(h))
	}

	handle("POST /api/queues", "create_queue", a.createQueue)
	handle("GET /api/queues", "list_queues", a.listQueues)
	handle("GET /api/queues/{q}/config", "get_config", a.getConfig)
	write("PUT /api/queues/{q}/config", "update_config", a.updateConfig)
	write("DELETE /api/queues/{q}", "delete_queue", a.deleteQueue)

	write("POST /api/queues/{q}/messages", "send", a.send)
	write("POST /api/queues/{q}/messages/batch", "send_batch", a.sendBatch)
	write("GET /api/queues/{q}/messages", "receive", a.receive)
	handle("GET /api/queues/{q}/data/{id}", "get_data", a.getData)
	write("DELETE /api/queues/{q}/messages/{id}", "ack", a.ack)
	write("POST /api/queues/{q}/messages/ack", "ack_batch", a.ackBatch)
	write("PUT /api/queues/{q}/messages/{id}", "nack", a.nack)
	write("POST /api/queues/{q}/messages/{id}/extend", "extend", a.extend)
	handle("DELETE /api/queues/{q}/messages", "purge", a.purge)

	handle("GET /api/queues/{q}/stats", "stats", a.stats)
	handle("GET /api/queues/{q}/messages/{id}/audit", "audit", a.audit)
	handle("GET /api/queues/{q}/peek", "peek", a.peek)
	write("POST /api/queues/{q}/redrive", "redrive", a.redrive)
	handle("GET /api/status", "status", a.status)

	return a.authenticate(a.jsonFallback(mux))
}

// rejectReserved rejects with 400 a request whose queue name is reserved
// for an outbox of the transfer log between regions.
func (a *API) rejectReserved(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name := r.PathValue("q"); region.IsReserved(name) {
			a.writeError(w, r, region.ReservedError("queue name", name))
			return
		}
		h(w, r)
	}
}

// jsonFallback serves the mux, but replies to a request that matches no
// route with a JSON 404 or 405 instead of the mux's plain-text errors.
func (a *API) jsonFallback(mux *http.ServeMux) http.Handler {
	notFound := a.instrument("not_found", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}

		// The mux's own handler sets Allow for a 405; run it against a
		// recorder to learn which of the two it is.
		rec := &statusRecorder{header: make(http.Header)}
		h.ServeHTTP(rec, r)
		switch {
		case rec.status == http.StatusMethodNotAllowed:
			a.instrument("method_not_allowed", func(w http.ResponseWriter, r *http.Request) {
				allow := rec.header.Get("Allow")
				w.Header().Set("Allow", allow)
				a.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)})
			}).ServeHTTP(w, r)
		case rec.status == http.StatusMovedPermanently || rec.status == http.StatusTemporaryRedirect || rec.status == http.StatusPermanentRedirect:
			// The mux redirects to a cleaned path; pass that on unchanged.
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
		default:
			notFound.ServeHTTP(w, r)
		}
	})
}

// statusRecorder keeps the status and header a handler writes and drops its
// body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(p), nil
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}
