// Package storage declares what the queue engine needs from persistence: the
// records of Qakka's logical model and the Store interface that every backend
// implements.
//
// The model follows the original Qakka: queue configurations, message payloads,
// queue entries split into shards per state, per-queue metadata (sequence,
// read head, shard records and counters) and an audit log. The engine is the
// only writer of a queue's entries and metadata, so a backend needs no
// read-modify-write logic of its own: it stores the writes of a Batch, atomically
// and durably.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ErrNotFound is returned by reads of a queue or payload that does not exist.
var ErrNotFound = errors.New("not found")

// State is the state of a queue entry. Each state has its own shards.
type State uint8

const (
	// Available entries wait to be received, in Seq order.
	Available State = 1
	// Inflight entries were received and wait for an ack until DueAt.
	Inflight State = 2
	// Delayed entries become available at DueAt.
	Delayed State = 3
	// Moving entries are on their way to another queue (TargetQueue): a
	// dead-letter move or a redrive. The target's commit deletes them.
	Moving State = 4
	// Incoming entries were stored by a cluster node that does not own the
	// queue, on a send. The owner moves them to available. Each writer node
	// has its own shard, in which Seq grows with time.
	Incoming State = 5
)

// States lists every entry state, in the order backends scan them.
var States = []State{Available, Inflight, Delayed, Moving, Incoming}

func (s State) String() string {
	switch s {
	case Available:
		return "available"
	case Inflight:
		return "inflight"
	case Delayed:
		return "delayed"
	case Moving:
		return "moving"
	case Incoming:
		return "incoming"
	default:
		return "unknown"
	}
}

