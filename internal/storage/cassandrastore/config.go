package cassandrastore

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Replication strategy classes accepted in Replication.Class.
const (
	SimpleStrategy          = "SimpleStrategy"
	NetworkTopologyStrategy = "NetworkTopologyStrategy"
)

// Defaults used by Config.WithDefaults.
const (
	DefaultKeyspace          = "qakka"
	DefaultLocalDatacenter   = "datacenter1"
	DefaultConsistency       = "LOCAL_QUORUM"
	DefaultSerialConsistency = "SERIAL"
	DefaultConnectTimeout    = 5 * time.Second
	DefaultTimeout           = 10 * time.Second
	DefaultTTLGrace          = time.Hour
	defaultPort              = 9042
)

// Config configures a Store. The zero value plus Hosts is a working
// configuration for a single development node; production sets the
// replication of both keyspaces.
type Config struct {
	// Hosts are the contact points, "host" or "host:port" (port 9042 when
	// omitted). At least one is required.
	Hosts []string

	// Keyspace is replicated to every region and holds queue configurations
	// and payloads. Default "qakka".
	Keyspace string
	// Replication of Keyspace, used only when Open creates it. Default
	// SimpleStrategy with factor 1.
	Replication Replication

	// RegionKeyspace holds this region's queue entries, queue metadata and
	// audit log. Default Keyspace + "_" + LocalDatacenter, lower-cased, with
	// every character other than a-z, 0-9 and _ replaced by _.
	RegionKeyspace string
	// RegionReplication of RegionKeyspace, used only when Open creates it.
	// It should place replicas in the local datacenter only. Default
	// SimpleStrategy with factor 1.
	RegionReplication Replication

	// Consistency of every read and write, by its CQL name. Default
	// LOCAL_QUORUM.
	Consistency string
	// SerialConsistency of the lightweight transactions that create, update
	// and delete queue configurations: SERIAL or LOCAL_SERIAL. Default SERIAL,
	// so that a queue name is unique across regions.
	SerialConsistency string
	// LocalDatacenter is the datacenter whose nodes serve this store's
	// requests. Default "datacenter1", the name SimpleSnitch reports.
	LocalDatacenter string

	// Username and Password authenticate with PasswordAuthenticator when
	// Username is set.
	Username string
	Password string

	// ConnectTimeout limits the dial and handshake of each connection.
	// Default 5s.
	ConnectTimeout time.Duration
	// Timeout limits each request to the cluster. Default 10s.
	Timeout time.Duration
	// TTLGrace is how long payload rows outlive their ExpiresAt: a
	// payload's TTL is the time left until ExpiresAt (zero if passed) plus
	// TTLGrace. It covers a Cassandra clock ahead of Qakka's and an engine
	// that has not yet processed an expiration. Audit rows get no grace.
	// Default 1h.
	TTLGrace time.Duration

	// Logger receives the driver's log records. Default: discard them.
	Logger *slog.Logger
	// Now returns the time used to compute TTLs. Default time.Now.
	Now func() time.Time
}

// Replication is the replication of a keyspace.
type Replication struct {
	// Class is SimpleStrategy or NetworkTopologyStrategy. Default
	// SimpleStrategy.
	Class string
	// Factor is the replication factor of SimpleStrategy. Default 1.
	Factor int
	// Factors maps each datacenter to its replication factor, for
	// NetworkTopologyStrategy.
	Factors map[string]int
}

