package pebblestore

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// expireChunk is how many expired events ExpireAudit deletes per batch, so one
// call never builds an unbounded batch or holds the store for long.
const expireChunk = 1000

// Audit returns the events of a message ordered by time, then by Seq.
func (s *Store) Audit(ctx context.Context, messageID uuid.UUID) ([]storage.AuditEvent, error) {
	op := fmt.Sprintf("read audit of message %s", messageID)
	if err := s.acquire(ctx, op); err != nil {
		return nil, err
	}
	defer s.release()

	prefix := auditPrefix(messageID)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: prefix,
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer it.Close()

	var events []storage.AuditEvent
	for valid := it.First(); valid; valid = it.Next() {
		ev, err := storage.UnmarshalAuditEvent(it.Value())
		if err != nil {
			return nil, fmt.Errorf("%s: key %x: %w", op, it.Key(), err)
		}
		events = append(events, ev)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return events, nil
}

// ExpireAudit deletes the audit events whose ExpiresAt is before now and
// returns how many it deleted. It walks the expiry index from its start and
// deletes each event with its index key, in synced batches of up to
// expireChunk events. When ctx is cancelled it stops between batches and
// returns the count so far with the error.
func (s *Store) ExpireAudit(ctx context.Context, now time.Time) (int, error) {
	op := fmt.Sprintf("expire audit before %s", now.UTC().Format(time.RFC3339Nano))
	removed := 0
	lower := []byte{spaceAuditExpiry}
	upper := expiryBound(now)
	for {
		n, next, err := s.expireChunk(ctx, op, lower, upper)
		removed += n
		if err != nil {
			return removed, err
		}
		if next == nil {
			return removed, nil
		}
		lower = next
	}
}

// expireChunk deletes up to expireChunk events whose expiry keys lie in
// [lower, upper). It returns the key to continue from, or nil when the range
// holds no more keys.
func (s *Store) expireChunk(ctx context.Context, op string, lower, upper []byte) (int, []byte, error) {
	if err := s.acquire(ctx, op); err != nil {
		return 0, nil, err
	}
	defer s.release()

	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", op, err)
	}
	defer it.Close()

	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	var next []byte
	for valid := it.First(); valid; valid = it.Next() {
		if n == expireChunk {
			next = append([]byte(nil), it.Key()...)
			break
		}
		ak, err := auditKeyOfExpiry(it.Key())
		if err != nil {
			return 0, nil, fmt.Errorf("%s: %w", op, err)
		}
		if err := b.Delete(it.Key(), nil); err != nil {
			return 0, nil, fmt.Errorf("%s: %w", op, err)
		}
		if err := b.Delete(ak, nil); err != nil {
			return 0, nil, fmt.Errorf("%s: %w", op, err)
		}
		n++
	}
	if err := it.Error(); err != nil {
		return 0, nil, fmt.Errorf("%s: %w", op, err)
	}

	if n > 0 {
		if err := b.Commit(pebble.Sync); err != nil {
			return 0, nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	return n, next, nil
}
