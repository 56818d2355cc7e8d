package cassandrastore

import (
	"context"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/qakka/qakka/internal/storage"
)

// The leases table is written with lightweight transactions only, at the
// store's serial consistency, and read at that level too. A plain write with
// a later timestamp could undo a transaction, and a read below the serial
// level can miss a transaction that is not yet committed at every replica.
// Lease times are whole milliseconds since the Unix epoch.

var _ storage.LeaseStore = (*Store)(nil)

// acquireAttempts bounds the loop in AcquireLease that reads the lease again
// after another node changed it between the read and the transaction.
const acquireAttempts = 3

// AcquireLease implements storage.LeaseStore. It reads the lease at the
// serial level and then writes the next one with a transaction that applies
// only if the lease is still the one it read: INSERT ... IF NOT EXISTS for a
// queue without a lease, UPDATE ... IF epoch = ? AND expires_at = ? for one
// that was released or expired before now-settle. ExpiresAt of the new lease
// is now+ttl truncated to the millisecond.
func (s *Store) AcquireLease(ctx context.Context, queue, owner string, now time.Time, ttl, settle time.Duration) (storage.Lease, error) {
	op := fmt.Sprintf("acquire lease of queue %s for %s", queue, owner)
	if err := checkLeaseRequest(queue, owner, ttl); err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if settle < 0 {
		return storage.Lease{}, fmt.Errorf("%s: negative settle time %v", op, settle)
	}
	expires, err := leaseExpiry(now, ttl)
	if err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	next := storage.Lease{Queue: queue, Owner: owner, ExpiresAt: decodeLeaseTime(expires)}

	for range acquireAttempts {
		current, err := s.serialLease(ctx, queue)
		var (
			stmt string
			args []any
		)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			next.Epoch = 1
			stmt, args = s.stmt.insertLease, []any{queue, owner, next.Epoch, expires}
		case err != nil:
			return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
		case !current.Free(now, settle):
			return storage.Lease{}, &storage.LeaseHeldError{Lease: current}
		default:
			next.Epoch = current.Epoch + 1
			stmt, args = s.stmt.takeLease, []any{owner, next.Epoch, expires, queue,
				current.Epoch, encodeLeaseTime(current.ExpiresAt)}
		}

		applied, uncertain, err := s.cas(ctx, map[string]any{}, stmt, args...)
		written, err := s.leaseWritten(ctx, next, applied, uncertain, err)
		if err != nil {
			return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
		}
		if written {
			return next, nil
		}
		// Another node changed the lease after the read: read it again.
	}
	return storage.Lease{}, fmt.Errorf("%s: the lease changed during each of %d attempts; retry", op, acquireAttempts)
}

// RenewLease implements storage.LeaseStore with UPDATE ... IF owner = ? AND
// epoch = ? AND expires_at > ?. ExpiresAt of the renewed lease is now+ttl
// truncated to the millisecond.
func (s *Store) RenewLease(ctx context.Context, l storage.Lease, now time.Time, ttl time.Duration) (storage.Lease, error) {
	op := fmt.Sprintf("renew lease of queue %s for %s at epoch %d", l.Queue, l.Owner, l.Epoch)
	if err := checkLeaseRequest(l.Queue, l.Owner, ttl); err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	expires, err := leaseExpiry(now, ttl)
	if err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	renewed := l
	renewed.ExpiresAt = decodeLeaseTime(expires)

	applied, uncertain, err := s.cas(ctx, map[string]any{}, s.stmt.renewLease,
		expires, l.Queue, l.Owner, l.Epoch, leaseNow(now))
	written, err := s.leaseWritten(ctx, renewed, applied, uncertain, err)
	if err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if written {
		return renewed, nil
	}
	return storage.Lease{}, fmt.Errorf("%s: %w", op, s.lostLeaseError(ctx, l.Queue))
}

// ReleaseLease implements storage.LeaseStore with UPDATE ... SET expires_at =
// 0 IF owner = ? AND epoch = ?. Whether the transaction applied or not, the
// lease is no longer l's holder's afterwards, so an unknown outcome after a
// timeout needs no read to settle it.
func (s *Store) ReleaseLease(ctx context.Context, l storage.Lease) error {
	if l.Queue == "" {
		return errors.New("release lease: empty queue name")
	}
	_, _, err := s.cas(ctx, map[string]any{}, s.stmt.releaseLease, l.Queue, l.Owner, l.Epoch)
	if err != nil {
		return fmt.Errorf("release lease of queue %s for %s at epoch %d: %w", l.Queue, l.Owner, l.Epoch, err)
	}
	return nil
}

// Lease implements storage.LeaseStore. It reads at the serial level.
func (s *Store) Lease(ctx context.Context, queue string) (storage.Lease, error) {
	l, err := s.serialLease(ctx, queue)
	if err != nil {
		return storage.Lease{}, fmt.Errorf("read lease of queue %s: %w", queue, err)
	}
	return l, nil
}

