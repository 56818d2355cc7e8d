package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
)

// Defaults of CoordinatorConfig.
const (
	DefaultLeaseTTL = 5 * time.Second
	DefaultSettle   = 3 * time.Second
	DefaultInterval = time.Second
)

// Members is the view of the cluster a coordinator needs; *Membership
// implements it.
type Members interface {
	LocalName() string
	Live() []Member
	Changes() <-chan struct{}
}

// storageReporter is implemented by a Members that can tell the other nodes
// that this node cannot reach storage; *Membership implements it.
type storageReporter interface {
	SetStorageDown(down bool, timeout time.Duration) error
}

// CoordinatorConfig configures a Coordinator.
type CoordinatorConfig struct {
	// LeaseTTL is how long a lease lasts without renewal. A holder renews it
	// every third of it. Default 5 s.
	LeaseTTL time.Duration
	// Settle is how long past the expiry of a lease another node waits
	// before it takes the queue. It covers writes of the old holder that
	// were under way when its lease expired, so it is longer than a storage
	// write may take. Default 3 s.
	Settle time.Duration
	// Interval is how often the coordinator checks ownership when nothing
	// wakes it. Default 1 s.
	Interval time.Duration
	Clock    clock.Clock
	Logger   *slog.Logger
}

// Coordinator makes a node serve the queues that rendezvous hashing gives
// it over the live members: it takes their leases, renews them, hands
// queues over when membership changes, and stops serving a queue whose lease
// it cannot renew in time.
type Coordinator struct {
	cfg     CoordinatorConfig
	engine  *queue.Engine
	store   storage.Store
	leases  storage.LeaseStore
	members Members
	node    string
	log     *slog.Logger

	wake chan struct{}
	// retryAt is the earliest time a lease that another node holds may be
	// taken, when it is sooner than the next regular check. Only Run's
	// goroutine uses it.
	retryAt time.Time
	// storageOK is when storage last responded, and storageDown whether
	// the node has reported to the others that it cannot reach storage.
	// Only Run's goroutine uses them.
	storageOK   time.Time
	storageDown bool
	// strangers maps a queue whose lease a node outside this node's view
	// of the cluster keeps renewing to when that was first seen, and
	// warned to when it was last logged. Only Run's goroutine uses them.
	strangers map[string]time.Time
	warned    map[string]time.Time

	mu   sync.Mutex
	held map[string]storage.Lease
}

// NewCoordinator returns a coordinator for engine, whose store must be a
// storage.LeaseStore.
func NewCoordinator(engine *queue.Engine, store storage.Store, members Members, cfg CoordinatorConfig) (*Coordinator, error) {
	leases, ok := store.(storage.LeaseStore)
	if !ok {
		return nil, errors.New("cluster: the storage backend cannot hold queue leases; a cluster needs the cassandra backend")
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LeaseTTL < 3*cfg.Interval {
		return nil, fmt.Errorf("cluster: lease TTL %s must be at least three times the check interval %s", cfg.LeaseTTL, cfg.Interval)
	}
	return &Coordinator{
		cfg:     cfg,
		engine:  engine,
		store:   store,
		leases:  leases,
		members: members,
		node:    members.LocalName(),
		log:     cfg.Logger.With(slog.String("component", "cluster")),
		wake:    make(chan struct{}, 1),
		held:    make(map[string]storage.Lease),

		strangers: make(map[string]time.Time),
		warned:    make(map[string]time.Time),
	}, nil
}

// Wake makes the coordinator check ownership now. It never blocks.
func (c *Coordinator) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Lost is the engine's hook for a queue whose commit found its lease gone.
func (c *Coordinator) Lost(queue string, lease storage.Lease) {
	c.mu.Lock()
	if l, ok := c.held[queue]; ok && l.Epoch == lease.Epoch {
		delete(c.held, queue)
	}
	c.mu.Unlock()
	c.Wake()
}

// Held returns the number of leases the node holds.
func (c *Coordinator) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// Run checks ownership until ctx ends, then hands every queue over and
// releases its lease, so that other nodes take the queues without waiting
// for the leases to expire.
func (c *Coordinator) Run(ctx context.Context) {
	t := c.cfg.Clock.NewTimer()
	defer t.Stop()
	c.storageOK = c.cfg.Clock.Now()
	for {
		c.retryAt = time.Time{}
		c.reconcile(ctx)
		wait := c.cfg.Interval
		if !c.retryAt.IsZero() {
			wait = min(wait, max(c.retryAt.Sub(c.cfg.Clock.Now()), 10*time.Millisecond))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			c.releaseAll()
			return
		case <-c.wake:
		case <-c.members.Changes():
		case <-t.C():
		}
	}
}

// reconcile renews the leases due for it, then takes the queues this node
// should own and hands over those it should not.
func (c *Coordinator) reconcile(ctx context.Context) {
	c.renew(ctx)

	// A store that does not respond must not hold up the next renewals.
	lctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL/3)
	cfgs, err := c.store.Queues(lctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("listing queues failed; ownership is checked again shortly", slog.Any("error", err))
			c.storageFailed()
		}
		return
	}
	c.storageAnswered()
	live := c.members.Live()
	exists := make(map[string]bool, len(cfgs))
	for i := range cfgs {
		name := cfgs[i].Name
		exists[name] = true
		owner, ok := Owner(name, live)
		c.mu.Lock()
		lease, held := c.held[name]
		c.mu.Unlock()
		switch {
		case ok && owner.Name == c.node && !held:
			c.acquire(ctx, name)
		case held && (!ok || owner.Name != c.node):
			c.handover(ctx, lease, "owner is now "+owner.Name)
		}
	}
	c.mu.Lock()
	var gone []storage.Lease
	for name, l := range c.held {
		if !exists[name] {
			gone = append(gone, l)
		}
	}
	c.mu.Unlock()
	for _, l := range gone {
		c.handover(ctx, l, "queue deleted")
	}
}

