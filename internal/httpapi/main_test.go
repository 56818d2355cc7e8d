package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testStart is the fake clock's start time in every test.
var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// faultStore is a real store whose commits fail while failCommits is set,
// to inject a storage outage.
type faultStore struct {
	storage.Store
	failCommits atomic.Bool
}

var errInjected = errors.New("injected commit failure")

func (f *faultStore) Commit(ctx context.Context, b *storage.Batch) error {
	if f.failCommits.Load() {
		return errInjected
	}
	return f.Store.Commit(ctx, b)
}

// MaxBatchWrites passes on the wrapped store's batch limit, so that the
// engine sizes its rounds as it does on the store itself.
func (f *faultStore) MaxBatchWrites() int {
	if bl, ok := f.Store.(storage.BatchLimiter); ok {
		return bl.MaxBatchWrites()
	}
	return 0
}

// testServer is the API over a real engine on a real store, served on
// loopback.
type testServer struct {
	t      *testing.T
	url    string
	client *http.Client
	engine *queue.Engine
	clock  *clock.Fake
	store  *faultStore
	reg    *prometheus.Registry
	user   string
	pass   string
}

// setup holds what a test may change before the server starts.
type setup struct {
	engine queue.Options
	api    Config
	// wrap, when set, wraps the API's handler.
	wrap func(http.Handler) http.Handler
}

// newTestServer starts an engine with a fake clock on a fresh store of
// backend b, and the API on an httptest server. Cleanup stops all of them.
func newTestServer(t *testing.T, b backend, options ...func(*setup)) *testServer {
	t.Helper()
	st := setup{
		engine: queue.Options{Clock: clock.NewFake(testStart), Logger: testLogger(t)},
		api:    Config{Version: "test", StorageName: b.Name, StartedAt: testStart},
	}
	for _, o := range options {
		o(&st)
	}

	inner, err := b.Place(t, st.engine.Clock.Now)()
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	store := &faultStore{Store: inner}
	t.Cleanup(func() { _ = inner.Close() })

	engine, err := queue.New(store, st.engine)
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	if err := engine.Start(context.Background()); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() { _ = engine.Close() })

	reg := prometheus.NewRegistry()
	st.api.Engine = engine
	st.api.Registerer = reg
	st.api.Logger = st.engine.Logger
	api, err := New(st.api)
	if err != nil {
		t.Fatalf("new API: %v", err)
	}
	handler := api.Handler()
	if st.wrap != nil {
		handler = st.wrap(handler)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		// The engine stops first: it ends every long poll, so that Close
		// of the server does not wait for one on a stopped fake clock.
		_ = engine.Close()
		srv.Close()
	})

	fake, _ := st.engine.Clock.(*clock.Fake)
	return &testServer{
		t:      t,
		url:    srv.URL,
		client: srv.Client(),
		engine: engine,
		clock:  fake,
		store:  store,
		reg:    reg,
		user:   st.api.Auth.Username,
		pass:   st.api.Auth.Password,
	}
}

// testLogger logs to the test's output at Warn and above, so request
// failures show up next to the test that caused them.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// reply is a finished HTTP response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// request sends one request and reads the whole response. An empty
// contentType sends no Content-Type header.
func (s *testServer) request(method, path, contentType string, body []byte) reply {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	return s.requestReader(method, path, contentType, rd)
}

func (s *testServer) requestReader(method, path, contentType string, body io.Reader) reply {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatalf("new request %s %s: %v", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	return s.send(req)
}

func (s *testServer) send(req *http.Request) reply {
	s.t.Helper()
	r, err := s.roundTrip(req)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

func (s *testServer) roundTrip(req *http.Request) (reply, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("read response of %s %s: %w", req.Method, req.URL.Path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// asyncReply is the outcome of a request sent from another goroutine.
type asyncReply struct {
	reply
	err error
}

// getAsync sends a GET from a new goroutine and delivers its outcome on the
// returned channel. The caller must receive from it before the test ends.
func (s *testServer) getAsync(path string) <-chan asyncReply {
	out := make(chan asyncReply, 1)
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		s.t.Fatalf("new request GET %s: %v", path, err)
	}
	go func() {
		r, err := s.roundTrip(req)
		out <- asyncReply{reply: r, err: err}
	}()
	return out
}

// doJSON sends v as a JSON body (no body when v is nil).
func (s *testServer) doJSON(method, path string, v any) reply {
	s.t.Helper()
	if v == nil {
		return s.request(method, path, "", nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatalf("encode request: %v", err)
	}
	return s.request(method, path, "application/json", b)
}

// expect fails the test unless the reply has status.
func (r reply) expect(t *testing.T, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// decode parses the reply's JSON body into v.
func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// message returns the message of an error reply.
func (r reply) message(t *testing.T) string {
	t.Helper()
	var resp client.Response
	r.decode(t, &resp)
	if resp.Message == "" {
		t.Fatalf("error reply without a message: %s", r.body)
	}
	return resp.Message
}

// expectError checks an error reply's status and that its message contains
// every one of parts.
func (r reply) expectError(t *testing.T, status int, parts ...string) {
	t.Helper()
	r.expect(t, status)
	msg := r.message(t)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("message %q does not contain %q", msg, p)
		}
	}
}

// createQueue creates a queue with the given configuration.
func (s *testServer) createQueue(q client.Queue) {
	s.t.Helper()
	s.doJSON(http.MethodPost, "/api/queues", q).expect(s.t, http.StatusCreated)
}

// sendJSON sends one JSON payload and returns the send result.
func (s *testServer) sendJSON(queueName, payload string) client.SendResponse {
	s.t.Helper()
	var res client.SendResponse
	s.request(http.MethodPost, "/api/queues/"+queueName+"/messages", "application/json", []byte(payload)).
		expect(s.t, http.StatusOK).decode(s.t, &res)
	return res
}

// receive requests up to count messages without waiting.
func (s *testServer) receive(queueName string, count int) []client.QueueMessage {
	s.t.Helper()
	var res client.ReceiveResponse
	s.request(http.MethodGet, "/api/queues/"+queueName+"/messages?wait=0&count="+strconv.Itoa(count), "", nil).
		expect(s.t, http.StatusOK).decode(s.t, &res)
	if res.Count != len(res.QueueMessages) {
		s.t.Fatalf("count %d but %d messages", res.Count, len(res.QueueMessages))
	}
	if len(res.QueueMessages) > count {
		s.t.Fatalf("received %d messages, asked for at most %d", len(res.QueueMessages), count)
	}
	return res.QueueMessages
}

// stats returns a queue's stats.
func (s *testServer) stats(queueName string) client.Stats {
	s.t.Helper()
	var st client.Stats
	s.request(http.MethodGet, "/api/queues/"+queueName+"/stats", "", nil).expect(s.t, http.StatusOK).decode(s.t, &st)
	return st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
