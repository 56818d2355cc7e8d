package storagetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

func testCommitEmpty(t *testing.T, s storage.Store) {
	if err := s.Commit(t.Context(), &storage.Batch{}); err != nil {
		t.Errorf("Commit of an empty batch: %v", err)
	}
}

func testCommitVisible(t *testing.T, s storage.Store) {
	q1 := createQueue(t, s, "commit-a")
	q2 := createQueue(t, s, "commit-b")

	// One batch writes to two queues, every state, payloads and audit.
	b := &storage.Batch{Metas: map[string]storage.Meta{q1: newMeta(), q2: {ShardSize: 10, NextSeq: 3}}}
	want := make(map[string]map[storage.ShardRef][]storage.Entry)
	var payloads []storage.Payload
	for _, q := range []string{q1, q2} {
		want[q] = make(map[storage.ShardRef][]storage.Entry)
		for _, st := range storage.States {
			ref := storage.ShardRef{State: st, Shard: 0}
			e := newEntry(q, st, 0, uint64(st))
			want[q][ref] = append(want[q][ref], e)
			b.PutEntries = append(b.PutEntries, e)

			p := newPayload(q, e.MessageID, 64)
			payloads = append(payloads, p)
			b.PutPayloads = append(b.PutPayloads, p)
		}
	}
	msg := uuid.New()
	events := []storage.AuditEvent{
		{MessageID: msg, Time: baseTime, Seq: 0, Action: "sent", Queue: q1, QueueMessageID: uuid.New(),
			ExpiresAt: auditExpiry()},
		{MessageID: msg, Time: baseTime, Seq: 1, Action: "received", Queue: q1, QueueMessageID: uuid.New(),
			ReceiveCount: 1, Detail: "by consumer 7", ExpiresAt: auditExpiry()},
	}
	b.Audit = events
	commit(t, s, b)

	for _, q := range []string{q1, q2} {
		for ref, es := range want[q] {
			checkEntries(t, fmt.Sprintf("%s %v", q, ref.State), scan(t, s, q, ref), es)
		}
	}
	for _, p := range payloads {
		got, err := s.Payload(t.Context(), storage.PayloadKey{Queue: p.Queue, MessageID: p.MessageID})
		if err != nil {
			t.Errorf("Payload(%q, %s): %v", p.Queue, p.MessageID, err)
			continue
		}
		checkPayload(t, "payload", got, p)
	}
	for q, m := range b.Metas {
		got, err := s.Meta(t.Context(), q)
		if err != nil {
			t.Fatalf("Meta(%q): %v", q, err)
		}
		checkMeta(t, "meta of "+q, got, m)
	}
	gotEvents, err := s.Audit(t.Context(), msg)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	checkAudit(t, "audit", gotEvents, events)
}

func testCommitDeletes(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "commit-delete")
	ref := storage.ShardRef{State: storage.Available, Shard: 0}
	var entries []storage.Entry
	var payloads []storage.Payload
	b := &storage.Batch{}
	for seq := uint64(1); seq <= 5; seq++ {
		e := newEntry(q, storage.Available, 0, seq)
		entries = append(entries, e)
		payloads = append(payloads, newPayload(q, e.MessageID, 8))
	}
	b.PutEntries = entries
	b.PutPayloads = payloads
	commit(t, s, b)

	// Delete entries 2 and 4 with their payloads, and add entry 6.
	e6 := newEntry(q, storage.Available, 0, 6)
	commit(t, s, &storage.Batch{
		DeleteEntries:  []storage.EntryKey{entries[1].Key(), entries[3].Key()},
		DeletePayloads: []storage.PayloadKey{{Queue: q, MessageID: entries[1].MessageID}, {Queue: q, MessageID: entries[3].MessageID}},
		PutEntries:     []storage.Entry{e6},
	})

	checkEntries(t, "entries after delete", scan(t, s, q, ref), []storage.Entry{entries[0], entries[2], entries[4], e6})
	for i, p := range payloads {
		_, err := s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: p.MessageID})
		deleted := i == 1 || i == 3
		switch {
		case deleted && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("deleted payload %d: error = %v, want ErrNotFound", i, err)
		case !deleted && err != nil:
			t.Errorf("kept payload %d: %v", i, err)
		}
	}

	// Deleting keys that do not exist is not an error.
	commit(t, s, &storage.Batch{
		DeleteEntries:  []storage.EntryKey{{Queue: q, State: storage.Inflight, Shard: 9, Seq: 9}},
		DeletePayloads: []storage.PayloadKey{{Queue: q, MessageID: uuid.New()}},
	})
}

