package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/storage"
)

// maxOpsPerRound bounds how many requests one round stages into one batch.
const maxOpsPerRound = 256

// retryDelay is how long an owner waits before it reloads its state after a
// failed commit.
const retryDelay = time.Second

// op is a request to a queue's owner. stage runs on the owner's goroutine:
// it changes the owner's memory, stages writes into t and registers its reply
// with t.then. fail replies without staging anything.
type op interface {
	stage(o *owner, t *txn)
	fail(err error)
}

// owner is the one goroutine that serves a queue: its buffer of available
// entries, its long-poll waiters, the deadline heap of inflight entries and
// the timer heap of delayed ones. Only the loop goroutine touches the fields
// below reqs.
type owner struct {
	e    *Engine
	name string
	log  *slog.Logger
	reqs chan op
	done chan struct{}
	// shared is the configuration as other goroutines read it, so that a
	// send is validated without a storage read.
	shared atomic.Pointer[Config]
	// lease is the queue's lease in a cluster, and nil on a single node.
	lease atomic.Pointer[storage.Lease]
	// exitErr is the error of requests that arrive after the owner stopped.
	// It is set before the owner's context is cancelled.
	exitErr error

	cfg     Config
	healthy bool
	lastErr error
	// nextReload is the earliest time an unhealthy owner reads its state
	// again, so that a failing store is not asked on every request.
	nextReload time.Time

	meta storage.Meta
	// committedNext is meta.NextSeq as of the last commit: entries below it
	// are in storage, entries above it may only be staged.
	committedNext uint64

	// buffer holds available entries in Seq order, starting at the head.
	buffer []*storage.Entry
	// bufferedAll is true when no available entry exists beyond the buffer.
	bufferedAll bool
	// readFrom is the Seq the next refill reads storage from when !bufferedAll.
	readFrom uint64

	inflight map[uuid.UUID]*item
	deadline dueHeap
	delayed  dueHeap
	moving   map[uint64]*storage.Entry
	live     map[storage.ShardRef]int64

	waiters []*waiter
	timer   clock.Timer
	// purge and redrive run in chunks, one per round, while other requests
	// keep being served.
	chunked []chunkedOp

	// fenced is set when a commit found the queue's lease taken or expired.
	fenced bool
	// inboxWork holds the incoming shards to read, inboxAll requests a list
	// of every incoming shard, and inboxCursor is where each shard's next
	// read starts within one sweep.
	inboxWork   map[uint64]bool
	inboxAll    bool
	inboxCursor map[uint64]uint64
	nextSweep   time.Time
}

func newOwner(e *Engine, cfg Config) *owner {
	o := &owner{
		e:    e,
		name: cfg.Name,
		log:  e.log.With(slog.String("queue", cfg.Name)),
		reqs: make(chan op, 1024),
		done: make(chan struct{}),
		cfg:  cfg,

		exitErr:     ErrQueueNotFound,
		inboxWork:   make(map[uint64]bool),
		inboxCursor: make(map[uint64]uint64),
	}
	o.shared.Store(&cfg)
	return o
}

