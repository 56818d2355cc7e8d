package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/qakka/qakka/client"
)

func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}

	if _, _, err := c.CreateQueue(ctx, client.Queue{Name: "orders", HandlingTimeoutSec: 60}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.SendJSON(ctx, "orders", map[string]any{"id": 42}, client.SendOptions{}); err != nil {
		log.Fatal(err)
	}

	msgs, err := c.Receive(ctx, "orders", client.ReceiveOptions{Count: 10, Wait: new(5 * time.Second)})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Println(m.Data)
		if err := c.Ack(ctx, "orders", m.QueueMessageID); err != nil {
			log.Print(err)
		}
	}
}

func ExampleClient_Payload() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}

	msgs, err := c.Receive(ctx, "thumbnails", client.ReceiveOptions{Count: 1})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		// JSON payloads come inline; Payload fetches any other kind.
		data, contentType, err := c.Payload(ctx, m)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(contentType, len(data))
	}
}

func ExampleError() {
	// A call to an unknown queue fails with a *client.Error like this one.
	var err error = fmt.Errorf("get stats of queue %q: %w", "orders",
		&client.Error{StatusCode: 404, Message: `queue "orders" not found`})

	fmt.Println(errors.Is(err, client.ErrNotFound))

	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Message)
	}
	// Output:
	// true
	// 404 queue "orders" not found
}

func ExampleWithRetryPolicy() {
	c, err := client.New("http://127.0.0.1:8080",
		client.WithBasicAuth("app", "secret"),
		client.WithRetryPolicy(client.RetryPolicy{
			MaxAttempts:    6,
			InitialBackoff: 200 * time.Millisecond,
			MaxBackoff:     5 * time.Second,
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.BaseURL())
	// Output: http://127.0.0.1:8080/api
}