func testCommitOverwrites(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "commit-overwrite")
	ref := storage.ShardRef{State: storage.Inflight, Shard: 2}
	first := newEntry(q, storage.Inflight, 2, 2001)
	commit(t, s, &storage.Batch{
		PutEntries:  []storage.Entry{first},
		PutPayloads: []storage.Payload{newPayload(q, first.MessageID, 100)},
		Metas:       map[string]storage.Meta{q: newMeta()},
	})

	second := first
	second.ReceiveCount++
	second.DueAt = second.DueAt.Add(time.Minute)
	second.ID = uuid.New()
	payload := newPayload(q, first.MessageID, 3)
	payload.ContentType = "application/octet-stream"
	meta := storage.Meta{ShardSize: 1000, NextSeq: 5000, Head: 4999}
	commit(t, s, &storage.Batch{
		PutEntries:  []storage.Entry{second},
		PutPayloads: []storage.Payload{payload},
		Metas:       map[string]storage.Meta{q: meta},
	})

	checkEntries(t, "overwritten entry", scan(t, s, q, ref), []storage.Entry{second})
	got, err := s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: first.MessageID})
	if err != nil {
		t.Fatalf("Payload: %v", err)
	}
	checkPayload(t, "overwritten payload", got, payload)
	gotMeta, err := s.Meta(t.Context(), q)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	checkMeta(t, "overwritten meta (no shards left)", gotMeta, meta)
}

func testCommitRetireAndPut(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "commit-retire-put")
	old := []storage.Entry{newEntry(q, storage.Inflight, 1, 1001), newEntry(q, storage.Inflight, 1, 1002)}
	keep := newEntry(q, storage.Available, 1, 1003)
	commit(t, s, &storage.Batch{PutEntries: append(old, keep)})

	// One batch retires a shard, moves its entries to the next shard and
	// deletes an entry elsewhere.
	moved := []storage.Entry{newEntry(q, storage.Inflight, 2, 1001), newEntry(q, storage.Inflight, 2, 1002)}
	meta := storage.Meta{ShardSize: 1000, NextSeq: 1004, Head: 1003, Shards: []storage.ShardRef{{State: storage.Inflight, Shard: 2}}}
	commit(t, s, &storage.Batch{
		RetireShards:  []storage.RetiredShard{{Queue: q, ShardRef: storage.ShardRef{State: storage.Inflight, Shard: 1}}},
		PutEntries:    moved,
		DeleteEntries: []storage.EntryKey{keep.Key()},
		Metas:         map[string]storage.Meta{q: meta},
	})

	checkEntries(t, "retired shard", scan(t, s, q, storage.ShardRef{State: storage.Inflight, Shard: 1}), nil)
	checkEntries(t, "new shard", scan(t, s, q, storage.ShardRef{State: storage.Inflight, Shard: 2}), moved)
	checkEntries(t, "available shard", scan(t, s, q, storage.ShardRef{State: storage.Available, Shard: 1}), nil)
	got, err := s.Meta(t.Context(), q)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	checkMeta(t, "meta", got, meta)
}

// orderSeqs are sequence numbers whose big-endian, little-endian and decimal
// orders differ, so a backend that sorts by the wrong encoding fails.
var orderSeqs = []uint64{0, 1, 2, 9, 10, 11, 99, 100, 255, 256, 257, 1000, 65535, 65536,
	1<<32 - 1, 1 << 32, 1<<32 + 1, 1 << 40, 1<<62 + 5}

