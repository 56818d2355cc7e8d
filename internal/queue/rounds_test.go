package queue_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/queue"
)

// TestLargestRequests sends, receives and acks batches of the largest size
// the engine accepts, with the longest queue name and content type, so that
// each request's commit is as large as one request can make it.
func TestLargestRequests(t *testing.T) { forEachBackend(t, testLargestRequests) }

func testLargestRequests(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	name := strings.Repeat("q", 80)
	v.create(queue.Config{Name: name})
	ctx := context.Background()
	contentType := "application/" + strings.Repeat("x", 255-len("application/"))

	msgs := make([]queue.SendRequest, queue.DefaultMaxBatch)
	for i := range msgs {
		msgs[i] = queue.SendRequest{ContentType: contentType, Data: []byte(fmt.Sprint(i))}
	}
	sent, err := v.e.Send(ctx, name, msgs)
	if err != nil {
		t.Fatalf("send %d messages: %v", len(msgs), err)
	}
	if len(sent) != len(msgs) {
		t.Fatalf("send returned %d results, want %d", len(sent), len(msgs))
	}

	ds := v.receive(name, queue.DefaultMaxReceiveCount)
	if len(ds) != queue.DefaultMaxReceiveCount {
		t.Fatalf("received %d messages, want %d", len(ds), queue.DefaultMaxReceiveCount)
	}
	for i, d := range ds {
		if d.MessageID != sent[i].MessageID {
			t.Fatalf("delivery %d is message %s, want %s", i, d.MessageID, sent[i].MessageID)
		}
		if d.ContentType != contentType {
			t.Fatalf("delivery %d has content type %q, want the one sent", i, d.ContentType)
		}
	}

	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.QueueMessageID
	}
	errs, err := v.e.AckBatch(ctx, name, ids)
	if err != nil {
		t.Fatalf("ack %d messages: %v", len(ids), err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("ack of delivery %d: %v", i, err)
		}
	}
	s := v.stats(name)
	if s.Available != 0 || s.Inflight != 0 || s.Totals.Acked != int64(len(ids)) {
		t.Errorf("stats after acking every message: %+v", s)
	}
}

// TestManyTimeoutsAtOnce lets a thousand deliveries reach their deadline at
// the same instant, as after a pause of the server, and expects every one of
// them back.
func TestManyTimeoutsAtOnce(t *testing.T) { forEachBackend(t, testManyTimeoutsAtOnce) }

func testManyTimeoutsAtOnce(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q", VisibilityTimeout: 10 * time.Second})
	ctx := context.Background()
	const rounds = 10

	for range rounds {
		msgs := make([]queue.SendRequest, queue.DefaultMaxBatch)
		for i := range msgs {
			msgs[i] = queue.SendRequest{Data: []byte("m")}
		}
		if _, err := v.e.Send(ctx, "q", msgs); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	const total = rounds * queue.DefaultMaxBatch
	for range rounds {
		if got := v.receive("q", queue.DefaultMaxReceiveCount); len(got) != queue.DefaultMaxReceiveCount {
			t.Fatalf("received %d messages, want %d", len(got), queue.DefaultMaxReceiveCount)
		}
	}

	v.clock.Advance(10 * time.Second)
	eventually(t, "every delivery to time out", func() bool {
		s := v.stats("q")
		return s.Available == total && s.Inflight == 0
	})
	if s := v.stats("q"); s.Totals.TimedOut != total {
		t.Errorf("timed out total %d, want %d", s.Totals.TimedOut, total)
	}
	got := 0
	for {
		ds := v.receive("q", queue.DefaultMaxReceiveCount)
		if len(ds) == 0 {
			break
		}
		got += len(ds)
	}
	if got != total {
		t.Errorf("received %d messages after the timeouts, want %d", got, total)
	}
}

// TestPurgeManyHeld purges more inflight and delayed messages than one purge
// step removes, so the purge spans several rounds and commits.
func TestPurgeManyHeld(t *testing.T) { forEachBackend(t, testPurgeManyHeld) }

func testPurgeManyHeld(t *testing.T, b backend) {
	v := newEnv(t, b, queue.Options{})
	v.create(queue.Config{Name: "q", DefaultDelay: time.Hour})
	ctx := context.Background()
	const delayed, inflight = 1500, 300

	for sent := 0; sent < delayed; sent += queue.DefaultMaxBatch {
		msgs := make([]queue.SendRequest, queue.DefaultMaxBatch)
		for i := range msgs {
			msgs[i] = queue.SendRequest{Data: []byte("d")}
		}
		if _, err := v.e.Send(ctx, "q", msgs); err != nil {
			t.Fatalf("send delayed: %v", err)
		}
	}
	zero := time.Duration(0)
	for sent := 0; sent < inflight; sent += queue.DefaultMaxBatch {
		msgs := make([]queue.SendRequest, queue.DefaultMaxBatch)
		for i := range msgs {
			msgs[i] = queue.SendRequest{Data: []byte("i"), Delay: &zero}
		}
		if _, err := v.e.Send(ctx, "q", msgs); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	received := 0
	for received < inflight {
		ds := v.receive("q", queue.DefaultMaxReceiveCount)
		if len(ds) == 0 {
			t.Fatalf("received %d messages, want %d", received, inflight)
		}
		received += len(ds)
	}

	n, err := v.e.Purge(ctx, "q")
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if n != delayed+inflight {
		t.Errorf("purged %d messages, want %d", n, delayed+inflight)
	}
	s := v.stats("q")
	if s.Delayed != 0 || s.Inflight != 0 || s.Available != 0 {
		t.Errorf("after purge: %d delayed, %d inflight, %d available", s.Delayed, s.Inflight, s.Available)
	}
	v.restart()
	s = v.stats("q")
	if s.Delayed != 0 || s.Inflight != 0 || s.Available != 0 {
		t.Errorf("after restart: %d delayed, %d inflight, %d available", s.Delayed, s.Inflight, s.Available)
	}
}
