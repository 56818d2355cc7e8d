package sqsapi

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage"
)

// maxReceiveMessages bounds MaxNumberOfMessages.
const maxReceiveMessages = 10

// Message system attribute names.
const (
	sysAll                      = "All"
	sysSenderID                 = "SenderId"
	sysSentTimestamp            = "SentTimestamp"
	sysApproxReceiveCount       = "ApproximateReceiveCount"
	sysApproxFirstReceive       = "ApproximateFirstReceiveTimestamp"
	sysSequenceNumber           = "SequenceNumber"
	sysMessageDeduplicationID   = "MessageDeduplicationId"
	sysMessageGroupID           = "MessageGroupId"
	sysAWSTraceHeader           = traceHeaderAttribute
	sysDeadLetterQueueSourceArn = "DeadLetterQueueSourceArn"
)

var systemAttributeNames = []string{
	sysSenderID, sysSentTimestamp, sysApproxReceiveCount, sysApproxFirstReceive,
	sysSequenceNumber, sysMessageDeduplicationID, sysMessageGroupID,
	sysAWSTraceHeader, sysDeadLetterQueueSourceArn,
}

type receiveMessageInput struct {
	QueueURL                    string   `json:"QueueUrl"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
	MaxNumberOfMessages         *int64   `json:"MaxNumberOfMessages"`
	VisibilityTimeout           *int64   `json:"VisibilityTimeout"`
	WaitTimeSeconds             *int64   `json:"WaitTimeSeconds"`
	ReceiveRequestAttemptID     string   `json:"ReceiveRequestAttemptId"`
}

type message struct {
	MessageID              string                    `json:"MessageId"`
	ReceiptHandle          string                    `json:"ReceiptHandle"`
	MD5OfBody              string                    `json:"MD5OfBody"`
	Body                   string                    `json:"Body"`
	Attributes             map[string]string         `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string                    `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]attributeValue `json:"MessageAttributes,omitempty"`
}

type receiveMessageOutput struct {
	Messages []message `json:"Messages,omitempty"`
}

func (a *API) receiveMessage(ctx context.Context, rq *request) (any, error) {
	var in receiveMessageInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	opts := a.engine.Options()

	count := int64(1)
	if in.MaxNumberOfMessages != nil {
		count = *in.MaxNumberOfMessages
		if count < 1 || count > maxReceiveMessages {
			return nil, errInvalidParameterValue("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and %d, if provided.", count, maxReceiveMessages)
		}
	}
	// The engine's limit on one receive is a server setting, 100 by default.
	req := queue.ReceiveRequest{Count: min(int(count), opts.MaxReceiveCount)}
	if in.VisibilityTimeout != nil {
		limit := min(maxVisibilitySeconds, int64(opts.MaxVisibility/time.Second))
		if *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > limit {
			return nil, errInvalidParameterValue("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and %d, if provided.", *in.VisibilityTimeout, limit)
		}
		v := time.Duration(*in.VisibilityTimeout) * time.Second
		req.Visibility = &v
	}
	if in.WaitTimeSeconds != nil {
		if *in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > maxWaitSeconds {
			return nil, errInvalidParameterValue("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= %d, if provided.", *in.WaitTimeSeconds, maxWaitSeconds)
		}
	}
	sysNames, apiErr := systemAttributes(append(slices.Clone(in.AttributeNames), in.MessageSystemAttributeNames...))
	if apiErr != nil {
		return nil, apiErr
	}

	// Without WaitTimeSeconds the queue's ReceiveMessageWaitTimeSeconds
	// applies, where zero means a short poll, as in SQS. The engine would
	// take zero as its own default instead.
	var wait time.Duration
	if in.WaitTimeSeconds != nil {
		wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	} else {
		cfg, err := a.engine.Queue(ctx, name)
		if err != nil {
			return nil, err
		}
		wait = cfg.ReceiveWait
	}
	wait = min(wait, opts.MaxReceiveWait)
	req.Wait = &wait

	deliveries, err := a.engine.Receive(ctx, name, req)
	if err != nil {
		return nil, err
	}
	out := receiveMessageOutput{}
	for i := range deliveries {
		m, ok, err := a.message(ctx, &deliveries[i], sysNames, in.MessageAttributeNames)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Messages = append(out.Messages, m)
		}
	}
	return out, nil
}

// systemAttributes checks the requested message system attribute names and
// returns the set of them, with "All" expanded.
func systemAttributes(names []string) (map[string]bool, *apiError) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		switch {
		case n == sysAll:
			for _, s := range systemAttributeNames {
				set[s] = true
			}
		case slices.Contains(systemAttributeNames, n):
			set[n] = true
		default:
			return nil, errInvalidAttributeName("Unknown Attribute %s.", n)
		}
	}
	return set, nil
}

// message builds the reply entry of one delivery. It reports false when the
// message is gone, which happens when a purge runs at the same moment.
func (a *API) message(ctx context.Context, d *queue.Delivery, sysNames map[string]bool, attrNames []string) (message, bool, error) {
	p, err := a.engine.Payload(ctx, d.Queue, d.MessageID)
	if errors.Is(err, queue.ErrMessageNotFound) {
		return message{}, false, nil
	}
	if err != nil {
		return message{}, false, err
	}
	stored := decodeStoredAttributes(p.Attributes)

	m := message{
		MessageID: d.MessageID.String(),
		ReceiptHandle: receipt{
			Queue:          d.Queue,
			QueueMessageID: d.QueueMessageID,
			MessageID:      d.MessageID,
		}.encode(),
		Body: bodyString(&p),
	}
	m.MD5OfBody = md5Hex([]byte(m.Body))
	m.MessageAttributes = selectAttributes(stored.Attributes, attrNames)
	m.MD5OfMessageAttributes = md5OfAttributes(m.MessageAttributes)

	if len(sysNames) > 0 {
		m.Attributes = a.systemAttributeValues(ctx, d, &stored, sysNames)
	}
	return m, true, nil
}

// bodyString returns a payload as an SQS body: its bytes when they are
// valid UTF-8, else their base64 encoding.
func bodyString(p *storage.Payload) string {
	if utf8.Valid(p.Data) {
		return string(p.Data)
	}
	return base64.StdEncoding.EncodeToString(p.Data)
}

func (a *API) systemAttributeValues(ctx context.Context, d *queue.Delivery, stored *storedAttributes, names map[string]bool) map[string]string {
	out := make(map[string]string, len(names))
	if names[sysSenderID] {
		out[sysSenderID] = stored.SenderID
		if stored.SenderID == "" {
			out[sysSenderID] = a.cfg.AccountID
		}
	}
	if names[sysSentTimestamp] {
		out[sysSentTimestamp] = strconv.FormatInt(d.SentAt.UnixMilli(), 10)
	}
	if names[sysApproxReceiveCount] {
		out[sysApproxReceiveCount] = strconv.Itoa(d.ReceiveCount)
	}
	if names[sysApproxFirstReceive] {
		if t, ok := a.firstReceive(ctx, d); ok {
			out[sysApproxFirstReceive] = strconv.FormatInt(t.UnixMilli(), 10)
		}
	}
	if names[sysAWSTraceHeader] && stored.TraceHeader != "" {
		out[sysAWSTraceHeader] = stored.TraceHeader
	}
	if names[sysMessageGroupID] && stored.GroupID != "" {
		out[sysMessageGroupID] = stored.GroupID
	}
	if names[sysDeadLetterQueueSourceArn] && d.SourceQueue != "" {
		out[sysDeadLetterQueueSourceArn] = a.queueARN(d.SourceQueue)
	}
	return out
}

// firstReceive returns when the message was first received, from the
// engine's audit log. It reports false when the log has no receive, which
// happens once its events have expired.
func (a *API) firstReceive(ctx context.Context, d *queue.Delivery) (time.Time, bool) {
	events, err := a.engine.Audit(ctx, d.Queue, d.MessageID)
	if err != nil {
		a.log.Debug("reading the audit log for ApproximateFirstReceiveTimestamp failed",
			"queue", d.Queue, "msg_id", d.MessageID.String(), "error", err)
		return time.Time{}, false
	}
	for _, ev := range events {
		if ev.Action == queue.ActionReceived {
			return ev.Time, true
		}
	}
	return time.Time{}, false
}
