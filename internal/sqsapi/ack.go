package sqsapi

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/queue"
)

type deleteMessageInput struct {
	QueueURL      string `json:"QueueUrl"`
	ReceiptHandle string `json:"ReceiptHandle"`
}

// deleteMessage acks one delivery. A stale receipt handle, whose delivery
// was acked, timed out or was purged, succeeds and deletes nothing, as SQS
// documents for handles that are not the latest.
func (a *API) deleteMessage(ctx context.Context, rq *request) (any, error) {
	var in deleteMessageInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	r, apiErr := receiptFor(name, in.ReceiptHandle)
	if apiErr != nil {
		return nil, apiErr
	}
	if err := a.engine.Ack(ctx, name, r.QueueMessageID); err != nil && !errors.Is(err, queue.ErrNotInflight) {
		return nil, err
	}
	return nil, nil
}

type deleteMessageBatchInput struct {
	QueueURL string `json:"QueueUrl"`
	Entries  []struct {
		ID            string `json:"Id"`
		ReceiptHandle string `json:"ReceiptHandle"`
	} `json:"Entries"`
}

type batchResultEntry struct {
	ID string `json:"Id"`
}

type batchOutput struct {
	Successful []batchResultEntry `json:"Successful"`
	Failed     []batchResultError `json:"Failed"`
}

func (a *API) deleteMessageBatch(ctx context.Context, rq *request) (any, error) {
	var in deleteMessageBatchInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.ID
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}

	out := batchOutput{Successful: []batchResultEntry{}, Failed: []batchResultError{}}
	var (
		acks   []uuid.UUID
		ackIDs []string
	)
	for _, e := range in.Entries {
		r, apiErr := receiptFor(name, e.ReceiptHandle)
		if apiErr != nil {
			out.Failed = append(out.Failed, batchFailure(e.ID, apiErr))
			continue
		}
		acks = append(acks, r.QueueMessageID)
		ackIDs = append(ackIDs, e.ID)
	}
	if len(acks) == 0 {
		return out, nil
	}
	errs, err := a.engine.AckBatch(ctx, name, acks)
	if err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil && !errors.Is(err, queue.ErrNotInflight) {
			apiErr := a.engineError(rq.action, err)
			if apiErr == nil {
				return nil, err
			}
			out.Failed = append(out.Failed, batchFailure(ackIDs[i], apiErr))
			continue
		}
		out.Successful = append(out.Successful, batchResultEntry{ID: ackIDs[i]})
	}
	return out, nil
}

type changeVisibilityInput struct {
	ID                string `json:"Id"`
	QueueURL          string `json:"QueueUrl"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout *int64 `json:"VisibilityTimeout"`
}

func (a *API) changeMessageVisibility(ctx context.Context, rq *request) (any, error) {
	var in changeVisibilityInput
	if err := decode(rq, &in); err != nil {
		return nil, err
	}
	name, err := a.queueName(rq, in.QueueURL)
	if err != nil {
		return nil, err
	}
	if err := a.changeVisibility(ctx, name, &in); err != nil {
		return nil, err
	}
	return nil, nil
}

// changeVisibility makes a delivery available now (timeout 0) or sets its
// deadline to the timeout from now.
// NOTE: SQS caps a message's total visibility at 12 hours from its first
// receive. The engine does not record that moment, so each change may
// extend the deadline by up to 12 hours from now.
func (a *API) changeVisibility(ctx context.Context, name string, in *changeVisibilityInput) error {
	r, apiErr := receiptFor(name, in.ReceiptHandle)
	if apiErr != nil {
		return apiErr
	}
	// NB: a missing VisibilityTimeout means 0. The AWS SDK for Go v2 leaves
	// out integer members that are zero, this required one included.
	var seconds int64
	if in.VisibilityTimeout != nil {
		seconds = *in.VisibilityTimeout
	}
	limit := min(maxVisibilitySeconds, int64(a.engine.Options().MaxVisibility/time.Second))
	if seconds < 0 || seconds > limit {
		return errInvalidParameterValue("Value %d for parameter VisibilityTimeout is invalid. Reason: VisibilityTimeout must be an integer between 0 and %d.", seconds, limit)
	}

	var err error
	if seconds == 0 {
		_, err = a.engine.Nack(ctx, name, r.QueueMessageID, 0)
	} else {
		_, err = a.engine.Extend(ctx, name, r.QueueMessageID, time.Duration(seconds)*time.Second)
	}
	if errors.Is(err, queue.ErrNotInflight) {
		return a.notInflight(ctx, name, r, in.ReceiptHandle)
	}
	return err
}

// notInflight returns MessageNotInflight when the handle's message still
// exists under another delivery, and InvalidParameterValue, as SQS does,
// when the message is gone.
func (a *API) notInflight(ctx context.Context, name string, r receipt, handle string) error {
	_, err := a.engine.Payload(ctx, name, r.MessageID)
	switch {
	case err == nil:
		return errMessageNotInflight()
	case errors.Is(err, queue.ErrMessageNotFound):
		return errInvalidParameterValue("Value %s for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.", handle)
	default:
		return err
	}
}

type changeVisibilityBatchInput struct {
	QueueURL string                  `json:"QueueUrl"`
	Entries  []changeVisibilityInput `json:"Entries"`
}

func (a *API) changeMessageVisibilityBatch(ctx context.Context, rq *request) (any, error) {
	var in changeVisibilityBatchInput
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

	out := batchOutput{Successful: []batchResultEntry{}, Failed: []batchResultError{}}
	for i := range in.Entries {
		e := &in.Entries[i]
		err := a.changeVisibility(ctx, name, e)
		if err == nil {
			out.Successful = append(out.Successful, batchResultEntry{ID: e.ID})
			continue
		}
		apiErr := a.engineError(rq.action, err)
		if apiErr == nil {
			return nil, err
		}
		if errors.Is(err, queue.ErrQueueNotFound) {
			return nil, err
		}
		if errors.Is(err, queue.ErrNotOwner) && len(out.Successful) == 0 {
			// Nothing was applied, so the whole request may be retried
			// on the node that serves the queue.
			return nil, err
		}
		out.Failed = append(out.Failed, batchFailure(e.ID, apiErr))
	}
	return out, nil
}
