package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/httpapi"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// faultStore is a real store whose commits fail while failCommits is set,
// so that the server returns 503 as it does during a storage outage.
type faultStore struct {
	storage.Store
	failCommits atomic.Bool
}

func (f *faultStore) Commit(ctx context.Context, b *storage.Batch) error {
	if f.failCommits.Load() {
		return errors.New("injected commit failure")
	}
	return f.Store.Commit(ctx, b)
}

// testServer is the REST API over a real engine on Pebble, served on
// loopback, with a recorder of the requests that reached it.
type testServer struct {
	url   string
	store *faultStore

	mu       sync.Mutex
	requests []string // "METHOD /path" of every request, in order
	// fault, when set, handles a request in place of the API: it returns
	// true when it wrote a response or broke the connection.
	fault func(w http.ResponseWriter, r *http.Request) bool
}

type serverOptions struct {
	auth httpapi.Auth
}

func newTestServer(t *testing.T, opts ...func(*serverOptions)) *testServer {
	t.Helper()
	var so serverOptions
	for _, o := range opts {
		o(&so)
	}

	pebble, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatalf("open pebble store: %v", err)
	}
	t.Cleanup(func() { _ = pebble.Close() })
	store := &faultStore{Store: pebble}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := queue.New(store, queue.Options{Logger: logger})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	if err := engine.Start(context.Background()); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() { _ = engine.Close() })

	api, err := httpapi.New(httpapi.Config{Engine: engine, Logger: logger, Auth: so.auth, Version: "test", StorageName: "pebble"})
	if err != nil {
		t.Fatalf("new API: %v", err)
	}
	ts := &testServer{store: store}
	handler := api.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.requests = append(ts.requests, r.Method+" "+r.URL.Path)
		fault := ts.fault
		ts.mu.Unlock()
		if fault != nil && fault(w, r) {
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	return ts
}

// setFault installs fault, or removes it when fault is nil, and clears
// the record of requests.
func (s *testServer) setFault(fault func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = fault
	s.requests = nil
}

// countRequests returns how many requests reached the server since the
// last setFault.
func (s *testServer) countRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// unavailable responds to every request with 503 and Retry-After: 0.
func unavailable(w http.ResponseWriter, _ *http.Request) bool {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "0")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `{"message":"storage unavailable: retry later"}`)
	return true
}

// dropConnections closes the connection of every request without a
// response, as a network fault would.
func dropConnections(w http.ResponseWriter, _ *http.Request) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
	return true
}

// fastRetries is a retry policy with short waits, so that tests of retries
// spend little time in backoff.
var fastRetries = client.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithRetryPolicy(fastRetries)}, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// mustCreate creates a queue and fails the test on error.
func mustCreate(t *testing.T, c *client.Client, q client.Queue) {
	t.Helper()
	if _, _, err := c.CreateQueue(testContext(t), q); err != nil {
		t.Fatalf("create queue %q: %v", q.Name, err)
	}
}

// receiveOne receives exactly one message without waiting.
func receiveOne(t *testing.T, c *client.Client, queueName string) client.QueueMessage {
	t.Helper()
	msgs, err := c.Receive(testContext(t), queueName, client.ReceiveOptions{Count: 1, Wait: new(time.Duration(0))})
	if err != nil {
		t.Fatalf("receive from %q: %v", queueName, err)
	}
	if len(msgs) != 1 {
		t.Fatalf("received %d messages from %q, want 1", len(msgs), queueName)
	}
	return msgs[0]
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

func TestNewValidatesBaseURL(t *testing.T) {
	tests := []struct {
		name    string
		baseURL string
		wantAPI string
		wantErr string
	}{
		{"root", "http://127.0.0.1:8080", "http://127.0.0.1:8080/api", ""},
		{"trailing slash", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/api", ""},
		{"api root", "https://example.test/api/", "https://example.test/api", ""},
		{"prefix", "http://127.0.0.1:8080/qakka", "http://127.0.0.1:8080/qakka/api", ""},
		{"no scheme", "127.0.0.1:8080", "", "scheme"},
		{"ftp", "ftp://host", "", "scheme must be http or https"},
		{"no host", "http://", "", "host is missing"},
		{"query", "http://host?x=1", "", "query or fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(tt.baseURL)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q) error %v, want one containing %q", tt.baseURL, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.baseURL, err)
			}
			if got := c.BaseURL(); got != tt.wantAPI {
				t.Errorf("BaseURL() = %q, want %q", got, tt.wantAPI)
			}
		})
	}
}

