package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Stats returns the queue's current counts and event totals. Reads are
// retried on failures that a repeat can fix.
func (c *Client) Stats(ctx context.Context, queue string) (Stats, error) {
	path, err := queuePath(queue, "stats")
	if err != nil {
		return Stats{}, err
	}
	var out Stats
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: path, retry: true}, &out); err != nil {
		return Stats{}, fmt.Errorf("get stats of queue %q: %w", queue, err)
	}
	return out, nil
}

// Audit returns every recorded event of the message with the given
// messageId (not a queueMessageId), in time order. Reads are retried on
// failures that a repeat can fix.
func (c *Client) Audit(ctx context.Context, queue, messageID string) (AuditTrail, error) {
	if messageID == "" {
		return AuditTrail{}, errors.New("audit: messageId must not be empty")
	}
	path, err := queuePath(queue, "messages", messageID, "audit")
	if err != nil {
		return AuditTrail{}, err
	}
	var out AuditTrail
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: path, retry: true}, &out); err != nil {
		return AuditTrail{}, fmt.Errorf("get audit trail of message %s in queue %q: %w", messageID, queue, err)
	}
	return out, nil
}

// PeekOptions select the messages that Peek lists.
type PeekOptions struct {
	// State limits the listing to one state: available, delayed, inflight
	// or moving. Empty means every state.
	State string
	// Cursor continues a listing from the Next of an earlier page.
	Cursor string
	// Limit is the maximum number of entries in the page. Zero means the
	// server's default.
	Limit int
}

// Peek lists messages of the queue without changing them, one page at a
// time: pass the page's Next as opts.Cursor to read the following one.
// Reads are retried on failures that a repeat can fix.
func (c *Client) Peek(ctx context.Context, queue string, opts PeekOptions) (PeekPage, error) {
	path, err := queuePath(queue, "peek")
	if err != nil {
		return PeekPage{}, err
	}
	if opts.Limit < 0 {
		return PeekPage{}, fmt.Errorf("peek: limit %d must not be negative", opts.Limit)
	}
	query := url.Values{}
	if opts.State != "" {
		query.Set("state", opts.State)
	}
	if opts.Cursor != "" {
		query.Set("cursor", opts.Cursor)
	}
	if opts.Limit > 0 {
		query.Set("limit", strconv.Itoa(opts.Limit))
	}

	var out PeekPage
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: path, query: query, retry: true}, &out); err != nil {
		return PeekPage{}, fmt.Errorf("peek queue %q: %w", queue, err)
	}
	if out.Entries == nil {
		out.Entries = []PeekEntry{}
	}
	return out, nil
}

// Redrive moves messages from a dead-letter queue back to the queues they
// came from, at most maxMessages of them (zero means all). It is never retried
// automatically: a repeat would move messages that were dead-lettered after
// the first attempt.
func (c *Client) Redrive(ctx context.Context, queue string, maxMessages int) (RedriveResult, error) {
	path, err := queuePath(queue, "redrive")
	if err != nil {
		return RedriveResult{}, err
	}
	if maxMessages < 0 {
		return RedriveResult{}, fmt.Errorf("redrive: max %d must not be negative", maxMessages)
	}
	query := url.Values{}
	if maxMessages > 0 {
		query.Set("max", strconv.Itoa(maxMessages))
	}

	var out RedriveResult
	if err := c.doJSON(ctx, request{method: http.MethodPost, path: path, query: query}, &out); err != nil {
		return RedriveResult{}, fmt.Errorf("redrive queue %q: %w", queue, err)
	}
	return out, nil
}

// Status returns the server's name, version, storage backend and uptime.
// Reads are retried on failures that a repeat can fix.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: "/status", retry: true}, &out); err != nil {
		return Status{}, fmt.Errorf("get status: %w", err)
	}
	return out, nil
}
