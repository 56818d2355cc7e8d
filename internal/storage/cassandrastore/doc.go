// Package cassandrastore is the storage.Store of a Qakka cluster: several
// Qakka nodes of one region share a Cassandra cluster (Cassandra 4.1 or 5.0,
// native protocol 4 or 5).
//
// # Keyspaces
//
// Two keyspaces, created by Open when missing (CREATE ... IF NOT EXISTS; Open
// never alters an existing keyspace or table):
//
//   - Config.Keyspace (default "qakka") is replicated to every region. It
//     holds what every region reads: queue configurations and payloads.
//   - Config.RegionKeyspace (default "qakka_<datacenter>") should be
//     replicated inside the local datacenter only. It holds this region's
//     queue entries, shard lists, queue metadata and audit log.
//
// Each keyspace has a schema_version table whose row ('qakka', version)
// records the layout below as version 1. Open refuses a keyspace with a newer
// version, and will migrate older ones once a version 2 exists.
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
//	audit          PRIMARY KEY ((message_id), time, seq)
//	               events of one message in time order, TTL = until ExpiresAt
//
// A shard is one partition, and its size is bounded by the queue's ShardSize,
// so no partition grows with a queue's lifetime. ScanShard reads one
// partition from the seq the engine gives it, so rows deleted before that seq
// are never read again, and RetireShards is one partition deletion (plus the
// removal of the shard's row in queue_shards).
//
// queue_shards exists for DeleteQueue, which must find every entry partition
// of a queue: Cassandra cannot list the partitions of a table by a prefix of
// their key. Commit adds the shard of every entry it puts, and a shard
// retirement removes it, so a queue's row count there is the number of shards
// that may hold entries.
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
// everything else in one logged batch, which Cassandra applies atomically
// through its batchlog. The comment on Commit explains why that order is safe. A logged batch that spans
// several partitions is rejected when its data exceeds the server's
// batch_size_fail_threshold (50 KiB by default). In Cassandra 5.0 one queue
// entry counts about 340 bytes there (measured on a single node with the test
// fixtures), so the default admits about 140 entries per commit; an audit
// event adds about as much. Clusters whose commits are larger must raise the
// threshold.
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
