package sqsapi

import (
	"context"
	"regexp"
	"time"

	"github.com/qakka/qakka/internal/queue"
)

// textContentType is the content type of bodies sent through this API.
const textContentType = "text/plain; charset=utf-8"

// maxBatchEntries bounds the entries of one batch request.
const maxBatchEntries = 10

// maxGroupIDLength bounds a MessageGroupId.
const maxGroupIDLength = 128

// traceHeaderAttribute is the one message system attribute a sender may set.
const traceHeaderAttribute = "AWSTraceHeader"

var (
	batchIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	groupIDPattern = regexp.MustCompile(`^[!-~]{1,128}$`)
)

// sendEntry is one message of SendMessage or SendMessageBatch.
type sendEntry struct {
	ID                      string                    `json:"Id"`
	QueueURL                string                    `json:"QueueUrl"`
	MessageBody             *string                   `json:"MessageBody"`
	DelaySeconds            *int64                    `json:"DelaySeconds"`
	MessageAttributes       map[string]attributeValue `json:"MessageAttributes"`
	MessageSystemAttributes map[string]attributeValue `json:"MessageSystemAttributes"`
	MessageDeduplicationID  *string                   `json:"MessageDeduplicationId"`
	MessageGroupID          *string                   `json:"MessageGroupId"`
}

// size returns the bytes an entry counts towards a batch's limit: its body
// and the name, data type and value of each message attribute.
func (e *sendEntry) size() int {
	n := 0
	if e.MessageBody != nil {
		n += len(*e.MessageBody)
	}
	for name, v := range e.MessageAttributes {
		n += len(name) + len(v.DataType) + len(v.BinaryValue)
		if v.StringValue != nil {
			n += len(*v.StringValue)
		}
	}
	return n
}

// sendDigests are the checksums a send reply carries.
type sendDigests struct {
	MD5OfMessageBody             string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes       string `json:"MD5OfMessageAttributes,omitempty"`
	MD5OfMessageSystemAttributes string `json:"MD5OfMessageSystemAttributes,omitempty"`
}

// preparedSend is a checked message, ready for the engine.
type preparedSend struct {
	req     queue.SendRequest
	digests sendDigests
	// size counts the body and the message attributes.
	size int
}

// prepareSend checks one message against the SQS rules and the queue's size
// limit and builds its engine request.
func (a *API) prepareSend(cfg *queue.Config, e *sendEntry, senderID string) (preparedSend, *apiError) {
	var p preparedSend
	if e.MessageBody == nil || *e.MessageBody == "" {
		return p, errMissingParameter("MessageBody")
	}
	body := *e.MessageBody
	if r, ok := invalidRune(body); !ok {
		return p, errInvalidMessageContents("Invalid binary character '#x%X' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", r)
	}
	if e.MessageDeduplicationID != nil {
		return p, errInvalidParameterValue("Value %s for parameter MessageDeduplicationId is invalid. Reason: The request includes a parameter that is not valid for this queue type.", *e.MessageDeduplicationID)
	}
	stored := storedAttributes{Attributes: e.MessageAttributes, SenderID: senderID}
	if e.MessageGroupID != nil {
		if !groupIDPattern.MatchString(*e.MessageGroupID) {
			return p, errInvalidParameterValue("Value %s for parameter MessageGroupId is invalid. Reason: use 1 to %d printable ASCII characters.", *e.MessageGroupID, maxGroupIDLength)
		}
		stored.GroupID = *e.MessageGroupID
	}

	if e.DelaySeconds != nil {
		if *e.DelaySeconds < 0 || *e.DelaySeconds > maxDelaySeconds {
			return p, errInvalidParameterValue("Value %d for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= %d.", *e.DelaySeconds, maxDelaySeconds)
		}
		d := time.Duration(*e.DelaySeconds) * time.Second
		p.req.Delay = &d
	}

	attrSize, err := validateMessageAttributes(e.MessageAttributes)
	if err != nil {
		return p, err
	}
	p.size = len(body) + attrSize
	if limit := a.maxMessageSize(cfg); int64(p.size) > limit {
		return p, errInvalidParameterValue("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", limit+1)
	}

	for name, v := range e.MessageSystemAttributes {
		if name != traceHeaderAttribute {
			return p, errInvalidParameterValue("Message system attribute name '%s' is invalid. Only %s can be set.", name, traceHeaderAttribute)
		}
		if v.DataType != "String" || v.StringValue == nil || *v.StringValue == "" || v.BinaryValue != nil {
			return p, errInvalidParameterValue("The message system attribute '%s' must be of type String with a non-empty StringValue.", name)
		}
		stored.TraceHeader = *v.StringValue
	}

	p.req.ContentType = textContentType
	p.req.Data = []byte(body)
	p.req.Attributes = stored.encode()
	p.digests = sendDigests{
		MD5OfMessageBody:             md5Hex(p.req.Data),
		MD5OfMessageAttributes:       md5OfAttributes(e.MessageAttributes),
		MD5OfMessageSystemAttributes: md5OfAttributes(e.MessageSystemAttributes),
	}
	return p, nil
}

