package cassandrastore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// schemaVersion is the version of the tables this code reads and writes. Open
// records it in each keyspace's schema_version table and rejects a keyspace
// with a newer version. A change of a table's layout increments it and adds a
// migration to migrate.
const schemaVersion = 1

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
	purged bigint
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
) WITH CLUSTERING ORDER BY (time ASC, seq ASC);`

// ensureSchema creates both keyspaces and their tables when missing, then
// checks or records the schema version of each.
func (s *Store) ensureSchema(ctx context.Context) error {
	keyspaces := []struct {
		name        string
		replication Replication
		tables      string
	}{
		{s.cfg.Keyspace, s.cfg.Replication, replicatedTables},
		{s.cfg.RegionKeyspace, s.cfg.RegionReplication, regionTables},
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
		if err := s.checkVersion(ctx, ks.name); err != nil {
			return err
		}
	}
	return nil
}

// checkVersion records schemaVersion in a keyspace that has no version yet,
// and rejects a keyspace written by a newer schema.
func (s *Store) checkVersion(ctx context.Context, keyspace string) error {
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
		return s.migrate(ctx, keyspace, existing)
	}
}

// migrate brings a keyspace from an older schema version to schemaVersion.
// Version 1 is the first, so no migration exists yet.
func (s *Store) migrate(_ context.Context, keyspace string, from int) error {
	return fmt.Errorf("keyspace %s has schema version %d, and no migration to version %d exists",
		keyspace, from, schemaVersion)
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