// submit hands an op to the loop, or fails it when the owner has stopped.
func (o *owner) submit(ctx context.Context, p op) error {
	select {
	case o.reqs <- p:
		return nil
	case <-o.done:
		return o.exitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run serves the queue until ctx is cancelled.
func (o *owner) run(ctx context.Context) {
	defer close(o.done)
	o.timer = o.e.clock.NewTimer()
	defer o.timer.Stop()

	o.reload(ctx)
	for {
		var first op
		if !o.hasWork() {
			select {
			case <-ctx.Done():
				o.shutdown()
				return
			case first = <-o.reqs:
			case <-o.timer.C():
			}
		} else if ctx.Err() != nil {
			o.shutdown()
			return
		}

		if o.leaseExpired() {
			// By this node's clock another node may serve the queue now,
			// so nothing in memory may be trusted or served any more.
			if first != nil {
				first.fail(ErrNotOwner)
			}
			o.stopFenced()
			return
		}
		if !o.healthy && !o.e.clock.Now().Before(o.nextReload) {
			o.reload(ctx)
		}
		if !o.healthy {
			o.rejectPending(first)
			o.timer.Reset(retryDelay)
			continue
		}
		o.round(ctx, first)
		if o.fenced {
			o.stopFenced()
			return
		}
	}
}

// stopFenced stops an owner that lost its lease.
func (o *owner) stopFenced() {
	o.exitErr = ErrNotOwner
	o.shutdown()
	o.e.dropFenced(o)
}

// leaseExpired reports whether the owner's lease has expired by the
// engine's clock. It is always false outside a cluster.
func (o *owner) leaseExpired() bool {
	l := o.lease.Load()
	return l != nil && !o.e.clock.Now().Before(l.ExpiresAt)
}

// round stages first and whatever else is queued, fires due timers, serves
// waiters, and commits everything as one batch.
func (o *owner) round(ctx context.Context, first op) {
	t := newTxn()
	// Timers fire first, so every deadline that has passed applies to the
	// requests of this round: an ack after its deadline fails even if the
	// timer tick has not been received yet. fireTimers stops at the store's
	// batch limit. An inflight entry it leaves past its deadline counts as
	// timed out (see current), and the next round fires it.
	o.fireTimers(t, o.e.clock.Now())
	// Incoming entries are adopted before requests are staged, so that a
	// receive of this round finds them.
	o.adoptIncoming(ctx, t, o.e.clock.Now())
	if first != nil {
		first.stage(o, t)
	}
drain:
	for i := 1; i < maxOpsPerRound && t.size() < o.e.maxWrites; i++ {
		select {
		case p := <-o.reqs:
			p.stage(o, t)
		default:
			break drain
		}
	}
	if t.size() < o.e.maxWrites {
		o.runChunked(t)
	}
	o.serveWaiters(t, o.e.clock.Now())
	o.commit(ctx, t)
	o.armTimer()
}

func (o *owner) commit(ctx context.Context, t *txn) {
	o.updateShards(t)
	b := t.build()
	var err error
	if !b.Empty() || t.metaChanged {
		if b.Metas == nil {
			b.Metas = make(map[string]storage.Meta, 1)
		}
		b.Metas[o.name] = o.metaSnapshot()
		now := o.e.clock.Now()
		b.Fence = o.fence(now)
		if l := o.lease.Load(); l != nil && !now.Before(l.ExpiresAt) {
			// Another node may take the queue from now on.
			err = fmt.Errorf("%w: the lease of epoch %d expired at %s", storage.ErrFenced, l.Epoch, l.ExpiresAt.UTC().Format(time.RFC3339Nano))
		} else {
			cctx, cancel := o.commitContext(context.WithoutCancel(ctx))
			err = o.e.store.Commit(cctx, b)
			cancel()
		}
	}
	if errors.Is(err, storage.ErrFenced) {
		// Another node serves the queue now. Its state in memory here is
		// stale, so the owner stops instead of reloading.
		o.fenced = true
		for _, f := range t.after {
			f(ErrNotOwner)
		}
		return
	}
	if err != nil {
		o.log.Error("commit failed; reloading queue state from storage", slog.Any("error", err))
		o.healthy = false
		o.lastErr = err
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	} else {
		o.committedNext = o.meta.NextSeq
		for _, m := range t.moves {
			o.e.mover.enqueue(m)
		}
	}
	for _, f := range t.after {
		f(err)
	}
	if err != nil {
		o.timer.Reset(retryDelay)
	}
}

func (o *owner) metaSnapshot() storage.Meta {
	m := o.meta
	m.Head = o.head()
	m.Shards = append([]storage.ShardRef(nil), o.meta.Shards...)
	m.Inbox = maps.Clone(o.meta.Inbox)
	return m
}

// rejectPending fails every queued request while storage is unusable.
func (o *owner) rejectPending(first op) {
	err := fmt.Errorf("%w: %v", ErrUnavailable, o.lastErr)
	if first != nil {
		first.fail(err)
	}
	for {
		select {
		case p := <-o.reqs:
			p.fail(err)
		default:
			return
		}
	}
}

// shutdown replies to every request still waiting once the owner stops.
func (o *owner) shutdown() {
	for _, w := range o.waiters {
		w.reply(nil, nil)
	}
	o.waiters = nil
	for _, c := range o.chunked {
		c.fail(o.exitErr)
	}
	o.chunked = nil
	for {
		select {
		case p := <-o.reqs:
			p.fail(o.exitErr)
		default:
			return
		}
	}
}

// reload rebuilds the owner's memory from storage: metadata, every inflight,
// delayed and moving entry, and the first buffer of available entries.
func (o *owner) reload(ctx context.Context) {
	err := o.load(ctx)
	if err != nil && ctx.Err() != nil {
		// The queue is stopping.
		o.healthy = false
		o.lastErr = ErrQueueNotFound
		return
	}
	if err != nil {
		o.healthy = false
		o.lastErr = err
		o.log.Error("loading queue state failed; retrying", slog.Any("error", err), slog.Duration("retry_in", retryDelay))
		o.nextReload = o.e.clock.Now().Add(retryDelay)
		o.timer.Reset(retryDelay)
		return
	}
	o.healthy = true
	o.lastErr = nil
	o.armTimer()
}

func (o *owner) load(ctx context.Context) error {
	store := o.e.store
	meta, err := store.Meta(ctx, o.name)
	if err != nil {
		return fmt.Errorf("read metadata of queue %s: %w", o.name, err)
	}
	if meta.ShardSize == 0 {
		meta.ShardSize = o.e.opts.ShardSize
	}
	if meta.NextSeq == 0 {
		meta.NextSeq = 1
	}
	if meta.Head == 0 {
		meta.Head = 1
	}
	o.meta = meta
	o.committedNext = meta.NextSeq
	o.buffer = nil
	o.bufferedAll = false
	o.readFrom = meta.Head
	o.inflight = make(map[uuid.UUID]*item)
	o.deadline = nil
	o.delayed = nil
	o.moving = make(map[uint64]*storage.Entry)
	o.live = make(map[storage.ShardRef]int64)
	// A new owner adopts every incoming entry waiting for it.
	o.inboxAll = o.e.Clustered()
	clear(o.inboxWork)
	clear(o.inboxCursor)

	var moves []move
	for _, ref := range meta.Shards {
		from := uint64(0)
		for {
			entries, err := store.ScanShard(ctx, o.name, ref, from, 1000)
			if err != nil {
				return fmt.Errorf("scan %s shard %d of queue %s: %w", ref.State, ref.Shard, o.name, err)
			}
			for i := range entries {
				en := entries[i]
				o.live[ref]++
				switch en.State {
				case storage.Inflight:
					it := &item{entry: en}
					o.inflight[en.ID] = it
					o.deadline.add(it)
				case storage.Delayed:
					o.delayed.add(&item{entry: en})
				case storage.Moving:
					o.moving[en.Seq] = &en
					moves = append(moves, move{source: o.name, entry: en})
				}
			}
			if len(entries) < 1000 {
				break
			}
			from = entries[len(entries)-1].Seq + 1
		}
	}
	if err := o.refill(ctx, nil); err != nil {
		return err
	}
	for _, m := range moves {
		o.e.mover.enqueue(m)
	}
	return nil
}

func (o *owner) shardOf(seq uint64) uint64 {
	return storage.ShardOf(seq, o.meta.ShardSize)
}

// nextSeq allocates a sequence number.
func (o *owner) nextSeq() uint64 {
	s := o.meta.NextSeq
	o.meta.NextSeq++
	return s
}

// head is the lowest Seq an available entry can have.
func (o *owner) head() uint64 {
	if len(o.buffer) > 0 {
		return o.buffer[0].Seq
	}
	if !o.bufferedAll {
		return o.readFrom
	}
	return o.meta.NextSeq
}

// refill reads committed available entries from storage into the buffer.
// t is the current round, or nil before any staging.
func (o *owner) refill(ctx context.Context, t *txn) error {
	want := o.e.opts.BufferSize - len(o.buffer)
	if o.bufferedAll || want <= 0 {
		return nil
	}
	from := o.readFrom
	limit := o.committedNext
	for want > 0 && from < limit {
		shard := o.shardOf(from)
		ref := storage.ShardRef{State: storage.Available, Shard: shard}
		entries, err := o.e.store.ScanShard(ctx, o.name, ref, from, want)
		if err != nil {
			return fmt.Errorf("read available entries of queue %s: %w", o.name, err)
		}
		for i := range entries {
			en := entries[i]
			if en.Seq >= limit {
				break
			}
			o.buffer = append(o.buffer, &en)
			from = en.Seq + 1
			want--
		}
		if want > 0 {
			// The shard has no more entries: continue with the next one.
			from = max(from, (shard+1)*o.meta.ShardSize)
		}
	}
	if want > 0 || from >= limit {
		// Every committed entry is buffered now.
		if t != nil && t.firstUnbuffered != 0 {
			o.readFrom = t.firstUnbuffered
			return nil
		}
		o.readFrom = o.meta.NextSeq
		o.bufferedAll = true
		return nil
	}
	o.readFrom = from
	return nil
}

// addAvailable stages a new available entry.
func (o *owner) addAvailable(t *txn, en storage.Entry) {
	en.State = storage.Available
	en.Shard = o.shardOf(en.Seq)
	t.putEntry(en)
	o.meta.Available++
	if o.bufferedAll && len(o.buffer) < o.e.opts.BufferSize {
		o.buffer = append(o.buffer, &en)
		o.readFrom = en.Seq + 1
		return
	}
	if o.bufferedAll {
		o.bufferedAll = false
		o.readFrom = en.Seq
	}
	if t.firstUnbuffered == 0 {
		t.firstUnbuffered = en.Seq
	}
}

// peekAvailable returns the first available entry without removing it,
// refilling the buffer from storage when needed, or nil when none exists.
func (o *owner) peekAvailable(t *txn) *storage.Entry {
	if len(o.buffer) == 0 && !o.bufferedAll {
		if err := o.refill(context.Background(), t); err != nil {
			o.log.Error("refill failed", slog.Any("error", err))
			return nil
		}
	}
	if len(o.buffer) == 0 {
		return nil
	}
	return o.buffer[0]
}

// takeAvailable removes the first available entry from the buffer, refilling
// it from storage when needed, and drops expired entries on the way. It
// returns nil when none is available. The caller stages the entry's new state.
func (o *owner) takeAvailable(t *txn, now time.Time) *storage.Entry {
	for {
		en := o.peekAvailable(t)
		if en == nil {
			return nil
		}
		o.buffer[0] = nil
		o.buffer = o.buffer[1:]
		o.meta.Available--
		t.deleteEntry(en.Key())
		if !en.ExpiresAt.IsZero() && !now.Before(en.ExpiresAt) {
			o.expire(t, en, now)
			continue
		}
		return en
	}
}

// addEntry stages a new entry in a non-available state.
func (o *owner) addEntry(t *txn, en *storage.Entry) {
	en.Shard = o.shardOf(en.Seq)
	t.putEntry(*en)
	o.live[storage.ShardRef{State: en.State, Shard: en.Shard}]++
}

// removeEntry stages the deletion of an entry in a non-available state.
func (o *owner) removeEntry(t *txn, en *storage.Entry) {
	t.deleteEntry(en.Key())
	o.live[storage.ShardRef{State: en.State, Shard: en.Shard}]--
}

// requeue makes an entry available again under a new id and Seq, after
// delay if positive. The caller has removed the entry from its old state.
func (o *owner) requeue(t *txn, old *storage.Entry, delay time.Duration, now time.Time) storage.Entry {
	en := *old
	en.ID = newID()
	en.Seq = o.nextSeq()
	en.CreatedAt = now
	en.TargetQueue = ""
	if delay > 0 {
		en.State = storage.Delayed
		en.DueAt = now.Add(delay)
		o.addEntry(t, &en)
		o.delayed.add(&item{entry: en})
		return en
	}
	en.DueAt = time.Time{}
	o.addAvailable(t, en)
	return en
}

// expire drops an entry and its payload. The caller has removed it from its
// state.
func (o *owner) expire(t *txn, en *storage.Entry, now time.Time) {
	t.deletePayload(o.name, en.MessageID)
	o.meta.Totals.Expired++
	t.audit(o.auditEvent(en, ActionExpired, now, ""))
}

// startMove sends an entry to another queue: it is stored as moving and the
// engine's mover hands it over once this round is durable. The caller has
// removed it from its state.
func (o *owner) startMove(t *txn, old *storage.Entry, target string, kind moveKind, now time.Time) {
	en := *old
	en.State = storage.Moving
	en.Seq = o.nextSeq()
	en.TargetQueue = target
	en.DueAt = time.Time{}
	o.addEntry(t, &en)
	o.moving[en.Seq] = &en
	t.moves = append(t.moves, move{source: o.name, entry: en, kind: kind})
}

// fireTimers times out inflight entries and releases delayed ones, until the
// round holds the store's batch limit. armTimer then starts the next round
// at once for the entries that are still due.
func (o *owner) fireTimers(t *txn, now time.Time) {
	for t.size() < o.e.maxWrites {
		it := o.deadline.popDue(now)
		if it == nil {
			break
		}
		en := &it.entry
		delete(o.inflight, en.ID)
		o.removeEntry(t, en)
		o.meta.Totals.TimedOut++
		t.audit(o.auditEvent(en, ActionTimedOut, now, ""))
		o.returnEntry(t, en, 0, now)
	}
	for t.size() < o.e.maxWrites {
		it := o.delayed.popDue(now)
		if it == nil {
			break
		}
		en := &it.entry
		o.removeEntry(t, en)
		if expired(en, now) {
			o.expire(t, en, now)
			continue
		}
		ne := o.requeue(t, en, 0, now)
		t.audit(o.auditEvent(&ne, ActionAvailable, now, ""))
	}
}

// current returns the inflight item of a delivery id, or false when the id
// is not inflight or its deadline has passed at now. An item past its
// deadline has timed out even while fireTimers has not yet returned it.
func (o *owner) current(id uuid.UUID, now time.Time) (*item, bool) {
	it, ok := o.inflight[id]
	if !ok || !now.Before(it.entry.DueAt) {
		return nil, false
	}
	return it, true
}

// returnEntry puts a timed-out or nacked entry back: to the dead-letter queue
// past the retry count, dropped when expired, else available (after delay).
func (o *owner) returnEntry(t *txn, en *storage.Entry, delay time.Duration, now time.Time) (ne storage.Entry, deadLettered bool) {
	if expired(en, now) {
		o.expire(t, en, now)
		return storage.Entry{}, false
	}
	if o.cfg.DeadLetterQueue != "" && int(en.ReceiveCount) > o.cfg.RetryCount {
		o.startMove(t, en, o.cfg.DeadLetterQueue, moveDeadLetter, now)
		return storage.Entry{}, true
	}
	return o.requeue(t, en, delay, now), false
}

func expired(en *storage.Entry, now time.Time) bool {
	return !en.ExpiresAt.IsZero() && !now.Before(en.ExpiresAt)
}

// serveWaiters hands available entries to long-polling receivers in arrival
// order, and replies with nothing to those whose wait is over.
func (o *owner) serveWaiters(t *txn, now time.Time) {
	kept := o.waiters[:0]
	for _, w := range o.waiters {
		if w.cancelled {
			continue
		}
		if o.hasAvailable() {
			ds := o.deliver(t, w.count, w.visibility, now)
			if len(ds) > 0 {
				w.answer(t, ds)
				continue
			}
		}
		if !now.Before(w.deadline) {
			w.answer(t, nil)
			continue
		}
		kept = append(kept, w)
	}
	for i := len(kept); i < len(o.waiters); i++ {
		o.waiters[i] = nil
	}
	o.waiters = kept
}

// hasWork reports whether another round should run without waiting for a
// request: a chunked request is unfinished, or waiters can now be served from
// entries committed in the last round.
func (o *owner) hasWork() bool {
	if len(o.chunked) > 0 || len(o.inboxWork) > 0 || o.inboxAll {
		return true
	}
	if len(o.waiters) == 0 {
		return false
	}
	return len(o.buffer) > 0 || (!o.bufferedAll && o.readFrom < o.committedNext)
}

func (o *owner) hasAvailable() bool {
	return len(o.buffer) > 0 || !o.bufferedAll
}

// deliver moves up to count available entries to inflight.
func (o *owner) deliver(t *txn, count int, visibility time.Duration, now time.Time) []Delivery {
	var out []Delivery
	for len(out) < count {
		en := o.takeAvailable(t, now)
		if en == nil {
			break
		}
		in := *en
		in.State = storage.Inflight
		in.DueAt = now.Add(visibility)
		in.ReceiveCount++
		o.addEntry(t, &in)
		it := &item{entry: in}
		o.inflight[in.ID] = it
		o.deadline.add(it)
		o.meta.Totals.Received++
		ev := o.auditEvent(&in, ActionReceived, now, "")
		t.audit(ev)
		out = append(out, o.e.delivery(&in))
	}
	return out
}

// armTimer sets the timer to the next deadline, delivery time or end of a
// wait.
func (o *owner) armTimer() {
	var next time.Time
	consider := func(at time.Time, ok bool) {
		if ok && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	consider(o.deadline.next())
	consider(o.delayed.next())
	consider(o.nextSweep, o.e.Clustered())
	if l := o.lease.Load(); l != nil {
		// An idle owner stops when its lease expires unrenewed.
		consider(l.ExpiresAt, true)
	}
	for _, w := range o.waiters {
		if !w.cancelled {
			consider(w.deadline, true)
		}
	}
	if next.IsZero() {
		o.timer.Stop()
		return
	}
	o.timer.ResetAt(next)
}

// updateShards keeps the shard list in the metadata current and retires
// shards that can hold no more entries: every available shard below the head,
// and any other shard below the head's shard that is empty. New inflight
// entries keep the Seq they had as available entries, and delayed and moving
// entries get a new Seq, so none lands below the head's shard.
func (o *owner) updateShards(t *txn) {
	head := o.head()
	headShard := o.shardOf(head)
	oldHeadShard := o.shardOf(o.meta.Head)
	for s := oldHeadShard; s < headShard; s++ {
		t.batch.RetireShards = append(t.batch.RetireShards, storage.RetiredShard{
			Queue: o.name, ShardRef: storage.ShardRef{State: storage.Available, Shard: s},
		})
	}
	o.meta.Head = head

	listed := make(map[storage.ShardRef]bool, len(o.meta.Shards))
	kept := o.meta.Shards[:0]
	for _, ref := range o.meta.Shards {
		if o.live[ref] <= 0 && ref.Shard < headShard {
			t.batch.RetireShards = append(t.batch.RetireShards, storage.RetiredShard{Queue: o.name, ShardRef: ref})
			delete(o.live, ref)
			continue
		}
		listed[ref] = true
		kept = append(kept, ref)
	}
	for ref, n := range o.live {
		if n > 0 && !listed[ref] {
			kept = append(kept, ref)
		}
	}
	o.meta.Shards = kept
}

func (o *owner) auditEvent(en *storage.Entry, action string, now time.Time, detail string) storage.AuditEvent {
	return storage.AuditEvent{
		MessageID:      en.MessageID,
		Time:           now,
		Seq:            o.e.auditSeq.Add(1),
		Action:         action,
		Queue:          o.name,
		QueueMessageID: en.ID,
		ReceiveCount:   en.ReceiveCount,
		Detail:         detail,
		ExpiresAt:      now.Add(o.e.opts.MaxTTL),
	}
}

// newID returns a time-ordered UUID (version 7).
// Like uuid.New, it panics when the system's random source fails.
func newID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
