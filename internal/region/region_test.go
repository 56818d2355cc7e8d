package region_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

var threeRegions = []string{"east", "west", "north"}

func TestSendToAllArrivesOnceInEachRegion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east := c.node("east")
		createQueue(t, east, queue.Config{Name: "orders", Regions: "ALL"})

		ids := sendN(t, east, "orders", "ALL", 95)

		for _, name := range threeRegions {
			n := c.node(name)
			waitFor(t, "95 messages in region "+name, func() bool { return total(t, n, "orders") == 95 })
			checkOnce(t, "region "+name, drain(t, n, "orders"), ids)
		}
		for _, name := range []string{"west", "north"} {
			outbox := region.OutboxName(name)
			waitFor(t, "empty outbox "+outbox, func() bool { return total(t, east, outbox) == 0 })
		}
	})
}

func TestSendResultListsDestinations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east := c.node("east")
		createQueue(t, east, queue.Config{Name: "orders"})

		tests := []struct {
			spec    string
			local   bool
			remotes []string
		}{
			{"", true, nil},
			{"LOCAL", true, nil},
			{"east", true, nil},
			{"ALL", true, []string{"north", "west"}},
			{"REMOTE", false, []string{"north", "west"}},
			{"north", false, []string{"north"}},
			{" north , LOCAL ", true, []string{"north"}},
			{"west,north,west", false, []string{"north", "west"}},
		}
		for _, tt := range tests {
			t.Run(tt.spec, func(t *testing.T) {
				res, err := east.rt().Send(context.Background(), "orders", tt.spec, []queue.SendRequest{{ContentType: "text/plain", Data: []byte("x")}})
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				if res.Destinations.Local != tt.local {
					t.Errorf("local = %v, want %v", res.Destinations.Local, tt.local)
				}
				if !slices.Equal(res.Destinations.Remotes, tt.remotes) {
					t.Errorf("remotes = %v, want %v", res.Destinations.Remotes, tt.remotes)
				}
				m := res.Messages[0]
				if m.MessageID == uuid.Nil {
					t.Error("no messageId")
				}
				if (m.QueueMessageID != uuid.Nil) != tt.local {
					t.Errorf("queueMessageId %s, want one only for a local copy", m.QueueMessageID)
				}
			})
		}
	})
}

func TestSendToUnknownRegionIsInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east := c.node("east")
		createQueue(t, east, queue.Config{Name: "orders"})

		for _, spec := range []string{"south", "west,south", "all", "west,,north"} {
			t.Run(spec, func(t *testing.T) {
				_, err := east.rt().Send(context.Background(), "orders", spec, []queue.SendRequest{{Data: []byte("x")}})
				var invalid *queue.InvalidError
				if !errors.As(err, &invalid) {
					t.Fatalf("send with regions %q: error %v, want an InvalidError", spec, err)
				}
				for _, want := range []string{"east", "west", "north", "LOCAL, ALL, REMOTE"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %q", err, want)
					}
				}
			})
		}
		if n := total(t, east, region.OutboxName("west")); n != 0 {
			t.Errorf("outbox of west holds %d entries after rejected sends", n)
		}
	})
}

func TestDefaultDestinationsApply(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east, north := c.node("east"), c.node("north")
		createQueue(t, east, queue.Config{Name: "orders", Regions: "ALL", DefaultDestinations: "north"})
		waitFor(t, "queue orders in north", func() bool { return total(t, north, "orders") >= 0 })

		ids := sendN(t, east, "orders", "", 3)

		waitFor(t, "3 messages in north", func() bool { return total(t, north, "orders") == 3 })
		checkOnce(t, "north", drain(t, north, "orders"), ids)
		if n := total(t, east, "orders"); n != 0 {
			t.Errorf("east holds %d messages, want none: LOCAL is not a default destination", n)
		}
	})
}

