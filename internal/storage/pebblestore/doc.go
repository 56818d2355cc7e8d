// Package pebblestore is the embedded storage backend: a storage.Store on one
// Pebble database (github.com/cockroachdb/pebble/v2) in a local directory.
//
// # Key layout
//
// Every key starts with one byte that names its key space. Queue names end
// with a NUL byte, which a name cannot contain, so the keys of queue "a" never
// share a prefix with those of "a.b" or "ab", and keys sort by queue name.
// Integers are big-endian, so byte order is numeric order. Times in keys are
// Unix nanoseconds with the sign bit flipped, so byte order is time order.
//
//	0x01 name 0x00                              queue configuration
//	0x02 name 0x00                              queue metadata
//	0x03 name 0x00 state:1 shard:8 seq:8        entry
//	0x04 name 0x00 message-id:16                payload
//	0x05 message-id:16 time:8 seq:4             audit event
//	0x06 expires:8 message-id:16 time:8 seq:4   audit expiry index, empty value
//	0x07 name 0x00                              queue lease
//
// Values use the record encoding of the storage package (storage.MarshalEntry
// and the like): a version byte and every field of the record, key fields
// included.
//
// With this layout:
//   - ScanShard is one seek to (queue, state, shard, from), with iterator
//     bounds that end at the shard's last key.
//   - Shards reads the first key of each shard of (queue, state) and then
//     seeks to the start of the next shard, so it costs one seek per shard
//     whatever the shards hold. It returns the shards that hold entries.
//   - RetireShards is one range deletion over (queue, state, shard).
//   - DeleteQueue is two point deletions (configuration and metadata) and two
//     range deletions (entries and payloads) in one batch. It keeps the
//     queue's lease, so epochs keep growing when the name is used again.
//   - Audit is a prefix scan over one message id, ordered by time and Seq.
//   - ExpireAudit walks the expiry index from its start up to the current
//     time and deletes each index key together with the event it points to.
//
// NB: an audit event written twice with different ExpiresAt values keeps both
// index keys, and the earlier one deletes the event. The queue engine writes
// each event once.
//
// # Leases
//
// Store implements storage.LeaseStore for engines that share one Store in
// one process. A lease is one key, written with a synced batch. Lease changes
// and fenced commits of a queue take one of a fixed set of read-write locks,
// chosen by the queue name. A lease change holds the lock for writing while
// it reads and writes the lease. A fenced commit holds it for reading from
// the check of its fence until its batch is applied. So a commit whose fence
// held is applied before any later change of the lease, and one whose fence
// no longer holds writes nothing. Leases do not coordinate processes, since
// Pebble locks its directory to one process at a time.
//
// # Durability
//
// Every write (Commit, CreateQueue, UpdateQueue, DeleteQueue, each lease
// change and each batch of ExpireAudit) is one Pebble batch committed with
// pebble.Sync: the call returns after the write-ahead log holding the batch is
// fsynced. Pebble groups the WAL syncs of concurrent commits, so many queues
// committing at once share fsyncs. The WAL is never disabled. Memtable
// flushes and compactions write and fsync sstables and the manifest in the
// background. A crash at any point loses no committed batch, because opening
// the store replays the WAL.
//
// Per-entry deletions are point tombstones. Pebble v2 compacts key ranges that
// are dense with tombstones by default, which keeps seeks at the head of a
// queue fast after many acks.
//
// # Format
//
// A new store is created with a pinned Pebble format major version (see
// formatVersion). Pebble upgrades the on-disk format only forward, so the
// version changes only by editing that constant.
package pebblestore
