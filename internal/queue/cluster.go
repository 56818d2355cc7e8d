package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// In a cluster the engine of each node serves only the queues whose lease it
// holds (Serve). A send to any other queue is stored by the receiving node as
// an incoming entry in the node's own shard of the queue's incoming state. The
// owner adopts incoming entries into the queue when it is notified of them, on
// taking the queue over, and every inboxSweepInterval.

// inboxSweepInterval is how often an owner looks for incoming entries that
// no notification announced.
const inboxSweepInterval = 5 * time.Second

// inboxLag is how far behind the newest adopted incoming entry of a writer
// an owner keeps reading that writer's shard. An entry whose commit took
// longer than inboxLag to land after a later one of the same writer would be
// skipped, so inboxLag is longer than a write may take.
const inboxLag = 10 * time.Second

// inboxSeqShift leaves room for 2^20 incoming entries per millisecond in the
// sequence numbers of one writer.
const inboxSeqShift = 20

// A writer stores incoming entries in a new shard every day, so that no
// partition grows for ever: the low inboxDayBits of a shard are the day (UTC,
// since 1970) and the other bits identify the writer. An owner retires a
// shard it has emptied once the day after the shard's day is over, since no
// writer whose clock is within a day of the owner's writes there any more.
const inboxDayBits = 16

const inboxDayMask = 1<<inboxDayBits - 1

// ClusterHooks connect an engine to its cluster.
type ClusterHooks struct {
	// Stored is called after a send to a queue this node does not serve
	// stored incoming entries in shard. It must not block.
	Stored func(queue string, shard uint64)
	// Created is called after this node created a queue. It must not block.
	Created func(queue string)
	// Lost is called after the engine stopped serving a queue because a
	// commit found its lease taken or expired. It must not block.
	Lost func(queue string, lease storage.Lease)
}

// Clustered reports whether the engine is a cluster node (Options.Node set).
func (e *Engine) Clustered() bool { return e.opts.Node != "" }

// inboxShardAt returns the shard of the incoming state in which this node
// stores, on the day of now, the sends to queues it does not serve.
func (e *Engine) inboxShardAt(now time.Time) uint64 {
	return e.inboxWriter | inboxDay(now)
}

func inboxDay(t time.Time) uint64 {
	return uint64(max(t.Unix(), 0)/(24*60*60)) & inboxDayMask
}

// nodeShardBits derives the writer part of a node's incoming shards from its
// name. The shards are positive as signed 64-bit numbers, since Cassandra's
// bigint is signed.
func nodeShardBits(node string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(node))
	return (h.Sum64() >> 1) &^ inboxDayMask
}

// inboxRetirable reports whether an emptied incoming shard may be retired
// at now.
func inboxRetirable(shard uint64, now time.Time) bool {
	return shard&inboxDayMask+1 < inboxDay(now)
}

// nextInboxSeq returns a sequence number for an incoming entry: the time in
// milliseconds shifted by inboxSeqShift, and above every number it returned
// before.
func (e *Engine) nextInboxSeq(now time.Time) uint64 {
	e.inboxMu.Lock()
	defer e.inboxMu.Unlock()
	seq := uint64(max(now.UnixMilli(), 0)) << inboxSeqShift
	if seq <= e.inboxLast {
		seq = e.inboxLast + 1
	}
	e.inboxLast = seq
	return seq
}

// inboxFloor returns the lowest sequence number an owner keeps reading in a
// writer's shard after adopting the entry seq.
func inboxFloor(seq uint64) uint64 {
	lag := uint64(inboxLag.Milliseconds()) << inboxSeqShift
	if seq < lag {
		return 0
	}
	return seq - lag
}

