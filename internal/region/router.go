package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
)

// OutboxPrefix starts the name of every outbox queue. The REST and SQS
// APIs reserve it: clients can neither create such a queue nor write to it.
const OutboxPrefix = "_transfer."

// TransferPath is the path of the receiving endpoint on every server.
const TransferPath = "/api/regions/transfer"

// OutboxName returns the name of the outbox queue of a remote region.
func OutboxName(region string) string { return OutboxPrefix + region }

// IsReserved reports whether a queue name is reserved for an outbox.
func IsReserved(queueName string) bool { return strings.HasPrefix(queueName, OutboxPrefix) }

// ReservedError returns the error of a request that names an outbox queue
// in field.
func ReservedError(field, name string) error {
	return &queue.InvalidError{Field: field, Value: name,
		Reason: "names starting with " + OutboxPrefix + " are reserved for the transfer log between regions"}
}

// outboxMaxMessageSize is the payload limit of an outbox queue. It is
// unbounded because the message inside an envelope has already passed its
// own queue's limit, and the envelope adds base64 and a configuration.
const outboxMaxMessageSize = math.MaxInt64

// Router sends messages and queue configurations to the regions they name
// and receives those of other regions. Its methods are safe for concurrent
// use.
type Router struct {
	engine  *queue.Engine
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	remotes []*remote
	metrics *metrics
	// httpTransport is the transport the Router made itself, closed by
	// Close; nil when Config.Transport was given.
	httpTransport *http.Transport

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	closed  bool
}

// New checks cfg and returns a Router over engine, which must be started.
// It starts nothing: call Start to create the outboxes and run the
// senders.
func New(engine *queue.Engine, cfg Config) (*Router, error) {
	if engine == nil {
		return nil, errors.New("region: engine is required")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		engine: engine,
		cfg:    cfg,
		log:    cfg.Logger.With(slog.String("component", "region"), slog.String("region", cfg.Local)),
		clock:  cfg.Clock,
	}

	rt := cfg.Transport
	if rt == nil {
		r.httpTransport = http.DefaultTransport.(*http.Transport).Clone()
		rt = r.httpTransport
	}
	hc := &http.Client{Transport: rt}
	// Remote regions are kept in name order, which is the order of the
	// destinations in replies and statuses.
	remotes := slices.SortedFunc(slices.Values(cfg.Remotes), func(a, b Remote) int { return strings.Compare(a.Name, b.Name) })
	for _, rc := range remotes {
		r.remotes = append(r.remotes, &remote{
			name:      rc.Name,
			outbox:    OutboxName(rc.Name),
			endpoints: rc.Endpoints,
			transport: newTransport(hc, rc, cfg.RequestTimeout),
		})
	}

	m, err := newMetrics(r, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// Local returns the name of the local region.
func (r *Router) Local() string { return r.cfg.Local }

// Accepting reports whether the transfer endpoint accepts requests, that
// is whether credentials for other regions are configured.
func (r *Router) Accepting() bool { return r.cfg.Accept.Username != "" }

func (r *Router) remote(name string) *remote {
	for _, rm := range r.remotes {
		if rm.name == name {
			return rm
		}
	}
	return nil
}

// Start creates the outbox of every remote region that lacks one and
// starts one sender per remote region. It returns once the outboxes exist;
// the senders run until Close.
func (r *Router) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return errors.New("region: Start called twice or after Close")
	}
	for _, rm := range r.remotes {
		if err := r.ensureOutbox(ctx, rm.outbox); err != nil {
			return err
		}
	}
	r.warnAboutOrphans(ctx)

	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.started = true
	for _, rm := range r.remotes {
		s := newSender(r, rm)
		r.wg.Go(func() { s.run(runCtx) })
	}
	r.log.Info("regions started",
		slog.Any("remotes", r.Regions()[1:]),
		slog.Bool("accepting_transfers", r.Accepting()))
	if !r.Accepting() {
		r.log.Debug("transfers from other regions are off: configure the credentials other regions present to accept them")
	}
	return nil
}

