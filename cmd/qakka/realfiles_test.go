package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// Parameters of TestRealFiles.
const (
	realFilesQueue       = "gofiles"
	realFilesMaxSize     = 1 << 20 // the server's default maximum message size
	realFilesSenders     = 8
	realFilesConsumers   = 8
	realFilesReceiveMax  = 10
	realFilesVisibility  = 20 * time.Second
	realFilesTestTimeout = 9 * time.Minute
)

// goFile is one file of the Go distribution to send as a message.
type goFile struct {
	path        string
	size        int64
	sum         [sha256.Size]byte
	contentType string
}

// TestRealFiles sends every regular file of at most 1 MiB under the Go
// distribution's src and doc directories through a real server. Concurrent
// workers receive the messages, check each payload's SHA-256 and ack it.
// After about half the acks the test SIGKILLs the server and restarts it on
// the same data directory and port. Every acknowledged send must arrive,
// every file must be received and acked, the queue must end empty, and
// redeliveries must not exceed what was inflight at the crash.
//
// It runs on Pebble, and on Cassandra as well when QAKKA_TEST_CASSANDRA
// names a node.
func TestRealFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("sends the whole Go source tree; skipped with -short")
	}
	bin := buildQakka(t)
	files := collectGoFiles(t)

	t.Run("pebble", func(t *testing.T) {
		testRealFiles(t, bin, files, []string{"--data-dir=" + t.TempDir()})
	})
	t.Run("cassandra", func(t *testing.T) {
		host := os.Getenv("QAKKA_TEST_CASSANDRA")
		if host == "" {
			t.Skip("QAKKA_TEST_CASSANDRA is not set; start a node with scripts/cassandra-dev.sh start and set QAKKA_TEST_CASSANDRA=127.0.0.1:9042")
		}
		// A keyspace of its own; the dev node starts empty each time, so it
		// is not dropped here.
		keyspace := fmt.Sprintf("qakka_realfiles_%d", time.Now().UnixNano())
		testRealFiles(t, bin, files, []string{
			"--storage=cassandra", "--cassandra-hosts=" + host, "--cassandra-keyspace=" + keyspace,
		})
	})
}

func testRealFiles(t *testing.T, bin string, files []goFile, storageArgs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), realFilesTestTimeout)
	defer cancel()

	srv := startServer(t, bin, append([]string{"--listen=127.0.0.1:0"}, storageArgs...), nil)
	run := newRealFilesRun(t, files, srv.addr)
	run.createQueue(ctx)

	start := time.Now()
	sendersDone := run.startSenders(ctx)
	defer func() {
		cancel()
		<-sendersDone
	}()
	consumeCtx, stopConsumers := context.WithCancel(ctx)
	consumersDone := run.startConsumers(consumeCtx)
	defer func() {
		stopConsumers()
		<-consumersDone
	}()

	// Crash the server once about half the files are acked, then restart it
	// on the same directory and port.
	if !run.waitFor(ctx, func() bool { return run.ackCount() >= len(files)/2 }) {
		t.Fatalf("timed out before half the acks: %s", run.progress())
	}
	crash := run.crashSnapshot()
	srv.signal(syscall.SIGKILL)
	if _, err := srv.wait(time.Minute); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	srv = startServer(t, bin, append([]string{"--listen=" + srv.addr}, storageArgs...), nil)
	restartTime := time.Since(killedAt)
	t.Logf("killed the server after %d of %d acks, with at most %d messages inflight (%d held by workers, %d receives in flight); restarted in %s",
		crash.acks, len(files), crash.inflightBound, crash.held, crash.receiving, restartTime.Round(time.Millisecond))

	select {
	case <-sendersDone:
	case <-ctx.Done():
		t.Fatalf("senders did not finish: %s", run.progress())
	}
	sendElapsed := run.lastSendAck().Sub(start)

	done := func() bool { return run.allConsumed() && run.queueEmpty(ctx) }
	if !run.waitFor(ctx, done) {
		t.Fatalf("queue not drained in time: %s", run.progress())
	}
	consumeElapsed := run.lastAck().Sub(start)
	stopConsumers()
	<-consumersDone

	run.check(crash)
	run.checkFinalReceive(ctx)
	totals := run.checkTotals(ctx, crash)

	t.Logf("sent %d files (%.1f MB) with %d senders: %.0f messages/s over %s (%d sends retried after connection errors)",
		len(files), float64(run.totalBytes())/1e6, realFilesSenders,
		float64(len(files))/sendElapsed.Seconds(), sendElapsed.Round(time.Millisecond), run.sendRetries())
	t.Logf("consumed with %d workers: %.0f messages/s before the crash (%d acks in %s); %.0f messages/s overall (%d acks in %s, including the restart and any wait for the %s visibility timeout)",
		realFilesConsumers, float64(crash.acks)/crash.at.Sub(start).Seconds(), crash.acks, crash.at.Sub(start).Round(time.Millisecond),
		float64(run.ackCount())/consumeElapsed.Seconds(), run.ackCount(), consumeElapsed.Round(time.Millisecond), realFilesVisibility)
	t.Logf("server totals: %d sent, %d received, %d acked, %d timed out; workers read %d deliveries of %d distinct messages (%d redelivered) and had %d acks rejected after the crash",
		totals.Sent, totals.Received, totals.Acked, totals.TimedOut,
		run.deliveryCount(), run.distinctDelivered(), run.redeliveries(), run.rejectedAcks())
}

