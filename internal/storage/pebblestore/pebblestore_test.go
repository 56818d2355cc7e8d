package pebblestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/storagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openTemp opens a store in a new temporary directory and closes it when the
// test ends.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return openTemp(t) })
}

// sendBatch returns the batch of a send: one entry, its payload, the queue's
// metadata and an audit event.
func sendBatch(queue string, seq uint64, payloadSize int) *storage.Batch {
	id := uuid.New()
	now := time.Now()
	return &storage.Batch{
		PutEntries: []storage.Entry{{
			Queue: queue, State: storage.Available, Shard: storage.ShardOf(seq, 100), Seq: seq,
			ID: uuid.New(), MessageID: id, CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Hour),
			Size: int64(payloadSize),
		}},
		PutPayloads: []storage.Payload{{Queue: queue, MessageID: id, Data: make([]byte, payloadSize)}},
		Metas:       map[string]storage.Meta{queue: {ShardSize: 100, NextSeq: seq + 1, Available: int64(seq + 1)}},
		Audit: []storage.AuditEvent{{MessageID: id, Time: now, Action: "sent", Queue: queue,
			ExpiresAt: now.Add(time.Hour)}},
	}
}

// checkSent fails unless queue holds the entries, payloads and audit events
// of sendBatch for every seq below n.
func checkSent(t *testing.T, s *Store, queue string, n uint64) {
	t.Helper()
	ctx := t.Context()
	m, err := s.Meta(ctx, queue)
	if err != nil {
		t.Fatalf("Meta(%q): %v", queue, err)
	}
	if m.NextSeq < n {
		t.Errorf("Meta(%q).NextSeq = %d, want at least %d", queue, m.NextSeq, n)
	}

	var seq uint64
	for shard := uint64(0); seq < n; shard++ {
		entries, err := s.ScanShard(ctx, queue, storage.ShardRef{State: storage.Available, Shard: shard}, 0, 1000)
		if err != nil {
			t.Fatalf("ScanShard(%q, %d): %v", queue, shard, err)
		}
		if len(entries) == 0 {
			t.Fatalf("queue %q: shard %d is empty, want entries from Seq %d up to %d", queue, shard, seq, n)
		}
		for _, e := range entries {
			if e.Seq != seq {
				t.Fatalf("queue %q: found Seq %d, want %d", queue, e.Seq, seq)
			}
			if _, err := s.Payload(ctx, storage.PayloadKey{Queue: queue, MessageID: e.MessageID}); err != nil {
				t.Fatalf("queue %q Seq %d: %v", queue, seq, err)
			}
			evs, err := s.Audit(ctx, e.MessageID)
			if err != nil || len(evs) != 1 {
				t.Fatalf("queue %q Seq %d: audit = %d events, %v; want 1 event", queue, seq, len(evs), err)
			}
			seq++
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	cfg := storage.QueueConfig{Name: "orders", RetryCount: 3, Tags: map[string]string{"k": "v"}}
	if _, _, err := s.CreateQueue(t.Context(), cfg); err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	const n = 250
	for seq := range uint64(n) {
		if err := s.Commit(t.Context(), sendBatch("orders", seq, 100)); err != nil {
			t.Fatalf("Commit %d: %v", seq, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.Queue(t.Context(), "orders")
	if err != nil {
		t.Fatalf("Queue after reopen: %v", err)
	}
	if got.RetryCount != 3 || got.Tags["k"] != "v" {
		t.Errorf("Queue after reopen = %+v, want %+v", got, cfg)
	}
	checkSent(t, s, "orders", n)
	if v := s.db.FormatMajorVersion(); v != formatVersion {
		t.Errorf("format major version after reopen = %v, want %v", v, formatVersion)
	}
}

// TestCrashKeepsCommitted runs the store on an in-memory file system that
// records what was fsynced, takes a copy of the synced state while writers
// are still committing, and opens a second store on that copy.
func TestCrashKeepsCommitted(t *testing.T) {
	for _, unsyncedPercent := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("unsynced%d", unsyncedPercent), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s, err := open("db", Options{CacheSize: 8 << 20, MemTableSize: 1 << 20}, fs)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { s.Close() })

			// Writers record how far their commits got; a commit counts
			// once Commit has returned.
			const writers, commits = 4, 300
			committed := make([]uint64, writers)
			var mu sync.Mutex
			var wg sync.WaitGroup
			crashAt := make(chan struct{})
			for w := range writers {
				wg.Go(func() {
					queue := fmt.Sprintf("q%d", w)
					for seq := range uint64(commits) {
						if err := s.Commit(context.Background(), sendBatch(queue, seq, 512)); err != nil {
							t.Errorf("writer %d commit %d: %v", w, seq, err)
							return
						}
						mu.Lock()
						committed[w] = seq + 1
						mu.Unlock()
						if w == 0 && seq == commits/2 {
							close(crashAt)
						}
					}
				})
			}

			// Copy the file system halfway through, while the other writers
			// are still running, as a power cut would find it.
			<-crashAt
			mu.Lock()
			before := append([]uint64(nil), committed...)
			mu.Unlock()
			crashed := fs.CrashClone(vfs.CrashCloneCfg{
				UnsyncedDataPercent: unsyncedPercent,
				RNG:                 rand.New(rand.NewPCG(uint64(unsyncedPercent), 1)),
			})
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			s2, err := open("db", Options{CacheSize: 8 << 20}, crashed)
			if err != nil {
				t.Fatalf("open after crash: %v", err)
			}
			defer s2.Close()
			for w, n := range before {
				checkSent(t, s2, fmt.Sprintf("q%d", w), n)
			}
		})
	}
}

// TestCrashCloneDropsUnsynced shows that the crash copy above loses writes
// that were not synced, so TestCrashKeepsCommitted would notice a Commit that
// returned before its fsync.
func TestCrashCloneDropsUnsynced(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := open("db", Options{}, fs)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if err := s.db.Set([]byte("unsynced"), []byte("v"), pebble.NoSync); err != nil {
		t.Fatalf("Set: %v", err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})

	s2, err := open("db", Options{}, crashed)
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	defer s2.Close()
	if _, closer, err := s2.db.Get([]byte("unsynced")); err == nil {
		closer.Close()
		t.Error("an unsynced write survived the simulated crash")
	} else if !errors.Is(err, pebble.ErrNotFound) {
		t.Errorf("Get: %v", err)
	}
}

// killEnv names the directory of the child process of TestKillKeepsCommitted.
const killEnv = "PEBBLESTORE_KILL_TEST_DIR"

// TestKillKeepsCommitted starts a child process that commits batches and
// reports each one after Commit returns, kills it with SIGKILL while it is
// committing, and checks that every reported batch survives.
func TestKillKeepsCommitted(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		t.Skip("running as the child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}

	// Read reports until enough batches are committed, then kill the child
	// without letting it close the store.
	const killAfter = 200
	var reported uint64
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		seq, ok := strings.CutPrefix(sc.Text(), "committed ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			t.Fatalf("child report %q: %v", sc.Text(), err)
		}
		reported = n + 1
		if reported >= killAfter {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	_ = cmd.Wait()
	if reported < killAfter {
		t.Fatalf("child reported %d commits before it stopped, want %d", reported, killAfter)
	}

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer s.Close()
	checkSent(t, s, "killed", reported)
}

// TestKillChild is the child process of TestKillKeepsCommitted. It commits
// until it is killed, or stops after a bounded number of commits.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestKillKeepsCommitted")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	deadline := time.Now().Add(time.Minute)
	for seq := uint64(0); seq < 100_000 && time.Now().Before(deadline); seq++ {
		if err := s.Commit(context.Background(), sendBatch("killed", seq, 256)); err != nil {
			t.Fatalf("Commit %d: %v", seq, err)
		}
		fmt.Printf("committed %d\n", seq)
	}
}

func TestClosedStoreReturnsErrClosed(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ctx := t.Context()
	_, errExpire := s.ExpireAudit(ctx, time.Now())
	calls := map[string]error{
		"CreateQueue": func() error { _, _, err := s.CreateQueue(ctx, storage.QueueConfig{Name: "q"}); return err }(),
		"UpdateQueue": s.UpdateQueue(ctx, storage.QueueConfig{Name: "q"}),
		"Queue":       func() error { _, err := s.Queue(ctx, "q"); return err }(),
		"Queues":      func() error { _, err := s.Queues(ctx); return err }(),
		"DeleteQueue": s.DeleteQueue(ctx, "q"),
		"Commit":      s.Commit(ctx, sendBatch("q", 0, 1)),
		"Meta":        func() error { _, err := s.Meta(ctx, "q"); return err }(),
		"ScanShard": func() error {
			_, err := s.ScanShard(ctx, "q", storage.ShardRef{State: storage.Available}, 0, 10)
			return err
		}(),
		"Payload":     func() error { _, err := s.Payload(ctx, storage.PayloadKey{Queue: "q"}); return err }(),
		"Audit":       func() error { _, err := s.Audit(ctx, uuid.New()); return err }(),
		"ExpireAudit": errExpire,
		"Shards":      func() error { _, err := s.Shards(ctx, "q", storage.Incoming); return err }(),
		"AcquireLease": func() error {
			_, err := s.AcquireLease(ctx, "q", "node-a", time.Now(), time.Second, 0)
			return err
		}(),
		"RenewLease": func() error {
			_, err := s.RenewLease(ctx, storage.Lease{Queue: "q", Owner: "node-a", Epoch: 1}, time.Now(), time.Second)
			return err
		}(),
		"ReleaseLease": s.ReleaseLease(ctx, storage.Lease{Queue: "q", Owner: "node-a", Epoch: 1}),
		"Lease":        func() error { _, err := s.Lease(ctx, "q"); return err }(),
	}
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: error = %v, want ErrClosed", name, err)
		}
	}
}

