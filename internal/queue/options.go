package queue

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/storage"
)

// Config is the configuration of one queue, as stored.
type Config = storage.QueueConfig

// Options are the engine's server-wide settings. The zero value of a field
// means its default; WithDefaults fills them in.
type Options struct {
	// VisibilityTimeout applies to queues that set none. Default 30 s.
	VisibilityTimeout time.Duration
	// ReceiveWait is the long-poll wait of a receive that gives none, on a
	// queue that sets none. Default 1 s.
	ReceiveWait time.Duration
	// MaxReceiveWait bounds the wait of one receive. Default 20 s.
	MaxReceiveWait time.Duration
	// MaxTTL bounds expiration, delay and retention, and is the expiration of
	// a message that gives none. Default 14 days.
	MaxTTL time.Duration
	// MaxVisibility bounds a visibility timeout or an extension. Default 12 h.
	MaxVisibility time.Duration
	// BufferSize is how many available entries each queue keeps in memory.
	// Default 1,000.
	BufferSize int
	// ShardSize is how many entries one storage shard holds. Default 400,000.
	ShardSize uint64
	// MaxReceiveCount bounds the count of one receive. Default 100.
	MaxReceiveCount int
	// MaxBatch bounds the entries of one batch send or batch ack. Default 100.
	MaxBatch int
	// MaxMessageSize applies to queues that set none, in bytes. Default 1 MiB.
	MaxMessageSize int64
	// Region names the local region in deliveries. Default "local".
	Region string
	// Node names this engine in a cluster. When set, the engine serves only
	// the queues it is given with Serve, fences their commits with their
	// leases, and stores sends to other queues as incoming entries for their
	// owners. Empty means a single node that serves every queue.
	Node string
	// Clock drives timeouts and delays. Default the system clock.
	Clock clock.Clock
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultReceiveWait       = time.Second
	DefaultMaxReceiveWait    = 20 * time.Second
	DefaultMaxTTL            = 14 * 24 * time.Hour
	DefaultMaxVisibility     = 12 * time.Hour
	DefaultBufferSize        = 1000
	DefaultShardSize         = 400_000
	DefaultMaxReceiveCount   = 100
	DefaultMaxBatch          = 100
	DefaultMaxMessageSize    = 1 << 20
	DefaultRegion            = "local"
)

// WithDefaults returns o with every unset field set to its default.
func (o Options) WithDefaults() Options {
	setDuration(&o.VisibilityTimeout, DefaultVisibilityTimeout)
	setDuration(&o.ReceiveWait, DefaultReceiveWait)
	setDuration(&o.MaxReceiveWait, DefaultMaxReceiveWait)
	setDuration(&o.MaxTTL, DefaultMaxTTL)
	setDuration(&o.MaxVisibility, DefaultMaxVisibility)
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.ShardSize == 0 {
		o.ShardSize = DefaultShardSize
	}
	if o.MaxReceiveCount == 0 {
		o.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Validate reports the first setting that cannot work.
func (o Options) Validate() error {
	switch {
	case o.VisibilityTimeout < 0 || o.VisibilityTimeout > o.MaxVisibility:
		return fmt.Errorf("visibility timeout %s must be between 0 and the maximum visibility %s", o.VisibilityTimeout, o.MaxVisibility)
	case o.ReceiveWait < 0 || o.ReceiveWait > o.MaxReceiveWait:
		return fmt.Errorf("receive wait %s must be between 0 and the maximum receive wait %s", o.ReceiveWait, o.MaxReceiveWait)
	case o.MaxTTL < time.Second:
		return fmt.Errorf("maximum TTL %s must be at least 1s", o.MaxTTL)
	case o.BufferSize < 1:
		return fmt.Errorf("buffer size %d must be at least 1", o.BufferSize)
	case o.ShardSize < 1:
		return fmt.Errorf("shard size %d must be at least 1", o.ShardSize)
	case o.MaxReceiveCount < 1:
		return fmt.Errorf("maximum receive count %d must be at least 1", o.MaxReceiveCount)
	case o.MaxBatch < 1:
		return fmt.Errorf("maximum batch %d must be at least 1", o.MaxBatch)
	case o.MaxMessageSize < 1:
		return fmt.Errorf("maximum message size %d must be at least 1 byte", o.MaxMessageSize)
	}
	return nil
}

// MaxNameLength is the longest queue name.
const MaxNameLength = 80

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,80}$`)

// ValidateName checks a queue name: 1 to 80 letters, digits, '-', '_' or '.'.
func ValidateName(name string) error {
	if name == "" {
		return invalid("queue name", "", "must not be empty")
	}
	if !namePattern.MatchString(name) {
		return invalid("queue name", name, "use 1 to %d characters of letters, digits, '-', '_' and '.'", MaxNameLength)
	}
	return nil
}

// validateConfig checks a queue configuration against the server's limits.
func (e *Engine) validateConfig(c *Config) error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	o := &e.opts
	if c.VisibilityTimeout < 0 || c.VisibilityTimeout > o.MaxVisibility {
		return invalid("handlingTimeoutSec", fmt.Sprint(int64(c.VisibilityTimeout/time.Second)), "must be between 0 and %d seconds", int64(o.MaxVisibility/time.Second))
	}
	if c.DefaultDelay < 0 || c.DefaultDelay >= o.MaxTTL {
		return invalid("defaultDelayMs", fmt.Sprint(c.DefaultDelay.Milliseconds()), "must be between 0 and %d milliseconds", o.MaxTTL.Milliseconds()-1)
	}
	if c.RetryCount < 0 || c.RetryCount > 1000 {
		return invalid("retryCount", fmt.Sprint(c.RetryCount), "must be between 0 and 1000")
	}
	if c.DeadLetterQueue != "" {
		if err := ValidateName(c.DeadLetterQueue); err != nil {
			return invalid("deadLetterQueue", c.DeadLetterQueue, "use 1 to %d characters of letters, digits, '-', '_' and '.'", MaxNameLength)
		}
		if c.DeadLetterQueue == c.Name {
			return invalid("deadLetterQueue", c.DeadLetterQueue, "a queue cannot be its own dead-letter queue")
		}
	}
	if c.MaxMessageSize < 0 {
		return invalid("maxMessageSize", fmt.Sprint(c.MaxMessageSize), "must not be negative")
	}
	if c.Retention < 0 || c.Retention > o.MaxTTL {
		return invalid("retentionSec", fmt.Sprint(int64(c.Retention/time.Second)), "must be between 0 and %d seconds", int64(o.MaxTTL/time.Second))
	}
	if c.ReceiveWait < 0 || c.ReceiveWait > o.MaxReceiveWait {
		return invalid("receiveWaitMs", fmt.Sprint(c.ReceiveWait.Milliseconds()), "must be between 0 and %d milliseconds", o.MaxReceiveWait.Milliseconds())
	}
	return nil
}

func (e *Engine) visibility(c *Config) time.Duration {
	if c.VisibilityTimeout > 0 {
		return c.VisibilityTimeout
	}
	return e.opts.VisibilityTimeout
}

func (e *Engine) maxMessageSize(c *Config) int64 {
	if c.MaxMessageSize > 0 {
		return c.MaxMessageSize
	}
	return e.opts.MaxMessageSize
}

func (e *Engine) retention(c *Config) time.Duration {
	if c.Retention > 0 {
		return c.Retention
	}
	return e.opts.MaxTTL
}

func (e *Engine) receiveWait(c *Config) time.Duration {
	if c.ReceiveWait > 0 {
		return c.ReceiveWait
	}
	return e.opts.ReceiveWait
}
