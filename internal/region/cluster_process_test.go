package region_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/storage/backendtest"
)

// TestProcessesClusterRegion runs region east as one node on Pebble and
// region west as a cluster of two nodes over Cassandra. Both regions send
// to ALL through every node, one west node is killed with SIGKILL while
// the outboxes drain, and every acknowledged send must arrive in both
// regions exactly once.
func TestProcessesClusterRegion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three servers")
	}
	host := os.Getenv(backendtest.CassandraEnv)
	if host == "" {
		t.Skipf("%s is not set", backendtest.CassandraEnv)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "region-password")
	if err := os.WriteFile(passwordFile, []byte(regionPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	keyspace := "qakka_rgcl_" + hex.EncodeToString(suffix[:])
	t.Cleanup(func() {
		if err := backendtest.DropKeyspaces(host, keyspace, keyspace+"_datacenter1"); err != nil {
			t.Logf("drop test keyspaces: %v", err)
		}
	})

	eastAddr := freeAddress(t)
	westAddrs := []string{freeAddress(t), freeAddress(t)}
	gossip := []string{freeAddress(t), freeAddress(t)}
	common := fmt.Sprintf(`region-username: %s
region-password-file: %s
region-request-timeout: 2s
shutdown-timeout: 5s
sqs-listen: 127.0.0.1:0
`, regionUser, passwordFile)

	east := &regionProcess{t: t, bin: bin, name: "east", addr: eastAddr, config: filepath.Join(dir, "east.yaml")}
	writeConfig(t, east.config, fmt.Sprintf(`region: east
listen: %s
data-dir: %s
region-remotes:
  west:
    endpoints: [http://%s, http://%s]
%s`, eastAddr, filepath.Join(dir, "data-east"), westAddrs[0], westAddrs[1], common))

	var west []*regionProcess
	for i := range westAddrs {
		p := &regionProcess{t: t, bin: bin, name: fmt.Sprintf("west-%d", i+1), addr: westAddrs[i], config: filepath.Join(dir, fmt.Sprintf("west-%d.yaml", i+1))}
		writeConfig(t, p.config, fmt.Sprintf(`region: west
listen: %s
storage: cassandra
cassandra-hosts: [%s]
cassandra-keyspace: %s
cluster-listen: %s
cluster-node-name: west-%d
cluster-seeds: [%s]
cluster-profile: local
region-remotes:
  east:
    endpoints: [http://%s]
%s`, westAddrs[i], host, keyspace, gossip[i], i+1, strings.Join(gossip, ", "), eastAddr, common))
		west = append(west, p)
	}
	east.start()
	for _, p := range west {
		p.start()
	}

	ctx := context.Background()
	eastClient := restClient(t, eastAddr)
	westClients := []*client.Client{restClient(t, westAddrs[0]), restClient(t, westAddrs[1])}
	for _, c := range []*client.Client{eastClient, westClients[0]} {
		if _, _, err := c.CreateQueue(ctx, client.Queue{Name: "orders", Regions: "ALL"}); err != nil {
			t.Fatalf("create queue: %v", err)
		}
	}

	// Every node takes sends to ALL, 100 each in batches of 20.
	acked := map[string]bool{}
	send := func(c *client.Client, from string) {
		for i := 0; i < 100; i += 20 {
			entries := make([]client.BatchSendEntry, 20)
			for j := range entries {
				entries[j] = client.BatchSendEntry{Data: json.RawMessage(fmt.Sprintf(`{"from":%q,"n":%d}`, from, i+j))}
			}
			res, err := c.SendBatchToRegions(ctx, "orders", "ALL", entries)
			if err != nil {
				t.Fatalf("send batch from %s: %v", from, err)
			}
			for _, r := range res.Results {
				if r.Status != 200 {
					t.Fatalf("send from %s: status %d: %s", from, r.Status, r.Message)
				}
				acked[r.MessageID] = true
			}
		}
	}
	send(eastClient, "east")
	send(westClients[0], "west-1")
	send(westClients[1], "west-2")

	// The surviving west node takes over the queues and the outbox of the
	// killed one.
	west[0].kill()
	start := time.Now()
	for _, c := range []*client.Client{eastClient, westClients[1]} {
		waitForProcess(t, "the outboxes to drain", func() bool {
			st, err := c.Status(ctx)
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
	}
	t.Logf("%d acknowledged sends; outboxes drained %s after a west node was killed", len(acked), time.Since(start).Round(time.Millisecond))

	for name, c := range map[string]*client.Client{"east": eastClient, "west": westClients[1]} {
		got := map[string]int{}
		waitForProcess(t, "every message in region "+name, func() bool {
			// A receive fails with 503 until a node serves the queue again.
			msgs, err := c.Receive(ctx, "orders", client.ReceiveOptions{Count: 100, Wait: new(time.Duration)})
			if err != nil {
				return false
			}
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				got[m.MessageID]++
				ids[i] = m.QueueMessageID
			}
			if len(ids) > 0 {
				if _, err := c.AckBatch(ctx, "orders", ids); err != nil {
					t.Fatalf("ack in region %s: %v", name, err)
				}
			}
			return len(got) >= len(acked)
		})
		for id := range acked {
			if got[id] != 1 {
				t.Errorf("region %s: message %s arrived %d times, want once", name, id, got[id])
			}
		}
		t.Logf("region %s: %d distinct messages of %d acknowledged", name, len(got), len(acked))
	}
}

func writeConfig(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}