func TestNewRejectsInvalidRetryPolicy(t *testing.T) {
	for _, p := range []client.RetryPolicy{
		{MaxAttempts: 0},
		{MaxAttempts: 2, InitialBackoff: -time.Second},
		{MaxAttempts: 2, InitialBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := client.New("http://127.0.0.1:1", client.WithRetryPolicy(p)); err == nil {
			t.Errorf("New with retry policy %+v succeeded, want an error", p)
		}
	}
}

func TestQueueLifecycle(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)

	stored, created, err := c.CreateQueue(ctx, client.Queue{Name: "orders", HandlingTimeoutSec: 45, RetryCount: 2, DeadLetterQueue: "orders-dlq"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !created {
		t.Error("first create reported created = false")
	}
	if stored.HandlingTimeoutSec != 45 || stored.DeadLetterQueue != "orders-dlq" {
		t.Errorf("stored config %+v, want the values sent", stored)
	}

	_, created, err = c.CreateQueue(ctx, client.Queue{Name: "orders"})
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	if created {
		t.Error("second create reported created = true")
	}

	mustCreate(t, c, client.Queue{Name: "orders-dlq"})
	names, err := c.ListQueues(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if strings.Join(slices.Sorted(slices.Values(names)), ",") != "orders,orders-dlq" {
		t.Errorf("list = %v, want [orders orders-dlq]", names)
	}

	got, err := c.GetQueue(ctx, "orders")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.HandlingTimeoutSec != 45 || got.RetryCount != 2 || got.QueueType != client.QueueTypeMultiRegion {
		t.Errorf("get = %+v, want the created config", got)
	}

	got.HandlingTimeoutSec = 90
	updated, err := c.UpdateQueue(ctx, got)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.HandlingTimeoutSec != 90 || updated.RetryCount != 2 || updated.DeadLetterQueue != "orders-dlq" {
		t.Errorf("update = %+v, want timeout 90 and the other fields kept", updated)
	}

	if err := c.DeleteQueue(ctx, "orders"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.GetQueue(ctx, "orders"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("get after delete: error %v, want ErrNotFound", err)
	}
}

func TestSendReceiveAckJSON(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})

	sent, err := c.SendJSON(ctx, "q", map[string]int{"id": 7}, client.SendOptions{})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if sent.MessageID == "" || sent.QueueMessageID == "" {
		t.Fatalf("send result %+v lacks ids", sent)
	}

	m := receiveOne(t, c, "q")
	if m.Data != `{"id":7}` || m.Href != "" || m.ContentType != "application/json" {
		t.Errorf("received %+v, want the JSON inline", m)
	}
	if m.MessageID != sent.MessageID || m.ReceiveCount != 1 {
		t.Errorf("received message id %s count %d, want %s and 1", m.MessageID, m.ReceiveCount, sent.MessageID)
	}
	data, contentType, err := c.Payload(ctx, m)
	if err != nil || string(data) != `{"id":7}` || contentType != "application/json" {
		t.Errorf("Payload = %q, %q, %v; want the inline JSON", data, contentType, err)
	}

	if err := c.Ack(ctx, "q", m.QueueMessageID); err != nil {
		t.Fatalf("ack: %v", err)
	}
	err = c.Ack(ctx, "q", m.QueueMessageID)
	if !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("second ack: error %v, want ErrBadRequest", err)
	}
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || !strings.Contains(apiErr.Message, "not inflight") {
		t.Errorf("second ack: error %v, want a *client.Error saying not inflight", err)
	}
}

func TestSendBinaryAndFetchData(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "images"})

	payload := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 0xff}
	if _, err := c.Send(ctx, "images", payload, client.SendOptions{ContentType: "image/png"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := receiveOne(t, c, "images")
	if m.Href == "" || m.Data != "" {
		t.Fatalf("received %+v, want a link and no inline data", m)
	}

	data, contentType, err := c.MessageData(ctx, "images", m.QueueMessageID)
	if err != nil {
		t.Fatalf("data: %v", err)
	}
	if !bytes.Equal(data, payload) || contentType != "image/png" {
		t.Errorf("data = %v, %q; want %v, image/png", data, contentType, payload)
	}
	data, _, err = c.Payload(ctx, m)
	if err != nil || !bytes.Equal(data, payload) {
		t.Errorf("Payload = %v, %v; want %v", data, err, payload)
	}

	if _, err := c.Send(ctx, "images", []byte("raw"), client.SendOptions{}); err != nil {
		t.Fatalf("send without content type: %v", err)
	}
	m = receiveOne(t, c, "images")
	if m.ContentType != "application/octet-stream" {
		t.Errorf("content type %q, want application/octet-stream by default", m.ContentType)
	}

	if _, _, err := c.MessageData(ctx, "images", "0192f1d2-7c3e-7a41-9b0e-5d2c8e4f6a10"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("data of an unknown id: error %v, want ErrNotFound", err)
	}
}

func TestSendDelayAndExpiration(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})

	res, err := c.Send(ctx, "q", []byte("later"), client.SendOptions{ContentType: "text/plain", Delay: new(time.Hour), Expiration: 2 * time.Hour})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if d := time.Until(time.UnixMilli(res.DeliverDate)); d < 50*time.Minute {
		t.Errorf("deliver date %s from now, want about an hour", d)
	}
	if res.ExpirationDate <= res.DeliverDate {
		t.Errorf("expiration %d not after delivery %d", res.ExpirationDate, res.DeliverDate)
	}

	st, err := c.Stats(ctx, "q")
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st.Delayed != 1 || st.Available != 0 {
		t.Errorf("stats %+v, want 1 delayed and 0 available", st)
	}

	for _, opts := range []client.SendOptions{
		{Delay: new(1500 * time.Microsecond)},
		{Expiration: 1500 * time.Millisecond},
		{Delay: new(-time.Second)},
	} {
		if _, err := c.Send(ctx, "q", []byte("x"), opts); err == nil {
			t.Errorf("send with %+v succeeded, want an error for the value", opts)
		}
	}
}