// checkStranger warns, at most once a minute per queue, when a node that
// is not a live member in this node's view has kept a queue's lease for two
// lease terms. The two nodes are then in different clusters over the same
// keyspaces, usually because a node started without seeds of the others.
func (c *Coordinator) checkStranger(queue string, l storage.Lease) {
	now := c.cfg.Clock.Now()
	for _, m := range c.members.Live() {
		if m.Name == l.Owner {
			delete(c.strangers, queue)
			return
		}
	}
	first, ok := c.strangers[queue]
	if !ok {
		c.strangers[queue] = now
		delete(c.warned, queue)
		return
	}
	if now.Sub(first) < 2*c.cfg.LeaseTTL || now.Sub(c.warned[queue]) < time.Minute {
		return
	}
	c.warned[queue] = now
	c.log.Warn("a node this node does not see keeps the lease of a queue; give every node the others in cluster-seeds so that they form one cluster",
		slog.String("queue", queue), slog.String("holder", l.Owner))
}

// storageFailed records a failed storage request. Once storage has failed for
// half a lease TTL, the node reports it to the others, so that they take its queues
// once its leases expire instead of leaving them unserved.
func (c *Coordinator) storageFailed() {
	reporter, ok := c.members.(storageReporter)
	now := c.cfg.Clock.Now()
	// Half a TTL rides out a slow request and still comes well before the
	// node's leases expire.
	if !ok || c.storageDown || now.Sub(c.storageOK) < c.cfg.LeaseTTL/2 {
		return
	}
	c.storageDown = true
	c.log.Error("storage is unreachable; other nodes take this node's queues until it responds again")
	if err := reporter.SetStorageDown(true, time.Second); err != nil {
		c.log.Warn("reporting to the other nodes that storage is unreachable failed", slog.Any("error", err))
	}
}

// storageAnswered records a successful storage request, and reports to the
// others when storage is back.
func (c *Coordinator) storageAnswered() {
	c.storageOK = c.cfg.Clock.Now()
	reporter, ok := c.members.(storageReporter)
	if !ok || !c.storageDown {
		return
	}
	c.storageDown = false
	c.log.Info("storage responds again; taking queues again")
	if err := reporter.SetStorageDown(false, time.Second); err != nil {
		c.log.Warn("reporting to the other nodes that storage responds again failed", slog.Any("error", err))
	}
}

func (c *Coordinator) acquire(ctx context.Context, queue string) {
	now := c.cfg.Clock.Now()
	lease, err := c.leases.AcquireLease(ctx, queue, c.node, now, c.cfg.LeaseTTL, c.cfg.Settle)
	var held *storage.LeaseHeldError
	switch {
	case errors.As(err, &held):
		c.log.Debug("waiting for the lease of a queue", slog.String("queue", queue),
			slog.String("holder", held.Lease.Owner), slog.Time("expires", held.Lease.ExpiresAt))
		c.checkStranger(queue, held.Lease)
		// Try again the moment the lease may be taken, instead of up to an
		// interval later.
		at := held.Lease.ExpiresAt.Add(c.cfg.Settle + time.Millisecond)
		if c.retryAt.IsZero() || at.Before(c.retryAt) {
			c.retryAt = at
		}
		return
	case err != nil:
		if ctx.Err() == nil {
			c.log.Warn("taking the lease of a queue failed", slog.String("queue", queue), slog.Any("error", err))
		}
		return
	}
	delete(c.strangers, queue)
	c.mu.Lock()
	c.held[queue] = lease
	c.mu.Unlock()
	if err := c.engine.Serve(ctx, lease); err != nil {
		c.log.Warn("serving a leased queue failed; releasing its lease", slog.String("queue", queue), slog.Any("error", err))
		c.release(ctx, lease)
		return
	}
	c.log.Info("took queue", slog.String("queue", queue), slog.Int64("epoch", lease.Epoch))
}

