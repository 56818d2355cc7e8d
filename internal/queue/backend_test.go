package queue_test

import (
	"testing"

	"github.com/qakka/qakka/internal/storage/backendtest"
)

// backend is a storage backend the engine tests run on.
type backend = backendtest.Backend

// forEachBackend runs test once on each backend, as subtests named after it.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	backendtest.ForEach(t, test)
}