// QueueConfig is the stored configuration of one queue.
type QueueConfig struct {
	Name string
	// VisibilityTimeout is how long a received message stays inflight before
	// it is delivered again. Zero means the server default.
	VisibilityTimeout time.Duration
	// DefaultDelay applies to sends that give no delay.
	DefaultDelay time.Duration
	// RetryCount is how many times a message may be received again after its
	// first receive before it goes to DeadLetterQueue. It has no effect
	// without a dead-letter queue.
	RetryCount int
	// DeadLetterQueue names the queue that takes messages past RetryCount.
	DeadLetterQueue string
	// MaxMessageSize limits a payload, in bytes. Zero means the server default.
	MaxMessageSize int64
	// Retention is the default expiration of a message. Zero means the server's
	// maximum TTL.
	Retention time.Duration
	// ReceiveWait is the long-poll wait of a receive that gives none. Zero
	// means the server default.
	ReceiveWait time.Duration
	// Regions and DefaultDestinations are comma-separated region names or the
	// keywords LOCAL, ALL and REMOTE, as in the original Qakka.
	Regions             string
	DefaultDestinations string
	// Tags are free-form labels (the SQS API's queue tags).
	Tags      map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Entry is one message in one queue, in one state.
//
// An entry is identified in storage by (Queue, State, Shard, Seq). ID is the
// queueMessageId that clients see: a new one is assigned every time the
// message becomes available again (timeout, nack, end of delay, redrive), so a
// stale handle never matches a later delivery.
type Entry struct {
	Queue     string
	State     State
	Shard     uint64
	Seq       uint64
	ID        uuid.UUID
	MessageID uuid.UUID
	// CreatedAt is when the entry entered its current availability cycle
	// (the original's queued_at).
	CreatedAt time.Time
	// SentAt is when the message was first sent.
	SentAt time.Time
	// DueAt is the visibility deadline of an inflight entry and the delivery
	// time of a delayed one.
	DueAt time.Time
	// ExpiresAt is when the message is dropped if still undelivered.
	ExpiresAt    time.Time
	ReceiveCount int32
	ContentType  string
	Size         int64
	// SourceQueue is the queue a dead-lettered message came from.
	SourceQueue string
	// TargetQueue is the destination queue of a Moving entry.
	TargetQueue string
}

// Key returns the storage identity of the entry.
func (e *Entry) Key() EntryKey {
	return EntryKey{Queue: e.Queue, State: e.State, Shard: e.Shard, Seq: e.Seq}
}

// EntryKey identifies one stored entry.
type EntryKey struct {
	Queue string
	State State
	Shard uint64
	Seq   uint64
}

// Payload is the body of a message, stored once per queue.
type Payload struct {
	Queue       string
	MessageID   uuid.UUID
	ContentType string
	Data        []byte
	// Attributes are opaque to the engine; the SQS API keeps its message
	// attributes here.
	Attributes []byte
	ExpiresAt  time.Time
}

// PayloadKey identifies one stored payload.
type PayloadKey struct {
	Queue     string
	MessageID uuid.UUID
}

// ShardRef names one shard of one state of a queue.
type ShardRef struct {
	State State
	Shard uint64
}

// Meta is the per-queue state that is not in entries. The engine writes it in
// the same batch as the entries it describes, so it is always consistent with
// them.
type Meta struct {
	// ShardSize is how many sequence numbers one shard holds. It is fixed when
	// the queue first stores an entry, so a later change of the server's
	// setting does not move existing entries.
	ShardSize uint64
	// NextSeq is the sequence number the next entry gets.
	NextSeq uint64
	// Head is the lowest sequence number an available entry can have. Readers
	// start here, so deleted entries before it cost nothing.
	Head uint64
	// Available counts available entries.
	Available int64
	// Shards lists the shards of the inflight, delayed and moving states that
	// may hold entries; available shards are those from Head to NextSeq.
	Shards []ShardRef
	Totals Totals
	// Inbox maps each writer shard of the incoming state to the lowest Seq
	// the owner has not adopted yet. Readers start there, so adopted and
	// deleted incoming entries cost nothing.
	Inbox map[uint64]uint64
}

// Totals are monotonic event counters of a queue.
type Totals struct {
	Sent         int64
	Received     int64
	Acked        int64
	Nacked       int64
	TimedOut     int64
	Expired      int64
	DeadLettered int64
	Redriven     int64
	Purged       int64
}

// AuditEvent is one step in the life of a message.
type AuditEvent struct {
	MessageID uuid.UUID
	Time      time.Time
	// Seq orders events that share a timestamp.
	Seq            uint32
	Action         string
	Queue          string
	QueueMessageID uuid.UUID
	ReceiveCount   int32
	Detail         string
	ExpiresAt      time.Time
}

// Batch is a set of writes that a Store applies atomically. No key appears
// both in a put and in a delete of the same batch, so backends may apply them
// in any order.
type Batch struct {
	PutPayloads    []Payload
	DeletePayloads []PayloadKey
	PutEntries     []Entry
	DeleteEntries  []EntryKey
	// RetireShards removes every entry of the named shards, with one range
	// or partition deletion each.
	RetireShards []RetiredShard
	Metas        map[string]Meta
	Audit        []AuditEvent
	// Fence, when set, makes the batch conditional on a queue's lease: the
	// store applies it only while Fence.Owner holds the lease of Fence.Queue
	// at Fence.Epoch and the lease has not expired at Fence.Now. Otherwise
	// it writes nothing and returns an error that wraps ErrFenced.
	Fence *Fence
}

// ErrFenced is returned by a commit whose fence no longer holds, and by a
// lease renewal of a lease that is no longer current: another node took the
// queue, or the lease expired.
var ErrFenced = errors.New("queue lease lost")

// Fence is the condition of a fenced commit.
type Fence struct {
	Queue string
	Owner string
	Epoch int64
	Now   time.Time
}

// Lease is the right of one cluster node to serve one queue. Epoch grows by
// one with every new holder, so it orders the holders of a queue and fences
// the writes of earlier ones. A released lease has a zero ExpiresAt.
type Lease struct {
	Queue     string
	Owner     string
	Epoch     int64
	ExpiresAt time.Time
}

// Released reports whether the holder gave the lease up.
func (l Lease) Released() bool { return l.ExpiresAt.IsZero() }

// Free reports whether a new holder may take the lease at now: it was
// released, or it expired before now-settle.
func (l Lease) Free(now time.Time, settle time.Duration) bool {
	return l.Released() || l.ExpiresAt.Before(now.Add(-settle))
}

// LeaseHeldError is returned by AcquireLease when another holder still has
// the lease.
type LeaseHeldError struct {
	Lease Lease
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("queue %s is leased to node %s (epoch %d) until %s",
		e.Lease.Queue, e.Lease.Owner, e.Lease.Epoch, e.Lease.ExpiresAt.UTC().Format(time.RFC3339Nano))
}

// LeaseStore is implemented by stores that several nodes share. All its
// writes on one queue are linearizable (lightweight transactions on
// Cassandra), so two nodes never both take a lease.
type LeaseStore interface {
	// AcquireLease takes the lease of queue for owner, valid until now+ttl,
	// when no lease exists, the last one was released, or it expired before
	// now-settle. The new lease has the next epoch (1 for the first). It
	// returns a *LeaseHeldError with the current lease otherwise, also when
	// owner itself holds it: an owner that restarts takes its queues again
	// only once its old leases ended.
	AcquireLease(ctx context.Context, queue, owner string, now time.Time, ttl, settle time.Duration) (Lease, error)
	// RenewLease extends l to now+ttl when l is still the current lease (same
	// owner and epoch) and has not expired at now. It returns an error that
	// wraps ErrFenced otherwise.
	RenewLease(ctx context.Context, l Lease, now time.Time, ttl time.Duration) (Lease, error)
	// ReleaseLease gives l up, so the next holder need not wait for it to
	// expire. Releasing a lease that is no longer current changes nothing
	// and is not an error.
	ReleaseLease(ctx context.Context, l Lease) error
	// Lease returns the current lease of queue, or ErrNotFound.
	Lease(ctx context.Context, queue string) (Lease, error)
}

// RetiredShard names a shard to remove.
type RetiredShard struct {
	Queue string
	ShardRef
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.PutPayloads) == 0 && len(b.DeletePayloads) == 0 &&
		len(b.PutEntries) == 0 && len(b.DeleteEntries) == 0 &&
		len(b.RetireShards) == 0 && len(b.Metas) == 0 && len(b.Audit) == 0
}

