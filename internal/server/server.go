// Package server runs one Qakka node: it opens the store, starts the queue
// engine and serves the REST API and /metrics over HTTP until its context
// ends, then stops them in reverse order.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qakka/qakka/internal/config"
	"github.com/qakka/qakka/internal/httpapi"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

// HTTP server limits. WriteTimeout is the maximum receive wait plus
// writeTimeoutMargin, so that a long poll always has time to reply.
const (
	readHeaderTimeout  = 10 * time.Second
	readTimeout        = time.Minute
	writeTimeoutMargin = time.Minute
	idleTimeout        = 2 * time.Minute
	maxHeaderBytes     = 64 << 10
)

// Server is one Qakka node. Create it with New and call Run once.
type Server struct {
	cfg     config.Config
	version string
	// base is the logger handed to components, which add their own name;
	// log is the server's own.
	base *slog.Logger
	log  *slog.Logger

	ready chan struct{}
	// addr is the address the HTTP server listens on, and sqsAddr that of
	// the SQS API (nil when it is off). Both are set before ready is
	// closed and never change after.
	addr    net.Addr
	sqsAddr net.Addr
	// stopping run, in order, when a stop begins and before the HTTP
	// servers shut down.
	stopping []func()
	// gossipAddr is the cluster gossip address of a cluster node.
	gossipAddr string
}

// New returns a server for cfg, which must be valid (see config.Load).
// version is reported in logs, /api/status and /metrics.
func New(cfg config.Config, version string, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{
		cfg:     cfg,
		version: version,
		base:    logger,
		log:     logger.With(slog.String("component", "server")),
		ready:   make(chan struct{}),
	}
}

// Ready is closed once the server accepts requests.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address the server listens on, with the port chosen
// when the configuration gave port 0. It is nil until Ready is closed.
func (s *Server) Addr() net.Addr {
	select {
	case <-s.ready:
		return s.addr
	default:
		return nil
	}
}

// SQSAddr returns the address of the SQS-compatible API, or nil when it is
// off or the server is not ready yet.
func (s *Server) SQSAddr() net.Addr {
	select {
	case <-s.ready:
		return s.sqsAddr
	default:
		return nil
	}
}

// Run starts the node and serves until ctx ends, then stops accepting
// requests, waits up to the shutdown timeout for those in flight, closes
// the engine and closes the store. It returns nil after a stop that ctx
// requested, and logs "stopped". Otherwise it returns the first error that
// kept the node from starting or serving, after the same cleanup.
func (s *Server) Run(ctx context.Context) error {
	if err := s.run(ctx); err != nil {
		return err
	}
	s.log.Info("stopped")
	return nil
}

