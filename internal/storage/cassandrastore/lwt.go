package cassandrastore

import (
	"context"
	"errors"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// casAttempts bounds how often cas runs a lightweight transaction whose
// outcome is unknown.
const casAttempts = 4

// casBackoff is the wait before the second attempt. It doubles after each.
const casBackoff = 200 * time.Millisecond

// cas runs a lightweight transaction at the store's serial consistency. When
// Cassandra reports that the transaction timed out, its outcome is unknown:
// it may have been applied. cas then runs it again, up to casAttempts times,
// and reports uncertain=true, so the caller can tell "not applied" after a
// timeout from a plain "not applied". row receives the current values when
// the transaction does not apply.
func (s *Store) cas(ctx context.Context, row map[string]any, stmt string, values ...any) (applied, uncertain bool, err error) {
	wait := casBackoff
	for attempt := 1; ; attempt++ {
		clear(row)
		applied, err = s.session.Query(stmt, values...).
			SerialConsistency(s.serial).
			MapScanCASContext(ctx, row)
		if err == nil || !casTimedOut(err) || attempt == casAttempts {
			return applied, uncertain, err
		}
		uncertain = true

		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false, uncertain, ctx.Err()
		case <-timer.C:
		}
		wait *= 2
	}
}

// casTimedOut reports whether err reports a lightweight transaction timed out
// with an unknown outcome.
func casTimedOut(err error) bool {
	var writeTimeout *gocql.RequestErrWriteTimeout
	if errors.As(err, &writeTimeout) {
		return writeTimeout.WriteType == "CAS"
	}
	var unknown *gocql.RequestErrCASWriteUnknown
	return errors.As(err, &unknown)
}