// Store is the persistence the queue engine runs on. Implementations are safe
// for concurrent use.
type Store interface {
	// CreateQueue stores cfg if no queue of that name exists. It returns
	// created=false and the stored configuration when one does, and changes
	// nothing then.
	CreateQueue(ctx context.Context, cfg QueueConfig) (stored QueueConfig, created bool, err error)
	// UpdateQueue replaces the configuration of an existing queue, or returns
	// ErrNotFound.
	UpdateQueue(ctx context.Context, cfg QueueConfig) error
	// Queue returns one configuration, or ErrNotFound.
	Queue(ctx context.Context, name string) (QueueConfig, error)
	// Queues returns every configuration, ordered by name.
	Queues(ctx context.Context) ([]QueueConfig, error)
	// DeleteQueue removes a queue's configuration, metadata, entries and
	// payloads. Audit events stay until they expire. Deleting a missing queue
	// is not an error.
	DeleteQueue(ctx context.Context, name string) error

	// Commit applies b atomically. When it returns nil the writes are durable:
	// they survive a crash of the process or the machine. A backend may write
	// the audit events after the rest, so a crash can lose the audit events
	// of a committed batch but never store events of an uncommitted one.
	Commit(ctx context.Context, b *Batch) error

	// Meta returns a queue's metadata, or the zero Meta when none is stored.
	Meta(ctx context.Context, queue string) (Meta, error)
	// ScanShard returns up to limit entries of one shard with Seq >= from, in
	// Seq order.
	ScanShard(ctx context.Context, queue string, ref ShardRef, from uint64, limit int) ([]Entry, error)
	// Shards returns, in ascending order, the shards of one state of a
	// queue that may hold entries. The engine uses it for the incoming state,
	// whose shards it does not record in Meta.
	Shards(ctx context.Context, queue string, state State) ([]uint64, error)
	// Payload returns one payload, or ErrNotFound.
	Payload(ctx context.Context, key PayloadKey) (Payload, error)
	// Audit returns the events of a message in time order.
	Audit(ctx context.Context, messageID uuid.UUID) ([]AuditEvent, error)
	// ExpireAudit removes audit events whose ExpiresAt is before now and
	// returns how many it removed. Backends with native TTLs may return 0.
	ExpireAudit(ctx context.Context, now time.Time) (int, error)

	// Close releases the store. It is safe to call more than once.
	Close() error
}

// BatchLimiter is implemented by stores that bound the size of one batch.
// The engine then stops adding requests to a round once the round's writes
// reach the limit; a single request may still exceed it.
type BatchLimiter interface {
	// MaxBatchWrites returns how many writes (entry puts and deletes, payload
	// puts and deletes, shard retirements and audit events) one batch should
	// hold at most.
	MaxBatchWrites() int
}

// ShardOf returns the shard that holds seq when shards hold shardSize
// sequence numbers each.
func ShardOf(seq, shardSize uint64) uint64 {
	if shardSize == 0 {
		return 0
	}
	return seq / shardSize
}
