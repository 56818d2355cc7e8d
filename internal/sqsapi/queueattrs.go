package sqsapi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

// SQS limits and defaults of queue attributes.
const (
	maxVisibilitySeconds  = 43200
	maxDelaySeconds       = 900
	maxWaitSeconds        = 20
	minMessageSize        = 1024
	maxMessageSize        = 1 << 20
	minRetentionSeconds   = 60
	maxRetentionSeconds   = 1209600
	defaultVisibility     = 30 * time.Second
	defaultRetention      = 345600 * time.Second
	maxReceiveCountPolicy = 1000
)

// zeroVisibility stands for a visibility timeout of 0 seconds in a queue's
// configuration, where zero means the server's default.
// NOTE: it reads back as 0 seconds, and a message received from such a
// queue is available again 1 ms later.
const zeroVisibility = time.Millisecond

// Queue attribute names.
const (
	attrAll                    = "All"
	attrPolicy                 = "Policy"
	attrVisibilityTimeout      = "VisibilityTimeout"
	attrMaximumMessageSize     = "MaximumMessageSize"
	attrMessageRetentionPeriod = "MessageRetentionPeriod"
	attrApproxMessages         = "ApproximateNumberOfMessages"
	attrApproxNotVisible       = "ApproximateNumberOfMessagesNotVisible"
	attrApproxDelayed          = "ApproximateNumberOfMessagesDelayed"
	attrCreatedTimestamp       = "CreatedTimestamp"
	attrLastModifiedTimestamp  = "LastModifiedTimestamp"
	attrQueueArn               = "QueueArn"
	attrDelaySeconds           = "DelaySeconds"
	attrReceiveWaitTimeSeconds = "ReceiveMessageWaitTimeSeconds"
	attrRedrivePolicy          = "RedrivePolicy"
	attrRedriveAllowPolicy     = "RedriveAllowPolicy"
	attrFifoQueue              = "FifoQueue"
	attrContentBasedDedup      = "ContentBasedDeduplication"
	attrDeduplicationScope     = "DeduplicationScope"
	attrFifoThroughputLimit    = "FifoThroughputLimit"
	attrKmsMasterKeyID         = "KmsMasterKeyId"
	attrKmsDataKeyReusePeriod  = "KmsDataKeyReusePeriodSeconds"
	attrSqsManagedSseEnabled   = "SqsManagedSseEnabled"
)

// redrivePermissionAllowAll is the one RedriveAllowPolicy permission accepted.
const redrivePermissionAllowAll = "allowAll"

// Messages about FIFO queues, which Qakka does not support.
const (
	unsupportedFifoExplanation  = "FIFO queues are not supported: leave FifoQueue unset or false and use a queue name without the .fifo suffix"
	unsupportedFifoAttrTemplate = "Unknown Attribute %s: it applies to FIFO queues, which are not supported."
)

// readableAttributes lists what GetQueueAttributes returns for "All", in
// order.
var readableAttributes = []string{
	attrApproxMessages, attrApproxNotVisible, attrApproxDelayed,
	attrCreatedTimestamp, attrLastModifiedTimestamp, attrQueueArn,
	attrDelaySeconds, attrMaximumMessageSize, attrMessageRetentionPeriod,
	attrReceiveWaitTimeSeconds, attrVisibilityTimeout, attrRedrivePolicy,
	attrSqsManagedSseEnabled,
}

// knownUnsetAttributes are valid names that a Qakka queue never has a value
// for: GetQueueAttributes leaves them out, as SQS does for unset ones.
var knownUnsetAttributes = map[string]bool{
	attrPolicy: true, attrRedriveAllowPolicy: true, attrKmsMasterKeyID: true,
	attrKmsDataKeyReusePeriod: true, attrFifoQueue: true, attrContentBasedDedup: true,
	attrDeduplicationScope: true, attrFifoThroughputLimit: true,
}

// redrivePolicy is the JSON of the RedrivePolicy attribute.
type redrivePolicy struct {
	DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	// MaxReceiveCount is a number or a string holding one.
	MaxReceiveCount json.RawMessage `json:"maxReceiveCount"`
}

