package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/qakka/qakka/internal/storage/cassandrastore"
)

// Loaded is the result of Load.
type Loaded struct {
	Config Config
	// File is the configuration file that was read, or "".
	File string
	// Sources maps each option that did not keep its default to where its
	// value came from: "flag --listen", "environment QAKKA_LISTEN" or
	// "file qakka.yaml".
	Sources map[string]string
	// UnknownEnv lists QAKKA_ variables that name no option. Load ignores
	// them, because tools share the prefix (QAKKA_TEST_CASSANDRA, for one);
	// the caller may warn about them.
	UnknownEnv []string
}

// layer is one source of option values, in increasing precedence.
type layer struct {
	k *koanf.Koanf
	// source describes an option's origin in this layer.
	source func(name string) string
}

// Load builds the configuration from the defaults, the YAML file, the
// environment and the flags of fs, each overriding the one before, and
// validates it. fs must come from RegisterFlags and be parsed; environ is
// in the form of os.Environ. Only flags that were set on the command line
// count. The file comes from --config or QAKKA_CONFIG.
func Load(fs *pflag.FlagSet, environ []string) (Loaded, error) {
	var (
		res    = Loaded{Config: Default(), Sources: map[string]string{}}
		layers []layer
	)

	path, err := configPath(fs, environ)
	if err != nil {
		return res, err
	}
	if path != "" {
		l, err := fileLayer(path)
		if err != nil {
			return res, err
		}
		res.File = path
		layers = append(layers, l)
	}

	l, unknown, err := envLayer(environ)
	if err != nil {
		return res, err
	}
	res.UnknownEnv = unknown
	layers = append(layers, l)

	l, err = flagLayer(fs)
	if err != nil {
		return res, err
	}
	layers = append(layers, l)

	// Merge the layers in order of precedence; the last one to set an
	// option wins.
	merged := koanf.New(".")
	for _, l := range layers {
		if err := merged.Merge(l.k); err != nil {
			return res, fmt.Errorf("merge configuration: %w", err)
		}
	}

	var errs []error
	for _, o := range options {
		if !merged.Exists(o.name) {
			continue
		}
		source := ""
		for _, l := range layers {
			if l.k.Exists(o.name) {
				source = l.source(o.name)
			}
		}
		res.Sources[o.name] = source
		if err := set(o.field(&res.Config), merged.Get(o.name)); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s from %s: %w", o.name, source, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}

	if err := res.Config.Validate(); err != nil {
		return res, err
	}
	return res, nil
}

func configPath(fs *pflag.FlagSet, environ []string) (string, error) {
	if f := fs.Lookup(ConfigFlag); f != nil && f.Changed {
		if f.Value.String() == "" {
			return "", errors.New("--config is empty: give the path of a YAML file")
		}
		return f.Value.String(), nil
	}
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, ConfigEnv+"="); ok {
			return v, nil
		}
	}
	return "", nil
}

func fileLayer(path string) (layer, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return layer{}, fmt.Errorf("read config file %s: %w", path, err)
	}

	// Reject unknown keys, so that a misspelt option does not silently
	// keep its default.
	var unknown []string
	for _, key := range k.Keys() {
		o, ok := lookupOption(key)
		if !ok {
			// The keys of a map option's value are paths below its name;
			// the option's parser checks them.
			parent, _, nested := strings.Cut(key, ".")
			o, ok = lookupOption(parent)
			ok = ok && nested && isMapOption(o)
		}
		if !ok {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		return layer{}, fmt.Errorf("config file %s: unknown option %s: `qakka serve --help` lists the options, whose names are the keys", path, strings.Join(quoteAll(unknown), ", "))
	}
	return layer{k: k, source: func(string) string { return "file " + path }}, nil
}

func envLayer(environ []string) (layer, []string, error) {
	var unknown []string
	k := koanf.New(".")
	p := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(key, value string) (string, any) {
			if key == ConfigEnv {
				return "", nil
			}
			name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(key, EnvPrefix)), "_", "-")
			if _, ok := lookupOption(name); !ok {
				unknown = append(unknown, key)
				return "", nil
			}
			return name, value
		},
	})
	if err := k.Load(p, nil); err != nil {
		return layer{}, nil, fmt.Errorf("read environment: %w", err)
	}
	slices.Sort(unknown)
	return layer{k: k, source: func(name string) string { return "environment " + EnvName(name) }}, unknown, nil
}

