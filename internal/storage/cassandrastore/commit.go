package cassandrastore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/qakka/qakka/internal/storage"
)

// payloadParallelism bounds the concurrent payload writes of one commit.
const payloadParallelism = 4

// auditParallelism bounds the concurrent audit writes of one commit. Audit
// rows are small, and a commit of a 100-message receive writes 100 of them.
const auditParallelism = 32

// maxBatchWrites is the batch limit that MaxBatchWrites returns. With it, a
// round of many small requests stays within Cassandra's default
// batch_size_fail_threshold of 50 KiB for short names and content types. The
// section "Batch size" in doc.go derives it from sizes measured on Cassandra
// 5.0.8.
const maxBatchWrites = 64

// minBatchSizeFailThreshold is the batch_size_fail_threshold that a round of
// the engine needs when its names and content types have their maximum
// length. The section "Batch size" in doc.go explains the figure.
const minBatchSizeFailThreshold = "128KiB"

var _ storage.BatchLimiter = (*Store)(nil)

// MaxBatchWrites implements storage.BatchLimiter.
func (s *Store) MaxBatchWrites() int { return maxBatchWrites }

// Commit implements storage.Store.
//
// Cassandra has no transaction across partitions other than a logged batch,
// which replays every statement from the batchlog once any of them is applied.
// Cassandra rejects a batch that spans several partitions and whose data
// exceeds batch_size_fail_threshold (50 KiB by default), while a payload alone
// may be 1 MiB. So Commit writes in three steps:
//
//  1. the payloads, each with its own statement;
//  2. one logged batch with entries and the registration of their shards,
//     shard retirements, metadata and payload deletions;
//  3. the audit events, each with its own statement.
//
// The payloads go first. A payload is only read through an entry that refers
// to it, and the entry is written by the batch, after the payload. If the
// batch fails, the payloads stay behind unreferenced: nothing reads them, a
// retried commit writes them again with the same content, and they expire by
// their TTL. The reverse order could leave an entry whose payload is missing.
//
// The audit events go last, because an event without the writes it describes
// is not harmless. The engine treats a "sent" event as proof that a message
// with that id is stored, and drops a later send of the same id as a
// duplicate. An audit row written before a batch that then failed would make
// the client's retry of that send lose the message. Written after the batch,
// an event can only be missing: when the audit writes fail, Commit returns an
// error although the batch is applied, and the engine reloads the queue's
// state from storage, as after any failed commit. A retried send of the same
// id is then stored twice, which the at-least-once contract allows.
//
// When a write of Commit fails, the outcome is unknown, as for any Cassandra
// write that times out: the batch may have been applied. When Commit returns
// nil, every write is acknowledged at the configured consistency. How durable
// that is depends on the nodes' commitlog_sync setting: with the default
// "periodic" mode, a write acknowledged by replicas that all lose power
// within commitlog_sync_period can be lost.
//
// A fenced batch first runs a lightweight transaction on the lease row of
// its queue, after every statement is built and before the first write, and
// writes nothing when the fence does not hold. The section "Leases" in doc.go
// explains what this check guarantees.
func (s *Store) Commit(ctx context.Context, b *storage.Batch) error {
	if b == nil || (b.Empty() && b.Fence == nil) {
		return nil
	}

	// Build and check every statement before the first write, so that a
	// bad batch writes nothing.
	payloads, err := s.payloadStatements(b)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	entries, err := s.batchEntries(b)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	audit, err := s.auditStatements(b)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	if b.Fence != nil {
		if err := s.checkFence(ctx, b.Fence); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	if err := s.putPayloads(ctx, payloads); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := s.execBatch(ctx, entries); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := s.putAudit(ctx, audit); err != nil {
		return fmt.Errorf("commit: the batch is applied, but %w", err)
	}
	return nil
}

// execBatch runs entries as one logged batch.
func (s *Store) execBatch(ctx context.Context, entries []gocql.BatchEntry) error {
	if len(entries) == 0 {
		return nil
	}
	batch := s.session.Batch(gocql.LoggedBatch).WithTimestamp(s.timestamp())
	batch.Entries = entries
	err := batch.ExecContext(ctx)
	if err != nil && strings.Contains(err.Error(), "Batch too large") {
		return fmt.Errorf("batch of %d statements is larger than the cluster's batch_size_fail_threshold, "+
			"which Qakka needs at %s or more on every node (see the cassandrastore package documentation): %w",
			len(entries), minBatchSizeFailThreshold, err)
	}
	if err != nil {
		return fmt.Errorf("batch of %d statements: %w", len(entries), err)
	}
	return nil
}

// payloadStatements returns the argument lists of the payload writes of b.
func (s *Store) payloadStatements(b *storage.Batch) ([][]any, error) {
	deleted := make(map[storage.PayloadKey]bool, len(b.DeletePayloads))
	for _, k := range b.DeletePayloads {
		deleted[k] = true
	}
	out := make([][]any, 0, len(b.PutPayloads))
	for _, p := range b.PutPayloads {
		if p.Queue == "" {
			return nil, fmt.Errorf("payload %s: empty queue name", p.MessageID)
		}
		// The payload write has an earlier timestamp than the batch, so
		// a delete of the same payload in the batch would win.
		if deleted[storage.PayloadKey{Queue: p.Queue, MessageID: p.MessageID}] {
			return nil, fmt.Errorf("payload %s of queue %s is both put and deleted", p.MessageID, p.Queue)
		}
		values, err := s.payloadValues(p)
		if err != nil {
			return nil, fmt.Errorf("payload %s of queue %s: %w", p.MessageID, p.Queue, err)
		}
		out = append(out, values)
	}
	return out, nil
}

// putPayloads writes payloads concurrently, all with one timestamp.
func (s *Store) putPayloads(ctx context.Context, payloads [][]any) error {
	if len(payloads) == 0 {
		return nil
	}
	timestamp := s.timestamp()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(payloadParallelism)
	for _, values := range payloads {
		g.Go(func() error {
			err := s.session.Query(s.stmt.insertPayload, values...).
				WithTimestamp(timestamp).Idempotent(true).ExecContext(gctx)
			if err != nil {
				return fmt.Errorf("write payload %v of queue %s: %w", values[1], values[0], err)
			}
			return nil
		})
	}
	return g.Wait()
}

// auditStatements returns the argument lists of the audit writes of b.
func (s *Store) auditStatements(b *storage.Batch) ([][]any, error) {
	out := make([][]any, 0, len(b.Audit))
	for _, ev := range b.Audit {
		values, err := s.auditValues(ev)
		if err != nil {
			return nil, fmt.Errorf("audit event %s of message %s: %w", ev.Action, ev.MessageID, err)
		}
		out = append(out, values)
	}
	return out, nil
}

// putAudit writes audit events concurrently, all with one timestamp.
func (s *Store) putAudit(ctx context.Context, events [][]any) error {
	if len(events) == 0 {
		return nil
	}
	timestamp := s.timestamp()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(auditParallelism)
	for _, values := range events {
		g.Go(func() error {
			err := s.session.Query(s.stmt.insertAudit, values...).
				WithTimestamp(timestamp).Idempotent(true).ExecContext(gctx)
			if err != nil {
				return fmt.Errorf("write audit event %v of message %v: %w", values[3], values[0], err)
			}
			return nil
		})
	}
	return g.Wait()
}

// batchEntries returns the statements of the logged batch of b.
func (s *Store) batchEntries(b *storage.Batch) ([]gocql.BatchEntry, error) {
	var out []gocql.BatchEntry
	add := func(stmt string, args ...any) {
		out = append(out, gocql.BatchEntry{Stmt: stmt, Args: args, Idempotent: true})
	}

	// Every statement of a batch has the batch's timestamp, and a deletion
	// wins a tie. The Batch contract rules out a key that is both put and
	// deleted; check it, since breaking it here would lose the put.
	retired := make(map[storage.RetiredShard]bool, len(b.RetireShards))
	for _, r := range b.RetireShards {
		retired[r] = true
	}
	deleted := make(map[storage.EntryKey]bool, len(b.DeleteEntries))
	for _, k := range b.DeleteEntries {
		deleted[k] = true
	}

	registered := make(map[storage.RetiredShard]bool)
	for _, e := range b.PutEntries {
		if err := checkEntryKey(e.Key()); err != nil {
			return nil, err
		}
		if deleted[e.Key()] {
			return nil, fmt.Errorf("entry %+v is both put and deleted", e.Key())
		}
		if retired[storage.RetiredShard{Queue: e.Queue, ShardRef: storage.ShardRef{State: e.State, Shard: e.Shard}}] {
			return nil, fmt.Errorf("entry %+v is put into a shard that the same batch retires", e.Key())
		}
		values, err := entryValues(e)
		if err != nil {
			return nil, fmt.Errorf("entry %+v: %w", e.Key(), err)
		}
		add(s.stmt.insertEntry, values...)

		// Register the shard, once per batch, so that DeleteQueue finds it.
		ref := storage.RetiredShard{Queue: e.Queue, ShardRef: storage.ShardRef{State: e.State, Shard: e.Shard}}
		if !registered[ref] {
			registered[ref] = true
			add(s.stmt.insertShardRef, values[0], values[1], values[2])
		}
	}
	for _, k := range b.DeleteEntries {
		if err := checkEntryKey(k); err != nil {
			return nil, err
		}
		values, err := entryKeyValues(k)
		if err != nil {
			return nil, fmt.Errorf("entry %+v: %w", k, err)
		}
		add(s.stmt.deleteEntry, values...)
	}
	for _, r := range b.RetireShards {
		if err := checkEntryKey(storage.EntryKey{Queue: r.Queue, State: r.State, Shard: r.Shard}); err != nil {
			return nil, err
		}
		shard, err := encodeUint("shard", r.Shard)
		if err != nil {
			return nil, fmt.Errorf("retired shard %+v: %w", r, err)
		}
		add(s.stmt.deleteShard, r.Queue, int8(r.State), shard)
		add(s.stmt.deleteShardRef, r.Queue, int8(r.State), shard)
	}

	for _, queue := range slices.Sorted(maps.Keys(b.Metas)) {
		if queue == "" {
			return nil, errors.New("metadata with an empty queue name")
		}
		values, err := metaValues(queue, b.Metas[queue])
		if err != nil {
			return nil, fmt.Errorf("metadata of queue %s: %w", queue, err)
		}
		add(s.stmt.insertMeta, values...)
	}
	for _, k := range b.DeletePayloads {
		if k.Queue == "" {
			return nil, fmt.Errorf("payload deletion %s: empty queue name", k.MessageID)
		}
		add(s.stmt.deletePayload, k.Queue, gocql.UUID(k.MessageID))
	}
	return out, nil
}

func checkEntryKey(k storage.EntryKey) error {
	if k.Queue == "" {
		return fmt.Errorf("entry %+v: empty queue name", k)
	}
	if !slices.Contains(storage.States, k.State) {
		return fmt.Errorf("entry %+v: invalid state %d", k, k.State)
	}
	return nil
}

// Meta implements storage.Store.
func (s *Store) Meta(ctx context.Context, queue string) (storage.Meta, error) {
	m, err := scanMeta(rowQuery{ctx, s.session.Query(s.stmt.selectMeta, queue)})
	if errors.Is(err, gocql.ErrNotFound) {
		return storage.Meta{}, nil
	}
	if err != nil {
		return storage.Meta{}, fmt.Errorf("read metadata of queue %s: %w", queue, err)
	}
	return m, nil
}

// ScanShard implements storage.Store. It reads one partition, starting at
// from: rows deleted before from cost nothing.
func (s *Store) ScanShard(ctx context.Context, queue string, ref storage.ShardRef, from uint64, limit int) ([]storage.Entry, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("scan %s shard %d of queue %s: limit %d is not positive", ref.State, ref.Shard, queue, limit)
	}
	shard, err := encodeUint("shard", ref.Shard)
	if err != nil {
		return nil, fmt.Errorf("scan shard of queue %s: %w", queue, err)
	}
	if from > math.MaxInt64 {
		// Commit stores no larger sequence number.
		return nil, nil
	}

	iter := s.session.Query(s.stmt.selectShard, queue, int8(ref.State), shard, int64(from), limit).
		PageSize(min(limit, 5000)).IterContext(ctx)
	sc := iter.Scanner()
	var out []storage.Entry
	for sc.Next() {
		e, err := scanEntry(sc)
		if err != nil {
			_ = iter.Close()
			return nil, fmt.Errorf("scan %s shard %d of queue %s: %w", ref.State, ref.Shard, queue, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan %s shard %d of queue %s: %w", ref.State, ref.Shard, queue, err)
	}
	return out, nil
}

// Shards implements storage.Store. It reads the queue's shard list in
// queue_shards, whose rows cluster by state and then shard, so the shards of
// one state are one contiguous slice of one partition. The list holds every
// shard that an entry was put into since the shard was last retired, so a
// shard whose entries were all deleted one by one is still listed.
func (s *Store) Shards(ctx context.Context, queue string, state storage.State) ([]uint64, error) {
	iter := s.session.Query(s.stmt.selectStateShards, queue, int8(state)).IterContext(ctx)
	sc := iter.Scanner()
	var out []uint64
	for sc.Next() {
		var shard int64
		if err := sc.Scan(&shard); err != nil {
			_ = iter.Close()
			return nil, fmt.Errorf("list %s shards of queue %s: %w", state, queue, err)
		}
		out = append(out, uint64(shard))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list %s shards of queue %s: %w", state, queue, err)
	}
	return out, nil
}

// Payload implements storage.Store.
func (s *Store) Payload(ctx context.Context, key storage.PayloadKey) (storage.Payload, error) {
	q := s.session.Query(s.stmt.selectPayload, key.Queue, gocql.UUID(key.MessageID))
	p, err := scanPayload(rowQuery{ctx, q})
	if errors.Is(err, gocql.ErrNotFound) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Payload{}, fmt.Errorf("read payload %s of queue %s: %w", key.MessageID, key.Queue, err)
	}
	return p, nil
}

// Audit implements storage.Store.
func (s *Store) Audit(ctx context.Context, messageID uuid.UUID) ([]storage.AuditEvent, error) {
	iter := s.session.Query(s.stmt.selectAudit, gocql.UUID(messageID)).IterContext(ctx)
	sc := iter.Scanner()
	var out []storage.AuditEvent
	for sc.Next() {
		ev, err := scanAudit(sc)
		if err != nil {
			_ = iter.Close()
			return nil, fmt.Errorf("read audit of message %s: %w", messageID, err)
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read audit of message %s: %w", messageID, err)
	}
	return out, nil
}

// ExpireAudit implements storage.Store. Audit rows carry a TTL derived from
// their ExpiresAt, so Cassandra removes them itself and ExpireAudit removes
// nothing and returns 0.
func (s *Store) ExpireAudit(ctx context.Context, now time.Time) (int, error) {
	return 0, ctx.Err()
}
