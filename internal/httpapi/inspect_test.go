package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/client"
)

func TestStats(t *testing.T) { forEachBackend(t, testStats) }

func testStats(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "dlq"})
	s.createQueue(client.Queue{Name: "q", DeadLetterQueue: "dlq"})
	for i := range 3 {
		s.sendJSON("q", jsonPayload(i))
	}
	s.request(http.MethodPost, "/api/queues/q/messages?delay=60000", "application/json", []byte(`{}`)).expect(t, http.StatusOK)
	s.sendJSON("dlq", `{}`)
	m := s.receive("q", 1)[0]
	s.request(http.MethodDelete, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK)
	s.receive("q", 1)
	s.clock.Advance(1500 * time.Millisecond)

	want := client.Stats{
		QueueName:            "q",
		Available:            1,
		Inflight:             1,
		Delayed:              1,
		DeadLettered:         1,
		OldestAvailableAgeMs: 1500,
		Totals:               client.Totals{Sent: 4, Received: 2, Acked: 1},
	}
	if got := s.stats("q"); got != want {
		t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}
}

func TestAudit(t *testing.T) { forEachBackend(t, testAudit) }

func testAudit(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	sent := s.sendJSON("q", `{}`)
	m := s.receive("q", 1)[0]
	s.request(http.MethodDelete, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK)

	var trail client.AuditTrail
	s.request(http.MethodGet, "/api/queues/q/messages/"+sent.MessageID+"/audit", "", nil).expect(t, http.StatusOK).decode(t, &trail)
	if trail.MessageID != sent.MessageID {
		t.Errorf("trail of %s, want %s", trail.MessageID, sent.MessageID)
	}
	wantActions := []string{"sent", "received", "acked"}
	if len(trail.Events) != len(wantActions) {
		t.Fatalf("events %+v, want %v", trail.Events, wantActions)
	}
	for i, ev := range trail.Events {
		if ev.Action != wantActions[i] {
			t.Errorf("event %d: action %q, want %q", i, ev.Action, wantActions[i])
		}
		if ev.QueueName != "q" || ev.MessageID != sent.MessageID || ev.QueueMessageID != sent.QueueMessageID {
			t.Errorf("event %d: %+v, want queue q and the sent ids", i, ev)
		}
		if ev.Date != testStart.UnixMilli() {
			t.Errorf("event %d: date %d, want %d", i, ev.Date, testStart.UnixMilli())
		}
	}

	s.request(http.MethodGet, "/api/queues/q/messages/"+uuid.NewString()+"/audit", "", nil).expectError(t, http.StatusNotFound, "message not found")
	s.request(http.MethodGet, "/api/queues/q/messages/nope/audit", "", nil).expectError(t, http.StatusBadRequest, "messageId", "nope")
}

func TestPeekPages(t *testing.T) { forEachBackend(t, testPeekPages) }

