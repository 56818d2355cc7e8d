package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qakka/qakka/internal/storage"
)

// Lease durations of the lease subtests. Every call passes an explicit now,
// derived from baseTime, so no subtest waits for a lease to expire.
const (
	leaseTTL    = 10 * time.Second
	leaseSettle = 5 * time.Second
)

// leaseStore returns s as a storage.LeaseStore, and fails the test when the
// backend does not implement it.
func leaseStore(t *testing.T, s storage.Store) storage.LeaseStore {
	t.Helper()
	ls, ok := s.(storage.LeaseStore)
	if !ok {
		t.Fatalf("%T does not implement storage.LeaseStore", s)
	}
	return ls
}

// acquireLease takes the lease of queue for owner at now and fails the test
// on error.
func acquireLease(t *testing.T, ls storage.LeaseStore, queue, owner string, now time.Time) storage.Lease {
	t.Helper()
	l, err := ls.AcquireLease(t.Context(), queue, owner, now, leaseTTL, leaseSettle)
	if err != nil {
		t.Fatalf("AcquireLease(%q, %q, %s): %v", queue, owner, now.Format(time.RFC3339Nano), err)
	}
	return l
}

// currentLease returns the stored lease of queue.
func currentLease(t *testing.T, ls storage.LeaseStore, queue string) storage.Lease {
	t.Helper()
	l, err := ls.Lease(t.Context(), queue)
	if err != nil {
		t.Fatalf("Lease(%q): %v", queue, err)
	}
	return l
}

func checkLease(t *testing.T, label string, got, want storage.Lease) {
	t.Helper()
	got.ExpiresAt, want.ExpiresAt = normTime(got.ExpiresAt), normTime(want.ExpiresAt)
	if got != want {
		t.Errorf("%s:\n got %+v\nwant %+v", label, got, want)
	}
}

// checkHeld fails unless err is a *storage.LeaseHeldError that carries want.
func checkHeld(t *testing.T, label string, err error, want storage.Lease) {
	t.Helper()
	var held *storage.LeaseHeldError
	if !errors.As(err, &held) {
		t.Errorf("%s: error = %v, want a *storage.LeaseHeldError", label, err)
		return
	}
	checkLease(t, label+": lease in the error", held.Lease, want)
}

func checkFenced(t *testing.T, label string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrFenced) {
		t.Errorf("%s: error = %v, want ErrFenced", label, err)
	}
}

// fenceAt returns the fence of l's holder at now.
func fenceAt(l storage.Lease, now time.Time) *storage.Fence {
	return &storage.Fence{Queue: l.Queue, Owner: l.Owner, Epoch: l.Epoch, Now: now}
}

// afterSettle returns the first time at which l can be taken over: one
// millisecond past its expiry plus the settle time.
func afterSettle(l storage.Lease) time.Time {
	return l.ExpiresAt.Add(leaseSettle + time.Millisecond)
}

func testLeaseFirstAcquire(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-first")

	got := acquireLease(t, ls, q, "node-a", baseTime)
	want := storage.Lease{Queue: q, Owner: "node-a", Epoch: 1, ExpiresAt: baseTime.Add(leaseTTL)}
	checkLease(t, "acquired lease", got, want)
	checkLease(t, "stored lease", currentLease(t, ls, q), want)
}

func testLeaseMissing(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-missing")
	if _, err := ls.Lease(t.Context(), q); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Lease of a queue never leased: error = %v, want ErrNotFound", err)
	}
}

func testLeaseHeldByOther(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-held")
	a := acquireLease(t, ls, q, "node-a", baseTime)

	for _, now := range []time.Time{
		baseTime,
		baseTime.Add(time.Second),
		// Expired, but within the settle time.
		a.ExpiresAt.Add(time.Millisecond),
		// Expired exactly settle ago, which is not before now-settle.
		a.ExpiresAt.Add(leaseSettle),
	} {
		_, err := ls.AcquireLease(t.Context(), q, "node-b", now, leaseTTL, leaseSettle)
		checkHeld(t, "acquire at "+now.Format(time.RFC3339Nano), err, a)
	}
	checkLease(t, "stored lease", currentLease(t, ls, q), a)
}

