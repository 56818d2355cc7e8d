// Package region sends messages and queue configurations to other regions
// through a durable outbox, and stores those that other regions send here.
//
// Each region is its own deployment with its own store. A send names the
// regions it goes to (see Router.Resolve); each region delivers the
// message to its own consumers.
//
// # Outbox
//
// The outbox (transfer log) of remote region R is the queue _transfer.R on
// the local engine, so it is as durable as any queue and has its
// visibility timeouts, delays, expiration and audit trail. Each entry is
// an Envelope in JSON: a message (payload, attributes, delivery and
// expiration times, source region, and its queue's configuration) or a
// queue configuration. A message entry has the message's id and
// expiration, so the message's audit trail lists its outbox events, and
// the engine drops and audits the entry once the message expires.
//
// A send with remote destinations generates the message id, then stores the
// local copy (when the local region is a destination) and one outbox entry
// per remote region, concurrently, and returns when all are durable. The
// writes are not atomic together: a send that fails may have reached some
// regions, and a client that sends it again makes a second message there.
//
// # Sender
//
// One goroutine per remote region receives up to Config.BatchSize entries
// from its outbox and POSTs them to TransferPath on the region's
// endpoints, trying the next endpoint when one fails. An entry the region
// stored is acked. Any other is nacked with a delay that doubles with its
// receive count, from Config.BackoffBase up to Config.BackoffMax, with
// jitter. When no endpoint replies, the sender also pauses before its next
// receive. An entry whose ack failed, or whose server crashed during the
// POST, is sent again after its visibility timeout.
//
// # Receiving endpoint
//
// TransferHandler stores each message with engine.Send and the message's
// id, which the engine stores once per queue within the maximum TTL, so a
// POST sent again stores nothing twice. Delays and expirations are
// measured from the sender's clock in the request, so clock skew between
// regions does not shift them. A missing queue is created from the
// configuration in the entry. Queue-config entries create the queue or
// replace its configuration. The sender reads the queue's configuration
// when it POSTs, so entries arriving out of order still leave the newest.
//
// # Guarantees
//
// A send that returned is stored in every destination region unless it
// expires first. The destination stores it once per messageId while it
// keeps the message's audit trail, which is the maximum TTL after the
// store. There is no order across regions, and within one region a
// message that needed a retry can arrive after messages sent later.
package region