func testPeekPages(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	var sent []client.SendResponse
	for i := range 5 {
		sent = append(sent, s.sendJSON("q", strconv.Itoa(i)))
	}
	s.request(http.MethodPost, "/api/queues/q/messages?delay=1000", "application/octet-stream", []byte("xyz")).expect(t, http.StatusOK)

	var all client.PeekPage
	s.request(http.MethodGet, "/api/queues/q/peek", "", nil).expect(t, http.StatusOK).decode(t, &all)
	if len(all.Entries) != 6 || all.Next != "" {
		t.Fatalf("peek with the default limit returned %d entries and next %q, want 6 and none", len(all.Entries), all.Next)
	}
	if e := all.Entries[5]; e.State != "delayed" || e.Size != 3 || e.ContentType != "application/octet-stream" || e.DueDate != testStart.UnixMilli()+1000 {
		t.Errorf("delayed entry %+v", e)
	}

	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatalf("more pages than expected; cursor %q", cursor)
		}
		var page client.PeekPage
		s.request(http.MethodGet, "/api/queues/q/peek?state=available&limit=2&cursor="+url.QueryEscape(cursor), "", nil).
			expect(t, http.StatusOK).decode(t, &page)
		for _, e := range page.Entries {
			if e.State != "available" {
				t.Errorf("state %q in a peek of available messages", e.State)
			}
			ids = append(ids, e.QueueMessageID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(ids) != len(sent) {
		t.Fatalf("paged through %d available entries, want %d", len(ids), len(sent))
	}
	for i, id := range ids {
		if id != sent[i].QueueMessageID {
			t.Errorf("entry %d is %s, want %s in send order", i, id, sent[i].QueueMessageID)
		}
	}
	if st := s.stats("q"); st.Available != 5 {
		t.Errorf("available %d after peeks, want 5 (peek must not receive)", st.Available)
	}

	cases := []struct {
		query string
		parts []string
	}{
		{"limit=0", []string{"limit", "between 1 and 1000"}},
		{"limit=1001", []string{"limit", "1001"}},
		{"limit=ten", []string{"limit", "ten"}},
		{"state=gone", []string{"state", "gone"}},
		{"cursor=garbage", []string{"cursor", "garbage"}},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			s.request(http.MethodGet, "/api/queues/q/peek?"+tc.query, "", nil).expectError(t, http.StatusBadRequest, tc.parts...)
		})
	}
}

func TestRedrive(t *testing.T) { forEachBackend(t, testRedrive) }

func testRedrive(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "dlq"})
	s.createQueue(client.Queue{Name: "q", DeadLetterQueue: "dlq", RetryCount: 0})
	for i := range 3 {
		s.sendJSON("q", jsonPayload(i))
	}
	for _, m := range s.receive("q", 3) {
		s.request(http.MethodPut, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK)
	}
	waitFor(t, "three dead-lettered messages", func() bool { return s.stats("dlq").Available == 3 })
	s.sendJSON("dlq", `{"direct":true}`)

	var res client.RedriveResult
	s.request(http.MethodPost, "/api/queues/dlq/redrive?max=1", "", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.Moved != 1 {
		t.Errorf("redrive max=1 moved %d, want 1", res.Moved)
	}
	s.request(http.MethodPost, "/api/queues/dlq/redrive", "", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.Moved != 2 || res.Skipped != 1 {
		t.Errorf("redrive of the rest: %+v, want 2 moved and the directly sent one skipped", res)
	}
	waitFor(t, "the redriven messages", func() bool { return s.stats("q").Available == 3 })

	s.request(http.MethodPost, "/api/queues/dlq/redrive?max=-1", "", nil).expectError(t, http.StatusBadRequest, "max")
	s.request(http.MethodPost, "/api/queues/dlq/redrive?max=all", "", nil).expectError(t, http.StatusBadRequest, "max", "all")
}

func TestStatus(t *testing.T) { forEachBackend(t, testStatus) }

func testStatus(t *testing.T, b backend) {
	started := time.Now().Add(-90 * time.Second).Truncate(time.Millisecond)
	s := newTestServer(t, b, func(st *setup) {
		st.api.Region = "eu-west"
		st.api.StartedAt = started
	})

	var got client.Status
	s.request(http.MethodGet, "/api/status", "", nil).expect(t, http.StatusOK).decode(t, &got)
	if got.Name != "Qakka" || got.Version != "test" || got.Storage != b.Name || got.Region != "eu-west" {
		t.Errorf("status %+v", got)
	}
	if got.StartDate != started.UnixMilli() {
		t.Errorf("startDate %d, want %d", got.StartDate, started.UnixMilli())
	}
	if got.UptimeSec < 90 {
		t.Errorf("uptimeSec %d, want at least 90", got.UptimeSec)
	}
	s.request(http.MethodPost, "/api/queues/q/messages?regions=eu-west", "application/json", []byte("{}")).expectError(t, http.StatusNotFound, `"q"`)
	s.createQueue(client.Queue{Name: "q"})
	s.request(http.MethodPost, "/api/queues/q/messages?regions=eu-west", "application/json", []byte("{}")).expect(t, http.StatusOK)
}