func testLeaseHeldByOwner(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-own")
	a := acquireLease(t, ls, q, "node-a", baseTime)

	_, err := ls.AcquireLease(t.Context(), q, "node-a", baseTime.Add(time.Second), leaseTTL, leaseSettle)
	checkHeld(t, "second acquire by the holder", err, a)
	checkLease(t, "stored lease", currentLease(t, ls, q), a)
}

func testLeaseReleased(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-released")
	a := acquireLease(t, ls, q, "node-a", baseTime)

	if err := ls.ReleaseLease(t.Context(), a); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	released := currentLease(t, ls, q)
	if !released.Released() {
		t.Errorf("lease after release = %+v, want a zero ExpiresAt", released)
	}
	checkLease(t, "released lease", released, storage.Lease{Queue: q, Owner: "node-a", Epoch: 1})

	// The next holder need not wait for the released lease to expire.
	now := baseTime.Add(time.Second)
	b := acquireLease(t, ls, q, "node-b", now)
	checkLease(t, "lease after release", b, storage.Lease{Queue: q, Owner: "node-b", Epoch: 2, ExpiresAt: now.Add(leaseTTL)})

	// The first holder takes it back once released again.
	if err := ls.ReleaseLease(t.Context(), b); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	again := acquireLease(t, ls, q, "node-a", now)
	checkLease(t, "lease taken back", again, storage.Lease{Queue: q, Owner: "node-a", Epoch: 3, ExpiresAt: now.Add(leaseTTL)})
}

func testLeaseExpired(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-expired")
	a := acquireLease(t, ls, q, "node-a", baseTime)

	now := afterSettle(a)
	b := acquireLease(t, ls, q, "node-b", now)
	want := storage.Lease{Queue: q, Owner: "node-b", Epoch: 2, ExpiresAt: now.Add(leaseTTL)}
	checkLease(t, "taken lease", b, want)
	checkLease(t, "stored lease", currentLease(t, ls, q), want)

	// The old holder takes it back the same way, at the next epoch.
	now = afterSettle(b)
	again := acquireLease(t, ls, q, "node-a", now)
	checkLease(t, "lease taken back", again, storage.Lease{Queue: q, Owner: "node-a", Epoch: 3, ExpiresAt: now.Add(leaseTTL)})
}

func testLeaseRenew(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-renew")
	a := acquireLease(t, ls, q, "node-a", baseTime)

	now := baseTime.Add(4 * time.Second)
	renewed, err := ls.RenewLease(t.Context(), a, now, leaseTTL)
	if err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	want := storage.Lease{Queue: q, Owner: "node-a", Epoch: 1, ExpiresAt: now.Add(leaseTTL)}
	checkLease(t, "renewed lease", renewed, want)
	checkLease(t, "stored lease", currentLease(t, ls, q), want)

	// The renewed lease holds past the first expiry, and renews again.
	now = a.ExpiresAt.Add(time.Second)
	_, err = ls.AcquireLease(t.Context(), q, "node-b", a.ExpiresAt.Add(leaseSettle+time.Millisecond), leaseTTL, leaseSettle)
	checkHeld(t, "acquire after the first expiry", err, want)
	renewed, err = ls.RenewLease(t.Context(), renewed, now, leaseTTL)
	if err != nil {
		t.Fatalf("second RenewLease: %v", err)
	}
	checkLease(t, "lease renewed twice", renewed, storage.Lease{Queue: q, Owner: "node-a", Epoch: 1, ExpiresAt: now.Add(leaseTTL)})
}

func testLeaseRenewAfterTakeover(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-renew-taken")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	b := acquireLease(t, ls, q, "node-b", afterSettle(a))

	// The old holder's clock may be behind: its lease is lost whatever now
	// it gives.
	for _, now := range []time.Time{baseTime.Add(time.Second), afterSettle(a)} {
		_, err := ls.RenewLease(t.Context(), a, now, leaseTTL)
		checkFenced(t, "renew of the old lease at "+now.Format(time.RFC3339Nano), err)
	}
	checkLease(t, "stored lease", currentLease(t, ls, q), b)
}

