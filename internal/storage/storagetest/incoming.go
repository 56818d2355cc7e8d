package storagetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/qakka/qakka/internal/storage"
)

// shards returns the shards of one state of a queue.
func shards(t *testing.T, s storage.Store, queue string, state storage.State) []uint64 {
	t.Helper()
	got, err := s.Shards(t.Context(), queue, state)
	if err != nil {
		t.Fatalf("Shards(%q, %v): %v", queue, state, err)
	}
	return got
}

func checkShards(t *testing.T, label string, got, want []uint64) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: shards %v, want %v", label, got, want)
	}
}

func testIncomingEntries(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "incoming")

	// Each writer node has its own shard, and Seq grows within it.
	writers := []uint64{1, 2, 1 << 40}
	want := make(map[uint64][]storage.Entry)
	b := &storage.Batch{Metas: map[string]storage.Meta{q: {ShardSize: 1000, Inbox: map[uint64]uint64{1: 100, 2: 100, 1 << 40: 100}}}}
	for _, shard := range writers {
		for seq := uint64(100); seq < 103; seq++ {
			e := newEntry(q, storage.Incoming, shard, seq)
			want[shard] = append(want[shard], e)
			b.PutEntries = append(b.PutEntries, e)
			b.PutPayloads = append(b.PutPayloads, newPayload(q, e.MessageID, 8))
		}
	}
	commit(t, s, b)

	for _, shard := range writers {
		ref := storage.ShardRef{State: storage.Incoming, Shard: shard}
		checkEntries(t, fmt.Sprintf("incoming shard %d", shard), scan(t, s, q, ref), want[shard])
		got, err := s.ScanShard(t.Context(), q, ref, 101, 1)
		if err != nil {
			t.Fatalf("ScanShard(from 101, limit 1): %v", err)
		}
		checkEntries(t, fmt.Sprintf("incoming shard %d from 101", shard), got, want[shard][1:2])
	}
	checkShards(t, "incoming shards", shards(t, s, q, storage.Incoming), writers)
	checkShards(t, "available shards", shards(t, s, q, storage.Available), nil)

	// The owner adopts the first entry of shard 1: it deletes the incoming
	// entry, puts an available one and moves the inbox past it.
	adopted := want[1][0]
	available := newEntry(q, storage.Available, 0, 0)
	available.MessageID = adopted.MessageID
	meta := storage.Meta{ShardSize: 1000, NextSeq: 1, Available: 1, Inbox: map[uint64]uint64{1: 101, 2: 100, 1 << 40: 100}}
	commit(t, s, &storage.Batch{
		DeleteEntries: []storage.EntryKey{adopted.Key()},
		PutEntries:    []storage.Entry{available},
		Metas:         map[string]storage.Meta{q: meta},
	})

	checkEntries(t, "incoming shard 1 after adoption",
		scan(t, s, q, storage.ShardRef{State: storage.Incoming, Shard: 1}), want[1][1:])
	checkEntries(t, "available shard after adoption",
		scan(t, s, q, storage.ShardRef{State: storage.Available, Shard: 0}), []storage.Entry{available})
	checkShards(t, "available shards after adoption", shards(t, s, q, storage.Available), []uint64{0})
	got, err := s.Meta(t.Context(), q)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	checkMeta(t, "meta after adoption", got, meta)
}

