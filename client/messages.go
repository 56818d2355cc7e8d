package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SendOptions are the optional settings of a send.
type SendOptions struct {
	// ContentType is stored with the payload and returned with it. The
	// default is application/octet-stream. A JSON type such as
	// application/json makes receivers get the payload inline.
	ContentType string
	// Delay postpones delivery, in whole milliseconds. Nil means the queue's
	// default delay, and a pointer to zero means no delay.
	Delay *time.Duration
	// Expiration drops the message if it is still unacked after this long,
	// in whole seconds. Zero means the queue's retention.
	Expiration time.Duration
	// Regions names the regions to store the message in: comma-separated
	// region names and the keywords LOCAL, ALL and REMOTE. Empty means the
	// queue's defaultDestinations, or LOCAL when it has none.
	Regions string
}

// Send stores one message in the queue and returns its ids once the server
// has stored it durably. The payload goes in the request body as it is,
// with opts.ContentType as its Content-Type.
//
// Send is never retried automatically: if the response is lost after the
// server stored the message, a repeat would store it twice. The caller
// decides whether a duplicate is acceptable.
func (c *Client) Send(ctx context.Context, queue string, data []byte, opts SendOptions) (SendResult, error) {
	path, err := queuePath(queue, "messages")
	if err != nil {
		return SendResult{}, err
	}
	query := url.Values{}
	if opts.Delay != nil {
		ms, err := wholeUnits(*opts.Delay, time.Millisecond, "delay")
		if err != nil {
			return SendResult{}, err
		}
		query.Set("delay", strconv.FormatInt(ms, 10))
	}
	if opts.Expiration != 0 {
		secs, err := wholeUnits(opts.Expiration, time.Second, "expiration")
		if err != nil {
			return SendResult{}, err
		}
		query.Set("expiration", strconv.FormatInt(secs, 10))
	}
	if opts.Regions != "" {
		query.Set("regions", opts.Regions)
	}
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if data == nil {
		data = []byte{}
	}

	var out SendResponse
	r := request{method: http.MethodPost, path: path, query: query, body: data, contentType: contentType}
	if err := c.doJSON(ctx, r, &out); err != nil {
		return SendResult{}, fmt.Errorf("send to queue %q: %w", queue, err)
	}
	return out.SendResult, nil
}

// SendJSON encodes v as JSON and sends it with Content-Type
// application/json, so receivers get it inline. opts.ContentType is
// ignored. Like Send, it is never retried automatically.
func (c *Client) SendJSON(ctx context.Context, queue string, v any, opts SendOptions) (SendResult, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return SendResult{}, fmt.Errorf("send to queue %q: encode payload: %w", queue, err)
	}
	opts.ContentType = "application/json"
	return c.Send(ctx, queue, data, opts)
}

// SendBatch stores several messages in one request. Each entry succeeds or
// fails on its own: the response lists one result per entry, in order, and
// the error is nil unless the request as a whole failed. The server bounds
// the number of entries (100 by default).
//
// SendBatch is never retried automatically, for the same reason as Send.
func (c *Client) SendBatch(ctx context.Context, queue string, entries []BatchSendEntry) (BatchSendResponse, error) {
	return c.SendBatchToRegions(ctx, queue, "", entries)
}

// SendBatchToRegions is SendBatch with the regions to store every message
// in, as SendOptions.Regions names them.
func (c *Client) SendBatchToRegions(ctx context.Context, queue, regions string, entries []BatchSendEntry) (BatchSendResponse, error) {
	path, err := queuePath(queue, "messages", "batch")
	if err != nil {
		return BatchSendResponse{}, err
	}
	if len(entries) == 0 {
		return BatchSendResponse{}, errors.New("send batch: no messages given")
	}
	body, err := jsonBody(BatchSendRequest{Messages: entries})
	if err != nil {
		return BatchSendResponse{}, err
	}

	query := url.Values{}
	if regions != "" {
		query.Set("regions", regions)
	}
	var out BatchSendResponse
	r := request{method: http.MethodPost, path: path, query: query, body: body, contentType: "application/json"}
	if err := c.doJSON(ctx, r, &out); err != nil {
		return BatchSendResponse{}, fmt.Errorf("send batch to queue %q: %w", queue, err)
	}
	return out, nil
}