func TestBatchSendAndAck(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})

	res, err := c.SendBatch(ctx, "q", []client.BatchSendEntry{
		{ID: "a", Data: []byte(`{"n":1}`)},
		{ID: "b", Base64: "aGVsbG8=", ContentType: "text/plain"},
		{ID: "bad"},
	})
	if err != nil {
		t.Fatalf("send batch: %v", err)
	}
	if res.Count != 2 || len(res.Results) != 3 {
		t.Fatalf("batch result %+v, want 2 stored of 3", res)
	}
	if res.Results[2].Status != http.StatusBadRequest || res.Results[2].ID != "bad" {
		t.Errorf("third result %+v, want 400 for the entry without a payload", res.Results[2])
	}
	if _, err := c.SendBatch(ctx, "q", nil); err == nil {
		t.Error("empty batch succeeded, want an error")
	}

	msgs, err := c.Receive(ctx, "q", client.ReceiveOptions{Count: 10, Wait: new(time.Duration(0))})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs) != 2 {
		t.Fatalf("received %d messages, want 2", len(msgs))
	}

	ack, err := c.AckBatch(ctx, "q", []string{msgs[0].QueueMessageID, msgs[1].QueueMessageID, "not-a-uuid"})
	if err != nil {
		t.Fatalf("ack batch: %v", err)
	}
	if ack.Count != 2 || ack.Results[2].Status != http.StatusBadRequest {
		t.Errorf("ack batch %+v, want 2 acked and 400 for the bad id", ack)
	}
	if _, err := c.AckBatch(ctx, "q", nil); err == nil {
		t.Error("empty ack batch succeeded, want an error")
	}
}

