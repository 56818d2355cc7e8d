// Package backendtest runs tests of the layers above storage on every
// backend: Pebble in a temporary directory always, and Cassandra when the
// variable CassandraEnv names a node.
package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/cassandrastore"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

// CassandraEnv names the variable that gives the host:port of the Cassandra
// node the tests use; scripts/cassandra-dev.sh starts one. When it is unset,
// the Cassandra variant of every test is skipped.
const CassandraEnv = "QAKKA_TEST_CASSANDRA"

// Backend is a storage backend that tests run on.
type Backend struct {
	Name string
	// Place reserves storage for one test and returns a function that opens
	// a store on it. Every call of that function opens the same data, as a
	// restarted server would. Place removes the data when the test ends.
	// now is the engine's clock: the Cassandra store computes TTLs with it,
	// and a row whose expiration has passed on its clock lives one second.
	Place func(tb testing.TB, now func() time.Time) func() (storage.Store, error)
}

// Backends lists Pebble and Cassandra. The Cassandra variant skips when
// CassandraEnv is unset and fails when the node cannot be reached.
var Backends = []Backend{
	{Name: "pebble", Place: placePebble},
	{Name: "cassandra", Place: placeCassandra},
}

// ForEach runs test as one subtest per backend, named after it.
func ForEach(t *testing.T, test func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(b.Name, func(t *testing.T) { test(t, b) })
	}
}

func placePebble(tb testing.TB, _ func() time.Time) func() (storage.Store, error) {
	dir := tb.TempDir()
	return func() (storage.Store, error) {
		return pebblestore.Open(dir, pebblestore.Options{})
	}
}

// placeCassandra gives the test a pair of keyspaces of its own, so that an
// engine's Start loads only the test's queues, and drops them when the test
// ends.
func placeCassandra(tb testing.TB, now func() time.Time) func() (storage.Store, error) {
	host := os.Getenv(CassandraEnv)
	if host == "" {
		tb.Skipf("%s is not set; start a node with scripts/cassandra-dev.sh start and set %s=127.0.0.1:9042",
			CassandraEnv, CassandraEnv)
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		tb.Fatal(err)
	}
	keyspace := "qakka_test_" + hex.EncodeToString(suffix[:])
	cfg := cassandrastore.Config{
		Hosts:          []string{host},
		Keyspace:       keyspace,
		RegionKeyspace: keyspace + "_region",
		ConnectTimeout: 10 * time.Second,
		Timeout:        30 * time.Second,
		Now:            now,
	}
	tb.Cleanup(func() {
		if err := DropKeyspaces(host, cfg.Keyspace, cfg.RegionKeyspace); err != nil {
			tb.Errorf("drop test keyspaces: %v", err)
		}
	})
	return func() (storage.Store, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, err := cassandrastore.Open(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("open cassandra store at %s (from %s): %w", host, CassandraEnv, err)
		}
		return s, nil
	}
}

// DropKeyspaces removes keyspaces with a session of its own, because the
// test's stores are closed by then.
func DropKeyspaces(host string, keyspaces ...string) error {
	cluster := gocql.NewCluster(host)
	cluster.ConnectTimeout = 10 * time.Second
	cluster.Timeout = time.Minute
	session, err := cluster.CreateSession()
	if err != nil {
		return fmt.Errorf("connect to %s: %w", host, err)
	}
	defer session.Close()
	var errs []error
	for _, ks := range keyspaces {
		if err := session.Query("DROP KEYSPACE IF EXISTS " + ks).Exec(); err != nil {
			errs = append(errs, fmt.Errorf("drop keyspace %s: %w", ks, err))
		}
	}
	return errors.Join(errs...)
}