// putShuffled commits one entry per seq into one shard, in random order and
// over several batches, and returns the entries in Seq order.
func putShuffled(t *testing.T, s storage.Store, q string, ref storage.ShardRef, seqs []uint64) []storage.Entry {
	t.Helper()
	want := make([]storage.Entry, len(seqs))
	for i, seq := range seqs {
		want[i] = newEntry(q, ref.State, ref.Shard, seq)
	}
	shuffled := append([]storage.Entry(nil), want...)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for len(shuffled) > 0 {
		n := min(len(shuffled), 4)
		commit(t, s, &storage.Batch{PutEntries: shuffled[:n]})
		shuffled = shuffled[n:]
	}
	return want
}

func testScanShardOrder(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "scan-order")
	for _, ref := range []storage.ShardRef{{State: storage.Available, Shard: 0}, {State: storage.Delayed, Shard: 1 << 33}} {
		want := putShuffled(t, s, q, ref, orderSeqs)
		checkEntries(t, fmt.Sprintf("%v/%d", ref.State, ref.Shard), scan(t, s, q, ref), want)
	}
}

func testScanShardFrom(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "scan-from")
	ref := storage.ShardRef{State: storage.Available, Shard: 3}
	want := putShuffled(t, s, q, ref, orderSeqs)

	tests := []struct {
		name string
		from uint64
		skip int
	}{
		{"zero", 0, 0},
		{"first", orderSeqs[0], 0},
		{"existing", 256, 9},
		{"between", 12, 6},
		{"last", 1<<62 + 5, len(orderSeqs) - 1},
		{"after last", 1<<62 + 6, len(orderSeqs)},
		{"max", 1<<64 - 1, len(orderSeqs)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ScanShard(t.Context(), q, ref, tc.from, 1000)
			if err != nil {
				t.Fatalf("ScanShard(from=%d): %v", tc.from, err)
			}
			checkEntries(t, fmt.Sprintf("from %d", tc.from), got, want[tc.skip:])
		})
	}
}

func testScanShardLimit(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "scan-limit")
	ref := storage.ShardRef{State: storage.Inflight, Shard: 0}
	want := putShuffled(t, s, q, ref, orderSeqs)
	n := len(orderSeqs)

	tests := []struct {
		name  string
		from  uint64
		limit int
		want  []storage.Entry
	}{
		{"one", 0, 1, want[:1]},
		{"three", 0, 3, want[:3]},
		{"exact", 0, n, want},
		{"more than stored", 0, n + 10, want},
		{"from with limit", 100, 2, want[7:9]},
		{"limit past end", 1 << 32, 10, want[n-4:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ScanShard(t.Context(), q, ref, tc.from, tc.limit)
			if err != nil {
				t.Fatalf("ScanShard(from=%d, limit=%d): %v", tc.from, tc.limit, err)
			}
			checkEntries(t, fmt.Sprintf("from %d limit %d", tc.from, tc.limit), got, tc.want)
		})
	}

	// Paging by the last Seq returned visits every entry once.
	var paged []storage.Entry
	for from := uint64(0); ; {
		page, err := s.ScanShard(t.Context(), q, ref, from, 4)
		if err != nil {
			t.Fatalf("ScanShard page from %d: %v", from, err)
		}
		paged = append(paged, page...)
		if len(page) < 4 {
			break
		}
		from = page[len(page)-1].Seq + 1
	}
	checkEntries(t, "paged scan", paged, want)
}