func TestNackAndExtend(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q", HandlingTimeoutSec: 30})
	if _, err := c.SendJSON(ctx, "q", "job", client.SendOptions{}); err != nil {
		t.Fatalf("send: %v", err)
	}

	m := receiveOne(t, c, "q")
	ext, err := c.Extend(ctx, "q", m.QueueMessageID, 10*time.Minute)
	if err != nil {
		t.Fatalf("extend: %v", err)
	}
	if ext.VisibleUntil <= m.VisibleUntil {
		t.Errorf("extended deadline %d not after the first %d", ext.VisibleUntil, m.VisibleUntil)
	}
	if _, err := c.Extend(ctx, "q", m.QueueMessageID, 0); err != nil {
		t.Errorf("extend by the queue's timeout: %v", err)
	}
	if _, err := c.Extend(ctx, "q", m.QueueMessageID, 1500*time.Millisecond); err == nil {
		t.Error("extend by 1.5s succeeded, want an error for a fraction of a second")
	}

	nack, err := c.Nack(ctx, "q", m.QueueMessageID, 0)
	if err != nil {
		t.Fatalf("nack: %v", err)
	}
	if nack.QueueMessageID == "" || nack.QueueMessageID == m.QueueMessageID || nack.DeadLettered {
		t.Errorf("nack %+v, want a new id and no dead-lettering", nack)
	}

	again := receiveOne(t, c, "q")
	if again.QueueMessageID != nack.QueueMessageID || again.ReceiveCount != 2 {
		t.Errorf("redelivery id %s count %d, want %s and 2", again.QueueMessageID, again.ReceiveCount, nack.QueueMessageID)
	}
	delayed, err := c.Nack(ctx, "q", again.QueueMessageID, time.Hour)
	if err != nil {
		t.Fatalf("nack with delay: %v", err)
	}
	if d := time.Until(time.UnixMilli(delayed.DeliverDate)); d < 50*time.Minute {
		t.Errorf("nack with a 1h delay delivers in %s", d)
	}
	if _, err := c.Nack(ctx, "q", again.QueueMessageID, 0); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("nack of an old id: error %v, want ErrBadRequest", err)
	}
}

func TestPurge(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})
	for range 3 {
		if _, err := c.Send(ctx, "q", []byte("x"), client.SendOptions{}); err != nil {
			t.Fatalf("send: %v", err)
		}
	}

	res, err := c.Purge(ctx, "q")
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if res.Count != 3 {
		t.Errorf("purged %d, want 3", res.Count)
	}
	st, err := c.Stats(ctx, "q")
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st.Available != 0 || st.Totals.Purged != 3 || st.Totals.Sent != 3 {
		t.Errorf("stats after purge %+v, want 0 available, 3 sent and 3 purged", st)
	}
}

func TestAuditAndPeek(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})

	var first client.SendResult
	for i := range 3 {
		res, err := c.Send(ctx, "q", []byte("m"), client.SendOptions{ContentType: "text/plain"})
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if i == 0 {
			first = res
		}
	}
	m := receiveOne(t, c, "q")
	if err := c.Ack(ctx, "q", m.QueueMessageID); err != nil {
		t.Fatalf("ack: %v", err)
	}

	trail, err := c.Audit(ctx, "q", first.MessageID)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	var actions []string
	for _, e := range trail.Events {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); got != "sent,received,acked" {
		t.Errorf("audit actions %s, want sent,received,acked", got)
	}
	if _, err := c.Audit(ctx, "q", "not-a-uuid"); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("audit of a malformed id: error %v, want ErrBadRequest", err)
	}

	page, err := c.Peek(ctx, "q", client.PeekOptions{Limit: 1})
	if err != nil {
		t.Fatalf("peek: %v", err)
	}
	if len(page.Entries) != 1 || page.Next == "" {
		t.Fatalf("first page %+v, want 1 entry and a cursor", page)
	}
	next, err := c.Peek(ctx, "q", client.PeekOptions{Limit: 5, Cursor: page.Next})
	if err != nil {
		t.Fatalf("peek next page: %v", err)
	}
	if len(next.Entries) != 1 || next.Next != "" {
		t.Errorf("second page %+v, want the last entry and no cursor", next)
	}
	if next.Entries[0].QueueMessageID == page.Entries[0].QueueMessageID {
		t.Error("second page repeats the first page's entry")
	}

	inflight, err := c.Peek(ctx, "q", client.PeekOptions{State: "inflight"})
	if err != nil {
		t.Fatalf("peek inflight: %v", err)
	}
	if len(inflight.Entries) != 0 {
		t.Errorf("peek inflight lists %d entries, want 0", len(inflight.Entries))
	}
	if _, err := c.Peek(ctx, "q", client.PeekOptions{State: "lost"}); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("peek with an unknown state: error %v, want ErrBadRequest", err)
	}
}

