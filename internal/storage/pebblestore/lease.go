package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/qakka/qakka/internal/storage"
)

var _ storage.LeaseStore = (*Store)(nil)

// leaseStripes is the number of lease locks. Each queue maps to one of them,
// so fenced commits and lease changes of different queues rarely wait for
// each other.
const leaseStripes = 64

// leaseLocks makes the changes of a lease and the fenced commits of its queue
// atomic within the process. A lease change holds its queue's lock for
// writing, and a fenced commit holds it for reading from the check of the
// lease until its batch is applied.
type leaseLocks struct {
	seed  maphash.Seed
	locks [leaseStripes]sync.RWMutex
}

func (s *Store) leaseLock(queue string) *sync.RWMutex {
	return &s.leases.locks[maphash.String(s.leases.seed, queue)%leaseStripes]
}

// AcquireLease implements storage.LeaseStore. The lease is written with a
// synced batch, so its epoch survives a crash and keeps growing.
func (s *Store) AcquireLease(ctx context.Context, queue, owner string, now time.Time, ttl, settle time.Duration) (storage.Lease, error) {
	op := fmt.Sprintf("acquire lease of queue %q for %q", queue, owner)
	if err := checkLeaseRequest(queue, owner, ttl); err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if settle < 0 {
		return storage.Lease{}, fmt.Errorf("%s: negative settle time %v", op, settle)
	}
	if err := s.acquire(ctx, op); err != nil {
		return storage.Lease{}, err
	}
	defer s.release()
	lock := s.leaseLock(queue)
	lock.Lock()
	defer lock.Unlock()

	next := storage.Lease{Queue: queue, Owner: owner, Epoch: 1, ExpiresAt: now.Add(ttl).UTC()}
	current, err := s.getLease(queue)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	case !current.Free(now, settle):
		return storage.Lease{}, &storage.LeaseHeldError{Lease: current}
	default:
		next.Epoch = current.Epoch + 1
	}

	if err := s.putLease(next); err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	return next, nil
}

// RenewLease implements storage.LeaseStore.
func (s *Store) RenewLease(ctx context.Context, l storage.Lease, now time.Time, ttl time.Duration) (storage.Lease, error) {
	op := fmt.Sprintf("renew lease of queue %q for %q at epoch %d", l.Queue, l.Owner, l.Epoch)
	if err := checkLeaseRequest(l.Queue, l.Owner, ttl); err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return storage.Lease{}, err
	}
	defer s.release()
	lock := s.leaseLock(l.Queue)
	lock.Lock()
	defer lock.Unlock()

	current, err := s.getLease(l.Queue)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if err != nil || !leaseValid(current, l.Owner, l.Epoch, now) {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, lostLeaseError(current, err))
	}

	current.ExpiresAt = now.Add(ttl).UTC()
	if err := s.putLease(current); err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	return current, nil
}

// ReleaseLease implements storage.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, l storage.Lease) error {
	op := fmt.Sprintf("release lease of queue %q for %q at epoch %d", l.Queue, l.Owner, l.Epoch)
	if err := checkQueueName(l.Queue); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return err
	}
	defer s.release()
	lock := s.leaseLock(l.Queue)
	lock.Lock()
	defer lock.Unlock()

	current, err := s.getLease(l.Queue)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if current.Owner != l.Owner || current.Epoch != l.Epoch {
		return nil
	}

	current.ExpiresAt = time.Time{}
	if err := s.putLease(current); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Lease implements storage.LeaseStore.
func (s *Store) Lease(ctx context.Context, queue string) (storage.Lease, error) {
	op := fmt.Sprintf("read lease of queue %q", queue)
	if err := checkQueueName(queue); err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return storage.Lease{}, err
	}
	defer s.release()

	l, err := s.getLease(queue)
	if err != nil {
		return storage.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	return l, nil
}

// checkFence returns an error wrapping storage.ErrFenced unless f.Owner
// holds the lease of f.Queue at f.Epoch and the lease has not expired at
// f.Now. The caller holds the queue's lease lock.
func (s *Store) checkFence(f *storage.Fence) error {
	op := fmt.Sprintf("fence of queue %q for %q at epoch %d", f.Queue, f.Owner, f.Epoch)
	current, err := s.getLease(f.Queue)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err != nil || !leaseValid(current, f.Owner, f.Epoch, f.Now) {
		return fmt.Errorf("%s: %w", op, lostLeaseError(current, err))
	}
	return nil
}

// getLease reads the lease of a queue, or returns storage.ErrNotFound. The
// caller holds s.mu for reading.
func (s *Store) getLease(queue string) (storage.Lease, error) {
	v, closer, err := s.db.Get(leaseKey(queue))
	if errors.Is(err, pebble.ErrNotFound) {
		return storage.Lease{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Lease{}, err
	}
	defer closer.Close()
	return storage.UnmarshalLease(v)
}

// putLease writes l with a synced batch. The caller holds the queue's lease
// lock for writing.
func (s *Store) putLease(l storage.Lease) error {
	return s.db.Set(leaseKey(l.Queue), storage.MarshalLease(&l), pebble.Sync)
}

// checkLeaseRequest rejects the arguments of an acquisition or renewal that
// no lease can have.
func checkLeaseRequest(queue, owner string, ttl time.Duration) error {
	if err := checkQueueName(queue); err != nil {
		return err
	}
	if owner == "" {
		return errors.New("empty owner")
	}
	if ttl <= 0 {
		return fmt.Errorf("lease duration %v is not positive", ttl)
	}
	return nil
}

// leaseValid reports whether l is held by owner at epoch and has not expired
// at now. A released lease is not valid.
func leaseValid(l storage.Lease, owner string, epoch int64, now time.Time) bool {
	return l.Owner == owner && l.Epoch == epoch && !l.Released() && l.ExpiresAt.After(now)
}

// lostLeaseError returns an error that wraps storage.ErrFenced and describes
// the current lease. readErr is the error of reading it, if any.
func lostLeaseError(current storage.Lease, readErr error) error {
	if readErr != nil {
		return fmt.Errorf("%w: the queue has no lease", storage.ErrFenced)
	}
	if current.Released() {
		return fmt.Errorf("%w: current lease: node %q, epoch %d, released", storage.ErrFenced, current.Owner, current.Epoch)
	}
	return fmt.Errorf("%w: current lease: node %q, epoch %d, expires %s", storage.ErrFenced,
		current.Owner, current.Epoch, current.ExpiresAt.UTC().Format(time.RFC3339Nano))
}
