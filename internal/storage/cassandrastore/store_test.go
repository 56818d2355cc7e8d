package cassandrastore

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Hosts: []string{"127.0.0.1"}}, ""},
		{"host with port", Config{Hosts: []string{"db.example:9142"}}, ""},
		{"ipv6 host", Config{Hosts: []string{"::1"}}, ""},
		{"no hosts", Config{}, "at least one contact point"},
		{"empty host", Config{Hosts: []string{""}}, "empty contact point"},
		{"bad port", Config{Hosts: []string{"db:70000"}}, "invalid port"},
		{"upper-case keyspace", Config{Hosts: []string{"db"}, Keyspace: "Qakka"}, `keyspace "Qakka" is invalid`},
		{"same keyspaces", Config{Hosts: []string{"db"}, Keyspace: "a", RegionKeyspace: "a"}, "must differ"},
		{"bad consistency", Config{Hosts: []string{"db"}, Consistency: "MOST"}, `consistency "MOST" is invalid`},
		{"serial consistency for writes", Config{Hosts: []string{"db"}, Consistency: "SERIAL"}, "serial levels"},
		{"bad serial consistency", Config{Hosts: []string{"db"}, SerialConsistency: "QUORUM"}, "SERIAL or LOCAL_SERIAL"},
		{"unknown class", Config{Hosts: []string{"db"}, Replication: Replication{Class: "Everywhere"}}, `class "Everywhere" is invalid`},
		{"topology without factors", Config{Hosts: []string{"db"}, Replication: Replication{Class: NetworkTopologyStrategy}}, "at least one datacenter"},
		{"topology with factors", Config{Hosts: []string{"db"},
			RegionReplication: Replication{Class: NetworkTopologyStrategy, Factors: map[string]int{"eu": 3}}}, ""},
		{"negative timeout", Config{Hosts: []string{"db"}, Timeout: -time.Second}, "timeout -1s is negative"},
		{"password without user", Config{Hosts: []string{"db"}, Password: "x"}, "without a username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{Hosts: []string{"db"}, LocalDatacenter: "eu-west 1"}.WithDefaults()
	if cfg.Keyspace != "qakka" {
		t.Errorf("Keyspace = %q, want qakka", cfg.Keyspace)
	}
	if cfg.RegionKeyspace != "qakka_eu_west_1" {
		t.Errorf("RegionKeyspace = %q, want qakka_eu_west_1", cfg.RegionKeyspace)
	}
	if cfg.Consistency != "LOCAL_QUORUM" {
		t.Errorf("Consistency = %q, want LOCAL_QUORUM", cfg.Consistency)
	}
	if got := cfg.Replication.cql(); got != "{'class': 'SimpleStrategy', 'replication_factor': 1}" {
		t.Errorf("replication CQL = %s", got)
	}
	nts := Replication{Class: NetworkTopologyStrategy, Factors: map[string]int{"us": 3, "eu": 2}}
	if got := nts.cql(); got != "{'class': 'NetworkTopologyStrategy', 'eu': 2, 'us': 3}" {
		t.Errorf("replication CQL = %s", got)
	}
}

func TestTTL(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Store{cfg: Config{Now: func() time.Time { return now }}}
	tests := []struct {
		name      string
		expiresAt time.Time
		grace     time.Duration
		want      int
	}{
		{"zero means none", time.Time{}, time.Minute, 0},
		{"future", now.Add(time.Hour), 0, 3600},
		{"future with grace", now.Add(time.Hour), time.Minute, 3600 + 60},
		{"rounds up", now.Add(1500 * time.Millisecond), 0, 2},
		{"past keeps one second", now.Add(-time.Hour), 0, 1},
		{"past keeps the grace", now.Add(-time.Hour), time.Minute, 60},
		{"capped before 2038", now.Add(100 * 365 * 24 * time.Hour), 0, int(maxExpiration.Sub(now) / time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.ttl(tt.expiresAt, tt.grace); got != tt.want {
				t.Fatalf("ttl(%v, %v) = %d, want %d", tt.expiresAt, tt.grace, got, tt.want)
			}
		})
	}
}

func TestTimeEncoding(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 0),
		time.Date(2026, 12, 4, 20, 56, 31, 123456789, time.UTC),
	} {
		n, err := encodeTime(tm)
		if err != nil {
			t.Fatalf("encodeTime(%v): %v", tm, err)
		}
		if got := decodeTime(n); !got.Equal(tm) || got.IsZero() != tm.IsZero() {
			t.Errorf("decodeTime(encodeTime(%v)) = %v", tm, got)
		}
	}
	if _, err := encodeTime(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("encodeTime(year 3000) succeeded, want an out-of-range error")
	}
}

