package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// exactArgs requires one positional argument per name and names the
// missing or extra ones in its error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return fmt.Errorf("missing %s: usage is 'qakka %s'", strings.Join(names[len(args):], " and "), usagePath(cmd))
		case len(args) > len(names):
			return fmt.Errorf("too many arguments %q: usage is 'qakka %s'", args[len(names):], usagePath(cmd))
		}
		return nil
	}
}

// usagePath returns the command's path below the root and its argument
// names, such as "queue create NAME".
func usagePath(cmd *cobra.Command) string {
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	if _, rest, ok := strings.Cut(cmd.Use, " "); ok {
		path += " " + rest
	}
	return path
}

// wholeSeconds converts a duration flag to whole seconds.
func wholeSeconds(flag string, d time.Duration) (int64, error) {
	if d < 0 {
		return 0, fmt.Errorf("invalid %s %s: must not be negative", flag, d)
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("invalid %s %s: use whole seconds, such as 30s", flag, d)
	}
	return int64(d / time.Second), nil
}

// wholeMillis converts a duration flag to whole milliseconds.
func wholeMillis(flag string, d time.Duration) (int64, error) {
	if d < 0 {
		return 0, fmt.Errorf("invalid %s %s: must not be negative", flag, d)
	}
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("invalid %s %s: use whole milliseconds, such as 250ms", flag, d)
	}
	return d.Milliseconds(), nil
}

// byteSize is a size flag in bytes that also accepts the units B, KB, MB,
// GB (powers of 1000) and KiB, MiB, GiB (powers of 1024).
type byteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	// Longer suffixes first, so that "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// String formats the size with the largest binary unit that divides it,
// and zero as "0" so that help text shows no default for it.
func (b byteSize) String() string {
	n := int64(b)
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Set parses a size such as 1048576, 256KiB or 1MB.
func (b *byteSize) Set(s string) error {
	text := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(text, u.suffix); ok {
			text, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return fmt.Errorf("%q is not a size: use bytes or a unit such as 256KiB or 1MiB", s)
	}
	*b = byteSize(n * factor)
	return nil
}

// Type names the flag's value in help text.
func (b *byteSize) Type() string { return "size" }

// formatTime formats a wire time (milliseconds since the epoch) in local
// time, with the distance from now for times within a day.
func formatTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	t := time.UnixMilli(ms)
	text := t.Local().Format("2006-01-02 15:04:05.000 MST")
	d := time.Until(t).Round(time.Second)
	switch {
	case d == 0:
		text += " (now)"
	case d > 0 && d < 24*time.Hour:
		text += " (in " + formatDuration(d) + ")"
	case d < 0 && d > -24*time.Hour:
		text += " (" + formatDuration(-d) + " ago)"
	}
	return text
}

// formatDuration formats d without the zero parts that time.Duration's
// String keeps, such as "5m" for 5m0s and "1h30m" for 1h30m0s.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	text := d.String()
	if strings.HasSuffix(text, "m0s") {
		text = strings.TrimSuffix(text, "0s")
	}
	if strings.HasSuffix(text, "h0m") {
		text = strings.TrimSuffix(text, "0m")
	}
	return text
}

// printFields writes name and value pairs as aligned "Name:  value" lines.
func printFields(w io.Writer, rows [][2]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	tw.Flush()
}

// newTable returns a writer that aligns tab-separated columns. The caller
// flushes it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}