func (s *Server) run(ctx context.Context) (err error) {
	startedAt := time.Now()

	// Read secrets and certificates and take the address first: a typo or
	// a busy port should not wait for a store to open. Connections that
	// arrive before serving starts wait in the listen backlog.
	password, err := s.httpPassword()
	if err != nil {
		return err
	}
	regionCfg, err := s.regionConfig()
	if err != nil {
		return err
	}
	tlsConfig, err := s.tlsConfig()
	if err != nil {
		return err
	}
	sqsSecret, err := s.sqsSecret()
	if err != nil {
		return err
	}
	ln, err := listen("listen", s.cfg.HTTP.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	var sqsLn net.Listener
	if s.cfg.SQS.Listen != "" {
		sqsLn, err = listen("sqs-listen", s.cfg.SQS.Listen)
		if err != nil {
			return err
		}
		defer sqsLn.Close()
	}

	store, err := s.openStore(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close %s store: %w", s.cfg.Storage.Backend, cerr))
		}
	}()

	opts := s.cfg.Queue
	opts.Logger = s.base
	if s.cfg.Cluster.Enabled() {
		opts.Node = s.nodeName()
	}
	engine, err := queue.New(store, opts)
	if err != nil {
		return fmt.Errorf("create queue engine: %w", err)
	}
	var node *clusterNode
	if s.cfg.Cluster.Enabled() {
		node, err = s.newClusterNode(engine, store, ln.Addr(), password, tlsConfig)
		if err != nil {
			return err
		}
	}
	if err := engine.Start(ctx); err != nil {
		return fmt.Errorf("start queue engine: %w", err)
	}
	defer engine.Close()
	if node != nil {
		node.start()
		defer node.stop()
		// A stopping node leaves the cluster and hands its queues over
		// before it stops serving requests.
		s.stopping = append(s.stopping, node.stop)
	}

	reg := prometheus.NewRegistry()
	if err := s.registerMetrics(reg, engine); err != nil {
		return err
	}

	regionCfg.Registerer = reg
	router, err := region.New(engine, regionCfg)
	if err != nil {
		return fmt.Errorf("create region router: %w", err)
	}
	if err := router.Start(ctx); err != nil {
		return fmt.Errorf("start region router: %w", err)
	}
	defer router.Close()

	api, err := httpapi.New(httpapi.Config{
		Engine:      engine,
		Regions:     router,
		Logger:      s.base,
		Registerer:  reg,
		Auth:        httpapi.Auth{Username: s.cfg.HTTP.Username, Password: password},
		Version:     s.version,
		StorageName: s.cfg.Storage.Backend,
		Region:      s.cfg.Queue.Region,
		StartedAt:   startedAt,
		Cluster:     clusterStatusFunc(node),
	})
	if err != nil {
		return fmt.Errorf("create REST API: %w", err)
	}

	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux.Handle("GET /metrics", requireBasicAuth(s.cfg.HTTP.Username, password, metrics))
	if node != nil {
		mux.Handle("/", node.handler(api.Handler(), engine, s.cfg.HTTP.Username, password))
	} else {
		mux.Handle("/", api.Handler())
	}
	// The transfer endpoint checks the inter-region credentials itself,
	// instead of those of the REST API.
	mux.Handle(region.TransferPath, router.TransferHandler())

	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      s.cfg.Queue.MaxReceiveWait + writeTimeoutMargin,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.base.With(slog.String("component", "http")).Handler(), slog.LevelWarn),
	}
	if node != nil {
		// Nodes forward requests to each other over HTTP/2, unencrypted
		// unless TLS is set.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	servers := []served{{name: "REST API", srv: srv, ln: ln}}
	if sqsLn != nil {
		sqsSrv, err := s.sqsServer(engine, reg, sqsSecret, tlsConfig, node)
		if err != nil {
			return err
		}
		servers = append(servers, served{name: "SQS API", srv: sqsSrv, ln: sqsLn})
	}

	// Long-polling receives return at once when shutdown begins, so they
	// do not hold the drain up for their whole wait.
	srv.RegisterOnShutdown(engine.StopWaiting)
	// The senders to other regions stop when shutdown begins; entries they
	// were sending go back to the outboxes.
	srv.RegisterOnShutdown(func() { _ = router.Close() })
	return s.serve(ctx, servers)
}

// served is one HTTP server and its listener.
type served struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

// serve runs the servers until ctx ends or one of them fails, and shuts
// them all down.
func (s *Server) serve(ctx context.Context, servers []served) error {
	serveErr := make(chan error, len(servers))
	for _, sv := range servers {
		go func() {
			var err error
			if sv.srv.TLSConfig != nil {
				err = sv.srv.ServeTLS(sv.ln, "", "")
			} else {
				err = sv.srv.Serve(sv.ln)
			}
			switch {
			case errors.Is(err, http.ErrServerClosed):
				// Serve returns it once Shutdown has begun.
				err = nil
			case err != nil:
				err = fmt.Errorf("serve the %s on %s: %w", sv.name, sv.ln.Addr(), err)
			}
			serveErr <- err
		}()
	}

	s.addr = servers[0].ln.Addr()
	if len(servers) > 1 {
		s.sqsAddr = servers[1].ln.Addr()
	}
	close(s.ready)
	s.logStart()

	var fatal error
	pending := len(servers)
	select {
	case <-ctx.Done():
		s.log.Info("stopping", slog.String("reason", context.Cause(ctx).Error()),
			slog.String("shutdown_timeout", s.cfg.ShutdownTimeout.String()))
	case err := <-serveErr:
		pending--
		fatal = err
		if fatal == nil {
			fatal = errors.New("an HTTP server stopped unexpectedly")
		}
		s.log.Error("HTTP server failed; stopping", slog.Any("error", fatal))
	}

	for _, f := range s.stopping {
		f()
	}
	// Shutdown stops accepting, closes idle connections and waits for
	// active requests. Long-polling receives end at once (StopWaiting).
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	for _, sv := range servers {
		if err := sv.srv.Shutdown(shutdownCtx); err != nil {
			s.log.Warn("requests still running after the shutdown timeout; closing their connections",
				slog.String("server", sv.name),
				slog.String("shutdown_timeout", s.cfg.ShutdownTimeout.String()), slog.Any("error", err))
			_ = sv.srv.Close()
		}
	}
	for ; pending > 0; pending-- {
		if err := <-serveErr; err != nil && fatal == nil {
			fatal = err
		}
	}
	return fatal
}

