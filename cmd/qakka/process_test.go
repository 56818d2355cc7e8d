package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to log "started". A
// restart after a crash replays the write-ahead log first.
const startTimeout = 2 * time.Minute

// buildQakka builds this command into a temporary directory and returns the
// binary's path.
func buildQakka(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "qakka")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serverProcess is a `qakka serve` child process that logs JSON to its
// standard error.
type serverProcess struct {
	t   *testing.T
	cmd *exec.Cmd
	// addr is the host:port from the "started" log record.
	addr string

	logMu sync.Mutex
	logs  bytes.Buffer

	// exited is closed when the process has ended; exitErr is then set.
	exited  chan struct{}
	exitErr error
}

// startServer runs `bin serve` with args and env added to an environment
// cleared of QAKKA_ variables, and waits for its "started" record. It fails
// the test if the process ends first.
func startServer(t *testing.T, bin string, args []string, env []string) *serverProcess {
	t.Helper()
	p, err := launchServer(t, bin, args, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.waitStarted(); err != nil {
		p.kill()
		t.Fatalf("%v\nserver log:\n%s", err, p.log())
	}
	return p
}

// launchServer starts the process without waiting for it to serve.
func launchServer(t *testing.T, bin string, args []string, env []string) (*serverProcess, error) {
	t.Helper()
	// The SQS API gets a free port too, so that servers of parallel tests
	// do not compete for its default one.
	cmd := exec.Command(bin, append([]string{"serve", "--log-format=json", "--sqs-listen=127.0.0.1:0"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}

	p := &serverProcess{t: t, cmd: cmd, exited: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.logMu.Lock()
			p.logs.Write(sc.Bytes())
			p.logs.WriteByte('\n')
			p.logMu.Unlock()
		}
	}()
	go func() {
		// Wait must follow the last read of the pipe.
		<-copied
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p, nil
}

// cleanEnv returns the test's environment without QAKKA_ variables, so
// that the caller's settings do not leak into a server under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QAKKA_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitStarted polls the log for the "started" record and sets addr.
func (p *serverProcess) waitStarted() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if rec, ok := p.findRecord("started"); ok {
			addr, _ := rec["address"].(string)
			if addr == "" {
				return fmt.Errorf("started record has no address: %v", rec)
			}
			p.addr = addr
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("server exited before it started: %v", p.exitErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("server did not log started within %s", startTimeout)
}

// records returns the JSON log records written so far.
func (p *serverProcess) records() []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(p.log(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			recs = append(recs, rec)
		}
	}
	return recs
}

// findRecord returns the first log record whose msg is msg.
func (p *serverProcess) findRecord(msg string) (map[string]any, bool) {
	for _, rec := range p.records() {
		if rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

func (p *serverProcess) log() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.logs.String()
}

func (p *serverProcess) url(path string) string {
	return "http://" + p.addr + path
}

// wait waits up to timeout for the process to end and returns its exit
// code.
func (p *serverProcess) wait(timeout time.Duration) (int, error) {
	select {
	case <-p.exited:
	case <-time.After(timeout):
		return -1, fmt.Errorf("server still running after %s", timeout)
	}
	var exitErr *exec.ExitError
	if errors.As(p.exitErr, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if p.exitErr != nil {
		return -1, p.exitErr
	}
	return 0, nil
}

// signal sends sig to the process.
func (p *serverProcess) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("send %v: %v", sig, err)
	}
}

// kill ends the process with SIGKILL, if it still runs, and waits for it.
func (p *serverProcess) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}
