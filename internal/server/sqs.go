package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/sqsapi"
)

// sqsSecret returns the SQS secret access key, read from its file when one
// is configured.
func (s *Server) sqsSecret() (string, error) {
	q := s.cfg.SQS
	if q.SecretAccessKeyFile == "" {
		return q.SecretAccessKey, nil
	}
	return readSecretFile("sqs-secret-access-key-file", q.SecretAccessKeyFile)
}

// sqsServer builds the HTTP server of the SQS-compatible API. It shares the
// engine, the metrics registry and the TLS configuration of the REST API.
// On a cluster node (node not nil), requests that need a queue's owner go to
// that node, and the REST API serves the requests that other nodes forward.
func (s *Server) sqsServer(engine *queue.Engine, reg prometheus.Registerer, secret string, tlsConfig *tls.Config, node *clusterNode) (*http.Server, error) {
	var creds map[string]string
	if s.cfg.SQS.AccessKeyID != "" {
		creds = map[string]string{s.cfg.SQS.AccessKeyID: secret}
	}
	cfg := sqsapi.Config{
		Engine:      engine,
		Logger:      s.base,
		Registerer:  reg,
		Region:      s.cfg.SQS.Region,
		Credentials: creds,
	}
	if node != nil {
		cfg.RouteToOwner = node.sqsForwarder.Route
	}
	api, err := sqsapi.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("create SQS API: %w", err)
	}
	if node != nil {
		node.serveForwardedSQS(api)
	}
	return &http.Server{
		Handler: api.Handler(),
		// Each server adds its protocols to its TLS configuration when it
		// starts, so the two servers must not share one.
		TLSConfig:         tlsConfig.Clone(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		// An SQS receive waits at most 20 seconds.
		WriteTimeout:   20*time.Second + writeTimeoutMargin,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.base.With(slog.String("component", "sqs-http")).Handler(), slog.LevelWarn),
	}, nil
}

// addrString returns addr as text, or "off" when it is nil.
func addrString(addr net.Addr) string {
	if addr == nil {
		return "off"
	}
	return addr.String()
}