// applyAttributes sets the attributes on cfg. It checks every value but not
// whether a dead-letter queue exists; checkDeadLetterQueue does that.
func (a *API) applyAttributes(cfg *queue.Config, attrs map[string]string) *apiError {
	opts := a.engine.Options()
	for name, value := range attrs {
		var err *apiError
		switch name {
		case attrVisibilityTimeout:
			var d time.Duration
			d, err = secondsAttribute(name, value, 0, min(maxVisibilitySeconds, int64(opts.MaxVisibility/time.Second)))
			if d == 0 {
				d = zeroVisibility
			}
			cfg.VisibilityTimeout = d
		case attrDelaySeconds:
			cfg.DefaultDelay, err = secondsAttribute(name, value, 0, maxDelaySeconds)
		case attrMessageRetentionPeriod:
			cfg.Retention, err = secondsAttribute(name, value, minRetentionSeconds, min(maxRetentionSeconds, int64(opts.MaxTTL/time.Second)))
		case attrReceiveWaitTimeSeconds:
			cfg.ReceiveWait, err = secondsAttribute(name, value, 0, min(maxWaitSeconds, int64(opts.MaxReceiveWait/time.Second)))
		case attrMaximumMessageSize:
			var n int64
			n, err = intAttribute(name, value, minMessageSize, maxMessageSize)
			cfg.MaxMessageSize = n
		case attrRedrivePolicy:
			err = a.applyRedrivePolicy(cfg, value)
		case attrRedriveAllowPolicy:
			err = checkRedriveAllowPolicy(value)
		case attrFifoQueue:
			if value != "false" {
				err = errUnsupportedOperation("%s", unsupportedFifoExplanation)
			}
		case attrContentBasedDedup, attrDeduplicationScope, attrFifoThroughputLimit:
			err = errInvalidAttributeName(unsupportedFifoAttrTemplate, name)
		case attrPolicy:
			if value != "" {
				err = errInvalidAttributeValue("Invalid value for the parameter Policy: access policies are not supported; the server's credentials control access.")
			}
		case attrKmsMasterKeyID, attrKmsDataKeyReusePeriod:
			if value != "" {
				err = errInvalidAttributeValue("Invalid value for the parameter %s: server-side encryption with KMS is not supported.", name)
			}
		case attrSqsManagedSseEnabled:
			if value != "false" {
				err = errInvalidAttributeValue("Invalid value for the parameter %s: server-side encryption is not supported, so only false is accepted.", name)
			}
		case attrApproxMessages, attrApproxNotVisible, attrApproxDelayed, attrCreatedTimestamp,
			attrLastModifiedTimestamp, attrQueueArn:
			err = errInvalidAttributeName("Unknown Attribute %s: it is read-only.", name)
		default:
			err = errInvalidAttributeName("Unknown Attribute %s.", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func intAttribute(name, value string, lo, hi int64) (int64, *apiError) {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errInvalidAttributeValue("Invalid value for the parameter %s: %q must be a whole number from %d to %d.", name, value, lo, hi)
	}
	return n, nil
}

func secondsAttribute(name, value string, lo, hi int64) (time.Duration, *apiError) {
	n, err := intAttribute(name, value, lo, hi)
	return time.Duration(n) * time.Second, err
}

func (a *API) applyRedrivePolicy(cfg *queue.Config, value string) *apiError {
	if value == "" {
		cfg.DeadLetterQueue, cfg.RetryCount = "", 0
		return nil
	}
	invalid := func(reason string) *apiError {
		return errInvalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: %s", value, reason)
	}

	var p redrivePolicy
	if err := json.Unmarshal([]byte(value), &p); err != nil {
		return invalid("Redrive policy is not a valid JSON map.")
	}
	if p.DeadLetterTargetArn == "" {
		return invalid("Redrive policy does not contain deadLetterTargetArn.")
	}
	if len(p.MaxReceiveCount) == 0 {
		return invalid("Redrive policy does not contain maxReceiveCount.")
	}
	raw := strings.Trim(string(p.MaxReceiveCount), `"`)
	count, err := strconv.Atoi(raw)
	if err != nil || count < 1 || count > maxReceiveCountPolicy {
		return invalid(fmt.Sprintf("Invalid value for maxReceiveCount: %s, valid values are from 1 to %d both inclusive.", raw, maxReceiveCountPolicy))
	}

	target, ok := a.parseQueueARN(p.DeadLetterTargetArn)
	if !ok {
		return invalid(fmt.Sprintf("Invalid value for deadLetterTargetArn: use arn:aws:sqs:%s:%s:<queue name>.", a.cfg.Region, a.cfg.AccountID))
	}
	if target == cfg.Name {
		return invalid("A queue cannot be its own dead-letter queue.")
	}
	cfg.DeadLetterQueue = target
	// The engine dead-letters a message once its receive count exceeds
	// RetryCount, so maxReceiveCount receives are allowed.
	cfg.RetryCount = count - 1
	return nil
}

// checkDeadLetterQueue reports an error when cfg names a dead-letter queue
// that does not exist.
func (a *API) checkDeadLetterQueue(cfg *queue.Config) *apiError {
	if cfg.DeadLetterQueue == "" || a.engine.Exists(cfg.DeadLetterQueue) {
		return nil
	}
	return errInvalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.",
		a.formatRedrivePolicy(cfg))
}

func checkRedriveAllowPolicy(value string) *apiError {
	if value == "" {
		return nil
	}
	var p struct {
		RedrivePermission string `json:"redrivePermission"`
	}
	if err := json.Unmarshal([]byte(value), &p); err != nil || p.RedrivePermission != redrivePermissionAllowAll {
		return errInvalidAttributeValue("Value %s for parameter RedriveAllowPolicy is invalid. Reason: only {\"redrivePermission\":\"allowAll\"} is supported; every queue may use any queue as its dead-letter queue.", value)
	}
	return nil
}

func (a *API) formatRedrivePolicy(cfg *queue.Config) string {
	b, _ := json.Marshal(struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}{a.queueARN(cfg.DeadLetterQueue), cfg.RetryCount + 1})
	return string(b)
}

// queueARN returns arn:aws:sqs:<region>:<account>:<name>.
func (a *API) queueARN(name string) string {
	return "arn:aws:sqs:" + a.cfg.Region + ":" + a.cfg.AccountID + ":" + name
}

// parseQueueARN returns the queue name of an ARN of this region and account.
func (a *API) parseQueueARN(arn string) (string, bool) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "sqs" ||
		parts[3] != a.cfg.Region || parts[4] != a.cfg.AccountID || queue.ValidateName(parts[5]) != nil || region.IsReserved(parts[5]) {
		return "", false
	}
	return parts[5], true
}