func TestCreateQueueWithRegionsCreatesItEverywhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east := c.node("east")
		cfg := queue.Config{
			Name:              "invoices",
			Regions:           "ALL",
			VisibilityTimeout: 45 * time.Second,
			DefaultDelay:      1500 * time.Millisecond,
			Tags:              map[string]string{"team": "billing"},
		}
		createQueue(t, east, cfg)

		for _, name := range []string{"west", "north"} {
			n := c.node(name)
			waitFor(t, "queue invoices in "+name, func() bool { return n.eng().Exists("invoices") })
			got, err := n.eng().Queue(context.Background(), "invoices")
			if err != nil {
				t.Fatal(err)
			}
			if got.VisibilityTimeout != cfg.VisibilityTimeout || got.DefaultDelay != cfg.DefaultDelay || got.Regions != "ALL" || got.Tags["team"] != "billing" {
				t.Errorf("region %s: config %+v, want the one created in east", name, got)
			}
		}

		// An update reaches every region too.
		cfg.VisibilityTimeout = 90 * time.Second
		if _, _, err := east.rt().UpdateQueue(context.Background(), cfg); err != nil {
			t.Fatalf("update: %v", err)
		}
		for _, name := range []string{"west", "north"} {
			n := c.node(name)
			waitFor(t, "updated config in "+name, func() bool {
				got, err := n.eng().Queue(context.Background(), "invoices")
				return err == nil && got.VisibilityTimeout == 90*time.Second
			})
		}
	})
}

func TestCreateQueueWithUnknownRegionIsInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east := c.node("east")
		for _, cfg := range []queue.Config{
			{Name: "q", Regions: "LOCAL,south"},
			{Name: "q", DefaultDestinations: "south"},
		} {
			_, _, _, err := east.rt().CreateQueue(context.Background(), cfg)
			var invalid *queue.InvalidError
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), `"south"`) {
				t.Errorf("create %+v: error %v, want an InvalidError naming south", cfg, err)
			}
		}
		if east.eng().Exists("q") {
			t.Error("queue q was created despite the invalid regions")
		}
	})
}

func TestMissingQueueIsCreatedFromTheMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east, west := c.node("east"), c.node("west")
		// The queue exists only in east; a message sent to west creates it
		// there with the same configuration.
		createQueue(t, east, queue.Config{Name: "local-only", VisibilityTimeout: 77 * time.Second})

		ids := sendN(t, east, "local-only", "west", 1)

		waitFor(t, "message in west", func() bool { return total(t, west, "local-only") == 1 })
		got, err := west.eng().Queue(context.Background(), "local-only")
		if err != nil {
			t.Fatal(err)
		}
		if got.VisibilityTimeout != 77*time.Second {
			t.Errorf("visibility timeout in west = %s, want 77s from east's configuration", got.VisibilityTimeout)
		}
		checkOnce(t, "west", drain(t, west, "local-only"), ids)
	})
}

func TestTransferSentAgainStoresOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		west := c.node("west")
		now := time.Now()
		id := uuid.Must(uuid.NewV7())
		body := mustJSON(t, region.TransferRequest{
			Source: "east",
			Now:    now,
			Entries: []region.Envelope{{
				Kind:        region.KindMessage,
				Queue:       "retried",
				MessageID:   id,
				ContentType: "text/plain",
				Data:        []byte("hello"),
				DeliverAt:   now,
				ExpiresAt:   now.Add(time.Hour),
				SentAt:      now,
				Source:      "east",
			}},
		})

		for i, wantDuplicate := range []bool{false, true, true} {
			status, reply := postTransfer(t, west, regionUser, regionPass, body)
			if status != http.StatusOK {
				t.Fatalf("POST %d: status %d: %s", i+1, status, reply)
			}
			var resp region.TransferResponse
			if err := json.Unmarshal(reply, &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.Results) != 1 || resp.Results[0].Status != http.StatusOK || resp.Results[0].Duplicate != wantDuplicate {
				t.Errorf("POST %d: results %+v, want status 200 with duplicate=%v", i+1, resp.Results, wantDuplicate)
			}
		}

		got := drain(t, west, "retried")
		checkOnce(t, "west", got, []uuid.UUID{id})

		// Acked and sent once more, it is still not stored again.
		status, _ := postTransfer(t, west, regionUser, regionPass, body)
		if status != http.StatusOK || total(t, west, "retried") != 0 {
			t.Errorf("after an ack, a repeated transfer stored the message again (status %d)", status)
		}
	})
}

