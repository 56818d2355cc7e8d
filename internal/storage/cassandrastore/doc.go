// Package cassandrastore is the storage.Store of a Qakka cluster: several
// Qakka nodes of one region share a Cassandra cluster (Cassandra 4.1 or 5.0,
// native protocol 4 or 5).
//
// # Keyspaces
//
// Two keyspaces, created by Open when missing (CREATE ... IF NOT EXISTS). Open
// alters an existing keyspace's tables only to migrate them from an older
// schema version:
//
//   - Config.Keyspace (default "qakka") is replicated to every region. It
//     holds what every region reads: queue configurations and payloads.
//   - Config.RegionKeyspace (default "qakka_<datacenter>") should be
//     replicated inside the local datacenter only. It holds this region's
//     queue entries, shard lists, queue metadata and audit log.
//
// Each keyspace has a schema_version table whose row ('qakka', version)
// records the layout below as version 2. Open refuses a keyspace with a newer
// version and migrates an older one: version 1 had no metas.inbox column and
// no leases table, and Open adds both (ALTER TABLE ... ADD IF NOT EXISTS,
// CREATE TABLE IF NOT EXISTS, so two nodes may migrate at once). A node of a
// version-1 build then refuses the migrated keyspace, so every node of a
// region is upgraded before it restarts on it.
//
// # Tables
//
// Replicated keyspace:
//
//	queues         PRIMARY KEY (name)
//	               one row per queue, a column per QueueConfig field
//	payloads       PRIMARY KEY ((queue, message_id))
//	               one partition per payload, TTL = until ExpiresAt + TTLGrace
//
// Region keyspace:
//
//	queue_entries  PRIMARY KEY ((queue, state, shard), seq)
//	               one partition per shard, clustered by seq ascending
//	queue_shards   PRIMARY KEY ((queue), state, shard)
//	               the shards that may hold entries of a queue
//	metas          PRIMARY KEY (queue)
//	               Meta, with Shards as a frozen list of (state, shard) tuples
//	               and Inbox as a frozen map of shard to seq
//	audit          PRIMARY KEY ((message_id), time, seq)
//	               events of one message in time order, TTL = until ExpiresAt
//	leases         PRIMARY KEY (queue)
//	               the lease of a queue: owner, epoch and expires_at, written
//	               with lightweight transactions only
//
// A shard is one partition, and its size is bounded by the queue's ShardSize,
// so no partition grows with a queue's lifetime. ScanShard reads one
// partition from the seq the engine gives it, so rows deleted before that seq
// are never read again, and RetireShards is one partition deletion (plus the
// removal of the shard's row in queue_shards).
//
// NOTE: the incoming state is the exception. It has one shard per writer
// node, in which Seq grows with time, so such a partition grows for as long
// as the node writes to the queue unless the engine retires it. Its adopted
// entries stay as tombstones until gc_grace_seconds pass, and ScanShard
// skips them by starting at the owner's inbox position.
//
// queue_shards exists for DeleteQueue, which must find every entry partition
// of a queue: Cassandra cannot list the partitions of a table by a prefix of
// their key. Commit adds the shard of every entry it puts, and a shard
// retirement removes it, so a queue's row count there is the number of shards
// that may hold entries. Shards reads the rows of one state from it.
//
// # Encoding
//
// Times are bigint nanoseconds since the Unix epoch, because CQL's timestamp
// type keeps milliseconds only; the zero time is stored as the minimum bigint.
// Durations are bigint nanoseconds. Sequence numbers and shard ids are
// unsigned in the model and stored as bigint; Commit rejects values above
// math.MaxInt64, where the signed clustering order would break.
//
// # Writes
//
// Commit writes payloads first, each with its own statement. It then writes
// entries, shard registrations and retirements, metadata and payload
// deletions in one logged batch, which Cassandra applies atomically through
// its batchlog, and last the audit events, each with its own statement. The
// comment on Commit explains why that order is safe, and why audit events
// are not part of the batch's atomicity.
//
// Every write carries a client timestamp in microseconds that is strictly
// increasing within one Store, because Cassandra settles concurrent writes of
// a cell by timestamp and a deletion wins a tie. Writes with fixed timestamps
// are idempotent, so the driver retries them (twice) on timeouts.
//
// Queue configurations are written with lightweight transactions only
// (INSERT ... IF NOT EXISTS, UPDATE ... IF EXISTS, DELETE ... IF EXISTS) at
// Config.SerialConsistency, so that a name is created once even when two
// nodes race. A transaction that times out is run again, up to four times.
//
// # Leases
//
// Store implements storage.LeaseStore on the leases table of the region
// keyspace. Every write to it is a lightweight transaction at
// Config.SerialConsistency, and every read is at that level, so the lease
// changes of one queue are linearizable. AcquireLease reads the lease and
// then writes the next one only if the row is still what it read (INSERT
// ... IF NOT EXISTS, or UPDATE ... IF epoch = ? AND expires_at = ?).
// RenewLease and ReleaseLease apply only to the owner and epoch they name.
// When a transaction times out, its outcome is unknown. A read at the serial
// level then settles it, because such a read completes any transaction in
// progress on the row.
//
// A Cassandra batch that spans partitions cannot be conditional, so a fenced
// Commit cannot make its writes depend on the lease. It checks the lease
// first instead, with a lightweight transaction on the lease's Paxos
// partition (UPDATE leases SET fenced_at = ? ... IF owner = ? AND epoch = ?
// AND expires_at > ?, at Fence.Now), and writes the batch only when that
// transaction applied. A fence that does not hold writes nothing.
//
// What remains is a window: a batch that passed its fence may still be in
// flight while the lease moves to another node. The fence saw the lease
// unexpired at Fence.Now, and a new holder takes a lease only after it
// expired before now-settle, so the old holder's writes are safe if they end
// less than settle after its fence. Each write of Commit is bounded by
// Config.Timeout (and the driver retries a timed-out write up to twice), so
// a settle time longer than the time those writes can take, plus the clock
// skew between the nodes, closes the window. The engine chooses the settle
// time.
//
// NOTE: a logged batch whose coordinator fails after writing the batchlog is
// replayed by Cassandra itself, possibly later than any client timeout. The
// replayed writes carry the old holder's timestamp, so they lose to every
// later write of the same cells, but entries they add stay.
//
// # Batch size
//
// Cassandra rejects a logged batch that spans several partitions when its
// data exceeds batch_size_fail_threshold (50 KiB by default), and logs a
// warning above batch_size_warn_threshold (5 KiB by default). The sizes that
// Cassandra 5.0.8 logs for such batches give these costs per statement:
//
//   - an entry put: about 340 bytes with short names and content types, and
//     740 bytes with an 80-character queue, source and target queue and a
//     255-character content type;
//   - an entry or payload deletion: 29 bytes;
//   - a queue's metadata: about 500 bytes.
//
// Store implements storage.BatchLimiter with 64 writes: the engine stops
// adding requests to a round once the round counts that many writes (audit
// events and payload puts included, although they are outside the batch).
// One more request can still join the round, and the largest is a receive
// of 100 messages, 100 entry puts and 100 deletions. Computed from the sizes
// above, the largest round is then about 47 KiB with short fields, within
// the default threshold, and up to about 100 KiB with every field at its
// maximum length (TestCommitWorstCaseRound commits such rounds, 88 KiB for a
// receive and 77 KiB for a send). A cluster that serves Qakka therefore sets,
// in cassandra.yaml of every node:
//
//	batch_size_fail_threshold: 128KiB
//	batch_size_warn_threshold: 64KiB
//
// The warning threshold only keeps the node's log quiet for ordinary rounds.
// A commit rejected as too large fails with an error that names the setting.
//
// A single request can exceed MaxBatchWrites (a 100-message send or receive);
// the engine bounds everything else, including each step of a purge or a
// redrive, by it.
//
// # Consistency
//
// Reads and writes use Config.Consistency, LOCAL_QUORUM by default: a read
// sees every write acknowledged in the local datacenter, which is what a
// queue's owner needs when it takes over from another node. The serial
// consistency of lightweight transactions is SERIAL by default, because queue
// names are global; LOCAL_SERIAL trades that for availability when other
// regions are unreachable. A configuration read after a lost race uses the
// serial level, so it sees the winning transaction.
//
// Requests go to a replica of their partition first (token-aware routing over
// DC-aware round robin in Config.LocalDatacenter). The driver computes the
// routing key from prepared statements; it prepares every statement that has
// bound values, which is every statement here except schema changes.
//
// # Durability
//
// Commit returns after the batch is acknowledged at Config.Consistency. With
// Cassandra's default commitlog_sync of "periodic", a replica acknowledges a
// write before its commit log is synced, so a write can be lost if every
// replica that acknowledged it loses power within commitlog_sync_period
// (10 s by default). Clusters that need every acknowledged write to survive
// such a failure set commitlog_sync to "batch" or "group".
package cassandrastore
