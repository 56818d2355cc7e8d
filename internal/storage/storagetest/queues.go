package storagetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

func testCreateQueue(t *testing.T, s storage.Store) {
	cfg := newConfig(uniqueName(t, "create"))

	stored, created, err := s.CreateQueue(t.Context(), cfg)
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if !created {
		t.Error("CreateQueue of a new name: created=false, want true")
	}
	checkConfig(t, "CreateQueue result", stored, cfg)

	got, err := s.Queue(t.Context(), cfg.Name)
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	checkConfig(t, "Queue after create", got, cfg)
}

func testCreateQueueExisting(t *testing.T, s storage.Store) {
	first := newConfig(uniqueName(t, "create-existing"))
	if _, _, err := s.CreateQueue(t.Context(), first); err != nil {
		t.Fatalf("first CreateQueue: %v", err)
	}

	second := first
	second.VisibilityTimeout = time.Minute
	second.RetryCount = 1
	second.Tags = map[string]string{"other": "value"}
	stored, created, err := s.CreateQueue(t.Context(), second)
	if err != nil {
		t.Fatalf("second CreateQueue: %v", err)
	}
	if created {
		t.Error("second CreateQueue: created=true, want false")
	}
	checkConfig(t, "second CreateQueue result", stored, first)

	got, err := s.Queue(t.Context(), first.Name)
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	checkConfig(t, "Queue after second create", got, first)
}

func testQueueMissing(t *testing.T, s storage.Store) {
	name := uniqueName(t, "missing")
	_, err := s.Queue(t.Context(), name)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Queue(%q) error = %v, want ErrNotFound", name, err)
	}
}

func testUpdateQueue(t *testing.T, s storage.Store) {
	name := createQueue(t, s, "update")

	cfg := newConfig(name)
	cfg.VisibilityTimeout = 2 * time.Minute
	cfg.DeadLetterQueue = ""
	cfg.Tags = nil
	cfg.UpdatedAt = baseTime.Add(time.Hour)
	if err := s.UpdateQueue(t.Context(), cfg); err != nil {
		t.Fatalf("UpdateQueue: %v", err)
	}

	got, err := s.Queue(t.Context(), name)
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	checkConfig(t, "Queue after update", got, cfg)
}

func testUpdateQueueMissing(t *testing.T, s storage.Store) {
	cfg := newConfig(uniqueName(t, "update-missing"))
	err := s.UpdateQueue(t.Context(), cfg)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateQueue of a missing queue: error = %v, want ErrNotFound", err)
	}

	// The failed update must not have created the queue.
	if _, err := s.Queue(t.Context(), cfg.Name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Queue after failed update: error = %v, want ErrNotFound", err)
	}
}

func testQueuesOrderedByName(t *testing.T, s storage.Store) {
	// The suffixes cover byte order around '.', '-', '_', digits and case.
	base := uniqueName(t, "list")
	names := []string{base + "b", base, base + "_x", base + ".a", base + "-z", base + "A", base + "9", base + ".a.b"}
	for _, n := range names {
		createNamed(t, s, n)
	}

	all, err := s.Queues(t.Context())
	if err != nil {
		t.Fatalf("Queues: %v", err)
	}
	var got, allNames []string
	for _, c := range all {
		allNames = append(allNames, c.Name)
		if slices.Contains(names, c.Name) {
			got = append(got, c.Name)
			checkConfig(t, "listed "+c.Name, c, newConfig(c.Name))
		}
	}
	if !slices.IsSorted(allNames) {
		t.Errorf("Queues not ordered by name: %q", allNames)
	}

	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Queues listed %q of ours, want %q", got, want)
	}
}

// queueData is the data that populate stored for one queue.
type queueData struct {
	name     string
	meta     storage.Meta
	entries  map[storage.ShardRef][]storage.Entry
	payloads []storage.Payload
}

// populate commits metadata, entries in every state and two shards each, and
// payloads for a queue that already has a configuration.
func populate(t *testing.T, s storage.Store, name string) queueData {
	t.Helper()
	d := queueData{
		name:    name,
		meta:    newMeta(),
		entries: make(map[storage.ShardRef][]storage.Entry),
	}
	b := &storage.Batch{Metas: map[string]storage.Meta{name: d.meta}}
	for _, st := range storage.States {
		for shard := uint64(0); shard < 2; shard++ {
			ref := storage.ShardRef{State: st, Shard: shard}
			for i := uint64(0); i < 3; i++ {
				e := newEntry(name, st, shard, shard*1000+i)
				d.entries[ref] = append(d.entries[ref], e)
				b.PutEntries = append(b.PutEntries, e)

				p := newPayload(name, e.MessageID, 10)
				d.payloads = append(d.payloads, p)
				b.PutPayloads = append(b.PutPayloads, p)
			}
		}
	}
	commit(t, s, b)
	return d
}

