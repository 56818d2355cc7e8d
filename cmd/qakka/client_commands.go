package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qakka/qakka/client"
)

// Defaults of the client flags.
const (
	defaultServer  = "http://127.0.0.1:8080"
	defaultTimeout = 30 * time.Second
)

// Environment variables that the client flags fall back to.
const (
	envServer   = "QAKKA_SERVER"
	envUsername = "QAKKA_USERNAME"
	envPassword = "QAKKA_PASSWORD"
)

// clientCommands returns the commands that talk to a running server through
// the public client package: queue administration, send, receive, ack,
// nack, extend, purge, stats, audit, peek and redrive.
func clientCommands() []*cobra.Command {
	return []*cobra.Command{
		newQueueCommand(),
		newSendCommand(),
		newReceiveCommand(),
		newAckCommand(),
		newNackCommand(),
		newExtendCommand(),
		newPurgeCommand(),
		newStatsCommand(),
		newAuditCommand(),
		newPeekCommand(),
		newRedriveCommand(),
	}
}

// clientOptions are the connection and output flags that every client
// command shares.
type clientOptions struct {
	server   string
	username string
	password string
	timeout  time.Duration
	output   string
}

// addClientFlags registers the shared flags on cmd, as persistent flags so
// that the subcommands of a group inherit them, and returns their values.
func addClientFlags(cmd *cobra.Command) *clientOptions {
	o := &clientOptions{}
	f := cmd.PersistentFlags()
	f.StringVar(&o.server, "server", defaultServer, "URL of the Qakka server (env "+envServer+")")
	f.StringVar(&o.username, "username", "", "user name for HTTP basic authentication (env "+envUsername+")")
	f.StringVar(&o.password, "password", "", "password for HTTP basic authentication (env "+envPassword+", which other local users cannot see)")
	f.DurationVar(&o.timeout, "timeout", defaultTimeout, "time limit of each request, such as 10s or 2m")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return o
}

// resolve fills the values that were not given as flags from the
// environment, and checks them. Flags beat the environment.
func (o *clientOptions) resolve(flags *pflag.FlagSet) error {
	fromEnv := func(name, env string, value *string) {
		if !flags.Changed(name) {
			if v, ok := os.LookupEnv(env); ok && v != "" {
				*value = v
			}
		}
	}
	fromEnv("server", envServer, &o.server)
	fromEnv("username", envUsername, &o.username)
	fromEnv("password", envPassword, &o.password)

	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("invalid --output %q: use text or json", o.output)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("invalid --timeout %s: must be positive", o.timeout)
	}
	return nil
}

// session is the environment of one client command: a client for the
// server, a context bounded by --timeout, and the output format.
type session struct {
	client *client.Client
	opts   *clientOptions
	out    io.Writer
	errOut io.Writer
	ctx    context.Context
	cancel context.CancelFunc
}

// newSession resolves the shared flags and connects nothing yet: requests
// go out when the command calls the client. extra lengthens the time limit
// for a request that waits on purpose, such as a long-polling receive.
func newSession(cmd *cobra.Command, o *clientOptions, extra time.Duration) (*session, error) {
	if err := o.resolve(cmd.Flags()); err != nil {
		return nil, err
	}
	var opts []client.Option
	opts = append(opts, client.WithUserAgent("qakka-cli/1"))
	if o.username != "" || o.password != "" {
		opts = append(opts, client.WithBasicAuth(o.username, o.password))
	}
	c, err := client.New(o.server, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (set --server or %s)", err, envServer)
	}

	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout+extra)
	return &session{client: c, opts: o, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), ctx: ctx, cancel: cancel}, nil
}

func (s *session) close() { s.cancel() }

// jsonOutput reports whether the user asked for --output json.
func (s *session) jsonOutput() bool { return s.opts.output == "json" }

// printJSON writes v as indented JSON on its own line.
func (s *session) printJSON(v any) error {
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes human-readable output.
func (s *session) printf(format string, args ...any) {
	fmt.Fprintf(s.out, format, args...)
}

// explain turns an error from the client into one line a user can act on.
// The server's message is kept as it is: it names the queue or the value
// that was wrong.
func (s *session) explain(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr):
		switch apiErr.StatusCode {
		case 401:
			return fmt.Errorf("%s: check --username and --password (or %s and %s)", apiErr.Message, envUsername, envPassword)
		case 503:
			return fmt.Errorf("server unavailable: %s", apiErr.Message)
		case 400:
			// A Go server with TLS replies to a plain HTTP request with this
			// text, which the client quotes when the body is not Qakka's.
			if strings.HasPrefix(s.opts.server, "http://") && strings.Contains(apiErr.Message, "HTTP request to an HTTPS server") {
				return fmt.Errorf("%s (use an https:// URL in --server or %s)", apiErr.Message, envServer)
			}
		}
		return errors.New(apiErr.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("request to %s timed out after %s: raise --timeout or check the server", s.opts.server, s.opts.timeout)
	case errors.Is(err, context.Canceled):
		return errors.New("cancelled")
	case isConnectionError(err):
		return fmt.Errorf("cannot reach the server at %s: %s (set --server or %s)", s.opts.server, rootCause(err), envServer)
	}
	return err
}

// isConnectionError reports whether err is a failure to reach the server.
func isConnectionError(err error) bool {
	var urlErr *url.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		(errors.As(err, &urlErr) && !errors.Is(err, context.DeadlineExceeded))
}

// rootCause returns the text of the innermost error in err's chain, such
// as "connection refused", which is clearer than the URL-laden wrappers.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// runWith wraps a client command's body: it opens a session, runs fn and
// explains its error.
func runWith(o *clientOptions, extra func() time.Duration, fn func(s *session, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		var wait time.Duration
		if extra != nil {
			wait = extra()
		}
		s, err := newSession(cmd, o, wait)
		if err != nil {
			return err
		}
		defer s.close()
		return s.explain(fn(s, args))
	}
}