// configAttribute returns the value of a configuration attribute as SQS
// reports it, or false for a name that is not one.
func (a *API) configAttribute(cfg *queue.Config, name string) (string, bool) {
	opts := a.engine.Options()
	seconds := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	switch name {
	case attrVisibilityTimeout:
		if cfg.VisibilityTimeout > 0 {
			return seconds(cfg.VisibilityTimeout), true
		}
		return seconds(opts.VisibilityTimeout), true
	case attrDelaySeconds:
		return seconds(cfg.DefaultDelay), true
	case attrMessageRetentionPeriod:
		if cfg.Retention > 0 {
			return seconds(cfg.Retention), true
		}
		return seconds(opts.MaxTTL), true
	case attrReceiveWaitTimeSeconds:
		return seconds(cfg.ReceiveWait), true
	case attrMaximumMessageSize:
		return strconv.FormatInt(a.maxMessageSize(cfg), 10), true
	case attrRedrivePolicy:
		if cfg.DeadLetterQueue == "" {
			return "", true
		}
		return a.formatRedrivePolicy(cfg), true
	case attrCreatedTimestamp:
		return strconv.FormatInt(cfg.CreatedAt.Unix(), 10), true
	case attrLastModifiedTimestamp:
		return strconv.FormatInt(cfg.UpdatedAt.Unix(), 10), true
	case attrQueueArn:
		return a.queueARN(cfg.Name), true
	case attrSqsManagedSseEnabled:
		return "false", true
	}
	return "", false
}

// maxMessageSize returns the SQS limit of a queue's body and attributes:
// the queue's limit in the engine, at most 1 MiB.
func (a *API) maxMessageSize(cfg *queue.Config) int64 {
	limit := cfg.MaxMessageSize
	if limit <= 0 {
		limit = a.engine.Options().MaxMessageSize
	}
	return min(limit, maxMessageSize)
}

// sameAttributes reports whether the attributes that attrs names have the
// same values in cfg and in updated, as CreateQueue on an existing queue
// requires.
func (a *API) sameAttributes(cfg, updated *queue.Config, attrs map[string]string) bool {
	for name := range attrs {
		got, ok := a.configAttribute(cfg, name)
		want, _ := a.configAttribute(updated, name)
		if ok && got != want {
			return false
		}
	}
	return true
}

// newQueueConfig returns the configuration of a queue that CreateQueue makes
// with no attributes: the SQS defaults, within the server's limits.
func (a *API) newQueueConfig(name string) queue.Config {
	opts := a.engine.Options()
	return queue.Config{
		Name:              name,
		VisibilityTimeout: min(defaultVisibility, opts.MaxVisibility),
		Retention:         min(defaultRetention, opts.MaxTTL),
		MaxMessageSize:    min(maxMessageSize, opts.MaxMessageSize),
	}
}