func TestTransferKeepsTimesAcrossClockSkew(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		west := c.node("west")
		// The sender's clock is an hour behind: the delay and expiration are
		// measured from its clock, not west's.
		senderNow := time.Now().Add(-time.Hour)
		id := uuid.Must(uuid.NewV7())
		body := mustJSON(t, region.TransferRequest{
			Source: "east",
			Now:    senderNow,
			Entries: []region.Envelope{{
				Kind: region.KindMessage, Queue: "skewed", MessageID: id, Data: []byte("x"),
				DeliverAt: senderNow.Add(time.Minute), ExpiresAt: senderNow.Add(2 * time.Minute),
				SentAt: senderNow, Source: "east",
			}},
		})
		if status, reply := postTransfer(t, west, regionUser, regionPass, body); status != http.StatusOK {
			t.Fatalf("status %d: %s", status, reply)
		}

		page, err := west.eng().Peek(context.Background(), "skewed", queue.PeekRequest{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 1 {
			t.Fatalf("peek: %d entries, want 1", len(page.Entries))
		}

		e := page.Entries[0]
		if e.State != "delayed" {
			t.Errorf("state %s, want delayed: the message is due a minute after it was sent", e.State)
		}
		if d := time.Until(e.DueAt); d < 30*time.Second || d > time.Minute+time.Second {
			t.Errorf("due in %s, want about a minute", d)
		}
		if d := time.Until(e.ExpiresAt); d < 90*time.Second || d > 2*time.Minute+time.Second {
			t.Errorf("expires in %s, want about two minutes", d)
		}
	})
}

func TestTransferRejectsBadEntries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		west := c.node("west")
		now := time.Now()
		good := region.Envelope{Kind: region.KindMessage, Queue: "q", MessageID: uuid.Must(uuid.NewV7()), Data: []byte("x"),
			DeliverAt: now, ExpiresAt: now.Add(time.Hour), SentAt: now, Source: "east"}
		tests := []struct {
			name   string
			edit   func(*region.Envelope)
			status int
		}{
			{"valid", func(*region.Envelope) {}, http.StatusOK},
			{"unknown kind", func(e *region.Envelope) { e.Kind = "other" }, http.StatusBadRequest},
			{"no message id", func(e *region.Envelope) { e.MessageID = uuid.Nil }, http.StatusBadRequest},
			{"reserved queue", func(e *region.Envelope) { e.Queue = region.OutboxName("east") }, http.StatusBadRequest},
			{"bad queue name", func(e *region.Envelope) { e.Queue = "a b" }, http.StatusBadRequest},
			{"expired", func(e *region.Envelope) { e.ExpiresAt = now.Add(-time.Second); e.DeliverAt = now.Add(-time.Minute) }, http.StatusGone},
			{"config without config", func(e *region.Envelope) { e.Kind = region.KindQueueConfig }, http.StatusBadRequest},
		}

		req := region.TransferRequest{Source: "east", Now: now}
		for _, tt := range tests {
			e := good
			e.MessageID = uuid.Must(uuid.NewV7())
			tt.edit(&e)
			req.Entries = append(req.Entries, e)
		}
		status, reply := postTransfer(t, west, regionUser, regionPass, mustJSON(t, req))
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, reply)
		}
		var resp region.TransferResponse
		if err := json.Unmarshal(reply, &resp); err != nil {
			t.Fatal(err)
		}

		for i, tt := range tests {
			if got := resp.Results[i]; got.Status != tt.status {
				t.Errorf("%s: status %d (%s), want %d", tt.name, got.Status, got.Message, tt.status)
			}
		}
	})
}

func TestTransferEndpointRequiresCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, []string{"east", "west"}, func(cfg *region.Config) {
			if cfg.Local == "west" {
				cfg.Accept = region.Credentials{}
			}
		})
		east, west := c.node("east"), c.node("west")
		body := mustJSON(t, region.TransferRequest{Source: "north", Now: time.Now(), Entries: []region.Envelope{{Kind: region.KindQueueConfig, Queue: "q", Config: &region.QueueConfig{Name: "q"}}}})

		tests := []struct {
			name       string
			n          *node
			user, pass string
			status     int
		}{
			{"no credentials", east, "", "", http.StatusUnauthorized},
			{"wrong password", east, regionUser, "guess", http.StatusUnauthorized},
			{"wrong user", east, "admin", regionPass, http.StatusUnauthorized},
			{"right credentials", east, regionUser, regionPass, http.StatusOK},
			{"transfers off", west, regionUser, regionPass, http.StatusForbidden},
			{"transfers off without credentials", west, "", "", http.StatusForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, reply := postTransfer(t, tt.n, tt.user, tt.pass, body)
				if status != tt.status {
					t.Errorf("status %d (%s), want %d", status, reply, tt.status)
				}
			})
		}
		if west.eng().Exists("q") {
			t.Error("west created a queue although it accepts no transfers")
		}
	})
}

func TestSendsSurviveDestinationOutage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east, west, north := c.node("east"), c.node("west"), c.node("north")
		createQueue(t, east, queue.Config{Name: "orders", Regions: "ALL"})
		waitFor(t, "queue in north", func() bool { return north.eng().Exists("orders") })

		north.stop()
		ids := sendN(t, east, "orders", "ALL", 120)

		// West keeps receiving while north is down.
		waitFor(t, "120 messages in west", func() bool { return total(t, west, "orders") == 120 })
		outbox := region.OutboxName("north")
		waitFor(t, "north reported unreachable", func() bool {
			st, err := east.rt().Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rs := st.Remotes[slices.IndexFunc(st.Remotes, func(r region.RemoteStatus) bool { return r.Name == "north" })]
			return !rs.LastAttempt.IsZero() && !rs.Reachable && rs.LastError != "" && rs.Backlog == 120 && rs.OldestAge > 0
		})
		if got := metricValue(t, east, "qakka_region_transfer_backlog", "north"); got != 120 {
			t.Errorf("backlog metric = %v, want 120", got)
		}
		if got := metricValue(t, east, "qakka_region_transfer_failures_total", "north"); got < 1 {
			t.Errorf("failures metric = %v, want at least 1", got)
		}

		north.restart()
		waitFor(t, "120 messages in north", func() bool { return total(t, north, "orders") == 120 })
		waitFor(t, "empty outbox", func() bool { return total(t, east, outbox) == 0 })
		checkOnce(t, "north", drain(t, north, "orders"), ids)
		checkOnce(t, "west", drain(t, west, "orders"), ids)
		if got := metricValue(t, east, "qakka_region_transfer_transferred_total", "north"); got < 120 {
			t.Errorf("transferred metric = %v, want at least 120", got)
		}
		st, err := east.rt().Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range st.Remotes {
			if !rs.Reachable || rs.Backlog != 0 {
				t.Errorf("region %s: reachable %v, backlog %d after recovery", rs.Name, rs.Reachable, rs.Backlog)
			}
		}
	})
}

func TestSenderRestartDeliversPendingEntries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east, west := c.node("east"), c.node("west")
		createQueue(t, east, queue.Config{Name: "orders"})

		west.stop()
		ids := sendN(t, east, "orders", "west", 40)
		east.stop()
		west.restart()
		east.restart()

		waitFor(t, "40 messages in west", func() bool { return total(t, west, "orders") == 40 })
		checkOnce(t, "west", drain(t, west, "orders"), ids)
	})
}

