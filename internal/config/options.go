package config

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/qakka/qakka/internal/storage/cassandrastore"
)

// option is one setting of Config. Its name is the flag, the YAML key and,
// through EnvName, the environment variable.
type option struct {
	name  string
	usage string
	// field returns the field of c that the option sets: a *string,
	// *[]string, *time.Duration, *int, *int64, *uint64,
	// *cassandrastore.Replication or *[]RemoteRegion.
	field func(c *Config) any
	// secret options are redacted when the configuration is printed.
	secret bool
}

// options lists every option in the order of the help text.
var options = []option{
	{name: "listen", usage: "address to serve the REST API and /metrics on, host:port (port 0 picks a free port)",
		field: func(c *Config) any { return &c.HTTP.Listen }},
	{name: "storage", usage: "storage backend: pebble (embedded, single node) or cassandra",
		field: func(c *Config) any { return &c.Storage.Backend }},
	{name: "data-dir", usage: "directory of the embedded Pebble store, created if missing",
		field: func(c *Config) any { return &c.Storage.DataDir }},
	{name: "pebble-cache-size", usage: "block cache of the Pebble store (bytes)",
		field: func(c *Config) any { return &c.Storage.Pebble.CacheSize }},
	{name: "pebble-memtable-size", usage: "size of one Pebble memtable; writes use up to twice this (bytes)",
		field: func(c *Config) any { return &c.Storage.Pebble.MemTableSize }},
	{name: "region", usage: "name of this server's region, reported in deliveries and status",
		field: func(c *Config) any { return &c.Queue.Region }},

	{name: "visibility-timeout", usage: "how long a received message stays inflight before it is delivered again, for queues that set no handling timeout",
		field: func(c *Config) any { return &c.Queue.VisibilityTimeout }},
	{name: "max-visibility-timeout", usage: "maximum visibility timeout of a queue, a receive or an extension",
		field: func(c *Config) any { return &c.Queue.MaxVisibility }},
	{name: "receive-wait", usage: "long-poll wait of a receive that gives none, for queues that set none",
		field: func(c *Config) any { return &c.Queue.ReceiveWait }},
	{name: "max-receive-wait", usage: "maximum long-poll wait of one receive",
		field: func(c *Config) any { return &c.Queue.MaxReceiveWait }},
	{name: "max-ttl", usage: "maximum expiration of a message, also the default expiration and the bound of delays and retention (336h is 14 days)",
		field: func(c *Config) any { return &c.Queue.MaxTTL }},
	{name: "buffer-size", usage: "available messages each queue keeps in memory (messages)",
		field: func(c *Config) any { return &c.Queue.BufferSize }},
	{name: "shard-size", usage: "queue entries per storage shard (entries)",
		field: func(c *Config) any { return &c.Queue.ShardSize }},
	{name: "max-receive-count", usage: "maximum messages returned by one receive (messages)",
		field: func(c *Config) any { return &c.Queue.MaxReceiveCount }},
	{name: "max-batch", usage: "maximum messages in one batch send or batch ack (messages)",
		field: func(c *Config) any { return &c.Queue.MaxBatch }},
	{name: "max-message-size", usage: "maximum payload of a message, for queues that set none (bytes)",
		field: func(c *Config) any { return &c.Queue.MaxMessageSize }},

	{name: "username", usage: "basic authentication username; when set, every request must authenticate",
		field: func(c *Config) any { return &c.HTTP.Username }},
	{name: "password", usage: "basic authentication password (other local users can see flags: prefer password-file)",
		field: func(c *Config) any { return &c.HTTP.Password }, secret: true},
	{name: "password-file", usage: "file that contains the basic authentication password (a trailing newline is ignored)",
		field: func(c *Config) any { return &c.HTTP.PasswordFile }},
	{name: "tls-cert-file", usage: "PEM certificate chain file; with tls-key-file the server speaks HTTPS only",
		field: func(c *Config) any { return &c.HTTP.TLSCertFile }},
	{name: "tls-key-file", usage: "PEM private key file of tls-cert-file",
		field: func(c *Config) any { return &c.HTTP.TLSKeyFile }},

	{name: "region-remotes", usage: "regions this server sends to: name=endpoint elements, comma-separated, where an endpoint is the base URL of one of the region's servers and a name given twice gets both; in YAML also a map from name to endpoints, username, password and password-file",
		field: func(c *Config) any { return &c.Regions.Remotes }},
	{name: "region-username", usage: "username that other regions must present to send transfers here, also presented to remote regions that set none; without it, transfers from other regions are rejected",
		field: func(c *Config) any { return &c.Regions.Username }},
	{name: "region-password", usage: "password of region-username (other local users can see flags: prefer region-password-file)",
		field: func(c *Config) any { return &c.Regions.Password }, secret: true},
	{name: "region-password-file", usage: "file that contains the password of region-username (a trailing newline is ignored)",
		field: func(c *Config) any { return &c.Regions.PasswordFile }},
	{name: "region-request-timeout", usage: "timeout of one POST of outbox entries to one endpoint of a remote region",
		field: func(c *Config) any { return &c.Regions.RequestTimeout }},

	{name: "sqs-listen", usage: "address to serve the Amazon SQS-compatible API on, host:port; empty turns it off",
		field: func(c *Config) any { return &c.SQS.Listen }},
	{name: "sqs-region", usage: "AWS region of the SQS API, in queue ARNs and request signatures",
		field: func(c *Config) any { return &c.SQS.Region }},
	{name: "sqs-access-key-id", usage: "access key id that SQS clients sign requests with; when set, every SQS request must carry a valid Signature Version 4",
		field: func(c *Config) any { return &c.SQS.AccessKeyID }},
	{name: "sqs-secret-access-key", usage: "secret access key of sqs-access-key-id (other local users can see flags: prefer sqs-secret-access-key-file)",
		field: func(c *Config) any { return &c.SQS.SecretAccessKey }, secret: true},
	{name: "sqs-secret-access-key-file", usage: "file that contains the secret access key of sqs-access-key-id (a trailing newline is ignored)",
		field: func(c *Config) any { return &c.SQS.SecretAccessKeyFile }},

	{name: "cluster-listen", usage: "gossip address of this node, host:port over TCP and UDP; setting it makes the server a cluster node (storage cassandra)",
		field: func(c *Config) any { return &c.Cluster.Listen }},
	{name: "cluster-advertise", usage: "gossip host:port other nodes reach this node at (default: cluster-listen)",
		field: func(c *Config) any { return &c.Cluster.Advertise }},
	{name: "cluster-seeds", usage: "gossip addresses of other nodes to join through, host:port, comma-separated",
		field: func(c *Config) any { return &c.Cluster.Seeds }},
	{name: "cluster-node-name", usage: "name of this node, unique in the cluster (default: the gossip address)",
		field: func(c *Config) any { return &c.Cluster.NodeName }},
	{name: "cluster-advertise-url", usage: "base URL other nodes reach this node's REST API at (default: http:// or https:// and the listen address)",
		field: func(c *Config) any { return &c.Cluster.AdvertiseURL }},
	{name: "cluster-profile", usage: "failure detection: lan, or local for nodes on one machine (faster)",
		field: func(c *Config) any { return &c.Cluster.Profile }},
	{name: "cluster-lease-ttl", usage: "how long a node's lease on a queue lasts without renewal",
		field: func(c *Config) any { return &c.Cluster.LeaseTTL }},
	{name: "cluster-lease-settle", usage: "how long past the expiry of a lease another node waits before it takes the queue; longer than a Cassandra write may take",
		field: func(c *Config) any { return &c.Cluster.LeaseSettle }},

	{name: "log-level", usage: "log level: debug, info, warn or error",
		field: func(c *Config) any { return &c.Log.Level }},
	{name: "log-format", usage: "log format: text or json",
		field: func(c *Config) any { return &c.Log.Format }},
	{name: "shutdown-timeout", usage: "how long a stop waits for in-flight requests to finish",
		field: func(c *Config) any { return &c.ShutdownTimeout }},

	{name: "cassandra-hosts", usage: "Cassandra contact points, host or host:port (port 9042 by default), comma-separated (storage cassandra)",
		field: func(c *Config) any { return &c.Storage.Cassandra.Hosts }},
	{name: "cassandra-keyspace", usage: "Cassandra keyspace of queue configurations and payloads, replicated to every region",
		field: func(c *Config) any { return &c.Storage.Cassandra.Keyspace }},
	{name: "cassandra-region-keyspace", usage: "Cassandra keyspace of this region's queue entries (default: cassandra-keyspace, '_' and the datacenter name)",
		field: func(c *Config) any { return &c.Storage.Cassandra.RegionKeyspace }},
	{name: "cassandra-replication", usage: "replication of cassandra-keyspace when Qakka creates it: a factor (SimpleStrategy) or datacenter=factor pairs, comma-separated (NetworkTopologyStrategy)",
		field: func(c *Config) any { return &c.Storage.Cassandra.Replication }},
	{name: "cassandra-region-replication", usage: "replication of cassandra-region-keyspace when Qakka creates it, in the form of cassandra-replication",
		field: func(c *Config) any { return &c.Storage.Cassandra.RegionReplication }},
	{name: "cassandra-datacenter", usage: "Cassandra datacenter whose nodes serve this server's requests",
		field: func(c *Config) any { return &c.Storage.Cassandra.LocalDatacenter }},
	{name: "cassandra-consistency", usage: "Cassandra consistency level of reads and writes, such as LOCAL_QUORUM or ONE",
		field: func(c *Config) any { return &c.Storage.Cassandra.Consistency }},
	{name: "cassandra-serial-consistency", usage: "Cassandra consistency of lightweight transactions: SERIAL or LOCAL_SERIAL",
		field: func(c *Config) any { return &c.Storage.Cassandra.SerialConsistency }},
	{name: "cassandra-username", usage: "Cassandra username, for PasswordAuthenticator",
		field: func(c *Config) any { return &c.Storage.Cassandra.Username }},
	{name: "cassandra-password", usage: "Cassandra password (prefer cassandra-password-file)",
		field: func(c *Config) any { return &c.Storage.Cassandra.Password }, secret: true},
	{name: "cassandra-password-file", usage: "file that contains the Cassandra password (a trailing newline is ignored)",
		field: func(c *Config) any { return &c.Storage.CassandraPasswordFile }},
	{name: "cassandra-connect-timeout", usage: "timeout of each connection's dial and handshake to Cassandra",
		field: func(c *Config) any { return &c.Storage.Cassandra.ConnectTimeout }},
	{name: "cassandra-timeout", usage: "timeout of each request to Cassandra",
		field: func(c *Config) any { return &c.Storage.Cassandra.Timeout }},
}

