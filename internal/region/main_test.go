package region_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/qakka/qakka/internal/httpapi"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/backendtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Credentials every test region accepts and presents.
const (
	regionUser = "regions"
	regionPass = "s3cret-between-regions"
)

// waitTimeout bounds every wait for a transfer in these tests.
const waitTimeout = 60 * time.Second

// backend is a storage backend the region tests run on.
type backend = backendtest.Backend

// forEachBackend runs test once on each backend, as subtests named after it.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	backendtest.ForEach(t, test)
}

// cluster is a set of regions, each one node on a store of its own (a
// directory on Pebble, keyspaces on Cassandra) with the REST API and the
// transfer endpoint on loopback.
type cluster struct {
	t     testing.TB
	nodes map[string]*node
	order []string
}

// node is one region. Its address stays the same across restarts.
type node struct {
	c    *cluster
	name string
	addr string
	// openStore opens the node's store. Every call opens the same data.
	openStore func() (storage.Store, error)
	// configure adjusts the region configuration before each start.
	configure func(*region.Config)

	mu      sync.Mutex
	running bool
	store   storage.Store
	engine  *queue.Engine
	router  *region.Router
	reg     *prometheus.Registry
	srv     *http.Server
	served  chan struct{}
}

// newCluster starts one node per name, each on its own store of backend b.
// Every node sends to all the others and accepts their transfers.
// configure, if not nil, adjusts each node's region configuration.
func newCluster(t testing.TB, b backend, names []string, configure func(*region.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: map[string]*node{}, order: names}

	// Place runs first because it skips the test when the backend is not
	// set up. Cleanups run in reverse order, so the nodes stop before
	// Place's cleanups remove their data.
	stores := map[string]func() (storage.Store, error){}
	for _, name := range names {
		stores[name] = b.Place(t, time.Now)
	}
	listeners := map[string]net.Listener{}
	t.Cleanup(func() {
		for _, name := range names {
			if n, ok := c.nodes[name]; ok {
				n.stop()
			}
		}
		// A node that never started leaves its listener open. Closing a
		// listener that a server closed already returns an error, ignored here.
		for _, ln := range listeners {
			_ = ln.Close()
		}
	})

	for _, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		listeners[name] = ln
		c.nodes[name] = &node{c: c, name: name, addr: ln.Addr().String(), openStore: stores[name], configure: configure}
	}
	for _, name := range names {
		c.nodes[name].start(listeners[name])
	}
	return c
}

func (c *cluster) node(name string) *node {
	n, ok := c.nodes[name]
	if !ok {
		c.t.Fatalf("no region %q", name)
	}
	return n
}

func (n *node) url() string { return "http://" + n.addr }

// config returns the node's region configuration.
func (n *node) config() region.Config {
	cfg := region.Config{
		Local:          n.name,
		Accept:         region.Credentials{Username: regionUser, Password: regionPass},
		RequestTimeout: 5 * time.Second,
		BackoffBase:    20 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
		LogInterval:    time.Minute,
		Logger:         testLogger(n.c.t).With(slog.String("node", n.name)),
	}
	for _, other := range n.c.order {
		if other == n.name {
			continue
		}
		cfg.Remotes = append(cfg.Remotes, region.Remote{
			Name:        other,
			Endpoints:   []string{n.c.nodes[other].url()},
			Credentials: region.Credentials{Username: regionUser, Password: regionPass},
		})
	}
	if n.configure != nil {
		n.configure(&cfg)
	}
	return cfg
}

// start opens the node's store, starts its engine and router, and serves
// on ln.
func (n *node) start(ln net.Listener) {
	t := n.c.t
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		t.Fatalf("region %s is running already", n.name)
	}

	store, err := n.openStore()
	if err != nil {
		t.Fatalf("open store of region %s: %v", n.name, err)
	}
	cfg := n.config()
	engine, err := queue.New(store, queue.Options{Region: n.name, Logger: cfg.Logger, ReceiveWait: 100 * time.Millisecond, MaxReceiveWait: 2 * time.Second})
	if err != nil {
		t.Fatalf("new engine of region %s: %v", n.name, err)
	}
	if err := engine.Start(context.Background()); err != nil {
		t.Fatalf("start engine of region %s: %v", n.name, err)
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	router, err := region.New(engine, cfg)
	if err != nil {
		t.Fatalf("new router of region %s: %v", n.name, err)
	}
	if err := router.Start(context.Background()); err != nil {
		t.Fatalf("start router of region %s: %v", n.name, err)
	}
	api, err := httpapi.New(httpapi.Config{Engine: engine, Logger: cfg.Logger, Region: n.name, Regions: router})
	if err != nil {
		t.Fatalf("new API of region %s: %v", n.name, err)
	}

	mux := http.NewServeMux()
	mux.Handle(region.TransferPath, router.TransferHandler())
	mux.Handle("/", api.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()

	n.store, n.engine, n.router, n.reg, n.srv, n.served = store, engine, router, reg, srv, served
	n.running = true
}

// stop stops serving and closes the router, the engine and the store, in
// that order. Stopping a stopped node does nothing.
func (n *node) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return
	}
	n.running = false
	_ = n.srv.Close()
	<-n.served
	_ = n.router.Close()
	_ = n.engine.Close()
	_ = n.store.Close()
}

