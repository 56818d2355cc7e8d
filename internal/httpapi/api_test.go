package httpapi

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qakka/qakka/client"
)

func TestBasicAuth(t *testing.T) { forEachBackend(t, testBasicAuth) }

func testBasicAuth(t *testing.T, b backend) {
	s := newTestServer(t, b, func(st *setup) { st.api.Auth = Auth{Username: "admin", Password: "s3cr3t"} })
	s.createQueue(client.Queue{Name: "q"})
	cases := []struct {
		name       string
		user, pass string
		setAuth    bool
		status     int
	}{
		{"no credentials", "", "", false, http.StatusUnauthorized},
		{"wrong password", "admin", "admin", true, http.StatusUnauthorized},
		{"wrong user", "root", "s3cr3t", true, http.StatusUnauthorized},
		{"password prefix", "admin", "s3cr", true, http.StatusUnauthorized},
		{"right credentials", "admin", "s3cr3t", true, http.StatusOK},
	}
	paths := []string{"/api/status", "/api/queues", "/api/queues/q/config", "/api/queues/q/messages?wait=0", "/api/no/such/route"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range paths {
				req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.setAuth {
					req.SetBasicAuth(tc.user, tc.pass)
				}
				r := s.send(req)
				want := tc.status
				if want == http.StatusOK && strings.HasPrefix(path, "/api/no/") {
					want = http.StatusNotFound
				}
				if r.status != want {
					t.Errorf("GET %s: status %d, want %d", path, r.status, want)
					continue
				}
				if want != http.StatusUnauthorized {
					continue
				}
				if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="qakka"` {
					t.Errorf("GET %s: WWW-Authenticate %q", path, got)
				}
				r.expectError(t, http.StatusUnauthorized, "authentication required")
			}
		})
	}
}

func TestBasicAuthNotLogged(t *testing.T) { forEachBackend(t, testBasicAuthNotLogged) }

func testBasicAuthNotLogged(t *testing.T, b backend) {
	var logs bytes.Buffer
	var mu sync.Mutex
	s := newTestServer(t, b, func(st *setup) {
		st.api.Auth = Auth{Username: "admin", Password: "hunter2-secret"}
		st.engine.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	req, err := http.NewRequest(http.MethodGet, s.url+"/api/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "wrong-secret")
	s.send(req)
	s.request(http.MethodGet, "/api/queues", "", nil).expect(t, http.StatusOK)

	mu.Lock()
	defer mu.Unlock()
	for _, secret := range []string{"hunter2-secret", "wrong-secret", "Basic "} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs.String(), "operation=list_queues") {
		t.Errorf("no debug request log; logs:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestNewRejectsBadConfig(t *testing.T) { forEachBackend(t, testNewRejectsBadConfig) }

func testNewRejectsBadConfig(t *testing.T, b backend) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without an engine succeeded")
	}
	s := newTestServer(t, b)
	if _, err := New(Config{Engine: s.engine, Auth: Auth{Password: "x"}}); err == nil {
		t.Error("New with a password but no username succeeded")
	}
	if _, err := New(Config{Engine: s.engine, MaxBodyBytes: -1}); err == nil {
		t.Error("New with a negative body limit succeeded")
	}
}

func TestUnknownRouteAndMethod(t *testing.T) { forEachBackend(t, testUnknownRouteAndMethod) }

func testUnknownRouteAndMethod(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})

	for _, path := range []string{"/api/nothing", "/api/queues/q/unknown", "/api/queues/q/messages/a/b/c", "/api/"} {
		s.request(http.MethodGet, path, "", nil).expectError(t, http.StatusNotFound, "no route", path)
	}

	cases := []struct {
		method, path string
		allow        []string
	}{
		{http.MethodPatch, "/api/queues", []string{"GET", "POST"}},
		{http.MethodPost, "/api/queues/q/config", []string{"GET", "PUT"}},
		{http.MethodPost, "/api/status", []string{"GET"}},
		{http.MethodGet, "/api/queues/q/redrive", []string{"POST"}},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := s.request(tc.method, tc.path, "", nil)
			r.expectError(t, http.StatusMethodNotAllowed, tc.method, "not allowed")
			allow := r.header.Get("Allow")
			for _, m := range tc.allow {
				if !strings.Contains(allow, m) {
					t.Errorf("Allow %q lacks %s", allow, m)
				}
			}
		})
	}
}

func TestStorageUnavailable(t *testing.T) { forEachBackend(t, testStorageUnavailable) }

func testStorageUnavailable(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	s.sendJSON("q", `{}`)

	s.store.failCommits.Store(true)
	r := s.request(http.MethodPost, "/api/queues/q/messages", "application/json", []byte(`{}`))
	r.expectError(t, http.StatusServiceUnavailable, "storage unavailable")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if strings.Contains(string(r.body), errInjected.Error()) {
		t.Errorf("reply leaks the storage error: %s", r.body)
	}

	s.store.failCommits.Store(false)
	waitFor(t, "the queue to recover", func() bool {
		return s.request(http.MethodPost, "/api/queues/q/messages", "application/json", []byte(`{}`)).status == http.StatusOK
	})
	if st := s.stats("q"); st.Available != 2 {
		t.Errorf("available %d after recovery, want the 2 acknowledged sends", st.Available)
	}
}

func TestRequestMetrics(t *testing.T) { forEachBackend(t, testRequestMetrics) }

func testRequestMetrics(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	s.request(http.MethodGet, "/api/queues/nope/config", "", nil).expect(t, http.StatusNotFound)
	s.request(http.MethodGet, "/api/nothing", "", nil).expect(t, http.StatusNotFound)

	families, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[string]uint64)
	for _, f := range families {
		if f.GetName() != "qakka_http_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			var op, class string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "operation":
					op = l.GetValue()
				case "status_class":
					class = l.GetValue()
				}
			}
			counts[op+" "+class] = m.GetHistogram().GetSampleCount()
		}
	}
	for _, key := range []string{"create_queue 2xx", "get_config 4xx", "not_found 4xx"} {
		if counts[key] != 1 {
			t.Errorf("%s observed %d times, want 1; all: %v", key, counts[key], counts)
		}
	}
}

func TestMetricsSharedRegistry(t *testing.T) { forEachBackend(t, testMetricsSharedRegistry) }

func testMetricsSharedRegistry(t *testing.T, b backend) {
	s := newTestServer(t, b)
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := New(Config{Engine: s.engine, Registerer: reg}); err != nil {
			t.Fatalf("second API on one registry: %v", err)
		}
	}
}

func TestUnexpectedErrorIsGeneric500(t *testing.T) {
	forEachBackend(t, testUnexpectedErrorIsGeneric500)
}

func testUnexpectedErrorIsGeneric500(t *testing.T, b backend) {
	s := newTestServer(t, b)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	api, err := New(Config{Engine: s.engine, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/queues/q/stats", nil)
	api.writeError(rec, req, errors.New("disk on fire"))

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); body != `{"message":"internal server error"}`+"\n" {
		t.Errorf("body %q, want a generic message", body)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "disk on fire"); n != 1 {
		t.Errorf("error logged %d times, want once; logs:\n%s", n, logs.String())
	}
}
