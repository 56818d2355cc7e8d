package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/qakka/qakka/internal/storage/cassandrastore"
)

// load parses args with the flags of RegisterFlags and runs Load.
func load(t *testing.T, args []string, environ []string) (Loaded, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return Load(fs, environ)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qakka.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	res, err := load(t, nil, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(res.Config, Default()) {
		t.Errorf("config = %+v, want the defaults %+v", res.Config, Default())
	}
	if len(res.Sources) != 0 {
		t.Errorf("sources = %v, want none", res.Sources)
	}
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, `
listen: 127.0.0.1:7001
region: from-file
visibility-timeout: 10s
max-ttl: 48h
buffer-size: 50
`)
	environ := []string{
		"QAKKA_CONFIG=" + path,
		"QAKKA_REGION=from-env",
		"QAKKA_VISIBILITY_TIMEOUT=20s",
		"PATH=/usr/bin",
	}
	args := []string{"--visibility-timeout=25s"}

	res, err := load(t, args, environ)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c := res.Config
	if c.HTTP.Listen != "127.0.0.1:7001" {
		t.Errorf("listen = %q, want the file's 127.0.0.1:7001", c.HTTP.Listen)
	}
	if c.Queue.Region != "from-env" {
		t.Errorf("region = %q, want the environment's from-env", c.Queue.Region)
	}
	if c.Queue.VisibilityTimeout != 25*time.Second {
		t.Errorf("visibility-timeout = %s, want the flag's 25s", c.Queue.VisibilityTimeout)
	}
	if c.Queue.MaxTTL != 48*time.Hour {
		t.Errorf("max-ttl = %s, want the file's 48h", c.Queue.MaxTTL)
	}
	if c.Queue.BufferSize != 50 {
		t.Errorf("buffer-size = %d, want the file's 50", c.Queue.BufferSize)
	}
	if c.Storage.DataDir != Default().Storage.DataDir {
		t.Errorf("data-dir = %q, want the default", c.Storage.DataDir)
	}
	if res.File != path {
		t.Errorf("file = %q, want %q", res.File, path)
	}

	want := map[string]string{
		"listen":             "file " + path,
		"region":             "environment QAKKA_REGION",
		"visibility-timeout": "flag --visibility-timeout",
		"max-ttl":            "file " + path,
		"buffer-size":        "file " + path,
	}
	if !reflect.DeepEqual(res.Sources, want) {
		t.Errorf("sources = %v, want %v", res.Sources, want)
	}
}

func TestLoadConfigFlagBeatsEnv(t *testing.T) {
	flagFile := writeFile(t, "region: flag-file\n")
	envFile := writeFile(t, "region: env-file\n")

	res, err := load(t, []string{"--config", flagFile}, []string{"QAKKA_CONFIG=" + envFile})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if res.Config.Queue.Region != "flag-file" {
		t.Errorf("region = %q, want flag-file", res.Config.Queue.Region)
	}
}