func TestExpiryWhileUnreachableIsCountedAndAudited(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east, north := c.node("east"), c.node("north")
		createQueue(t, east, queue.Config{Name: "orders"})
		north.stop()

		res, err := east.rt().Send(context.Background(), "orders", "north", []queue.SendRequest{{Data: []byte("short-lived"), Expiration: time.Second}})
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		id := res.Messages[0].MessageID
		outbox := region.OutboxName("north")

		waitFor(t, "the outbox entry to expire", func() bool {
			s, err := east.eng().Stats(context.Background(), outbox)
			return err == nil && s.Totals.Expired == 1 && s.Available+s.Inflight+s.Delayed == 0
		})
		events, err := east.eng().Audit(context.Background(), "orders", id)
		if err != nil {
			t.Fatalf("audit: %v", err)
		}
		var actions []string
		for _, e := range events {
			if e.Queue == outbox {
				actions = append(actions, e.Action)
			}
		}
		if len(actions) == 0 || actions[0] != queue.ActionSent || actions[len(actions)-1] != queue.ActionExpired {
			t.Errorf("outbox events of the message: %v, want sent first and expired last", actions)
		}
		if got := metricValue(t, east, "qakka_region_transfer_expired_total", "north"); got != 1 {
			t.Errorf("expired metric = %v, want 1", got)
		}

		north.restart()
		// Another message proves the path works again; the expired one never
		// arrives.
		ids := sendN(t, east, "orders", "north", 1)
		waitFor(t, "the later message in north", func() bool { return total(t, north, "orders") == 1 })
		checkOnce(t, "north", drain(t, north, "orders"), ids)
	})
}

func TestSenderTriesNextEndpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// A listener that is closed at once leaves an address that refuses
		// connections.
		dead := closedAddress(t)
		c := newCluster(t, b, []string{"east", "west"}, func(cfg *region.Config) {
			for i := range cfg.Remotes {
				cfg.Remotes[i].Endpoints = append([]string{"http://" + dead}, cfg.Remotes[i].Endpoints...)
			}
		})
		east, west := c.node("east"), c.node("west")
		createQueue(t, east, queue.Config{Name: "orders"})

		ids := sendN(t, east, "orders", "west", 20)

		waitFor(t, "20 messages in west", func() bool { return total(t, west, "orders") == 20 })
		checkOnce(t, "west", drain(t, west, "orders"), ids)
		st, err := east.rt().Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Remotes[0].Endpoint; got != west.url() {
			t.Errorf("status endpoint = %q, want the live one %q", got, west.url())
		}
	})
}

func TestConfigValidation(t *testing.T) {
	remote := region.Remote{Name: "west", Endpoints: []string{"http://127.0.0.1:1"}, Credentials: region.Credentials{Username: "u", Password: "p"}}
	tests := []struct {
		name string
		cfg  region.Config
		want string
	}{
		{"keyword as name", region.Config{Local: "ALL"}, "keywords"},
		{"bad local name", region.Config{Local: "a/b"}, "invalid region name"},
		{"remote is local", region.Config{Local: "west", Remotes: []region.Remote{remote}}, "listed twice"},
		{"no endpoints", region.Config{Local: "east", Remotes: []region.Remote{{Name: "west", Credentials: remote.Credentials}}}, "no endpoints"},
		{"bad endpoint", region.Config{Local: "east", Remotes: []region.Remote{{Name: "west", Endpoints: []string{"127.0.0.1:8080"}, Credentials: remote.Credentials}}}, "invalid endpoint"},
		{"no remote credentials", region.Config{Local: "east", Remotes: []region.Remote{{Name: "west", Endpoints: remote.Endpoints}}}, "needs a username and a password"},
		{"accept password only", region.Config{Local: "east", Accept: region.Credentials{Password: "p"}}, "without a username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg.WithDefaults()
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	ok := region.Config{Local: "east", Remotes: []region.Remote{remote}}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// metricValue returns the value of a region metric of n, or -1 when it is
// missing.
func metricValue(t *testing.T, n *node, name, remote string) float64 {
	t.Helper()
	n.mu.Lock()
	reg := n.reg
	n.mu.Unlock()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "region") == remote {
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
