package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/qakka/qakka/internal/storage/cassandrastore"
)

// YAML returns c as a configuration file that Load reads back: every
// option in help order, each under a comment with its usage. Passwords
// that are set are left out and named in a comment instead.
func (c *Config) YAML() []byte {
	var b bytes.Buffer
	b.WriteString("# Qakka server configuration. The keys are the options of `qakka serve --help`.\n")
	for _, o := range options {
		fmt.Fprintf(&b, "\n# %s\n", o.usage)
		value := formatValue(o.field(c))
		if o.secret && value != `""` {
			fmt.Fprintf(&b, "# %s is set and not shown.\n", o.name)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", o.name, value)
		if remotes, ok := o.field(c).(*[]RemoteRegion); ok {
			for _, rm := range *remotes {
				if rm.Password != "" {
					fmt.Fprintf(&b, "# %s: the password of %s is set and not shown.\n", o.name, rm.Name)
				}
			}
		}
	}
	return b.Bytes()
}

// formatValue writes a field's value as YAML: strings and durations in
// double quotes (JSON's string syntax is valid YAML), lists as flow
// sequences.
func formatValue(field any) string {
	switch p := field.(type) {
	case *string:
		return quote(*p)
	case *[]string:
		if len(*p) == 0 {
			return "[]"
		}
		var parts []string
		for _, s := range *p {
			parts = append(parts, quote(s))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *time.Duration:
		return quote(formatDuration(*p))
	case *int:
		return fmt.Sprint(*p)
	case *int64:
		return fmt.Sprint(*p)
	case *uint64:
		return fmt.Sprint(*p)
	case *cassandrastore.Replication:
		return quote(formatReplication(*p))
	case *[]RemoteRegion:
		return formatRemotes(*p)
	}
	panic(fmt.Sprintf("config: unsupported field type %T", field))
}

func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err) // a Go string always encodes
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// formatDuration is time.Duration.String without zero trailing units:
// 336h rather than 336h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
