package cassandrastore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// schemaVersion is the version of the tables this code reads and writes. Open
// records it in each keyspace's schema_version table and rejects a keyspace
// with a newer version. A change of a table's layout increments it and adds a
// script to replicatedMigrations and regionMigrations. Version 2 added
// metas.inbox and the leases table.
const schemaVersion = 2

// schemaComponent is the key of the version row in schema_version.
const schemaComponent = "qakka"

// The tables of the replicated keyspace. See doc.go for what each holds.
const replicatedTables = `
CREATE TABLE IF NOT EXISTS %[1]s.schema_version (
	component text PRIMARY KEY,
	version int
);
CREATE TABLE IF NOT EXISTS %[1]s.queues (
	name text PRIMARY KEY,
	visibility_timeout bigint,
	default_delay bigint,
	retry_count int,
	dead_letter_queue text,
	max_message_size bigint,
	retention bigint,
	receive_wait bigint,
	regions text,
	default_destinations text,
	tags frozen<map<text, text>>,
	created_at bigint,
	updated_at bigint
);
CREATE TABLE IF NOT EXISTS %[1]s.payloads (
	queue text,
	message_id uuid,
	content_type text,
	data blob,
	attributes blob,
	expires_at bigint,
	PRIMARY KEY ((queue, message_id))
);`

// The tables of the region keyspace.
const regionTables = `
CREATE TABLE IF NOT EXISTS %[1]s.schema_version (
	component text PRIMARY KEY,
	version int
);
CREATE TABLE IF NOT EXISTS %[1]s.queue_entries (
	queue text,
	state tinyint,
	shard bigint,
	seq bigint,
	id uuid,
	message_id uuid,
	created_at bigint,
	sent_at bigint,
	due_at bigint,
	expires_at bigint,
	receive_count int,
	content_type text,
	size bigint,
	source_queue text,
	target_queue text,
	PRIMARY KEY ((queue, state, shard), seq)
) WITH CLUSTERING ORDER BY (seq ASC);
CREATE TABLE IF NOT EXISTS %[1]s.queue_shards (
	queue text,
	state tinyint,
	shard bigint,
	PRIMARY KEY ((queue), state, shard)
);
CREATE TABLE IF NOT EXISTS %[1]s.metas (
	queue text PRIMARY KEY,
	shard_size bigint,
	next_seq bigint,
	head bigint,
	available bigint,
	shards frozen<list<frozen<tuple<tinyint, bigint>>>>,
	sent bigint,
	received bigint,
	acked bigint,
	nacked bigint,
	timed_out bigint,
	expired bigint,
	dead_lettered bigint,
	redriven bigint,
	purged bigint,
	inbox frozen<map<bigint, bigint>>
);
CREATE TABLE IF NOT EXISTS %[1]s.audit (
	message_id uuid,
	time bigint,
	seq bigint,
	action text,
	queue text,
	queue_message_id uuid,
	receive_count int,
	detail text,
	expires_at bigint,
	PRIMARY KEY ((message_id), time, seq)
) WITH CLUSTERING ORDER BY (time ASC, seq ASC);` + leasesTable

// leasesTable holds one lease per queue. Times are milliseconds since the
// Unix epoch, and an expires_at of 0 marks a released lease. fenced_at is
// the time of the last fenced commit: the commit's lightweight transaction
// writes it, because a transaction that checks the lease must write a cell.
const leasesTable = `
CREATE TABLE IF NOT EXISTS %[1]s.leases (
	queue text PRIMARY KEY,
	owner text,
	epoch bigint,
	expires_at bigint,
	fenced_at bigint
);`

// replicatedMigrations and regionMigrations map a schema version v to the CQL
// script that takes a keyspace from version v to v+1. An empty script only
// records the new version. Every statement must be safe to run twice,
// because two nodes may migrate a keyspace at once.
//
// NOTE: ALTER TABLE ... ADD IF NOT EXISTS is CQL of Cassandra 4.1 and later.
// The migration was run on Cassandra 5.0.8 only.
var (
	replicatedMigrations = map[int]string{
		1: "",
	}
	regionMigrations = map[int]string{
		1: `ALTER TABLE %[1]s.metas ADD IF NOT EXISTS inbox frozen<map<bigint, bigint>>;` + leasesTable,
	}
)

// keyspaceSchema is one of the two keyspaces: its tables in their newest
// layout and the migrations from older ones.
type keyspaceSchema struct {
	name        string
	replication Replication
	tables      string
	migrations  map[int]string
}

// ensureSchema creates both keyspaces and their tables when missing, then
// checks or records the schema version of each.
func (s *Store) ensureSchema(ctx context.Context) error {
	keyspaces := []keyspaceSchema{
		{s.cfg.Keyspace, s.cfg.Replication, replicatedTables, replicatedMigrations},
		{s.cfg.RegionKeyspace, s.cfg.RegionReplication, regionTables, regionMigrations},
	}
	for _, ks := range keyspaces {
		stmt := fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s AND durable_writes = true",
			ks.name, ks.replication.cql())
		if err := s.session.Query(stmt).ExecContext(ctx); err != nil {
			return fmt.Errorf("create keyspace %s: %w", ks.name, err)
		}
		for _, stmt := range splitStatements(fmt.Sprintf(ks.tables, ks.name)) {
			if err := s.session.Query(stmt).ExecContext(ctx); err != nil {
				return fmt.Errorf("create tables in keyspace %s: %w", ks.name, err)
			}
		}
	}

	// NB: concurrent CREATE TABLE IF NOT EXISTS from several nodes can leave
	// the cluster briefly without schema agreement; wait for it before the
	// first read.
	if err := s.session.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("wait for schema agreement: %w", err)
	}

	for _, ks := range keyspaces {
		if err := s.checkVersion(ctx, ks); err != nil {
			return err
		}
	}
	return nil
}