func TestRedrive(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "dlq"})
	mustCreate(t, c, client.Queue{Name: "q", RetryCount: 0, DeadLetterQueue: "dlq"})
	if _, err := c.SendJSON(ctx, "q", "poison", client.SendOptions{}); err != nil {
		t.Fatalf("send: %v", err)
	}

	m := receiveOne(t, c, "q")
	nack, err := c.Nack(ctx, "q", m.QueueMessageID, 0)
	if err != nil {
		t.Fatalf("nack: %v", err)
	}
	if !nack.DeadLettered {
		t.Fatalf("nack %+v, want the message dead-lettered", nack)
	}
	waitFor(t, "the message to reach the dead-letter queue", func() bool {
		st, err := c.Stats(ctx, "dlq")
		return err == nil && st.Available == 1
	})

	res, err := c.Redrive(ctx, "dlq", 10)
	if err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if res.Moved != 1 || res.Skipped != 0 {
		t.Errorf("redrive %+v, want 1 moved", res)
	}
	waitFor(t, "the message to return to its source queue", func() bool {
		st, err := c.Stats(ctx, "q")
		return err == nil && st.Available == 1
	})
	if _, err := c.Redrive(ctx, "dlq", -1); err == nil {
		t.Error("redrive with a negative max succeeded, want an error")
	}
}

func TestStatus(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)

	st, err := c.Status(testContext(t))
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.Name != "Qakka" || st.Version != "test" || st.Storage != "pebble" {
		t.Errorf("status %+v, want Qakka, test, pebble", st)
	}
}

func TestUnknownQueueIsNotFound(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	const id = "0192f1d2-7c3e-7a41-9b0e-5d2c8e4f6a10"

	calls := map[string]func() error{
		"GetQueue":    func() error { _, err := c.GetQueue(ctx, "nope"); return err },
		"UpdateQueue": func() error { _, err := c.UpdateQueue(ctx, client.Queue{Name: "nope"}); return err },
		"DeleteQueue": func() error { return c.DeleteQueue(ctx, "nope") },
		"Send":        func() error { _, err := c.Send(ctx, "nope", []byte("x"), client.SendOptions{}); return err },
		"SendBatch": func() error {
			_, err := c.SendBatch(ctx, "nope", []client.BatchSendEntry{{Data: []byte("1")}})
			return err
		},
		"Receive":     func() error { _, err := c.Receive(ctx, "nope", client.ReceiveOptions{}); return err },
		"MessageData": func() error { _, _, err := c.MessageData(ctx, "nope", id); return err },
		"Ack":         func() error { return c.Ack(ctx, "nope", id) },
		"AckBatch":    func() error { _, err := c.AckBatch(ctx, "nope", []string{id}); return err },
		"Nack":        func() error { _, err := c.Nack(ctx, "nope", id, 0); return err },
		"Extend":      func() error { _, err := c.Extend(ctx, "nope", id, time.Minute); return err },
		"Purge":       func() error { _, err := c.Purge(ctx, "nope"); return err },
		"Stats":       func() error { _, err := c.Stats(ctx, "nope"); return err },
		"Audit":       func() error { _, err := c.Audit(ctx, "nope", id); return err },
		"Peek":        func() error { _, err := c.Peek(ctx, "nope", client.PeekOptions{}); return err },
		"Redrive":     func() error { _, err := c.Redrive(ctx, "nope", 0); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("error %v, want ErrNotFound", err)
			}
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Message != `queue "nope" not found` {
				t.Errorf("error %v, want the message: queue \"nope\" not found", err)
			}
		})
	}
}

