package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// env is an engine on a fresh store of one backend, on a fake clock.
type env struct {
	t *testing.T
	// openStore opens the test's store; restart calls it again.
	openStore func() (storage.Store, error)
	opts      queue.Options
	clock     *clock.Fake
	store     storage.Store
	e         *queue.Engine
}

func newEnv(t *testing.T, b backend, opts queue.Options) *env {
	t.Helper()
	fc := clock.NewFake(epoch)
	if opts.Clock == nil {
		opts.Clock = fc
	}
	v := &env{t: t, openStore: b.Place(t, opts.Clock.Now), opts: opts, clock: fc}
	v.open()
	t.Cleanup(v.close)
	return v
}

func (v *env) open() {
	v.t.Helper()
	st, err := v.openStore()
	if err != nil {
		v.t.Fatalf("open store: %v", err)
	}
	e, err := queue.New(st, v.opts)
	if err != nil {
		v.t.Fatalf("new engine: %v", err)
	}
	if err := e.Start(context.Background()); err != nil {
		v.t.Fatalf("start engine: %v", err)
	}
	v.store, v.e = st, e
}

func (v *env) close() {
	if v.e == nil {
		return
	}
	if err := v.e.Close(); err != nil {
		v.t.Errorf("close engine: %v", err)
	}
	if err := v.store.Close(); err != nil {
		v.t.Errorf("close store: %v", err)
	}
	v.e, v.store = nil, nil
}

// restart closes the engine and store cleanly and opens them again.
func (v *env) restart() {
	v.t.Helper()
	v.close()
	v.open()
}

func (v *env) create(cfg queue.Config) {
	v.t.Helper()
	if _, _, err := v.e.CreateQueue(context.Background(), cfg); err != nil {
		v.t.Fatalf("create queue %s: %v", cfg.Name, err)
	}
}

func (v *env) send(q string, body string) queue.SendResult {
	v.t.Helper()
	res, err := v.e.Send(context.Background(), q, []queue.SendRequest{{ContentType: "text/plain", Data: []byte(body)}})
	if err != nil {
		v.t.Fatalf("send to %s: %v", q, err)
	}
	return res[0]
}

func (v *env) sendWith(q string, m queue.SendRequest) queue.SendResult {
	v.t.Helper()
	res, err := v.e.Send(context.Background(), q, []queue.SendRequest{m})
	if err != nil {
		v.t.Fatalf("send to %s: %v", q, err)
	}
	return res[0]
}

func (v *env) receive(q string, count int) []queue.Delivery {
	v.t.Helper()
	zero := time.Duration(0)
	ds, err := v.e.Receive(context.Background(), q, queue.ReceiveRequest{Count: count, Wait: &zero})
	if err != nil {
		v.t.Fatalf("receive from %s: %v", q, err)
	}
	return ds
}

func (v *env) body(q string, d queue.Delivery) string {
	v.t.Helper()
	p, err := v.e.Payload(context.Background(), q, d.MessageID)
	if err != nil {
		v.t.Fatalf("payload of %s: %v", d.MessageID, err)
	}
	return string(p.Data)
}

