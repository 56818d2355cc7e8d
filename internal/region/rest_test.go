package region_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/region"
)

// apiClient returns a REST client of n that does not retry.
func apiClient(t *testing.T, n *node) *client.Client {
	t.Helper()
	c, err := client.New(n.url(), client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRESTSendToRegions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		api := apiClient(t, c.node("east"))
		ctx := context.Background()
		if _, _, err := api.CreateQueue(ctx, client.Queue{Name: "orders", Regions: "ALL"}); err != nil {
			t.Fatalf("create: %v", err)
		}

		res, err := api.Send(ctx, "orders", []byte(`{"n":1}`), client.SendOptions{ContentType: "application/json", Regions: "ALL"})
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if !slices.Equal(res.Regions, []string{"east", "north", "west"}) || !slices.Equal(res.PendingRegions, []string{"north", "west"}) {
			t.Errorf("regions %v, pending %v; want east first, then north and west pending", res.Regions, res.PendingRegions)
		}
		if res.QueueMessageID == "" {
			t.Error("no queueMessageId for the local copy")
		}

		remoteOnly, err := api.Send(ctx, "orders", []byte("x"), client.SendOptions{Regions: "REMOTE"})
		if err != nil {
			t.Fatalf("send to REMOTE: %v", err)
		}
		if remoteOnly.QueueMessageID != "" || !slices.Equal(remoteOnly.Regions, []string{"north", "west"}) {
			t.Errorf("send to REMOTE: queueMessageId %q, regions %v; want no local copy", remoteOnly.QueueMessageID, remoteOnly.Regions)
		}

		batch, err := api.SendBatchToRegions(ctx, "orders", "north", []client.BatchSendEntry{{Data: []byte(`1`)}, {Data: []byte(`2`)}, {Base64: "!"}})
		if err != nil {
			t.Fatalf("batch send: %v", err)
		}
		if batch.Count != 2 || batch.Results[2].Status != http.StatusBadRequest || !slices.Equal(batch.PendingRegions, []string{"north"}) {
			t.Errorf("batch: count %d, results %+v, pending %v", batch.Count, batch.Results, batch.PendingRegions)
		}

		want := map[string][]string{
			"east":  {res.MessageID},
			"west":  {res.MessageID, remoteOnly.MessageID},
			"north": {res.MessageID, remoteOnly.MessageID, batch.Results[0].MessageID, batch.Results[1].MessageID},
		}
		for name, ids := range want {
			n := c.node(name)
			waitFor(t, "messages in "+name, func() bool { return total(t, n, "orders") == int64(len(ids)) })
			var uuids []uuid.UUID
			for _, id := range ids {
				uuids = append(uuids, uuid.MustParse(id))
			}
			checkOnce(t, name, drain(t, n, "orders"), uuids)
		}

		// The message's audit trail in east shows its transfers.
		trail, err := api.Audit(ctx, "orders", res.MessageID)
		if err != nil {
			t.Fatalf("audit: %v", err)
		}
		var outboxes []string
		for _, e := range trail.Events {
			if region.IsReserved(e.QueueName) && e.Action == "acked" {
				outboxes = append(outboxes, e.QueueName)
			}
		}
		slices.Sort(outboxes)
		if !slices.Equal(outboxes, []string{"_transfer.north", "_transfer.west"}) {
			t.Errorf("acked outbox entries in the audit trail: %v, want one per remote region", outboxes)
		}
	})
}

func TestRESTRejectsUnknownRegions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		api := apiClient(t, c.node("east"))
		ctx := context.Background()
		if _, _, err := api.CreateQueue(ctx, client.Queue{Name: "orders"}); err != nil {
			t.Fatal(err)
		}

		_, err := api.Send(ctx, "orders", []byte("x"), client.SendOptions{Regions: "west,south"})
		checkAPIError(t, "send", err, http.StatusBadRequest, `"south"`, `"west"`, `"north"`, "LOCAL, ALL, REMOTE")

		_, err = api.SendBatchToRegions(ctx, "orders", "south", []client.BatchSendEntry{{Data: []byte(`1`)}})
		checkAPIError(t, "batch send", err, http.StatusBadRequest, `"south"`)

		_, _, err = api.CreateQueue(ctx, client.Queue{Name: "q2", Regions: "ALL,south"})
		checkAPIError(t, "create", err, http.StatusBadRequest, `"south"`)

		_, err = api.UpdateQueue(ctx, client.Queue{Name: "orders", DefaultDestinations: "south"})
		checkAPIError(t, "update", err, http.StatusBadRequest, "defaultDestinations", `"south"`)
	})
}