func TestTypedErrors(t *testing.T) {
	srv := newTestServer(t, func(o *serverOptions) { o.auth = httpapi.Auth{Username: "app", Password: "s3cret"} })
	c := newClient(t, srv.url, client.WithBasicAuth("app", "s3cret"))
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "small", MaxMessageSize: 8})

	t.Run("bad request", func(t *testing.T) {
		_, err := c.Receive(ctx, "small", client.ReceiveOptions{Count: 100_000})
		if !errors.Is(err, client.ErrBadRequest) || client.StatusCode(err) != http.StatusBadRequest {
			t.Errorf("receive with a huge count: error %v, want ErrBadRequest", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		_, err := c.Send(ctx, "small", []byte("nine bytes"), client.SendOptions{})
		if !errors.Is(err, client.ErrTooLarge) {
			t.Errorf("send over the limit: error %v, want ErrTooLarge", err)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		for _, anon := range []*client.Client{
			newClient(t, srv.url),
			newClient(t, srv.url, client.WithBasicAuth("app", "wrong")),
		} {
			_, err := anon.ListQueues(ctx)
			if !errors.Is(err, client.ErrUnauthorized) {
				t.Errorf("list without valid credentials: error %v, want ErrUnauthorized", err)
			}
			if errors.Is(err, client.ErrNotFound) {
				t.Errorf("error %v matches ErrNotFound too", err)
			}
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		srv.store.failCommits.Store(true)
		defer srv.store.failCommits.Store(false)
		_, err := c.Send(ctx, "small", []byte("x"), client.SendOptions{})
		if !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("send during a storage outage: error %v, want ErrUnavailable", err)
		}
		var apiErr *client.Error
		if errors.As(err, &apiErr) && apiErr.RetryAfter != time.Second {
			t.Errorf("RetryAfter = %s, want the server's 1s", apiErr.RetryAfter)
		}
	})
	t.Run("plain-text error body", func(t *testing.T) {
		srv.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "upstream broke", http.StatusBadGateway)
			return true
		})
		defer srv.setFault(nil)
		_, err := c.Purge(ctx, "small")
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Message != "bad gateway: upstream broke" {
			t.Errorf("error %v, want a *client.Error 502 with the status text and the body", err)
		}
	})
}

func TestErrorBodyText(t *testing.T) {
	long := strings.Repeat("word ", 100)
	cases := []struct {
		name        string
		contentType string
		body        string
		want        string
	}{
		{"plain text", "text/plain; charset=utf-8", "upstream broke\n", "bad gateway: upstream broke"},
		{"no Content-Type", "", "proxy said no", "bad gateway: proxy said no"},
		{"whitespace collapsed", "text/plain", "  line one\r\n\tline two  \n", "bad gateway: line one line two"},
		{"control characters dropped", "text/plain", "bad\x1b[31m red", "bad gateway: bad [31m red"},
		{"HTML title", "text/html", "<HTML><head><TITLE>502 Proxy &amp; Cache Error</TITLE></head><body><h1>Proxy Error</h1></body></html>", "bad gateway: 502 Proxy & Cache Error"},
		{"HTML without title", "text/html", "<html><body><h1>Proxy</h1><p>went away</p></body></html>", "bad gateway: Proxy went away"},
		{"status text repeated", "text/plain", "502 Bad Gateway", "bad gateway"},
		{"JSON without message", "application/json", `{"error":"nope"}`, `bad gateway: {"error":"nope"}`},
		{"empty body", "text/plain", "", "bad gateway"},
		{"binary body", "application/octet-stream", "\xff\xfe\x00\x01", "bad gateway"},
		{"long body trimmed", "text/plain", long, "bad gateway: " + strings.TrimSpace(strings.Repeat("word ", 40)) + "..."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				} else {
					w.Header()["Content-Type"] = nil
				}
				w.WriteHeader(http.StatusBadGateway)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()

			_, err := newClient(t, srv.URL).Purge(testContext(t), "q")
			var apiErr *client.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v, want a *client.Error", err)
			}
			if apiErr.Message != tc.want {
				t.Errorf("message %q, want %q", apiErr.Message, tc.want)
			}
		})
	}
}

func TestPlainHTTPToTLSServer(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a plain HTTP request reached the handler of a TLS server")
	}))
	// The server logs the failed handshake, which is the expected outcome.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()

	plain := "http://" + strings.TrimPrefix(srv.URL, "https://")
	_, err := newClient(t, plain).ListQueues(testContext(t))
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		t.Fatalf("error %v, want a *client.Error 400", err)
	}
	if want := "bad request: Client sent an HTTP request to an HTTPS server."; apiErr.Message != want {
		t.Errorf("message %q, want %q", apiErr.Message, want)
	}
}

