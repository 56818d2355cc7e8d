package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
)

const (
	testLeaseTTL = 30 * time.Second
	testSettle   = time.Second
)

// cluster is two cluster engines, nodes "a" and "b", on one shared store
// and one fake clock. Each engine's notifications reach the other.
type cluster struct {
	t      *testing.T
	clock  *clock.Fake
	store  storage.Store
	leases storage.LeaseStore
	a, b   *queue.Engine
	lost   chan string
	// notify turns notifications between the engines off when false.
	notify bool
}

func newCluster(t *testing.T, b backend) *cluster {
	t.Helper()
	fc := clock.NewFake(epoch)
	st, err := b.Place(t, fc.Now)()
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	leases, ok := st.(storage.LeaseStore)
	if !ok {
		t.Fatalf("the %s store holds no leases", b.Name)
	}
	c := &cluster{t: t, clock: fc, store: st, leases: leases, lost: make(chan string, 16), notify: true}
	c.a = c.engine("a")
	c.b = c.engine("b")
	t.Cleanup(func() {
		for _, e := range []*queue.Engine{c.a, c.b} {
			if err := e.Close(); err != nil {
				t.Errorf("close engine: %v", err)
			}
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return c
}

func (c *cluster) engine(node string) *queue.Engine {
	c.t.Helper()
	e, err := queue.New(c.store, queue.Options{Node: node, Clock: c.clock})
	if err != nil {
		c.t.Fatalf("new engine: %v", err)
	}
	e.SetClusterHooks(queue.ClusterHooks{
		Stored: func(q string, shard uint64) {
			if !c.notify {
				return
			}
			for _, other := range []*queue.Engine{c.a, c.b} {
				if other != nil && other != e {
					_ = other.Incoming(context.Background(), q, shard)
				}
			}
		},
		Lost: func(q string, _ storage.Lease) { c.lost <- node + "/" + q },
	})
	if err := e.Start(context.Background()); err != nil {
		c.t.Fatalf("start engine: %v", err)
	}
	return e
}

// take acquires the lease of queue for node at the fake clock's time and
// serves the queue on e.
func (c *cluster) take(e *queue.Engine, node, q string) storage.Lease {
	c.t.Helper()
	ctx := context.Background()
	l, err := c.leases.AcquireLease(ctx, q, node, c.clock.Now(), testLeaseTTL, testSettle)
	if err != nil {
		c.t.Fatalf("node %s: acquire lease of %s: %v", node, q, err)
	}
	if err := e.Serve(ctx, l); err != nil {
		c.t.Fatalf("node %s: serve %s: %v", node, q, err)
	}
	return l
}

func receiveOn(t *testing.T, e *queue.Engine, q string, count int) []queue.Delivery {
	t.Helper()
	zero := time.Duration(0)
	visibility := 10 * time.Minute
	ds, err := e.Receive(context.Background(), q, queue.ReceiveRequest{Count: count, Wait: &zero, Visibility: &visibility})
	if err != nil {
		t.Fatalf("receive from %s: %v", q, err)
	}
	return ds
}

func sendOn(t *testing.T, e *queue.Engine, q string, msgs ...queue.SendRequest) []queue.SendResult {
	t.Helper()
	res, err := e.Send(context.Background(), q, msgs)
	if err != nil {
		t.Fatalf("send to %s: %v", q, err)
	}
	return res
}

func text(body string) queue.SendRequest {
	return queue.SendRequest{ContentType: "text/plain", Data: []byte(body)}
}

func TestClusterOnlyLeaseHolderWrites(t *testing.T) {
	forEachBackend(t, testClusterOnlyLeaseHolderWrites)
}

// Two nodes both believe they own one queue: the deposed owner can no
// longer deliver or ack, and none of its attempts changes the lease holder's state.
func testClusterOnlyLeaseHolderWrites(t *testing.T, b backend) {
	c := newCluster(t, b)
	ctx := context.Background()
	if _, _, err := c.a.CreateQueue(ctx, queue.Config{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	c.take(c.a, "a", "q")
	sendOn(t, c.a, "q", text("one"), text("two"), text("three"))
	held := receiveOn(t, c.a, "q", 1)
	if len(held) != 1 {
		t.Fatalf("node a received %d messages, want 1", len(held))
	}

	// Node b's clock runs ahead: by it, node a's lease expired long ago.
	// Node b takes the queue while node a, by its own clock, still holds
	// the lease and serves the queue.
	ahead := c.clock.Now().Add(testLeaseTTL + testSettle + time.Second)
	lb, err := c.leases.AcquireLease(ctx, "q", "b", ahead, testLeaseTTL, testSettle)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Epoch != 2 {
		t.Fatalf("node b's lease has epoch %d, want 2", lb.Epoch)
	}
	// Node b serves with a lease that, by the shared clock, lasts until
	// ahead plus the TTL.
	if err := c.b.Serve(ctx, lb); err != nil {
		t.Fatal(err)
	}

	zero := time.Duration(0)
	if _, err := c.a.Receive(ctx, "q", queue.ReceiveRequest{Count: 10, Wait: &zero}); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("receive on the deposed owner: error %v, want ErrNotOwner", err)
	}
	select {
	case got := <-c.lost:
		if got != "a/q" {
			t.Fatalf("lost %s, want a/q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node a did not report the lost lease")
	}
	if err := c.a.Ack(ctx, "q", held[0].QueueMessageID); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("ack on the deposed owner: error %v, want ErrNotOwner", err)
	}

	// The lease holder still has both undelivered messages and the one
	// node a delivered before its lease ran out, still inflight.
	ds := receiveOn(t, c.b, "q", 10)
	if len(ds) != 2 {
		t.Fatalf("node b received %d messages, want the 2 that node a never delivered", len(ds))
	}
	for _, d := range ds {
		if d.ReceiveCount != 1 {
			t.Errorf("message %s has receive count %d, want 1", d.MessageID, d.ReceiveCount)
		}
	}
	if err := c.b.Ack(ctx, "q", held[0].QueueMessageID); err != nil {
		t.Fatalf("ack on the lease holder of the delivery node a made: %v", err)
	}
	s, err := c.b.Stats(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if s.Available != 0 || s.Inflight != 2 || s.Totals.Acked != 1 {
		t.Errorf("stats available %d inflight %d acked %d, want 0, 2, 1", s.Available, s.Inflight, s.Totals.Acked)
	}
}

func TestClusterExpiredLeaseStopsServing(t *testing.T) {
	forEachBackend(t, testClusterExpiredLeaseStopsServing)
}

// An owner whose lease expired by its own clock, because it could not
// renew it, stops serving the queue instead of writing to it.
func testClusterExpiredLeaseStopsServing(t *testing.T, b backend) {
	c := newCluster(t, b)
	ctx := context.Background()
	if _, _, err := c.a.CreateQueue(ctx, queue.Config{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	c.take(c.a, "a", "q")
	sendOn(t, c.a, "q", text("one"))
	c.clock.Advance(testLeaseTTL)
	zero := time.Duration(0)
	if _, err := c.a.Receive(ctx, "q", queue.ReceiveRequest{Count: 1, Wait: &zero}); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("receive with an expired lease: error %v, want ErrNotOwner", err)
	}
	select {
	case got := <-c.lost:
		if got != "a/q" {
			t.Fatalf("lost %s, want a/q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node a did not report the expired lease")
	}
	// Once the lease is free, the next owner finds the message untouched.
	c.clock.Advance(testSettle + time.Second)
	c.take(c.b, "b", "q")
	if ds := receiveOn(t, c.b, "q", 10); len(ds) != 1 || ds[0].ReceiveCount != 1 {
		t.Fatalf("new owner received %+v, want the one message, delivered for the first time", ds)
	}
}

func TestClusterSendThroughOtherNode(t *testing.T) {
	forEachBackend(t, testClusterSendThroughOtherNode)
}

// A send to a node that does not own the queue is stored there and
// delivered by the owner under the queueMessageId the send returned.
func testClusterSendThroughOtherNode(t *testing.T, b backend) {
	c := newCluster(t, b)
	ctx := context.Background()
	if _, _, err := c.b.CreateQueue(ctx, queue.Config{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	c.take(c.a, "a", "q")

	delay := 10 * time.Second
	sent := sendOn(t, c.b, "q", text("now"), queue.SendRequest{ContentType: "text/plain", Data: []byte("later"), Delay: &delay})

	var got []queue.Delivery
	eventually(t, "the owner adopts the incoming message", func() bool {
		got = append(got, receiveOn(t, c.a, "q", 10)...)
		return len(got) > 0
	})
	if len(got) != 1 || got[0].QueueMessageID != sent[0].QueueMessageID || got[0].MessageID != sent[0].MessageID {
		t.Fatalf("received %+v, want only the first send %+v", got, sent[0])
	}

	c.clock.Advance(delay)
	got = nil
	eventually(t, "the delayed message becomes available", func() bool {
		got = append(got, receiveOn(t, c.a, "q", 10)...)
		return len(got) > 0
	})
	if got[0].MessageID != sent[1].MessageID {
		t.Fatalf("received message %s, want the delayed %s", got[0].MessageID, sent[1].MessageID)
	}
	s, err := c.a.Stats(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if s.Totals.Sent != 2 {
		t.Errorf("sent total %d, want 2", s.Totals.Sent)
	}
	if _, err := c.b.Stats(ctx, "q"); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("stats on a node that does not serve the queue: error %v, want ErrNotOwner", err)
	}
}

func TestClusterSweepFindsUnannouncedSends(t *testing.T) {
	forEachBackend(t, testClusterSweepFindsUnannouncedSends)
}

// Incoming messages whose notification was lost are adopted by the owner's
// periodic sweep, and a new owner adopts those waiting when it takes over.
func testClusterSweepFindsUnannouncedSends(t *testing.T, b backend) {
	c := newCluster(t, b)
	c.notify = false
	ctx := context.Background()
	if _, _, err := c.a.CreateQueue(ctx, queue.Config{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	// Stored before any node serves the queue.
	early := sendOn(t, c.b, "q", text("early"))
	c.take(c.a, "a", "q")
	late := sendOn(t, c.b, "q", text("late"))

	want := map[string]bool{early[0].MessageID.String(): true, late[0].MessageID.String(): true}
	eventually(t, "the owner's sweep adopts both messages", func() bool {
		c.clock.Advance(time.Second)
		for _, d := range receiveOn(t, c.a, "q", 10) {
			delete(want, d.MessageID.String())
		}
		return len(want) == 0
	})
}

func TestClusterHandoverKeepsInflight(t *testing.T) {
	forEachBackend(t, testClusterHandoverKeepsInflight)
}

// A graceful handover moves a queue with nothing delivered twice: the new
// owner keeps the old owner's deliveries inflight and accepts their acks.
func testClusterHandoverKeepsInflight(t *testing.T, b backend) {
	c := newCluster(t, b)
	ctx := context.Background()
	if _, _, err := c.a.CreateQueue(ctx, queue.Config{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	la := c.take(c.a, "a", "q")
	sendOn(t, c.a, "q", text("one"), text("two"))
	held := receiveOn(t, c.a, "q", 1)

	if err := c.a.Handover(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if err := c.leases.ReleaseLease(ctx, la); err != nil {
		t.Fatal(err)
	}
	// Released, so no wait for the lease to expire.
	c.take(c.b, "b", "q")

	ds := receiveOn(t, c.b, "q", 10)
	if len(ds) != 1 || ds[0].MessageID == held[0].MessageID {
		t.Fatalf("new owner received %+v, want only the message node a did not deliver", ds)
	}
	if err := c.b.Ack(ctx, "q", held[0].QueueMessageID); err != nil {
		t.Fatalf("ack on the new owner of a delivery by the old one: %v", err)
	}
	s, err := c.b.Stats(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if s.Totals.Received != 2 {
		t.Errorf("received total %d, want 2: a handover redelivers nothing", s.Totals.Received)
	}
}

func TestClusterDeadLetterToOtherNode(t *testing.T) {
	forEachBackend(t, testClusterDeadLetterToOtherNode)
}

// A message dead-lettered into a queue that another node serves moves there
// exactly once.
func testClusterDeadLetterToOtherNode(t *testing.T, b backend) {
	c := newCluster(t, b)
	ctx := context.Background()
	for _, cfg := range []queue.Config{{Name: "dlq"}, {Name: "q", DeadLetterQueue: "dlq", RetryCount: 0}} {
		if _, _, err := c.a.CreateQueue(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	c.take(c.a, "a", "q")
	c.take(c.b, "b", "dlq")
	sent := sendOn(t, c.a, "q", text("poison"))
	ds := receiveOn(t, c.a, "q", 1)
	if _, err := c.a.Nack(ctx, "q", ds[0].QueueMessageID, 0); err != nil {
		t.Fatal(err)
	}
	var got []queue.Delivery
	eventually(t, "the message reaches the dead-letter queue on node b", func() bool {
		got = append(got, receiveOn(t, c.b, "dlq", 10)...)
		return len(got) > 0
	})
	if len(got) != 1 || got[0].MessageID != sent[0].MessageID {
		t.Fatalf("dead-letter queue delivered %+v, want message %s once", got, sent[0].MessageID)
	}
	eventually(t, "the source counts the move", func() bool {
		s, err := c.a.Stats(ctx, "q")
		return err == nil && s.Totals.DeadLettered == 1 && s.Available == 0 && s.Inflight == 0
	})
}