// renew renews every lease past a third of its term. A lease that another
// node took stops its queue at once. A lease that cannot be renewed because
// storage fails stops its queue once it has expired by this node's clock,
// so the node never serves a queue another node may have taken.
func (c *Coordinator) renew(ctx context.Context) {
	c.mu.Lock()
	due := make([]storage.Lease, 0, len(c.held))
	now := c.cfg.Clock.Now()
	for _, l := range c.held {
		if l.ExpiresAt.Sub(now) < c.cfg.LeaseTTL*2/3 {
			due = append(due, l)
		}
	}
	c.mu.Unlock()

	// Renewals run side by side, so that one slow renewal does not make
	// the others late.
	sem := make(chan struct{}, renewParallelism)
	var wg sync.WaitGroup
	for _, l := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.renewOne(ctx, l)
		}()
	}
	wg.Wait()
}

// renewParallelism bounds the lease renewals that run at once.
const renewParallelism = 16

func (c *Coordinator) renewOne(ctx context.Context, l storage.Lease) {
	now := c.cfg.Clock.Now()
	// A renewal that has not succeeded by the expiry is too late anyway.
	rctx, cancel := context.WithTimeout(ctx, l.ExpiresAt.Sub(now))
	defer cancel()
	renewed, err := c.leases.RenewLease(rctx, l, now, c.cfg.LeaseTTL)
	switch {
	case err == nil:
		c.mu.Lock()
		if cur, ok := c.held[l.Queue]; ok && cur.Epoch == l.Epoch {
			c.held[l.Queue] = renewed
		}
		c.mu.Unlock()
		c.engine.Renew(renewed)
	case errors.Is(err, storage.ErrFenced):
		c.log.Warn("lost the lease of a queue", slog.String("queue", l.Queue), slog.Int64("epoch", l.Epoch))
		c.stop(ctx, l)
	case ctx.Err() != nil:
		return
	case !c.cfg.Clock.Now().Before(l.ExpiresAt):
		c.log.Error("could not renew the lease of a queue before it expired; stopped serving it",
			slog.String("queue", l.Queue), slog.Any("error", err))
		c.stop(ctx, l)
	default:
		c.log.Warn("renewing the lease of a queue failed; retrying",
			slog.String("queue", l.Queue), slog.Time("expires", l.ExpiresAt), slog.Any("error", err))
	}
}

// stop stops serving a queue whose lease is gone, without releasing it.
func (c *Coordinator) stop(ctx context.Context, l storage.Lease) {
	c.mu.Lock()
	if cur, ok := c.held[l.Queue]; ok && cur.Epoch == l.Epoch {
		delete(c.held, l.Queue)
	}
	c.mu.Unlock()
	if err := c.engine.Handover(ctx, l.Queue); err != nil {
		c.log.Warn("stopping a queue failed", slog.String("queue", l.Queue), slog.Any("error", err))
	}
}

// handover stops serving a queue and releases its lease.
func (c *Coordinator) handover(ctx context.Context, l storage.Lease, reason string) {
	c.stop(ctx, l)
	c.release(ctx, l)
	c.log.Info("handed queue over", slog.String("queue", l.Queue), slog.String("reason", reason))
}

func (c *Coordinator) release(ctx context.Context, l storage.Lease) {
	if err := c.leases.ReleaseLease(ctx, l); err != nil && ctx.Err() == nil {
		c.log.Warn("releasing the lease of a queue failed; it expires by itself",
			slog.String("queue", l.Queue), slog.Any("error", err))
	}
}

// releaseAll hands every queue over, for a graceful stop.
func (c *Coordinator) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LeaseTTL)
	defer cancel()
	c.mu.Lock()
	leases := make([]storage.Lease, 0, len(c.held))
	for _, l := range c.held {
		leases = append(leases, l)
	}
	c.mu.Unlock()
	for _, l := range leases {
		c.handover(ctx, l, "node stopping")
	}
}