func TestInvalidQueueName(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	for _, name := range []string{"", "a\x00b"} {
		if _, _, err := s.CreateQueue(ctx, storage.QueueConfig{Name: name}); err == nil {
			t.Errorf("CreateQueue(%q) succeeded, want an error", name)
		}
		if err := s.Commit(ctx, sendBatch(name, 0, 1)); err == nil {
			t.Errorf("Commit to queue %q succeeded, want an error", name)
		}
		if _, err := s.ScanShard(ctx, name, storage.ShardRef{State: storage.Available}, 0, 1); err == nil {
			t.Errorf("ScanShard(%q) succeeded, want an error", name)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Commit(ctx, sendBatch("q", 0, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a cancelled context: error = %v, want context.Canceled", err)
	}
	if _, err := s.ExpireAudit(ctx, time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("ExpireAudit with a cancelled context: error = %v, want context.Canceled", err)
	}
}

func TestExpireAuditBoundary(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	now := time.Date(2040, 1, 2, 3, 4, 5, 6, time.UTC)
	id := uuid.New()
	var events []storage.AuditEvent
	for i, exp := range []time.Time{
		time.Time{}, // The zero time is before every now.
		now.Add(-time.Nanosecond),
		now,
		now.Add(time.Nanosecond),
	} {
		events = append(events, storage.AuditEvent{MessageID: id, Time: now, Seq: uint32(i), Action: "a", ExpiresAt: exp})
	}
	if err := s.Commit(ctx, &storage.Batch{Audit: events}); err != nil {
		t.Fatalf("Commit: %v", err)
	}

	n, err := s.ExpireAudit(ctx, now)
	if err != nil {
		t.Fatalf("ExpireAudit: %v", err)
	}
	if n != 2 {
		t.Errorf("ExpireAudit removed %d events, want 2", n)
	}
	got, err := s.Audit(ctx, id)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	if len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 {
		t.Errorf("Audit after expiry = %+v, want the events with Seq 2 and 3", got)
	}
}

func TestExpireAuditManyChunks(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	now := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	const total = 2*expireChunk + 17
	b := &storage.Batch{}
	for i := range total {
		b.Audit = append(b.Audit, storage.AuditEvent{
			MessageID: uuid.New(), Time: now, Action: "sent",
			ExpiresAt: now.Add(-time.Duration(i+1) * time.Second),
		})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit: %v", err)
	}

	n, err := s.ExpireAudit(ctx, now)
	if err != nil {
		t.Fatalf("ExpireAudit: %v", err)
	}
	if n != total {
		t.Errorf("ExpireAudit removed %d events, want %d", n, total)
	}
	for _, ev := range b.Audit[:3] {
		if got, err := s.Audit(ctx, ev.MessageID); err != nil || len(got) != 0 {
			t.Errorf("Audit(%s) after expiry = %d events, %v; want none", ev.MessageID, len(got), err)
		}
	}
	if n, err := s.ExpireAudit(ctx, now); err != nil || n != 0 {
		t.Errorf("second ExpireAudit = %d, %v; want 0, nil", n, err)
	}
}

func TestShardsAtKeyLimits(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	var entries []storage.Entry
	for _, shard := range []uint64{0, 1 << 63, math.MaxUint64} {
		for _, seq := range []uint64{0, math.MaxUint64} {
			entries = append(entries, storage.Entry{Queue: "q", State: storage.Incoming, Shard: shard, Seq: seq})
		}
	}
	if err := s.Commit(ctx, &storage.Batch{PutEntries: entries}); err != nil {
		t.Fatalf("Commit: %v", err)
	}

	got, err := s.Shards(ctx, "q", storage.Incoming)
	if err != nil {
		t.Fatalf("Shards: %v", err)
	}
	if want := []uint64{0, 1 << 63, math.MaxUint64}; !slices.Equal(got, want) {
		t.Errorf("Shards = %v, want %v", got, want)
	}
}

// TestLeaseSurvivesCrash checks that lease changes are synced: a lease taken
// before a simulated power cut is still there after it, so the next holder
// gets a higher epoch.
func TestLeaseSurvivesCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := open("db", Options{}, fs)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	first, err := s.AcquireLease(t.Context(), "q", "node-a", now, time.Minute, time.Second)
	if err != nil {
		t.Fatalf("AcquireLease: %v", err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})

	s2, err := open("db", Options{}, crashed)
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	defer s2.Close()
	got, err := s2.Lease(t.Context(), "q")
	if err != nil {
		t.Fatalf("Lease after crash: %v", err)
	}
	if got != first {
		t.Errorf("Lease after crash = %+v, want %+v", got, first)
	}
	next, err := s2.AcquireLease(t.Context(), "q", "node-b", first.ExpiresAt.Add(2*time.Second), time.Minute, time.Second)
	if err != nil {
		t.Fatalf("AcquireLease after crash: %v", err)
	}
	if next.Epoch != 2 {
		t.Errorf("epoch after crash = %d, want 2", next.Epoch)
	}
}
