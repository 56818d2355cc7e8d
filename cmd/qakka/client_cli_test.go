package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/httpapi"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

// cliHarness runs the built qakka binary against an in-process server.
type cliHarness struct {
	t   *testing.T
	bin string
	url string
	// env is added to an environment cleared of QAKKA_ variables.
	env []string
}

// cliResult is the outcome of one run of the binary.
type cliResult struct {
	stdout string
	stderr string
	code   int
}

// buildCLI builds this command into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "qakka")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startAPIServer serves the REST API over a real engine on Pebble in a
// temporary directory, on loopback, and returns its URL.
func startAPIServer(t *testing.T, auth httpapi.Auth) string {
	t.Helper()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatalf("open pebble store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := queue.New(store, queue.Options{Logger: logger})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	if err := engine.Start(context.Background()); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() { _ = engine.Close() })

	api, err := httpapi.New(httpapi.Config{Engine: engine, Logger: logger, Auth: auth, Version: "test", StorageName: "pebble"})
	if err != nil {
		t.Fatalf("new API: %v", err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// run runs the binary with args. A nil stdin leaves standard input at the
// null device.
func (h *cliHarness) run(stdin io.Reader, args ...string) cliResult {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, h.bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QAKKA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, h.env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if exitErr, ok := err.(*exec.ExitError); ok {
		res.code = exitErr.ExitCode()
	} else if err != nil {
		h.t.Fatalf("run qakka %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ok runs the binary and fails the test unless it exits with 0.
func (h *cliHarness) ok(stdin io.Reader, args ...string) string {
	h.t.Helper()
	res := h.run(stdin, args...)
	if res.code != 0 {
		h.t.Fatalf("qakka %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// fails runs the binary and fails the test unless it exits with 1 and
// prints exactly one line on standard error that contains want.
func (h *cliHarness) fails(want string, args ...string) cliResult {
	h.t.Helper()
	res := h.run(nil, args...)
	if res.code != 1 {
		h.t.Fatalf("qakka %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	if lines := strings.Count(res.stderr, "\n"); lines != 1 || !strings.HasPrefix(res.stderr, "qakka: ") {
		h.t.Errorf("qakka %s: stderr %q, want one line starting with \"qakka: \"", strings.Join(args, " "), res.stderr)
	}
	if !strings.Contains(res.stderr, want) {
		h.t.Errorf("qakka %s: stderr %q, want it to contain %q", strings.Join(args, " "), res.stderr, want)
	}
	return res
}

// okJSON runs the binary with --output json and decodes its output into v.
func (h *cliHarness) okJSON(v any, stdin io.Reader, args ...string) {
	h.t.Helper()
	out := h.ok(stdin, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("qakka %s: decode output %q: %v", strings.Join(args, " "), out, err)
	}
}

func (h *cliHarness) stats(queueName string) client.Stats {
	h.t.Helper()
	var st client.Stats
	h.okJSON(&st, nil, "stats", queueName)
	return st
}

func (h *cliHarness) receive(queueName string, count string) []client.QueueMessage {
	h.t.Helper()
	var msgs []client.QueueMessage
	h.okJSON(&msgs, nil, "receive", queueName, "--count", count, "--wait", "0s")
	return msgs
}

// waitForCLI polls cond until it holds or the deadline passes.
func waitForCLI(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestClientCLI(t *testing.T) {
	bin := buildCLI(t)
	h := &cliHarness{t: t, bin: bin}
	h.url = startAPIServer(t, httpapi.Auth{})
	h.env = []string{"QAKKA_SERVER=" + h.url}

	t.Run("queue admin", func(t *testing.T) {
		h.t = t
		out := h.ok(nil, "queue", "create", "orders", "--visibility-timeout", "1m", "--retry-count", "3",
			"--dead-letter-queue", "orders-dlq", "--max-message-size", "64KiB", "--retention", "48h")
		if !strings.Contains(out, `Created queue "orders".`) {
			t.Errorf("create printed %q", out)
		}
		out = h.ok(nil, "queue", "create", "orders")
		if !strings.Contains(out, "already exists") {
			t.Errorf("second create printed %q, want it to say the queue exists", out)
		}
		h.ok(nil, "queue", "create", "orders-dlq")

		if out := h.ok(nil, "queue", "list"); out != "orders\norders-dlq\n" {
			t.Errorf("list printed %q", out)
		}
		var names []string
		h.okJSON(&names, nil, "queue", "list")
		if !slices.Equal(names, []string{"orders", "orders-dlq"}) {
			t.Errorf("list --output json = %v", names)
		}

		out = h.ok(nil, "queue", "show", "orders")
		for _, want := range []string{"Visibility timeout:  1m", "Retry count:         3", "Dead-letter queue:   orders-dlq", "Max message size:    64KiB", "Retention:           48h"} {
			if !strings.Contains(out, want) {
				t.Errorf("show printed %q, want a line %q", out, want)
			}
		}

		h.ok(nil, "queue", "update", "orders", "--visibility-timeout", "2m", "--tag", "team=billing")
		var q client.Queue
		h.okJSON(&q, nil, "queue", "show", "orders")
		if q.HandlingTimeoutSec != 120 || q.RetryCount != 3 || q.DeadLetterQueue != "orders-dlq" ||
			q.MaxMessageSize != 64<<10 || q.RetentionSec != 48*3600 || q.Tags["team"] != "billing" {
			t.Errorf("after update: %+v, want the new timeout and tag and every other field kept", q)
		}
		h.fails("nothing to update", "queue", "update", "orders")

		h.ok(nil, "queue", "create", "scratch")
		h.fails(`deletion of queue "scratch" and its messages needs --yes`, "queue", "delete", "scratch")
		h.ok(nil, "queue", "show", "scratch")
		if out := h.ok(nil, "queue", "delete", "scratch", "--yes"); !strings.Contains(out, `Deleted queue "scratch".`) {
			t.Errorf("delete printed %q", out)
		}
		h.fails(`queue "scratch" not found`, "queue", "show", "scratch")
	})

	t.Run("send and receive", func(t *testing.T) {
		h.t = t
		h.ok(nil, "queue", "create", "inbox")

		var fromArg client.SendResult
		h.okJSON(&fromArg, nil, "send", "inbox", `{"id": 1}`)
		out := h.ok(strings.NewReader("from stdin\n"), "send", "inbox")
		if !strings.Contains(out, `Sent 11 bytes to queue "inbox".`) {
			t.Errorf("send from stdin printed %q", out)
		}
		h.ok(strings.NewReader("dash"), "send", "inbox", "-", "--content-type", "text/x-note")
		binary := []byte{0, 1, 2, 0xfe, 0xff}
		file := filepath.Join(t.TempDir(), "blob.bin")
		if err := os.WriteFile(file, binary, 0o644); err != nil {
			t.Fatal(err)
		}
		h.ok(nil, "send", "inbox", "--file", file)
		h.fails("either as DATA or with --file", "send", "inbox", "x", "--file", file)
		h.fails("missing message", "send", "inbox")

		msgs := h.receive("inbox", "10")
		if len(msgs) != 4 {
			t.Fatalf("received %d messages, want 4", len(msgs))
		}
		byType := map[string]client.QueueMessage{}
		for _, m := range msgs {
			byType[m.ContentType] = m
		}
		if m := byType["application/json"]; m.Data != `{"id": 1}` || m.MessageID != fromArg.MessageID {
			t.Errorf("JSON message %+v, want the argument inline", m)
		}
		if _, ok := byType["text/plain; charset=utf-8"]; !ok {
			t.Errorf("no text/plain message among %v", slices.Collect(maps.Keys(byType)))
		}
		if _, ok := byType["text/x-note"]; !ok {
			t.Errorf("no text/x-note message among %v", slices.Collect(maps.Keys(byType)))
		}
		if _, ok := byType["application/octet-stream"]; !ok {
			t.Errorf("no application/octet-stream message among %v", slices.Collect(maps.Keys(byType)))
		}

		// Return every message and receive them again, in text and into
		// files.
		for _, m := range msgs {
			h.ok(nil, "nack", "inbox", m.QueueMessageID)
		}
		out = h.ok(nil, "receive", "inbox", "--count", "2", "--wait", "0s")
		if !strings.Contains(out, `Data:              {"id": 1}`) || !strings.Contains(out, "Data:              from stdin") {
			t.Errorf("receive printed %q, want the JSON and the text payloads", out)
		}
		dir := t.TempDir()
		var saved []struct {
			client.QueueMessage
			File string `json:"file"`
		}
		h.okJSON(&saved, nil, "receive", "inbox", "--count", "2", "--wait", "0s", "--save-dir", dir)
		if len(saved) != 2 {
			t.Fatalf("received %d messages into files, want 2", len(saved))
		}
		for _, m := range saved {
			if m.File != filepath.Join(dir, m.QueueMessageID) {
				t.Errorf("saved to %q, want the directory and the queue message ID", m.File)
			}
			data, err := os.ReadFile(m.File)
			if err != nil {
				t.Fatalf("read saved payload: %v", err)
			}
			if m.ContentType == "application/octet-stream" && !bytes.Equal(data, binary) {
				t.Errorf("saved binary payload %v, want %v", data, binary)
			}
		}

		ids := []string{"ack", "inbox"}
		for _, m := range saved {
			ids = append(ids, m.QueueMessageID)
		}
		if out := h.ok(nil, ids...); !strings.Contains(out, "Acked 2 of 2 messages.") {
			t.Errorf("ack printed %q", out)
		}
		res := h.run(nil, ids...)
		if res.code != 1 || !strings.Contains(res.stderr, "not inflight") {
			t.Errorf("second ack: exit %d, stderr %q; want 1 and not inflight", res.code, res.stderr)
		}
		if st := h.stats("inbox"); st.Inflight != 2 || st.Totals.Acked != 2 {
			t.Errorf("stats %+v, want 2 inflight and 2 acked", st)
		}
	})

	t.Run("nack and extend", func(t *testing.T) {
		h.t = t
		h.ok(nil, "queue", "create", "jobs")
		h.ok(nil, "send", "jobs", "work")
		m := h.receive("jobs", "1")[0]

		out := h.ok(nil, "extend", "jobs", m.QueueMessageID, "--visibility", "10m")
		if !strings.Contains(out, "is invisible until") {
			t.Errorf("extend printed %q", out)
		}
		var ext client.ExtendResult
		h.okJSON(&ext, nil, "extend", "jobs", m.QueueMessageID, "--visibility", "20m")
		if d := time.Until(time.UnixMilli(ext.VisibleUntil)); d < 15*time.Minute {
			t.Errorf("extended deadline is %s away, want about 20m", d)
		}
		h.fails(`"visibility" not set`, "extend", "jobs", m.QueueMessageID)

		var nack client.NackResult
		h.okJSON(&nack, nil, "nack", "jobs", m.QueueMessageID, "--delay", "1h")
		if nack.QueueMessageID == "" || nack.QueueMessageID == m.QueueMessageID {
			t.Errorf("nack %+v, want a new queue message ID", nack)
		}
		if st := h.stats("jobs"); st.Delayed != 1 || st.Inflight != 0 {
			t.Errorf("stats after nack with delay %+v, want 1 delayed", st)
		}
		h.fails("not inflight", "nack", "jobs", m.QueueMessageID)
	})

	t.Run("server limits in flag units", func(t *testing.T) {
		h.t = t
		h.ok(nil, "queue", "create", "limits")
		h.ok(nil, "send", "limits", "work")
		m := h.receive("limits", "1")[0]

		cases := []struct {
			want string
			args []string
		}{
			{"invalid --wait 1h: the server accepts at most 20s", []string{"receive", "limits", "--wait", "1h"}},
			{"invalid --visibility 100h: the server accepts at most 12h", []string{"receive", "limits", "--visibility", "100h"}},
			{"invalid --count 1000: the server accepts at most 100", []string{"receive", "limits", "--count", "1000"}},
			{"invalid --visibility 100h: the server accepts at most 12h", []string{"extend", "limits", m.QueueMessageID, "--visibility", "100h"}},
			{"invalid --delay 1000h: the server accepts less than 336h", []string{"nack", "limits", m.QueueMessageID, "--delay", "1000h"}},
			{"invalid --delay 1000h: the server accepts less than 336h", []string{"send", "limits", "x", "--delay", "1000h"}},
			{"invalid --expiration 1000h: the server accepts at most 336h", []string{"send", "limits", "x", "--expiration", "1000h"}},
			{"invalid --delay 2h: must be shorter than the message's expiration of 1h", []string{"send", "limits", "x", "--delay", "2h", "--expiration", "1h"}},
			{"invalid --visibility-timeout 100h: the server accepts at most 12h", []string{"queue", "create", "too-long", "--visibility-timeout", "100h"}},
			{"invalid --receive-wait 1m: the server accepts at most 20s", []string{"queue", "create", "too-long", "--receive-wait", "1m"}},
			{"invalid --delay 1000h: the server accepts less than 336h", []string{"queue", "create", "too-long", "--delay", "1000h"}},
			{"invalid --retention 1000h: the server accepts at most 336h", []string{"queue", "create", "too-long", "--retention", "1000h"}},
			{"invalid --retry-count 5000: the server accepts at most 1000", []string{"queue", "update", "limits", "--retry-count", "5000"}},
		}
		for _, tc := range cases {
			res := h.fails(tc.want, tc.args...)
			if strings.Contains(res.stderr, "milliseconds") || strings.Contains(res.stderr, "seconds") {
				t.Errorf("qakka %s: stderr %q names the server's units", strings.Join(tc.args, " "), res.stderr)
			}
		}
		if st := h.stats("limits"); st.Totals.Sent != 1 || st.Inflight != 1 {
			t.Errorf("stats %+v, want the one message still inflight and nothing else sent", st)
		}
	})

	t.Run("send arguments", func(t *testing.T) {
		h.t = t
		h.ok(nil, "queue", "create", "outbox")

		res := h.fails("missing QUEUE", "send")
		for _, want := range []string{"qakka send QUEUE [DATA]", "qakka send orders"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("send without arguments: stderr %q, want it to contain %q", res.stderr, want)
			}
		}
		h.fails(`too many arguments ["z"]`, "send", "outbox", "y", "z")

		for _, data := range []string{`{"bad": }`, `  [1, 2`} {
			res := h.fails("is not valid JSON", "send", "outbox", data)
			if !strings.Contains(res.stderr, "--content-type text/plain") {
				t.Errorf("send %q: stderr %q, want the --content-type hint", data, res.stderr)
			}
		}
		res = h.run(strings.NewReader("{\"id\": 1,}\n"), "send", "outbox")
		if res.code != 1 || !strings.Contains(res.stderr, "is not valid JSON") {
			t.Errorf("send of invalid JSON from standard input: exit %d, stderr %q; want 1 and the JSON error", res.code, res.stderr)
		}
		if st := h.stats("outbox"); st.Totals.Sent != 0 {
			t.Fatalf("invalid JSON was sent: %+v", st)
		}
		h.ok(nil, "send", "outbox", `{"bad": }`, "--content-type", "text/plain")
		h.ok(nil, "send", "outbox", "{not JSON, and fine as a note}", "--content-type", "text/x-note")
		msgs := h.receive("outbox", "10")
		if len(msgs) != 2 || msgs[0].ContentType != "text/plain" || msgs[1].ContentType != "text/x-note" {
			t.Errorf("received %+v, want the two payloads with their given content types", msgs)
		}

		var sent client.SendResult
		h.okJSON(&sent, nil, "send", "outbox", "x", "--regions", "LOCAL")
		if !slices.Equal(sent.Regions, []string{"local"}) || len(sent.PendingRegions) != 0 {
			t.Errorf("send --regions LOCAL: regions %v pending %v, want [local] and none", sent.Regions, sent.PendingRegions)
		}
		if out := h.ok(nil, "send", "outbox", "x", "--regions", "ALL"); !strings.Contains(out, "Regions:           local") {
			t.Errorf("send --regions ALL printed %q, want the regions", out)
		}
		h.fails(`invalid regions "mars"`, "send", "outbox", "x", "--regions", "mars")
		if out := h.ok(nil, "send", "--help"); !strings.Contains(out, "--regions") || !strings.Contains(out, "REMOTE") {
			t.Errorf("send --help lacks --regions:\n%s", out)
		}
	})

	t.Run("purge", func(t *testing.T) {
		h.t = t
		h.ok(nil, "queue", "create", "trash")
		for range 3 {
			h.ok(nil, "send", "trash", "x")
		}
		h.fails(`purge of queue "trash" needs --yes to confirm`, "purge", "trash")
		if st := h.stats("trash"); st.Available != 3 {
			t.Fatalf("a refused purge removed messages: %+v", st)
		}
		if out := h.ok(nil, "purge", "trash", "--yes"); !strings.Contains(out, `Purged 3 messages from queue "trash".`) {
			t.Errorf("purge printed %q", out)
		}
		if st := h.stats("trash"); st.Available != 0 || st.Totals.Purged != 3 {
			t.Errorf("stats after purge %+v", st)
		}
		out := h.ok(nil, "stats", "trash")
		if !strings.Contains(out, "Purged:         3") || !strings.Contains(out, "Sent:           3") {
			t.Errorf("stats printed %q", out)
		}
	})

	t.Run("audit and peek", func(t *testing.T) {
		h.t = t
		h.ok(nil, "queue", "create", "trail")
		var sent client.SendResult
		h.okJSON(&sent, nil, "send", "trail", "first")
		h.ok(nil, "send", "trail", "second")
		h.ok(nil, "send", "trail", "third")
		m := h.receive("trail", "1")[0]
		h.ok(nil, "ack", "trail", m.QueueMessageID)

		var trail client.AuditTrail
		h.okJSON(&trail, nil, "audit", "trail", sent.MessageID)
		var actions []string
		for _, e := range trail.Events {
			actions = append(actions, e.Action)
		}
		if !slices.Equal(actions, []string{"sent", "received", "acked"}) {
			t.Errorf("audit actions %v, want sent, received, acked", actions)
		}
		out := h.ok(nil, "audit", "trail", sent.MessageID)
		if !strings.Contains(out, "ACTION") || !strings.Contains(out, "acked") {
			t.Errorf("audit printed %q", out)
		}

		var page client.PeekPage
		h.okJSON(&page, nil, "peek", "trail", "--limit", "1")
		if len(page.Entries) != 1 || page.Next == "" {
			t.Fatalf("first peek page %+v, want 1 entry and a cursor", page)
		}
		var next client.PeekPage
		h.okJSON(&next, nil, "peek", "trail", "--limit", "5", "--cursor", page.Next)
		if len(next.Entries) != 1 || next.Next != "" {
			t.Errorf("second peek page %+v, want the last entry", next)
		}
		out = h.ok(nil, "peek", "trail", "--limit", "1")
		if !strings.Contains(out, "STATE") || !strings.Contains(out, "--cursor "+page.Next) {
			t.Errorf("peek printed %q, want a table and the next cursor", out)
		}
		h.fails("invalid state", "peek", "trail", "--state", "lost")
	})

	t.Run("redrive", func(t *testing.T) {
		h.t = t
		h.ok(nil, "queue", "create", "work-dlq")
		h.ok(nil, "queue", "create", "work", "--retry-count", "0", "--dead-letter-queue", "work-dlq")
		h.ok(nil, "send", "work", "poison")
		m := h.receive("work", "1")[0]
		out := h.ok(nil, "nack", "work", m.QueueMessageID)
		if !strings.Contains(out, "moved to the dead-letter queue") {
			t.Errorf("nack printed %q", out)
		}
		waitForCLI(t, "the message to reach the dead-letter queue", func() bool { return h.stats("work-dlq").Available == 1 })

		var res client.RedriveResult
		h.okJSON(&res, nil, "redrive", "work-dlq", "--max", "10")
		if res.Moved != 1 {
			t.Errorf("redrive %+v, want 1 moved", res)
		}
		waitForCLI(t, "the message to return to its queue", func() bool { return h.stats("work").Available == 1 })
		if out := h.ok(nil, "redrive", "work-dlq"); !strings.Contains(out, "Moved 0 messages") {
			t.Errorf("empty redrive printed %q", out)
		}
	})

	t.Run("failures", func(t *testing.T) {
		h.t = t
		h.fails(`qakka: queue "nope" not found`, "stats", "nope")
		h.fails(`queue "nope" not found`, "send", "nope", "x")
		h.fails(`invalid argument "abc" for "-n, --count" flag`, "receive", "inbox", "--count", "abc")
		h.fails("invalid --count 0", "receive", "inbox", "--count", "0")
		h.fails("use whole seconds", "receive", "inbox", "--visibility", "1500ms")
		h.fails(`invalid --output "yaml"`, "queue", "list", "--output", "yaml")
		h.fails("missing QUEUE", "stats")
		h.fails("missing ID", "ack", "inbox")
		h.fails("unknown flag: --bogus", "send", "inbox", "x", "--bogus")
		h.fails("invalid queue name", "queue", "create", "bad name!")

		down := "http://" + closedPort(t)
		res := h.fails("cannot reach the server at "+down, "queue", "list", "--server", down)
		if !strings.Contains(res.stderr, "connection refused") {
			t.Errorf("server down: stderr %q, want the cause", res.stderr)
		}
		h.fails("the scheme is missing", "queue", "list", "--server", "127.0.0.1:8080")

		tlsServer := httptest.NewUnstartedServer(http.NotFoundHandler())
		// The server logs the failed handshake, which is the expected outcome.
		tlsServer.Config.ErrorLog = log.New(io.Discard, "", 0)
		tlsServer.StartTLS()
		defer tlsServer.Close()
		plain := "http://" + strings.TrimPrefix(tlsServer.URL, "https://")
		h.fails("bad request: Client sent an HTTP request to an HTTPS server. (use an https:// URL in --server or QAKKA_SERVER)", "queue", "list", "--server", plain)

		// The flag beats the environment.
		envDown := &cliHarness{t: t, bin: bin, env: []string{"QAKKA_SERVER=" + down}}
		envDown.fails("cannot reach the server", "queue", "list")
		envDown.ok(nil, "queue", "list", "--server", h.url)
	})

	t.Run("authentication", func(t *testing.T) {
		h.t = t
		url := startAPIServer(t, httpapi.Auth{Username: "app", Password: "s3cret"})
		anon := &cliHarness{t: t, bin: bin, env: []string{"QAKKA_SERVER=" + url}}
		anon.fails("check --username and --password", "queue", "list")
		anon.fails("check --username and --password", "queue", "list", "--username", "app", "--password", "wrong")
		anon.ok(nil, "queue", "create", "private", "--username", "app", "--password", "s3cret")

		withEnv := &cliHarness{t: t, bin: bin, env: []string{"QAKKA_SERVER=" + url, "QAKKA_USERNAME=app", "QAKKA_PASSWORD=s3cret"}}
		if out := withEnv.ok(nil, "queue", "list"); out != "private\n" {
			t.Errorf("list with credentials from the environment printed %q", out)
		}
	})

	t.Run("help has examples", func(t *testing.T) {
		h.t = t
		for _, args := range [][]string{
			{"queue", "create"}, {"queue", "list"}, {"queue", "show"}, {"queue", "update"}, {"queue", "delete"},
			{"send"}, {"receive"}, {"ack"}, {"nack"}, {"extend"}, {"purge"}, {"stats"}, {"audit"}, {"peek"}, {"redrive"},
		} {
			out := h.ok(nil, append(args, "--help")...)
			if !strings.Contains(out, "Examples:") || !strings.Contains(out, "--server") {
				t.Errorf("qakka %s --help lacks examples or the --server flag:\n%s", strings.Join(args, " "), out)
			}
		}
	})
}
