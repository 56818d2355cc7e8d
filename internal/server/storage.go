package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/qakka/qakka/internal/config"
	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/cassandrastore"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

// openStore opens the configured storage backend. A new backend needs a
// case here and its options in the config package.
func (s *Server) openStore(ctx context.Context) (storage.Store, error) {
	st := s.cfg.Storage
	switch st.Backend {
	case config.BackendPebble:
		opts := st.Pebble
		opts.Logger = s.base
		store, err := pebblestore.Open(st.DataDir, opts)
		if isLocked(err) {
			return nil, fmt.Errorf("data directory %s is in use by another process, probably another qakka server: stop it or choose another --data-dir: %w", st.DataDir, err)
		}
		if err != nil {
			return nil, err
		}
		return store, nil

	case config.BackendCassandra:
		cfg := st.Cassandra
		cfg.Logger = s.base
		if st.CassandraPasswordFile != "" {
			password, err := readSecretFile("cassandra-password-file", st.CassandraPasswordFile)
			if err != nil {
				return nil, err
			}
			cfg.Password = password
		}
		store, err := cassandrastore.Open(ctx, cfg)
		// The driver keeps only the text of the dial error.
		if err != nil && strings.Contains(err.Error(), "connection refused") {
			return nil, fmt.Errorf("open cassandra store: no Cassandra node accepts connections at %s: start one, or set --cassandra-hosts to the address of a running node: %w",
				strings.Join(cfg.Hosts, ","), err)
		}
		if err != nil {
			return nil, fmt.Errorf("open cassandra store: %w", err)
		}
		return store, nil
	}
	return nil, fmt.Errorf("unknown storage %q: use %s or %s", st.Backend, config.BackendPebble, config.BackendCassandra)
}

// isLocked reports whether err comes from a file lock that another process
// holds. Pebble takes an fcntl lock on its LOCK file, which fails with
// EAGAIN or EACCES while another process holds it. An EACCES inside an
// *fs.PathError is a permission problem of a file instead.
func isLocked(err error) bool {
	if errors.Is(err, syscall.EAGAIN) {
		return true
	}
	var pathErr *fs.PathError
	return errors.Is(err, syscall.EACCES) && !errors.As(err, &pathErr)
}
