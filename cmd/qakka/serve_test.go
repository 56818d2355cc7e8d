package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// runTimeout bounds a qakka run that is expected to end by itself.
const runTimeout = time.Minute

// runQakka runs bin with args and env until it exits, and returns its
// exit code, standard output and standard error.
func runQakka(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("qakka %v did not exit within %s\nstderr:\n%s", args, runTimeout, stderr.String())
	}
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run qakka %v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// getJSON GETs url and decodes the JSON body into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode %s: %v", url, body, err)
	}
}

func writeTestFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// exchangeOneMessage creates a queue, sends a JSON message, receives it and
// acks it.
func exchangeOneMessage(t *testing.T, p *serverProcess) {
	t.Helper()
	post := func(path, body string, want int) []byte {
		t.Helper()
		resp, err := http.Post(p.url(path), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("POST %s: status %d, want %d: %s", path, resp.StatusCode, want, b)
		}
		return b
	}
	post("/api/queues", `{"name":"orders"}`, http.StatusCreated)
	post("/api/queues/orders/messages", `{"order":42}`, http.StatusOK)

	var got struct {
		QueueMessages []struct {
			QueueMessageID string `json:"queueMessageId"`
			Data           string `json:"data"`
		} `json:"queueMessages"`
	}
	getJSON(t, p.url("/api/queues/orders/messages?count=10&wait=5000"), &got)
	if len(got.QueueMessages) != 1 || got.QueueMessages[0].Data != `{"order":42}` {
		t.Fatalf("receive = %+v, want the one message sent", got)
	}

	req, _ := http.NewRequest(http.MethodDelete, p.url("/api/queues/orders/messages/"+got.QueueMessages[0].QueueMessageID), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("ack: status %d", resp.StatusCode)
	}
}

