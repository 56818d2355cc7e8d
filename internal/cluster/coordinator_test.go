package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

// lockedBuffer is a log destination that tests read while a logger writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// coordinatorSetup is node "a" of a cluster on a Pebble store and a fake
// clock, with a coordinator that the test drives by calling reconcile.
type coordinatorSetup struct {
	store   *pebblestore.Store
	clock   *clock.Fake
	engine  *queue.Engine
	members *staticMembers
	coord   *Coordinator
	logs    *lockedBuffer
}

func newCoordinatorSetup(t *testing.T) *coordinatorSetup {
	t.Helper()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	engine, err := queue.New(store, queue.Options{Node: "a", Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = engine.Close()
		_ = store.Close()
	})
	members := &staticMembers{self: "a", live: []Member{{Name: "a"}}}
	logs := &lockedBuffer{}
	coord, err := NewCoordinator(engine, store, members, CoordinatorConfig{
		Clock:  fc,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &coordinatorSetup{store: store, clock: fc, engine: engine, members: members, coord: coord, logs: logs}
}

// queueOwnedBy returns a queue name that rendezvous hashing gives to want
// among live.
func queueOwnedBy(t *testing.T, want string, live []Member) string {
	t.Helper()
	for i := range 1000 {
		name := fmt.Sprintf("queue-%d", i)
		if m, _ := Owner(name, live); m.Name == want {
			return name
		}
	}
	t.Fatalf("no queue name found for owner %s", want)
	return ""
}

func TestCoordinatorTakesAndHandsOverQueue(t *testing.T) {
	s := newCoordinatorSetup(t)
	ctx := context.Background()
	both := []Member{{Name: "a"}, {Name: "b"}}
	name := queueOwnedBy(t, "b", both)
	if _, _, err := s.engine.CreateQueue(ctx, queue.Config{Name: name}); err != nil {
		t.Fatal(err)
	}

	// Alone, node a owns every queue.
	s.coord.reconcile(ctx)
	if got := s.coord.Held(); got != 1 {
		t.Fatalf("held %d leases, want 1", got)
	}
	if got := s.engine.Serving(); len(got) != 1 || got[0].Queue != name {
		t.Fatalf("engine serves %+v, want %s", got, name)
	}

	// Node b joins and wins the queue: node a hands it over and releases
	// the lease, so node b need not wait for it to expire.
	s.members.mu.Lock()
	s.members.live = both
	s.members.mu.Unlock()
	s.coord.reconcile(ctx)
	if got := s.coord.Held(); got != 0 {
		t.Fatalf("held %d leases after the handover, want 0", got)
	}
	if got := s.engine.Serving(); len(got) != 0 {
		t.Fatalf("engine still serves %+v", got)
	}
	l, err := s.store.Lease(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Released() {
		t.Fatalf("lease %+v not released", l)
	}
}

func TestCoordinatorWarnsOfLeaseHolderOutsideCluster(t *testing.T) {
	s := newCoordinatorSetup(t)
	ctx := context.Background()
	if _, _, err := s.engine.CreateQueue(ctx, queue.Config{Name: "jobs"}); err != nil {
		t.Fatal(err)
	}
	// Node x, which node a does not see, holds the queue and renews it.
	x, err := s.store.AcquireLease(ctx, "jobs", "x", s.clock.Now(), DefaultLeaseTTL, DefaultSettle)
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		s.coord.reconcile(ctx)
		s.clock.Advance(DefaultLeaseTTL / 2)
		if x, err = s.store.RenewLease(ctx, x, s.clock.Now(), DefaultLeaseTTL); err != nil {
			t.Fatal(err)
		}
	}
	if s.coord.Held() != 0 {
		t.Fatal("node a took a lease that another node renews")
	}
	if !strings.Contains(s.logs.String(), "holder=x") {
		t.Fatalf("no warning names the lease holder; logs:\n%s", s.logs.String())
	}
}

var _ storage.LeaseStore = (*pebblestore.Store)(nil)
