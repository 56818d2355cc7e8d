package queue

import (
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// SendRequest is one message to send.
type SendRequest struct {
	ContentType string
	Data        []byte
	// Attributes are stored with the payload and returned unchanged.
	Attributes []byte
	// Delay postpones delivery. Nil means the queue's default delay.
	Delay *time.Duration
	// Expiration drops the message if it is still undelivered after this
	// long. Zero means the queue's retention.
	Expiration time.Duration
	// MessageID, when set, makes the send idempotent: a message with an id
	// this queue has already stored (within the maximum TTL, while its audit
	// trail lasts) is not stored again. Transfers between regions use it.
	MessageID uuid.UUID
	// SentAt, when set, is the original send time of a transferred message.
	SentAt time.Time
}

// SendResult describes one stored message.
type SendResult struct {
	MessageID      uuid.UUID
	QueueMessageID uuid.UUID
	// DeliverAt is when the message becomes available.
	DeliverAt time.Time
	ExpiresAt time.Time
	// Duplicate is true when MessageID was given and already stored; nothing
	// was written for it.
	Duplicate bool
}

// ReceiveRequest is a request for up to Count available messages.
type ReceiveRequest struct {
	Count int
	// Wait is how long to wait for a first message. Nil means the queue's
	// receive wait.
	Wait *time.Duration
	// Visibility overrides the queue's visibility timeout for this delivery.
	Visibility *time.Duration
}

// Delivery is one received message. The caller acks it by QueueMessageID
// before Deadline.
type Delivery struct {
	Queue          string
	QueueMessageID uuid.UUID
	MessageID      uuid.UUID
	Region         string
	// CreatedAt is when the message last became available.
	CreatedAt    time.Time
	SentAt       time.Time
	Deadline     time.Time
	ExpiresAt    time.Time
	ReceiveCount int
	ContentType  string
	Size         int64
	SourceQueue  string
}

// NackResult describes a message returned to its queue.
type NackResult struct {
	// QueueMessageID is the message's new id, or uuid.Nil if it went to the
	// dead-letter queue or expired.
	QueueMessageID uuid.UUID
	DeliverAt      time.Time
	DeadLettered   bool
}

// RedriveResult counts what a redrive moved.
type RedriveResult struct {
	// Moved counts messages on their way back to their source queues.
	Moved int
	// Skipped counts messages left in place because they name no source
	// queue or their source queue no longer exists.
	Skipped int
}

// Stats are a queue's current counts and its event totals.
type Stats struct {
	Queue     string
	Available int64
	Inflight  int64
	Delayed   int64
	// DeadLettered counts the messages now in the queue's dead-letter queue
	// (all of them, whichever queue they came from).
	DeadLettered int64
	// OldestAvailableAge is the age of the oldest available message, or zero.
	OldestAvailableAge time.Duration
	// Waiters counts receives waiting for a message.
	Waiters int
	Totals  storage.Totals
}

// PeekEntry is one message as Peek lists it.
type PeekEntry struct {
	State          string
	Seq            uint64
	QueueMessageID uuid.UUID
	MessageID      uuid.UUID
	CreatedAt      time.Time
	SentAt         time.Time
	// DueAt is the deadline of an inflight message and the delivery time of a
	// delayed one.
	DueAt        time.Time
	ExpiresAt    time.Time
	ReceiveCount int
	ContentType  string
	Size         int64
	SourceQueue  string
	TargetQueue  string
}

// AuditEvent is one step in the life of a message.
type AuditEvent = storage.AuditEvent

// Audit actions.
const (
	ActionSent         = "sent"
	ActionReceived     = "received"
	ActionAcked        = "acked"
	ActionNacked       = "nacked"
	ActionExtended     = "extended"
	ActionTimedOut     = "timed_out"
	ActionAvailable    = "available"
	ActionDeadLettered = "dead_lettered"
	ActionRedriven     = "redriven"
	ActionExpired      = "expired"
	ActionPurged       = "purged"
)

func (e *Engine) delivery(en *storage.Entry) Delivery {
	return Delivery{
		Queue:          en.Queue,
		QueueMessageID: en.ID,
		MessageID:      en.MessageID,
		Region:         e.opts.Region,
		CreatedAt:      en.CreatedAt,
		SentAt:         en.SentAt,
		Deadline:       en.DueAt,
		ExpiresAt:      en.ExpiresAt,
		ReceiveCount:   int(en.ReceiveCount),
		ContentType:    en.ContentType,
		Size:           en.Size,
		SourceQueue:    en.SourceQueue,
	}
}

func peekEntry(en *storage.Entry) PeekEntry {
	state := en.State.String()
	if en.State == storage.Available && en.SourceQueue != "" {
		state = "deadLettered"
	}
	return PeekEntry{
		State:          state,
		Seq:            en.Seq,
		QueueMessageID: en.ID,
		MessageID:      en.MessageID,
		CreatedAt:      en.CreatedAt,
		SentAt:         en.SentAt,
		DueAt:          en.DueAt,
		ExpiresAt:      en.ExpiresAt,
		ReceiveCount:   int(en.ReceiveCount),
		ContentType:    en.ContentType,
		Size:           en.Size,
		SourceQueue:    en.SourceQueue,
		TargetQueue:    en.TargetQueue,
	}
}