func (s *Server) logStart() {
	attrs := []any{
		slog.String("version", s.version),
		slog.String("address", s.addr.String()),
		slog.String("storage", s.cfg.Storage.Backend),
	}
	switch s.cfg.Storage.Backend {
	case config.BackendPebble:
		attrs = append(attrs, slog.String("data_dir", s.cfg.Storage.DataDir))
	case config.BackendCassandra:
		attrs = append(attrs, slog.String("cassandra_hosts", strings.Join(s.cfg.Storage.Cassandra.Hosts, ",")))
	}
	attrs = append(attrs,
		slog.String("region", s.cfg.Queue.Region),
		slog.Bool("tls", s.cfg.HTTP.TLSCertFile != ""),
		slog.String("sqs_address", addrString(s.sqsAddr)),
		slog.Bool("auth", s.cfg.HTTP.Username != ""),
		slog.Bool("sqs_auth", s.cfg.SQS.AccessKeyID != ""))
	if s.gossipAddr != "" {
		attrs = append(attrs, slog.String("node", s.nodeName()), slog.String("cluster_address", s.gossipAddr))
	}
	s.log.Info("started", attrs...)
}

// listen opens the address of option.
func listen(option, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the address is already in use: stop the process that uses it or choose another address with --%s", addr, option)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, option, err)
	}
	return ln, nil
}

func (s *Server) registerMetrics(reg *prometheus.Registry, engine *queue.Engine) error {
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   "qakka",
		Name:        "build_info",
		Help:        "Always 1; the version label names the running build.",
		ConstLabels: prometheus.Labels{"version": s.version},
	})
	buildInfo.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		engine.Collector(),
		buildInfo,
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// httpPassword returns the basic authentication password, read from the
// password file when one is configured.
func (s *Server) httpPassword() (string, error) {
	h := s.cfg.HTTP
	if h.PasswordFile == "" {
		return h.Password, nil
	}
	return readSecretFile("password-file", h.PasswordFile)
}

// regionConfig returns the region router's configuration, with the
// passwords read from their files. Remote regions without credentials of
// their own present the server's inter-region credentials.
func (s *Server) regionConfig() (region.Config, error) {
	rc := s.cfg.Regions
	accept := region.Credentials{Username: rc.Username, Password: rc.Password}
	if rc.PasswordFile != "" {
		p, err := readSecretFile("region-password-file", rc.PasswordFile)
		if err != nil {
			return region.Config{}, err
		}
		accept.Password = p
	}
	cfg := region.Config{
		Local:          s.cfg.Queue.Region,
		Accept:         accept,
		RequestTimeout: rc.RequestTimeout,
		Logger:         s.base,
	}
	for _, rm := range rc.Remotes {
		creds := region.Credentials{Username: rm.Username, Password: rm.Password}
		if rm.PasswordFile != "" {
			p, err := readSecretFile("password-file of region "+rm.Name, rm.PasswordFile)
			if err != nil {
				return region.Config{}, err
			}
			creds.Password = p
		}
		if creds.Username == "" {
			creds.Username = accept.Username
		}
		if creds.Password == "" {
			creds.Password = accept.Password
		}
		cfg.Remotes = append(cfg.Remotes, region.Remote{Name: rm.Name, Endpoints: rm.Endpoints, Credentials: creds})
	}
	return cfg, nil
}

// readSecretFile returns the content of a file that holds one secret,
// without a trailing newline.
func readSecretFile(option, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", option, err)
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s %s is empty: write the password into it", option, path)
	}
	return secret, nil
}

// tlsConfig loads the certificate and key, or returns nil when TLS is off.
func (s *Server) tlsConfig() (*tls.Config, error) {
	h := s.cfg.HTTP
	if h.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", h.TLSCertFile, h.TLSKeyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}