func testShardsPerState(t *testing.T, s storage.Store) {
	// Neighbouring queues, whose names extend this queue's name, hold other
	// shards in every state.
	base := uniqueName(t, "shards")
	neighbours := []string{base + ".b", base + "b"}
	want := map[storage.State][]uint64{
		storage.Available: {0, 1, 5},
		storage.Inflight:  {3},
		storage.Delayed:   nil,
		storage.Moving:    {1 << 33},
		storage.Incoming:  {2, 7, 255, 256, 1 << 40},
	}

	createNamed(t, s, base)
	b := &storage.Batch{}
	for st, list := range want {
		for _, shard := range list {
			// Several entries per shard, so a backend must list each
			// shard once.
			for seq := uint64(1); seq <= 3; seq++ {
				b.PutEntries = append(b.PutEntries, newEntry(base, st, shard, seq))
			}
		}
	}
	for _, q := range neighbours {
		createNamed(t, s, q)
		for _, st := range storage.States {
			for _, shard := range []uint64{4, 6} {
				b.PutEntries = append(b.PutEntries, newEntry(q, st, shard, 1))
			}
		}
	}
	commit(t, s, b)

	for _, st := range storage.States {
		checkShards(t, fmt.Sprintf("%v shards of %s", st, base), shards(t, s, base, st), want[st])
		for _, q := range neighbours {
			checkShards(t, fmt.Sprintf("%v shards of %s", st, q), shards(t, s, q, st), []uint64{4, 6})
		}
	}
	checkShards(t, "shards of a missing queue", shards(t, s, base+"-none", storage.Incoming), nil)
}

func testShardsAfterRetire(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "shards-retire")
	b := &storage.Batch{}
	for _, shard := range []uint64{2, 7, 9} {
		for seq := uint64(1); seq <= 2; seq++ {
			b.PutEntries = append(b.PutEntries, newEntry(q, storage.Incoming, shard, seq))
		}
	}
	commit(t, s, b)

	commit(t, s, &storage.Batch{RetireShards: []storage.RetiredShard{
		{Queue: q, ShardRef: storage.ShardRef{State: storage.Incoming, Shard: 7}},
		// The same shard of another state holds nothing.
		{Queue: q, ShardRef: storage.ShardRef{State: storage.Available, Shard: 2}},
	}})
	checkShards(t, "incoming shards after retiring shard 7", shards(t, s, q, storage.Incoming), []uint64{2, 9})

	// A shard that gets entries again is listed again.
	commit(t, s, &storage.Batch{PutEntries: []storage.Entry{newEntry(q, storage.Incoming, 7, 3)}})
	checkShards(t, "incoming shards after a put into shard 7", shards(t, s, q, storage.Incoming), []uint64{2, 7, 9})
}

func testMetaInbox(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "meta-inbox")
	tests := []struct {
		name  string
		inbox map[uint64]uint64
	}{
		{"one writer", map[uint64]uint64{3: 42}},
		{"several writers", map[uint64]uint64{0: 0, 1: 1 << 40, 1 << 40: 7, 1<<62 + 1: 1<<62 + 2}},
		{"writer removed", map[uint64]uint64{1: 1<<40 + 1}},
		{"empty", nil},
	}
	// Each case overwrites the metadata of the one before, so an inbox
	// entry that a case drops must be gone.
	for _, tc := range tests {
		meta := newMeta()
		meta.Inbox = tc.inbox
		commit(t, s, &storage.Batch{Metas: map[string]storage.Meta{q: meta}})
		got, err := s.Meta(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: Meta: %v", tc.name, err)
		}
		checkMeta(t, tc.name, got, meta)
	}

	// An incoming entry and the inbox that points at it commit together.
	e := newEntry(q, storage.Incoming, 5, 900)
	meta := storage.Meta{Inbox: map[uint64]uint64{5: 900}}
	commit(t, s, &storage.Batch{
		PutEntries:  []storage.Entry{e},
		PutPayloads: []storage.Payload{newPayload(q, e.MessageID, 4)},
		Metas:       map[string]storage.Meta{q: meta},
	})
	got, err := s.Meta(t.Context(), q)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	checkMeta(t, "meta with an incoming entry", got, meta)
	checkEntries(t, "incoming entry", scan(t, s, q, storage.ShardRef{State: storage.Incoming, Shard: 5}), []storage.Entry{e})
	if _, err := s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: e.MessageID}); err != nil {
		t.Errorf("Payload of the incoming entry: %v", err)
	}
}