func TestRESTReservesOutboxNames(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east := c.node("east")
		api := apiClient(t, east)
		ctx := context.Background()
		outbox := region.OutboxName("west")

		_, _, err := api.CreateQueue(ctx, client.Queue{Name: "_transfer.mine"})
		checkAPIError(t, "create", err, http.StatusBadRequest, region.OutboxPrefix)
		_, _, err = api.CreateQueue(ctx, client.Queue{Name: "q", DeadLetterQueue: outbox})
		checkAPIError(t, "create with an outbox as dead-letter queue", err, http.StatusBadRequest, "deadLetterQueue", region.OutboxPrefix)
		_, err = api.Send(ctx, outbox, []byte("x"), client.SendOptions{})
		checkAPIError(t, "send", err, http.StatusBadRequest, region.OutboxPrefix)
		_, err = api.SendBatch(ctx, outbox, []client.BatchSendEntry{{Data: []byte(`1`)}})
		checkAPIError(t, "batch send", err, http.StatusBadRequest, region.OutboxPrefix)
		_, err = api.Receive(ctx, outbox, client.ReceiveOptions{})
		checkAPIError(t, "receive", err, http.StatusBadRequest, region.OutboxPrefix)
		_, err = api.UpdateQueue(ctx, client.Queue{Name: outbox})
		checkAPIError(t, "update", err, http.StatusBadRequest, region.OutboxPrefix)
		err = api.DeleteQueue(ctx, outbox)
		checkAPIError(t, "delete", err, http.StatusBadRequest, region.OutboxPrefix)

		names, err := api.ListQueues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if region.IsReserved(name) {
				t.Errorf("list shows the outbox %s", name)
			}
		}
		// Operators can still inspect an outbox.
		if _, err := api.Stats(ctx, outbox); err != nil {
			t.Errorf("stats of the outbox: %v", err)
		}
		if !east.eng().Exists(outbox) {
			t.Error("the outbox is gone")
		}
	})
}

func TestRESTStatusReportsRegions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b, threeRegions, nil)
		east, north := c.node("east"), c.node("north")
		api := apiClient(t, east)
		ctx := context.Background()
		if _, _, err := api.CreateQueue(ctx, client.Queue{Name: "orders"}); err != nil {
			t.Fatal(err)
		}

		st, err := api.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Regions == nil || st.Regions.Local != "east" || len(st.Regions.Remotes) != 2 {
			t.Fatalf("regions section %+v, want east with two remotes", st.Regions)
		}
		for _, rs := range st.Regions.Remotes {
			if rs.Reachable != nil {
				t.Errorf("%s: reachable %v before any transfer, want null", rs.Name, *rs.Reachable)
			}
		}

		north.stop()
		if _, err := api.Send(ctx, "orders", []byte("x"), client.SendOptions{Regions: "ALL"}); err != nil {
			t.Fatalf("send while north is down: %v", err)
		}
		waitFor(t, "status of north and west", func() bool {
			st, err = api.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]client.RemoteStatus{}
			for _, rs := range st.Regions.Remotes {
				byName[rs.Name] = rs
			}
			w, n := byName["west"], byName["north"]
			return w.Reachable != nil && *w.Reachable && w.Backlog == 0 && w.Transferred == 1 &&
				n.Reachable != nil && !*n.Reachable && n.Backlog == 1 && n.LastError != "" && n.Failures > 0 &&
				slices.Equal(n.Endpoints, []string{north.url()})
		})
	})
}

// checkAPIError fails unless err is a REST error with status whose message
// contains every part.
func checkAPIError(t *testing.T, op string, err error, status int, parts ...string) {
	t.Helper()
	var apiErr *client.Error
	if !errors.As(err, &apiErr) {
		t.Errorf("%s: error %v, want HTTP %d", op, err, status)
		return
	}
	if apiErr.StatusCode != status {
		t.Errorf("%s: status %d (%s), want %d", op, apiErr.StatusCode, apiErr.Message, status)
	}
	for _, p := range parts {
		if !strings.Contains(apiErr.Message, p) {
			t.Errorf("%s: message %q does not contain %q", op, apiErr.Message, p)
		}
	}
}
