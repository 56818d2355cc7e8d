package queue

import (
	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// txn collects the writes of one round of a queue's owner. The owner changes
// its memory as it stages writes. When the commit fails, it reloads its state
// from storage, so memory runs ahead of what is durable only until then.
type txn struct {
	puts    map[storage.EntryKey]storage.Entry
	deletes map[storage.EntryKey]struct{}
	batch   storage.Batch
	// after runs once the batch is committed (err nil) or has failed.
	after []func(err error)
	// firstUnbuffered is the Seq of the first available entry staged in this
	// round that did not fit in the buffer, or zero.
	firstUnbuffered uint64
	// moves start once the batch is durable.
	moves []move
	// sent holds the explicit message ids sent in this round.
	sent map[uuid.UUID]bool
	// metaChanged forces a commit of the metadata when nothing else changed.
	metaChanged bool
}

func newTxn() *txn {
	return &txn{
		puts:    make(map[storage.EntryKey]storage.Entry),
		deletes: make(map[storage.EntryKey]struct{}),
		sent:    make(map[uuid.UUID]bool),
	}
}

func (t *txn) putEntry(e storage.Entry) {
	t.puts[e.Key()] = e
}

// deleteEntry deletes a stored entry, or cancels its put when this round
// created it, because a batch must not both put and delete one key.
func (t *txn) deleteEntry(k storage.EntryKey) {
	if _, ok := t.puts[k]; ok {
		delete(t.puts, k)
		return
	}
	t.deletes[k] = struct{}{}
}

func (t *txn) putPayload(p storage.Payload) {
	t.batch.PutPayloads = append(t.batch.PutPayloads, p)
}

func (t *txn) deletePayload(queue string, id uuid.UUID) {
	for i := range t.batch.PutPayloads {
		p := &t.batch.PutPayloads[i]
		if p.Queue == queue && p.MessageID == id {
			t.batch.PutPayloads = append(t.batch.PutPayloads[:i], t.batch.PutPayloads[i+1:]...)
			return
		}
	}
	t.batch.DeletePayloads = append(t.batch.DeletePayloads, storage.PayloadKey{Queue: queue, MessageID: id})
}

func (t *txn) audit(ev storage.AuditEvent) {
	t.batch.Audit = append(t.batch.Audit, ev)
}

func (t *txn) then(f func(err error)) {
	t.after = append(t.after, f)
}

// size counts the writes staged so far.
func (t *txn) size() int {
	b := &t.batch
	return len(t.puts) + len(t.deletes) + len(b.PutPayloads) + len(b.DeletePayloads) +
		len(b.RetireShards) + len(b.Audit)
}

// build moves the staged entry writes into the batch.
func (t *txn) build() *storage.Batch {
	for _, e := range t.puts {
		t.batch.PutEntries = append(t.batch.PutEntries, e)
	}
	for k := range t.deletes {
		t.batch.DeleteEntries = append(t.batch.DeleteEntries, k)
	}
	return &t.batch
}
