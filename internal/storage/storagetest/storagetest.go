// Package storagetest is the conformance suite for storage.Store. Every
// backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { ... })
//	}
//
// Every backend must also implement storage.LeaseStore: the lease subtests
// fail on a store that does not.
//
// The suite is backend neutral. It never assumes an empty store: every subtest
// works on queues and message ids of its own, named with a random suffix, so it
// can run against a shared database node that keeps data between runs. Times
// in the fixtures are whole milliseconds in UTC and durations are whole
// milliseconds, so a backend may store them at millisecond precision. Nil and
// empty slices and maps compare equal.
package storagetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// Run runs every conformance subtest. It calls open once per subtest. open
// returns a ready store and registers its Close with t.Cleanup; the suite may
// call Close itself as well, because Close must be safe to call twice.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	t.Helper()

	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"CreateQueue", testCreateQueue},
		{"CreateQueueExisting", testCreateQueueExisting},
		{"QueueMissing", testQueueMissing},
		{"UpdateQueue", testUpdateQueue},
		{"UpdateQueueMissing", testUpdateQueueMissing},
		{"QueuesOrderedByName", testQueuesOrderedByName},
		{"DeleteQueue", testDeleteQueue},
		{"DeleteQueueKeepsOtherQueues", testDeleteQueueKeepsOtherQueues},
		{"DeleteQueueMissing", testDeleteQueueMissing},
		{"DeleteQueueKeepsAudit", testDeleteQueueKeepsAudit},
		{"CommitEmpty", testCommitEmpty},
		{"CommitVisible", testCommitVisible},
		{"CommitDeletes", testCommitDeletes},
		{"CommitOverwrites", testCommitOverwrites},
		{"CommitRetireAndPut", testCommitRetireAndPut},
		{"ScanShardOrder", testScanShardOrder},
		{"ScanShardFrom", testScanShardFrom},
		{"ScanShardLimit", testScanShardLimit},
		{"ScanShardIsolation", testScanShardIsolation},
		{"RetireShards", testRetireShards},
		{"PayloadRoundTrip", testPayloadRoundTrip},
		{"PayloadMissing", testPayloadMissing},
		{"MetaRoundTrip", testMetaRoundTrip},
		{"MetaMissing", testMetaMissing},
		{"AuditOrder", testAuditOrder},
		{"AuditMissing", testAuditMissing},
		{"ExpireAudit", testExpireAudit},
		{"ConcurrentCommits", testConcurrentCommits},
		{"IncomingEntries", testIncomingEntries},
		{"ShardsPerState", testShardsPerState},
		{"ShardsAfterRetire", testShardsAfterRetire},
		{"MetaInbox", testMetaInbox},
		{"LeaseFirstAcquire", testLeaseFirstAcquire},
		{"LeaseMissing", testLeaseMissing},
		{"LeaseHeldByOther", testLeaseHeldByOther},
		{"LeaseHeldByOwner", testLeaseHeldByOwner},
		{"LeaseReleased", testLeaseReleased},
		{"LeaseExpired", testLeaseExpired},
		{"LeaseRenew", testLeaseRenew},
		{"LeaseRenewAfterTakeover", testLeaseRenewAfterTakeover},
		{"LeaseRenewAfterExpiry", testLeaseRenewAfterExpiry},
		{"LeaseRenewAfterRelease", testLeaseRenewAfterRelease},
		{"LeaseReleaseStale", testLeaseReleaseStale},
		{"LeaseConcurrentAcquire", testLeaseConcurrentAcquire},
		{"LeaseKeptByDeleteQueue", testLeaseKeptByDeleteQueue},
		{"FencedCommit", testFencedCommit},
		{"FencedCommitAfterTakeover", testFencedCommitAfterTakeover},
		{"FencedCommitExpired", testFencedCommitExpired},
		{"FencedCommitReleased", testFencedCommitReleased},
		{"FencedCommitWithoutLease", testFencedCommitWithoutLease},
		{"CloseTwice", testCloseTwice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

// uniqueName returns a queue name that starts with prefix and ends with a
// random suffix, so reruns against a shared node never collide.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("read random bytes: %v", err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// baseTime is a fixed instant, in whole milliseconds, for fixtures whose time
// does not matter.
var baseTime = time.Date(2030, 5, 17, 10, 11, 12, 345_000_000, time.UTC)

// newConfig returns a configuration with every field set.
func newConfig(name string) storage.QueueConfig {
	return storage.QueueConfig{
		Name:                name,
		VisibilityTimeout:   30 * time.Second,
		DefaultDelay:        1500 * time.Millisecond,
		RetryCount:          5,
		DeadLetterQueue:     name + "-dlq",
		MaxMessageSize:      256 << 10,
		Retention:           96 * time.Hour,
		ReceiveWait:         20 * time.Second,
		Regions:             "us-east,eu-west",
		DefaultDestinations: "LOCAL",
		Tags:                map[string]string{"team": "payments", "env": "test"},
		CreatedAt:           baseTime,
		UpdatedAt:           baseTime.Add(time.Minute),
	}
}

// createQueue stores a new configuration named after prefix and returns the
// name.
func createQueue(t *testing.T, s storage.Store, prefix string) string {
	t.Helper()
	name := uniqueName(t, prefix)
	createNamed(t, s, name)
	return name
}

func createNamed(t *testing.T, s storage.Store, name string) {
	t.Helper()
	if _, created, err := s.CreateQueue(t.Context(), newConfig(name)); err != nil {
		t.Fatalf("CreateQueue(%q): %v", name, err)
	} else if !created {
		t.Fatalf("CreateQueue(%q) created=false for a new name", name)
	}
}

// newEntry returns an entry with every field set, derived from its key.
func newEntry(queue string, state storage.State, shard, seq uint64) storage.Entry {
	e := storage.Entry{
		Queue:        queue,
		State:        state,
		Shard:        shard,
		Seq:          seq,
		ID:           uuid.New(),
		MessageID:    uuid.New(),
		CreatedAt:    baseTime.Add(time.Duration(seq) * time.Millisecond),
		SentAt:       baseTime,
		ExpiresAt:    baseTime.Add(96 * time.Hour),
		ReceiveCount: int32(seq % 7),
		ContentType:  "application/json",
		Size:         int64(100 + seq%1000),
		SourceQueue:  queue + "-source",
	}
	switch state {
	case storage.Inflight, storage.Delayed:
		e.DueAt = baseTime.Add(30 * time.Second)
	case storage.Moving:
		e.TargetQueue = queue + "-target"
	}
	return e
}

// newPayload returns a payload of n bytes with attributes.
func newPayload(queue string, id uuid.UUID, n int) storage.Payload {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + 3)
	}
	return storage.Payload{
		Queue:       queue,
		MessageID:   id,
		ContentType: "text/plain",
		Data:        data,
		Attributes:  []byte(`{"trace":"abc"}`),
		ExpiresAt:   baseTime.Add(96 * time.Hour),
	}
}

