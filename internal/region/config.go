package region

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qakka/qakka/internal/clock"
)

// Defaults of Config.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultBatchSize      = 100
	DefaultMaxBodyBytes   = 64 << 20
	DefaultPostBytes      = 4 << 20
	DefaultBackoffBase    = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultLogInterval    = time.Minute
)

// Region keywords of a send's regions parameter and of a queue's regions
// and defaultDestinations. They are case-sensitive, as in the original
// Qakka.
const (
	KeywordLocal  = "LOCAL"
	KeywordAll    = "ALL"
	KeywordRemote = "REMOTE"
)

// maxRegionName keeps OutboxPrefix plus a region name within the 80
// characters of a queue name.
const maxRegionName = 64

var regionNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateName checks a region name: 1 to 64 letters, digits, '-' or '_',
// and none of the keywords LOCAL, ALL and REMOTE. Names have no '.', so
// that they can be keys of a YAML configuration whose keys are paths.
func ValidateName(name string) error {
	if !regionNamePattern.MatchString(name) {
		return fmt.Errorf("invalid region name %q: use 1 to %d letters, digits, '-' or '_'", name, maxRegionName)
	}
	switch name {
	case KeywordLocal, KeywordAll, KeywordRemote:
		return fmt.Errorf("invalid region name %q: %s, %s and %s are keywords of the regions parameter", name, KeywordLocal, KeywordAll, KeywordRemote)
	}
	return nil
}

// Config configures the region layer of one server. Local is required;
// every other field has a default. With no Remotes the layer only resolves
// region names and stores every send locally.
type Config struct {
	// Local names this server's region.
	Local string
	// Remotes are the other regions this server sends to.
	Remotes []Remote
	// Accept holds the credentials that other regions must present to the
	// transfer endpoint. Without a username the endpoint rejects every
	// request with 403.
	Accept Credentials

	// RequestTimeout bounds one POST of a batch to one endpoint. Default 30s.
	RequestTimeout time.Duration
	// BatchSize is how many outbox entries one receive takes and one POST
	// carries at most, capped by the engine's maximum receive count.
	// Default 100.
	BatchSize int
	// PostBytes bounds the encoded entries of one POST; an entry larger
	// than this goes alone. Default 4 MiB.
	PostBytes int
	// MaxBodyBytes bounds the body the transfer endpoint accepts.
	// Default 64 MiB.
	MaxBodyBytes int64
	// BackoffBase and BackoffMax shape the retry delay of a failed entry:
	// BackoffBase doubled per earlier attempt, at most BackoffMax, with
	// jitter. Defaults 1s and 5m.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// LogInterval is the minimum time between two logs of transfer
	// failures to one region. Default 1m.
	LogInterval time.Duration

	// Transport carries the POSTs to other regions. Default a new
	// http.Transport with the settings of http.DefaultTransport.
	Transport http.RoundTripper
	// Clock drives backoff and status times. Default the system clock.
	Clock clock.Clock
	// Logger receives the layer's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer takes the layer's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
}

// Remote is one region that this server sends to.
type Remote struct {
	// Name is the region's name, as sends and queue configurations use it.
	Name string
	// Endpoints are base URLs of the region's servers, such as
	// https://qakka.eu-west.example.com. A POST that cannot connect to one
	// tries the next.
	Endpoints []string
	// Credentials are presented to the region's transfer endpoint.
	Credentials Credentials
}

// Credentials are an HTTP basic-auth user.
type Credentials struct {
	Username string
	Password string
}

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PostBytes == 0 {
		c.PostBytes = DefaultPostBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.LogInterval == 0 {
		c.LogInterval = DefaultLogInterval
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	errs := c.validateRegions()
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("invalid region request timeout %s: use a positive duration such as 30s", c.RequestTimeout))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("invalid region batch size %d: use at least 1", c.BatchSize))
	}
	if c.PostBytes < 1 || c.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("invalid region body limits %d and %d: use positive numbers of bytes", c.PostBytes, c.MaxBodyBytes))
	}
	if c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase {
		errs = append(errs, fmt.Errorf("invalid region backoff %s to %s: use a positive base no larger than the maximum", c.BackoffBase, c.BackoffMax))
	}
	if c.LogInterval <= 0 {
		errs = append(errs, fmt.Errorf("invalid region log interval %s: use a positive duration", c.LogInterval))
	}
	return errors.Join(errs...)
}

// validateRegions checks the names of the regions and their credentials.
func (c *Config) validateRegions() []error {
	var errs []error
	if err := ValidateName(c.Local); err != nil {
		errs = append(errs, fmt.Errorf("local region: %w", err))
	}

	seen := map[string]bool{c.Local: true}
	for i := range c.Remotes {
		r := &c.Remotes[i]
		if err := ValidateName(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("remote region: %w", err))
			continue
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("remote region %q is listed twice or is the local region: name each other region once", r.Name))
		}
		seen[r.Name] = true
		if err := r.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Accept.Username == "" && c.Accept.Password != "" {
		errs = append(errs, errors.New("accepted region password is set without a username: set both or neither"))
	}
	if c.Accept.Username != "" && c.Accept.Password == "" {
		errs = append(errs, fmt.Errorf("accepted region username %q is set without a password: set both or neither", c.Accept.Username))
	}
	return errs
}

func (r *Remote) validate() error {
	var errs []error
	if len(r.Endpoints) == 0 {
		errs = append(errs, fmt.Errorf("remote region %q has no endpoints: give the base URL of at least one of its servers, such as http://127.0.0.1:8080", r.Name))
	}
	for _, e := range r.Endpoints {
		if err := ValidateEndpoint(e); err != nil {
			errs = append(errs, fmt.Errorf("remote region %q: %w", r.Name, err))
		}
	}
	if r.Credentials.Username == "" || r.Credentials.Password == "" {
		errs = append(errs, fmt.Errorf("remote region %q needs a username and a password: the transfer endpoint of every region requires them", r.Name))
	}
	if strings.Contains(r.Credentials.Username, ":") {
		errs = append(errs, fmt.Errorf("remote region %q: basic authentication does not allow ':' in the username %q", r.Name, r.Credentials.Username))
	}
	return errors.Join(errs...)
}

// ValidateEndpoint checks the base URL of a server of a remote region.
func ValidateEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid endpoint %q: use an http or https base URL such as https://qakka.example.com:8080", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid endpoint %q: give a base URL without credentials, query or fragment", s)
	}
	return nil
}

// transferURL returns the URL of the transfer endpoint under a base URL.
func transferURL(base string) string {
	return strings.TrimRight(base, "/") + TransferPath
}
