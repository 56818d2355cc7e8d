package pebblestore

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

func TestEntryKeysSortLikeTheirFields(t *testing.T) {
	// Listed in the order their keys must sort.
	keys := []storage.EntryKey{
		{Queue: "a", State: storage.Available, Shard: 0, Seq: 0},
		{Queue: "a", State: storage.Available, Shard: 0, Seq: 255},
		{Queue: "a", State: storage.Available, Shard: 0, Seq: 256},
		{Queue: "a", State: storage.Available, Shard: 1, Seq: 0},
		{Queue: "a", State: storage.Available, Shard: 1 << 40, Seq: 0},
		{Queue: "a", State: storage.Inflight, Shard: 0, Seq: 0},
		{Queue: "a", State: storage.Moving, Shard: 0, Seq: 0},
		{Queue: "a-b", State: storage.Available, Shard: 0, Seq: 0},
		{Queue: "a.b", State: storage.Available, Shard: 0, Seq: 0},
		{Queue: "aA", State: storage.Available, Shard: 0, Seq: 0},
		{Queue: "ab", State: storage.Available, Shard: 0, Seq: 0},
	}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(entryKey(keys[i-1]), entryKey(keys[i])) >= 0 {
			t.Errorf("key of %+v does not sort before key of %+v", keys[i-1], keys[i])
		}
	}
}

func TestQueuePrefixNotSharedWithLongerNames(t *testing.T) {
	prefix := queuePrefix(spaceEntry, "a", 0)
	for _, other := range []string{"a.b", "ab", "a-", "a0"} {
		k := entryKey(storage.EntryKey{Queue: other, State: storage.Available})
		if bytes.HasPrefix(k, prefix) {
			t.Errorf("key of queue %q starts with the prefix of queue \"a\"", other)
		}
		end := prefixEnd(prefix)
		if bytes.Compare(k, prefix) >= 0 && bytes.Compare(k, end) < 0 {
			t.Errorf("key of queue %q lies in the range of queue \"a\"", other)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		in, want []byte
	}{
		{[]byte{1, 2, 3}, []byte{1, 2, 4}},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{1, 0xff, 0xff}, []byte{2}},
		{[]byte{0xff, 0xff}, nil},
		{[]byte{}, nil},
	}
	for _, tc := range tests {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tc.in, got, tc.want)
		}
	}
}

func TestKeyTimeOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 0),
		time.Unix(0, -1),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(1<<32, 0),
		time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	encoded := make([]uint64, len(times))
	for i, tm := range times {
		encoded[i] = keyTime(tm)
	}
	if !slices.IsSorted(encoded) {
		t.Errorf("key times are not in time order: %v", encoded)
	}
	if keyTime(time.Time{}) != 0 {
		t.Errorf("keyTime(zero) = %d, want 0", keyTime(time.Time{}))
	}
	if got := keyTime(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); got != 1<<64-1 {
		t.Errorf("keyTime(year 3000) = %d, want the maximum", got)
	}
}

func TestExpiryKeyPointsToAuditKey(t *testing.T) {
	ev := storage.AuditEvent{MessageID: uuid.New(), Time: time.Now(), Seq: 7, ExpiresAt: time.Now().Add(time.Hour)}
	got, err := auditKeyOfExpiry(expiryKey(&ev))
	if err != nil {
		t.Fatalf("auditKeyOfExpiry: %v", err)
	}
	if want := auditKey(&ev); !bytes.Equal(got, want) {
		t.Errorf("audit key from expiry key = %x, want %x", got, want)
	}
	if _, err := auditKeyOfExpiry([]byte{spaceAuditExpiry, 1}); err == nil {
		t.Error("auditKeyOfExpiry accepted a short key")
	}
}
