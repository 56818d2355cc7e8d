package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// CreateQueue creates the queue that q describes, with q.Name as its name.
// Fields left zero take the server's defaults. created is true when the
// queue is new (201) and false when a queue of that name already existed
// (200), in which case nothing changed. The returned Queue is the stored
// configuration, or q when the server returned none.
//
// CreateQueue is sent once, without automatic retries.
func (c *Client) CreateQueue(ctx context.Context, q Queue) (stored Queue, created bool, err error) {
	if q.Name == "" {
		return Queue{}, false, fmt.Errorf("create queue: queue name must not be empty")
	}
	body, err := jsonBody(q)
	if err != nil {
		return Queue{}, false, err
	}

	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/queues", body: body, contentType: "application/json"})
	if err != nil {
		return Queue{}, false, fmt.Errorf("create queue %q: %w", q.Name, err)
	}
	defer resp.Body.Close()

	var out Response
	if err := decodeBody(resp, &out); err != nil {
		return Queue{}, false, fmt.Errorf("create queue %q: %w", q.Name, err)
	}
	stored = q
	if len(out.Queues) > 0 {
		stored = out.Queues[0]
	}
	return stored, resp.StatusCode == http.StatusCreated, nil
}

// ListQueues returns the names of all queues. The slice is the caller's.
func (c *Client) ListQueues(ctx context.Context) ([]string, error) {
	var names []string
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: "/queues", retry: true}, &names); err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// GetQueue returns the configuration of the named queue. An unknown queue
// is an error that matches ErrNotFound.
func (c *Client) GetQueue(ctx context.Context, name string) (Queue, error) {
	path, err := queuePath(name, "config")
	if err != nil {
		return Queue{}, err
	}
	var out Response
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: path, retry: true}, &out); err != nil {
		return Queue{}, fmt.Errorf("get queue %q: %w", name, err)
	}
	if len(out.Queues) == 0 {
		return Queue{}, fmt.Errorf("get queue %q: the response contains no queue", name)
	}
	return out.Queues[0], nil
}

// UpdateQueue replaces the configuration of the queue q.Name with q and
// returns the stored result. It replaces every field: one left zero takes
// its default. To change a few fields, read the configuration with GetQueue,
// change it and pass it back.
//
// UpdateQueue is sent once, without automatic retries.
func (c *Client) UpdateQueue(ctx context.Context, q Queue) (Queue, error) {
	path, err := queuePath(q.Name, "config")
	if err != nil {
		return Queue{}, err
	}
	body, err := jsonBody(q)
	if err != nil {
		return Queue{}, err
	}

	var out Response
	r := request{method: http.MethodPut, path: path, body: body, contentType: "application/json"}
	if err := c.doJSON(ctx, r, &out); err != nil {
		return Queue{}, fmt.Errorf("update queue %q: %w", q.Name, err)
	}
	if len(out.Queues) == 0 {
		return q, nil
	}
	return out.Queues[0], nil
}

// DeleteQueue deletes the named queue and every message in it. It sends the
// confirmation that the server requires, so the caller is the one to ask
// for it.
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	path, err := queuePath(name)
	if err != nil {
		return err
	}
	r := request{method: http.MethodDelete, path: path, query: url.Values{"confirm": {"true"}}}
	if err := c.doJSON(ctx, r, nil); err != nil {
		return fmt.Errorf("delete queue %q: %w", name, err)
	}
	return nil
}
