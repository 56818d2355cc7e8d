package storagetest

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// auditExpiry returns an expiry a day from the real clock, because a backend
// may turn ExpiresAt into a native time to live.
func auditExpiry() time.Time {
	return time.Now().Add(24 * time.Hour).Truncate(time.Millisecond).UTC()
}

func newEvent(msg uuid.UUID, at time.Time, seq uint32, action string) storage.AuditEvent {
	return storage.AuditEvent{
		MessageID:      msg,
		Time:           at,
		Seq:            seq,
		Action:         action,
		Queue:          "audit-queue",
		QueueMessageID: uuid.New(),
		ReceiveCount:   int32(seq % 3),
		Detail:         "detail of " + action,
		ExpiresAt:      auditExpiry(),
	}
}

func testAuditOrder(t *testing.T, s storage.Store) {
	msg, other := uuid.New(), uuid.New()
	ms := time.Millisecond
	want := []storage.AuditEvent{
		newEvent(msg, baseTime, 0, "sent"),
		newEvent(msg, baseTime.Add(ms), 1, "received"),
		newEvent(msg, baseTime.Add(ms), 2, "nacked"),
		newEvent(msg, baseTime.Add(ms), 256, "received-again"),
		newEvent(msg, baseTime.Add(2*ms), 0, "timed-out"),
		newEvent(msg, baseTime.Add(time.Second), 3, "received-third"),
		newEvent(msg, baseTime.Add(time.Hour), 1, "acked"),
	}

	// Events of another message share the timestamps and must not mix in.
	all := append([]storage.AuditEvent(nil), want...)
	for _, ev := range want {
		all = append(all, newEvent(other, ev.Time, ev.Seq, "other-"+ev.Action))
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for len(all) > 0 {
		n := min(len(all), 3)
		commit(t, s, &storage.Batch{Audit: all[:n]})
		all = all[n:]
	}

	got, err := s.Audit(t.Context(), msg)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	checkAudit(t, "audit order", got, want)
}

func testAuditMissing(t *testing.T, s storage.Store) {
	got, err := s.Audit(t.Context(), uuid.New())
	if err != nil {
		t.Fatalf("Audit of an unknown message: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Audit of an unknown message returned %d events, want none", len(got))
	}
}

func testExpireAudit(t *testing.T, s storage.Store) {
	now := time.Now()
	past := now.Add(-time.Hour).Truncate(time.Millisecond).UTC()
	future := now.Add(time.Hour).Truncate(time.Millisecond).UTC()
	at := func(ev storage.AuditEvent, expires time.Time) storage.AuditEvent {
		ev.ExpiresAt = expires
		return ev
	}

	keptID, expiredID := uuid.New(), uuid.New()
	keptEvents := []storage.AuditEvent{
		at(newEvent(keptID, baseTime, 1, "sent"), future),
		at(newEvent(keptID, baseTime.Add(time.Millisecond), 0, "received"), future),
	}
	expiredCount := 4
	commit(t, s, &storage.Batch{Audit: []storage.AuditEvent{
		keptEvents[0],
		at(newEvent(keptID, baseTime, 2, "old-a"), past),
		keptEvents[1],
		at(newEvent(keptID, baseTime.Add(time.Millisecond), 1, "old-b"), past),
		at(newEvent(expiredID, baseTime, 0, "sent"), past),
		at(newEvent(expiredID, baseTime.Add(time.Second), 0, "acked"), past),
	}})

	// A backend with native TTLs may remove expired events a little later
	// than ExpireAudit returns, so poll with a deadline.
	removed := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := s.ExpireAudit(t.Context(), time.Now())
		if err != nil {
			t.Fatalf("ExpireAudit: %v", err)
		}
		removed += n

		gotKept, err := s.Audit(t.Context(), keptID)
		if err != nil {
			t.Fatalf("Audit of the kept message: %v", err)
		}
		gotExpired, err := s.Audit(t.Context(), expiredID)
		if err != nil {
			t.Fatalf("Audit of the expired message: %v", err)
		}
		if len(gotKept) == len(keptEvents) && len(gotExpired) == 0 {
			checkAudit(t, "events that have not expired", gotKept, keptEvents)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired events still readable after 30s: kept message has %v, want %v; expired message has %v",
				actions(gotKept), actions(keptEvents), actions(gotExpired))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Other subtests may have left expired events, so the count is a lower
	// bound, unless the backend relies on native TTLs and reports zero.
	if removed != 0 && removed < expiredCount {
		t.Errorf("ExpireAudit removed %d events in total, want 0 or at least %d", removed, expiredCount)
	}
}
