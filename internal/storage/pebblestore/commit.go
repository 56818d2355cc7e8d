package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/qakka/qakka/internal/storage"
)

// Commit applies b as one Pebble batch and returns after the WAL holding it
// is synced. Concurrent commits share WAL syncs. An empty batch writes
// nothing.
//
// A fenced batch holds the lease lock of its queue for reading from the
// check of the lease until the batch is applied, and every change of a lease
// holds that lock for writing. So no lease changes between the check and the
// write, and an empty fenced batch still checks its fence.
func (s *Store) Commit(ctx context.Context, b *storage.Batch) error {
	const op = "commit"
	if err := checkBatchNames(b); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return err
	}
	defer s.release()

	if f := b.Fence; f != nil {
		lock := s.leaseLock(f.Queue)
		lock.RLock()
		defer lock.RUnlock()
		if err := s.checkFence(f); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if b.Empty() {
		return nil
	}

	pb := s.db.NewBatch()
	defer pb.Close()
	if err := buildBatch(pb, b); err != nil {
		return fmt.Errorf("%s: build batch: %w", op, err)
	}
	if err := pb.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("%s: batch of %d writes: %w", op, pb.Count(), err)
	}
	return nil
}

// buildBatch writes the deletions of b into pb before the puts. A range
// deletion covers only the writes placed before it in a Pebble batch, so a
// put into a shard that the same batch retires survives.
func buildBatch(pb *pebble.Batch, b *storage.Batch) error {
	for _, r := range b.RetireShards {
		prefix := shardPrefix(r.Queue, r.ShardRef)
		if err := pb.DeleteRange(prefix, prefixEnd(prefix), nil); err != nil {
			return err
		}
	}
	// NB: entries and payloads may be written more than once under one key,
	// so SingleDelete, which requires a single write, would be wrong here.
	for _, k := range b.DeleteEntries {
		if err := pb.Delete(entryKey(k), nil); err != nil {
			return err
		}
	}
	for _, k := range b.DeletePayloads {
		if err := pb.Delete(payloadKey(k), nil); err != nil {
			return err
		}
	}

	for i := range b.PutEntries {
		e := &b.PutEntries[i]
		if err := pb.Set(entryKey(e.Key()), storage.MarshalEntry(e), nil); err != nil {
			return err
		}
	}
	for i := range b.PutPayloads {
		p := &b.PutPayloads[i]
		key := payloadKey(storage.PayloadKey{Queue: p.Queue, MessageID: p.MessageID})
		if err := pb.Set(key, storage.MarshalPayload(p), nil); err != nil {
			return err
		}
	}
	for queue, m := range b.Metas {
		if err := pb.Set(metaKey(queue), storage.MarshalMeta(&m), nil); err != nil {
			return err
		}
	}
	for i := range b.Audit {
		ev := &b.Audit[i]
		if err := pb.Set(auditKey(ev), storage.MarshalAuditEvent(ev), nil); err != nil {
			return err
		}
		if err := pb.Set(expiryKey(ev), nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// checkBatchNames rejects a batch that names a queue the key layout cannot
// hold.
func checkBatchNames(b *storage.Batch) error {
	var errs []error
	check := func(name string) {
		if err := checkQueueName(name); err != nil {
			errs = append(errs, err)
		}
	}
	for i := range b.PutPayloads {
		check(b.PutPayloads[i].Queue)
	}
	for _, k := range b.DeletePayloads {
		check(k.Queue)
	}
	for i := range b.PutEntries {
		check(b.PutEntries[i].Queue)
	}
	for _, k := range b.DeleteEntries {
		check(k.Queue)
	}
	for _, r := range b.RetireShards {
		check(r.Queue)
	}
	for q := range b.Metas {
		check(q)
	}
	if b.Fence != nil {
		check(b.Fence.Queue)
	}
	return errors.Join(errs...)
}

// Meta returns the metadata of a queue, or the zero Meta when none is stored.
func (s *Store) Meta(ctx context.Context, queue string) (storage.Meta, error) {
	op := fmt.Sprintf("read meta of queue %q", queue)
	if err := checkQueueName(queue); err != nil {
		return storage.Meta{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return storage.Meta{}, err
	}
	defer s.release()

	v, closer, err := s.db.Get(metaKey(queue))
	if errors.Is(err, pebble.ErrNotFound) {
		return storage.Meta{}, nil
	}
	if err != nil {
		return storage.Meta{}, fmt.Errorf("%s: %w", op, err)
	}
	defer closer.Close()

	m, err := storage.UnmarshalMeta(v)
	if err != nil {
		return storage.Meta{}, fmt.Errorf("%s: %w", op, err)
	}
	return m, nil
}

// ScanShard returns up to limit entries of one shard with Seq >= from, in Seq
// order, with one seek. A limit of zero or less returns nothing.
func (s *Store) ScanShard(ctx context.Context, queue string, ref storage.ShardRef, from uint64, limit int) ([]storage.Entry, error) {
	op := fmt.Sprintf("scan queue %q shard %v/%d from %d", queue, ref.State, ref.Shard, from)
	if err := checkQueueName(queue); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	if err := s.acquire(ctx, op); err != nil {
		return nil, err
	}
	defer s.release()

	// The bounds keep the iterator inside the shard, so Pebble stops at the
	// shard's end without visiting the next shard's keys or tombstones.
	prefix := shardPrefix(queue, ref)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: entryKey(storage.EntryKey{Queue: queue, State: ref.State, Shard: ref.Shard, Seq: from}),
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer it.Close()

	entries := make([]storage.Entry, 0, min(limit, 128))
	for valid := it.First(); valid && len(entries) < limit; valid = it.Next() {
		e, err := decodeEntry(it.Key(), it.Value(), len(prefix))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		entries = append(entries, e)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return entries, nil
}

// Shards returns, in ascending order, the shards of one state of a queue that
// hold entries. It reads one key per shard: after the first key of a shard it
// seeks to the start of the next shard, so the entries of a shard cost
// nothing however many there are.
func (s *Store) Shards(ctx context.Context, queue string, state storage.State) ([]uint64, error) {
	op := fmt.Sprintf("list %v shards of queue %q", state, queue)
	if err := checkQueueName(queue); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return nil, err
	}
	defer s.release()

	prefix := statePrefix(queue, state)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: prefix,
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer it.Close()

	var shards []uint64
	for valid := it.First(); valid; {
		shard, err := entryShard(it.Key(), len(prefix))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		shards = append(shards, shard)
		if shard == math.MaxUint64 {
			break
		}
		valid = it.SeekGE(shardPrefix(queue, storage.ShardRef{State: state, Shard: shard + 1}))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return shards, nil
}

// decodeEntry decodes an entry value and checks that it matches its key.
func decodeEntry(key, value []byte, prefixLen int) (storage.Entry, error) {
	seq, err := entrySeq(key, prefixLen)
	if err != nil {
		return storage.Entry{}, err
	}
	e, err := storage.UnmarshalEntry(value)
	if err != nil {
		return storage.Entry{}, fmt.Errorf("entry %d: %w", seq, err)
	}
	if e.Seq != seq {
		return storage.Entry{}, fmt.Errorf("entry %d: value contains Seq %d: %w", seq, e.Seq, storage.ErrCorrupt)
	}
	return e, nil
}

// Payload returns one payload, or an error wrapping storage.ErrNotFound.
func (s *Store) Payload(ctx context.Context, key storage.PayloadKey) (storage.Payload, error) {
	op := fmt.Sprintf("read payload %s of queue %q", key.MessageID, key.Queue)
	if err := checkQueueName(key.Queue); err != nil {
		return storage.Payload{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return storage.Payload{}, err
	}
	defer s.release()

	v, closer, err := s.db.Get(payloadKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return storage.Payload{}, fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Payload{}, fmt.Errorf("%s: %w", op, err)
	}
	defer closer.Close()

	p, err := storage.UnmarshalPayload(v)
	if err != nil {
		return storage.Payload{}, fmt.Errorf("%s: %w", op, err)
	}
	return p, nil
}
