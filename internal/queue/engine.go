package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/storage"
)

// auditSweepInterval is how often the engine removes expired audit events.
const auditSweepInterval = time.Minute

// Engine serves every queue of a node. It runs one owner goroutine per queue;
// its methods are safe for concurrent use and block until the request's
// writes are durable.
type Engine struct {
	store storage.Store
	opts  Options
	clock clock.Clock
	log   *slog.Logger
	mover *mover

	auditSeq atomic.Uint32
	// draining makes receives return at once instead of waiting.
	draining atomic.Bool
	// maxWrites bounds the writes of one round and chunk the messages one
	// step of a purge or redrive touches, both from the store's batch limit.
	maxWrites int
	chunk     int

	hooks ClusterHooks
	// inboxWriter is the part of this node's incoming shards that names it.
	inboxWriter uint64
	inboxMu     sync.Mutex
	inboxLast   uint64

	// adminMu serializes queue creation, update and deletion.
	adminMu sync.Mutex

	mu      sync.RWMutex
	owners  map[string]*owner
	cancels map[string]context.CancelFunc
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
}

// New returns an engine on store. Call Start before using it.
func New(store storage.Store, opts Options) (*Engine, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		store:   store,
		opts:    opts,
		clock:   opts.Clock,
		log:     opts.Logger.With(slog.String("component", "queue")),
		owners:  make(map[string]*owner),
		cancels: make(map[string]context.CancelFunc),
	}
	e.mover = newMover(e)
	if opts.Node != "" {
		e.inboxWriter = nodeShardBits(opts.Node)
	}
	e.maxWrites, e.chunk = 1<<30, chunkSize
	if bl, ok := store.(storage.BatchLimiter); ok && bl.MaxBatchWrites() > 0 {
		e.maxWrites = bl.MaxBatchWrites()
		// A purged or redriven message costs up to four writes.
		e.chunk = max(min(chunkSize, e.maxWrites/4), 1)
	}
	return e, nil
}

// SetClusterHooks connects a cluster node's engine to its cluster. Call it
// before Start.
func (e *Engine) SetClusterHooks(h ClusterHooks) { e.hooks = h }

// Options returns the engine's settings, with defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Start loads every queue from storage and starts serving it. Each queue
// rebuilds its state in its own goroutine; requests wait until it is ready.
// A cluster node serves no queue until it is given one with Serve.
func (e *Engine) Start(ctx context.Context) error {
	var cfgs []Config
	if !e.Clustered() {
		var err error
		if cfgs, err = e.store.Queues(ctx); err != nil {
			return fmt.Errorf("list queues: %w", err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for _, cfg := range cfgs {
		e.startOwnerLocked(cfg, nil)
	}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.mover.run(e.ctx)
	}()
	go func() {
		defer e.wg.Done()
		e.sweepAudit(e.ctx)
	}()
	if e.Clustered() {
		e.log.Info("engine started; queues are served as the cluster assigns them")
	} else {
		e.log.Info("queues loaded", slog.Int("queues", len(cfgs)))
	}
	return nil
}

// Close stops every queue and waits for their goroutines. Requests still
// waiting get ErrQueueNotFound or an empty receive. It does not close the
// store. Close is safe to call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed || e.cancel == nil {
		e.closed = true
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.cancel()
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// StopWaiting ends every waiting receive with an empty reply and makes
// later receives return without waiting. A server calls it when it
// begins to shut down, so long polls do not hold the shutdown up.
func (e *Engine) StopWaiting() {
	e.draining.Store(true)
	e.mu.RLock()
	owners := make([]*owner, 0, len(e.owners))
	for _, o := range e.owners {
		owners = append(owners, o)
	}
	e.mu.RUnlock()
	for _, o := range owners {
		select {
		case o.reqs <- stopWaitingOp{}:
		case <-o.done:
		}
	}
}

// startOwnerLocked starts the owner of a queue, under lease in a cluster
// (nil on a single node).
func (e *Engine) startOwnerLocked(cfg Config, lease *storage.Lease) *owner {
	o := newOwner(e, cfg)
	o.lease.Store(lease)
	ctx, cancel := context.WithCancel(e.ctx)
	e.owners[cfg.Name] = o
	e.cancels[cfg.Name] = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		o.run(ctx)
	}()
	return o
}

func (e *Engine) owner(name string) (*owner, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, ErrClosed
	}
	o, ok := e.owners[name]
	if !ok {
		return nil, e.missing(context.Background(), name)
	}
	return o, nil
}

