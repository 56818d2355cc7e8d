package cassandrastore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/qakka/qakka/internal/storage"
)

// Queue configurations are written only with lightweight transactions (IF NOT
// EXISTS, IF EXISTS), at the serial consistency of Config.SerialConsistency.
// Mixing them with plain writes of the same rows would let a plain write with
// a later timestamp undo a transaction.

// createAttempts bounds the loop in CreateQueue that retries when the queue
// it found is deleted before it could be read.
const createAttempts = 3

// CreateQueue implements storage.Store.
//
// NB: a lightweight transaction that times out has an unknown outcome. When
// every attempt times out and CreateQueue returns the error, the queue may
// still have been created.
func (s *Store) CreateQueue(ctx context.Context, cfg storage.QueueConfig) (storage.QueueConfig, bool, error) {
	if cfg.Name == "" {
		return storage.QueueConfig{}, false, errors.New("create queue: empty queue name")
	}
	values, err := queueValues(cfg)
	if err != nil {
		return storage.QueueConfig{}, false, fmt.Errorf("create queue %s: %w", cfg.Name, err)
	}

	for range createAttempts {
		applied, uncertain, err := s.cas(ctx, map[string]any{}, s.stmt.insertQueue, values...)
		if err != nil {
			return storage.QueueConfig{}, false, fmt.Errorf("create queue %s: %w", cfg.Name, err)
		}
		if applied {
			return cfg, true, nil
		}

		// Read the winner at serial consistency, so that the read sees the
		// transaction that beat this one even if it is not yet committed
		// at every replica.
		stored, err := s.queue(ctx, cfg.Name, s.serial)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return storage.QueueConfig{}, false, fmt.Errorf("create queue %s: %w", cfg.Name, err)
		}
		// After a timed-out attempt, the stored configuration may be this
		// call's own. CreatedAt has nanosecond precision, so a configuration
		// equal in every field was written by this call.
		if uncertain && sameConfig(stored, cfg) {
			return stored, true, nil
		}
		return stored, false, nil
	}
	return storage.QueueConfig{}, false, fmt.Errorf("create queue %s: the queue was deleted and created concurrently %d times; retry", cfg.Name, createAttempts)
}

// UpdateQueue implements storage.Store.
func (s *Store) UpdateQueue(ctx context.Context, cfg storage.QueueConfig) error {
	if cfg.Name == "" {
		return errors.New("update queue: empty queue name")
	}
	values, err := queueValues(cfg)
	if err != nil {
		return fmt.Errorf("update queue %s: %w", cfg.Name, err)
	}

	// The UPDATE binds the name last, in its WHERE clause.
	values = append(values[1:], values[0])
	// Running the update again after a timeout is harmless: it writes the
	// same values.
	applied, _, err := s.cas(ctx, map[string]any{}, s.stmt.updateQueue, values...)
	if err != nil {
		return fmt.Errorf("update queue %s: %w", cfg.Name, err)
	}
	if !applied {
		return fmt.Errorf("update queue %s: %w", cfg.Name, storage.ErrNotFound)
	}
	return nil
}

// Queue implements storage.Store.
func (s *Store) Queue(ctx context.Context, name string) (storage.QueueConfig, error) {
	cfg, err := s.queue(ctx, name, gocql.Any)
	if err != nil {
		return storage.QueueConfig{}, fmt.Errorf("read queue %s: %w", name, err)
	}
	return cfg, nil
}