// collectGoFiles returns the regular files of at most realFilesMaxSize
// under $(go env GOROOT)/src and /doc, with their SHA-256 and the content
// type to send them with.
func collectGoFiles(t *testing.T) []goFile {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))

	var files []goFile
	for _, dir := range []string{"src", "doc"} {
		root := filepath.Join(goroot, dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Size() > realFilesMaxSize {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files = append(files, goFile{
				path:        path,
				size:        int64(len(data)),
				sum:         sha256.Sum256(data),
				contentType: contentTypeOf(path, data),
			})
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	if len(files) < 1000 {
		t.Fatalf("found only %d files under %s; is GOROOT complete?", len(files), goroot)
	}
	return files
}

// contentTypeOf returns application/json for a .json file that holds one
// valid JSON value, the type of the file's extension for other files, and
// application/octet-stream when the extension has none or claims JSON for
// content that is not.
func contentTypeOf(path string, data []byte) string {
	validJSON := utf8.Valid(data) && json.Valid(data)
	ext := filepath.Ext(path)
	if strings.EqualFold(ext, ".json") {
		if validJSON {
			return "application/json"
		}
		return "application/octet-stream"
	}
	ct := mime.TypeByExtension(ext)
	if ct == "" || (isJSONMediaType(ct) && !validJSON) {
		return "application/octet-stream"
	}
	return ct
}

func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	_, sub, _ := strings.Cut(mt, "/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// wireMessage is the part of a received message that the test reads.
type wireMessage struct {
	QueueMessageID string `json:"queueMessageId"`
	MessageID      string `json:"messageId"`
	ContentType    string `json:"contentType"`
	ReceiveCount   int    `json:"receiveCount"`
	Data           string `json:"data"`
	Href           string `json:"href"`
}

// delivery records one received message whose payload was read.
type delivery struct {
	messageID   string
	sum         [sha256.Size]byte
	contentType string
}

// crashState is what the test knew when it killed the server.
type crashState struct {
	at   time.Time
	acks int
	// held counts messages that workers had received but not yet acked
	// with a response; receiving counts receives without a response.
	held, receiving int
	// inflightBound is the most messages the server can have held
	// inflight: held ones plus a full receive for each one in flight.
	inflightBound int
}

// realFilesRun holds the state that senders and consumers share.
type realFilesRun struct {
	t      *testing.T
	client *http.Client
	base   string
	files  []goFile
	bySum  map[[sha256.Size]byte][]int

	mu sync.Mutex
	// sentID maps the messageId of each send that got a 200 to its file.
	sentID map[string]int
	// fileSent marks files with a send that got a 200.
	fileSent   []bool
	deliveries []delivery
	acks       int
	rejected   int
	retries    int
	held       int
	receiving  int
	lastSend   time.Time
	lastAcked  time.Time
	errs       []string
}

func newRealFilesRun(t *testing.T, files []goFile, addr string) *realFilesRun {
	r := &realFilesRun{
		t: t,
		client: &http.Client{
			Timeout:   time.Minute,
			Transport: &http.Transport{MaxIdleConnsPerHost: realFilesSenders + 2*realFilesConsumers},
		},
		base:     "http://" + addr,
		files:    files,
		bySum:    map[[sha256.Size]byte][]int{},
		sentID:   map[string]int{},
		fileSent: make([]bool, len(files)),
	}
	for i, f := range files {
		r.bySum[f.sum] = append(r.bySum[f.sum], i)
	}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

func (r *realFilesRun) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 50 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

func (r *realFilesRun) createQueue(ctx context.Context) {
	body := fmt.Sprintf(`{"name": %q, "handlingTimeoutSec": %d}`, realFilesQueue, int(realFilesVisibility/time.Second))
	status, resp, err := r.do(ctx, http.MethodPost, "/api/queues", "application/json", []byte(body))
	if err != nil || status != http.StatusCreated {
		r.t.Fatalf("create queue: status %d, error %v, body %s", status, err, resp)
	}
}

// do sends one request and returns the status and body.
func (r *realFilesRun) do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, data, nil
}

// startSenders sends each file until a send of it gets a 200, retrying
// requests that failed to reach the server. The returned channel is closed
// when every sender is done.
func (r *realFilesRun) startSenders(ctx context.Context) <-chan struct{} {
	work := make(chan int)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(work)
		for i := range r.files {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	for range realFilesSenders {
		wg.Go(func() {
			for i := range work {
				r.sendFile(ctx, i)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

func (r *realFilesRun) sendFile(ctx context.Context, i int) {
	f := r.files[i]
	data, err := os.ReadFile(f.path)
	if err != nil {
		r.fail("read %s: %v", f.path, err)
		return
	}
	path := "/api/queues/" + realFilesQueue + "/messages"
	for backoff := newBackoff(); ctx.Err() == nil; backoff.wait(ctx) {
		status, body, err := r.do(ctx, http.MethodPost, path, f.contentType, data)
		if err != nil || status == http.StatusServiceUnavailable {
			// The server may have stored the message before it died: a
			// retry can make a second message with the same content.
			r.mu.Lock()
			r.retries++
			r.mu.Unlock()
			continue
		}
		if status != http.StatusOK {
			r.fail("send %s (%s): status %d: %s", f.path, f.contentType, status, body)
			return
		}
		var res struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal(body, &res); err != nil || res.MessageID == "" {
			r.fail("send %s: reply %s has no messageId (%v)", f.path, body, err)
			return
		}
		r.mu.Lock()
		r.sentID[res.MessageID] = i
		r.fileSent[i] = true
		r.lastSend = time.Now()
		r.mu.Unlock()
		return
	}
}

// startConsumers runs the workers until ctx ends. The returned channel is
// closed when every worker has returned.
func (r *realFilesRun) startConsumers(ctx context.Context) <-chan struct{} {
	var wg sync.WaitGroup
	for range realFilesConsumers {
		wg.Go(func() { r.consume(ctx) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

func (r *realFilesRun) consume(ctx context.Context) {
	path := fmt.Sprintf("/api/queues/%s/messages?count=%d&wait=500", realFilesQueue, realFilesReceiveMax)
	backoff := newBackoff()
	for ctx.Err() == nil {
		r.mu.Lock()
		r.receiving++
		r.mu.Unlock()

		status, body, err := r.do(ctx, http.MethodGet, path, "", nil)
		var res struct {
			QueueMessages []wireMessage `json:"queueMessages"`
		}
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(body, &res)
		}
		r.mu.Lock()
		r.receiving--
		if err == nil && status == http.StatusOK {
			r.held += len(res.QueueMessages)
		}
		r.mu.Unlock()

		switch {
		case err != nil || status == http.StatusServiceUnavailable:
			backoff.wait(ctx)
			continue
		case status != http.StatusOK:
			r.fail("receive: status %d: %s", status, body)
			backoff.wait(ctx)
			continue
		}
		backoff.reset()
		if len(res.QueueMessages) > realFilesReceiveMax {
			r.fail("receive of %d returned %d messages", realFilesReceiveMax, len(res.QueueMessages))
		}
		for _, m := range res.QueueMessages {
			r.process(ctx, m)
		}
	}
}

// process reads one message's payload, records the delivery and acks it.
func (r *realFilesRun) process(ctx context.Context, m wireMessage) {
	defer func() {
		r.mu.Lock()
		r.held--
		r.mu.Unlock()
	}()

	data, contentType, ok := r.payload(ctx, m)
	if !ok {
		return
	}
	r.mu.Lock()
	r.deliveries = append(r.deliveries, delivery{messageID: m.MessageID, sum: sha256.Sum256(data), contentType: contentType})
	r.mu.Unlock()

	path := "/api/queues/" + realFilesQueue + "/messages/" + url.PathEscape(m.QueueMessageID)
	for backoff := newBackoff(); ctx.Err() == nil; backoff.wait(ctx) {
		status, body, err := r.do(ctx, http.MethodDelete, path, "", nil)
		if err != nil || status == http.StatusServiceUnavailable {
			continue
		}
		switch status {
		case http.StatusOK:
			r.mu.Lock()
			r.acks++
			r.lastAcked = time.Now()
			r.mu.Unlock()
		case http.StatusBadRequest:
			// The ack before the crash may have been stored with its
			// response lost; check counts these against the crash.
			r.mu.Lock()
			r.rejected++
			r.mu.Unlock()
		default:
			r.fail("ack %s: status %d: %s", m.QueueMessageID, status, body)
		}
		return
	}
}

// payload returns a message's bytes: the inline data of a JSON message, or
// the body of its href. ok is false when the message is no longer inflight
// (it comes back later) or ctx ended.
func (r *realFilesRun) payload(ctx context.Context, m wireMessage) (data []byte, contentType string, ok bool) {
	if m.Href == "" {
		return []byte(m.Data), m.ContentType, true
	}
	for backoff := newBackoff(); ctx.Err() == nil; backoff.wait(ctx) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+m.Href, nil)
		if err != nil {
			r.fail("data request for %s: %v", m.Href, err)
			return nil, "", false
		}
		resp, err := r.client.Do(req)
		if err != nil {
			continue
		}
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil || resp.StatusCode == http.StatusServiceUnavailable:
			continue
		case resp.StatusCode == http.StatusNotFound:
			return nil, "", false
		case resp.StatusCode != http.StatusOK:
			r.fail("GET %s: status %d: %s", m.Href, resp.StatusCode, data)
			return nil, "", false
		}
		return data, resp.Header.Get("Content-Type"), true
	}
	return nil, "", false
}

// queueEmpty reports whether the queue's stats show no available, inflight
// or delayed message.
func (r *realFilesRun) queueEmpty(ctx context.Context) bool {
	status, body, err := r.do(ctx, http.MethodGet, "/api/queues/"+realFilesQueue+"/stats", "", nil)
	if err != nil || status != http.StatusOK {
		return false
	}
	var s struct {
		Available int64 `json:"available"`
		Inflight  int64 `json:"inflight"`
		Delayed   int64 `json:"delayed"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		r.fail("stats reply %s: %v", body, err)
		return false
	}
	return s.Available == 0 && s.Inflight == 0 && s.Delayed == 0
}

// allConsumed reports whether every file was sent and a delivery of each
// acknowledged send was read, with no message held by a worker.
func (r *realFilesRun) allConsumed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held > 0 {
		return false
	}
	for _, sent := range r.fileSent {
		if !sent {
			return false
		}
	}
	seen := make(map[string]bool, len(r.deliveries))
	for _, d := range r.deliveries {
		seen[d.messageID] = true
	}
	for id := range r.sentID {
		if !seen[id] {
			return false
		}
	}
	return true
}

// check verifies the recorded deliveries against the files and the crash.
func (r *realFilesRun) check(crash crashState) {
	t := r.t
	r.mu.Lock()
	defer r.mu.Unlock()

	for _, e := range r.errs {
		t.Error(e)
	}

	received := make([]bool, len(r.files))
	perMessage := map[string]int{}
	unknown := map[string]bool{}
	for _, d := range r.deliveries {
		perMessage[d.messageID]++
		if i, ok := r.sentID[d.messageID]; ok {
			f := r.files[i]
			if d.sum != f.sum {
				t.Errorf("message %s of %s: payload SHA-256 %x, want %x", d.messageID, f.path, d.sum, f.sum)
				continue
			}
			if d.contentType != f.contentType {
				t.Errorf("message %s of %s: content type %q, want %q", d.messageID, f.path, d.contentType, f.contentType)
			}
			received[i] = true
			continue
		}

		// A send whose response the crash lost, retried since.
		unknown[d.messageID] = true
		idx, ok := r.bySum[d.sum]
		if !ok {
			t.Errorf("message %s matches no acknowledged send and no file (SHA-256 %x)", d.messageID, d.sum)
			continue
		}
		for _, i := range idx {
			received[i] = true
		}
	}

	for i, f := range r.files {
		if !r.fileSent[i] {
			t.Errorf("file %s never got a 200 for a send", f.path)
		}
		if !received[i] {
			t.Errorf("file %s was never received", f.path)
		}
	}
	if len(unknown) > r.retries {
		t.Errorf("%d messages came from sends without a response, but only %d sends were retried", len(unknown), r.retries)
	}

	redelivered := len(r.deliveries) - len(perMessage)
	if redelivered > crash.inflightBound {
		t.Errorf("%d redeliveries, more than the %d messages that could be inflight at the crash", redelivered, crash.inflightBound)
	}
	if r.rejected > crash.inflightBound {
		t.Errorf("%d acks were rejected, more than the %d messages that could be inflight at the crash", r.rejected, crash.inflightBound)
	}
}

// queueTotals are the event counters of a queue's stats.
type queueTotals struct {
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
	Acked    int64 `json:"acked"`
	TimedOut int64 `json:"timedOut"`
}

// checkTotals compares the server's event counters with what the workers
// saw. The server also counts deliveries whose response the crash lost, so
// its redeliveries are checked against the crash as well.
func (r *realFilesRun) checkTotals(ctx context.Context, crash crashState) queueTotals {
	t := r.t
	status, body, err := r.do(ctx, http.MethodGet, "/api/queues/"+realFilesQueue+"/stats", "", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("stats: status %d, error %v, body %s", status, err, body)
	}
	var stats struct {
		Totals queueTotals `json:"totals"`
	}
	if err := json.Unmarshal(body, &stats); err != nil {
		t.Fatalf("stats reply %s: %v", body, err)
	}
	tot := stats.Totals

	if distinct := int64(r.distinctDelivered()); tot.Sent != distinct {
		t.Errorf("server counted %d sends, but workers read %d distinct messages", tot.Sent, distinct)
	}
	if tot.Acked != tot.Sent {
		t.Errorf("server counted %d acks of %d sends", tot.Acked, tot.Sent)
	}
	if redelivered := tot.Received - tot.Sent; redelivered > int64(crash.inflightBound) {
		t.Errorf("server redelivered %d times, more than the %d messages that could be inflight at the crash", redelivered, crash.inflightBound)
	}
	if tot.TimedOut > int64(crash.inflightBound) {
		t.Errorf("%d visibility timeouts, more than the %d messages that could be inflight at the crash", tot.TimedOut, crash.inflightBound)
	}
	return tot
}

// checkFinalReceive checks that a receive without waiting finds nothing.
func (r *realFilesRun) checkFinalReceive(ctx context.Context) {
	status, body, err := r.do(ctx, http.MethodGet, "/api/queues/"+realFilesQueue+"/messages?count=10&wait=0", "", nil)
	if err != nil || status != http.StatusOK {
		r.t.Fatalf("final receive: status %d, error %v, body %s", status, err, body)
	}
	var res struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		r.t.Fatalf("final receive reply %s: %v", body, err)
	}
	if res.Count != 0 {
		r.t.Errorf("final receive returned %d messages, want 0: %s", res.Count, body)
	}
}

func (r *realFilesRun) crashSnapshot() crashState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return crashState{
		at:            time.Now(),
		acks:          r.acks,
		held:          r.held,
		receiving:     r.receiving,
		inflightBound: r.held + r.receiving*realFilesReceiveMax,
	}
}

// waitFor polls cond until it holds or ctx ends.
func (r *realFilesRun) waitFor(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

func (r *realFilesRun) progress() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent := 0
	for _, s := range r.fileSent {
		if s {
			sent++
		}
	}
	return fmt.Sprintf("%d of %d files sent, %d deliveries, %d acks, %d held, errors: %q",
		sent, len(r.files), len(r.deliveries), r.acks, r.held, r.errs)
}

func (r *realFilesRun) ackCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acks
}

func (r *realFilesRun) lastSendAck() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSend
}

func (r *realFilesRun) lastAck() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastAcked
}

func (r *realFilesRun) sendRetries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retries
}

func (r *realFilesRun) rejectedAcks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected
}

func (r *realFilesRun) deliveryCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deliveries)
}

func (r *realFilesRun) distinctDelivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range r.deliveries {
		seen[d.messageID] = true
	}
	return len(seen)
}

func (r *realFilesRun) redeliveries() int {
	return r.deliveryCount() - r.distinctDelivered()
}

func (r *realFilesRun) totalBytes() int64 {
	var n int64
	for _, f := range r.files {
		n += f.size
	}
	return n
}

// backoff is a retry delay that doubles from 20ms up to 500ms.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 20 * time.Millisecond} }

func (b *backoff) reset() { b.d = 20 * time.Millisecond }

// wait sleeps for the current delay, or until ctx ends, and doubles it.
func (b *backoff) wait(ctx context.Context) {
	timer := time.NewTimer(b.d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	b.d = min(2*b.d, 500*time.Millisecond)
}
