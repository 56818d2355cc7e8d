package pebblestore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// BenchmarkCommitParallel measures synced commits of send-sized batches (a 1
// KiB payload, one entry and the queue's metadata) from 8 goroutines per
// GOMAXPROCS, each writing its own queue as the engine's queue owners do.
func BenchmarkCommitParallel(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	var queues atomic.Int64
	data := make([]byte, 1024)

	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		queue := fmt.Sprintf("bench-%d", queues.Add(1))
		now := time.Now()
		for seq := uint64(0); pb.Next(); seq++ {
			id := uuid.New()
			batch := &storage.Batch{
				PutPayloads: []storage.Payload{{Queue: queue, MessageID: id, Data: data, ExpiresAt: now}},
				PutEntries: []storage.Entry{{
					Queue: queue, State: storage.Available, Shard: storage.ShardOf(seq, 1000), Seq: seq,
					ID: uuid.New(), MessageID: id, CreatedAt: now, SentAt: now, ExpiresAt: now,
					Size: int64(len(data)),
				}},
				Metas: map[string]storage.Meta{queue: {ShardSize: 1000, NextSeq: seq + 1, Available: int64(seq + 1)}},
			}
			if err := s.Commit(ctx, batch); err != nil {
				b.Errorf("Commit: %v", err)
				return
			}
		}
	})
}

// BenchmarkScanShard measures reads of 100 entries from a shard of 10,000.
// In the "after-acks" case the first half of the shard was deleted with point
// deletions, and reads start after the deleted entries, as the engine's reads
// start at the queue's head.
func BenchmarkScanShard(b *testing.B) {
	const entries, batchSize, pageSize = 10_000, 500, 100
	for _, acked := range []int{0, entries / 2} {
		name := "fresh"
		if acked > 0 {
			name = "after-acks"
		}
		b.Run(name, func(b *testing.B) {
			s := openTemp(b)
			ctx := context.Background()
			ref := storage.ShardRef{State: storage.Available, Shard: 0}
			now := time.Now()
			for start := 0; start < entries; start += batchSize {
				batch := &storage.Batch{}
				for seq := uint64(start); seq < uint64(start+batchSize); seq++ {
					batch.PutEntries = append(batch.PutEntries, storage.Entry{
						Queue: "bench", State: ref.State, Shard: ref.Shard, Seq: seq,
						ID: uuid.New(), MessageID: uuid.New(), CreatedAt: now, SentAt: now, ExpiresAt: now, Size: 1024,
					})
				}
				if err := s.Commit(ctx, batch); err != nil {
					b.Fatalf("Commit: %v", err)
				}
			}
			for start := 0; start < acked; start += batchSize {
				batch := &storage.Batch{}
				for seq := uint64(start); seq < uint64(start+batchSize); seq++ {
					batch.DeleteEntries = append(batch.DeleteEntries, storage.EntryKey{Queue: "bench", State: ref.State, Shard: ref.Shard, Seq: seq})
				}
				if err := s.Commit(ctx, batch); err != nil {
					b.Fatalf("Commit: %v", err)
				}
			}

			b.ReportAllocs()
			b.ResetTimer()
			from := uint64(acked)
			for b.Loop() {
				got, err := s.ScanShard(ctx, "bench", ref, from, pageSize)
				if err != nil {
					b.Fatalf("ScanShard: %v", err)
				}
				if len(got) == 0 {
					b.Fatalf("ScanShard from %d returned nothing", from)
				}
				from = got[len(got)-1].Seq + 1
				if from >= entries-pageSize {
					from = uint64(acked)
				}
			}
		})
	}
}