// Close stops the senders and waits for them. A POST in progress is
// cancelled and its entries go back to the outbox for a retry. Close does
// not close the engine, and is safe to call more than once.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	cancel := r.cancel
	r.mu.Unlock()

	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
	if r.httpTransport != nil {
		r.httpTransport.CloseIdleConnections()
	}
	return nil
}

// ensureOutbox creates an outbox queue if it does not exist. An existing
// outbox keeps its configuration.
func (r *Router) ensureOutbox(ctx context.Context, name string) error {
	_, created, err := r.engine.CreateQueue(ctx, queue.Config{
		Name:           name,
		MaxMessageSize: outboxMaxMessageSize,
		Retention:      r.engine.Options().MaxTTL,
	})
	if err != nil {
		return fmt.Errorf("create outbox %s: %w", name, err)
	}
	if created {
		r.log.Info("outbox created", slog.String("queue", name))
	}
	return nil
}

// warnAboutOrphans logs the outboxes of regions that are no longer
// configured and still hold entries. Nothing sends them; they expire.
func (r *Router) warnAboutOrphans(ctx context.Context) {
	cfgs, err := r.engine.Queues(ctx)
	if err != nil {
		return
	}
	for i := range cfgs {
		name := cfgs[i].Name
		if !IsReserved(name) || r.remote(strings.TrimPrefix(name, OutboxPrefix)) != nil {
			continue
		}
		s, err := r.engine.Stats(ctx, name)
		if err != nil || s.Available+s.Inflight+s.Delayed == 0 {
			continue
		}
		r.log.Warn("outbox of an unconfigured region contains entries; nothing sends them until the region is configured again, and they expire",
			slog.String("queue", name),
			slog.Int64("entries", s.Available+s.Inflight+s.Delayed))
	}
}

// SendResult describes a send to one or more regions.
type SendResult struct {
	// Destinations are the regions the messages go to.
	Destinations Destinations
	// Messages has one result per message, in request order. QueueMessageID
	// is uuid.Nil when the local region is not a destination.
	Messages []queue.SendResult
}

// Send stores msgs in queue name, in every region that spec names (see
// Resolve). An empty spec means the queue's defaultDestinations, or LOCAL
// when it has none. Send returns once one outbox entry per message and
// remote region is durable, and the local copies too when the local region
// is a destination. Remote regions store their copies later.
//
// An invalid message fails the whole call before anything is stored. When
// a write fails after others succeeded, some destinations have the
// messages and the error names the write that failed.
func (r *Router) Send(ctx context.Context, name, spec string, msgs []queue.SendRequest) (SendResult, error) {
	cfg, err := r.engine.Queue(ctx, name)
	if err != nil {
		return SendResult{}, err
	}
	field := "regions"
	if strings.TrimSpace(spec) == "" && cfg.DefaultDestinations != "" {
		spec, field = cfg.DefaultDestinations, "defaultDestinations of queue "+name
	}
	dest, err := r.Resolve(field, spec)
	if err != nil {
		return SendResult{}, err
	}
	if !dest.Local && len(dest.Remotes) == 0 {
		return SendResult{}, &queue.InvalidError{Field: field, Value: spec,
			Reason: "names no region: this server has no remote regions configured"}
	}

	if len(dest.Remotes) == 0 {
		res, err := r.engine.Send(ctx, name, msgs)
		if err != nil {
			return SendResult{}, err
		}
		return SendResult{Destinations: dest, Messages: res}, nil
	}

	// Check every message first, so that an invalid one leaves no outbox
	// entry behind.
	for i := range msgs {
		if err := r.engine.ValidateSend(ctx, name, &msgs[i]); err != nil {
			return SendResult{}, err
		}
	}
	return r.sendRemote(ctx, &cfg, dest, msgs)
}