// checkVersion records schemaVersion in a keyspace that has no version yet,
// migrates a keyspace of an older version and rejects one written by a newer
// schema.
func (s *Store) checkVersion(ctx context.Context, ks keyspaceSchema) error {
	keyspace := ks.name
	insert := fmt.Sprintf("INSERT INTO %s.schema_version (component, version) VALUES (?, ?) IF NOT EXISTS", keyspace)
	row := map[string]any{}
	applied, _, err := s.cas(ctx, row, insert, schemaComponent, schemaVersion)
	if err != nil {
		return fmt.Errorf("record schema version in keyspace %s: %w", keyspace, err)
	}
	if applied {
		return nil
	}
	existing, ok := row["version"].(int)
	if !ok {
		return fmt.Errorf("keyspace %s: schema_version row has no version", keyspace)
	}
	switch {
	case existing == schemaVersion:
		return nil
	case existing > schemaVersion:
		return fmt.Errorf("keyspace %s has schema version %d, newer than version %d of this build: upgrade Qakka",
			keyspace, existing, schemaVersion)
	default:
		return s.migrate(ctx, ks, existing)
	}
}

// migrate brings a keyspace from an older schema version to schemaVersion,
// one version at a time: it runs the version's script, waits for schema
// agreement and records the next version with a lightweight transaction.
// When another node migrates the keyspace at the same time, the schema
// changes of both succeed or report that the column or table exists, and
// only one of them records each version.
func (s *Store) migrate(ctx context.Context, ks keyspaceSchema, from int) error {
	for version := from; version < schemaVersion; version++ {
		script, ok := ks.migrations[version]
		if !ok {
			return fmt.Errorf("keyspace %s has schema version %d, and no migration to version %d exists",
				ks.name, version, version+1)
		}
		if script != "" {
			if err := s.runMigration(ctx, ks.name, script); err != nil {
				return fmt.Errorf("migrate keyspace %s from schema version %d: %w", ks.name, version, err)
			}
		}
		if err := s.recordVersion(ctx, ks.name, version); err != nil {
			return err
		}
	}
	return nil
}

// runMigration runs the statements of a migration script on keyspace and
// waits for schema agreement.
func (s *Store) runMigration(ctx context.Context, keyspace, script string) error {
	for _, stmt := range splitStatements(fmt.Sprintf(script, keyspace)) {
		if err := s.session.Query(stmt).ExecContext(ctx); err != nil && !schemaElementExists(err) {
			return err
		}
	}
	if err := s.session.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("wait for schema agreement: %w", err)
	}
	return nil
}

// recordVersion raises the recorded schema version of a keyspace from
// version to version+1. A keyspace that another node already raised is fine.
func (s *Store) recordVersion(ctx context.Context, keyspace string, version int) error {
	update := fmt.Sprintf("UPDATE %s.schema_version SET version = ? WHERE component = ? IF version = ?", keyspace)
	row := map[string]any{}
	applied, _, err := s.cas(ctx, row, update, version+1, schemaComponent, version)
	if err != nil {
		return fmt.Errorf("record schema version %d in keyspace %s: %w", version+1, keyspace, err)
	}
	if applied {
		return nil
	}
	// A retry after a timeout also lands here when the first attempt
	// applied: the version it reads is then version+1.
	if recorded, ok := row["version"].(int); ok && recorded > version {
		return nil
	}
	return fmt.Errorf("record schema version %d in keyspace %s: found version %v, expected %d",
		version+1, keyspace, row["version"], version)
}

// schemaElementExists reports whether err rejects a schema change because
// the table or column it adds exists already. Cassandra 5.0.8 reports an
// existing column as an invalid request, "Column with name 'x' already
// exists". The check also accepts the older wording "conflicts with an
// existing column", which was not checked against a running node.
func schemaElementExists(err error) bool {
	var exists *gocql.RequestErrAlreadyExists
	if errors.As(err, &exists) {
		return true
	}
	var invalid *gocql.RequestErrInvalid
	if !errors.As(err, &invalid) {
		return false
	}
	msg := invalid.Error()
	return strings.Contains(msg, "already exists") || strings.Contains(msg, "conflicts with an existing column")
}

// dropKeyspaces removes both keyspaces with everything in them. Tests use it.
func (s *Store) dropKeyspaces(ctx context.Context) error {
	var errs []error
	for _, ks := range []string{s.cfg.Keyspace, s.cfg.RegionKeyspace} {
		if err := s.session.Query("DROP KEYSPACE IF EXISTS " + ks).ExecContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drop keyspace %s: %w", ks, err))
		}
	}
	return errors.Join(errs...)
}

// splitStatements splits a CQL script on semicolons. The scripts above have no
// semicolons inside string literals.
func splitStatements(script string) []string {
	var out []string
	for _, stmt := range strings.Split(script, ";") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}