func testLeaseRenewAfterExpiry(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-renew-expired")
	a := acquireLease(t, ls, q, "node-a", baseTime)

	// A lease has expired at its ExpiresAt.
	for _, now := range []time.Time{a.ExpiresAt, a.ExpiresAt.Add(time.Millisecond), afterSettle(a)} {
		_, err := ls.RenewLease(t.Context(), a, now, leaseTTL)
		checkFenced(t, "renew at "+now.Format(time.RFC3339Nano), err)
	}
	checkLease(t, "stored lease", currentLease(t, ls, q), a)

	// One millisecond before expiry it still renews.
	now := a.ExpiresAt.Add(-time.Millisecond)
	if _, err := ls.RenewLease(t.Context(), a, now, leaseTTL); err != nil {
		t.Errorf("renew just before expiry: %v", err)
	}
}

func testLeaseRenewAfterRelease(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-renew-released")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	if err := ls.ReleaseLease(t.Context(), a); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}

	_, err := ls.RenewLease(t.Context(), a, baseTime.Add(time.Second), leaseTTL)
	checkFenced(t, "renew of a released lease", err)
	if got := currentLease(t, ls, q); !got.Released() {
		t.Errorf("lease after a failed renewal = %+v, want it still released", got)
	}
}

func testLeaseReleaseStale(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-release-stale")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	b := acquireLease(t, ls, q, "node-b", afterSettle(a))

	stale := []storage.Lease{
		a,
		// Another owner at the current epoch.
		{Queue: q, Owner: "node-a", Epoch: b.Epoch, ExpiresAt: b.ExpiresAt},
		// The current owner at another epoch.
		{Queue: q, Owner: "node-b", Epoch: b.Epoch + 1, ExpiresAt: b.ExpiresAt},
	}
	for _, l := range stale {
		if err := ls.ReleaseLease(t.Context(), l); err != nil {
			t.Errorf("ReleaseLease(%+v) of a stale lease: %v", l, err)
		}
	}
	checkLease(t, "stored lease", currentLease(t, ls, q), b)

	// Releasing a lease of a queue that never had one is a no-op too.
	none := storage.Lease{Queue: uniqueName(t, "lease-none"), Owner: "node-a", Epoch: 1, ExpiresAt: baseTime}
	if err := ls.ReleaseLease(t.Context(), none); err != nil {
		t.Errorf("ReleaseLease of a queue without a lease: %v", err)
	}
	if _, err := ls.Lease(t.Context(), none.Queue); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Lease after releasing a missing lease: error = %v, want ErrNotFound", err)
	}
}

func testLeaseConcurrentAcquire(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-race")
	const nodes = 8

	leases := make([]storage.Lease, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			leases[i], errs[i] = ls.AcquireLease(t.Context(), q, fmt.Sprintf("node-%d", i), baseTime, leaseTTL, leaseSettle)
		})
	}
	wg.Wait()

	winners := 0
	var winner storage.Lease
	for i, err := range errs {
		if err == nil {
			winners++
			winner = leases[i]
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d concurrent acquisitions succeeded, want 1; errors: %v", winners, nodes, errs)
	}
	if winner.Epoch != 1 {
		t.Errorf("winning lease has epoch %d, want 1", winner.Epoch)
	}
	for i, err := range errs {
		if err != nil {
			checkHeld(t, fmt.Sprintf("node-%d", i), err, winner)
		}
	}
	checkLease(t, "stored lease", currentLease(t, ls, q), winner)
}

func testLeaseKeptByDeleteQueue(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "lease-delete")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	if err := ls.ReleaseLease(t.Context(), a); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if err := s.DeleteQueue(t.Context(), q); err != nil {
		t.Fatalf("DeleteQueue: %v", err)
	}

	// The epoch keeps growing across a deletion, so a holder of the old
	// queue can never pass the fence of the new one.
	checkLease(t, "lease after DeleteQueue", currentLease(t, ls, q), storage.Lease{Queue: q, Owner: "node-a", Epoch: 1})
	createNamed(t, s, q)
	now := baseTime.Add(time.Second)
	b := acquireLease(t, ls, q, "node-a", now)
	checkLease(t, "lease of the recreated queue", b, storage.Lease{Queue: q, Owner: "node-a", Epoch: 2, ExpiresAt: now.Add(leaseTTL)})
}

// fencedState is the data that a fenced subtest stores before the commit
// under test: an available entry with its payload, an inflight entry in a
// shard that the commit under test retires, and metadata.
type fencedState struct {
	available storage.Entry
	payload   storage.Payload
	inflight  storage.Entry
	meta      storage.Meta
}