// sendRemote stores the local copies and the outbox entries of a send
// with remote destinations. The writes go to different queues, so they
// run concurrently and share the store's syncs.
func (r *Router) sendRemote(ctx context.Context, cfg *queue.Config, dest Destinations, msgs []queue.SendRequest) (SendResult, error) {
	now := r.clock.Now()
	local := make([]queue.SendRequest, len(msgs))
	entries := make([]queue.SendRequest, len(msgs))
	results := make([]queue.SendResult, len(msgs))
	for i := range msgs {
		m := msgs[i]
		m.MessageID = newMessageID()
		m.SentAt = now
		local[i] = m

		env := r.envelope(cfg, &m, now)
		data, err := encodeEnvelope(&env)
		if err != nil {
			return SendResult{}, err
		}
		entries[i] = r.outboxRequest(env.MessageID, data, env.ExpiresAt.Sub(now), now)
		results[i] = queue.SendResult{MessageID: m.MessageID, DeliverAt: env.DeliverAt, ExpiresAt: env.ExpiresAt}
	}

	var (
		wg       sync.WaitGroup
		localRes []queue.SendResult
		localErr error
		errs     = make([]error, len(dest.Remotes))
	)
	if dest.Local {
		wg.Go(func() {
			localRes, localErr = r.engine.Send(ctx, cfg.Name, local)
		})
	}
	for i, name := range dest.Remotes {
		wg.Go(func() {
			errs[i] = r.sendOutbox(ctx, name, entries)
		})
	}
	wg.Wait()

	if localErr != nil {
		return SendResult{}, fmt.Errorf("store in local region %s: %w", r.cfg.Local, localErr)
	}
	if err := errors.Join(errs...); err != nil {
		return SendResult{}, err
	}
	for i := range localRes {
		results[i].QueueMessageID = localRes[i].QueueMessageID
		results[i].DeliverAt = localRes[i].DeliverAt
		results[i].ExpiresAt = localRes[i].ExpiresAt
	}
	return SendResult{Destinations: dest, Messages: results}, nil
}

// envelope returns the outbox entry of message m of queue cfg. The delay
// and expiration become absolute times, so that every region delivers and
// expires the message at the same moment.
func (r *Router) envelope(cfg *queue.Config, m *queue.SendRequest, now time.Time) Envelope {
	delay := cfg.DefaultDelay
	if m.Delay != nil {
		delay = *m.Delay
	}
	expiration := m.Expiration
	if expiration == 0 {
		expiration = cfg.Retention
	}
	if expiration == 0 {
		expiration = r.engine.Options().MaxTTL
	}
	return Envelope{
		Kind:        KindMessage,
		Queue:       cfg.Name,
		MessageID:   m.MessageID,
		ContentType: m.ContentType,
		Data:        m.Data,
		Attributes:  m.Attributes,
		DeliverAt:   now.Add(delay),
		ExpiresAt:   now.Add(expiration),
		SentAt:      now,
		Source:      r.cfg.Local,
		Config:      wireConfig(cfg),
	}
}

// outboxRequest returns the send of one outbox entry. The entry carries
// the message's own id, so that the message's audit trail shows its
// transfers, and its expiration, so that the engine drops it (and audits
// that) once the message can no longer be delivered.
func (r *Router) outboxRequest(id uuid.UUID, data []byte, expiration time.Duration, now time.Time) queue.SendRequest {
	var noDelay time.Duration
	return queue.SendRequest{
		ContentType: "application/json",
		Data:        data,
		Delay:       &noDelay,
		Expiration:  expiration,
		MessageID:   id,
		SentAt:      now,
	}
}

// sendOutbox stores entries in the outbox of region name, creating the
// outbox first if it is missing.
func (r *Router) sendOutbox(ctx context.Context, name string, entries []queue.SendRequest) error {
	outbox := OutboxName(name)
	_, err := r.engine.Send(ctx, outbox, entries)
	if errors.Is(err, queue.ErrQueueNotFound) {
		if err = r.ensureOutbox(ctx, outbox); err == nil {
			_, err = r.engine.Send(ctx, outbox, entries)
		}
	}
	if err != nil {
		return fmt.Errorf("store in the outbox of region %s: %w", name, err)
	}
	return nil
}