// queue reads one configuration at consistency cl, or at the store's
// consistency when cl is gocql.Any.
func (s *Store) queue(ctx context.Context, name string, cl gocql.Consistency) (storage.QueueConfig, error) {
	if name == "" {
		return storage.QueueConfig{}, storage.ErrNotFound
	}
	q := s.session.Query(s.stmt.selectQueue, name)
	if cl != gocql.Any {
		q = q.Consistency(cl)
	}
	cfg, err := scanQueue(rowQuery{ctx, q})
	if errors.Is(err, gocql.ErrNotFound) {
		return storage.QueueConfig{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.QueueConfig{}, err
	}
	return cfg, nil
}

// Queues implements storage.Store. It reads the whole queues table, page by
// page.
func (s *Store) Queues(ctx context.Context) ([]storage.QueueConfig, error) {
	iter := s.session.Query(s.stmt.selectQueues).IterContext(ctx)
	sc := iter.Scanner()
	var out []storage.QueueConfig
	for sc.Next() {
		cfg, err := scanQueue(sc)
		if err != nil {
			_ = iter.Close()
			return nil, fmt.Errorf("read queues: %w", err)
		}
		out = append(out, cfg)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read queues: %w", err)
	}
	slices.SortFunc(out, func(a, b storage.QueueConfig) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// deleteParallelism bounds the concurrent deletes of DeleteQueue.
const deleteParallelism = 8

// DeleteQueue implements storage.Store. It is not atomic. It reads the queue's
// shards from queue_shards, deletes the payload of every entry in them, then
// the shard partitions, then the shard list and the metadata, and last the
// configuration. A call that fails part way leaves the shard list and the
// configuration in place, so calling it again finishes the work.
//
// NB: payloads that no entry of this region refers to (written for another
// region, or left by a commit that failed after its payload writes) are not
// found here. They expire by their TTL.
func (s *Store) DeleteQueue(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("delete queue: empty queue name")
	}
	shards, err := s.queueShards(ctx, name)
	if err != nil {
		return fmt.Errorf("delete queue %s: %w", name, err)
	}

	for _, ref := range shards {
		if err := s.deleteShardPayloads(ctx, name, ref); err != nil {
			return fmt.Errorf("delete queue %s: %w", name, err)
		}
	}

	timestamp := s.timestamp()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallelism)
	for _, ref := range shards {
		g.Go(func() error {
			err := s.session.Query(s.stmt.deleteShard, name, int8(ref.State), int64(ref.Shard)).
				WithTimestamp(timestamp).Idempotent(true).ExecContext(gctx)
			if err != nil {
				return fmt.Errorf("delete %s shard %d: %w", ref.State, ref.Shard, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("delete queue %s: %w", name, err)
	}

	batch := s.session.Batch(gocql.LoggedBatch).WithTimestamp(s.timestamp())
	addIdempotent(batch, s.stmt.deleteShardRefs, name)
	addIdempotent(batch, s.stmt.deleteMeta, name)
	if err := batch.ExecContext(ctx); err != nil {
		return fmt.Errorf("delete queue %s: delete shard list and metadata: %w", name, err)
	}

	// The transaction does not apply when the configuration is already
	// gone, which is fine.
	_, _, err = s.cas(ctx, map[string]any{}, s.stmt.deleteQueue, name)
	if err != nil {
		return fmt.Errorf("delete queue %s: %w", name, err)
	}
	return nil
}

// queueShards reads the shards registered for a queue.
func (s *Store) queueShards(ctx context.Context, queue string) ([]storage.ShardRef, error) {
	iter := s.session.Query(s.stmt.selectShardRefs, queue).IterContext(ctx)
	sc := iter.Scanner()
	var out []storage.ShardRef
	for sc.Next() {
		var (
			state int8
			shard int64
		)
		if err := sc.Scan(&state, &shard); err != nil {
			_ = iter.Close()
			return nil, fmt.Errorf("read shard list: %w", err)
		}
		out = append(out, storage.ShardRef{State: storage.State(state), Shard: uint64(shard)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read shard list: %w", err)
	}
	return out, nil
}

// deleteShardPayloads deletes the payload of every entry of one shard.
func (s *Store) deleteShardPayloads(ctx context.Context, queue string, ref storage.ShardRef) error {
	iter := s.session.Query(s.stmt.selectShardMessageIDs, queue, int8(ref.State), int64(ref.Shard)).IterContext(ctx)
	sc := iter.Scanner()
	seen := map[uuid.UUID]bool{}
	var ids []uuid.UUID
	for sc.Next() {
		var id gocql.UUID
		if err := sc.Scan(&id); err != nil {
			_ = iter.Close()
			return fmt.Errorf("read %s shard %d: %w", ref.State, ref.Shard, err)
		}
		if !seen[uuid.UUID(id)] {
			seen[uuid.UUID(id)] = true
			ids = append(ids, uuid.UUID(id))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s shard %d: %w", ref.State, ref.Shard, err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallelism)
	timestamp := s.timestamp()
	for _, id := range ids {
		g.Go(func() error {
			err := s.session.Query(s.stmt.deletePayload, queue, gocql.UUID(id)).
				WithTimestamp(timestamp).Idempotent(true).ExecContext(gctx)
			if err != nil {
				return fmt.Errorf("delete payload %s: %w", id, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// addIdempotent adds a statement that can be applied twice with the same
// result, so the driver may retry the batch.
func addIdempotent(b *gocql.Batch, stmt string, args ...any) {
	b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: stmt, Args: args, Idempotent: true})
}

// rowQuery scans the single row of a query. Its Scan returns gocql.ErrNotFound
// when there is no row.
type rowQuery struct {
	ctx context.Context
	q   *gocql.Query
}

func (r rowQuery) Scan(dest ...any) error {
	return r.q.ScanContext(r.ctx, dest...)
}

// sameConfig reports whether two configurations are equal in every field.
func sameConfig(a, b storage.QueueConfig) bool {
	return a.Name == b.Name && a.VisibilityTimeout == b.VisibilityTimeout &&
		a.DefaultDelay == b.DefaultDelay && a.RetryCount == b.RetryCount &&
		a.DeadLetterQueue == b.DeadLetterQueue && a.MaxMessageSize == b.MaxMessageSize &&
		a.Retention == b.Retention && a.ReceiveWait == b.ReceiveWait &&
		a.Regions == b.Regions && a.DefaultDestinations == b.DefaultDestinations &&
		maps.Equal(a.Tags, b.Tags) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}
