package cassandrastore

import (
	"bytes"
	"context"
	"errors"
	"strings"
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