func storeFencedState(t *testing.T, s storage.Store, q string) fencedState {
	t.Helper()
	st := fencedState{
		available: newEntry(q, storage.Available, 0, 1),
		inflight:  newEntry(q, storage.Inflight, 3, 2),
		meta: storage.Meta{ShardSize: 1000, NextSeq: 3, Head: 1, Available: 1,
			Shards: []storage.ShardRef{{State: storage.Inflight, Shard: 3}}},
	}
	st.payload = newPayload(q, st.available.MessageID, 16)
	commit(t, s, &storage.Batch{
		PutEntries:  []storage.Entry{st.available, st.inflight},
		PutPayloads: []storage.Payload{st.payload},
		Metas:       map[string]storage.Meta{q: st.meta},
	})
	return st
}

// roundBatch returns a batch that changes every part of st: it puts a new
// entry with its payload and audit event, deletes the available entry and
// its payload, retires the inflight shard and writes new metadata.
func roundBatch(q string, st fencedState) (*storage.Batch, storage.Entry) {
	fresh := newEntry(q, storage.Available, 0, 3)
	return &storage.Batch{
		PutEntries:     []storage.Entry{fresh},
		PutPayloads:    []storage.Payload{newPayload(q, fresh.MessageID, 16)},
		DeleteEntries:  []storage.EntryKey{st.available.Key()},
		DeletePayloads: []storage.PayloadKey{{Queue: q, MessageID: st.available.MessageID}},
		RetireShards:   []storage.RetiredShard{{Queue: q, ShardRef: storage.ShardRef{State: storage.Inflight, Shard: 3}}},
		Metas:          map[string]storage.Meta{q: {ShardSize: 1000, NextSeq: 4, Head: 3, Available: 1}},
		Audit: []storage.AuditEvent{{MessageID: fresh.MessageID, Time: baseTime, Action: "sent", Queue: q,
			QueueMessageID: fresh.ID, ExpiresAt: auditExpiry()}},
	}, fresh
}

// checkUnchanged fails unless q still holds exactly st, and nothing of the
// rejected entry fresh.
func checkUnchanged(t *testing.T, s storage.Store, q string, st fencedState, fresh storage.Entry) {
	t.Helper()
	checkEntries(t, "available entries", scan(t, s, q, storage.ShardRef{State: storage.Available, Shard: 0}),
		[]storage.Entry{st.available})
	checkEntries(t, "inflight entries", scan(t, s, q, storage.ShardRef{State: storage.Inflight, Shard: 3}),
		[]storage.Entry{st.inflight})

	meta, err := s.Meta(t.Context(), q)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	checkMeta(t, "meta", meta, st.meta)

	got, err := s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: st.available.MessageID})
	if err != nil {
		t.Errorf("payload of the kept entry: %v", err)
	} else {
		checkPayload(t, "payload of the kept entry", got, st.payload)
	}
	_, err = s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: fresh.MessageID})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("payload of the rejected entry: error = %v, want ErrNotFound", err)
	}
	events, err := s.Audit(t.Context(), fresh.MessageID)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	checkAudit(t, "audit of the rejected entry", events, nil)
}

// checkApplied fails unless the batch of roundBatch is applied to q.
func checkApplied(t *testing.T, s storage.Store, q string, b *storage.Batch, fresh storage.Entry) {
	t.Helper()
	checkEntries(t, "available entries", scan(t, s, q, storage.ShardRef{State: storage.Available, Shard: 0}),
		[]storage.Entry{fresh})
	checkEntries(t, "retired inflight shard", scan(t, s, q, storage.ShardRef{State: storage.Inflight, Shard: 3}), nil)
	meta, err := s.Meta(t.Context(), q)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	checkMeta(t, "meta", meta, b.Metas[q])
	if _, err := s.Payload(t.Context(), storage.PayloadKey{Queue: q, MessageID: fresh.MessageID}); err != nil {
		t.Errorf("payload of the new entry: %v", err)
	}
	events, err := s.Audit(t.Context(), fresh.MessageID)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	checkAudit(t, "audit of the new entry", events, b.Audit)
}

