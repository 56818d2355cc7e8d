package cassandrastore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/qakka/qakka/internal/storage"
)

var _ storage.Store = (*Store)(nil)

// Store is a storage.Store on a Cassandra cluster. It is safe for concurrent
// use.
type Store struct {
	cfg     Config
	session *gocql.Session
	serial  gocql.Consistency
	stmt    statements

	// lastTimestamp is the last write timestamp handed out, in microseconds.
	lastTimestamp atomic.Int64

	closeOnce sync.Once
}

// Open connects to the cluster, creates the keyspaces and tables that are
// missing and checks their schema version. The connection attempt is bounded
// by cfg.ConnectTimeout; the schema steps stop when ctx is cancelled.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cassandra store config: %w", err)
	}
	// Validate has checked that both levels parse.
	consistency, _ := gocql.ParseConsistencyWrapper(cfg.Consistency)
	serial, _ := gocql.ParseConsistencyWrapper(cfg.SerialConsistency)

	cluster := gocql.NewCluster(cfg.Hosts...)
	cluster.Port = defaultPort
	cluster.Consistency = consistency
	cluster.SerialConsistency = serial
	cluster.ConnectTimeout = cfg.ConnectTimeout
	cluster.Timeout = cfg.Timeout
	// Token-aware routing sends each statement to a replica of its
	// partition. The driver derives the routing key from the prepared
	// statement, and it prepares every statement that has bound values.
	// Replicas are not shuffled: the lightweight transactions on queue
	// configurations then reach the same coordinator, which keeps Paxos
	// contention down.
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(
		gocql.DCAwareRoundRobinPolicy(cfg.LocalDatacenter), gocql.DoNotShuffleReplicas())
	// The driver retries only statements marked idempotent: every write here
	// carries an explicit timestamp and is marked so, except the lightweight
	// transactions on queue configurations.
	cluster.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 2}
	if cfg.Username != "" {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: cfg.Username, Password: cfg.Password}
	}
	if cfg.Logger != nil {
		cluster.Logger = driverLogger{cfg.Logger.With("component", "cassandra")}
	}

	session, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("connect to cassandra %v: %w", cfg.Hosts, err)
	}
	s := &Store{
		cfg:     cfg,
		session: session,
		serial:  serial,
		stmt:    newStatements(cfg.Keyspace, cfg.RegionKeyspace),
	}
	if err := s.ensureSchema(ctx); err != nil {
		session.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the session. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(s.session.Close)
	return nil
}

// timestamp returns a write timestamp in microseconds, later than every
// timestamp this store returned before. Cassandra resolves conflicting writes
// of one cell by timestamp (last write wins, and a delete wins a tie), so two
// commits of this process must never share one.
//
// NB: timestamps come from this machine's clock, never from Config.Now, which
// only sets the time TTLs count from: a fake clock that does not advance would
// give a reopened store timestamps behind the ones it wrote before. When a
// queue's owner moves to another node, that node's writes win only if its
// clock is not behind the previous owner's by more than the time between
// their writes.
func (s *Store) timestamp() int64 {
	now := time.Now().UnixMicro()
	for {
		last := s.lastTimestamp.Load()
		next := max(now, last+1)
		if s.lastTimestamp.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Cassandra limits a TTL to 20 years. It also rejects, by default, a write
// that would expire after 2038-01-19T03:14:06Z, unless every node runs
// Cassandra 5.0 with storage_compatibility_mode NONE. maxExpiration keeps a
// day of margin before that date.
const maxTTL = 20 * 365 * 24 * time.Hour

var maxExpiration = time.Date(2038, 1, 19, 3, 14, 6, 0, time.UTC).Add(-24 * time.Hour)

// ttl returns the TTL in seconds for a row that expires at expiresAt, plus
// grace: the time left, or zero if expiresAt has passed, plus grace, at least
// one second and at most what Cassandra accepts. A zero expiresAt means no
// TTL, which CQL writes as 0.
func (s *Store) ttl(expiresAt time.Time, grace time.Duration) int {
	if expiresAt.IsZero() {
		return 0
	}
	now := s.cfg.Now()
	d := max(expiresAt.Sub(now), 0) + grace
	d = min(d, maxTTL, maxExpiration.Sub(now))
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// driverLogger passes the driver's log records to slog.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Error(msg string, fields ...gocql.LogField) {
	l.log.Error(msg, logArgs(fields)...)
}

func (l driverLogger) Warning(msg string, fields ...gocql.LogField) {
	l.log.Warn(msg, logArgs(fields)...)
}

func (l driverLogger) Info(msg string, fields ...gocql.LogField) {
	l.log.Info(msg, logArgs(fields)...)
}

func (l driverLogger) Debug(msg string, fields ...gocql.LogField) {
	l.log.Debug(msg, logArgs(fields)...)
}

func logArgs(fields []gocql.LogField) []any {
	args := make([]any, 0, len(fields))
	for _, f := range fields {
		args = append(args, slog.Any(f.Name, f.Value.Any()))
	}
	return args
}