// CreateQueue creates a queue in the local region and, through the
// outboxes, in every remote region that cfg.Regions names. The queue is
// always created locally, because this region is where its configuration
// is managed and where sends to it are routed from. Like
// queue.Engine.CreateQueue it returns the stored configuration unchanged,
// with created=false, when the queue exists locally; the remote regions
// get that stored configuration.
func (r *Router) CreateQueue(ctx context.Context, cfg queue.Config) (queue.Config, bool, Destinations, error) {
	dest, err := r.checkQueueRegions(&cfg)
	if err != nil {
		return queue.Config{}, false, Destinations{}, err
	}
	stored, created, err := r.engine.CreateQueue(ctx, cfg)
	if err != nil {
		return queue.Config{}, false, Destinations{}, err
	}
	if err := r.propagate(ctx, &stored, dest.Remotes); err != nil {
		return queue.Config{}, false, Destinations{}, err
	}
	return stored, created, dest, nil
}

// UpdateQueue replaces a queue's configuration in the local region and,
// through the outboxes, in every remote region that cfg.Regions names,
// creating it there if it is missing. Regions that the old configuration
// named and the new one does not keep their copy of the queue.
func (r *Router) UpdateQueue(ctx context.Context, cfg queue.Config) (queue.Config, Destinations, error) {
	dest, err := r.checkQueueRegions(&cfg)
	if err != nil {
		return queue.Config{}, Destinations{}, err
	}
	stored, err := r.engine.UpdateQueue(ctx, cfg)
	if err != nil {
		return queue.Config{}, Destinations{}, err
	}
	if err := r.propagate(ctx, &stored, dest.Remotes); err != nil {
		return queue.Config{}, Destinations{}, err
	}
	return stored, dest, nil
}

// checkQueueRegions resolves a configuration's regions and checks its
// default destinations and that it names no outbox.
func (r *Router) checkQueueRegions(cfg *queue.Config) (Destinations, error) {
	if err := queue.ValidateName(cfg.Name); err != nil {
		return Destinations{}, err
	}
	if IsReserved(cfg.Name) {
		return Destinations{}, ReservedError("queue name", cfg.Name)
	}
	if IsReserved(cfg.DeadLetterQueue) {
		return Destinations{}, ReservedError("deadLetterQueue", cfg.DeadLetterQueue)
	}
	dest, err := r.Resolve("regions", cfg.Regions)
	if err != nil {
		return Destinations{}, err
	}
	if _, err := r.Resolve("defaultDestinations", cfg.DefaultDestinations); err != nil {
		return Destinations{}, err
	}
	return dest, nil
}

// propagate stores a queue-config entry for cfg in the outbox of every
// region in remotes.
func (r *Router) propagate(ctx context.Context, cfg *queue.Config, remotes []string) error {
	if len(remotes) == 0 {
		return nil
	}
	now := r.clock.Now()
	env := Envelope{
		Kind:      KindQueueConfig,
		Queue:     cfg.Name,
		MessageID: newMessageID(),
		SentAt:    now,
		Source:    r.cfg.Local,
		Config:    wireConfig(cfg),
	}
	data, err := encodeEnvelope(&env)
	if err != nil {
		return err
	}
	entry := []queue.SendRequest{r.outboxRequest(env.MessageID, data, r.engine.Options().MaxTTL, now)}
	var errs []error
	for _, name := range remotes {
		if err := r.sendOutbox(ctx, name, entry); err != nil {
			errs = append(errs, fmt.Errorf("queue %s: %w", cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// newMessageID returns a time-ordered message id, as the engine makes
// them.
// Like uuid.New, it panics when the system's random source fails.
func newMessageID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
