package pebblestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/qakka/qakka/internal/storage"
)

// CreateQueue stores cfg unless a queue of that name exists. When one exists
// it returns created=false and the stored configuration, and writes nothing.
func (s *Store) CreateQueue(ctx context.Context, cfg storage.QueueConfig) (storage.QueueConfig, bool, error) {
	op := fmt.Sprintf("create queue %q", cfg.Name)
	if err := checkQueueName(cfg.Name); err != nil {
		return storage.QueueConfig{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return storage.QueueConfig{}, false, err
	}
	defer s.release()
	s.configMu.Lock()
	defer s.configMu.Unlock()

	stored, err := s.getConfig(cfg.Name)
	switch {
	case err == nil:
		return stored, false, nil
	case !errors.Is(err, storage.ErrNotFound):
		return storage.QueueConfig{}, false, fmt.Errorf("%s: %w", op, err)
	}

	if err := s.db.Set(configKey(cfg.Name), storage.MarshalQueueConfig(&cfg), pebble.Sync); err != nil {
		return storage.QueueConfig{}, false, fmt.Errorf("%s: %w", op, err)
	}
	return cfg, true, nil
}

// UpdateQueue replaces the configuration of an existing queue, or returns an
// error wrapping storage.ErrNotFound.
func (s *Store) UpdateQueue(ctx context.Context, cfg storage.QueueConfig) error {
	op := fmt.Sprintf("update queue %q", cfg.Name)
	if err := checkQueueName(cfg.Name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return err
	}
	defer s.release()
	s.configMu.Lock()
	defer s.configMu.Unlock()

	if _, err := s.getConfig(cfg.Name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.db.Set(configKey(cfg.Name), storage.MarshalQueueConfig(&cfg), pebble.Sync); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Queue returns the configuration of one queue, or an error wrapping
// storage.ErrNotFound.
func (s *Store) Queue(ctx context.Context, name string) (storage.QueueConfig, error) {
	op := fmt.Sprintf("read queue %q", name)
	if err := checkQueueName(name); err != nil {
		return storage.QueueConfig{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return storage.QueueConfig{}, err
	}
	defer s.release()

	cfg, err := s.getConfig(name)
	if err != nil {
		return storage.QueueConfig{}, fmt.Errorf("%s: %w", op, err)
	}
	return cfg, nil
}

// Queues returns every configuration, ordered by name. Keys sort by name
// because the NUL that ends a name sorts before every name byte.
func (s *Store) Queues(ctx context.Context) ([]storage.QueueConfig, error) {
	const op = "list queues"
	if err := s.acquire(ctx, op); err != nil {
		return nil, err
	}
	defer s.release()

	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{spaceConfig},
		UpperBound: []byte{spaceConfig + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer it.Close()

	var cfgs []storage.QueueConfig
	for valid := it.First(); valid; valid = it.Next() {
		cfg, err := storage.UnmarshalQueueConfig(it.Value())
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", op, it.Key(), err)
		}
		cfgs = append(cfgs, cfg)
		if len(cfgs)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return cfgs, nil
}

// DeleteQueue removes the configuration, metadata, entries and payloads of a
// queue in one synced batch: two point deletions and two range deletions.
// Audit events stay until they expire, and the lease stays, so a queue
// created again under the name gets its next holder at a higher epoch.
// Deleting a missing queue writes the same tombstones and returns nil.
func (s *Store) DeleteQueue(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete queue %q", name)
	if err := checkQueueName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.acquire(ctx, op); err != nil {
		return err
	}
	defer s.release()
	s.configMu.Lock()
	defer s.configMu.Unlock()

	b := s.db.NewBatch()
	defer b.Close()
	entries := queuePrefix(spaceEntry, name, 0)
	payloads := queuePrefix(spacePayload, name, 0)
	err := errors.Join(
		b.Delete(configKey(name), nil),
		b.Delete(metaKey(name), nil),
		b.DeleteRange(entries, prefixEnd(entries), nil),
		b.DeleteRange(payloads, prefixEnd(payloads), nil),
	)
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// getConfig reads one configuration. The caller holds s.mu for reading.
func (s *Store) getConfig(name string) (storage.QueueConfig, error) {
	v, closer, err := s.db.Get(configKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return storage.QueueConfig{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.QueueConfig{}, err
	}
	defer closer.Close()
	return storage.UnmarshalQueueConfig(v)
}
