package cassandrastore

import (
	"context"
	"testing"
	"time"

	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/storagetest"
)

// TestConformance runs the backend-neutral suite against a real node. All
// subtests share one pair of keyspaces, unique to this run, which is dropped
// at the end; each subtest opens its own Store on them.
func TestConformance(t *testing.T) {
	cfg := testConfig(t, testHost(t))

	// The first store creates the schema and drops it when the test ends.
	openTestStoreConfig(t, cfg)

	storagetest.Run(t, func(t *testing.T) storage.Store {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		s, err := Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open cassandra store: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