func testScanShardIsolation(t *testing.T, s storage.Store) {
	// The same Seq numbers in neighbouring states, shards and queues whose
	// names extend this queue's name.
	base := uniqueName(t, "scan-iso")
	queues := []string{base, base + ".b", base + "b"}
	shards := []uint64{0, 1, 255, 256, 1 << 32}
	want := make(map[string]map[storage.ShardRef][]storage.Entry)
	for _, q := range queues {
		createNamed(t, s, q)
		want[q] = make(map[storage.ShardRef][]storage.Entry)
		b := &storage.Batch{}
		for _, st := range storage.States {
			for _, shard := range shards {
				ref := storage.ShardRef{State: st, Shard: shard}
				for seq := uint64(1); seq <= 3; seq++ {
					e := newEntry(q, st, shard, seq)
					want[q][ref] = append(want[q][ref], e)
					b.PutEntries = append(b.PutEntries, e)
				}
			}
		}
		commit(t, s, b)
	}

	for _, q := range queues {
		for ref, es := range want[q] {
			checkEntries(t, fmt.Sprintf("%s %v/%d", q, ref.State, ref.Shard), scan(t, s, q, ref), es)
		}
		// Shards and queues that hold nothing return nothing.
		checkEntries(t, "empty shard", scan(t, s, q, storage.ShardRef{State: storage.Available, Shard: 2}), nil)
	}
	checkEntries(t, "missing queue", scan(t, s, base+"-none", storage.ShardRef{State: storage.Available}), nil)
}

func testRetireShards(t *testing.T, s storage.Store) {
	base := uniqueName(t, "retire")
	queues := []string{base, base + "x"}
	shards := []uint64{0, 1, 2, 256}
	want := make(map[string]map[storage.ShardRef][]storage.Entry)
	for _, q := range queues {
		createNamed(t, s, q)
		want[q] = make(map[storage.ShardRef][]storage.Entry)
		b := &storage.Batch{}
		for _, st := range storage.States {
			for _, shard := range shards {
				ref := storage.ShardRef{State: st, Shard: shard}
				for i := uint64(0); i < 3; i++ {
					e := newEntry(q, st, shard, shard*1000+i)
					want[q][ref] = append(want[q][ref], e)
					b.PutEntries = append(b.PutEntries, e)
				}
			}
		}
		commit(t, s, b)
	}

	retired := storage.ShardRef{State: storage.Inflight, Shard: 1}
	commit(t, s, &storage.Batch{RetireShards: []storage.RetiredShard{
		{Queue: base, ShardRef: retired},
		// Retiring a shard that holds nothing is not an error.
		{Queue: base, ShardRef: storage.ShardRef{State: storage.Moving, Shard: 77}},
	}})
	want[base][retired] = nil

	for _, q := range queues {
		for ref, es := range want[q] {
			checkEntries(t, fmt.Sprintf("%s %v/%d", q, ref.State, ref.Shard), scan(t, s, q, ref), es)
		}
	}
}

func testPayloadRoundTrip(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "payload")
	empty := storage.Payload{Queue: q, MessageID: uuid.New(), Data: []byte{}}
	oldExpiry := newPayload(q, uuid.New(), 5)
	oldExpiry.ExpiresAt = baseTime.AddDate(-40, 0, 0)
	tests := []struct {
		name string
		p    storage.Payload
	}{
		{"empty", empty},
		{"small", newPayload(q, uuid.New(), 100)},
		{"old expiry", oldExpiry},
		{"binary attributes", func() storage.Payload {
			p := newPayload(q, uuid.New(), 1)
			p.Attributes = []byte{0, 1, 2, 0xff, 0}
			return p
		}()},
		{"1 MiB", newPayload(q, uuid.New(), 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			commit(t, s, &storage.Batch{PutPayloads: []storage.Payload{tc.p}})
			got, err := s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: tc.p.MessageID})
			if err != nil {
				t.Fatalf("Payload: %v", err)
			}
			checkPayload(t, tc.name, got, tc.p)
		})
	}
}

func testPayloadMissing(t *testing.T, s storage.Store) {
	q := createQueue(t, s, "payload-missing")
	id := uuid.New()
	commit(t, s, &storage.Batch{PutPayloads: []storage.Payload{newPayload(q+"x", id, 3)}})

	for _, key := range []storage.PayloadKey{
		{Queue: q, MessageID: uuid.New()},
		// The same message id stored under another queue does not count.
		{Queue: q, MessageID: id},
		{Queue: uniqueName(t, "payload-no-queue"), MessageID: id},
	} {
		_, err := s.Payload(t.Context(), key)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Payload(%q, %s): error = %v, want ErrNotFound", key.Queue, key.MessageID, err)
		}
	}
}

