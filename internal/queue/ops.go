package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// result carries an op's reply.
type result[T any] struct {
	val T
	err error
}

// reply is a one-shot reply channel.
type reply[T any] chan result[T]

func newReply[T any]() reply[T] { return make(reply[T], 1) }

func (r reply[T]) send(v T, err error) {
	select {
	case r <- result[T]{val: v, err: err}:
	default:
	}
}

// sendAfter replies with v once the round's commit has succeeded.
func sendAfter[T any](t *txn, r reply[T], v T) {
	t.then(func(err error) {
		if err != nil {
			var zero T
			r.send(zero, err)
			return
		}
		r.send(v, nil)
	})
}

// sendOp stores messages.
type sendOp struct {
	msgs  []SendRequest
	reply reply[[]SendResult]
}

func (p *sendOp) fail(err error) { p.reply.send(nil, err) }

func (p *sendOp) stage(o *owner, t *txn) {
	now := o.e.clock.Now()
	// Check every explicit id before staging anything, so that a failed
	// check leaves nothing half sent.
	dups := make([]bool, len(p.msgs))
	for i := range p.msgs {
		if id := p.msgs[i].MessageID; id != uuid.Nil {
			dup, err := o.seen(t, id)
			if err != nil {
				p.reply.send(nil, fmt.Errorf("%w: %v", ErrUnavailable, err))
				return
			}
			dups[i] = dup
		}
	}
	out := make([]SendResult, 0, len(p.msgs))
	for i := range p.msgs {
		m := &p.msgs[i]
		if dups[i] || (m.MessageID != uuid.Nil && t.sent[m.MessageID]) {
			out = append(out, SendResult{MessageID: m.MessageID, Duplicate: true})
			continue
		}
		if m.MessageID != uuid.Nil {
			t.sent[m.MessageID] = true
		}
		en, payload, deliverAt := o.e.newMessage(&o.cfg, m, now)
		en.Seq = o.nextSeq()
		t.putPayload(payload)
		if deliverAt.After(now) {
			en.State = storage.Delayed
			en.DueAt = deliverAt
			o.addEntry(t, &en)
			o.delayed.add(&item{entry: en})
		} else {
			o.addAvailable(t, en)
		}
		o.meta.Totals.Sent++
		t.audit(o.e.sentEvent(o.name, &en, now, deliverAt))
		out = append(out, SendResult{
			MessageID:      en.MessageID,
			QueueMessageID: en.ID,
			DeliverAt:      deliverAt,
			ExpiresAt:      en.ExpiresAt,
		})
	}
	sendAfter(t, p.reply, out)
}

// newMessage builds the entry and payload of a message sent to the queue
// cfg at now, and returns when it is to be delivered. The caller sets the
// entry's state, shard and Seq.
func (e *Engine) newMessage(cfg *Config, m *SendRequest, now time.Time) (storage.Entry, storage.Payload, time.Time) {
	delay := cfg.DefaultDelay
	if m.Delay != nil {
		delay = *m.Delay
	}
	expiration := m.Expiration
	if expiration == 0 {
		expiration = e.retention(cfg)
	}
	en := storage.Entry{
		Queue:       cfg.Name,
		ID:          newID(),
		MessageID:   m.MessageID,
		CreatedAt:   now,
		SentAt:      now,
		ExpiresAt:   now.Add(expiration),
		ContentType: m.ContentType,
		Size:        int64(len(m.Data)),
	}
	if en.MessageID == uuid.Nil {
		en.MessageID = newID()
	}
	if !m.SentAt.IsZero() {
		en.SentAt = m.SentAt
	}
	payload := storage.Payload{
		Queue:       cfg.Name,
		MessageID:   en.MessageID,
		ContentType: m.ContentType,
		Data:        m.Data,
		Attributes:  m.Attributes,
		ExpiresAt:   en.ExpiresAt,
	}
	return en, payload, now.Add(max(delay, 0))
}

