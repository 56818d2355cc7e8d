package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/queue"
)

// settleTimeout bounds the acks and nacks that follow a POST. They run on a
// context detached from the sender's, so that a stop does not leave
// entries that were delivered to be sent again.
const settleTimeout = 10 * time.Second

// remote is one remote region: its outbox, its transport and what the
// status reports about it.
type remote struct {
	name      string
	outbox    string
	endpoints []string
	transport *transport

	transferred atomic.Int64
	failures    atomic.Int64

	mu sync.Mutex
	// Fields below are guarded by mu.
	lastAttempt time.Time
	lastSuccess time.Time
	lastError   string
	endpoint    string
}

// recordAttempt notes the outcome of one POST.
func (rm *remote) recordAttempt(now time.Time, endpoint string, err error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.lastAttempt = now
	if err != nil {
		rm.lastError = err.Error()
		return
	}
	rm.lastError = ""
	rm.lastSuccess = now
	rm.endpoint = endpoint
}

// sender drains the outbox of one remote region. Its fields are used by its
// own goroutine only.
type sender struct {
	r  *Router
	rm *remote

	// consecutive counts POSTs that failed in a row. It sets the pause
	// before the next receive.
	consecutive int
	// failed counts failed entries since the last log; lastLog is when
	// that log was written.
	failed  int
	lastLog time.Time
}

func newSender(r *Router, rm *remote) *sender {
	return &sender{r: r, rm: rm}
}

// item is one received outbox entry with its decoded envelope.
type item struct {
	d    queue.Delivery
	env  Envelope
	size int
}

// run receives batches from the outbox and sends them until ctx ends.
func (s *sender) run(ctx context.Context) {
	engine := s.r.engine
	opts := engine.Options()
	wait := opts.MaxReceiveWait
	// Received entries stay inflight while a POST tries every endpoint,
	// plus one more request timeout for reading them and the settlement.
	// A sender that stops without settling them makes them wait this long.
	visibility := s.r.cfg.RequestTimeout*time.Duration(len(s.rm.endpoints)+1) + settleTimeout
	visibility = min(visibility, opts.MaxVisibility)
	count := min(s.r.cfg.BatchSize, opts.MaxReceiveCount)
	log := s.r.log.With(slog.String("remote_region", s.rm.name))
	log.Debug("sender started", slog.String("queue", s.rm.outbox))

	for ctx.Err() == nil {
		started := s.r.clock.Now()
		ds, err := engine.Receive(ctx, s.rm.outbox, queue.ReceiveRequest{Count: count, Wait: &wait, Visibility: &visibility})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, queue.ErrQueueNotFound) {
				err = s.r.ensureOutbox(ctx, s.rm.outbox)
			}
			if errors.Is(err, queue.ErrNotOwner) {
				// In a cluster the node that serves the outbox sends it.
				err = nil
			}
			if err != nil {
				log.Warn("receiving from the outbox failed", slog.Any("error", err))
			}
			s.pause(ctx)
			continue
		}
		if len(ds) == 0 {
			// An empty receive that did not wait means the engine stopped
			// waiting because the server is shutting down. Sleep a little
			// instead of spinning until the Router is closed.
			if s.r.clock.Now().Sub(started) < wait/10 {
				s.sleep(ctx, wait/10)
			}
			continue
		}
		if !s.transfer(ctx, ds) {
			s.pause(ctx)
		}
	}
	log.Debug("sender stopped")
}

// pause waits before the next receive after a failure, longer after each
// failure in a row, so that an unreachable region costs few attempts.
func (s *sender) pause(ctx context.Context) {
	s.consecutive++
	s.sleep(ctx, s.backoff(s.consecutive))
}

