// Package config loads the configuration of `qakka serve` and hands each
// component its own plain Config struct.
//
// Every option has one name, used three ways: as the command-line flag
// (--visibility-timeout), as the key of the YAML file (visibility-timeout)
// and, upper-cased with '_' for '-' and the prefix QAKKA_, as the
// environment variable (QAKKA_VISIBILITY_TIMEOUT). Flags beat the
// environment, which beats the file, which beats the defaults.
//
// Only cmd/ reads the real flags and environment: Load takes both as
// arguments.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
	"github.com/qakka/qakka/internal/storage/cassandrastore"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

// Config is the whole configuration of one server.
type Config struct {
	HTTP    HTTP
	Storage Storage
	// Queue holds the queue engine's server-wide settings. Clock and Logger
	// are left nil for the server to set.
	Queue queue.Options
	// Regions configures sends to other regions; Queue.Region names this
	// server's own.
	Regions Regions
	// SQS configures the Amazon SQS-compatible API.
	SQS SQS
	// Cluster makes the server one node of a cluster when Listen is set.
	Cluster Cluster
	Log     Log
	// ShutdownTimeout bounds how long a stop waits for in-flight HTTP
	// requests before it closes their connections. Default 30s.
	ShutdownTimeout time.Duration
}

// HTTP configures the HTTP server that serves the REST API and /metrics.
type HTTP struct {
	// Listen is the host:port to listen on. Port 0 picks a free port.
	// Default 127.0.0.1:8080.
	Listen string
	// Username and Password enable basic authentication of every request
	// when Username is set. Password may come from PasswordFile instead.
	Username     string
	Password     string
	PasswordFile string
	// TLSCertFile and TLSKeyFile are PEM files. When both are set the
	// server speaks HTTPS only.
	TLSCertFile string
	TLSKeyFile  string
}

// SQS configures the listener of the Amazon SQS-compatible API.
type SQS struct {
	// Listen is the host:port of the SQS API; empty turns it off. Default
	// 127.0.0.1:9324.
	Listen string
	// Region is the AWS region in queue ARNs; clients sign requests for it.
	// Default us-east-1.
	Region string
	// AccessKeyID and SecretAccessKey enable Signature Version 4
	// authentication when AccessKeyID is set. The secret may come from
	// SecretAccessKeyFile instead.
	AccessKeyID         string
	SecretAccessKey     string
	SecretAccessKeyFile string
}

// Validate reports every invalid SQS option.
func (q *SQS) Validate() error {
	var errs []error
	if q.Listen != "" {
		if _, _, err := net.SplitHostPort(q.Listen); err != nil {
			errs = append(errs, invalid("sqs-listen", q.Listen, "use host:port, such as 127.0.0.1:9324, or an empty value to turn the SQS API off"))
		}
	}
	if q.SecretAccessKey != "" && q.SecretAccessKeyFile != "" {
		errs = append(errs, errors.New("sqs-secret-access-key and sqs-secret-access-key-file are both set: set only one"))
	}
	hasSecret := q.SecretAccessKey != "" || q.SecretAccessKeyFile != ""
	if q.AccessKeyID == "" && hasSecret {
		errs = append(errs, errors.New("an SQS secret access key is set without sqs-access-key-id: set both to enable SQS authentication"))
	}
	if q.AccessKeyID != "" && !hasSecret {
		errs = append(errs, fmt.Errorf("sqs-access-key-id %q is set without a secret: set sqs-secret-access-key or sqs-secret-access-key-file", q.AccessKeyID))
	}
	return errors.Join(errs...)
}

// Storage backends.
const (
	BackendPebble    = "pebble"
	BackendCassandra = "cassandra"
)

// Storage selects and configures the storage backend.
type Storage struct {
	// Backend is BackendPebble (default) or BackendCassandra.
	Backend string
	// DataDir is the directory of the Pebble store. Default ./qakka-data.
	DataDir string
	// Pebble sizes the Pebble store's memory. Its Logger is left nil for
	// the server to set.
	Pebble pebblestore.Options
	// Cassandra configures the Cassandra backend. Its Logger is left nil
	// for the server to set.
	Cassandra cassandrastore.Config
	// CassandraPasswordFile holds the Cassandra password, as an
	// alternative to Cassandra.Password.
	CassandraPasswordFile string
}