// sentEvent returns the audit event of a send.
func (e *Engine) sentEvent(queue string, en *storage.Entry, now, deliverAt time.Time) storage.AuditEvent {
	detail := ""
	if deliverAt.After(now) {
		detail = "delayed until " + deliverAt.UTC().Format(time.RFC3339Nano)
	}
	return storage.AuditEvent{
		MessageID:      en.MessageID,
		Time:           now,
		Seq:            e.auditSeq.Add(1),
		Action:         ActionSent,
		Queue:          queue,
		QueueMessageID: en.ID,
		ReceiveCount:   en.ReceiveCount,
		Detail:         detail,
		ExpiresAt:      now.Add(e.opts.MaxTTL),
	}
}

// seen reports whether this queue already stored a message with id: in this
// round, or earlier as its audit trail shows.
func (o *owner) seen(t *txn, id uuid.UUID) (bool, error) {
	if t.sent[id] {
		return true, nil
	}
	return o.e.sentBefore(context.Background(), o.name, id)
}

// sentBefore reports whether the audit trail of message id shows a send to
// queue.
func (e *Engine) sentBefore(ctx context.Context, queue string, id uuid.UUID) (bool, error) {
	evs, err := e.store.Audit(ctx, id)
	if err != nil {
		return false, err
	}
	for _, ev := range evs {
		if ev.Queue == queue && ev.Action == ActionSent {
			return true, nil
		}
	}
	return false, nil
}

// waiter is a receive waiting for messages.
type waiter struct {
	count      int
	visibility time.Duration
	deadline   time.Time
	cancelled  bool
	r          reply[[]Delivery]
}

func (w *waiter) reply(ds []Delivery, err error) { w.r.send(ds, err) }

func (w *waiter) answer(t *txn, ds []Delivery) {
	sendAfter(t, w.r, ds)
}

// receiveOp delivers available messages, or waits for some.
type receiveOp struct {
	count      int
	visibility *time.Duration
	wait       *time.Duration
	w          *waiter
}

func (p *receiveOp) fail(err error) { p.w.reply(nil, err) }

func (p *receiveOp) stage(o *owner, t *txn) {
	now := o.e.clock.Now()
	vis := o.e.visibility(&o.cfg)
	if p.visibility != nil {
		vis = *p.visibility
	}
	wait := o.e.receiveWait(&o.cfg)
	if p.wait != nil {
		wait = *p.wait
	}
	if o.e.draining.Load() {
		wait = 0
	}
	p.w.count = p.count
	p.w.visibility = vis
	p.w.deadline = now.Add(wait)

	if len(o.waiters) == 0 {
		ds := o.deliver(t, p.count, vis, now)
		if len(ds) > 0 || wait <= 0 {
			p.w.answer(t, ds)
			return
		}
	}
	o.waiters = append(o.waiters, p.w)
}

// stopWaitingOp ends every wait with an empty reply.
type stopWaitingOp struct{}

func (stopWaitingOp) fail(error) {}

func (stopWaitingOp) stage(o *owner, t *txn) {
	for _, w := range o.waiters {
		if !w.cancelled {
			w.answer(t, nil)
		}
	}
	clear(o.waiters)
	o.waiters = o.waiters[:0]
}

// cancelOp drops a waiter whose caller went away.
type cancelOp struct{ w *waiter }

func (p *cancelOp) fail(error) {}

func (p *cancelOp) stage(o *owner, t *txn) {
	p.w.cancelled = true
}

// ackOp deletes delivered messages.
type ackOp struct {
	ids   []uuid.UUID
	reply reply[[]error]
}

func (p *ackOp) fail(err error) { p.reply.send(nil, err) }

func (p *ackOp) stage(o *owner, t *txn) {
	now := o.e.clock.Now()
	errs := make([]error, len(p.ids))
	for i, id := range p.ids {
		it, ok := o.current(id, now)
		if !ok {
			errs[i] = ErrNotInflight
			continue
		}
		en := &it.entry
		delete(o.inflight, id)
		o.deadline.remove(it)
		o.removeEntry(t, en)
		t.deletePayload(o.name, en.MessageID)
		o.meta.Totals.Acked++
		t.audit(o.auditEvent(en, ActionAcked, now, ""))
	}
	sendAfter(t, p.reply, errs)
}