func testMetaRoundTrip(t *testing.T, s storage.Store) {
	tests := []struct {
		name string
		meta storage.Meta
	}{
		{"full", newMeta()},
		{"zero", storage.Meta{}},
		{"large", storage.Meta{
			ShardSize: 1 << 20, NextSeq: 1<<62 + 3, Head: 1 << 61, Available: 1 << 40,
			Shards: []storage.ShardRef{{State: storage.Moving, Shard: 1 << 50}, {State: storage.Delayed, Shard: 0}},
			Totals: storage.Totals{Sent: 1 << 50, Purged: 1 << 33},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := createQueue(t, s, "meta")
			commit(t, s, &storage.Batch{Metas: map[string]storage.Meta{q: tc.meta}})
			got, err := s.Meta(t.Context(), q)
			if err != nil {
				t.Fatalf("Meta: %v", err)
			}
			checkMeta(t, tc.name, got, tc.meta)
		})
	}
}

func testMetaMissing(t *testing.T, s storage.Store) {
	for _, q := range []string{uniqueName(t, "meta-none"), createQueue(t, s, "meta-empty")} {
		got, err := s.Meta(t.Context(), q)
		if err != nil {
			t.Errorf("Meta(%q): %v", q, err)
			continue
		}
		checkMeta(t, "meta of "+q, got, storage.Meta{})
	}
}

func testConcurrentCommits(t *testing.T, s storage.Store) {
	writers, commits := 16, 200
	if testing.Short() {
		commits = 20
	}
	const shardSize = 50

	// Each writer owns one queue, as the engine's queue owners do.
	queues := make([]string, writers)
	for i := range queues {
		queues[i] = createQueue(t, s, fmt.Sprintf("concurrent-%d", i))
	}
	ids := make([][]uuid.UUID, writers)
	var wg sync.WaitGroup
	for w := range writers {
		ids[w] = make([]uuid.UUID, commits)
		wg.Go(func() {
			q := queues[w]
			for i := range commits {
				seq := uint64(i)
				e := newEntry(q, storage.Available, storage.ShardOf(seq, shardSize), seq)
				ids[w][i] = e.MessageID
				err := s.Commit(t.Context(), &storage.Batch{
					PutEntries:  []storage.Entry{e},
					PutPayloads: []storage.Payload{newPayload(q, e.MessageID, 16)},
					Metas:       map[string]storage.Meta{q: {ShardSize: shardSize, NextSeq: seq + 1}},
				})
				if err != nil {
					t.Errorf("writer %d commit %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for w, q := range queues {
		m, err := s.Meta(t.Context(), q)
		if err != nil {
			t.Fatalf("Meta(%q): %v", q, err)
		}
		if m.NextSeq != uint64(commits) {
			t.Errorf("Meta(%q).NextSeq = %d, want %d", q, m.NextSeq, commits)
		}

		var got []uint64
		for shard := uint64(0); shard <= storage.ShardOf(uint64(commits-1), shardSize); shard++ {
			got = append(got, seqs(scan(t, s, q, storage.ShardRef{State: storage.Available, Shard: shard}))...)
		}
		if len(got) != commits {
			t.Errorf("queue %q has %d entries, want %d", q, len(got), commits)
		}
		for i, seq := range got {
			if seq != uint64(i) {
				t.Errorf("queue %q entry %d has Seq %d, want %d", q, i, seq, i)
				break
			}
		}

		for i, id := range ids[w] {
			if _, err := s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: id}); err != nil {
				t.Errorf("Payload of queue %q commit %d: %v", q, i, err)
			}
		}
	}
}

func testCloseTwice(t *testing.T, s storage.Store) {
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