func TestServe(t *testing.T) {
	bin := buildQakka(t)

	t.Run("SIGTERM stops cleanly", func(t *testing.T) {
		p := startServer(t, bin, []string{"--listen=127.0.0.1:0", "--data-dir=" + t.TempDir()}, nil)
		exchangeOneMessage(t, p)

		p.signal(syscall.SIGTERM)
		code, err := p.wait(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0\nlog:\n%s", code, p.log())
		}
		if _, ok := p.findRecord("stopping"); !ok {
			t.Errorf("no stopping record in the log:\n%s", p.log())
		}
		if _, ok := p.findRecord("stopped"); !ok {
			t.Errorf("no stopped record in the log:\n%s", p.log())
		}
	})

	t.Run("started record", func(t *testing.T) {
		dir := t.TempDir()
		p := startServer(t, bin, []string{"--listen=127.0.0.1:0", "--data-dir=" + dir}, nil)
		rec, _ := p.findRecord("started")
		want := map[string]any{"version": version, "storage": "pebble", "data_dir": dir, "region": "local"}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("started record %s = %v, want %v", k, rec[k], v)
			}
		}
	})

	t.Run("config precedence on a running server", func(t *testing.T) {
		file := writeTestFile(t, "qakka.yaml", "region: file-region\nlisten: 127.0.0.1:0\n")
		tests := []struct {
			name string
			env  []string
			args []string
			want string
		}{
			{"file", nil, nil, "file-region"},
			{"environment beats file", []string{"QAKKA_REGION=env-region"}, nil, "env-region"},
			{"flag beats environment", []string{"QAKKA_REGION=env-region"}, []string{"--region=flag-region"}, "flag-region"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := append([]string{"QAKKA_CONFIG=" + file, "QAKKA_DATA_DIR=" + t.TempDir()}, tt.env...)
				p := startServer(t, bin, tt.args, env)
				var status struct {
					Region string `json:"region"`
				}
				getJSON(t, p.url("/api/status"), &status)
				if status.Region != tt.want {
					t.Errorf("status region = %q, want %q", status.Region, tt.want)
				}
			})
		}
	})

	t.Run("print-config shows precedence", func(t *testing.T) {
		file := writeTestFile(t, "qakka.yaml", "listen: 127.0.0.1:7001\nregion: file-region\nvisibility-timeout: 10s\nbuffer-size: 50\n")
		env := []string{"QAKKA_REGION=env-region", "QAKKA_VISIBILITY_TIMEOUT=20s"}
		code, stdout, stderr := runQakka(t, bin, env, "serve", "--config", file, "--visibility-timeout=25s", "--print-config")
		if code != 0 {
			t.Fatalf("exit code %d: %s", code, stderr)
		}
		var got map[string]any
		if err := yaml.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, stdout)
		}
		want := map[string]any{
			"listen":             "127.0.0.1:7001",
			"region":             "env-region",
			"visibility-timeout": "25s",
			"buffer-size":        50,
			"data-dir":           "./qakka-data",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})

	t.Run("address in use", func(t *testing.T) {
		first := startServer(t, bin, []string{"--listen=127.0.0.1:0", "--data-dir=" + t.TempDir()}, nil)
		code, _, stderr := runQakka(t, bin, nil, "serve", "--listen="+first.addr, "--data-dir="+t.TempDir())
		if code == 0 {
			t.Fatal("second server on the same address exited with 0")
		}
		if !strings.Contains(stderr, "address is already in use") || !strings.Contains(stderr, "--listen") {
			t.Errorf("stderr does not explain the busy address:\n%s", stderr)
		}
	})

	t.Run("data directory in use", func(t *testing.T) {
		dir := t.TempDir()
		startServer(t, bin, []string{"--listen=127.0.0.1:0", "--data-dir=" + dir}, nil)
		code, _, stderr := runQakka(t, bin, nil, "serve", "--listen=127.0.0.1:0", "--sqs-listen=127.0.0.1:0", "--data-dir="+dir)
		if code == 0 {
			t.Fatal("second server on the same data directory exited with 0")
		}
		if !strings.Contains(stderr, "in use by another process") || !strings.Contains(stderr, dir) {
			t.Errorf("stderr does not explain the locked data directory:\n%s", stderr)
		}
	})

	t.Run("invalid option", func(t *testing.T) {
		code, _, stderr := runQakka(t, bin, []string{"QAKKA_VISIBILITY_TIMEOUT=soon"}, "serve", "--data-dir="+t.TempDir())
		if code == 0 {
			t.Fatal("exit code 0 with an invalid option")
		}
		for _, want := range []string{"visibility-timeout", "QAKKA_VISIBILITY_TIMEOUT", `"soon"`, "30s"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not contain %q:\n%s", want, stderr)
			}
		}
	})

	t.Run("basic auth guards API and metrics", func(t *testing.T) {
		passwordFile := writeTestFile(t, "password", "s3cret\n")
		p := startServer(t, bin, []string{"--listen=127.0.0.1:0", "--data-dir=" + t.TempDir(),
			"--username=admin", "--password-file=" + passwordFile}, nil)

		for _, path := range []string{"/metrics", "/api/status"} {
			resp, err := http.Get(p.url(path))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without credentials: status %d, want 401", path, resp.StatusCode)
			}
		}

		req, _ := http.NewRequest(http.MethodGet, p.url("/metrics"), nil)
		req.SetBasicAuth("admin", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics with credentials: status %d: %s", resp.StatusCode, body)
		}
		for _, metric := range []string{"go_goroutines", "process_resident_memory_bytes", `qakka_build_info{version="` + version + `"} 1`} {
			if !bytes.Contains(body, []byte(metric)) {
				t.Errorf("/metrics lacks %s", metric)
			}
		}
	})

	t.Run("cassandra storage", func(t *testing.T) {
		host := os.Getenv("QAKKA_TEST_CASSANDRA")
		if host == "" {
			t.Skip("QAKKA_TEST_CASSANDRA is not set; start a node with scripts/cassandra-dev.sh start and set QAKKA_TEST_CASSANDRA=127.0.0.1:9042")
		}
		keyspace := fmt.Sprintf("qakka_serve_%d", time.Now().UnixNano())
		p := startServer(t, bin, []string{"--listen=127.0.0.1:0", "--storage=cassandra",
			"--cassandra-hosts=" + host, "--cassandra-keyspace=" + keyspace}, nil)
		exchangeOneMessage(t, p)

		p.signal(syscall.SIGTERM)
		if code, err := p.wait(time.Minute); err != nil || code != 0 {
			t.Errorf("exit code %d (%v) after SIGTERM, want 0\nlog:\n%s", code, err, p.log())
		}
		if _, ok := p.findRecord("stopped"); !ok {
			t.Errorf("no stopped record in the log:\n%s", p.log())
		}
	})

	t.Run("version", func(t *testing.T) {
		code, stdout, stderr := runQakka(t, bin, nil, "version")
		if code != 0 || !strings.HasPrefix(stdout, "qakka "+version+" ") {
			t.Errorf("qakka version: exit %d, output %q, stderr %q", code, stdout, stderr)
		}
	})
}