// nackOp returns a delivered message to the queue.
type nackOp struct {
	id    uuid.UUID
	delay time.Duration
	reply reply[NackResult]
}

func (p *nackOp) fail(err error) { p.reply.send(NackResult{}, err) }

func (p *nackOp) stage(o *owner, t *txn) {
	now := o.e.clock.Now()
	it, ok := o.current(p.id, now)
	if !ok {
		p.reply.send(NackResult{}, ErrNotInflight)
		return
	}
	en := &it.entry
	delete(o.inflight, p.id)
	o.deadline.remove(it)
	o.removeEntry(t, en)
	o.meta.Totals.Nacked++
	t.audit(o.auditEvent(en, ActionNacked, now, ""))
	ne, dead := o.returnEntry(t, en, p.delay, now)
	res := NackResult{QueueMessageID: ne.ID, DeadLettered: dead}
	if ne.ID != uuid.Nil {
		res.DeliverAt = now
		if ne.State == storage.Delayed {
			res.DeliverAt = ne.DueAt
		}
	}
	sendAfter(t, p.reply, res)
}

// extendOp moves the deadline of a delivered message.
type extendOp struct {
	id         uuid.UUID
	visibility time.Duration
	reply      reply[time.Time]
}

func (p *extendOp) fail(err error) { p.reply.send(time.Time{}, err) }

func (p *extendOp) stage(o *owner, t *txn) {
	now := o.e.clock.Now()
	it, ok := o.current(p.id, now)
	if !ok {
		p.reply.send(time.Time{}, ErrNotInflight)
		return
	}
	it.entry.DueAt = now.Add(p.visibility)
	o.deadline.fix(it)
	t.putEntry(it.entry)
	t.audit(o.auditEvent(&it.entry, ActionExtended, now, "deadline "+it.entry.DueAt.UTC().Format(time.RFC3339Nano)))
	sendAfter(t, p.reply, it.entry.DueAt)
}

// lookupOp finds the payload key of a delivered or buffered message.
type lookupOp struct {
	id    uuid.UUID
	reply reply[storage.PayloadKey]
}

func (p *lookupOp) fail(err error) { p.reply.send(storage.PayloadKey{}, err) }

func (p *lookupOp) stage(o *owner, t *txn) {
	key := storage.PayloadKey{Queue: o.name}
	if it, ok := o.inflight[p.id]; ok {
		key.MessageID = it.entry.MessageID
		p.reply.send(key, nil)
		return
	}
	for _, en := range o.buffer {
		if en.ID == p.id {
			key.MessageID = en.MessageID
			p.reply.send(key, nil)
			return
		}
	}
	p.reply.send(key, ErrMessageNotFound)
}

// statsOp reads the queue's counts.
type statsOp struct{ reply reply[Stats] }

func (p *statsOp) fail(err error) { p.reply.send(Stats{}, err) }

func (p *statsOp) stage(o *owner, t *txn) {
	s := Stats{
		Queue:     o.name,
		Available: o.meta.Available,
		Inflight:  int64(len(o.inflight)),
		Delayed:   int64(len(o.delayed)),
		Totals:    o.meta.Totals,
	}
	for _, w := range o.waiters {
		if !w.cancelled {
			s.Waiters++
		}
	}
	if len(o.buffer) > 0 {
		s.OldestAvailableAge = max(o.e.clock.Now().Sub(o.buffer[0].CreatedAt), 0)
	}
	// The counts include this round's staged changes, so the reply waits for
	// the commit. A caller that sees an expiry counted then finds its audit
	// event in storage.
	t.then(func(err error) { p.reply.send(s, err) })
}

// configOp replaces the owner's copy of the queue configuration.
type configOp struct {
	cfg   Config
	reply reply[struct{}]
}

func (p *configOp) fail(err error) { p.reply.send(struct{}{}, err) }

func (p *configOp) stage(o *owner, t *txn) {
	o.cfg = p.cfg
	p.reply.send(struct{}{}, nil)
}
