// Package client is the Go client for Qakka's REST API: queue
// administration, sends, receives, acks, nacks, visibility extensions,
// purges, stats, audit trails, peeks and redrives.
//
// Make a Client once with New and share it, because it is safe for
// concurrent use.
// Every method takes a context first and returns when the context is done.
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithBasicAuth("app", secret))
//	if err != nil { ... }
//	if _, err := c.SendJSON(ctx, "orders", order, client.SendOptions{}); err != nil { ... }
//	msgs, err := c.Receive(ctx, "orders", client.ReceiveOptions{Count: 10, Wait: new(5 * time.Second)})
//	for _, m := range msgs {
//		process(m.Data)
//		err := c.Ack(ctx, "orders", m.QueueMessageID)
//		...
//	}
//
// # Errors
//
// A response outside 2xx is a *Error with the status code and the server's
// message. It matches the sentinels ErrBadRequest (400), ErrUnauthorized
// (401), ErrNotFound (404), ErrTooLarge (413) and ErrUnavailable (503)
// with errors.Is. Other failures (a refused connection, a cancelled
// context) come back as they are, wrapped with the operation and the queue.
//
// # Retries
//
// Only idempotent reads are retried, after a 503 or a connection error,
// as RetryPolicy describes. Sends, receives, acks, nacks, extensions,
// purges, redrives and queue changes go out once: a repeat after a lost
// response could store a message twice, leave a batch inflight, or report
// a successful ack as "message not inflight".
//
// # Wire types
//
// The request and response bodies are the plain structs in this package
// (Queue, QueueMessage, Stats and so on), which the server shares. Times are
// milliseconds since the Unix epoch (UTC) and ids are UUIDs in their
// canonical string form, as on the wire.
package client