// Log configures the server's structured log on standard error.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string
	// Format is text or json. Default text.
	Format string
}

// Default returns the configuration used when no flag, variable or file
// sets an option.
func Default() Config {
	return Config{
		HTTP: HTTP{Listen: "127.0.0.1:8080"},
		Storage: Storage{
			Backend: BackendPebble,
			DataDir: "./qakka-data",
			Pebble: pebblestore.Options{
				CacheSize:    pebblestore.DefaultCacheSize,
				MemTableSize: pebblestore.DefaultMemTableSize,
			},
			Cassandra: cassandrastore.Config{
				Keyspace:          cassandrastore.DefaultKeyspace,
				LocalDatacenter:   cassandrastore.DefaultLocalDatacenter,
				Consistency:       cassandrastore.DefaultConsistency,
				SerialConsistency: cassandrastore.DefaultSerialConsistency,
				ConnectTimeout:    cassandrastore.DefaultConnectTimeout,
				Timeout:           cassandrastore.DefaultTimeout,
				Replication:       cassandrastore.Replication{Class: cassandrastore.SimpleStrategy, Factor: 1},
				RegionReplication: cassandrastore.Replication{Class: cassandrastore.SimpleStrategy, Factor: 1},
			},
		},
		Queue: queue.Options{
			VisibilityTimeout: queue.DefaultVisibilityTimeout,
			ReceiveWait:       queue.DefaultReceiveWait,
			MaxReceiveWait:    queue.DefaultMaxReceiveWait,
			MaxTTL:            queue.DefaultMaxTTL,
			MaxVisibility:     queue.DefaultMaxVisibility,
			BufferSize:        queue.DefaultBufferSize,
			ShardSize:         queue.DefaultShardSize,
			MaxReceiveCount:   queue.DefaultMaxReceiveCount,
			MaxBatch:          queue.DefaultMaxBatch,
			MaxMessageSize:    queue.DefaultMaxMessageSize,
			Region:            queue.DefaultRegion,
		},
		Regions:         Regions{RequestTimeout: region.DefaultRequestTimeout},
		SQS:             SQS{Listen: "127.0.0.1:9324", Region: "us-east-1"},
		Cluster:         Cluster{Profile: "lan", LeaseTTL: 5 * time.Second, LeaseSettle: 3 * time.Second},
		Log:             Log{Level: "info", Format: "text"},
		ShutdownTimeout: 30 * time.Second,
	}
}

// Validate reports every option of c that cannot work, each error naming
// the option, its value and what to do.
func (c *Config) Validate() error {
	errs := []error{
		c.HTTP.Validate(),
		c.Storage.Validate(),
		validateQueue(c.Queue),
		c.Regions.Validate(c.Queue.Region),
		c.SQS.Validate(),
		c.Cluster.Validate(c.Storage.Backend),
		c.Log.Validate(),
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, invalid("shutdown-timeout", c.ShutdownTimeout, "use a positive duration such as 30s"))
	}
	return errors.Join(errs...)
}

// Validate reports every invalid HTTP option.
func (h *HTTP) Validate() error {
	var errs []error
	if err := validateListen(h.Listen); err != nil {
		errs = append(errs, err)
	}
	if h.Password != "" && h.PasswordFile != "" {
		errs = append(errs, errors.New("password and password-file are both set: set only one"))
	}
	hasPassword := h.Password != "" || h.PasswordFile != ""
	if h.Username == "" && hasPassword {
		errs = append(errs, errors.New("a password is set without username: set username to enable basic authentication"))
	}
	if h.Username != "" && !hasPassword {
		errs = append(errs, fmt.Errorf("username %q is set without a password: set password or password-file", h.Username))
	}
	if strings.Contains(h.Username, ":") {
		errs = append(errs, invalid("username", h.Username, "basic authentication does not allow ':' in a username"))
	}
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls-cert-file and tls-key-file must be set together: set both to serve HTTPS, or neither"))
	}
	return errors.Join(errs...)
}

func validateListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalid("listen", addr, "use host:port, such as 127.0.0.1:8080 or :8080")
	}
	if host != "" && strings.Contains(host, "%") {
		return invalid("listen", addr, "zone-scoped addresses are not supported")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return invalid("listen", addr, "the port must be a number from 0 to 65535")
	}
	return nil
}

// Cluster configures cluster mode: several servers that share one Cassandra
// and split the queues between them.
type Cluster struct {
	// Listen is the host:port of gossip between nodes, over TCP and UDP.
	// Setting it turns cluster mode on.
	Listen string
	// Advertise is the gossip host:port other nodes reach this node at.
	// Default Listen.
	Advertise string
	// Seeds are gossip addresses of other nodes to join through.
	Seeds []string
	// NodeName names this node; it must be unique in the cluster. Default
	// the gossip address.
	NodeName string
	// AdvertiseURL is the base URL of this node's REST API for other nodes.
	// Default http:// (https:// with TLS) and the REST API's address.
	AdvertiseURL string
	// Profile tunes failure detection: lan (default) or local, which
	// detects failures faster on one machine.
	Profile string
	// LeaseTTL is how long a queue's lease lasts without renewal, and
	// LeaseSettle how long past its expiry another node waits to take it.
	LeaseTTL    time.Duration
	LeaseSettle time.Duration
}

// Enabled reports whether the server is a cluster node.
func (c *Cluster) Enabled() bool { return c.Listen != "" }

// Validate reports every invalid cluster option.
func (c *Cluster) Validate(backend string) error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if backend != BackendCassandra {
		errs = append(errs, invalid("cluster-listen", c.Listen, "a cluster needs storage %s, which all nodes share; set --storage %s or unset cluster-listen", BackendCassandra, BackendCassandra))
	}
	for _, addr := range append([]string{c.Listen, c.Advertise}, c.Seeds...) {
		if addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("cluster address %q is not host:port: use a form such as 127.0.0.1:7946", addr))
		}
	}
	if c.AdvertiseURL != "" {
		if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, invalid("cluster-advertise-url", c.AdvertiseURL, "use a base URL such as http://10.0.0.5:8080"))
		}
	}
	if _, port, err := net.SplitHostPort(c.Listen); err == nil && port == "0" && c.NodeName == "" && c.Advertise == "" {
		errs = append(errs, invalid("cluster-node-name", c.NodeName, "set a node name when cluster-listen picks a free port, because the default name is the gossip address"))
	}
	if c.Profile != "lan" && c.Profile != "local" {
		errs = append(errs, invalid("cluster-profile", c.Profile, "use lan or local"))
	}
	if c.LeaseTTL < 3*time.Second {
		errs = append(errs, invalid("cluster-lease-ttl", c.LeaseTTL, "use at least 3s; the default is 5s"))
	}
	if c.LeaseSettle <= 0 || c.LeaseSettle > c.LeaseTTL {
		errs = append(errs, invalid("cluster-lease-settle", c.LeaseSettle, "use a positive duration no longer than cluster-lease-ttl, such as 3s"))
	}
	return errors.Join(errs...)
}

// Validate reports every invalid storage option. The Cassandra options are
// checked only when Backend is BackendCassandra.
func (s *Storage) Validate() error {
	switch s.Backend {
	case BackendPebble:
		return s.validatePebble()
	case BackendCassandra:
		return s.validateCassandra()
	default:
		return invalid("storage", s.Backend, "use %s or %s", BackendPebble, BackendCassandra)
	}
}

// maxMemTableSize is Pebble's limit: a memtable must be smaller than 4 GiB.
const maxMemTableSize = 4 << 30

func (s *Storage) validatePebble() error {
	var errs []error
	if s.DataDir == "" {
		errs = append(errs, invalid("data-dir", s.DataDir, "set the directory of the Pebble store"))
	}
	if s.Pebble.CacheSize < 1 {
		errs = append(errs, invalid("pebble-cache-size", s.Pebble.CacheSize, "use a positive number of bytes, such as %d", pebblestore.DefaultCacheSize))
	}
	if s.Pebble.MemTableSize < 1 || s.Pebble.MemTableSize >= maxMemTableSize {
		errs = append(errs, invalid("pebble-memtable-size", s.Pebble.MemTableSize, "use a positive number of bytes below 4 GiB, such as %d", pebblestore.DefaultMemTableSize))
	}
	return errors.Join(errs...)
}

