package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qakka/qakka/internal/config"
)

// waitTimeout bounds every wait for the server to start or stop.
const waitTimeout = time.Minute

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SQS.Listen = "127.0.0.1:0"
	cfg.Storage.DataDir = t.TempDir()
	cfg.ShutdownTimeout = waitTimeout
	return cfg
}

// running is a server started by start.
type running struct {
	srv  *Server
	stop func() error
}

func (r *running) url(path string) string {
	return "http://" + r.srv.Addr().String() + path
}

// start runs a server for cfg until the test ends or stop is called, and
// waits until it is ready.
func start(t *testing.T, cfg config.Config) *running {
	t.Helper()
	srv := New(cfg, "test-version", slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()

	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(waitTimeout):
			t.Errorf("server did not stop within %s", waitTimeout)
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })

	select {
	case <-srv.Ready():
	case err := <-errc:
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(waitTimeout):
		t.Fatalf("server not ready within %s", waitTimeout)
	}
	return &running{srv: srv, stop: stop}
}

// runToError runs a server that is expected to fail and returns its error.
func runToError(t *testing.T, cfg config.Config) error {
	t.Helper()
	srv := New(cfg, "test-version", slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := srv.Run(ctx)
	if err == nil {
		t.Fatal("Run returned nil, want an error")
	}
	select {
	case <-srv.Ready():
		t.Error("Ready is closed although the server failed to start")
	default:
	}
	return err
}

func testClient(t *testing.T) *http.Client {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}, Timeout: waitTimeout}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func do(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunServesAndStops(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	c := testClient(t)

	status, body := do(t, c, http.MethodGet, r.url("/api/status"), "")
	if status != http.StatusOK {
		t.Fatalf("status: %d %s", status, body)
	}
	var st struct {
		Version string `json:"version"`
		Storage string `json:"storage"`
		Region  string `json:"region"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "test-version" || st.Storage != "pebble" || st.Region != "local" {
		t.Errorf("status = %+v", st)
	}
	if status, body := do(t, c, http.MethodPost, r.url("/api/queues"), `{"name":"q"}`); status != http.StatusCreated {
		t.Fatalf("create queue: %d %s", status, body)
	}
	c.CloseIdleConnections()

	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}

	// The store was closed: a new server opens the same directory and
	// still has the queue.
	r = start(t, cfg)
	if status, body := do(t, c, http.MethodGet, r.url("/api/queues/q/config"), ""); status != http.StatusOK {
		t.Errorf("queue after restart: %d %s", status, body)
	}
}

func TestRunDrainsLongPoll(t *testing.T) {
	r := start(t, testConfig(t))
	c := testClient(t)
	if status, body := do(t, c, http.MethodPost, r.url("/api/queues"), `{"name":"q"}`); status != http.StatusCreated {
		t.Fatalf("create queue: %d %s", status, body)
	}

	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Get(r.url("/api/queues/q/messages?wait=3000"))
		if err != nil {
			done <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b)}
	}()

	// Stop once the receive is waiting in the engine.
	waitForMetric(t, c, r.url("/metrics"), `qakka_queue_waiting_receives{queue="q"} 1`)
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()

	res := <-done
	if res.status != http.StatusOK || !strings.Contains(res.body, `"count":0`) {
		t.Errorf("long poll during shutdown: status %d, body %s; want 200 with no messages", res.status, res.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRunShutdownTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownTimeout = 50 * time.Millisecond
	r := start(t, cfg)
	c := testClient(t)
	if status, body := do(t, c, http.MethodPost, r.url("/api/queues"), `{"name":"q"}`); status != http.StatusCreated {
		t.Fatalf("create queue: %d %s", status, body)
	}

	// A send whose body never ends keeps its request active past the
	// shutdown timeout.
	body, bodyWriter := io.Pipe()
	defer bodyWriter.Close()
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPost, r.url("/api/queues/q/messages"), body)
		if err != nil {
			done <- err
			return
		}
		req.Header.Set("Content-Type", "text/plain")
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	if _, err := bodyWriter.Write([]byte("the start of a body")); err != nil {
		t.Fatalf("write request body: %v", err)
	}

	if err := r.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	// End the body cleanly: the request can now only fail because the
	// server closed its connection.
	bodyWriter.Close()
	if err := <-done; err == nil {
		t.Error("request that outlived the shutdown timeout succeeded, want a closed connection")
	}
}

// waitForMetric polls url until its body contains line.
func waitForMetric(t *testing.T, c *http.Client, url, line string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if _, body := do(t, c, http.MethodGet, url, ""); strings.Contains(body, line) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never showed %q", url, line)
}

func TestRunAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	cfg := testConfig(t)
	cfg.HTTP.Listen = ln.Addr().String()
	err = runToError(t, cfg)
	if !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q does not explain the busy address", err)
	}
}

// TestRunDataDirLocked runs two servers on one directory in one process.
// Pebble then reports "lock held by current process"; the test of the
// command covers two processes, where the server explains the error.
func TestRunDataDirLocked(t *testing.T) {
	cfg := testConfig(t)
	start(t, cfg)

	err := runToError(t, cfg)
	if !strings.Contains(err.Error(), "lock") || !strings.Contains(err.Error(), cfg.Storage.DataDir) {
		t.Errorf("error %q does not name the lock and the directory", err)
	}
}

func TestRunMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.Username = "admin"
	cfg.HTTP.PasswordFile = filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(cfg.HTTP.PasswordFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	c := testClient(t)

	for _, path := range []string{"/metrics", "/api/status"} {
		if status, _ := do(t, c, http.MethodGet, r.url(path), ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: status %d, want 401", path, status)
		}
	}

	authed := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, r.url(path), nil)
		req.SetBasicAuth("admin", "s3cret")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := authed("/api/status"); status != http.StatusOK {
		t.Fatalf("GET /api/status with credentials: %d %s", status, body)
	}
	status, body := authed("/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics with credentials: %d %s", status, body)
	}
	for _, want := range []string{
		"go_goroutines",
		"process_open_fds",
		`qakka_build_info{version="test-version"} 1`,
		`qakka_http_request_duration_seconds_count{operation="status",status_class="2xx"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestRunTLS(t *testing.T) {
	cfg := testConfig(t)
	pool := x509.NewCertPool()
	cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile = writeCertificate(t, pool)
	r := start(t, cfg)

	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: waitTimeout}
	t.Cleanup(c.CloseIdleConnections)
	url := "https://" + r.srv.Addr().String() + "/api/status"
	if status, body := do(t, c, http.MethodGet, url, ""); status != http.StatusOK {
		t.Errorf("GET over TLS: %d %s", status, body)
	}

	plain := testClient(t)
	if status, _ := do(t, plain, http.MethodGet, r.url("/api/status"), ""); status != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: status %d, want 400", status)
	}
}

// writeCertificate writes a self-signed certificate for 127.0.0.1 and its
// key, adds the certificate to pool and returns the two file names.
func writeCertificate(t *testing.T, pool *x509.CertPool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "qakka test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestRunStartErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *config.Config)
		want   string
	}{
		{"missing password file", func(c *config.Config) {
			c.HTTP.Username, c.HTTP.PasswordFile = "admin", "/nonexistent/password"
		}, "read password-file"},
		{"empty password file", func(c *config.Config) {
			c.HTTP.Username = "admin"
			c.HTTP.PasswordFile = filepath.Join(t.TempDir(), "empty")
			if err := os.WriteFile(c.HTTP.PasswordFile, []byte("\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is empty"},
		{"missing certificate", func(c *config.Config) {
			c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = "/nonexistent/cert.pem", "/nonexistent/key.pem"
		}, "load TLS certificate /nonexistent/cert.pem"},
		{"data dir is a file", func(c *config.Config) {
			c.Storage.DataDir = filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(c.Storage.DataDir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "pebble"},
		{"no cassandra node", func(c *config.Config) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			c.Storage.Backend = config.BackendCassandra
			c.Storage.Cassandra.Hosts = []string{addr}
			c.Storage.Cassandra.ConnectTimeout = 2 * time.Second
		}, "no Cassandra node accepts connections at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.modify(&cfg)
			err := runToError(t, cfg)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
