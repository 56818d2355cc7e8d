package region_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qakka/qakka/client"
)

// processTimeout bounds each wait of the multi-process test: a start, a
// restart that replays the write-ahead log, and the end of the transfers.
const processTimeout = 2 * time.Minute

// regionProcess is one region served by a `qakka serve` child process.
type regionProcess struct {
	t      *testing.T
	bin    string
	name   string
	addr   string
	config string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs bytes.Buffer
	// exited is closed when the current process has ended.
	exited chan struct{}
}

// TestProcessesKillSenderMidStream runs three regions as real processes,
// SIGKILLs the sending one in the middle of a stream of sends to ALL,
// restarts it on its data directory, and checks that every acknowledged
// send arrives in every region exactly once.
func TestProcessesKillSenderMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three servers")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "region-password")
	if err := os.WriteFile(passwordFile, []byte(regionPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	names := []string{"east", "west", "north"}
	addrs := map[string]string{}
	for _, name := range names {
		addrs[name] = freeAddress(t)
	}
	procs := map[string]*regionProcess{}
	for _, name := range names {
		var remotes strings.Builder
		for _, other := range names {
			if other != name {
				fmt.Fprintf(&remotes, "  %s:\n    endpoints: [http://%s]\n", other, addrs[other])
			}
		}
		config := filepath.Join(dir, name+".yaml")
		yaml := fmt.Sprintf(`region: %s
listen: %s
sqs-listen: 127.0.0.1:0
data-dir: %s
region-username: %s
region-password-file: %s
region-request-timeout: 2s
shutdown-timeout: 5s
region-remotes:
%s`, name, addrs[name], filepath.Join(dir, "data-"+name), regionUser, passwordFile, remotes.String())
		if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		procs[name] = &regionProcess{t: t, bin: bin, name: name, addr: addrs[name], config: config}
	}
	for _, name := range names {
		procs[name].start()
	}

	ctx := context.Background()
	east := restClient(t, addrs["east"])
	if _, _, err := east.CreateQueue(ctx, client.Queue{Name: "stream", Regions: "ALL"}); err != nil {
		t.Fatalf("create queue: %v", err)
	}

	// Stream 2,000 messages to ALL in batches of 20. Once half of them are
	// acknowledged, another goroutine SIGKILLs east while the next batch
	// is being sent. Sends after the kill fail.
	const total, batchSize = 2000, 20
	half, stop, killed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-half:
			procs["east"].kill()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-killed
	}()

	acked := map[string]bool{}
	halfway := false
	for i := 0; i < total; i += batchSize {
		if !halfway && len(acked) >= total/2 {
			close(half)
			halfway = true
		}
		entries := make([]client.BatchSendEntry, batchSize)
		for j := range entries {
			entries[j] = client.BatchSendEntry{Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+j))}
		}
		res, err := east.SendBatchToRegions(ctx, "stream", "ALL", entries)
		if err != nil {
			if !halfway {
				t.Fatalf("send batch %d before the kill: %v", i/batchSize, err)
			}
			continue
		}
		for _, r := range res.Results {
			if r.Status == 200 {
				acked[r.MessageID] = true
			}
		}
	}
	if !halfway {
		t.Fatalf("only %d of %d sends were acknowledged", len(acked), total)
	}
	<-killed
	if len(acked) >= total {
		t.Fatalf("all %d sends were acknowledged: the kill came after the stream", len(acked))
	}

	procs["east"].start()
	start := time.Now()
	waitForProcess(t, "east's outboxes to drain", func() bool {
		st, err := east.Status(ctx)
		if err != nil || st.Regions == nil {
			return false
		}
		for _, rs := range st.Regions.Remotes {
			if rs.Backlog != 0 {
				return false
			}
		}
		return true
	})
	t.Logf("%d acknowledged sends; outboxes drained %s after the restart", len(acked), time.Since(start).Round(time.Millisecond))

	for _, name := range names {
		got := receiveAll(t, restClient(t, addrs[name]), "stream")
		missing, repeated := 0, 0
		for id := range acked {
			if got[id] == 0 {
				missing++
			}
		}
		for id, n := range got {
			if n > 1 {
				repeated++
				t.Errorf("region %s: message %s arrived %d times", name, id, n)
			}
		}
		if missing > 0 {
			t.Errorf("region %s: %d of %d acknowledged sends are missing", name, missing, len(acked))
		}
		// Sends in flight at the kill may have arrived too, but never more
		// than one batch of them.
		if extra := len(got) - len(acked) + missing; extra > batchSize {
			t.Errorf("region %s: %d messages arrived that were never acknowledged, more than one batch", name, extra)
		}
		t.Logf("region %s: %d distinct messages, %d repeated, %d missing", name, len(got), repeated, missing)
	}
}

// buildBinary builds cmd/qakka into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "qakka")
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/qakka/qakka/cmd/qakka").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddress returns a loopback address with a port that was free a
// moment ago.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func restClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.New("http://"+addr,
		client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 1}),
		client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs the region's server and waits for its "started" log record.
func (p *regionProcess) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, "serve", "--config", p.config, "--log-format=json")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QAKKA_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start region %s: %v", p.name, err)
	}

	started := make(chan struct{})
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			var rec struct {
				Msg       string `json:"msg"`
				Component string `json:"component"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "started" && rec.Component == "server" {
				once.Do(func() { close(started) })
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	p.t.Cleanup(p.kill)

	select {
	case <-started:
	case <-exited:
		p.t.Fatalf("region %s exited before it started:\n%s", p.name, p.log())
	case <-time.After(processTimeout):
		p.kill()
		p.t.Fatalf("region %s did not start within %s:\n%s", p.name, processTimeout, p.log())
	}
}

// kill sends SIGKILL to the running process and waits for it to end.
func (p *regionProcess) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("kill region %s: %v", p.name, err)
	}
	<-exited
}

func (p *regionProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// receiveAll receives and acks every message of a queue and returns how
// often each messageId came.
func receiveAll(t *testing.T, c *client.Client, queueName string) map[string]int {
	t.Helper()
	ctx := context.Background()
	got := map[string]int{}
	for {
		msgs, err := c.Receive(ctx, queueName, client.ReceiveOptions{Count: 100, Wait: new(time.Duration)})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(msgs) == 0 {
			return got
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			got[m.MessageID]++
			ids[i] = m.QueueMessageID
		}
		if _, err := c.AckBatch(ctx, queueName, ids); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

// waitForProcess polls cond until it holds, for up to processTimeout.
func waitForProcess(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(processTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", processTimeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