// exists reports whether a queue exists: served here or, in a cluster,
// stored.
func (e *Engine) exists(name string) bool {
	_, err := e.owner(name)
	return err == nil || errors.Is(err, ErrNotOwner)
}

// Exists reports whether a queue exists on this engine.
func (e *Engine) Exists(name string) bool { return e.exists(name) }

func (e *Engine) sweepAudit(ctx context.Context) {
	t := e.clock.NewTimer()
	defer t.Stop()
	for {
		t.Reset(auditSweepInterval)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		n, err := e.store.ExpireAudit(ctx, e.clock.Now())
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("removing expired audit events failed", slog.Any("error", err))
			}
			continue
		}
		if n > 0 {
			e.log.Debug("removed expired audit events", slog.Int("events", n))
		}
	}
}

// CreateQueue creates a queue, or returns the stored configuration unchanged
// with created=false when the queue exists.
func (e *Engine) CreateQueue(ctx context.Context, cfg Config) (Config, bool, error) {
	if err := e.validateConfig(&cfg); err != nil {
		return Config{}, false, err
	}
	e.adminMu.Lock()
	defer e.adminMu.Unlock()

	now := e.clock.Now()
	cfg.CreatedAt, cfg.UpdatedAt = now, now
	stored, created, err := e.store.CreateQueue(ctx, cfg)
	if err != nil {
		return Config{}, false, e.storeError("create queue "+cfg.Name, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return Config{}, false, ErrClosed
	}
	if _, running := e.owners[stored.Name]; !running && !e.Clustered() {
		e.startOwnerLocked(stored, nil)
	}
	if created {
		e.log.Info("queue created", slog.String("queue", cfg.Name))
		if e.hooks.Created != nil {
			e.hooks.Created(cfg.Name)
		}
	}
	return stored, created, nil
}

// UpdateQueue replaces the configuration of an existing queue.
func (e *Engine) UpdateQueue(ctx context.Context, cfg Config) (Config, error) {
	if err := e.validateConfig(&cfg); err != nil {
		return Config{}, err
	}
	e.adminMu.Lock()
	defer e.adminMu.Unlock()

	o, err := e.owner(cfg.Name)
	if err != nil {
		return Config{}, err
	}
	old, err := e.store.Queue(ctx, cfg.Name)
	if err != nil {
		return Config{}, e.storeError("read queue "+cfg.Name, err)
	}
	cfg.CreatedAt = old.CreatedAt
	cfg.UpdatedAt = e.clock.Now()
	if err := e.store.UpdateQueue(ctx, cfg); err != nil {
		return Config{}, e.storeError("update queue "+cfg.Name, err)
	}
	o.shared.Store(&cfg)
	r := newReply[struct{}]()
	if err := o.submit(ctx, &configOp{cfg: cfg, reply: r}); err != nil {
		return Config{}, err
	}
	if _, err := await(ctx, r); err != nil {
		return Config{}, err
	}
	e.log.Info("queue updated", slog.String("queue", cfg.Name))
	return cfg, nil
}

// Queue returns a queue's configuration.
func (e *Engine) Queue(ctx context.Context, name string) (Config, error) {
	o, cfg, err := e.config(ctx, name)
	if err != nil || o == nil {
		// A queue served elsewhere was just read from storage.
		return cfg, err
	}
	cfg, err = e.store.Queue(ctx, name)
	if err != nil {
		return Config{}, e.storeError("read queue "+name, err)
	}
	return cfg, nil
}

// Queues returns every queue's configuration, ordered by name.
func (e *Engine) Queues(ctx context.Context) ([]Config, error) {
	cfgs, err := e.store.Queues(ctx)
	if err != nil {
		return nil, e.storeError("list queues", err)
	}
	return cfgs, nil
}

// DeleteQueue stops a queue's work and removes it with all its messages.
func (e *Engine) DeleteQueue(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	e.adminMu.Lock()
	defer e.adminMu.Unlock()

	e.mu.Lock()
	o, ok := e.owners[name]
	cancel := e.cancels[name]
	delete(e.owners, name)
	delete(e.cancels, name)
	e.mu.Unlock()
	if !ok {
		return e.missing(ctx, name)
	}
	cancel()
	<-o.done
	if err := e.store.DeleteQueue(ctx, name); err != nil {
		return e.storeError("delete queue "+name, err)
	}
	e.log.Info("queue deleted", slog.String("queue", name))
	return nil
}

// storeError maps a storage error: a missing record becomes
// ErrQueueNotFound, anything else ErrUnavailable.
func (e *Engine) storeError(what string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return ErrQueueNotFound
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e.log.Error("storage request failed", slog.String("op", what), slog.Any("error", err))
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
}

// await waits for an op's reply. When ctx ends first the op still completes;
// only its reply is lost.
func await[T any](ctx context.Context, r reply[T]) (T, error) {
	select {
	case res := <-r:
		return res.val, res.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// config returns a queue's owner and configuration. In a cluster, for a queue
// that another node serves, it returns a nil owner and the stored
// configuration.
// It reads storage once at most, so a send through a node that does not
// serve the queue costs one read.
func (e *Engine) config(ctx context.Context, name string) (*owner, Config, error) {
	e.mu.RLock()
	o, ok := e.owners[name]
	closed := e.closed
	e.mu.RUnlock()
	switch {
	case closed:
		return nil, Config{}, ErrClosed
	case ok:
		return o, *o.shared.Load(), nil
	case !e.Clustered():
		return nil, Config{}, ErrQueueNotFound
	}
	cfg, err := e.store.Queue(ctx, name)
	if err != nil {
		return nil, Config{}, e.storeError("read queue "+name, err)
	}
	return nil, cfg, nil
}

// validateSend checks one message against the limits of the queue cfg.
func (e *Engine) validateSend(cfg *Config, m *SendRequest) error {
	if limit := e.maxMessageSize(cfg); int64(len(m.Data)) > limit {
		return &TooLargeError{Size: int64(len(m.Data)), Limit: limit}
	}
	if m.Delay != nil && (*m.Delay < 0 || *m.Delay >= e.opts.MaxTTL) {
		return invalid("delay", fmt.Sprint(m.Delay.Milliseconds()), "must be between 0 and %d milliseconds", e.opts.MaxTTL.Milliseconds()-1)
	}
	if m.Expiration < 0 || m.Expiration > e.opts.MaxTTL {
		return invalid("expiration", fmt.Sprint(int64(m.Expiration/time.Second)), "must be between 1 and %d seconds", int64(e.opts.MaxTTL/time.Second))
	}
	delay := cfg.DefaultDelay
	if m.Delay != nil {
		delay = *m.Delay
	}
	expiration := m.Expiration
	if expiration == 0 {
		expiration = e.retention(cfg)
	}
	if delay >= expiration {
		return invalid("delay", fmt.Sprint(delay.Milliseconds()), "must be shorter than the message's expiration of %d seconds", int64(expiration/time.Second))
	}
	if strings.ContainsAny(m.ContentType, "\r\n") || len(m.ContentType) > 255 {
		return invalid("contentType", m.ContentType, "must be a media type of at most 255 characters on one line")
	}
	return nil
}

// Send stores messages in a queue, all in one durable batch. It returns
// when every message is on disk. An invalid message fails the whole call
// before anything is stored; use ValidateSend to check messages one by one.
func (e *Engine) Send(ctx context.Context, queue string, msgs []SendRequest) ([]SendResult, error) {
	if len(msgs) == 0 {
		return nil, invalid("messages", "", "send at least one message")
	}
	if len(msgs) > e.opts.MaxBatch {
		return nil, invalid("messages", fmt.Sprint(len(msgs)), "send at most %d messages in one batch", e.opts.MaxBatch)
	}
	o, cfg, err := e.config(ctx, queue)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		if err := e.validateSend(&cfg, &msgs[i]); err != nil {
			return nil, err
		}
	}
	if o == nil {
		return e.sendIncoming(ctx, &cfg, msgs)
	}
	r := newReply[[]SendResult]()
	if err := o.submit(ctx, &sendOp{msgs: msgs, reply: r}); err != nil {
		return nil, err
	}
	return await(ctx, r)
}

// ValidateSend checks one message against a queue's limits without sending.
func (e *Engine) ValidateSend(ctx context.Context, queue string, m *SendRequest) error {
	_, cfg, err := e.config(ctx, queue)
	if err != nil {
		return err
	}
	return e.validateSend(&cfg, m)
}

// Receive moves up to req.Count available messages to inflight and returns
// them. With a wait, it returns as soon as a message becomes available, or
// with none when the wait is over.
func (e *Engine) Receive(ctx context.Context, queue string, req ReceiveRequest) ([]Delivery, error) {
	if req.Count < 1 || req.Count > e.opts.MaxReceiveCount {
		return nil, invalid("count", fmt.Sprint(req.Count), "must be between 1 and %d", e.opts.MaxReceiveCount)
	}
	if req.Wait != nil && (*req.Wait < 0 || *req.Wait > e.opts.MaxReceiveWait) {
		return nil, invalid("wait", fmt.Sprint(req.Wait.Milliseconds()), "must be between 0 and %d milliseconds", e.opts.MaxReceiveWait.Milliseconds())
	}
	if req.Visibility != nil && (*req.Visibility < 0 || *req.Visibility > e.opts.MaxVisibility) {
		return nil, invalid("visibility", fmt.Sprint(int64(*req.Visibility/time.Second)), "must be between 0 and %d seconds", int64(e.opts.MaxVisibility/time.Second))
	}
	o, err := e.owner(queue)
	if err != nil {
		return nil, err
	}
	w := &waiter{r: newReply[[]Delivery]()}
	if err := o.submit(ctx, &receiveOp{count: req.Count, visibility: req.Visibility, wait: req.Wait, w: w}); err != nil {
		return nil, err
	}
	select {
	case res := <-w.r:
		return res.val, res.err
	case <-ctx.Done():
		// Messages already handed to this waiter time out and come back.
		_ = o.submit(context.WithoutCancel(ctx), &cancelOp{w: w})
		return nil, ctx.Err()
	}
}

// Ack deletes one delivered message. It returns ErrNotInflight when id is not
// a current delivery.
func (e *Engine) Ack(ctx context.Context, queue string, id uuid.UUID) error {
	errs, err := e.AckBatch(ctx, queue, []uuid.UUID{id})
	if err != nil {
		return err
	}
	return errs[0]
}

// AckBatch deletes delivered messages in one durable batch and returns one
// error per id (nil for success, ErrNotInflight for a stale id).
func (e *Engine) AckBatch(ctx context.Context, queue string, ids []uuid.UUID) ([]error, error) {
	if len(ids) == 0 {
		return nil, invalid("queueMessageIds", "", "give at least one id")
	}
	if len(ids) > e.opts.MaxBatch {
		return nil, invalid("queueMessageIds", fmt.Sprint(len(ids)), "ack at most %d messages in one batch", e.opts.MaxBatch)
	}
	o, err := e.owner(queue)
	if err != nil {
		return nil, err
	}
	r := newReply[[]error]()
	if err := o.submit(ctx, &ackOp{ids: ids, reply: r}); err != nil {
		return nil, err
	}
	return await(ctx, r)
}

// Nack returns a delivered message to its queue with a new id, now or after
// delay. Past the queue's retry count it goes to the dead-letter queue.
func (e *Engine) Nack(ctx context.Context, queue string, id uuid.UUID, delay time.Duration) (NackResult, error) {
	if delay < 0 || delay >= e.opts.MaxTTL {
		return NackResult{}, invalid("delay", fmt.Sprint(delay.Milliseconds()), "must be between 0 and %d milliseconds", e.opts.MaxTTL.Milliseconds()-1)
	}
	o, err := e.owner(queue)
	if err != nil {
		return NackResult{}, err
	}
	r := newReply[NackResult]()
	if err := o.submit(ctx, &nackOp{id: id, delay: delay, reply: r}); err != nil {
		return NackResult{}, err
	}
	return await(ctx, r)
}

// Extend sets the deadline of a delivered message to visibility from now and
// returns the new deadline.
func (e *Engine) Extend(ctx context.Context, queue string, id uuid.UUID, visibility time.Duration) (time.Time, error) {
	if visibility < 0 || visibility > e.opts.MaxVisibility {
		return time.Time{}, invalid("visibility", fmt.Sprint(int64(visibility/time.Second)), "must be between 0 and %d seconds", int64(e.opts.MaxVisibility/time.Second))
	}
	o, err := e.owner(queue)
	if err != nil {
		return time.Time{}, err
	}
	r := newReply[time.Time]()
	if err := o.submit(ctx, &extendOp{id: id, visibility: visibility, reply: r}); err != nil {
		return time.Time{}, err
	}
	return await(ctx, r)
}

// Purge removes every available, delayed and inflight message of a queue and
// returns how many it removed. Messages moving to a dead-letter queue finish
// their move.
func (e *Engine) Purge(ctx context.Context, queue string) (int64, error) {
	o, err := e.owner(queue)
	if err != nil {
		return 0, err
	}
	r := newReply[int64]()
	if err := o.submit(ctx, &purgeOp{reply: r}); err != nil {
		return 0, err
	}
	return await(ctx, r)
}

// Redrive moves up to max available messages of a dead-letter queue back to
// the queues they came from (all of them when max is zero).
func (e *Engine) Redrive(ctx context.Context, queue string, max int) (RedriveResult, error) {
	if max < 0 {
		return RedriveResult{}, invalid("max", fmt.Sprint(max), "must be zero (all) or positive")
	}
	o, err := e.owner(queue)
	if err != nil {
		return RedriveResult{}, err
	}
	r := newReply[RedriveResult]()
	if err := o.submit(ctx, &redriveOp{max: max, reply: r}); err != nil {
		return RedriveResult{}, err
	}
	return await(ctx, r)
}

// Stats returns a queue's counts and totals.
func (e *Engine) Stats(ctx context.Context, queue string) (Stats, error) {
	o, cfg, err := e.config(ctx, queue)
	if err != nil {
		return Stats{}, err
	}
	if o == nil {
		return Stats{}, ErrNotOwner
	}
	s, err := e.ownerStats(ctx, o)
	if err != nil {
		return Stats{}, err
	}
	if cfg.DeadLetterQueue != "" {
		if dlq, err := e.owner(cfg.DeadLetterQueue); err == nil {
			ds, err := e.ownerStats(ctx, dlq)
			if err != nil {
				return Stats{}, err
			}
			s.DeadLettered = ds.Available + ds.Inflight + ds.Delayed
		}
	}
	return s, nil
}

func (e *Engine) ownerStats(ctx context.Context, o *owner) (Stats, error) {
	r := newReply[Stats]()
	if err := o.submit(ctx, &statsOp{reply: r}); err != nil {
		return Stats{}, err
	}
	return await(ctx, r)
}

// Payload returns the payload of a message by its payload id.
func (e *Engine) Payload(ctx context.Context, queue string, messageID uuid.UUID) (storage.Payload, error) {
	p, err := e.store.Payload(ctx, storage.PayloadKey{Queue: queue, MessageID: messageID})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Payload{}, ErrMessageNotFound
	}
	if err != nil {
		return storage.Payload{}, e.storeError("read payload", err)
	}
	return p, nil
}

// PayloadOf returns the payload of a delivered (or buffered available)
// message by its queueMessageId.
func (e *Engine) PayloadOf(ctx context.Context, queue string, id uuid.UUID) (storage.Payload, error) {
	o, err := e.owner(queue)
	if err != nil {
		return storage.Payload{}, err
	}
	r := newReply[storage.PayloadKey]()
	if err := o.submit(ctx, &lookupOp{id: id, reply: r}); err != nil {
		return storage.Payload{}, err
	}
	key, err := await(ctx, r)
	if err != nil {
		return storage.Payload{}, err
	}
	return e.Payload(ctx, queue, key.MessageID)
}

// Audit returns the events of a message, across every queue it passed
// through, in time order.
func (e *Engine) Audit(ctx context.Context, queue string, messageID uuid.UUID) ([]AuditEvent, error) {
	if _, _, err := e.config(ctx, queue); err != nil {
		return nil, err
	}
	evs, err := e.store.Audit(ctx, messageID)
	if err != nil {
		return nil, e.storeError("read audit", err)
	}
	if len(evs) == 0 {
		return nil, ErrMessageNotFound
	}
	return evs, nil
}