func (v *env) stats(q string) queue.Stats {
	v.t.Helper()
	s, err := v.e.Stats(context.Background(), q)
	if err != nil {
		v.t.Fatalf("stats of %s: %v", q, err)
	}
	return s
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendReceiveAck(t *testing.T) { forEachBackend(t, testSendReceiveAck) }

func testSendReceiveAck(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q"})

	sent := v.send("q", "hello")
	ds := v.receive("q", 10)
	if len(ds) != 1 {
		t.Fatalf("received %d messages, want 1", len(ds))
	}
	d := ds[0]
	if d.MessageID != sent.MessageID {
		t.Errorf("messageId %s, want %s", d.MessageID, sent.MessageID)
	}
	if d.QueueMessageID != sent.QueueMessageID {
		t.Errorf("queueMessageId %s, want %s", d.QueueMessageID, sent.QueueMessageID)
	}
	if d.ReceiveCount != 1 {
		t.Errorf("receive count %d, want 1", d.ReceiveCount)
	}
	if got := v.body("q", d); got != "hello" {
		t.Errorf("payload %q, want hello", got)
	}
	if !d.Deadline.Equal(epoch.Add(queue.DefaultVisibilityTimeout)) {
		t.Errorf("deadline %s, want %s", d.Deadline, epoch.Add(queue.DefaultVisibilityTimeout))
	}
	if got := v.receive("q", 1); len(got) != 0 {
		t.Errorf("second receive got %d messages, want 0", len(got))
	}

	if err := v.e.Ack(context.Background(), "q", d.QueueMessageID); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := v.e.Ack(context.Background(), "q", d.QueueMessageID); !errors.Is(err, queue.ErrNotInflight) {
		t.Errorf("second ack: %v, want ErrNotInflight", err)
	}
	if _, err := v.e.Payload(context.Background(), "q", d.MessageID); !errors.Is(err, queue.ErrMessageNotFound) {
		t.Errorf("payload after ack: %v, want ErrMessageNotFound", err)
	}
	s := v.stats("q")
	if s.Available != 0 || s.Inflight != 0 || s.Totals.Sent != 1 || s.Totals.Received != 1 || s.Totals.Acked != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestReceiveCountBound(t *testing.T) { forEachBackend(t, testReceiveCountBound) }

func testReceiveCountBound(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q"})
	for i := range 25 {
		v.send("q", fmt.Sprint(i))
	}
	for _, n := range []int{1, 7, 10} {
		if got := v.receive("q", n); len(got) != n {
			t.Errorf("receive count=%d got %d", n, len(got))
		}
	}
	if got := v.receive("q", 100); len(got) != 7 {
		t.Errorf("last receive got %d, want 7", len(got))
	}
	zero := time.Duration(0)
	for _, n := range []int{0, -1, queue.DefaultMaxReceiveCount + 1} {
		_, err := v.e.Receive(context.Background(), "q", queue.ReceiveRequest{Count: n, Wait: &zero})
		var inv *queue.InvalidError
		if !errors.As(err, &inv) {
			t.Errorf("receive count=%d: %v, want InvalidError", n, err)
		}
	}
}

func TestFIFOAcrossBufferAndShards(t *testing.T) { forEachBackend(t, testFIFOAcrossBufferAndShards) }

func testFIFOAcrossBufferAndShards(t *testing.T, b backend) {
	// A tiny buffer and tiny shards exercise refills and shard retirement.
	v := newEnv(t, b, queue.Options{BufferSize: 3, ShardSize: 5})
	v.create(queue.Config{Name: "q"})
	const n = 60
	for i := range n {
		v.send("q", fmt.Sprint(i))
	}
	for i := 0; i < n; {
		ds := v.receive("q", 4)
		if len(ds) == 0 {
			t.Fatalf("receive returned nothing after %d messages", i)
		}
		for _, d := range ds {
			if got := v.body("q", d); got != fmt.Sprint(i) {
				t.Fatalf("message %d has payload %q", i, got)
			}
			if err := v.e.Ack(context.Background(), "q", d.QueueMessageID); err != nil {
				t.Fatalf("ack: %v", err)
			}
			i++
		}
	}
	meta, err := v.store.Meta(context.Background(), "q")
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Shards) > 1 {
		t.Errorf("%d shards still listed after every message was acked: %+v", len(meta.Shards), meta.Shards)
	}
	if meta.Head != meta.NextSeq {
		t.Errorf("head %d, want next seq %d", meta.Head, meta.NextSeq)
	}
	for _, st := range storage.States {
		for shard := uint64(0); shard <= storage.ShardOf(meta.NextSeq, 5); shard++ {
			es, err := v.store.ScanShard(context.Background(), "q", storage.ShardRef{State: st, Shard: shard}, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 0 {
				t.Errorf("%s shard %d still has %d entries", st, shard, len(es))
			}
		}
	}
}

func TestVisibilityTimeoutRedelivers(t *testing.T) {
	forEachBackend(t, testVisibilityTimeoutRedelivers)
}

func testVisibilityTimeoutRedelivers(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q", VisibilityTimeout: 10 * time.Second})
	v.send("q", "m")
	first := v.receive("q", 1)[0]

	v.clock.Advance(9 * time.Second)
	if got := v.receive("q", 1); len(got) != 0 {
		t.Fatalf("redelivered before the timeout")
	}
	v.clock.Advance(time.Second)
	var second []queue.Delivery
	eventually(t, "redelivery", func() bool {
		second = v.receive("q", 1)
		return len(second) == 1
	})
	if second[0].QueueMessageID == first.QueueMessageID {
		t.Errorf("redelivery kept queueMessageId %s", first.QueueMessageID)
	}
	if second[0].MessageID != first.MessageID {
		t.Errorf("redelivery changed messageId")
	}
	if second[0].ReceiveCount != 2 {
		t.Errorf("receive count %d, want 2", second[0].ReceiveCount)
	}
	if err := v.e.Ack(context.Background(), "q", first.QueueMessageID); !errors.Is(err, queue.ErrNotInflight) {
		t.Errorf("late ack: %v, want ErrNotInflight", err)
	}
	if err := v.e.Ack(context.Background(), "q", second[0].QueueMessageID); err != nil {
		t.Errorf("ack of redelivery: %v", err)
	}
	if s := v.stats("q"); s.Totals.TimedOut != 1 {
		t.Errorf("timed out total %d, want 1", s.Totals.TimedOut)
	}
}

func TestVisibilityPerReceive(t *testing.T) { forEachBackend(t, testVisibilityPerReceive) }

func testVisibilityPerReceive(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q"})
	v.send("q", "m")
	vis := 2 * time.Second
	zero := time.Duration(0)
	ds, err := v.e.Receive(context.Background(), "q", queue.ReceiveRequest{Count: 1, Wait: &zero, Visibility: &vis})
	if err != nil || len(ds) != 1 {
		t.Fatalf("receive: %v %d", err, len(ds))
	}
	if !ds[0].Deadline.Equal(epoch.Add(vis)) {
		t.Errorf("deadline %s, want %s", ds[0].Deadline, epoch.Add(vis))
	}
	v.clock.Advance(vis)
	eventually(t, "redelivery", func() bool { return len(v.receive("q", 1)) == 1 })
}

func TestDelayedDelivery(t *testing.T) { forEachBackend(t, testDelayedDelivery) }

func testDelayedDelivery(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q"})
	delay := 5 * time.Second
	res := v.sendWith("q", queue.SendRequest{Data: []byte("later"), Delay: &delay})
	if !res.DeliverAt.Equal(epoch.Add(delay)) {
		t.Errorf("deliver at %s, want %s", res.DeliverAt, epoch.Add(delay))
	}
	if got := v.receive("q", 1); len(got) != 0 {
		t.Fatalf("delayed message delivered early")
	}
	if s := v.stats("q"); s.Delayed != 1 || s.Available != 0 {
		t.Errorf("stats %+v", s)
	}
	v.clock.Advance(4 * time.Second)
	if got := v.receive("q", 1); len(got) != 0 {
		t.Fatalf("delayed message delivered early")
	}
	v.clock.Advance(time.Second)
	var ds []queue.Delivery
	eventually(t, "delayed delivery", func() bool {
		ds = v.receive("q", 1)
		return len(ds) == 1
	})
	if ds[0].MessageID != res.MessageID {
		t.Errorf("wrong message delivered")
	}
}

func TestQueueDefaultDelay(t *testing.T) { forEachBackend(t, testQueueDefaultDelay) }

func testQueueDefaultDelay(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q", DefaultDelay: time.Minute})
	v.send("q", "m")
	if got := v.receive("q", 1); len(got) != 0 {
		t.Fatalf("message delivered before the queue's default delay")
	}
	zero := time.Duration(0)
	v.sendWith("q", queue.SendRequest{Data: []byte("now"), Delay: &zero})
	if got := v.receive("q", 1); len(got) != 1 {
		t.Fatalf("an explicit zero delay did not override the default")
	}
}

func TestExpiredNeverDelivered(t *testing.T) { forEachBackend(t, testExpiredNeverDelivered) }

func testExpiredNeverDelivered(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q"})
	v.sendWith("q", queue.SendRequest{Data: []byte("short"), Expiration: 10 * time.Second})
	v.send("q", "long")
	v.clock.Advance(10 * time.Second)
	ds := v.receive("q", 10)
	if len(ds) != 1 || v.body("q", ds[0]) != "long" {
		t.Fatalf("received %d messages, want only the unexpired one", len(ds))
	}
	if err := v.e.Ack(context.Background(), "q", ds[0].QueueMessageID); err != nil {
		t.Fatal(err)
	}
	if s := v.stats("q"); s.Totals.Expired != 1 {
		t.Errorf("expired total %d, want 1", s.Totals.Expired)
	}

	// An inflight message that expires before its timeout is dropped at the
	// timeout instead of being redelivered.
	v.sendWith("q", queue.SendRequest{Data: []byte("x"), Expiration: 40 * time.Second})
	if got := v.receive("q", 1); len(got) != 1 {
		t.Fatal("no message")
	}
	v.clock.Advance(time.Minute)
	eventually(t, "expiry at timeout", func() bool { return v.stats("q").Totals.Expired == 2 })
	if got := v.receive("q", 10); len(got) != 0 {
		t.Errorf("expired message redelivered")
	}
}

func TestSendValidation(t *testing.T) { forEachBackend(t, testSendValidation) }

func testSendValidation(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q", MaxMessageSize: 10})
	ctx := context.Background()
	neg := -time.Second
	long := 15 * 24 * time.Hour
	cases := []struct {
		name string
		msg  queue.SendRequest
	}{
		{"negative delay", queue.SendRequest{Delay: &neg}},
		{"delay over max TTL", queue.SendRequest{Delay: &long}},
		{"negative expiration", queue.SendRequest{Expiration: -time.Second}},
		{"expiration over max TTL", queue.SendRequest{Expiration: long}},
		{"delay past expiration", queue.SendRequest{Delay: &[]time.Duration{time.Minute}[0], Expiration: time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.e.Send(ctx, "q", []queue.SendRequest{c.msg})
			var inv *queue.InvalidError
			if !errors.As(err, &inv) {
				t.Errorf("got %v, want InvalidError", err)
			}
		})
	}
	_, err := v.e.Send(ctx, "q", []queue.SendRequest{{Data: make([]byte, 11)}})
	var tl *queue.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 10 {
		t.Errorf("oversized send: %v, want TooLargeError with limit 10", err)
	}
	if _, err := v.e.Send(ctx, "missing", []queue.SendRequest{{Data: []byte("x")}}); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Errorf("send to missing queue: %v", err)
	}
	if s := v.stats("q"); s.Totals.Sent != 0 {
		t.Errorf("rejected sends were stored: %+v", s.Totals)
	}
}

func TestLongPollWakeUps(t *testing.T) { forEachBackend(t, testLongPollWakeUps) }

func testLongPollWakeUps(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q", VisibilityTimeout: 10 * time.Second})
	ctx := context.Background()
	wait := 20 * time.Second

	// receiveAsync starts a long poll and waits until it is parked.
	receiveAsync := func() <-chan []queue.Delivery {
		out := make(chan []queue.Delivery, 1)
		go func() {
			ds, err := v.e.Receive(ctx, "q", queue.ReceiveRequest{Count: 1, Wait: &wait})
			if err != nil {
				t.Errorf("receive: %v", err)
			}
			out <- ds
		}()
		return out
	}
	// A wake-up is a round on the owner and a commit; the generous limit
	// only bounds a hung test on a loaded machine.
	const wakeLimit = 30 * time.Second
	expectOne := func(t *testing.T, what string, ch <-chan []queue.Delivery) queue.Delivery {
		t.Helper()
		select {
		case ds := <-ch:
			if len(ds) != 1 {
				t.Fatalf("%s: woke with %d messages", what, len(ds))
			}
			return ds[0]
		case <-time.After(wakeLimit):
			t.Fatalf("%s: receive did not wake up", what)
		}
		return queue.Delivery{}
	}
	parked := func(t *testing.T) {
		t.Helper()
		eventually(t, "a parked receive", func() bool { return v.stats("q").Waiters == 1 })
	}

	t.Run("send", func(t *testing.T) {
		ch := receiveAsync()
		parked(t)
		v.send("q", "a")
		d := expectOne(t, "send", ch)
		if err := v.e.Ack(ctx, "q", d.QueueMessageID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		v.send("q", "b")
		if len(v.receive("q", 1)) != 1 {
			t.Fatal("no message")
		}
		ch := receiveAsync()
		parked(t)
		v.clock.Advance(10 * time.Second)
		d := expectOne(t, "timeout", ch)
		if d.ReceiveCount != 2 {
			t.Errorf("receive count %d", d.ReceiveCount)
		}
		if err := v.e.Ack(ctx, "q", d.QueueMessageID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("end of delay", func(t *testing.T) {
		delay := 3 * time.Second
		v.sendWith("q", queue.SendRequest{Data: []byte("c"), Delay: &delay})
		ch := receiveAsync()
		parked(t)
		v.clock.Advance(delay)
		d := expectOne(t, "delay", ch)
		if err := v.e.Ack(ctx, "q", d.QueueMessageID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nack", func(t *testing.T) {
		v.send("q", "d")
		got := v.receive("q", 1)
		ch := receiveAsync()
		parked(t)
		if _, err := v.e.Nack(ctx, "q", got[0].QueueMessageID, 0); err != nil {
			t.Fatal(err)
		}
		d := expectOne(t, "nack", ch)
		if err := v.e.Ack(ctx, "q", d.QueueMessageID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wait ends empty", func(t *testing.T) {
		ch := receiveAsync()
		parked(t)
		v.clock.Advance(wait)
		select {
		case ds := <-ch:
			if len(ds) != 0 {
				t.Errorf("got %d messages", len(ds))
			}
		case <-time.After(wakeLimit):
			t.Fatal("receive did not return at the end of its wait")
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := v.e.Receive(cctx, "q", queue.ReceiveRequest{Count: 1, Wait: &wait})
			errc <- err
		}()
		parked(t)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("receive: %v, want context.Canceled", err)
		}
		eventually(t, "the cancelled receive to leave", func() bool { return v.stats("q").Waiters == 0 })
		v.send("q", "e")
		if got := v.receive("q", 1); len(got) != 1 {
			t.Errorf("message went to a cancelled receive")
		}
	})
}

func TestNackAndExtend(t *testing.T) { forEachBackend(t, testNackAndExtend) }

func testNackAndExtend(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q", VisibilityTimeout: 10 * time.Second})
	ctx := context.Background()
	v.send("q", "m")
	d := v.receive("q", 1)[0]

	res, err := v.e.Nack(ctx, "q", d.QueueMessageID, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.QueueMessageID == d.QueueMessageID || res.QueueMessageID == uuid.Nil {
		t.Errorf("nack gave id %s", res.QueueMessageID)
	}
	if !res.DeliverAt.Equal(epoch.Add(5 * time.Second)) {
		t.Errorf("deliver at %s", res.DeliverAt)
	}
	if _, err := v.e.Nack(ctx, "q", d.QueueMessageID, 0); !errors.Is(err, queue.ErrNotInflight) {
		t.Errorf("second nack: %v", err)
	}
	if got := v.receive("q", 1); len(got) != 0 {
		t.Fatal("nacked message delivered before its delay")
	}
	v.clock.Advance(5 * time.Second)
	var again []queue.Delivery
	eventually(t, "nacked message", func() bool {
		again = v.receive("q", 1)
		return len(again) == 1
	})
	if again[0].ReceiveCount != 2 {
		t.Errorf("receive count %d, want 2", again[0].ReceiveCount)
	}

	deadline, err := v.e.Extend(ctx, "q", again[0].QueueMessageID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := v.clock.Now().Add(time.Minute); !deadline.Equal(want) {
		t.Errorf("deadline %s, want %s", deadline, want)
	}
	v.clock.Advance(30 * time.Second)
	if got := v.receive("q", 1); len(got) != 0 {
		t.Fatal("extended message timed out at its old deadline")
	}
	if err := v.e.Ack(ctx, "q", again[0].QueueMessageID); err != nil {
		t.Errorf("ack after extend: %v", err)
	}
	if _, err := v.e.Extend(ctx, "q", again[0].QueueMessageID, time.Minute); !errors.Is(err, queue.ErrNotInflight) {
		t.Errorf("extend after ack: %v", err)
	}
	if _, err := v.e.Extend(ctx, "q", again[0].QueueMessageID, 13*time.Hour); err == nil {
		t.Errorf("extend beyond the maximum visibility was accepted")
	}
	s := v.stats("q")
	if s.Totals.Nacked != 1 || s.Totals.Acked != 1 {
		t.Errorf("totals %+v", s.Totals)
	}
}

func TestDeadLetterAndRedrive(t *testing.T) { forEachBackend(t, testDeadLetterAndRedrive) }

func testDeadLetterAndRedrive(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "work", VisibilityTimeout: 10 * time.Second, RetryCount: 1, DeadLetterQueue: "work.dlq"})
	ctx := context.Background()
	sent := v.sendWith("work", queue.SendRequest{ContentType: "application/json", Data: []byte(`{"n":1}`)})

	// First receive and timeout: back to available.
	if len(v.receive("work", 1)) != 1 {
		t.Fatal("no first delivery")
	}
	v.clock.Advance(10 * time.Second)
	var second []queue.Delivery
	eventually(t, "second delivery", func() bool {
		second = v.receive("work", 1)
		return len(second) == 1
	})
	// Second receive is past the retry count once it fails: dead-lettered.
	if _, err := v.e.Nack(ctx, "work", second[0].QueueMessageID, 0); err != nil {
		t.Fatal(err)
	}
	var dead []queue.Delivery
	eventually(t, "dead-lettered message", func() bool {
		if !v.e.Exists("work.dlq") {
			return false
		}
		dead = v.receive("work.dlq", 1)
		return len(dead) == 1
	})
	d := dead[0]
	if d.MessageID != sent.MessageID || d.SourceQueue != "work" || d.ContentType != "application/json" {
		t.Errorf("dead letter %+v", d)
	}
	if d.ReceiveCount != 3 {
		t.Errorf("dead letter receive count %d, want 3 (two in work, one here)", d.ReceiveCount)
	}
	if got := v.body("work.dlq", d); got != `{"n":1}` {
		t.Errorf("dead letter payload %q", got)
	}
	if len(v.receive("work", 1)) != 0 {
		t.Errorf("dead-lettered message still in its queue")
	}
	eventually(t, "dead-letter total", func() bool { return v.stats("work").Totals.DeadLettered == 1 })
	if s := v.stats("work"); s.DeadLettered != 1 {
		t.Errorf("dead-lettered gauge %d, want 1", s.DeadLettered)
	}

	// Redrive it back: return the delivery first so it is available.
	if _, err := v.e.Nack(ctx, "work.dlq", d.QueueMessageID, 0); err != nil {
		t.Fatal(err)
	}
	v.send("work.dlq", "no source")
	res, err := v.e.Redrive(ctx, "work.dlq", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != 1 || res.Skipped != 1 {
		t.Errorf("redrive %+v, want 1 moved and 1 skipped", res)
	}
	var back []queue.Delivery
	eventually(t, "redriven message", func() bool {
		back = v.receive("work", 1)
		return len(back) == 1
	})
	if back[0].MessageID != sent.MessageID || back[0].ReceiveCount != 1 {
		t.Errorf("redriven delivery %+v", back[0])
	}
	evs, err := v.e.Audit(ctx, "work", sent.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	want := []string{"sent", "received", "timed_out", "received", "nacked", "dead_lettered", "received", "nacked", "redriven", "received"}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Errorf("audit %v, want %v", actions, want)
	}
}

func TestPurge(t *testing.T) { forEachBackend(t, testPurge) }

func testPurge(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{BufferSize: 4, ShardSize: 7})
	v.create(queue.Config{Name: "q"})
	ctx := context.Background()
	for i := range 30 {
		v.send("q", fmt.Sprint(i))
	}
	delay := time.Hour
	v.sendWith("q", queue.SendRequest{Data: []byte("d"), Delay: &delay})
	held := v.receive("q", 3)

	n, err := v.e.Purge(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if n != 31 {
		t.Errorf("purged %d, want 31", n)
	}
	if got := v.receive("q", 10); len(got) != 0 {
		t.Errorf("receive after purge got %d", len(got))
	}
	if err := v.e.Ack(ctx, "q", held[0].QueueMessageID); !errors.Is(err, queue.ErrNotInflight) {
		t.Errorf("ack of a purged message: %v", err)
	}
	s := v.stats("q")
	if s.Available != 0 || s.Inflight != 0 || s.Delayed != 0 || s.Totals.Purged != 31 {
		t.Errorf("stats after purge %+v", s)
	}
	v.send("q", "after")
	if got := v.receive("q", 10); len(got) != 1 {
		t.Errorf("queue unusable after purge")
	}
	v.restart()
	if got := v.receive("q", 10); len(got) != 0 {
		t.Errorf("purged messages came back after restart: %d", len(got))
	}
}

func TestRestartRecovery(t *testing.T) { forEachBackend(t, testRestartRecovery) }

func testRestartRecovery(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{BufferSize: 5, ShardSize: 8})
	v.create(queue.Config{Name: "q", VisibilityTimeout: 10 * time.Second})
	for i := range 20 {
		v.send("q", fmt.Sprint(i))
	}
	delay := time.Minute
	v.sendWith("q", queue.SendRequest{Data: []byte("delayed"), Delay: &delay})
	held := v.receive("q", 4)
	if err := v.e.Ack(context.Background(), "q", held[0].QueueMessageID); err != nil {
		t.Fatal(err)
	}

	v.restart()

	s := v.stats("q")
	if s.Available != 16 || s.Inflight != 3 || s.Delayed != 1 {
		t.Fatalf("after restart: %+v", s)
	}
	// Inflight messages keep their ids and deadlines.
	if err := v.e.Ack(context.Background(), "q", held[1].QueueMessageID); err != nil {
		t.Errorf("ack of an inflight message after restart: %v", err)
	}
	got := map[string]bool{}
	for {
		ds := v.receive("q", 10)
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			got[v.body("q", d)] = true
			if err := v.e.Ack(context.Background(), "q", d.QueueMessageID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(got) != 16 {
		t.Errorf("received %d available messages after restart, want 16", len(got))
	}
	v.clock.Advance(10 * time.Second)
	eventually(t, "timeouts after restart", func() bool { return len(v.receive("q", 10)) == 2 })
	v.clock.Advance(time.Minute)
	eventually(t, "delayed after restart", func() bool { return len(v.receive("q", 10)) >= 1 })
}

func TestQueueAdmin(t *testing.T) { forEachBackend(t, testQueueAdmin) }

func testQueueAdmin(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	ctx := context.Background()
	cfg, created, err := v.e.CreateQueue(ctx, queue.Config{Name: "q", RetryCount: 2})
	if err != nil || !created || cfg.RetryCount != 2 {
		t.Fatalf("create: %v %v %+v", err, created, cfg)
	}
	v.send("q", "kept")
	cfg, created, err = v.e.CreateQueue(ctx, queue.Config{Name: "q", RetryCount: 5})
	if err != nil || created || cfg.RetryCount != 2 {
		t.Fatalf("second create changed the queue: %v %v %+v", err, created, cfg)
	}
	if s := v.stats("q"); s.Available != 1 {
		t.Fatalf("second create lost messages: %+v", s)
	}
	if _, err := v.e.UpdateQueue(ctx, queue.Config{Name: "q", RetryCount: 7}); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.e.Queue(ctx, "q"); got.RetryCount != 7 {
		t.Errorf("update not stored: %+v", got)
	}
	if _, err := v.e.UpdateQueue(ctx, queue.Config{Name: "nope"}); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Errorf("update of a missing queue: %v", err)
	}
	for _, bad := range []string{"", "a b", "x/y", string(make([]byte, 81))} {
		if _, _, err := v.e.CreateQueue(ctx, queue.Config{Name: bad}); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if _, _, err := v.e.CreateQueue(ctx, queue.Config{Name: "self", DeadLetterQueue: "self"}); err == nil {
		t.Errorf("a queue was accepted as its own dead-letter queue")
	}

	if err := v.e.DeleteQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	if _, err := v.e.Receive(ctx, "q", queue.ReceiveRequest{Count: 1, Wait: &zero}); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Errorf("receive on a deleted queue: %v", err)
	}
	if err := v.e.Ack(ctx, "q", uuid.New()); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Errorf("ack on a deleted queue: %v", err)
	}
	if err := v.e.DeleteQueue(ctx, "q"); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Errorf("second delete: %v", err)
	}
	v.create(queue.Config{Name: "q"})
	if s := v.stats("q"); s.Available != 0 || s.Totals.Sent != 0 {
		t.Errorf("re-created queue kept old state: %+v", s)
	}
	v.restart()
	qs, err := v.e.Queues(ctx)
	if err != nil || len(qs) != 1 || qs[0].Name != "q" {
		t.Errorf("queues after restart: %v %+v", err, qs)
	}
}

func TestPeek(t *testing.T) { forEachBackend(t, testPeek) }

func testPeek(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{ShardSize: 4})
	v.create(queue.Config{Name: "q"})
	ctx := context.Background()
	for i := range 9 {
		v.send("q", fmt.Sprint(i))
	}
	delay := time.Minute
	v.sendWith("q", queue.SendRequest{Data: []byte("d"), Delay: &delay})
	v.receive("q", 2)

	var all []queue.PeekEntry
	cursor := ""
	for range 20 {
		page, err := v.e.Peek(ctx, "q", queue.PeekRequest{Cursor: cursor, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Entries...)
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	counts := map[string]int{}
	for _, p := range all {
		counts[p.State]++
	}
	if counts["available"] != 7 || counts["inflight"] != 2 || counts["delayed"] != 1 || len(all) != 10 {
		t.Errorf("peek counts %v over %d entries", counts, len(all))
	}
	if s := v.stats("q"); s.Available != 7 || s.Inflight != 2 {
		t.Errorf("peek changed the queue: %+v", s)
	}
	if _, err := v.e.Peek(ctx, "q", queue.PeekRequest{State: "bogus", Limit: 1}); err == nil {
		t.Errorf("bogus state accepted")
	}
	if _, err := v.e.Peek(ctx, "q", queue.PeekRequest{Cursor: "x", Limit: 1}); err == nil {
		t.Errorf("bogus cursor accepted")
	}
}

func TestConcurrentProducersConsumers(t *testing.T) {
	forEachBackend(t, testConcurrentProducersConsumers)
}

func testConcurrentProducersConsumers(t *testing.T, b backend) {
	// Long polls need time to pass here, so this test runs on the real clock.
	v := newEnv(t, b, queue.Options{BufferSize: 50, ShardSize: 100, Clock: clock.Real{}})
	v.create(queue.Config{Name: "q"})
	ctx := context.Background()
	const producers, perProducer = 4, 250
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProducer {
				if _, err := v.e.Send(ctx, "q", []queue.SendRequest{{Data: []byte(fmt.Sprintf("%d-%d", p, i))}}); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	var cwg sync.WaitGroup
	wait := 50 * time.Millisecond
	for range 4 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				ds, err := v.e.Receive(ctx, "q", queue.ReceiveRequest{Count: 10, Wait: &wait})
				if err != nil {
					t.Errorf("receive: %v", err)
					return
				}
				ids := make([]uuid.UUID, 0, len(ds))
				for _, d := range ds {
					p, err := v.e.Payload(ctx, "q", d.MessageID)
					if err != nil {
						t.Errorf("payload: %v", err)
						return
					}
					mu.Lock()
					seen[string(p.Data)]++
					mu.Unlock()
					ids = append(ids, d.QueueMessageID)
				}
				if len(ids) > 0 {
					errs, err := v.e.AckBatch(ctx, "q", ids)
					if err != nil {
						t.Errorf("ack: %v", err)
						return
					}
					for _, err := range errs {
						if err != nil {
							t.Errorf("ack: %v", err)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, "every message consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == producers*perProducer
	})
	close(done)
	cwg.Wait()
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %s received %d times", k, n)
		}
	}
	s := v.stats("q")
	if s.Available != 0 || s.Inflight != 0 || s.Totals.Acked != producers*perProducer {
		t.Errorf("stats %+v", s)
	}
}
