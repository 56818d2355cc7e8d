package cassandrastore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// testHostEnv names the variable that gives the host:port of the Cassandra
// node the tests use. scripts/cassandra-dev.sh starts one.
const testHostEnv = "QAKKA_TEST_CASSANDRA"

// testHost returns the node's address, or skips the test when the variable is
// unset. An unreachable node fails the test in openTestStore.
func testHost(t *testing.T) string {
	t.Helper()
	host := os.Getenv(testHostEnv)
	if host == "" {
		t.Skipf("%s is not set; start a node with scripts/cassandra-dev.sh start and set %s=127.0.0.1:9042",
			testHostEnv, testHostEnv)
	}
	return host
}

// testConfig returns a configuration with keyspace names unique to this call.
func testConfig(t *testing.T, host string) Config {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ks := "qakka_test_" + hex.EncodeToString(b[:])
	return Config{
		Hosts:          []string{host},
		Keyspace:       ks,
		RegionKeyspace: ks + "_region",
		ConnectTimeout: 10 * time.Second,
		Timeout:        30 * time.Second,
	}
}

// openTestStore opens a store on fresh keyspaces and drops them when the test
// ends.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	return openTestStoreConfig(t, testConfig(t, testHost(t)))
}

func openTestStoreConfig(t *testing.T, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open cassandra store at %v (from %s): %v", cfg.Hosts, testHostEnv, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.dropKeyspaces(ctx); err != nil {
			t.Errorf("drop test keyspaces: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}