// checkFence runs the lightweight transaction of a fenced commit: it writes
// fenced_at on the lease row if f.Owner holds the lease at f.Epoch and the
// lease has not expired at f.Now. It returns an error wrapping
// storage.ErrFenced when the transaction does not apply, also when an
// earlier attempt timed out: the attempt that did not apply ran last, so the
// fence does not hold now whatever the earlier attempt did.
func (s *Store) checkFence(ctx context.Context, f *storage.Fence) error {
	op := fmt.Sprintf("fence of queue %s for %s at epoch %d", f.Queue, f.Owner, f.Epoch)
	if f.Queue == "" {
		return fmt.Errorf("%s: empty queue name", op)
	}
	now := leaseNow(f.Now)
	applied, _, err := s.cas(ctx, map[string]any{}, s.stmt.fenceLease, now, f.Queue, f.Owner, f.Epoch, now)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !applied {
		return fmt.Errorf("%s: %w", op, s.lostLeaseError(ctx, f.Queue))
	}
	return nil
}

// serialLease reads the lease of a queue at the serial level, or returns
// storage.ErrNotFound.
func (s *Store) serialLease(ctx context.Context, queue string) (storage.Lease, error) {
	if queue == "" {
		return storage.Lease{}, storage.ErrNotFound
	}
	var (
		l       = storage.Lease{Queue: queue}
		expires int64
	)
	err := s.session.Query(s.stmt.selectLease, queue).Consistency(s.serial).
		ScanContext(ctx, &l.Owner, &l.Epoch, &expires)
	if errors.Is(err, gocql.ErrNotFound) {
		return storage.Lease{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Lease{}, err
	}
	l.ExpiresAt = decodeLeaseTime(expires)
	return l, nil
}

// leaseWritten returns whether a transaction that writes want applied, from
// the results of cas. When cas reports an unknown outcome (a timeout, then
// an attempt that did not apply or timed out too), it reads the lease at the
// serial level. That read completes any transaction in progress on the row,
// so the lease it returns is final: the transaction applied if the lease is
// want.
func (s *Store) leaseWritten(ctx context.Context, want storage.Lease, applied, uncertain bool, casErr error) (bool, error) {
	switch {
	case casErr == nil && applied:
		return true, nil
	case !uncertain:
		return false, casErr
	}
	ours, err := s.holdsLease(ctx, want)
	if err != nil {
		return false, fmt.Errorf("outcome unknown after a timeout: %w", errors.Join(casErr, err))
	}
	if ours {
		return true, nil
	}
	return false, casErr
}

// holdsLease reports whether the current lease, read at the serial level, is
// l: the same owner, epoch and expiry.
func (s *Store) holdsLease(ctx context.Context, l storage.Lease) (bool, error) {
	current, err := s.serialLease(ctx, l.Queue)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return current.Owner == l.Owner && current.Epoch == l.Epoch && current.ExpiresAt.Equal(l.ExpiresAt), nil
}

// lostLeaseError returns an error that wraps storage.ErrFenced and describes
// the current lease when a serial read returns it.
func (s *Store) lostLeaseError(ctx context.Context, queue string) error {
	current, err := s.serialLease(ctx, queue)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: the queue has no lease", storage.ErrFenced)
	case err != nil:
		return fmt.Errorf("%w (reading the current lease failed: %v)", storage.ErrFenced, err)
	case current.Released():
		return fmt.Errorf("%w: current lease: node %s, epoch %d, released", storage.ErrFenced, current.Owner, current.Epoch)
	default:
		return fmt.Errorf("%w: current lease: node %s, epoch %d, expires %s", storage.ErrFenced,
			current.Owner, current.Epoch, current.ExpiresAt.Format(time.RFC3339Nano))
	}
}

// checkLeaseRequest rejects the arguments of an acquisition or renewal that
// no lease can have.
func checkLeaseRequest(queue, owner string, ttl time.Duration) error {
	if queue == "" {
		return errors.New("empty queue name")
	}
	if owner == "" {
		return errors.New("empty owner")
	}
	if ttl <= 0 {
		return fmt.Errorf("lease duration %v is not positive", ttl)
	}
	return nil
}

// leaseExpiry returns now+ttl in milliseconds since the Unix epoch. It
// rejects an expiry that is not after the epoch, because expires_at 0 marks
// a released lease.
func leaseExpiry(now time.Time, ttl time.Duration) (int64, error) {
	expires := now.Add(ttl)
	ms := expires.UnixMilli()
	if ms <= 0 {
		return 0, fmt.Errorf("lease expiry %v is not after the Unix epoch", expires)
	}
	return ms, nil
}

// leaseNow returns now in milliseconds for the conditions expires_at > ?. It
// is at least 0, so that a released lease never passes.
func leaseNow(now time.Time) int64 {
	return max(now.UnixMilli(), 0)
}

// encodeLeaseTime returns t in milliseconds since the Unix epoch, or 0 for
// the zero time of a released lease.
func encodeLeaseTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func decodeLeaseTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