// stateChangingCalls are the calls that must reach the server exactly once.
func stateChangingCalls(c *client.Client, ctx context.Context, id string) map[string]func() error {
	return map[string]func() error{
		"CreateQueue": func() error { _, _, err := c.CreateQueue(ctx, client.Queue{Name: "other"}); return err },
		"UpdateQueue": func() error { _, err := c.UpdateQueue(ctx, client.Queue{Name: "q"}); return err },
		"DeleteQueue": func() error { return c.DeleteQueue(ctx, "q") },
		"Send":        func() error { _, err := c.Send(ctx, "q", []byte("x"), client.SendOptions{}); return err },
		"SendJSON":    func() error { _, err := c.SendJSON(ctx, "q", 1, client.SendOptions{}); return err },
		"SendBatch": func() error {
			_, err := c.SendBatch(ctx, "q", []client.BatchSendEntry{{Data: []byte("1")}})
			return err
		},
		"Receive":  func() error { _, err := c.Receive(ctx, "q", client.ReceiveOptions{}); return err },
		"Ack":      func() error { return c.Ack(ctx, "q", id) },
		"AckBatch": func() error { _, err := c.AckBatch(ctx, "q", []string{id}); return err },
		"Nack":     func() error { _, err := c.Nack(ctx, "q", id, 0); return err },
		"Extend":   func() error { _, err := c.Extend(ctx, "q", id, time.Minute); return err },
		"Purge":    func() error { _, err := c.Purge(ctx, "q"); return err },
		"Redrive":  func() error { _, err := c.Redrive(ctx, "q", 0); return err },
	}
}

// readCalls are the idempotent reads that are retried.
func readCalls(c *client.Client, ctx context.Context, id string) map[string]func() error {
	return map[string]func() error{
		"ListQueues":  func() error { _, err := c.ListQueues(ctx); return err },
		"GetQueue":    func() error { _, err := c.GetQueue(ctx, "q"); return err },
		"Stats":       func() error { _, err := c.Stats(ctx, "q"); return err },
		"Audit":       func() error { _, err := c.Audit(ctx, "q", id); return err },
		"Peek":        func() error { _, err := c.Peek(ctx, "q", client.PeekOptions{}); return err },
		"Status":      func() error { _, err := c.Status(ctx); return err },
		"MessageData": func() error { _, _, err := c.MessageData(ctx, "q", id); return err },
	}
}

func TestStateChangesAreNotRetried(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})
	const id = "0192f1d2-7c3e-7a41-9b0e-5d2c8e4f6a10"

	faults := map[string]func(http.ResponseWriter, *http.Request) bool{
		"503":             unavailable,
		"dropped request": dropConnections,
	}
	for faultName, fault := range faults {
		for name, call := range stateChangingCalls(c, ctx, id) {
			t.Run(faultName+"/"+name, func(t *testing.T) {
				srv.setFault(fault)
				defer srv.setFault(nil)

				if err := call(); err == nil {
					t.Fatal("call succeeded through the fault")
				}
				if n := srv.countRequests(); n != 1 {
					t.Errorf("server saw %d requests, want exactly 1", n)
				}
			})
		}
	}
}

func TestReadsAreRetried(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})
	if _, err := c.Send(ctx, "q", []byte("x"), client.SendOptions{}); err != nil {
		t.Fatalf("send: %v", err)
	}
	peek, err := c.Peek(ctx, "q", client.PeekOptions{})
	if err != nil || len(peek.Entries) != 1 {
		t.Fatalf("peek = %+v, %v; want one entry", peek, err)
	}
	id := peek.Entries[0].QueueMessageID
	messageID := peek.Entries[0].MessageID

	for name, call := range readCalls(c, ctx, id) {
		t.Run("gives up after MaxAttempts/"+name, func(t *testing.T) {
			srv.setFault(unavailable)
			defer srv.setFault(nil)

			if err := call(); !errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("error %v, want ErrUnavailable", err)
			}
			if n := srv.countRequests(); n != fastRetries.MaxAttempts {
				t.Errorf("server saw %d requests, want %d", n, fastRetries.MaxAttempts)
			}
		})
	}

	// The audit call above used a queueMessageId; recovery needs a real
	// messageId to succeed.
	calls := readCalls(c, ctx, id)
	calls["Audit"] = func() error { _, err := c.Audit(ctx, "q", messageID); return err }
	faults := map[string]func(http.ResponseWriter, *http.Request) bool{
		"503":             unavailable,
		"dropped request": dropConnections,
	}
	for faultName, fault := range faults {
		for name, call := range calls {
			t.Run("recovers after "+faultName+"/"+name, func(t *testing.T) {
				var failed atomic.Int32
				srv.setFault(func(w http.ResponseWriter, r *http.Request) bool {
					if failed.Add(1) > 2 {
						return false
					}
					return fault(w, r)
				})
				defer srv.setFault(nil)

				if err := call(); err != nil {
					t.Fatalf("call failed after two faults: %v", err)
				}
				if n := srv.countRequests(); n < 3 {
					t.Errorf("server saw %d requests, want at least 3", n)
				}
			})
		}
	}
}