// keyspaceName matches the unquoted keyspace names Cassandra accepts, in lower
// case only. Unquoted names are case-insensitive, so upper case would only
// mislead.
var keyspaceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.Keyspace == "" {
		c.Keyspace = DefaultKeyspace
	}
	if c.LocalDatacenter == "" {
		c.LocalDatacenter = DefaultLocalDatacenter
	}
	if c.RegionKeyspace == "" {
		c.RegionKeyspace = c.Keyspace + "_" + sanitizeName(c.LocalDatacenter)
	}
	c.Replication = c.Replication.withDefaults()
	c.RegionReplication = c.RegionReplication.withDefaults()

	if c.Consistency == "" {
		c.Consistency = DefaultConsistency
	}
	if c.SerialConsistency == "" {
		c.SerialConsistency = DefaultSerialConsistency
	}

	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.TTLGrace == 0 {
		c.TTLGrace = DefaultTTLGrace
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (r Replication) withDefaults() Replication {
	if r.Class == "" {
		r.Class = SimpleStrategy
	}
	if r.Class == SimpleStrategy && r.Factor == 0 {
		r.Factor = 1
	}
	return r
}

// sanitizeName turns a datacenter name into a keyspace name suffix.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Validate reports every invalid field of c. Call it on the result of
// WithDefaults: it rejects empty required values.
func (c Config) Validate() error {
	var errs []error

	if len(c.Hosts) == 0 {
		errs = append(errs, errors.New("hosts: at least one contact point is required"))
	}
	for _, h := range c.Hosts {
		if err := validateHost(h); err != nil {
			errs = append(errs, err)
		}
	}

	for _, ks := range []struct{ field, name string }{
		{"keyspace", c.Keyspace},
		{"region keyspace", c.RegionKeyspace},
	} {
		if !keyspaceName.MatchString(ks.name) {
			errs = append(errs, fmt.Errorf("%s %q is invalid: use 1 to 48 characters a-z, 0-9 and _, starting with a letter", ks.field, ks.name))
		}
	}
	if c.Keyspace == c.RegionKeyspace {
		errs = append(errs, fmt.Errorf("keyspace and region keyspace are both %q; they must differ", c.Keyspace))
	}

	if err := c.Replication.validate(); err != nil {
		errs = append(errs, fmt.Errorf("replication: %w", err))
	}
	if err := c.RegionReplication.validate(); err != nil {
		errs = append(errs, fmt.Errorf("region replication: %w", err))
	}

	if cl, err := gocql.ParseConsistencyWrapper(c.Consistency); err != nil {
		errs = append(errs, fmt.Errorf("consistency %q is invalid: %w", c.Consistency, err))
	} else if cl == gocql.Serial || cl == gocql.LocalSerial {
		errs = append(errs, fmt.Errorf("consistency %q is invalid: serial levels apply to lightweight transactions only", c.Consistency))
	}
	if cl, err := gocql.ParseConsistencyWrapper(c.SerialConsistency); err != nil || (cl != gocql.Serial && cl != gocql.LocalSerial) {
		errs = append(errs, fmt.Errorf("serial consistency %q is invalid: use SERIAL or LOCAL_SERIAL", c.SerialConsistency))
	}
	if c.LocalDatacenter == "" {
		errs = append(errs, errors.New("local datacenter is required"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("password is set without a username"))
	}

	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("connect timeout %v is negative", c.ConnectTimeout))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", c.Timeout))
	}
	if c.TTLGrace < 0 {
		errs = append(errs, fmt.Errorf("TTL grace %v is negative", c.TTLGrace))
	}
	return errors.Join(errs...)
}

func validateHost(h string) error {
	if h == "" {
		return errors.New("hosts: empty contact point")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: the whole string is the host.
		if strings.Contains(h, ":") && net.ParseIP(h) == nil {
			return fmt.Errorf("hosts: invalid contact point %q: %v", h, err)
		}
		return nil
	}
	if host == "" {
		return fmt.Errorf("hosts: contact point %q has no host", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("hosts: contact point %q has an invalid port", h)
	}
	return nil
}

func (r Replication) validate() error {
	switch r.Class {
	case SimpleStrategy:
		if r.Factor < 1 {
			return fmt.Errorf("%s needs a factor of at least 1, got %d", SimpleStrategy, r.Factor)
		}
		if len(r.Factors) > 0 {
			return fmt.Errorf("%s takes one factor, not per-datacenter factors", SimpleStrategy)
		}
	case NetworkTopologyStrategy:
		if len(r.Factors) == 0 {
			return fmt.Errorf("%s needs a factor for at least one datacenter", NetworkTopologyStrategy)
		}
		if r.Factor != 0 {
			return fmt.Errorf("%s takes per-datacenter factors, not a single factor", NetworkTopologyStrategy)
		}
		for dc, n := range r.Factors {
			if dc == "" {
				return errors.New("empty datacenter name")
			}
			if n < 1 {
				return fmt.Errorf("datacenter %q needs a factor of at least 1, got %d", dc, n)
			}
		}
	default:
		return fmt.Errorf("class %q is invalid: use %s or %s", r.Class, SimpleStrategy, NetworkTopologyStrategy)
	}
	return nil
}

// cql returns the replication map in CQL, as in
// {'class': 'SimpleStrategy', 'replication_factor': 1}.
func (r Replication) cql() string {
	if r.Class == SimpleStrategy {
		return fmt.Sprintf("{'class': '%s', 'replication_factor': %d}", SimpleStrategy, r.Factor)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "{'class': '%s'", NetworkTopologyStrategy)
	for _, dc := range slices.Sorted(maps.Keys(r.Factors)) {
		fmt.Fprintf(&b, ", '%s': %d", strings.ReplaceAll(dc, "'", "''"), r.Factors[dc])
	}
	b.WriteString("}")
	return b.String()
}