// checkPresent fails unless everything populate stored is still readable.
func checkPresent(t *testing.T, s storage.Store, d queueData) {
	t.Helper()
	if got, err := s.Queue(t.Context(), d.name); err != nil {
		t.Errorf("Queue(%q): %v", d.name, err)
	} else {
		checkConfig(t, "config of "+d.name, got, newConfig(d.name))
	}

	if got, err := s.Meta(t.Context(), d.name); err != nil {
		t.Errorf("Meta(%q): %v", d.name, err)
	} else {
		checkMeta(t, "meta of "+d.name, got, d.meta)
	}

	for ref, want := range d.entries {
		checkEntries(t, "entries of "+d.name+" "+ref.State.String(), scan(t, s, d.name, ref), want)
	}

	for _, p := range d.payloads {
		got, err := s.Payload(t.Context(), storage.PayloadKey{Queue: p.Queue, MessageID: p.MessageID})
		if err != nil {
			t.Errorf("Payload(%q, %s): %v", p.Queue, p.MessageID, err)
			continue
		}
		checkPayload(t, "payload of "+d.name, got, p)
	}
}

// checkGone fails if anything populate stored for d is still readable.
func checkGone(t *testing.T, s storage.Store, d queueData) {
	t.Helper()
	if _, err := s.Queue(t.Context(), d.name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Queue(%q) after delete: error = %v, want ErrNotFound", d.name, err)
	}

	if got, err := s.Meta(t.Context(), d.name); err != nil {
		t.Errorf("Meta(%q) after delete: %v", d.name, err)
	} else {
		checkMeta(t, "meta after delete", got, storage.Meta{})
	}

	for ref := range d.entries {
		if got := scan(t, s, d.name, ref); len(got) != 0 {
			t.Errorf("ScanShard(%q, %v/%d) after delete: %d entries, want none", d.name, ref.State, ref.Shard, len(got))
		}
	}
	for _, st := range storage.States {
		if got := shards(t, s, d.name, st); len(got) != 0 {
			t.Errorf("Shards(%q, %v) after delete = %v, want none", d.name, st, got)
		}
	}

	for _, p := range d.payloads {
		_, err := s.Payload(t.Context(), storage.PayloadKey{Queue: p.Queue, MessageID: p.MessageID})
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Payload(%q, %s) after delete: error = %v, want ErrNotFound", p.Queue, p.MessageID, err)
		}
	}

	all, err := s.Queues(t.Context())
	if err != nil {
		t.Fatalf("Queues: %v", err)
	}
	for _, c := range all {
		if c.Name == d.name {
			t.Errorf("Queues still lists %q after delete", d.name)
		}
	}
}

func testDeleteQueue(t *testing.T, s storage.Store) {
	name := createQueue(t, s, "delete")
	d := populate(t, s, name)
	checkPresent(t, s, d)

	if err := s.DeleteQueue(t.Context(), name); err != nil {
		t.Fatalf("DeleteQueue: %v", err)
	}
	checkGone(t, s, d)

	// The name is free again, and the new queue starts empty.
	_, created, err := s.CreateQueue(t.Context(), newConfig(name))
	if err != nil {
		t.Fatalf("CreateQueue after delete: %v", err)
	}
	if !created {
		t.Error("CreateQueue after delete: created=false, want true")
	}
	if got, err := s.Meta(t.Context(), name); err != nil {
		t.Errorf("Meta of the recreated queue: %v", err)
	} else {
		checkMeta(t, "meta of the recreated queue", got, storage.Meta{})
	}
}

func testDeleteQueueKeepsOtherQueues(t *testing.T, s storage.Store) {
	// "q" is a prefix of the names "q.b" and "qb", so a backend that deletes
	// by raw name prefix would remove them too.
	base := uniqueName(t, "delete-prefix")
	names := []string{base, base + ".b", base + "b", base + "-", base + "0"}
	var data []queueData
	for _, n := range names {
		createNamed(t, s, n)
		data = append(data, populate(t, s, n))
	}

	if err := s.DeleteQueue(t.Context(), base); err != nil {
		t.Fatalf("DeleteQueue(%q): %v", base, err)
	}
	checkGone(t, s, data[0])
	for _, d := range data[1:] {
		checkPresent(t, s, d)
	}
}

func testDeleteQueueMissing(t *testing.T, s storage.Store) {
	name := uniqueName(t, "delete-missing")
	if err := s.DeleteQueue(t.Context(), name); err != nil {
		t.Errorf("DeleteQueue of a missing queue: %v, want nil", err)
	}
}

func testDeleteQueueKeepsAudit(t *testing.T, s storage.Store) {
	name := createQueue(t, s, "delete-audit")
	ev := storage.AuditEvent{
		MessageID:      uuid.New(),
		Time:           baseTime,
		Seq:            1,
		Action:         "sent",
		Queue:          name,
		QueueMessageID: uuid.New(),
		ExpiresAt:      time.Now().Add(time.Hour).Truncate(time.Millisecond),
	}
	commit(t, s, &storage.Batch{Audit: []storage.AuditEvent{ev}})

	if err := s.DeleteQueue(t.Context(), name); err != nil {
		t.Fatalf("DeleteQueue: %v", err)
	}
	got, err := s.Audit(t.Context(), ev.MessageID)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	checkAudit(t, "audit after DeleteQueue", got, []storage.AuditEvent{ev})
}
