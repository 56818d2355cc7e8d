package queue_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/backendtest"
)

// benchPayload is the body of every message the benchmarks send.
var benchPayload = bytes.Repeat([]byte("x"), 100)

// benchParallelism is the number of goroutines per GOMAXPROCS that
// BenchmarkSendParallel runs: 16 on a machine with 2 cores.
const benchParallelism = 8

// benchEngine starts an engine on the real clock on a fresh store of backend
// be, with one queue, and stops both when the benchmark ends.
func benchEngine(b *testing.B, be backend) (*queue.Engine, string) {
	b.Helper()
	st, err := be.Place(b, time.Now)()
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	e, err := queue.New(st, queue.Options{Clock: clock.Real{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatalf("new engine: %v", err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatalf("start engine: %v", err)
	}
	b.Cleanup(func() {
		_ = e.Close()
		_ = st.Close()
	})
	const name = "bench"
	if _, _, err := e.CreateQueue(context.Background(), queue.Config{Name: name}); err != nil {
		b.Fatalf("create queue: %v", err)
	}
	return e, name
}

// forEachBackendBench runs bench as one sub-benchmark per backend.
func forEachBackendBench(b *testing.B, bench func(b *testing.B, be backend)) {
	for _, be := range backendtest.Backends {
		b.Run(be.Name, func(b *testing.B) { bench(b, be) })
	}
}

// BenchmarkSend sends one message per operation from one goroutine, so every
// operation waits for its own commit.
func BenchmarkSend(b *testing.B) {
	forEachBackendBench(b, func(b *testing.B, be backend) {
		e, q := benchEngine(b, be)
		ctx := context.Background()
		msg := []queue.SendRequest{{ContentType: "application/json", Data: benchPayload}}
		for b.Loop() {
			if _, err := e.Send(ctx, q, msg); err != nil {
				b.Fatalf("send: %v", err)
			}
		}
	})
}

// BenchmarkSendParallel sends one message per operation from
// benchParallelism goroutines per GOMAXPROCS to one queue, whose owner
// commits the sends that wait at once as one round.
func BenchmarkSendParallel(b *testing.B) {
	forEachBackendBench(b, func(b *testing.B, be backend) {
		e, q := benchEngine(b, be)
		ctx := context.Background()
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			msg := []queue.SendRequest{{ContentType: "application/json", Data: benchPayload}}
			for pb.Next() {
				if _, err := e.Send(ctx, q, msg); err != nil {
					b.Errorf("send: %v", err)
					return
				}
			}
		})
	})
}

// BenchmarkReceiveAck receives one message and acks it per operation, from
// one goroutine: two commits per operation. The queue is filled before the
// timer starts.
func BenchmarkReceiveAck(b *testing.B) {
	forEachBackendBench(b, func(b *testing.B, be backend) {
		e, q := benchEngine(b, be)
		ctx := context.Background()
		fill(b, e, q, b.N)

		zero := time.Duration(0)
		req := queue.ReceiveRequest{Count: 1, Wait: &zero}
		b.ResetTimer()
		for range b.N {
			ds, err := e.Receive(ctx, q, req)
			if err != nil {
				b.Fatalf("receive: %v", err)
			}
			if len(ds) != 1 {
				b.Fatalf("receive returned %d messages, want 1", len(ds))
			}
			if err := e.Ack(ctx, q, ds[0].QueueMessageID); err != nil {
				b.Fatalf("ack: %v", err)
			}
		}
	})
}

// fill sends n messages to q in batches of the largest size.
func fill(b *testing.B, e *queue.Engine, q string, n int) {
	b.Helper()
	batch := make([]queue.SendRequest, 0, queue.DefaultMaxBatch)
	for sent := 0; sent < n; sent += len(batch) {
		batch = batch[:0]
		for range min(queue.DefaultMaxBatch, n-sent) {
			batch = append(batch, queue.SendRequest{ContentType: "application/json", Data: benchPayload})
		}
		if _, err := e.Send(context.Background(), q, batch); err != nil {
			b.Fatalf("fill queue: %v", err)
		}
	}
}

// benchClusterEngine starts a cluster node's engine on a fresh store of
// backend be, with one queue. With serve, the engine holds the queue's lease
// and serves it, so every commit is fenced. Without serve, it stores sends as
// incoming entries for an owner that is not running.
func benchClusterEngine(b *testing.B, be backend, serve bool) (*queue.Engine, string) {
	b.Helper()
	st, err := be.Place(b, time.Now)()
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	e, err := queue.New(st, queue.Options{Node: "bench-node", Clock: clock.Real{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatalf("new engine: %v", err)
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		b.Fatalf("start engine: %v", err)
	}
	b.Cleanup(func() {
		_ = e.Close()
		_ = st.Close()
	})
	const name = "bench"
	if _, _, err := e.CreateQueue(ctx, queue.Config{Name: name}); err != nil {
		b.Fatalf("create queue: %v", err)
	}
	if serve {
		lease, err := st.(storage.LeaseStore).AcquireLease(ctx, name, "bench-node", time.Now(), time.Hour, time.Second)
		if err != nil {
			b.Fatalf("acquire lease: %v", err)
		}
		if err := e.Serve(ctx, lease); err != nil {
			b.Fatalf("serve: %v", err)
		}
	}
	return e, name
}

// BenchmarkSendCluster sends one message per operation from one goroutine
// on a cluster node: as the queue's owner, whose commits are fenced by its
// lease, and as another node, which stores incoming entries.
func BenchmarkSendCluster(b *testing.B) {
	for _, role := range []struct {
		name  string
		serve bool
	}{{"owner", true}, {"other", false}} {
		b.Run(role.name, func(b *testing.B) {
			forEachBackendBench(b, func(b *testing.B, be backend) {
				e, q := benchClusterEngine(b, be, role.serve)
				ctx := context.Background()
				msg := []queue.SendRequest{{ContentType: "application/json", Data: benchPayload}}
				for b.Loop() {
					if _, err := e.Send(ctx, q, msg); err != nil {
						b.Fatalf("send: %v", err)
					}
				}
			})
		})
	}
}