type sendMessageOutput struct {
	sendDigests
	MessageID string `json:"MessageId"`
}

func (a *API) sendMessage(ctx context.Context, rq *request) (any, error) {
	var in sendEntry
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	cfg, err := a.engine.Queue(ctx, name)
	if err != nil {
		return nil, err
	}
	p, apiErr := a.prepareSend(&cfg, &in, a.senderID(rq))
	if apiErr != nil {
		return nil, apiErr
	}
	res, err := a.engine.Send(ctx, name, []queue.SendRequest{p.req})
	if err != nil {
		return nil, err
	}
	return sendMessageOutput{sendDigests: p.digests, MessageID: res[0].MessageID.String()}, nil
}

// senderID is the SenderId of messages sent by rq: the access key that
// signed it, or the account id without authentication.
func (a *API) senderID(rq *request) string {
	if rq.accessKey != "" {
		return rq.accessKey
	}
	return a.cfg.AccountID
}

type sendMessageBatchInput struct {
	QueueURL string      `json:"QueueUrl"`
	Entries  []sendEntry `json:"Entries"`
}

type batchResultError struct {
	ID          string `json:"Id"`
	SenderFault bool   `json:"SenderFault"`
	Code        string `json:"Code"`
	Message     string `json:"Message"`
}

func batchFailure(id string, e *apiError) batchResultError {
	return batchResultError{ID: id, SenderFault: !e.Receiver, Code: e.Code, Message: e.Message}
}

type sendBatchResultEntry struct {
	ID string `json:"Id"`
	sendDigests
	MessageID string `json:"MessageId"`
}

type sendMessageBatchOutput struct {
	Successful []sendBatchResultEntry `json:"Successful"`
	Failed     []batchResultError     `json:"Failed"`
}

func (a *API) sendMessageBatch(ctx context.Context, rq *request) (any, error) {
	var in sendMessageBatchInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i := range in.Entries {
		ids[i] = in.Entries[i].ID
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}
	total := 0
	for i := range in.Entries {
		total += in.Entries[i].size()
	}
	if total > maxMessageSize {
		return nil, errBatchRequestTooLong(total, maxMessageSize)
	}
	cfg, err := a.engine.Queue(ctx, name)
	if err != nil {
		return nil, err
	}

	out := sendMessageBatchOutput{Successful: []sendBatchResultEntry{}, Failed: []batchResultError{}}
	var (
		prepared []preparedSend
		sentIDs  []string
	)
	for i := range in.Entries {
		e := &in.Entries[i]
		p, apiErr := a.prepareSend(&cfg, e, a.senderID(rq))
		if apiErr == nil {
			// The engine checks what SQS does not, such as a delay longer
			// than the queue's retention.
			if err := a.engine.ValidateSend(ctx, name, &p.req); err != nil {
				if apiErr = a.engineError(rq.action, err); apiErr == nil {
					return nil, err
				}
			}
		}
		if apiErr != nil {
			out.Failed = append(out.Failed, batchFailure(e.ID, apiErr))
			continue
		}
		prepared = append(prepared, p)
		sentIDs = append(sentIDs, e.ID)
	}
	if len(prepared) == 0 {
		return out, nil
	}

	reqs := make([]queue.SendRequest, len(prepared))
	for i := range prepared {
		reqs[i] = prepared[i].req
	}
	res, err := a.engine.Send(ctx, name, reqs)
	if err != nil {
		return nil, err
	}
	for i := range res {
		out.Successful = append(out.Successful, sendBatchResultEntry{
			ID:          sentIDs[i],
			sendDigests: prepared[i].digests,
			MessageID:   res[i].MessageID.String(),
		})
	}
	return out, nil
}

// checkBatchIDs checks the entry ids of a batch request as SQS does.
func checkBatchIDs(ids []string) *apiError {
	if len(ids) == 0 {
		return errEmptyBatchRequest()
	}
	if len(ids) > maxBatchEntries {
		return errTooManyEntries(len(ids))
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !batchIDPattern.MatchString(id) {
			return errInvalidBatchEntryID(id)
		}
		if seen[id] {
			return errBatchEntryIDsNotDistinct(id)
		}
		seen[id] = true
	}
	return nil
}