// newMeta returns metadata with every field set.
func newMeta() storage.Meta {
	return storage.Meta{
		ShardSize: 1000,
		NextSeq:   4321,
		Head:      1234,
		Available: 17,
		Shards: []storage.ShardRef{
			{State: storage.Inflight, Shard: 1},
			{State: storage.Inflight, Shard: 4},
			{State: storage.Delayed, Shard: 2},
			{State: storage.Moving, Shard: 3},
		},
		Totals: storage.Totals{
			Sent: 1, Received: 2, Acked: 3, Nacked: 4, TimedOut: 5,
			Expired: 6, DeadLettered: 7, Redriven: 8, Purged: 9,
		},
		Inbox: map[uint64]uint64{1: 17, 2: 0, 1 << 40: 1 << 50},
	}
}

// commit commits b and fails the test on error.
func commit(t *testing.T, s storage.Store, b *storage.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// scan returns every entry of one shard.
func scan(t *testing.T, s storage.Store, queue string, ref storage.ShardRef) []storage.Entry {
	t.Helper()
	got, err := s.ScanShard(t.Context(), queue, ref, 0, 1_000_000)
	if err != nil {
		t.Fatalf("ScanShard(%q, %v/%d): %v", queue, ref.State, ref.Shard, err)
	}
	return got
}

// normTime drops the location and monotonic reading so equal instants
// compare equal with reflect.DeepEqual.
func normTime(tm time.Time) time.Time {
	if tm.IsZero() {
		return time.Time{}
	}
	return tm.UTC()
}

func normConfig(c storage.QueueConfig) storage.QueueConfig {
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	c.CreatedAt = normTime(c.CreatedAt)
	c.UpdatedAt = normTime(c.UpdatedAt)
	return c
}

func normEntry(e storage.Entry) storage.Entry {
	e.CreatedAt = normTime(e.CreatedAt)
	e.SentAt = normTime(e.SentAt)
	e.DueAt = normTime(e.DueAt)
	e.ExpiresAt = normTime(e.ExpiresAt)
	return e
}

func normPayload(p storage.Payload) storage.Payload {
	if len(p.Data) == 0 {
		p.Data = nil
	}
	if len(p.Attributes) == 0 {
		p.Attributes = nil
	}
	p.ExpiresAt = normTime(p.ExpiresAt)
	return p
}

func normMeta(m storage.Meta) storage.Meta {
	if len(m.Shards) == 0 {
		m.Shards = nil
	}
	if len(m.Inbox) == 0 {
		m.Inbox = nil
	}
	return m
}

func normAudit(ev storage.AuditEvent) storage.AuditEvent {
	ev.Time = normTime(ev.Time)
	ev.ExpiresAt = normTime(ev.ExpiresAt)
	return ev
}

func checkConfig(t *testing.T, label string, got, want storage.QueueConfig) {
	t.Helper()
	if g, w := normConfig(got), normConfig(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", label, g, w)
	}
}

func checkMeta(t *testing.T, label string, got, want storage.Meta) {
	t.Helper()
	if g, w := normMeta(got), normMeta(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", label, g, w)
	}
}

func checkPayload(t *testing.T, label string, got, want storage.Payload) {
	t.Helper()
	g, w := normPayload(got), normPayload(want)
	if !reflect.DeepEqual(g, w) {
		// Print sizes, not the bytes, because payloads may be large.
		g.Data, w.Data = nil, nil
		t.Errorf("%s:\n got %+v (%d data bytes)\nwant %+v (%d data bytes)",
			label, g, len(got.Data), w, len(want.Data))
	}
}

// checkEntries compares entry lists element by element, in order.
func checkEntries(t *testing.T, label string, got, want []storage.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d entries %v, want %d %v", label, len(got), seqs(got), len(want), seqs(want))
		return
	}
	for i := range got {
		if g, w := normEntry(got[i]), normEntry(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: entry %d:\n got %+v\nwant %+v", label, i, g, w)
		}
	}
}

func checkAudit(t *testing.T, label string, got, want []storage.AuditEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d events %v, want %d %v", label, len(got), actions(got), len(want), actions(want))
		return
	}
	for i := range got {
		if g, w := normAudit(got[i]), normAudit(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: event %d:\n got %+v\nwant %+v", label, i, g, w)
		}
	}
}

func seqs(es []storage.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i := range es {
		out[i] = es[i].Seq
	}
	return out
}

func actions(evs []storage.AuditEvent) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = fmt.Sprintf("%s@%s#%d", evs[i].Action, evs[i].Time.UTC().Format(time.RFC3339Nano), evs[i].Seq)
	}
	return out
}