// sleep waits for d or until ctx ends.
func (s *sender) sleep(ctx context.Context, d time.Duration) {
	t := s.r.clock.NewTimer()
	defer t.Stop()
	t.Reset(d)
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

// backoff returns the delay after the given number of attempts: the base
// doubled per earlier attempt, at most the maximum, and a random amount
// between half of that and all of it, so that retries spread out.
func (s *sender) backoff(attempts int) time.Duration {
	cfg := &s.r.cfg
	d := cfg.BackoffMax
	if shift := attempts - 1; shift < 30 {
		if b := cfg.BackoffBase << max(shift, 0); b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// transfer sends one received batch and acks or nacks each entry. It
// returns false when the region could not be reached.
func (s *sender) transfer(ctx context.Context, ds []queue.Delivery) bool {
	items, settle := s.prepare(ctx, ds)
	defer settle.run(s)
	if len(items) == 0 {
		return true
	}
	s.refreshConfigs(ctx, items)

	for len(items) > 0 {
		n := s.chunk(items)
		batch := items[:n]
		items = items[n:]
		if !s.post(ctx, batch, settle) {
			// The region is unreachable: the entries left go back too.
			for i := range items {
				settle.retry(&items[i].d)
			}
			return false
		}
	}
	return true
}

// prepare reads and decodes the payload of each delivery. Entries that
// cannot be sent are settled right away: expired messages go back to the
// engine, which drops them, and unreadable entries are retried later.
func (s *sender) prepare(ctx context.Context, ds []queue.Delivery) ([]item, *settlement) {
	settle := &settlement{}
	now := s.r.clock.Now()
	items := make([]item, 0, len(ds))
	for i := range ds {
		d := &ds[i]
		p, err := s.r.engine.Payload(ctx, s.rm.outbox, d.MessageID)
		if err != nil {
			if ctx.Err() == nil {
				s.noteFailure(1, fmt.Errorf("read outbox entry %s: %w", d.MessageID, err))
			}
			settle.retry(d)
			continue
		}
		env, err := decodeEnvelope(p.Data)
		if err != nil {
			// Only this server writes outboxes, so this is a bug or a
			// damaged store. The entry is retried until it expires, so
			// that it shows in the backlog and the failure count.
			s.noteFailure(1, fmt.Errorf("outbox entry %s: %w", d.MessageID, err))
			settle.retry(d)
			continue
		}
		if env.Kind == KindMessage && !now.Before(env.ExpiresAt) {
			settle.expire(d)
			continue
		}
		items = append(items, item{d: *d, env: env, size: len(p.Data)})
	}
	return items, settle
}

// refreshConfigs replaces the configuration in each envelope with the
// queue's current one, so that whatever order entries arrive in, the
// destination gets the configuration as it is now. Envelopes of queues
// deleted here keep the configuration they were written with.
func (s *sender) refreshConfigs(ctx context.Context, items []item) {
	current := map[string]*QueueConfig{}
	for i := range items {
		env := &items[i].env
		c, ok := current[env.Queue]
		if !ok {
			if cfg, err := s.r.engine.Queue(ctx, env.Queue); err == nil {
				c = wireConfig(&cfg)
			}
			current[env.Queue] = c
		}
		if c != nil {
			env.Config = c
		}
	}
}

// chunk returns how many of items, at least one, fit in one POST.
func (s *sender) chunk(items []item) int {
	total := 0
	for i := range items {
		total += items[i].size
		if i > 0 && total > s.r.cfg.PostBytes {
			return i
		}
	}
	return len(items)
}

// post sends one batch and settles each of its entries. It returns false
// when no endpoint of the region returned a reply.
func (s *sender) post(ctx context.Context, batch []item, settle *settlement) bool {
	req := TransferRequest{Source: s.r.cfg.Local, Now: s.r.clock.Now(), Entries: make([]Envelope, len(batch))}
	for i := range batch {
		req.Entries[i] = batch[i].env
	}
	resp, endpoint, err := s.rm.transport.post(ctx, &req)
	s.rm.recordAttempt(s.r.clock.Now(), endpoint, err)
	if err != nil {
		for i := range batch {
			settle.retry(&batch[i].d)
		}
		if ctx.Err() == nil {
			s.noteFailure(len(batch), err)
		}
		return false
	}

	s.noteReached()
	failed := 0
	var firstFailure EntryResult
	for i, res := range resp.Results {
		d := &batch[i].d
		switch {
		case res.Status == http.StatusOK:
			settle.ack(d)
		case res.Status == http.StatusGone:
			settle.expire(d)
		default:
			settle.retry(d)
			if failed == 0 {
				firstFailure = res
			}
			failed++
		}
	}
	if failed > 0 {
		s.noteFailure(failed, &entryError{region: s.rm.name, result: firstFailure, count: failed})
	}
	return true
}

// noteFailure counts failed entries and logs them at most once per log
// interval.
func (s *sender) noteFailure(entries int, err error) {
	s.rm.failures.Add(int64(entries))
	s.failed += entries
	now := s.r.clock.Now()
	if !s.lastLog.IsZero() && now.Sub(s.lastLog) < s.r.cfg.LogInterval {
		return
	}
	level := slog.LevelWarn
	var se *statusError
	if errors.As(err, &se) && se.needsOperator() {
		level = slog.LevelError
	}
	s.r.log.Log(context.Background(), level, "transfers to a remote region are failing; the entries are retried with backoff",
		slog.String("remote_region", s.rm.name),
		slog.Int("failed_entries", s.failed),
		slog.Duration("log_interval", s.r.cfg.LogInterval),
		slog.Any("error", err))
	s.lastLog = now
	s.failed = 0
}

// noteReached resets the failure state after a POST that got a reply, and
// logs the recovery once.
func (s *sender) noteReached() {
	if s.consecutive > 0 {
		s.r.log.Info("remote region reachable again", slog.String("remote_region", s.rm.name))
	}
	s.consecutive = 0
}

// settlement collects the outcome of each entry of one received batch and
// applies it to the outbox.
type settlement struct {
	acks    []*queue.Delivery
	retries []*queue.Delivery
	expired []*queue.Delivery
}

func (st *settlement) ack(d *queue.Delivery)    { st.acks = append(st.acks, d) }
func (st *settlement) retry(d *queue.Delivery)  { st.retries = append(st.retries, d) }
func (st *settlement) expire(d *queue.Delivery) { st.expired = append(st.expired, d) }

// run acks the delivered entries and nacks the others: a failed entry with
// a backoff from its receive count, an expired one so that the engine
// drops and audits it. An entry whose ack or nack fails is delivered again
// after its visibility timeout; the destination then reports it as a
// duplicate.
func (st *settlement) run(s *sender) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	engine, outbox := s.r.engine, s.rm.outbox

	if len(st.acks) > 0 {
		ids := make([]uuid.UUID, len(st.acks))
		for i, d := range st.acks {
			ids[i] = d.QueueMessageID
		}
		for _, part := range splitIDs(ids, engine.Options().MaxBatch) {
			if _, err := engine.AckBatch(ctx, outbox, part); err != nil {
				s.r.log.Warn("acking sent outbox entries failed; they are sent again after their visibility timeout",
					slog.String("queue", outbox), slog.Any("error", err))
			}
		}
		s.rm.transferred.Add(int64(len(st.acks)))
	}

	now := s.r.clock.Now()
	maxDelay := engine.Options().MaxTTL - time.Millisecond
	for _, d := range st.retries {
		s.nack(ctx, d, min(s.backoff(d.ReceiveCount), maxDelay))
	}
	for _, d := range st.expired {
		// The outbox entry expires with its message; an entry that is not
		// expired yet by the engine's clock waits until it is.
		s.nack(ctx, d, min(max(d.ExpiresAt.Sub(now), 0), maxDelay))
	}
}

func (s *sender) nack(ctx context.Context, d *queue.Delivery, delay time.Duration) {
	if _, err := s.r.engine.Nack(ctx, s.rm.outbox, d.QueueMessageID, delay); err != nil {
		s.r.log.Warn("returning an outbox entry failed; it comes back after its visibility timeout",
			slog.String("queue", s.rm.outbox), slog.String("msg_id", d.MessageID.String()), slog.Any("error", err))
	}
}

func splitIDs(ids []uuid.UUID, size int) [][]uuid.UUID {
	var out [][]uuid.UUID
	for len(ids) > size {
		out = append(out, ids[:size])
		ids = ids[size:]
	}
	return append(out, ids)
}