func (s *Storage) validateCassandra() error {
	var errs []error
	c := s.Cassandra
	if len(c.Hosts) == 0 {
		errs = append(errs, errors.New("cassandra-hosts is empty: the cassandra storage needs at least one contact point, such as 127.0.0.1:9042"))
	}
	if c.Password != "" && s.CassandraPasswordFile != "" {
		errs = append(errs, errors.New("cassandra-password and cassandra-password-file are both set: set only one"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, invalid("cassandra-timeout", c.Timeout, "use a positive duration such as 10s"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, invalid("cassandra-connect-timeout", c.ConnectTimeout, "use a positive duration such as 5s"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// The backend checks the rest: keyspace names, replication and
	// consistency levels. Its messages name the field, not the option.
	if err := c.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("invalid cassandra options: %w", err)
	}
	return nil
}

// validateQueue checks the queue engine's settings, naming each option.
func validateQueue(o queue.Options) error {
	var errs []error
	positive := []struct {
		name  string
		value time.Duration
	}{
		{"max-visibility-timeout", o.MaxVisibility},
		{"max-receive-wait", o.MaxReceiveWait},
	}
	for _, p := range positive {
		if p.value <= 0 {
			errs = append(errs, invalid(p.name, p.value, "use a positive duration"))
		}
	}
	if o.VisibilityTimeout <= 0 || o.VisibilityTimeout > o.MaxVisibility {
		errs = append(errs, invalid("visibility-timeout", o.VisibilityTimeout, "use a positive duration up to max-visibility-timeout (%s)", o.MaxVisibility))
	}
	// NB: the engine reads a zero receive wait as "use the default", so
	// zero cannot mean "do not wait" here. A receive request can still ask
	// for no wait.
	if o.ReceiveWait <= 0 || o.ReceiveWait > o.MaxReceiveWait {
		errs = append(errs, invalid("receive-wait", o.ReceiveWait, "use a positive duration up to max-receive-wait (%s)", o.MaxReceiveWait))
	}
	if o.MaxTTL < time.Second {
		errs = append(errs, invalid("max-ttl", o.MaxTTL, "use at least 1s, such as 336h for 14 days"))
	}
	counts := []struct {
		name  string
		value int64
	}{
		{"buffer-size", int64(o.BufferSize)},
		{"max-receive-count", int64(o.MaxReceiveCount)},
		{"max-batch", int64(o.MaxBatch)},
		{"max-message-size", o.MaxMessageSize},
	}
	for _, c := range counts {
		if c.value < 1 {
			errs = append(errs, invalid(c.name, c.value, "use a number of at least 1"))
		}
	}
	if o.ShardSize < 1 {
		errs = append(errs, invalid("shard-size", o.ShardSize, "use a number of at least 1"))
	}
	if err := region.ValidateName(o.Region); err != nil {
		errs = append(errs, invalid("region", o.Region, "use 1 to 64 letters, digits, '-' or '_', and not %s, %s or %s", region.KeywordLocal, region.KeywordAll, region.KeywordRemote))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// The engine's own check runs last, in case it enforces a rule that the
	// checks above miss.
	if err := o.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("invalid queue options: %w", err)
	}
	return nil
}

// Validate reports an unknown log level or format.
func (l *Log) Validate() error {
	var errs []error
	if _, err := l.SlogLevel(); err != nil {
		errs = append(errs, err)
	}
	if l.Format != "text" && l.Format != "json" {
		errs = append(errs, invalid("log-format", l.Format, "use text or json"))
	}
	return errors.Join(errs...)
}

// SlogLevel returns Level as a slog.Level.
func (l *Log) SlogLevel() (slog.Level, error) {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, invalid("log-level", l.Level, "use debug, info, warn or error")
}

func invalid(option string, value any, fix string, args ...any) error {
	return fmt.Errorf("invalid %s %q: %s", option, fmt.Sprint(value), fmt.Sprintf(fix, args...))
}
