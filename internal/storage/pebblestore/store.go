package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/qakka/qakka/internal/storage"
)

var _ storage.Store = (*Store)(nil)

// ErrClosed is returned by every operation on a closed Store.
var ErrClosed = errors.New("store is closed")

// formatVersion is the on-disk format of new stores. Pebble upgrades the
// format of an older store to it at Open, and never downgrades a newer one.
// Upgrades cannot be undone, so raising this constant is a deliberate change:
// every binary that may open the store afterwards must support the new format.
const formatVersion = pebble.FormatTableFormatV6

// Defaults of Options.
const (
	DefaultCacheSize    = 64 << 20
	DefaultMemTableSize = 32 << 20
)

// Options configures a Store. The zero value takes the defaults.
type Options struct {
	// CacheSize is the size of the block cache, in bytes. Zero means
	// DefaultCacheSize (64 MiB).
	CacheSize int64
	// MemTableSize is the size of one memtable, in bytes. Pebble stops writes
	// while queued memtables exceed twice this size, so memtables take up to
	// about twice this much memory. Zero means DefaultMemTableSize (32 MiB).
	MemTableSize uint64
	// Logger receives Pebble's messages and background errors. Nil discards
	// them.
	Logger *slog.Logger
}

// Store is the Pebble backend of storage.Store. It is safe for concurrent use.
type Store struct {
	db     *pebble.DB
	dir    string
	logger *slog.Logger

	// mu guards closed. Operations hold it for reading while they use db, so
	// Close waits for them and no operation starts on a closed db.
	mu     sync.RWMutex
	closed bool

	// configMu serializes the writes of queue configurations, which read
	// before they write.
	configMu sync.Mutex

	leases leaseLocks
}

// Open opens the store in dir, creating the directory and the store when they
// do not exist. The caller must Close the store.
func Open(dir string, opts Options) (*Store, error) {
	return open(dir, opts, vfs.Default)
}

// open opens the store on fs, so tests can run it on a file system that
// simulates a crash.
func open(dir string, opts Options, fs vfs.FS) (*Store, error) {
	if opts.CacheSize < 0 {
		return nil, fmt.Errorf("open pebble store %s: negative cache size %d", dir, opts.CacheSize)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = DefaultMemTableSize
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "pebblestore")

	cache := pebble.NewCache(opts.CacheSize)
	// The db takes its own reference to the cache.
	defer cache.Unref()
	events := eventListener(logger)
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		MemTableSize:       opts.MemTableSize,
		FormatMajorVersion: formatVersion,
		Logger:             pebbleLogger{logger},
		EventListener:      &events,
	})
	if err != nil {
		return nil, fmt.Errorf("open pebble store %s: %w", dir, err)
	}

	logger.Info("pebble store opened", "dir", dir, "format", db.FormatMajorVersion().String())
	s := &Store{db: db, dir: dir, logger: logger}
	s.leases.seed = maphash.MakeSeed()
	return s, nil
}

// Close waits for running operations and releases the store. Committed
// writes are already durable in the WAL, so Close does not flush memtables.
// Later operations return ErrClosed. Close is safe to call more than once, and
// calls after the first return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true

	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close pebble store %s: %w", s.dir, err)
	}
	s.logger.Info("pebble store closed", "dir", s.dir)
	return nil
}

// acquire checks ctx and that the store is open, and holds s.mu for reading
// until release. The error names op.
func (s *Store) acquire(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	return nil
}

func (s *Store) release() { s.mu.RUnlock() }

// pebbleLogger sends Pebble's log messages to slog.
type pebbleLogger struct {
	logger *slog.Logger
}

// Infof logs at debug level: Pebble reports routine work (WAL recovery,
// compactions) this way, which is noise in a queue server's log.
func (l pebbleLogger) Infof(format string, args ...any) {
	l.logger.Debug(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.logger.Error(fmt.Sprintf(format, args...))
}

// Fatalf logs and panics: Pebble calls it when it cannot continue, and
// expects it not to return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.logger.Error(msg)
	panic("pebble: " + msg)
}

// eventListener logs the Pebble events an operator should see.
func eventListener(logger *slog.Logger) pebble.EventListener {
	return pebble.EventListener{
		BackgroundError: func(err error) {
			logger.Error("pebble background error", "err", err)
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			logger.Error("pebble data corruption", "path", info.Path, "err", info.Details)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			logger.Warn("pebble disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			logger.Warn("pebble write stall began", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			logger.Info("pebble write stall ended")
		},
	}
}