func TestLoadValueTypes(t *testing.T) {
	path := writeFile(t, `
storage: cassandra
cassandra-hosts: [10.0.0.1, "10.0.0.2:9043"]
cassandra-replication: dc1=3,dc2=2
cassandra-region-replication: 2
region: 7
max-message-size: 2048
shard-size: 1000
`)
	res, err := load(t, []string{"--config", path}, []string{"QAKKA_CASSANDRA_CONSISTENCY=ONE"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	s := res.Config.Storage
	if !reflect.DeepEqual(s.Cassandra.Hosts, []string{"10.0.0.1", "10.0.0.2:9043"}) {
		t.Errorf("cassandra-hosts = %q", s.Cassandra.Hosts)
	}
	wantRepl := cassandrastore.Replication{Class: cassandrastore.NetworkTopologyStrategy, Factors: map[string]int{"dc1": 3, "dc2": 2}}
	if !reflect.DeepEqual(s.Cassandra.Replication, wantRepl) {
		t.Errorf("cassandra-replication = %+v, want %+v", s.Cassandra.Replication, wantRepl)
	}
	if s.Cassandra.RegionReplication.Class != cassandrastore.SimpleStrategy || s.Cassandra.RegionReplication.Factor != 2 {
		t.Errorf("cassandra-region-replication = %+v, want SimpleStrategy 2", s.Cassandra.RegionReplication)
	}
	if s.Cassandra.Consistency != "ONE" {
		t.Errorf("cassandra-consistency = %q, want ONE", s.Cassandra.Consistency)
	}
	if res.Config.Queue.Region != "7" {
		t.Errorf("region = %q, want 7", res.Config.Queue.Region)
	}
	if res.Config.Queue.MaxMessageSize != 2048 || res.Config.Queue.ShardSize != 1000 {
		t.Errorf("max-message-size, shard-size = %d, %d; want 2048, 1000", res.Config.Queue.MaxMessageSize, res.Config.Queue.ShardSize)
	}
}

func TestLoadHostsFromEnvAndFlag(t *testing.T) {
	environ := []string{"QAKKA_STORAGE=cassandra", "QAKKA_CASSANDRA_HOSTS= a:9042 , b "}
	res, err := load(t, nil, environ)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := res.Config.Storage.Cassandra.Hosts; !reflect.DeepEqual(got, []string{"a:9042", "b"}) {
		t.Errorf("hosts from environment = %q, want [a:9042 b]", got)
	}

	res, err = load(t, []string{"--cassandra-hosts=c,d"}, environ)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := res.Config.Storage.Cassandra.Hosts; !reflect.DeepEqual(got, []string{"c", "d"}) {
		t.Errorf("hosts from flag = %q, want [c d]", got)
	}
}

func TestLoadUnknownEnv(t *testing.T) {
	res, err := load(t, nil, []string{"QAKKA_TEST_CASSANDRA=127.0.0.1:9042", "QAKKA_LISTEN=127.0.0.1:9999"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(res.UnknownEnv, []string{"QAKKA_TEST_CASSANDRA"}) {
		t.Errorf("unknown = %q, want [QAKKA_TEST_CASSANDRA]", res.UnknownEnv)
	}
	if res.Config.HTTP.Listen != "127.0.0.1:9999" {
		t.Errorf("listen = %q", res.Config.HTTP.Listen)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		args    []string
		want    []string
	}{
		{
			name:    "duration syntax from environment",
			environ: []string{"QAKKA_VISIBILITY_TIMEOUT=abc"},
			want:    []string{"visibility-timeout", "environment QAKKA_VISIBILITY_TIMEOUT", `"abc"`, "30s"},
		},
		{
			name: "duration without unit in file",
			file: "max-ttl: 3600\n",
			want: []string{"max-ttl", "file ", "no unit"},
		},
		{
			name: "unknown key in file",
			file: "listen: :1\nvisibilty-timeout: 5s\n",
			want: []string{`unknown option "visibilty-timeout"`, "--help"},
		},
		{
			name: "nested key in file",
			file: "queue:\n  buffer-size: 5\n",
			want: []string{`"queue.buffer-size"`},
		},
		{
			name: "malformed file",
			file: "listen: [\n",
			want: []string{"read config file"},
		},
		{
			name:    "number syntax",
			environ: []string{"QAKKA_BUFFER_SIZE=lots"},
			want:    []string{"buffer-size", "QAKKA_BUFFER_SIZE", "whole number"},
		},
		{
			name: "replication syntax",
			file: "cassandra-replication: three\n",
			want: []string{"cassandra-replication", "datacenter=factor"},
		},
		{
			name: "missing config file",
			args: []string{"--config", "/nonexistent/qakka.yaml"},
			want: []string{"read config file /nonexistent/qakka.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			_, err := load(t, args, tt.environ)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"listen without port", func(c *Config) { c.HTTP.Listen = "localhost" }, `invalid listen "localhost"`},
		{"listen port range", func(c *Config) { c.HTTP.Listen = ":70000" }, "from 0 to 65535"},
		{"unknown storage", func(c *Config) { c.Storage.Backend = "bolt" }, `invalid storage "bolt": use pebble or cassandra`},
		{"empty data dir", func(c *Config) { c.Storage.DataDir = "" }, "invalid data-dir"},
		{"cassandra without hosts", func(c *Config) { c.Storage.Backend = BackendCassandra }, "cassandra-hosts is empty"},
		{"cassandra consistency", func(c *Config) {
			c.Storage.Backend = BackendCassandra
			c.Storage.Cassandra.Hosts = []string{"127.0.0.1"}
			c.Storage.Cassandra.Consistency = "MOST"
		}, `consistency "MOST"`},
		{"visibility above max", func(c *Config) { c.Queue.VisibilityTimeout = 13 * time.Hour }, "invalid visibility-timeout \"13h0m0s\": use a positive duration up to max-visibility-timeout (12h0m0s)"},
		{"zero visibility", func(c *Config) { c.Queue.VisibilityTimeout = 0 }, "invalid visibility-timeout"},
		{"receive wait above max", func(c *Config) { c.Queue.ReceiveWait = time.Minute }, "invalid receive-wait"},
		{"zero receive wait", func(c *Config) { c.Queue.ReceiveWait = 0 }, "invalid receive-wait"},
		{"short max ttl", func(c *Config) { c.Queue.MaxTTL = time.Millisecond }, "invalid max-ttl"},
		{"zero buffer", func(c *Config) { c.Queue.BufferSize = 0 }, `invalid buffer-size "0"`},
		{"zero shard size", func(c *Config) { c.Queue.ShardSize = 0 }, "invalid shard-size"},
		{"negative max message size", func(c *Config) { c.Queue.MaxMessageSize = -1 }, "invalid max-message-size"},
		{"zero max batch", func(c *Config) { c.Queue.MaxBatch = 0 }, "invalid max-batch"},
		{"zero max receive count", func(c *Config) { c.Queue.MaxReceiveCount = 0 }, "invalid max-receive-count"},
		{"region name", func(c *Config) { c.Queue.Region = "us east" }, `invalid region "us east"`},
		{"password without username", func(c *Config) { c.HTTP.Password = "secret" }, "set username"},
		{"username without password", func(c *Config) { c.HTTP.Username = "admin" }, "set password or password-file"},
		{"password twice", func(c *Config) {
			c.HTTP.Username, c.HTTP.Password, c.HTTP.PasswordFile = "admin", "x", "/run/secret"
		}, "set only one"},
		{"tls cert only", func(c *Config) { c.HTTP.TLSCertFile = "cert.pem" }, "must be set together"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, `invalid log-level "loud"`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, `invalid log-format "xml": use text or json`},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "invalid shutdown-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	c := Default()
	c.HTTP.Listen = "[::1]:0"
	c.HTTP.Username, c.HTTP.PasswordFile = "admin", "/run/secret"
	c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = "cert.pem", "key.pem"
	c.Log.Level, c.Log.Format = "DEBUG", "json"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	c = Default()
	c.Storage.Backend = BackendCassandra
	c.Storage.Cassandra.Hosts = []string{"127.0.0.1:9042"}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a Cassandra configuration: %v", err)
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	c := Default()
	c.HTTP.Listen = "0.0.0.0:9000"
	c.HTTP.Username, c.HTTP.PasswordFile = "admin", "/run/secrets/qakka"
	c.Queue.VisibilityTimeout = 90 * time.Second
	c.Queue.MaxTTL = 72 * time.Hour
	c.Queue.ShardSize = 1234
	c.Queue.Region = "eu-1"
	c.Storage.Cassandra.Hosts = []string{"a", "b:9043"}
	c.Storage.Cassandra.Replication = cassandrastore.Replication{Class: cassandrastore.NetworkTopologyStrategy, Factors: map[string]int{"dc1": 3}}
	c.Log.Format = "json"

	path := writeFile(t, string(c.YAML()))
	res, err := load(t, []string{"--config", path}, nil)
	if err != nil {
		t.Fatalf("Load of the printed configuration: %v\n%s", err, c.YAML())
	}
	if !reflect.DeepEqual(res.Config, c) {
		t.Errorf("read back %+v\nwant %+v", res.Config, c)
	}
}

func TestYAMLHidesPasswords(t *testing.T) {
	c := Default()
	c.HTTP.Username, c.HTTP.Password = "admin", "hunter2"
	c.Storage.Cassandra.Password = "cassandra-secret"
	out := string(c.YAML())
	for _, secret := range []string{"hunter2", "cassandra-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("printed configuration contains the password %q", secret)
		}
	}
	if !strings.Contains(out, "# password is set and not shown.") {
		t.Errorf("printed configuration does not say the password is set:\n%s", out)
	}
}

func TestRegisterFlagsDefaults(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	want := map[string]string{
		"listen":             "127.0.0.1:8080",
		"data-dir":           "./qakka-data",
		"visibility-timeout": "30s",
		"max-ttl":            "336h",
		"max-message-size":   "1048576",
		"shutdown-timeout":   "30s",
	}
	for name, def := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag --%s missing", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("--%s default = %q, want %q", name, f.DefValue, def)
		}
	}
	for _, o := range options {
		if fs.Lookup(o.name) == nil {
			t.Errorf("option %s has no flag", o.name)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("visibility-timeout"); got != "QAKKA_VISIBILITY_TIMEOUT" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestValidatePebbleSizes(t *testing.T) {
	c := Default()
	c.Storage.Pebble.CacheSize = 0
	c.Storage.Pebble.MemTableSize = 4 << 30
	err := c.Validate()
	for _, want := range []string{"invalid pebble-cache-size", "invalid pebble-memtable-size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestLoadDurationFlag(t *testing.T) {
	res, err := load(t, []string{"--max-ttl=48h", "--max-visibility-timeout", "90m"}, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if res.Config.Queue.MaxTTL != 48*time.Hour {
		t.Errorf("max-ttl = %s, want 48h", res.Config.Queue.MaxTTL)
	}
	if res.Config.Queue.MaxVisibility != 90*time.Minute {
		t.Errorf("max-visibility-timeout = %s, want 90m", res.Config.Queue.MaxVisibility)
	}
}

func TestFlagRejectsBadDuration(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	RegisterFlags(fs)
	err := fs.Parse([]string{"--visibility-timeout=30"})
	if err == nil || !strings.Contains(err.Error(), "use Go syntax with a unit") {
		t.Errorf("parse error = %v, want one that asks for a unit", err)
	}
}

// TestREADMEListsEveryOption keeps the configuration table of the README
// in step with the options.
func TestREADMEListsEveryOption(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	for _, o := range options {
		row := fmt.Sprintf("| `%s` | `%s` |", o.name, EnvName(o.name))
		if !strings.Contains(string(readme), row) {
			t.Errorf("README has no configuration row starting %s", row)
		}
	}
}
