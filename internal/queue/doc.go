// Package queue is Qakka's queue engine: the message life cycle on top of a
// storage.Store.
//
// # Ownership
//
// One goroutine, the owner, serves each queue. It holds the queue's buffer of
// available entries (prefetched from storage, up to Options.BufferSize), its
// long-poll waiters, a heap of inflight deadlines and a heap of delayed
// entries. Requests reach it over a channel. The owner works in rounds. A
// round fires due timers, takes the queued requests and serves waiters. It
// takes up to 256 requests, and no more once its writes reach the store's
// batch limit. It commits all its writes as one storage batch before it
// replies.
// Concurrent senders of a queue therefore share one sync, and the store
// groups the syncs of different queues.
//
// # Life cycle
//
// A send stores the payload and an available (or delayed) entry. A receive
// moves entries from available to inflight, with a deadline, before it
// returns them. An ack deletes the inflight entry and the payload. A timeout
// or a nack gives the entry a new queueMessageId and Seq and makes it
// available again at the tail, or moves it to the dead-letter queue once its
// receive count is past the queue's retry count. Expired messages are
// dropped when they reach the head, the end of a delay or a timeout.
//
// # Ordering and shards
//
// Every entry gets a Seq from its queue's counter when it enters a state
// other than inflight. Available entries are delivered in Seq order. Entries
// live in shards of Options.ShardSize sequence numbers per state. The
// metadata records the head (the lowest Seq an available entry can have), so
// reads start there and never walk deleted entries, and shards are retired
// with one range deletion once nothing can live in them any more.
//
// # Crash safety
//
// Every reply follows a durable commit. On start each owner rebuilds its
// state from storage: the metadata, every inflight, delayed and moving
// entry, and the first buffer of available entries. A message whose send was
// acknowledged is therefore available, delayed, inflight with a deadline, or
// moving after any crash.
//
// # Moves between queues
//
// Dead-lettering and redrive move an entry between two queues with two
// commits: the source stores it as moving, then the target stores the new
// entry and deletes the moving one in one batch. A single mover goroutine
// carries the hand-over, so no owner waits for another.
package queue
