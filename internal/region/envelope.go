package region

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/queue"
)

// Kinds of outbox entries.
const (
	// KindMessage carries one message to store in the destination's queue.
	KindMessage = "message"
	// KindQueueConfig creates the queue at the destination, or replaces its
	// configuration.
	KindQueueConfig = "queue-config"
)

// Envelope is one outbox entry: the payload of an entry of a _transfer.
// queue, and one element of a transfer request.
//
// A message envelope carries the configuration of its queue too, so that a
// destination where the queue is missing creates it instead of rejecting
// the message. The sender replaces that configuration with the queue's
// current one before each POST, when the queue still exists locally.
type Envelope struct {
	Kind  string `json:"kind"`
	Queue string `json:"queue"`
	// MessageID is the message's id in every region. For a queue-config
	// envelope it only identifies the outbox entry.
	MessageID   uuid.UUID `json:"messageId"`
	ContentType string    `json:"contentType,omitempty"`
	// Data and Attributes are base64 in JSON.
	Data       []byte `json:"data,omitempty"`
	Attributes []byte `json:"attributes,omitempty"`
	// DeliverAt and ExpiresAt are the message's delivery and expiration
	// times on the source region's clock.
	DeliverAt time.Time `json:"deliverAt,omitzero"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// SentAt is when the client sent the message to the source region.
	SentAt time.Time `json:"sentAt"`
	// Source names the region where the message was sent.
	Source string       `json:"source"`
	Config *QueueConfig `json:"config,omitempty"`
}

// QueueConfig is a queue configuration on the wire. Durations are
// nanoseconds, so that a configuration arrives exactly as it was stored.
type QueueConfig struct {
	Name                string            `json:"name"`
	VisibilityTimeout   time.Duration     `json:"visibilityTimeoutNanos,omitzero"`
	DefaultDelay        time.Duration     `json:"defaultDelayNanos,omitzero"`
	RetryCount          int               `json:"retryCount,omitzero"`
	DeadLetterQueue     string            `json:"deadLetterQueue,omitempty"`
	MaxMessageSize      int64             `json:"maxMessageSize,omitzero"`
	Retention           time.Duration     `json:"retentionNanos,omitzero"`
	ReceiveWait         time.Duration     `json:"receiveWaitNanos,omitzero"`
	Regions             string            `json:"regions,omitempty"`
	DefaultDestinations string            `json:"defaultDestinations,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
}

func wireConfig(c *queue.Config) *QueueConfig {
	return &QueueConfig{
		Name:                c.Name,
		VisibilityTimeout:   c.VisibilityTimeout,
		DefaultDelay:        c.DefaultDelay,
		RetryCount:          c.RetryCount,
		DeadLetterQueue:     c.DeadLetterQueue,
		MaxMessageSize:      c.MaxMessageSize,
		Retention:           c.Retention,
		ReceiveWait:         c.ReceiveWait,
		Regions:             c.Regions,
		DefaultDestinations: c.DefaultDestinations,
		Tags:                maps.Clone(c.Tags),
	}
}

func (w *QueueConfig) config() queue.Config {
	return queue.Config{
		Name:                w.Name,
		VisibilityTimeout:   w.VisibilityTimeout,
		DefaultDelay:        w.DefaultDelay,
		RetryCount:          w.RetryCount,
		DeadLetterQueue:     w.DeadLetterQueue,
		MaxMessageSize:      w.MaxMessageSize,
		Retention:           w.Retention,
		ReceiveWait:         w.ReceiveWait,
		Regions:             w.Regions,
		DefaultDestinations: w.DefaultDestinations,
		Tags:                maps.Clone(w.Tags),
	}
}

// validate checks what the receiving endpoint needs from an envelope. The
// destination's engine checks the rest: sizes and the configuration's
// limits.
func (e *Envelope) validate() error {
	if err := queue.ValidateName(e.Queue); err != nil {
		return err
	}
	if IsReserved(e.Queue) {
		return fmt.Errorf("queue %q is reserved for the transfer log", e.Queue)
	}
	if e.Config != nil && e.Config.Name != e.Queue {
		return fmt.Errorf("configuration of queue %q is attached to an entry of queue %q", e.Config.Name, e.Queue)
	}
	switch e.Kind {
	case KindQueueConfig:
		if e.Config == nil {
			return errors.New("queue-config entry has no config")
		}
		return nil
	case KindMessage:
	default:
		return fmt.Errorf("unknown entry kind %q: use %s or %s", e.Kind, KindMessage, KindQueueConfig)
	}
	if e.MessageID == uuid.Nil {
		return errors.New("message entry has no messageId")
	}
	if e.ExpiresAt.IsZero() {
		return errors.New("message entry has no expiresAt")
	}
	if !e.DeliverAt.IsZero() && !e.DeliverAt.Before(e.ExpiresAt) {
		return fmt.Errorf("message entry is delivered at %s, not before it expires at %s", e.DeliverAt.Format(time.RFC3339Nano), e.ExpiresAt.Format(time.RFC3339Nano))
	}
	return nil
}

func encodeEnvelope(e *Envelope) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode transfer entry of queue %s: %w", e.Queue, err)
	}
	return b, nil
}

func decodeEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode transfer entry: %w", err)
	}
	return e, nil
}

// TransferRequest is the body of a POST to TransferPath.
type TransferRequest struct {
	// Source names the sending region.
	Source string `json:"source"`
	// Now is the sender's clock when it sent the request. The receiver
	// measures delays and expirations from it, so that clock skew between
	// regions does not shift them.
	Now     time.Time  `json:"now"`
	Entries []Envelope `json:"entries"`
}

// TransferResponse is the reply to a TransferRequest: one result per
// entry, in request order.
type TransferResponse struct {
	Results []EntryResult `json:"results"`
}

// EntryResult is the outcome of one entry. Status is 200 when the entry is
// stored (Duplicate when it was stored before), 410 when the message
// expired before it arrived, or the status that the entry would have got
// from the REST API, with Message saying why.
type EntryResult struct {
	Status    int    `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Message   string `json:"message,omitempty"`
}