func TestOpenUnreachable(t *testing.T) {
	// Port 1 on loopback refuses connections.
	_, err := Open(context.Background(), Config{Hosts: []string{"127.0.0.1:1"}, ConnectTimeout: time.Second})
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	host := testHost(t)
	cfg := testConfig(t, host)
	s := openTestStoreConfig(t, cfg)
	ctx := context.Background()

	err := s.session.Query("UPDATE "+cfg.RegionKeyspace+".schema_version SET version = ? WHERE component = ?",
		schemaVersion+1, schemaComponent).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "newer than version") {
		t.Fatalf("Open on a newer schema = %v, want a version error", err)
	}

	// Reopening at the same version works.
	err = s.session.Query("UPDATE "+cfg.RegionKeyspace+".schema_version SET version = ? WHERE component = ?",
		schemaVersion, schemaComponent).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	again.Close()
}

func TestLargePayloadCommit(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()

	// A payload of 1 MiB is far past the 50 KiB batch limit; Commit writes it
	// outside the logged batch.
	data := bytes.Repeat([]byte("q"), 1<<20)
	id := uuid.New()
	b := &storage.Batch{
		PutPayloads: []storage.Payload{{Queue: "big", MessageID: id, ContentType: "text/plain", Data: data, ExpiresAt: now.Add(time.Hour)}},
		PutEntries: []storage.Entry{{Queue: "big", State: storage.Available, Shard: 0, Seq: 1, ID: uuid.New(), MessageID: id,
			CreatedAt: now, SentAt: now, ExpiresAt: now.Add(time.Hour), Size: int64(len(data))}},
		Metas: map[string]storage.Meta{"big": {ShardSize: 100, NextSeq: 2, Head: 1, Available: 1}},
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	p, err := s.Payload(ctx, storage.PayloadKey{Queue: "big", MessageID: id})
	if err != nil {
		t.Fatalf("Payload: %v", err)
	}
	if !bytes.Equal(p.Data, data) {
		t.Fatalf("payload data has %d bytes, want %d", len(p.Data), len(data))
	}
}

func TestPayloadTTL(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	ks := s.cfg.Keyspace

	id := uuid.New()
	expires := time.Now().Add(2 * time.Hour)
	b := &storage.Batch{
		PutPayloads: []storage.Payload{{Queue: "q", MessageID: id, Data: []byte("x"), ExpiresAt: expires}},
		Audit:       []storage.AuditEvent{{MessageID: id, Time: time.Now(), Action: "send", Queue: "q", ExpiresAt: expires}},
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit: %v", err)
	}

	var ttl int
	err := s.session.Query("SELECT TTL(data) FROM "+ks+".payloads WHERE queue = ? AND message_id = ?", "q", id.String()).
		ScanContext(ctx, &ttl)
	if err != nil {
		t.Fatal(err)
	}
	// Two hours plus the default grace of one hour, less the seconds the
	// test took so far.
	if ttl <= 2*3600 || ttl > 3*3600 {
		t.Errorf("payload TTL = %ds, want between 2h and 3h", ttl)
	}
	// Audit rows get no grace.
	err = s.session.Query("SELECT TTL(action) FROM "+s.cfg.RegionKeyspace+".audit WHERE message_id = ?", id.String()).
		ScanContext(ctx, &ttl)
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 3600 || ttl > 2*3600 {
		t.Errorf("audit TTL = %ds, want between 1h and 2h", ttl)
	}
}

func TestCommitRejectsConflicts(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	key := storage.EntryKey{Queue: "q", State: storage.Available, Shard: 0, Seq: 1}
	entry := storage.Entry{Queue: "q", State: storage.Available, Shard: 0, Seq: 1}
	tests := []struct {
		name    string
		batch   storage.Batch
		wantErr string
	}{
		{"put and delete", storage.Batch{PutEntries: []storage.Entry{entry}, DeleteEntries: []storage.EntryKey{key}}, "both put and deleted"},
		{"put into retired shard", storage.Batch{PutEntries: []storage.Entry{entry},
			RetireShards: []storage.RetiredShard{{Queue: "q", ShardRef: storage.ShardRef{State: storage.Available}}}}, "retires"},
		{"bad state", storage.Batch{DeleteEntries: []storage.EntryKey{{Queue: "q", State: 9}}}, "invalid state"},
		{"empty queue", storage.Batch{DeleteEntries: []storage.EntryKey{{State: storage.Available}}}, "empty queue name"},
		{"seq too large", storage.Batch{DeleteEntries: []storage.EntryKey{{Queue: "q", State: storage.Available, Seq: 1 << 63}}}, "larger than the maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Commit(ctx, &tt.batch)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Commit = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	got, err := s.ScanShard(ctx, "q", storage.ShardRef{State: storage.Available}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("rejected batches stored %d entries", len(got))
	}
}

func TestRoundTrip(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)

	cfg := storage.QueueConfig{Name: "orders", VisibilityTimeout: 30 * time.Second, RetryCount: 3,
		Tags: map[string]string{"team": "billing"}, CreatedAt: now, UpdatedAt: now}
	stored, created, err := s.CreateQueue(ctx, cfg)
	if err != nil || !created {
		t.Fatalf("CreateQueue = %v, %v", created, err)
	}
	if stored.Name != "orders" {
		t.Fatalf("stored name %q", stored.Name)
	}
	again := cfg
	again.RetryCount = 9
	stored, created, err = s.CreateQueue(ctx, again)
	if err != nil || created {
		t.Fatalf("second CreateQueue = %v, %v", created, err)
	}
	if stored.RetryCount != 3 || stored.Tags["team"] != "billing" || !stored.CreatedAt.Equal(now) {
		t.Fatalf("second CreateQueue returned %+v, want the first configuration", stored)
	}
	if err := s.UpdateQueue(ctx, storage.QueueConfig{Name: "missing"}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateQueue(missing) = %v, want ErrNotFound", err)
	}

	id, msg := uuid.New(), uuid.New()
	entry := storage.Entry{Queue: "orders", State: storage.Inflight, Shard: 2, Seq: 250, ID: id, MessageID: msg,
		CreatedAt: now, SentAt: now, DueAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour),
		ReceiveCount: 2, ContentType: "application/json", Size: 12, SourceQueue: "src"}
	meta := storage.Meta{ShardSize: 100, NextSeq: 251, Head: 200, Available: 0,
		Shards: []storage.ShardRef{{State: storage.Inflight, Shard: 2}, {State: storage.Delayed, Shard: 1}},
		Totals: storage.Totals{Sent: 251, Received: 7, Purged: 1}}
	err = s.Commit(ctx, &storage.Batch{
		PutEntries: []storage.Entry{entry},
		Metas:      map[string]storage.Meta{"orders": meta},
	})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, err := s.ScanShard(ctx, "orders", storage.ShardRef{State: storage.Inflight, Shard: 2}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != entry {
		t.Fatalf("ScanShard = %+v, want [%+v]", got, entry)
	}
	gotMeta, err := s.Meta(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if gotMeta.NextSeq != 251 || len(gotMeta.Shards) != 2 || gotMeta.Shards[1] != meta.Shards[1] || gotMeta.Totals != meta.Totals {
		t.Fatalf("Meta = %+v, want %+v", gotMeta, meta)
	}

	if err := s.DeleteQueue(ctx, "orders"); err != nil {
		t.Fatalf("DeleteQueue: %v", err)
	}
	if _, err := s.Queue(ctx, "orders"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Queue after delete = %v, want ErrNotFound", err)
	}
	got, err = s.ScanShard(ctx, "orders", storage.ShardRef{State: storage.Inflight, Shard: 2}, 0, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("ScanShard after delete = %v, %v; want none", got, err)
	}
}

// TestOpenMigratesVersion1 turns fresh keyspaces back into the version 1
// layout, without metas.inbox and the leases table, and opens them from two
// stores at once, as two nodes that start together would.
func TestOpenMigratesVersion1(t *testing.T) {
	cfg := testConfig(t, testHost(t))
	s := openTestStoreConfig(t, cfg)
	ctx := context.Background()
	region := cfg.RegionKeyspace

	exec := func(stmt string, values ...any) {
		t.Helper()
		if err := s.session.Query(stmt, values...).ExecContext(ctx); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	exec("ALTER TABLE " + region + ".metas DROP inbox")
	exec("DROP TABLE " + region + ".leases")
	for _, ks := range []string{cfg.Keyspace, region} {
		exec("UPDATE "+ks+".schema_version SET version = ? WHERE component = ?", 1, schemaComponent)
	}
	// Metadata as a version 1 build wrote it.
	exec("INSERT INTO "+region+".metas (queue, shard_size, next_seq, head, available, sent) VALUES (?, ?, ?, ?, ?, ?)",
		"old", int64(100), int64(7), int64(3), int64(4), int64(7))
	if err := s.session.AwaitSchemaAgreement(ctx); err != nil {
		t.Fatal(err)
	}

	stores := make([]*Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d of a version 1 keyspace: %v", i, err)
		}
		defer stores[i].Close()
	}
	migrated := stores[0]

	for _, ks := range []string{cfg.Keyspace, region} {
		var version int
		err := s.session.Query("SELECT version FROM "+ks+".schema_version WHERE component = ?", schemaComponent).
			SerialConsistency(s.serial).ScanContext(ctx, &version)
		if err != nil {
			t.Fatalf("read schema version of %s: %v", ks, err)
		}
		if version != schemaVersion {
			t.Errorf("keyspace %s has schema version %d after migration, want %d", ks, version, schemaVersion)
		}
	}

	got, err := migrated.Meta(ctx, "old")
	if err != nil {
		t.Fatalf("Meta written by version 1: %v", err)
	}
	want := storage.Meta{ShardSize: 100, NextSeq: 7, Head: 3, Available: 4, Totals: storage.Totals{Sent: 7}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Meta written by version 1 = %+v, want %+v", got, want)
	}

	// The new column and table work.
	meta := storage.Meta{NextSeq: 8, Inbox: map[uint64]uint64{2: 5}}
	if err := migrated.Commit(ctx, &storage.Batch{Metas: map[string]storage.Meta{"old": meta}}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got, err := migrated.Meta(ctx, "old"); err != nil || !reflect.DeepEqual(got.Inbox, meta.Inbox) {
		t.Errorf("Meta after migration = %+v, %v; want Inbox %v", got, err, meta.Inbox)
	}
	if _, err := migrated.AcquireLease(ctx, "old", "node-a", time.Now(), time.Minute, time.Second); err != nil {
		t.Errorf("AcquireLease after migration: %v", err)
	}
}

// TestLeaseWrittenSettlesUnknownOutcome gives leaseWritten the results that
// cas returns after a timeout and checks that it decides by the lease it
// reads, not by those results.
func TestLeaseWrittenSettlesUnknownOutcome(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	stored, err := s.AcquireLease(ctx, "q", "node-a", now, time.Minute, time.Second)
	if err != nil {
		t.Fatalf("AcquireLease: %v", err)
	}
	other := stored
	other.Epoch++
	timeout := errors.New("CAS write timed out")

	tests := []struct {
		name      string
		want      storage.Lease
		applied   bool
		uncertain bool
		casErr    error
		written   bool
		wantErr   bool
	}{
		{"applied", other, true, false, nil, true, false},
		{"not applied", stored, false, false, nil, false, false},
		{"plain error", stored, false, false, timeout, false, true},
		{"retry failed, lease written", stored, false, true, nil, true, false},
		{"retry failed, lease not written", other, false, true, nil, false, false},
		{"timeouts, lease written", stored, false, true, timeout, true, false},
		{"timeouts, lease not written", other, false, true, timeout, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			written, err := s.leaseWritten(ctx, tt.want, tt.applied, tt.uncertain, tt.casErr)
			if written != tt.written {
				t.Errorf("written = %v, want %v", written, tt.written)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want an error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestSchemaElementExists(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	region := s.cfg.RegionKeyspace
	for _, stmt := range []string{
		"ALTER TABLE " + region + ".metas ADD inbox frozen<map<bigint, bigint>>",
		"CREATE TABLE " + region + ".leases (queue text PRIMARY KEY)",
	} {
		err := s.session.Query(stmt).ExecContext(ctx)
		if err == nil {
			t.Errorf("%s succeeded on an existing element", stmt)
			continue
		}
		if !schemaElementExists(err) {
			t.Errorf("schemaElementExists(%v) = false for %s", err, stmt)
		}
	}

	err := s.session.Query("ALTER TABLE " + region + ".metas ADD inbox2 no_such_type").ExecContext(ctx)
	if err == nil || schemaElementExists(err) {
		t.Errorf("schemaElementExists(%v) = true for an invalid type, want false", err)
	}
}