func flagLayer(fs *pflag.FlagSet) (layer, error) {
	k := koanf.New(".")

	// With no koanf instance given, posflag takes only the flags that were
	// set on the command line, so flag defaults never hide the file or the
	// environment.
	p := posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
		if _, ok := lookupOption(f.Name); !ok {
			return "", nil
		}
		return f.Name, posflag.FlagVal(fs, f)
	})
	if err := k.Load(p, nil); err != nil {
		return layer{}, fmt.Errorf("read flags: %w", err)
	}
	return layer{k: k, source: func(name string) string { return "flag --" + name }}, nil
}

// set stores v, as read by koanf from a file, the environment or a flag,
// into field.
func set(field any, v any) error {
	switch p := field.(type) {
	case *string:
		s, err := toString(v)
		*p = s
		return err
	case *[]string:
		s, err := toStrings(v)
		*p = s
		return err
	case *time.Duration:
		d, err := toDuration(v)
		*p = d
		return err
	case *int:
		n, err := toInt(v, math.MinInt, math.MaxInt)
		*p = int(n)
		return err
	case *int64:
		n, err := toInt(v, math.MinInt64, math.MaxInt64)
		*p = n
		return err
	case *uint64:
		n, err := toInt(v, 0, math.MaxInt64)
		*p = uint64(n)
		return err
	case *[]RemoteRegion:
		r, err := parseRemotes(v)
		*p = r
		return err
	case *cassandrastore.Replication:
		s, err := toString(v)
		if err != nil {
			return err
		}
		r, err := parseReplication(s)
		*p = r
		return err
	}
	return fmt.Errorf("unsupported field type %T", field)
}

func toString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	case bool, int, int64, uint64, float64:
		// YAML reads `region: 7` as a number; the option means the text.
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("%v is a %T, not a string", v, v)
}

func toStrings(v any) ([]string, error) {
	var parts []string
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []string:
		parts = v
	case []any:
		for _, e := range v {
			s, err := toString(e)
			if err != nil {
				return nil, err
			}
			parts = append(parts, s)
		}
	case string:
		parts = strings.Split(v, ",")
	default:
		return nil, fmt.Errorf("%v is a %T, not a list: use a comma-separated string or a YAML list", v, v)
	}

	var out []string
	for _, s := range parts {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func toDuration(v any) (time.Duration, error) {
	switch v := v.(type) {
	case time.Duration:
		return v, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: use Go syntax with a unit, such as 500ms, 30s, 5m or 336h", v)
		}
		return d, nil
	case int, int64, uint64, float64:
		return 0, fmt.Errorf("%v has no unit: use Go syntax with a unit, such as 500ms, 30s, 5m or 336h", v)
	}
	return 0, fmt.Errorf("%v is a %T, not a duration: use Go syntax such as 30s", v, v)
}

func toInt(v any, lo, hi int64) (int64, error) {
	var n int64
	switch v := v.(type) {
	case int:
		n = int64(v)
	case int64:
		n = v
	case uint64:
		if v > math.MaxInt64 {
			return 0, fmt.Errorf("%d is too large", v)
		}
		n = int64(v)
	case float64:
		if v != math.Trunc(v) || v < math.MinInt64 || v > math.MaxInt64 {
			return 0, fmt.Errorf("%v is not a whole number", v)
		}
		n = int64(v)
	case string:
		var err error
		n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", v)
		}
	default:
		return 0, fmt.Errorf("%v is a %T, not a whole number", v, v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

// parseReplication reads a replication option: a single factor means
// SimpleStrategy, datacenter=factor pairs mean NetworkTopologyStrategy.
func parseReplication(s string) (cassandrastore.Replication, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return cassandrastore.Replication{Class: cassandrastore.SimpleStrategy, Factor: n}, nil
	}

	r := cassandrastore.Replication{Class: cassandrastore.NetworkTopologyStrategy, Factors: map[string]int{}}
	for _, pair := range strings.Split(s, ",") {
		dc, factor, ok := strings.Cut(strings.TrimSpace(pair), "=")
		n, err := strconv.Atoi(strings.TrimSpace(factor))
		if !ok || err != nil || strings.TrimSpace(dc) == "" {
			return cassandrastore.Replication{}, fmt.Errorf("%q is not a replication: use a factor such as 3, or datacenter=factor pairs such as dc1=3,dc2=3", s)
		}
		r.Factors[strings.TrimSpace(dc)] = n
	}
	return r, nil
}

// formatReplication is the inverse of parseReplication.
func formatReplication(r cassandrastore.Replication) string {
	if r.Class == cassandrastore.NetworkTopologyStrategy {
		var pairs []string
		for _, dc := range slices.Sorted(maps.Keys(r.Factors)) {
			pairs = append(pairs, fmt.Sprintf("%s=%d", dc, r.Factors[dc]))
		}
		return strings.Join(pairs, ",")
	}
	return strconv.Itoa(r.Factor)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