// ConfigFlag names the flag, and ConfigEnv the environment variable, that
// give the YAML configuration file. The file cannot name another file.
const (
	ConfigFlag = "config"
	ConfigEnv  = EnvPrefix + "CONFIG"
)

// EnvPrefix starts the name of every environment variable that sets an
// option.
const EnvPrefix = "QAKKA_"

// RegisterFlags adds a flag for every option to fs, with the defaults of
// Default, and the --config flag. Load reads them back.
func RegisterFlags(fs *pflag.FlagSet) {
	def := Default()
	fs.String(ConfigFlag, "", "YAML configuration file; its keys are the option names (also "+ConfigEnv+")")
	for _, o := range options {
		switch p := o.field(&def).(type) {
		case *string:
			fs.String(o.name, *p, o.usage)
		case *[]string:
			fs.StringSlice(o.name, *p, o.usage)
		case *time.Duration:
			d := durationValue(*p)
			fs.Var(&d, o.name, o.usage)
		case *int:
			fs.Int(o.name, *p, o.usage)
		case *int64:
			fs.Int64(o.name, *p, o.usage)
		case *uint64:
			fs.Uint64(o.name, *p, o.usage)
		case *cassandrastore.Replication:
			fs.String(o.name, formatReplication(*p), o.usage)
		case *[]RemoteRegion:
			fs.StringSlice(o.name, nil, o.usage)
		default:
			panic(fmt.Sprintf("config: option %s has an unsupported field type %T", o.name, p))
		}
	}
}

// EnvName returns the environment variable of an option name:
// visibility-timeout is QAKKA_VISIBILITY_TIMEOUT.
func EnvName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return EnvPrefix + string(b)
}

func lookupOption(name string) (option, bool) {
	for _, o := range options {
		if o.name == name {
			return o, true
		}
	}
	return option{}, false
}

// durationValue is a pflag.Value like pflag's own duration flag, but its
// String leaves out zero trailing units, so that help shows 336h and not
// 336h0m0s. Its Type is "duration", so posflag reads it as a
// time.Duration.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: use Go syntax with a unit, such as 500ms, 30s, 5m or 336h", s)
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return formatDuration(time.Duration(*d)) }

func (d *durationValue) Type() string { return "duration" }
