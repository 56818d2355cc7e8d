package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/qakka/qakka/internal/storage"
)

type moveKind uint8

const (
	moveDeadLetter moveKind = iota
	moveRedrive
)

// move is an entry on its way from one queue to another.
type move struct {
	source string
	entry  storage.Entry
	kind   moveKind
}

// mover hands moving entries to their target queues. One goroutine does it
// for the whole engine, so that no queue owner ever waits for another.
//
// A move is durable at both ends: the source stored the entry as moving, and
// the target's commit stores the new entry and deletes the moving one in one
// batch. After a crash the source finds its moving entries and sends them
// again. The target deletes the moving entry in the same batch that stores
// the new one, so a move that committed is never sent again.
type mover struct {
	e *Engine

	mu      sync.Mutex
	pending []move
	wake    chan struct{}
}

func newMover(e *Engine) *mover {
	return &mover{e: e, wake: make(chan struct{}, 1)}
}

// enqueue adds a move without blocking.
func (m *mover) enqueue(mv move) {
	m.mu.Lock()
	m.pending = append(m.pending, mv)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mover) next() (move, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) == 0 {
		return move{}, false
	}
	mv := m.pending[0]
	m.pending[0] = move{}
	m.pending = m.pending[1:]
	return mv, true
}

func (m *mover) run(ctx context.Context) {
	for {
		mv, ok := m.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				continue
			}
		}
		for {
			err := m.moveOne(ctx, mv)
			if err == nil || ctx.Err() != nil {
				break
			}
			m.e.log.Warn("moving message failed; retrying",
				slog.String("queue", mv.source), slog.String("target", mv.entry.TargetQueue),
				slog.String("msg_id", mv.entry.MessageID.String()), slog.Any("error", err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryDelay):
			}
		}
	}
}

// moveOne hands one entry to its target and reports the outcome to the
// source.
func (m *mover) moveOne(ctx context.Context, mv move) error {
	e := m.e
	src, err := e.owner(mv.source)
	if err != nil {
		// The source was deleted, and its moving entries with it.
		return nil
	}

	payload, err := e.store.Payload(ctx, storage.PayloadKey{Queue: mv.source, MessageID: mv.entry.MessageID})
	if errors.Is(err, storage.ErrNotFound) {
		return m.finish(ctx, src, mv, moveGone)
	}
	if err != nil {
		return err
	}

	target, err := e.owner(mv.entry.TargetQueue)
	if errors.Is(err, ErrQueueNotFound) {
		if mv.kind != moveDeadLetter {
			return m.finish(ctx, src, mv, moveNoTarget)
		}
		cfg := Config{Name: mv.entry.TargetQueue}
		if _, _, err := e.CreateQueue(ctx, cfg); err != nil {
			return err
		}
		target, err = e.owner(mv.entry.TargetQueue)
	}
	if errors.Is(err, ErrNotOwner) {
		if err := m.moveRemote(ctx, src, mv, payload); err != nil {
			return err
		}
		return m.finish(ctx, src, mv, moveDone)
	}
	if err != nil {
		return err
	}

	r := newReply[struct{}]()
	if err := target.submit(ctx, &adoptOp{move: mv, payload: payload, reply: r}); err != nil {
		return err
	}
	res := <-r
	if res.err != nil {
		return res.err
	}
	return m.finish(ctx, src, mv, moveDone)
}

func (m *mover) finish(ctx context.Context, src *owner, mv move, outcome moveOutcome) error {
	r := newReply[struct{}]()
	if err := src.submit(ctx, &moveDoneOp{move: mv, outcome: outcome, reply: r}); err != nil {
		if errors.Is(err, ErrQueueNotFound) {
			return nil
		}
		return err
	}
	return (<-r).err
}

type moveOutcome uint8

const (
	moveDone moveOutcome = iota
	// moveGone: the payload no longer exists (expired or purged).
	moveGone
	// moveNoTarget: a redrive target was deleted; the entry stays.
	moveNoTarget
)

// adoptOp stores a moving entry in its target queue and deletes it, with its
// payload, from the source, in one batch.
type adoptOp struct {
	move    move
	payload storage.Payload
	reply   reply[struct{}]
}

func (p *adoptOp) fail(err error) { p.reply.send(struct{}{}, err) }

func (p *adoptOp) stage(o *owner, t *txn) {
	now := o.e.clock.Now()
	old := p.move.entry

	t.deleteEntry(old.Key())
	t.deletePayload(p.move.source, old.MessageID)

	pl := p.payload
	pl.Queue = o.name
	t.putPayload(pl)

	en := old
	en.Queue = o.name
	en.ID = newID()
	en.Seq = o.nextSeq()
	en.CreatedAt = now
	en.DueAt = time.Time{}
	en.TargetQueue = ""
	action := ActionDeadLettered
	if p.move.kind == moveDeadLetter {
		en.SourceQueue = p.move.source
	} else {
		action = ActionRedriven
		en.SourceQueue = ""
		en.ReceiveCount = 0
	}
	o.addAvailable(t, en)
	t.audit(o.auditEvent(&en, action, now, "from "+p.move.source))
	sendAfter(t, p.reply, struct{}{})
}

// moveDoneOp reports to the source queue how a move ended.
type moveDoneOp struct {
	move    move
	outcome moveOutcome
	reply   reply[struct{}]
}

func (p *moveDoneOp) fail(err error) { p.reply.send(struct{}{}, err) }

func (p *moveDoneOp) stage(o *owner, t *txn) {
	now := o.e.clock.Now()
	en, ok := o.moving[p.move.entry.Seq]
	if !ok {
		p.reply.send(struct{}{}, nil)
		return
	}
	delete(o.moving, en.Seq)
	switch p.outcome {
	case moveDone:
		// The target's batch deleted the moving entry.
		o.live[storage.ShardRef{State: en.State, Shard: en.Shard}]--
		t.metaChanged = true
		if p.move.kind == moveDeadLetter {
			o.meta.Totals.DeadLettered++
		} else {
			o.meta.Totals.Redriven++
		}
	case moveGone:
		o.removeEntry(t, en)
		o.meta.Totals.Expired++
		t.audit(o.auditEvent(en, ActionExpired, now, "payload gone before the move to "+en.TargetQueue))
	case moveNoTarget:
		o.removeEntry(t, en)
		o.requeue(t, en, 0, now)
	}
	sendAfter(t, p.reply, struct{}{})
}