// Serve starts serving a queue under lease, or takes a renewed lease for a
// queue the engine already serves under the same epoch. The queue's state is
// rebuilt from storage before its first request runs.
func (e *Engine) Serve(ctx context.Context, lease storage.Lease) error {
	if !e.Clustered() {
		return errors.New("serve: the engine is not a cluster node")
	}
	e.mu.RLock()
	o, running := e.owners[lease.Queue]
	e.mu.RUnlock()
	if running {
		held := o.lease.Load()
		if held != nil && held.Epoch == lease.Epoch {
			o.lease.Store(&lease)
			return nil
		}
		// A stale owner under an older epoch must stop before the new one
		// reads the queue's state.
		if err := e.Handover(ctx, lease.Queue); err != nil {
			return err
		}
	}
	cfg, err := e.store.Queue(ctx, lease.Queue)
	if err != nil {
		return e.storeError("read queue "+lease.Queue, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if _, running := e.owners[lease.Queue]; running {
		return nil
	}
	e.startOwnerLocked(cfg, &lease)
	e.log.Info("serving queue", slog.String("queue", lease.Queue), slog.Int64("epoch", lease.Epoch))
	return nil
}

// Renew records a renewed lease of a queue the engine serves.
func (e *Engine) Renew(lease storage.Lease) {
	e.mu.RLock()
	o, ok := e.owners[lease.Queue]
	e.mu.RUnlock()
	if !ok {
		return
	}
	if held := o.lease.Load(); held != nil && held.Epoch == lease.Epoch {
		o.lease.Store(&lease)
	}
}

// Handover stops serving a queue: the round in progress commits, waiting
// receives return empty, and queued requests fail with ErrNotOwner. Inflight
// and delayed entries stay in storage for the next owner. Handing over a
// queue the engine does not serve does nothing.
func (e *Engine) Handover(ctx context.Context, name string) error {
	e.mu.Lock()
	o, ok := e.owners[name]
	cancel := e.cancels[name]
	if ok {
		delete(e.owners, name)
		delete(e.cancels, name)
		o.exitErr = ErrNotOwner
	}
	e.mu.Unlock()
	if !ok {
		return nil
	}
	cancel()
	select {
	case <-o.done:
		e.log.Info("stopped serving queue", slog.String("queue", name))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Serving returns the leases of the queues the engine serves.
func (e *Engine) Serving() []storage.Lease {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]storage.Lease, 0, len(e.owners))
	for _, o := range e.owners {
		if l := o.lease.Load(); l != nil {
			out = append(out, *l)
		}
	}
	return out
}

// dropFenced removes an owner whose commit found its lease gone, and
// reports the loss.
func (e *Engine) dropFenced(o *owner) {
	e.mu.Lock()
	if cur, ok := e.owners[o.name]; ok && cur == o {
		delete(e.owners, o.name)
		delete(e.cancels, o.name)
	}
	e.mu.Unlock()
	lease := o.lease.Load()
	o.log.Warn("stopped serving queue: its lease was taken or expired", slog.Int64("epoch", lease.Epoch))
	if e.hooks.Lost != nil {
		e.hooks.Lost(o.name, *lease)
	}
}

// missing returns the error for a queue the engine does not serve: in a
// cluster ErrNotOwner when the queue exists, else ErrQueueNotFound.
func (e *Engine) missing(ctx context.Context, name string) error {
	if !e.Clustered() {
		return ErrQueueNotFound
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := e.store.Queue(ctx, name)
	switch {
	case err == nil:
		return ErrNotOwner
	case errors.Is(err, storage.ErrNotFound):
		return ErrQueueNotFound
	default:
		return e.storeError("read queue "+name, err)
	}
}

// sendIncoming stores messages to a queue this node does not serve, as
// incoming entries of this node's shard, and notifies the owner.
func (e *Engine) sendIncoming(ctx context.Context, cfg *Config, msgs []SendRequest) ([]SendResult, error) {
	now := e.clock.Now()
	b := &storage.Batch{}
	out := make([]SendResult, 0, len(msgs))
	inBatch := make(map[uuid.UUID]bool)
	for i := range msgs {
		m := &msgs[i]
		if m.MessageID != uuid.Nil {
			dup := inBatch[m.MessageID]
			if !dup {
				var err error
				if dup, err = e.sentBefore(ctx, cfg.Name, m.MessageID); err != nil {
					return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
				}
			}
			if dup {
				out = append(out, SendResult{MessageID: m.MessageID, Duplicate: true})
				continue
			}
			inBatch[m.MessageID] = true
		}
		en, payload, deliverAt := e.newMessage(cfg, m, now)
		en.State = storage.Incoming
		en.Shard = e.inboxShardAt(now)
		en.Seq = e.nextInboxSeq(now)
		if deliverAt.After(now) {
			en.DueAt = deliverAt
		}
		b.PutPayloads = append(b.PutPayloads, payload)
		b.PutEntries = append(b.PutEntries, en)
		b.Audit = append(b.Audit, e.sentEvent(cfg.Name, &en, now, deliverAt))
		out = append(out, SendResult{
			MessageID:      en.MessageID,
			QueueMessageID: en.ID,
			DeliverAt:      deliverAt,
			ExpiresAt:      en.ExpiresAt,
		})
	}
	if len(b.PutEntries) == 0 {
		return out, nil
	}
	if err := e.store.Commit(context.WithoutCancel(ctx), b); err != nil {
		return nil, e.storeError("store incoming messages of queue "+cfg.Name, err)
	}
	if e.hooks.Stored != nil {
		e.hooks.Stored(cfg.Name, e.inboxShardAt(now))
	}
	return out, nil
}

// Incoming notifies the owner of a queue that incoming entries wait in shard.
// It returns ErrNotOwner when this engine does not serve the queue.
func (e *Engine) Incoming(ctx context.Context, queue string, shard uint64) error {
	e.mu.RLock()
	o, ok := e.owners[queue]
	e.mu.RUnlock()
	if !ok {
		return e.missing(ctx, queue)
	}
	return o.submit(ctx, &incomingOp{shard: shard})
}

// incomingOp makes the owner adopt the incoming entries of one shard, or
// of every shard when all is set.
type incomingOp struct {
	shard uint64
	all   bool
}

func (p *incomingOp) fail(error) {}

func (p *incomingOp) stage(o *owner, _ *txn) {
	if p.all {
		o.inboxAll = true
		return
	}
	o.inboxWork[p.shard] = true
}

// adoptIncoming moves incoming entries into the queue while the round has
// room: two writes each, the delete of the incoming entry and the put of the
// new one.
func (o *owner) adoptIncoming(ctx context.Context, t *txn, now time.Time) {
	if !o.e.Clustered() {
		return
	}
	if !now.Before(o.nextSweep) {
		o.nextSweep = now.Add(inboxSweepInterval)
		o.inboxAll = true
	}
	store := o.e.store
	if o.inboxAll {
		o.inboxAll = false
		shards, err := store.Shards(ctx, o.name, storage.Incoming)
		if err != nil {
			o.log.Warn("listing incoming shards failed; retrying at the next sweep", slog.Any("error", err))
		}
		// A full sweep reads every shard from its persisted floor again, so
		// that an entry that landed late is found.
		clear(o.inboxCursor)
		for _, s := range shards {
			o.inboxWork[s] = true
		}
	}
	for shard := range o.inboxWork {
		room := (o.e.maxWrites - t.size()) / 2
		if room < 1 {
			return
		}
		limit := min(room, 1000)
		from := max(o.meta.Inbox[shard], o.inboxCursor[shard])
		entries, err := store.ScanShard(ctx, o.name, storage.ShardRef{State: storage.Incoming, Shard: shard}, from, limit)
		if err != nil {
			o.log.Warn("reading incoming entries failed; retrying at the next sweep",
				slog.Uint64("shard", shard), slog.Any("error", err))
			delete(o.inboxWork, shard)
			continue
		}
		for i := range entries {
			o.adoptOne(t, &entries[i], now)
		}
		if n := len(entries); n > 0 {
			last := entries[n-1].Seq
			o.inboxCursor[shard] = last + 1
			if floor := inboxFloor(last); floor > o.meta.Inbox[shard] {
				if o.meta.Inbox == nil {
					o.meta.Inbox = make(map[uint64]uint64)
				}
				o.meta.Inbox[shard] = floor
			}
			t.metaChanged = true
		}
		if len(entries) < limit {
			delete(o.inboxWork, shard)
			if len(entries) == 0 && inboxRetirable(shard, now) {
				t.batch.RetireShards = append(t.batch.RetireShards, storage.RetiredShard{
					Queue: o.name, ShardRef: storage.ShardRef{State: storage.Incoming, Shard: shard},
				})
				delete(o.meta.Inbox, shard)
				delete(o.inboxCursor, shard)
				t.metaChanged = true
			}
		}
	}
}

// adoptOne moves one incoming entry into the queue under a new Seq, keeping
// its id, as available or, before its delivery time, delayed.
func (o *owner) adoptOne(t *txn, in *storage.Entry, now time.Time) {
	t.deleteEntry(in.Key())
	en := *in
	en.Seq = o.nextSeq()
	if en.SourceQueue == "" && en.ReceiveCount == 0 {
		o.meta.Totals.Sent++
	}
	if en.DueAt.After(now) {
		en.State = storage.Delayed
		o.addEntry(t, &en)
		o.delayed.add(&item{entry: en})
		return
	}
	en.DueAt = time.Time{}
	o.addAvailable(t, en)
}

// moveRemote hands a moving entry to a target queue this node does not
// serve: one batch, fenced by the source's lease, stores the payload and an
// incoming entry in the target and deletes the moving entry and its payload
// from the source.
func (m *mover) moveRemote(ctx context.Context, src *owner, mv move, payload storage.Payload) error {
	e := m.e
	now := e.clock.Now()
	old := mv.entry

	pl := payload
	pl.Queue = old.TargetQueue
	en := old
	en.Queue = old.TargetQueue
	en.State = storage.Incoming
	en.Shard = e.inboxShardAt(now)
	en.Seq = e.nextInboxSeq(now)
	en.ID = newID()
	en.CreatedAt = now
	en.DueAt = time.Time{}
	en.TargetQueue = ""
	action := ActionDeadLettered
	if mv.kind == moveDeadLetter {
		en.SourceQueue = mv.source
	} else {
		action = ActionRedriven
		en.SourceQueue = ""
		en.ReceiveCount = 0
	}
	b := &storage.Batch{
		PutPayloads:    []storage.Payload{pl},
		DeletePayloads: []storage.PayloadKey{{Queue: mv.source, MessageID: old.MessageID}},
		PutEntries:     []storage.Entry{en},
		DeleteEntries:  []storage.EntryKey{old.Key()},
		Audit: []storage.AuditEvent{{
			MessageID:      en.MessageID,
			Time:           now,
			Seq:            e.auditSeq.Add(1),
			Action:         action,
			Queue:          en.Queue,
			QueueMessageID: en.ID,
			ReceiveCount:   en.ReceiveCount,
			Detail:         "from " + mv.source,
			ExpiresAt:      now.Add(e.opts.MaxTTL),
		}},
		Fence: src.fence(now),
	}
	ctx, cancel := src.commitContext(ctx)
	defer cancel()
	if err := e.store.Commit(ctx, b); err != nil {
		return err
	}
	if e.hooks.Stored != nil {
		e.hooks.Stored(en.Queue, en.Shard)
	}
	return nil
}

// commitContext bounds a fenced commit by the lease's expiry, so no write of
// a commit is sent after its lease has expired. A new owner waits the settle
// time past the expiry before it reads the queue, so every write lands first.
func (o *owner) commitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	l := o.lease.Load()
	if l == nil {
		return ctx, func() {}
	}
	// The engine's clock, which tests fake, measures the time left.
	return context.WithTimeout(ctx, l.ExpiresAt.Sub(o.e.clock.Now()))
}

// fence returns the condition of this owner's commits, or nil outside a
// cluster.
func (o *owner) fence(now time.Time) *storage.Fence {
	l := o.lease.Load()
	if l == nil {
		return nil
	}
	return &storage.Fence{Queue: o.name, Owner: l.Owner, Epoch: l.Epoch, Now: now}
}
