package queue

import (
	"errors"
	"fmt"
)

var (
	// ErrQueueNotFound is returned for an operation on a queue that does not
	// exist.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrNotInflight is returned when a queueMessageId names no current
	// delivery: it was acked, it timed out and was delivered again under a new
	// id, it was purged, or it never existed.
	ErrNotInflight = errors.New("message not inflight")
	// ErrMessageNotFound is returned when a message or its payload is gone.
	ErrMessageNotFound = errors.New("message not found")
	// ErrUnavailable is returned while the store cannot write. Callers may
	// retry later.
	ErrUnavailable = errors.New("storage unavailable")
	// ErrNotOwner is returned in a cluster for an operation on a queue that
	// this node does not serve now: another node owns it, or this node is
	// still taking it over. Callers retry on the owner.
	ErrNotOwner = errors.New("queue not served by this node")
	// ErrClosed is returned after the engine was closed or the queue deleted.
	ErrClosed = errors.New("queue engine closed")
)

// InvalidError reports a request value that cannot be used. Its message names
// the value and what would be accepted.
type InvalidError struct {
	Field  string
	Value  string
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

func invalid(field, value, format string, args ...any) error {
	return &InvalidError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// TooLargeError reports a payload over its queue's size limit.
type TooLargeError struct {
	Size  int64
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("payload of %d bytes is over the queue's limit of %d bytes", e.Size, e.Limit)
}