// restart starts a stopped node again on its store and address.
func (n *node) restart() {
	t := n.c.t
	t.Helper()
	var ln net.Listener
	waitFor(t, "listen on "+n.addr+" again", func() bool {
		var err error
		ln, err = net.Listen("tcp", n.addr)
		if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("listen on %s: %v", n.addr, err)
		}
		return err == nil
	})
	n.start(ln)
}

func (n *node) eng() *queue.Engine {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.engine
}

func (n *node) rt() *region.Router {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.router
}

// waitFor polls cond until it holds, and fails the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain receives and acks every message of a queue, and returns how often
// each messageId came. It stops once a receive returns nothing.
func drain(t testing.TB, n *node, queueName string) map[uuid.UUID]int {
	t.Helper()
	ctx := context.Background()
	seen := map[uuid.UUID]int{}
	noWait := time.Duration(0)
	for {
		ds, err := n.eng().Receive(ctx, queueName, queue.ReceiveRequest{Count: 100, Wait: &noWait})
		if err != nil {
			t.Fatalf("receive from %s in region %s: %v", queueName, n.name, err)
		}
		if len(ds) == 0 {
			return seen
		}
		ids := make([]uuid.UUID, len(ds))
		for i, d := range ds {
			seen[d.MessageID]++
			ids[i] = d.QueueMessageID
		}
		if _, err := n.eng().AckBatch(ctx, queueName, ids); err != nil {
			t.Fatalf("ack in %s of region %s: %v", queueName, n.name, err)
		}
	}
}

// total returns the messages of a queue in any state, or -1 when the
// queue does not exist.
func total(t testing.TB, n *node, queueName string) int64 {
	t.Helper()
	s, err := n.eng().Stats(context.Background(), queueName)
	if errors.Is(err, queue.ErrQueueNotFound) {
		return -1
	}
	if err != nil {
		t.Fatalf("stats of %s in region %s: %v", queueName, n.name, err)
	}
	return s.Available + s.Inflight + s.Delayed
}

// checkOnce fails unless got holds every id of want exactly once, and
// nothing else.
func checkOnce(t testing.TB, where string, got map[uuid.UUID]int, want []uuid.UUID) {
	t.Helper()
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("%s: message %s arrived %d times, want once", where, id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d distinct messages arrived, want %d", where, len(got), len(want))
	}
}

func createQueue(t testing.TB, n *node, cfg queue.Config) {
	t.Helper()
	if _, _, _, err := n.rt().CreateQueue(context.Background(), cfg); err != nil {
		t.Fatalf("create queue %s in region %s: %v", cfg.Name, n.name, err)
	}
}

// sendN sends count JSON messages to queue through the router of n, with
// regions spec, and returns their ids.
func sendN(t testing.TB, n *node, queueName, spec string, count int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for i := 0; i < count; i += 10 {
		var batch []queue.SendRequest
		for j := i; j < min(i+10, count); j++ {
			batch = append(batch, queue.SendRequest{ContentType: "application/json", Data: fmt.Appendf(nil, `{"n":%d}`, j)})
		}
		res, err := n.rt().Send(context.Background(), queueName, spec, batch)
		if err != nil {
			t.Fatalf("send to %s in region %s: %v", queueName, n.name, err)
		}
		for _, m := range res.Messages {
			ids = append(ids, m.MessageID)
		}
	}
	return ids
}

// postTransfer POSTs a transfer request to n with the given credentials
// and returns the status and body.
func postTransfer(t testing.TB, n *node, user, pass string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.url()+region.TransferPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", region.TransferPath, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return resp.StatusCode, b
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// closedAddress returns a loopback address where nothing listens.
func closedAddress(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