func testFencedCommit(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "fence")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	st := storeFencedState(t, s, q)

	// An empty batch checks the fence and writes nothing.
	if err := s.Commit(t.Context(), &storage.Batch{Fence: fenceAt(a, baseTime)}); err != nil {
		t.Errorf("empty fenced commit: %v", err)
	}

	b, fresh := roundBatch(q, st)
	b.Fence = fenceAt(a, baseTime.Add(time.Second))
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("fenced commit of the holder: %v", err)
	}
	checkApplied(t, s, q, b, fresh)

	// After a renewal the fence holds past the first expiry.
	now := a.ExpiresAt.Add(-time.Second)
	renewed, err := ls.RenewLease(t.Context(), a, now, leaseTTL)
	if err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	e := newEntry(q, storage.Delayed, 0, 4)
	err = s.Commit(t.Context(), &storage.Batch{PutEntries: []storage.Entry{e}, Fence: fenceAt(renewed, a.ExpiresAt.Add(time.Second))})
	if err != nil {
		t.Fatalf("fenced commit after renewal: %v", err)
	}
	checkEntries(t, "delayed entries", scan(t, s, q, storage.ShardRef{State: storage.Delayed, Shard: 0}), []storage.Entry{e})
}

func testFencedCommitAfterTakeover(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "fence-taken")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	st := storeFencedState(t, s, q)
	now := afterSettle(a)
	b := acquireLease(t, ls, q, "node-b", now)

	// By the old holder's clock its lease is still valid, but the epoch
	// fences it.
	batch, fresh := roundBatch(q, st)
	batch.Fence = fenceAt(a, baseTime.Add(time.Second))
	checkFenced(t, "commit of the old holder", s.Commit(t.Context(), batch))
	checkUnchanged(t, s, q, st, fresh)

	// The old holder's owner name at the new epoch is no holder either.
	batch.Fence = &storage.Fence{Queue: q, Owner: a.Owner, Epoch: b.Epoch, Now: now}
	checkFenced(t, "commit of the old owner at the new epoch", s.Commit(t.Context(), batch))
	checkUnchanged(t, s, q, st, fresh)

	// The same batch under the new holder's fence applies.
	batch.Fence = fenceAt(b, now)
	if err := s.Commit(t.Context(), batch); err != nil {
		t.Fatalf("commit of the new holder: %v", err)
	}
	checkApplied(t, s, q, batch, fresh)
}

func testFencedCommitExpired(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "fence-expired")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	st := storeFencedState(t, s, q)

	batch, fresh := roundBatch(q, st)
	// A lease has expired at its ExpiresAt.
	for _, now := range []time.Time{a.ExpiresAt, a.ExpiresAt.Add(time.Millisecond)} {
		batch.Fence = fenceAt(a, now)
		checkFenced(t, "commit at "+now.Format(time.RFC3339Nano), s.Commit(t.Context(), batch))
		checkUnchanged(t, s, q, st, fresh)
	}

	batch.Fence = fenceAt(a, a.ExpiresAt.Add(-time.Millisecond))
	if err := s.Commit(t.Context(), batch); err != nil {
		t.Fatalf("commit just before expiry: %v", err)
	}
	checkApplied(t, s, q, batch, fresh)
}

func testFencedCommitReleased(t *testing.T, s storage.Store) {
	ls := leaseStore(t, s)
	q := createQueue(t, s, "fence-released")
	a := acquireLease(t, ls, q, "node-a", baseTime)
	st := storeFencedState(t, s, q)
	if err := ls.ReleaseLease(t.Context(), a); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}

	batch, fresh := roundBatch(q, st)
	batch.Fence = fenceAt(a, baseTime.Add(time.Second))
	checkFenced(t, "commit after release", s.Commit(t.Context(), batch))
	checkUnchanged(t, s, q, st, fresh)
}

func testFencedCommitWithoutLease(t *testing.T, s storage.Store) {
	leaseStore(t, s)
	q := createQueue(t, s, "fence-none")
	st := storeFencedState(t, s, q)

	batch, fresh := roundBatch(q, st)
	batch.Fence = &storage.Fence{Queue: q, Owner: "node-a", Epoch: 1, Now: baseTime}
	checkFenced(t, "commit without a lease", s.Commit(t.Context(), batch))
	checkUnchanged(t, s, q, st, fresh)

	empty := &storage.Batch{Fence: batch.Fence}
	checkFenced(t, "empty commit without a lease", s.Commit(t.Context(), empty))
}