// ReceiveOptions are the optional settings of a receive.
type ReceiveOptions struct {
	// Count is the maximum number of messages to return. Zero means 1.
	Count int
	// Wait is how long the server waits for a first message when none is
	// available, in whole milliseconds. Nil means the queue's receive wait,
	// and a pointer to zero means return at once.
	Wait *time.Duration
	// Visibility overrides the queue's visibility timeout for these
	// deliveries, in whole seconds. Zero means the queue's timeout.
	Visibility time.Duration
}

// Receive moves up to opts.Count available messages to inflight and returns
// them, waiting up to opts.Wait for a first one. It returns an empty slice,
// not an error, when none arrived. Each message must be acked by its
// QueueMessageID before its VisibleUntil deadline, or it is delivered again.
// The caller's context must outlast the wait.
//
// Receive is never retried automatically: a repeat after a lost response
// would leave the first batch inflight, invisible to every consumer until
// its visibility timeout.
func (c *Client) Receive(ctx context.Context, queue string, opts ReceiveOptions) ([]QueueMessage, error) {
	path, err := queuePath(queue, "messages")
	if err != nil {
		return nil, err
	}
	if opts.Count < 0 {
		return nil, fmt.Errorf("receive: count %d must be at least 1", opts.Count)
	}
	query := url.Values{}
	if opts.Count > 0 {
		query.Set("count", strconv.Itoa(opts.Count))
	}
	if opts.Wait != nil {
		ms, err := wholeUnits(*opts.Wait, time.Millisecond, "wait")
		if err != nil {
			return nil, err
		}
		query.Set("wait", strconv.FormatInt(ms, 10))
	}
	if opts.Visibility != 0 {
		secs, err := wholeUnits(opts.Visibility, time.Second, "visibility")
		if err != nil {
			return nil, err
		}
		query.Set("visibility", strconv.FormatInt(secs, 10))
	}

	var out ReceiveResponse
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: path, query: query}, &out); err != nil {
		return nil, fmt.Errorf("receive from queue %q: %w", queue, err)
	}
	if out.QueueMessages == nil {
		out.QueueMessages = []QueueMessage{}
	}
	return out.QueueMessages, nil
}

// MessageData returns the payload of a message that is available or
// inflight, and its stored content type. Reads are retried on failures
// that a repeat can fix.
func (c *Client) MessageData(ctx context.Context, queue, queueMessageID string) (data []byte, contentType string, err error) {
	if queueMessageID == "" {
		return nil, "", errors.New("get message data: queueMessageId must not be empty")
	}
	path, err := queuePath(queue, "data", queueMessageID)
	if err != nil {
		return nil, "", err
	}

	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, retry: true})
	if err != nil {
		return nil, "", fmt.Errorf("get data of message %s in queue %q: %w", queueMessageID, queue, err)
	}
	defer resp.Body.Close()

	data, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("get data of message %s in queue %q: read body: %w", queueMessageID, queue, err)
	}
	return data, resp.Header.Get("Content-Type"), nil
}

// Payload returns the payload of a received message: the inline Data of a
// JSON payload, or else the payload fetched with MessageData.
func (c *Client) Payload(ctx context.Context, m QueueMessage) (data []byte, contentType string, err error) {
	if m.Href == "" {
		return []byte(m.Data), m.ContentType, nil
	}
	return c.MessageData(ctx, m.QueueName, m.QueueMessageID)
}

// Ack deletes an inflight message, identified by the QueueMessageID of its
// current delivery. A message that is no longer inflight (acked already,
// delivered again after its visibility timeout, purged) is an error that
// matches ErrBadRequest.
//
// Ack is never retried automatically: if the first attempt deleted the
// message and its response was lost, a repeat would report the message as
// not inflight, which looks like a lost lease when it was a success.
func (c *Client) Ack(ctx context.Context, queue, queueMessageID string) error {
	path, err := messagePath(queue, queueMessageID)
	if err != nil {
		return err
	}
	if err := c.doJSON(ctx, request{method: http.MethodDelete, path: path}, nil); err != nil {
		return fmt.Errorf("ack message %s in queue %q: %w", queueMessageID, queue, err)
	}
	return nil
}

