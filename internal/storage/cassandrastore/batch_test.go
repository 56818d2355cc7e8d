package cassandrastore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// Fields at the maximum length the engine accepts: 80 characters for queue
// names and 255 for content types.
var (
	longQueue       = strings.Repeat("q", 80)
	longSource      = strings.Repeat("s", 80)
	longContentType = "application/" + strings.Repeat("x", 255-len("application/"))
)

// countedWrites counts the writes of b as the engine does when it compares a
// round with MaxBatchWrites.
func countedWrites(b *storage.Batch) int {
	return len(b.PutEntries) + len(b.DeleteEntries) + len(b.PutPayloads) + len(b.DeletePayloads) +
		len(b.RetireShards) + len(b.Audit)
}

// worstRoundPrefix returns the writes a round can hold just before the engine
// stops adding requests. They are extends of dead-lettered messages, with
// every field at its maximum length. An extend writes one entry put and one
// audit event, the most logged-batch bytes per counted write of any request.
func worstRoundPrefix(now time.Time) *storage.Batch {
	b := &storage.Batch{}
	for seq := uint64(1); countedWrites(b)+2 <= maxBatchWrites-1; seq++ {
		e := longEntry(storage.Inflight, seq, now)
		e.DueAt = now.Add(time.Minute)
		b.PutEntries = append(b.PutEntries, e)
		b.Audit = append(b.Audit, longEvent(e, "extended", now))
	}
	return b
}

// longEntry returns an entry of longQueue with every text field at its
// maximum length.
func longEntry(state storage.State, seq uint64, now time.Time) storage.Entry {
	return storage.Entry{
		Queue: longQueue, State: state, Shard: 0, Seq: seq, ID: uuid.New(), MessageID: uuid.New(),
		CreatedAt: now, SentAt: now, ExpiresAt: now.Add(14 * 24 * time.Hour), ReceiveCount: 1000,
		ContentType: longContentType, Size: 1 << 20, SourceQueue: longSource,
	}
}

func longEvent(e storage.Entry, action string, now time.Time) storage.AuditEvent {
	return storage.AuditEvent{
		MessageID: e.MessageID, Time: now, Seq: uint32(e.Seq), Action: action, Queue: e.Queue,
		QueueMessageID: e.ID, ReceiveCount: e.ReceiveCount, Detail: "deadline " + now.Format(time.RFC3339Nano),
		ExpiresAt: now.Add(14 * 24 * time.Hour),
	}
}

// TestCommitWorstCaseRound commits the largest rounds the engine builds: as
// many writes as fit below MaxBatchWrites, then one more request of 100
// messages, the most the engine accepts in one send or receive. It needs the
// batch_size_fail_threshold that doc.go requires, which scripts/cassandra-dev.sh
// sets.
func TestCommitWorstCaseRound(t *testing.T) {
	s := openTestStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	const messages = 100

	t.Run("receive", func(t *testing.T) {
		b := worstRoundPrefix(now)
		prefix := len(b.PutEntries)
		for i := range messages {
			seq := uint64(1000 + i)
			b.DeleteEntries = append(b.DeleteEntries, storage.EntryKey{Queue: longQueue, State: storage.Available, Seq: seq})
			e := longEntry(storage.Inflight, seq, now)
			e.DueAt = now.Add(30 * time.Second)
			b.PutEntries = append(b.PutEntries, e)
			b.Audit = append(b.Audit, longEvent(e, "received", now))
		}
		b.Metas = map[string]storage.Meta{longQueue: {ShardSize: 400_000, NextSeq: 2000, Head: 1100,
			Shards: []storage.ShardRef{{State: storage.Inflight, Shard: 0}}}}
		t.Logf("round of %d counted writes, limit %d", countedWrites(b), maxBatchWrites)
		commitWorstCase(t, s, b)

		got, err := s.ScanShard(context.Background(), longQueue, storage.ShardRef{State: storage.Inflight}, 0, 1000)
		if err != nil {
			t.Fatalf("ScanShard: %v", err)
		}
		if want := prefix + messages; len(got) != want {
			t.Errorf("inflight shard holds %d entries, want %d", len(got), want)
		}
		last := b.Audit[len(b.Audit)-1]
		evs, err := s.Audit(context.Background(), last.MessageID)
		if err != nil {
			t.Fatalf("Audit: %v", err)
		}
		if len(evs) != 1 || evs[0].Action != "received" {
			t.Errorf("audit of the last received message = %+v, want one received event", evs)
		}
	})

	t.Run("send", func(t *testing.T) {
		b := worstRoundPrefix(now)
		for i := range messages {
			e := longEntry(storage.Available, uint64(3000+i), now)
			e.SourceQueue = ""
			b.PutEntries = append(b.PutEntries, e)
			b.PutPayloads = append(b.PutPayloads, storage.Payload{Queue: longQueue, MessageID: e.MessageID,
				ContentType: longContentType, Data: []byte("payload"), ExpiresAt: e.ExpiresAt})
			b.Audit = append(b.Audit, longEvent(e, "sent", now))
		}
		b.Metas = map[string]storage.Meta{longQueue: {ShardSize: 400_000, NextSeq: 3100, Head: 3000}}
		t.Logf("round of %d counted writes, limit %d", countedWrites(b), maxBatchWrites)
		commitWorstCase(t, s, b)

		got, err := s.ScanShard(context.Background(), longQueue, storage.ShardRef{State: storage.Available}, 3000, 1000)
		if err != nil {
			t.Fatalf("ScanShard: %v", err)
		}
		if len(got) != messages {
			t.Errorf("available shard holds %d entries from seq 3000, want %d", len(got), messages)
		}
		p := b.PutPayloads[messages-1]
		if _, err := s.Payload(context.Background(), storage.PayloadKey{Queue: longQueue, MessageID: p.MessageID}); err != nil {
			t.Errorf("Payload of the last message: %v", err)
		}
	})
}

func commitWorstCase(t *testing.T, s *Store, b *storage.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit of the worst-case round: %v\n"+
			"The node needs batch_size_fail_threshold: %s or more in cassandra.yaml.", err, minBatchSizeFailThreshold)
	}
}
