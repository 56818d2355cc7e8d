package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// RetryPolicy bounds the automatic retries of requests that are safe to
// repeat.
//
// Only idempotent reads are retried: GetQueue, ListQueues, Stats, Audit,
// Peek, Status and MessageData. They are retried after a 503 response
// and after a connection error, with exponential backoff and jitter, for at
// most MaxAttempts attempts in all, and never past the context's deadline.
//
// Everything that changes server state is sent once and never repeated,
// whatever the policy, because a repeat can do harm that the caller cannot
// see:
//
//   - A retried Send or SendBatch stores the message twice when the first
//     attempt was stored but its response was lost.
//   - A retried Receive moves more messages to inflight, where they stay
//     invisible to every consumer until their visibility timeout.
//   - A retried Ack or Nack can fail with "message not inflight" for a
//     message that the first attempt already deleted or returned, which
//     looks like a lost lease when it was a success.
//   - A retried Extend, Purge or Redrive acts again on messages that
//     arrived in between.
//
// Callers that know more (for example, that the server never received the
// request) may retry such calls themselves.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts in all, at least 1. 1 means no
	// retries.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry. Each later wait
	// doubles, up to MaxBackoff. A random jitter of up to half the wait is
	// taken off.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait, including one that a Retry-After header
	// requests.
	MaxBackoff time.Duration
}

// DefaultRetryPolicy makes up to 4 attempts with waits from 100 ms up to 2 s.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    4,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     2 * time.Second,
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("invalid retry policy: MaxAttempts %d must be at least 1", p.MaxAttempts)
	case p.InitialBackoff < 0 || p.MaxBackoff < 0:
		return errors.New("invalid retry policy: backoff must not be negative")
	case p.MaxBackoff < p.InitialBackoff:
		return fmt.Errorf("invalid retry policy: MaxBackoff %s is less than InitialBackoff %s", p.MaxBackoff, p.InitialBackoff)
	}
	return nil
}

// backoff returns the wait before retry number n (1 for the first retry).
func (p RetryPolicy) backoff(n int, retryAfter time.Duration) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if d > 0 {
		d -= rand.N(d/2 + 1)
	}
	if retryAfter > d {
		d = min(retryAfter, p.MaxBackoff)
	}
	return d
}

// doWithRetry sends an idempotent request until it succeeds, fails in a way
// a repeat cannot fix, runs out of attempts or the context ends.
func (c *Client) doWithRetry(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := c.doOnce(ctx, r)
		if err == nil || attempt >= c.retry.MaxAttempts || !retryable(ctx, err) {
			return resp, err
		}

		var retryAfter time.Duration
		var apiErr *Error
		if errors.As(err, &apiErr) {
			retryAfter = apiErr.RetryAfter
		}
		wait := c.retry.backoff(attempt, retryAfter)

		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("%s %s: %w (after %w)", r.method, r.path, ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// retryable reports whether an idempotent request that failed with err may
// succeed when sent again: after a 503 or a connection error, but not after
// the caller's context ended.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == http.StatusServiceUnavailable
	}
	var te *transportError
	return errors.As(err, &te)
}