// cancelAfterResponse is a transport that cancels a context shortly after
// a response has arrived, with its body read into memory. The client is
// then usually waiting in its backoff; if it is not, it must notice the
// cancelled context before it sends again.
type cancelAfterResponse struct {
	next   http.RoundTripper
	cancel context.CancelFunc
}

func (c cancelAfterResponse) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	time.AfterFunc(50*time.Millisecond, c.cancel)
	return resp, err
}

func TestRetryStopsWithContext(t *testing.T) {
	srv := newTestServer(t)
	srv.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return true
	})

	// The backoff is an hour, so the call returns only if it stops waiting
	// when the context ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := &http.Client{Transport: cancelAfterResponse{next: http.DefaultTransport, cancel: cancel}}
	c, err := client.New(srv.url, client.WithHTTPClient(hc),
		client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Hour, MaxBackoff: time.Hour}))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}

	_, err = c.Stats(ctx, "q")
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("error %v, want the last response's ErrUnavailable", err)
	}
	if n := srv.countRequests(); n != 1 {
		t.Errorf("server saw %d requests, want 1 before the context ended", n)
	}
}

func TestClientSendsUserAgentAndCredentials(t *testing.T) {
	var mu sync.Mutex
	var gotAgent, gotUser, gotPass string
	srv := newTestServer(t)
	srv.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		gotAgent = r.UserAgent()
		gotUser, gotPass, _ = r.BasicAuth()
		return false
	})

	hc := &http.Client{Timeout: time.Minute}
	c := newClient(t, srv.url, client.WithHTTPClient(hc), client.WithUserAgent("billing/2.1"), client.WithBasicAuth("app", "pw"))
	if _, err := c.Status(testContext(t)); err != nil {
		t.Fatalf("status: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotAgent != "billing/2.1" || gotUser != "app" || gotPass != "pw" {
		t.Errorf("server saw agent %q, user %q, password %q", gotAgent, gotUser, gotPass)
	}
}

func TestArgumentErrorsSendNothing(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	srv.setFault(nil)

	calls := map[string]func() error{
		"empty queue name":  func() error { _, err := c.Stats(ctx, ""); return err },
		"empty create name": func() error { _, _, err := c.CreateQueue(ctx, client.Queue{}); return err },
		"empty ack id":      func() error { return c.Ack(ctx, "q", "") },
		"negative count":    func() error { _, err := c.Receive(ctx, "q", client.ReceiveOptions{Count: -1}); return err },
		"fractional wait": func() error {
			_, err := c.Receive(ctx, "q", client.ReceiveOptions{Wait: new(time.Microsecond)})
			return err
		},
		"fractional visibility": func() error {
			_, err := c.Receive(ctx, "q", client.ReceiveOptions{Visibility: 1500 * time.Millisecond})
			return err
		},
		"negative peek limit": func() error { _, err := c.Peek(ctx, "q", client.PeekOptions{Limit: -1}); return err },
		"empty audit id":      func() error { _, err := c.Audit(ctx, "q", ""); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			srv.setFault(nil)
			if err := call(); err == nil {
				t.Fatal("call succeeded, want an argument error")
			}
			if n := srv.countRequests(); n != 0 {
				t.Errorf("server saw %d requests, want none", n)
			}
		})
	}
}

func TestReceiveSendsNoBody(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv.url)
	ctx := testContext(t)
	mustCreate(t, c, client.Queue{Name: "q"})

	var mu sync.Mutex
	var encodings []string
	var lengths []int64
	srv.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		encodings = append(encodings, r.TransferEncoding...)
		lengths = append(lengths, r.ContentLength)
		return false
	})
	defer srv.setFault(nil)

	for range 2 {
		if _, err := c.Receive(ctx, "q", client.ReceiveOptions{Wait: new(time.Duration(0))}); err != nil {
			t.Fatalf("receive: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(encodings) != 0 {
		t.Errorf("receive sent Transfer-Encoding %v, want none", encodings)
	}
	for _, n := range lengths {
		if n != 0 {
			t.Errorf("receive sent a body of length %d, want none", n)
		}
	}
}