// AckBatch acks several inflight messages in one request. Each id succeeds
// or fails on its own: the response lists one result per id, in order, and
// the error is nil unless the request as a whole failed. Like Ack, it is
// never retried automatically.
func (c *Client) AckBatch(ctx context.Context, queue string, queueMessageIDs []string) (BatchAckResponse, error) {
	path, err := queuePath(queue, "messages", "ack")
	if err != nil {
		return BatchAckResponse{}, err
	}
	if len(queueMessageIDs) == 0 {
		return BatchAckResponse{}, errors.New("ack batch: no queueMessageIds given")
	}
	body, err := jsonBody(BatchAckRequest{QueueMessageIDs: queueMessageIDs})
	if err != nil {
		return BatchAckResponse{}, err
	}

	var out BatchAckResponse
	r := request{method: http.MethodPost, path: path, body: body, contentType: "application/json"}
	if err := c.doJSON(ctx, r, &out); err != nil {
		return BatchAckResponse{}, fmt.Errorf("ack batch in queue %q: %w", queue, err)
	}
	return out, nil
}

// Nack returns an inflight message to its queue, available again after
// delay, in whole milliseconds (zero means at once). The message gets a new
// QueueMessageID, or moves to the dead-letter queue when it was received
// more often than the queue's retry count.
//
// Nack is never retried automatically, for the same reason as Ack.
func (c *Client) Nack(ctx context.Context, queue, queueMessageID string, delay time.Duration) (NackResult, error) {
	path, err := messagePath(queue, queueMessageID)
	if err != nil {
		return NackResult{}, err
	}
	query := url.Values{}
	if delay != 0 {
		ms, err := wholeUnits(delay, time.Millisecond, "delay")
		if err != nil {
			return NackResult{}, err
		}
		query.Set("delay", strconv.FormatInt(ms, 10))
	}

	var out NackResult
	if err := c.doJSON(ctx, request{method: http.MethodPut, path: path, query: query}, &out); err != nil {
		return NackResult{}, fmt.Errorf("nack message %s in queue %q: %w", queueMessageID, queue, err)
	}
	return out, nil
}

// Extend sets the deadline of an inflight message to visibility (whole
// seconds) from now, for work that takes longer than the visibility
// timeout. Zero means the queue's visibility timeout. The QueueMessageID
// stays valid.
//
// Extend is never retried automatically: a late repeat would set the
// deadline again, later than the caller asked.
func (c *Client) Extend(ctx context.Context, queue, queueMessageID string, visibility time.Duration) (ExtendResult, error) {
	path, err := messagePath(queue, queueMessageID, "extend")
	if err != nil {
		return ExtendResult{}, err
	}
	query := url.Values{}
	if visibility != 0 {
		secs, err := wholeUnits(visibility, time.Second, "visibility")
		if err != nil {
			return ExtendResult{}, err
		}
		query.Set("visibility", strconv.FormatInt(secs, 10))
	}

	var out ExtendResult
	if err := c.doJSON(ctx, request{method: http.MethodPost, path: path, query: query}, &out); err != nil {
		return ExtendResult{}, fmt.Errorf("extend message %s in queue %q: %w", queueMessageID, queue, err)
	}
	return out, nil
}

// Purge deletes every available, delayed and inflight message of the queue
// and keeps the queue. It sends the confirmation that the server requires,
// so the caller is the one to ask for it.
//
// Purge is never retried automatically: a repeat would delete messages sent
// after the first attempt.
func (c *Client) Purge(ctx context.Context, queue string) (PurgeResult, error) {
	path, err := queuePath(queue, "messages")
	if err != nil {
		return PurgeResult{}, err
	}
	var out PurgeResult
	r := request{method: http.MethodDelete, path: path, query: url.Values{"confirm": {"true"}}}
	if err := c.doJSON(ctx, r, &out); err != nil {
		return PurgeResult{}, fmt.Errorf("purge queue %q: %w", queue, err)
	}
	return out, nil
}

func messagePath(queue, queueMessageID string, elems ...string) (string, error) {
	if queueMessageID == "" {
		return "", errors.New("queueMessageId must not be empty")
	}
	return queuePath(queue, append([]string{"messages", queueMessageID}, elems...)...)
}

// wholeUnits converts d to a count of unit, and rejects a negative d or one
// that is not a whole number of units, so no value is rounded silently.
func wholeUnits(d, unit time.Duration, name string) (int64, error) {
	if d < 0 {
		return 0, fmt.Errorf("%s %s must not be negative", name, d)
	}
	if d%unit != 0 {
		return 0, fmt.Errorf("%s %s is not a whole number of %s", name, d, unitName(unit))
	}
	return int64(d / unit), nil
}

func unitName(unit time.Duration) string {
	if unit == time.Second {
		return "seconds"
	}
	return "milliseconds"
}
