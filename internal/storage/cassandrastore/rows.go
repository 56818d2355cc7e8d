package cassandrastore

import (
	"fmt"
	"math"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// statements holds the CQL of every statement, with keyspace names filled in.
type statements struct {
	insertQueue, updateQueue, deleteQueue, selectQueue, selectQueues string

	insertPayload, deletePayload, selectPayload string

	insertEntry, deleteEntry, deleteShard, selectShard, selectShardMessageIDs string

	insertShardRef, deleteShardRef, deleteShardRefs, selectShardRefs, selectStateShards string

	insertMeta, deleteMeta, selectMeta string

	insertAudit, selectAudit string

	selectLease, insertLease, takeLease, renewLease, releaseLease, fenceLease string
}

const (
	queueColumns = "name, visibility_timeout, default_delay, retry_count, dead_letter_queue, " +
		"max_message_size, retention, receive_wait, regions, default_destinations, tags, created_at, updated_at"
	payloadColumns = "queue, message_id, content_type, data, attributes, expires_at"
	entryColumns   = "queue, state, shard, seq, id, message_id, created_at, sent_at, due_at, expires_at, " +
		"receive_count, content_type, size, source_queue, target_queue"
	metaColumns = "queue, shard_size, next_seq, head, available, shards, sent, received, acked, nacked, " +
		"timed_out, expired, dead_lettered, redriven, purged, inbox"
	auditColumns = "message_id, time, seq, action, queue, queue_message_id, receive_count, detail, expires_at"
)

func newStatements(replicated, region string) statements {
	return statements{
		insertQueue: fmt.Sprintf("INSERT INTO %s.queues (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS",
			replicated, queueColumns),
		updateQueue: fmt.Sprintf("UPDATE %s.queues SET visibility_timeout = ?, default_delay = ?, retry_count = ?, "+
			"dead_letter_queue = ?, max_message_size = ?, retention = ?, receive_wait = ?, regions = ?, "+
			"default_destinations = ?, tags = ?, created_at = ?, updated_at = ? WHERE name = ? IF EXISTS", replicated),
		deleteQueue:  fmt.Sprintf("DELETE FROM %s.queues WHERE name = ? IF EXISTS", replicated),
		selectQueue:  fmt.Sprintf("SELECT %s FROM %s.queues WHERE name = ?", queueColumns, replicated),
		selectQueues: fmt.Sprintf("SELECT %s FROM %s.queues", queueColumns, replicated),

		insertPayload: fmt.Sprintf("INSERT INTO %s.payloads (%s) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?",
			replicated, payloadColumns),
		deletePayload: fmt.Sprintf("DELETE FROM %s.payloads WHERE queue = ? AND message_id = ?", replicated),
		selectPayload: fmt.Sprintf("SELECT %s FROM %s.payloads WHERE queue = ? AND message_id = ?",
			payloadColumns, replicated),

		insertEntry: fmt.Sprintf("INSERT INTO %s.queue_entries (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			region, entryColumns),
		deleteEntry:           fmt.Sprintf("DELETE FROM %s.queue_entries WHERE queue = ? AND state = ? AND shard = ? AND seq = ?", region),
		selectShardMessageIDs: fmt.Sprintf("SELECT message_id FROM %s.queue_entries WHERE queue = ? AND state = ? AND shard = ?", region),
		deleteShard:           fmt.Sprintf("DELETE FROM %s.queue_entries WHERE queue = ? AND state = ? AND shard = ?", region),
		selectShard: fmt.Sprintf("SELECT %s FROM %s.queue_entries WHERE queue = ? AND state = ? AND shard = ? AND seq >= ? LIMIT ?",
			entryColumns, region),

		insertShardRef:    fmt.Sprintf("INSERT INTO %s.queue_shards (queue, state, shard) VALUES (?, ?, ?)", region),
		deleteShardRef:    fmt.Sprintf("DELETE FROM %s.queue_shards WHERE queue = ? AND state = ? AND shard = ?", region),
		deleteShardRefs:   fmt.Sprintf("DELETE FROM %s.queue_shards WHERE queue = ?", region),
		selectShardRefs:   fmt.Sprintf("SELECT state, shard FROM %s.queue_shards WHERE queue = ?", region),
		selectStateShards: fmt.Sprintf("SELECT shard FROM %s.queue_shards WHERE queue = ? AND state = ?", region),

		insertMeta: fmt.Sprintf("INSERT INTO %s.metas (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			region, metaColumns),
		deleteMeta: fmt.Sprintf("DELETE FROM %s.metas WHERE queue = ?", region),
		selectMeta: fmt.Sprintf("SELECT %s FROM %s.metas WHERE queue = ?", metaColumns, region),

		insertAudit: fmt.Sprintf("INSERT INTO %s.audit (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?",
			region, auditColumns),
		selectAudit: fmt.Sprintf("SELECT %s FROM %s.audit WHERE message_id = ?", auditColumns, region),

		selectLease: fmt.Sprintf("SELECT owner, epoch, expires_at FROM %s.leases WHERE queue = ?", region),
		insertLease: fmt.Sprintf("INSERT INTO %s.leases (queue, owner, epoch, expires_at) VALUES (?, ?, ?, ?) IF NOT EXISTS",
			region),
		takeLease: fmt.Sprintf("UPDATE %s.leases SET owner = ?, epoch = ?, expires_at = ? WHERE queue = ? "+
			"IF epoch = ? AND expires_at = ?", region),
		renewLease: fmt.Sprintf("UPDATE %s.leases SET expires_at = ? WHERE queue = ? "+
			"IF owner = ? AND epoch = ? AND expires_at > ?", region),
		releaseLease: fmt.Sprintf("UPDATE %s.leases SET expires_at = 0 WHERE queue = ? IF owner = ? AND epoch = ?", region),
		fenceLease: fmt.Sprintf("UPDATE %s.leases SET fenced_at = ? WHERE queue = ? "+
			"IF owner = ? AND epoch = ? AND expires_at > ?", region),
	}
}

// Times are stored as bigint nanoseconds since the Unix epoch, so that they
// round-trip exactly (CQL's timestamp type keeps milliseconds only). The zero
// time is stored as math.MinInt64.
const zeroTime = math.MinInt64

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

func encodeTime(t time.Time) (int64, error) {
	if t.IsZero() {
		return zeroTime, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("time %v is outside the storable range %v to %v", t, minTime.UTC(), maxTime.UTC())
	}
	return t.UnixNano(), nil
}

func decodeTime(n int64) time.Time {
	if n == zeroTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// encodeUint checks that v fits a bigint column. Sequence numbers and shard
// ids are unsigned in the model, but clustering order on a bigint is signed,
// so values past math.MaxInt64 would sort wrong.
func encodeUint(name string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%s %d is larger than the maximum %d", name, v, int64(math.MaxInt64))
	}
	return int64(v), nil
}

// timeEncoder encodes several times and keeps the first error.
type timeEncoder struct{ err error }

func (e *timeEncoder) time(name string, t time.Time) int64 {
	n, err := encodeTime(t)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("%s: %w", name, err)
	}
	return n
}

func queueValues(cfg storage.QueueConfig) ([]any, error) {
	var enc timeEncoder
	created := enc.time("created at", cfg.CreatedAt)
	updated := enc.time("updated at", cfg.UpdatedAt)
	if enc.err != nil {
		return nil, enc.err
	}
	return []any{
		cfg.Name,
		int64(cfg.VisibilityTimeout), int64(cfg.DefaultDelay), cfg.RetryCount, cfg.DeadLetterQueue,
		cfg.MaxMessageSize, int64(cfg.Retention), int64(cfg.ReceiveWait),
		cfg.Regions, cfg.DefaultDestinations, cfg.Tags, created, updated,
	}, nil
}

type scanner interface {
	Scan(dest ...any) error
}

func scanQueue(sc scanner) (storage.QueueConfig, error) {
	var (
		cfg                                                         storage.QueueConfig
		visibility, delay, retention, receiveWait, created, updated int64
	)
	err := sc.Scan(&cfg.Name, &visibility, &delay, &cfg.RetryCount, &cfg.DeadLetterQueue,
		&cfg.MaxMessageSize, &retention, &receiveWait, &cfg.Regions, &cfg.DefaultDestinations,
		&cfg.Tags, &created, &updated)
	if err != nil {
		return storage.QueueConfig{}, err
	}
	cfg.VisibilityTimeout = time.Duration(visibility)
	cfg.DefaultDelay = time.Duration(delay)
	cfg.Retention = time.Duration(retention)
	cfg.ReceiveWait = time.Duration(receiveWait)
	cfg.CreatedAt = decodeTime(created)
	cfg.UpdatedAt = decodeTime(updated)
	return cfg, nil
}

func (s *Store) payloadValues(p storage.Payload) ([]any, error) {
	expires, err := encodeTime(p.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("expires at: %w", err)
	}
	return []any{
		p.Queue, gocql.UUID(p.MessageID), p.ContentType, p.Data, p.Attributes, expires,
		// A payload whose ExpiresAt has passed is still stored for the grace
		// period, because the engine, not the TTL, decides when a message
		// expires.
		s.ttl(p.ExpiresAt, s.cfg.TTLGrace),
	}, nil
}

func scanPayload(sc scanner) (storage.Payload, error) {
	var (
		p       storage.Payload
		id      gocql.UUID
		expires int64
	)
	if err := sc.Scan(&p.Queue, &id, &p.ContentType, &p.Data, &p.Attributes, &expires); err != nil {
		return storage.Payload{}, err
	}
	p.MessageID = uuid.UUID(id)
	p.ExpiresAt = decodeTime(expires)
	return p, nil
}

func entryKeyValues(k storage.EntryKey) ([]any, error) {
	shard, err := encodeUint("shard", k.Shard)
	if err != nil {
		return nil, err
	}
	seq, err := encodeUint("seq", k.Seq)
	if err != nil {
		return nil, err
	}
	return []any{k.Queue, int8(k.State), shard, seq}, nil
}

func entryValues(e storage.Entry) ([]any, error) {
	key, err := entryKeyValues(e.Key())
	if err != nil {
		return nil, err
	}
	var enc timeEncoder
	created := enc.time("created at", e.CreatedAt)
	sent := enc.time("sent at", e.SentAt)
	due := enc.time("due at", e.DueAt)
	expires := enc.time("expires at", e.ExpiresAt)
	if enc.err != nil {
		return nil, enc.err
	}
	return append(key,
		gocql.UUID(e.ID), gocql.UUID(e.MessageID), created, sent, due, expires,
		e.ReceiveCount, e.ContentType, e.Size, e.SourceQueue, e.TargetQueue,
	), nil
}

func scanEntry(sc scanner) (storage.Entry, error) {
	var (
		e                           storage.Entry
		state                       int8
		shard, seq                  int64
		id, messageID               gocql.UUID
		created, sent, due, expires int64
	)
	err := sc.Scan(&e.Queue, &state, &shard, &seq, &id, &messageID, &created, &sent, &due, &expires,
		&e.ReceiveCount, &e.ContentType, &e.Size, &e.SourceQueue, &e.TargetQueue)
	if err != nil {
		return storage.Entry{}, err
	}
	e.State = storage.State(state)
	e.Shard = uint64(shard)
	e.Seq = uint64(seq)
	e.ID = uuid.UUID(id)
	e.MessageID = uuid.UUID(messageID)
	e.CreatedAt = decodeTime(created)
	e.SentAt = decodeTime(sent)
	e.DueAt = decodeTime(due)
	e.ExpiresAt = decodeTime(expires)
	return e, nil
}

// shardTuple is one element of metas.shards, a tuple<tinyint, bigint>. The
// driver maps tuple elements to struct fields by position.
type shardTuple struct {
	State int8
	Shard int64
}

func metaValues(queue string, m storage.Meta) ([]any, error) {
	var ints [3]int64
	for i, f := range []struct {
		name string
		v    uint64
	}{{"shard size", m.ShardSize}, {"next seq", m.NextSeq}, {"head", m.Head}} {
		n, err := encodeUint(f.name, f.v)
		if err != nil {
			return nil, err
		}
		ints[i] = n
	}
	shards := make([]shardTuple, len(m.Shards))
	for i, ref := range m.Shards {
		n, err := encodeUint("shard", ref.Shard)
		if err != nil {
			return nil, err
		}
		shards[i] = shardTuple{State: int8(ref.State), Shard: n}
	}
	inbox := make(map[int64]int64, len(m.Inbox))
	for shard, seq := range m.Inbox {
		k, err := encodeUint("inbox shard", shard)
		if err != nil {
			return nil, err
		}
		v, err := encodeUint("inbox seq", seq)
		if err != nil {
			return nil, err
		}
		inbox[k] = v
	}
	t := m.Totals
	return []any{
		queue, ints[0], ints[1], ints[2], m.Available, shards,
		t.Sent, t.Received, t.Acked, t.Nacked, t.TimedOut, t.Expired, t.DeadLettered, t.Redriven, t.Purged,
		inbox,
	}, nil
}

func scanMeta(sc scanner) (storage.Meta, error) {
	var (
		m                     storage.Meta
		queue                 string
		shardSize, next, head int64
		shards                []shardTuple
		inbox                 map[int64]int64
	)
	t := &m.Totals
	err := sc.Scan(&queue, &shardSize, &next, &head, &m.Available, &shards,
		&t.Sent, &t.Received, &t.Acked, &t.Nacked, &t.TimedOut, &t.Expired, &t.DeadLettered, &t.Redriven, &t.Purged,
		&inbox)
	if err != nil {
		return storage.Meta{}, err
	}
	m.ShardSize = uint64(shardSize)
	m.NextSeq = uint64(next)
	m.Head = uint64(head)
	if len(shards) > 0 {
		m.Shards = make([]storage.ShardRef, len(shards))
		for i, sh := range shards {
			m.Shards[i] = storage.ShardRef{State: storage.State(sh.State), Shard: uint64(sh.Shard)}
		}
	}
	if len(inbox) > 0 {
		m.Inbox = make(map[uint64]uint64, len(inbox))
		for shard, seq := range inbox {
			m.Inbox[uint64(shard)] = uint64(seq)
		}
	}
	return m, nil
}

func (s *Store) auditValues(ev storage.AuditEvent) ([]any, error) {
	var enc timeEncoder
	at := enc.time("time", ev.Time)
	expires := enc.time("expires at", ev.ExpiresAt)
	if enc.err != nil {
		return nil, enc.err
	}
	return []any{
		gocql.UUID(ev.MessageID), at, int64(ev.Seq), ev.Action, ev.Queue, gocql.UUID(ev.QueueMessageID),
		ev.ReceiveCount, ev.Detail, expires, s.ttl(ev.ExpiresAt, 0),
	}, nil
}

func scanAudit(sc scanner) (storage.AuditEvent, error) {
	var (
		ev                 storage.AuditEvent
		messageID, queueID gocql.UUID
		at, seq, expires   int64
	)
	err := sc.Scan(&messageID, &at, &seq, &ev.Action, &ev.Queue, &queueID, &ev.ReceiveCount, &ev.Detail, &expires)
	if err != nil {
		return storage.AuditEvent{}, err
	}
	ev.MessageID = uuid.UUID(messageID)
	ev.Time = decodeTime(at)
	ev.Seq = uint32(seq)
	ev.QueueMessageID = uuid.UUID(queueID)
	ev.ExpiresAt = decodeTime(expires)
	return ev, nil
}
