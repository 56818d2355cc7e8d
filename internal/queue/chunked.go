package queue

import (
	"time"

	"github.com/qakka/qakka/internal/storage"
)

// chunkSize bounds how many messages one round of a purge or a redrive
// touches, so that one batch stays small and other requests keep flowing.
const chunkSize = 1000

// chunkedOp is a request that runs over several rounds. step does one round's
// share and reports whether it is done.
type chunkedOp interface {
	step(o *owner, t *txn) (done bool)
	fail(err error)
}

// runChunked runs one step of the oldest chunked request.
func (o *owner) runChunked(t *txn) {
	if len(o.chunked) == 0 {
		return
	}
	c := o.chunked[0]
	if c.step(o, t) {
		o.chunked[0] = nil
		o.chunked = o.chunked[1:]
	}
}

// purgeOp removes every available, delayed and inflight message that exists
// when it starts. Messages sent during a purge stay.
type purgeOp struct {
	started bool
	until   uint64
	count   int64
	// held lists the inflight and delayed items that existed at the start;
	// each step removes a chunk of those still in place.
	held  []*item
	reply reply[int64]
}

func (p *purgeOp) fail(err error) { p.reply.send(0, err) }

func (p *purgeOp) stage(o *owner, t *txn) {
	o.chunked = append(o.chunked, p)
}

func (p *purgeOp) step(o *owner, t *txn) bool {
	now := o.e.clock.Now()
	if !p.started {
		p.started = true
		p.until = o.meta.NextSeq
		p.held = make([]*item, 0, len(o.inflight)+len(o.delayed))
		for _, it := range o.inflight {
			p.held = append(p.held, it)
		}
		p.held = append(p.held, o.delayed...)
	}

	n := 0
	for n < o.e.chunk && len(p.held) > 0 {
		it := p.held[len(p.held)-1]
		p.held[len(p.held)-1] = nil
		p.held = p.held[:len(p.held)-1]
		// An item left its heap (index -1) when it was acked, timed out,
		// nacked or released since the purge started.
		if it.index < 0 {
			continue
		}
		en := &it.entry
		if en.State == storage.Inflight {
			delete(o.inflight, en.ID)
			o.deadline.remove(it)
		} else {
			o.delayed.remove(it)
		}
		o.removeEntry(t, en)
		p.purged(o, t, en, now)
		n++
	}
	if len(p.held) > 0 {
		return false
	}

	done := false
	for ; n < o.e.chunk; n++ {
		if next := o.peekAvailable(t); next == nil || next.Seq >= p.until {
			done = true
			break
		}
		if en := o.takeAvailable(t, now); en != nil {
			p.purged(o, t, en, now)
		}
	}
	if done {
		sendAfter(t, p.reply, p.count)
	}
	return done
}

func (p *purgeOp) purged(o *owner, t *txn, en *storage.Entry, now time.Time) {
	t.deletePayload(o.name, en.MessageID)
	o.meta.Totals.Purged++
	p.count++
	t.audit(o.auditEvent(en, ActionPurged, now, ""))
}

// redriveOp moves available dead-lettered messages back to the queues they
// came from, oldest first, up to max (all when max is zero).
type redriveOp struct {
	max     int
	started bool
	until   uint64
	res     RedriveResult
	reply   reply[RedriveResult]
}

func (p *redriveOp) fail(err error) { p.reply.send(RedriveResult{}, err) }

func (p *redriveOp) stage(o *owner, t *txn) {
	o.chunked = append(o.chunked, p)
}

func (p *redriveOp) step(o *owner, t *txn) bool {
	now := o.e.clock.Now()
	if !p.started {
		p.started = true
		p.until = o.meta.NextSeq
	}
	done := false
	for n := 0; n < o.e.chunk; n++ {
		if p.max > 0 && p.res.Moved >= p.max {
			done = true
			break
		}
		if next := o.peekAvailable(t); next == nil || next.Seq >= p.until {
			done = true
			break
		}
		en := o.takeAvailable(t, now)
		if en == nil {
			continue
		}
		if en.SourceQueue == "" || !o.e.exists(en.SourceQueue) {
			// Keep it, at the tail, so this redrive does not see it again.
			p.res.Skipped++
			o.requeue(t, en, 0, now)
			continue
		}
		o.startMove(t, en, en.SourceQueue, moveRedrive, now)
		p.res.Moved++
	}
	if done {
		sendAfter(t, p.reply, p.res)
	}
	return done
}
