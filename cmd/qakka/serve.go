package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/qakka/qakka/internal/config"
	"github.com/qakka/qakka/internal/server"
)

const printConfigFlag = "print-config"

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Qakka server",
		Long: `Run a Qakka server: the REST API under /api and Prometheus metrics at
/metrics, on an embedded Pebble store in --data-dir (or on Cassandra).

Every option below can also be set by an environment variable, QAKKA_ and
the option name in upper case with '_' for '-' (QAKKA_DATA_DIR), or by a key
of the YAML file given with --config (data-dir: /var/lib/qakka). Flags beat
the environment, which beats the file, which beats the defaults.
Durations use Go syntax: 500ms, 30s, 5m, 336h.

With --region-remotes the server also sends messages to other regions, each
a qakka serve of its own, and with --region-username it accepts theirs at
/api/regions/transfer (docs/regions.md).

SIGINT or SIGTERM stops the server: it stops accepting requests, waits up to
--shutdown-timeout for those in flight, then closes the store. A second
signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: runServe,
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	config.RegisterFlags(fs)
	fs.Bool(printConfigFlag, false, "print the effective configuration as a YAML file for --config, and exit")
	return cmd
}

func runServe(cmd *cobra.Command, _ []string) error {
	loaded, err := config.Load(cmd.Flags(), os.Environ())
	if err != nil {
		return err
	}
	cfg := loaded.Config

	if printConfig, _ := cmd.Flags().GetBool(printConfigFlag); printConfig {
		_, err := cmd.OutOrStdout().Write(cfg.YAML())
		return err
	}

	logger, err := newLogger(cmd.ErrOrStderr(), cfg.Log)
	if err != nil {
		return err
	}
	if loaded.File != "" {
		logger.Info("configuration file read", slog.String("file", loaded.File))
	}
	if len(loaded.UnknownEnv) > 0 {
		logger.Info("ignoring environment variables that name no server option",
			slog.String("variables", strings.Join(loaded.UnknownEnv, ",")))
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// After the first signal, restore the default handling so that a
	// second one ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()

	return server.New(cfg, version, logger).Run(ctx)
}

// newLogger returns the server's logger, writing to w.
func newLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	level, err := c.SlogLevel()
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid log-format %q: use text or json", c.Format)
}
