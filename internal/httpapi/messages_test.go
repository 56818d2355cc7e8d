package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
)

func TestAckAndVisibilityTimeout(t *testing.T) { forEachBackend(t, testAckAndVisibilityTimeout) }

func testAckAndVisibilityTimeout(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	const n = 100
	for i := range n {
		s.sendJSON("q", jsonPayload(i))
	}

	var ids []string
	seen := make(map[string]bool)
	for i := range n {
		msgs := s.receive("q", 1)
		if len(msgs) != 1 {
			t.Fatalf("receive %d returned %d messages, want 1", i, len(msgs))
		}
		id := msgs[0].QueueMessageID
		if seen[id] {
			t.Fatalf("queueMessageId %s received twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if msgs := s.receive("q", 1); len(msgs) != 0 {
		t.Fatalf("receive with every message inflight returned %d, want 0", len(msgs))
	}

	for _, id := range ids[:n/2] {
		r := s.request(http.MethodDelete, "/api/queues/q/messages/"+id, "", nil).expect(t, http.StatusOK)
		if string(r.body) != "{}\n" {
			t.Fatalf("ack body %q, want {}", r.body)
		}
	}

	// Past the default visibility timeout of 30 s the other half times out.
	s.clock.Advance(queue.DefaultVisibilityTimeout + time.Second)
	waitFor(t, "the unacked messages to time out", func() bool {
		st := s.stats("q")
		return st.Inflight == 0 && st.Available == n/2
	})

	for _, id := range ids[n/2:] {
		s.request(http.MethodDelete, "/api/queues/q/messages/"+id, "", nil).expectError(t, http.StatusBadRequest, "message not inflight")
	}
	for i := range n / 2 {
		msgs := s.receive("q", 1)
		if len(msgs) != 1 {
			t.Fatalf("receive %d after the timeout returned %d messages, want 1", i, len(msgs))
		}
		m := msgs[0]
		if seen[m.QueueMessageID] {
			t.Fatalf("redelivered message kept its old queueMessageId %s", m.QueueMessageID)
		}
		seen[m.QueueMessageID] = true
		if m.ReceiveCount != 2 {
			t.Errorf("receiveCount %d on redelivery, want 2", m.ReceiveCount)
		}
	}
}

func TestReceiveLongPollWakesOnSend(t *testing.T) { forEachBackend(t, testReceiveLongPollWakesOnSend) }

func testReceiveLongPollWakesOnSend(t *testing.T, b backend) {
	entered := make(chan struct{}, 1)
	s := newTestServer(t, b, func(st *setup) {
		st.wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/messages") {
					entered <- struct{}{}
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	s.createQueue(client.Queue{Name: "q"})

	// The wait is the maximum and the fake clock never moves, so only the
	// send can end this receive.
	done := s.getAsync("/api/queues/q/messages?wait=20000")
	<-entered
	s.sendJSON("q", `{"wake":true}`)

	var r asyncReply
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("long poll did not return after a send")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	var res client.ReceiveResponse
	r.expect(t, http.StatusOK).decode(t, &res)
	if res.Count != 1 || len(res.QueueMessages) != 1 {
		t.Fatalf("long poll returned %d messages, want 1", len(res.QueueMessages))
	}
	if res.QueueMessages[0].Data != `{"wake":true}` {
		t.Errorf("data %q, want the sent payload", res.QueueMessages[0].Data)
	}
}

func TestReceiveLongPollBoundedByCount(t *testing.T) {
	forEachBackend(t, testReceiveLongPollBoundedByCount)
}

func testReceiveLongPollBoundedByCount(t *testing.T, b backend) {
	entered := make(chan struct{}, 1)
	s := newTestServer(t, b, func(st *setup) {
		st.wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/messages") {
					entered <- struct{}{}
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	s.createQueue(client.Queue{Name: "q"})
	done := s.getAsync("/api/queues/q/messages?count=3&wait=20000")
	<-entered

	batch := client.BatchSendRequest{}
	for range 10 {
		batch.Messages = append(batch.Messages, client.BatchSendEntry{Data: json.RawMessage(`{}`)})
	}
	s.doJSON(http.MethodPost, "/api/queues/q/messages/batch", batch).expect(t, http.StatusOK)

	var r asyncReply
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("long poll did not return after a batch send")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	var res client.ReceiveResponse
	r.expect(t, http.StatusOK).decode(t, &res)
	if len(res.QueueMessages) < 1 || len(res.QueueMessages) > 3 {
		t.Fatalf("long poll with count=3 returned %d messages", len(res.QueueMessages))
	}
	if st := s.stats("q"); st.Inflight != int64(len(res.QueueMessages)) || st.Available != 10-st.Inflight {
		t.Errorf("inflight %d available %d, want only the %d returned messages inflight", st.Inflight, st.Available, len(res.QueueMessages))
	}
}

func TestReceiveLongPollEndsEmpty(t *testing.T) { forEachBackend(t, testReceiveLongPollEndsEmpty) }

func testReceiveLongPollEndsEmpty(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	done := s.getAsync("/api/queues/q/messages?wait=2000")

	// Move the fake clock until the receive has registered and its wait
	// has passed.
	var r asyncReply
	waitFor(t, "the long poll to end", func() bool {
		select {
		case r = <-done:
			return true
		default:
			s.clock.Advance(time.Second)
			return false
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if string(r.expect(t, http.StatusOK).body) != `{"count":0,"queueMessages":[]}`+"\n" {
		t.Errorf("empty receive body %s, want {\"count\":0,\"queueMessages\":[]}", r.body)
	}
}

func TestReceiveCount(t *testing.T) { forEachBackend(t, testReceiveCount) }

func testReceiveCount(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	for i := range 10 {
		s.sendJSON("q", jsonPayload(i))
	}

	if got := len(s.receive("q", 3)); got != 3 {
		t.Errorf("count=3 returned %d messages, want 3", got)
	}
	if got := len(s.receive("q", 100)); got != 7 {
		t.Errorf("count=100 returned %d messages, want the 7 left", got)
	}

	var res client.ReceiveResponse
	s.request(http.MethodGet, "/api/queues/q/messages?wait=0", "", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.Count != 0 {
		t.Errorf("receive without count on an empty queue returned %d", res.Count)
	}

	cases := []struct {
		query string
		parts []string
	}{
		{"count=0", []string{"count", "between 1 and 100"}},
		{"count=101", []string{"count", "101", "between 1 and 100"}},
		{"count=-4", []string{"count"}},
		{"count=many", []string{"count", "many"}},
		{"wait=soon", []string{"wait", "soon", "milliseconds"}},
		{"wait=20001", []string{"wait"}},
		{"visibility=1.5", []string{"visibility", "1.5", "seconds"}},
		{"visibility=-1", []string{"visibility"}},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			s.request(http.MethodGet, "/api/queues/q/messages?"+tc.query, "", nil).expectError(t, http.StatusBadRequest, tc.parts...)
		})
	}
}

func TestReceiveVisibility(t *testing.T) { forEachBackend(t, testReceiveVisibility) }

func testReceiveVisibility(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "default"})
	s.createQueue(client.Queue{Name: "short", HandlingTimeoutSec: 10})
	now := testStart.UnixMilli()
	cases := []struct {
		queue string
		query string
		want  int64
	}{
		{"default", "", now + queue.DefaultVisibilityTimeout.Milliseconds()},
		{"short", "", now + 10_000},
		{"short", "&visibility=5", now + 5_000},
	}
	for _, tc := range cases {
		t.Run(tc.queue+tc.query, func(t *testing.T) {
			sent := s.sendJSON(tc.queue, `{}`)
			var res client.ReceiveResponse
			s.request(http.MethodGet, "/api/queues/"+tc.queue+"/messages?wait=0"+tc.query, "", nil).expect(t, http.StatusOK).decode(t, &res)
			if len(res.QueueMessages) != 1 {
				t.Fatalf("received %d messages, want 1", len(res.QueueMessages))
			}
			m := res.QueueMessages[0]
			if m.VisibleUntil != tc.want {
				t.Errorf("visibleUntil %d, want %d", m.VisibleUntil, tc.want)
			}
			if m.MessageID != sent.MessageID || m.QueueMessageID != sent.QueueMessageID {
				t.Errorf("ids %s/%s, want the sent %s/%s", m.MessageID, m.QueueMessageID, sent.MessageID, sent.QueueMessageID)
			}
			if m.SentDate != now || m.CreateDate != now || m.ReceiveCount != 1 || !m.DataReceived || m.ReceivingRegion != queue.DefaultRegion {
				t.Errorf("message fields %+v", m)
			}
		})
	}
}

func TestUnknownQueueIsNotFound(t *testing.T) { forEachBackend(t, testUnknownQueueIsNotFound) }

func testUnknownQueueIsNotFound(t *testing.T, b backend) {
	s := newTestServer(t, b)
	id := uuid.NewString()
	cases := []struct {
		method      string
		path        string
		contentType string
		body        string
	}{
		{http.MethodGet, "/api/queues/nope/config", "", ""},
		{http.MethodPut, "/api/queues/nope/config", "application/json", `{}`},
		{http.MethodDelete, "/api/queues/nope?confirm=true", "", ""},
		{http.MethodPost, "/api/queues/nope/messages", "application/json", `{}`},
		{http.MethodPost, "/api/queues/nope/messages/batch", "application/json", `{"messages":[{"data":1}]}`},
		{http.MethodGet, "/api/queues/nope/messages?wait=0", "", ""},
		{http.MethodGet, "/api/queues/nope/data/" + id, "", ""},
		{http.MethodDelete, "/api/queues/nope/messages/" + id, "", ""},
		{http.MethodPost, "/api/queues/nope/messages/ack", "application/json", `{"queueMessageIds":["` + id + `"]}`},
		{http.MethodPost, "/api/queues/nope/messages/ack", "application/json", `{"queueMessageIds":["bad"]}`},
		{http.MethodPut, "/api/queues/nope/messages/" + id, "", ""},
		{http.MethodPost, "/api/queues/nope/messages/" + id + "/extend", "", ""},
		{http.MethodPost, "/api/queues/nope/messages/" + id + "/extend?visibility=5", "", ""},
		{http.MethodDelete, "/api/queues/nope/messages?confirm=true", "", ""},
		{http.MethodGet, "/api/queues/nope/stats", "", ""},
		{http.MethodGet, "/api/queues/nope/messages/" + id + "/audit", "", ""},
		{http.MethodGet, "/api/queues/nope/peek", "", ""},
		{http.MethodPost, "/api/queues/nope/redrive", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+strings.Replace(tc.path, id, "id", 1), func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			s.request(tc.method, tc.path, tc.contentType, body).expectError(t, http.StatusNotFound, `queue "nope" not found`)
		})
	}
}

func TestAckErrors(t *testing.T) { forEachBackend(t, testAckErrors) }

func testAckErrors(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	s.sendJSON("q", `{}`)
	available := s.sendJSON("q", `{}`)
	m := s.receive("q", 1)[0]

	s.request(http.MethodDelete, "/api/queues/q/messages/not-a-uuid", "", nil).expectError(t, http.StatusBadRequest, "queueMessageId", "not-a-uuid")
	s.request(http.MethodDelete, "/api/queues/q/messages/"+uuid.NewString(), "", nil).expectError(t, http.StatusBadRequest, "message not inflight")
	s.request(http.MethodDelete, "/api/queues/q/messages/"+available.QueueMessageID, "", nil).expectError(t, http.StatusBadRequest, "message not inflight")
	s.request(http.MethodDelete, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK)
	s.request(http.MethodDelete, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expectError(t, http.StatusBadRequest, "message not inflight")
}

func TestGetDataErrors(t *testing.T) { forEachBackend(t, testGetDataErrors) }

func testGetDataErrors(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	s.request(http.MethodPost, "/api/queues/q/messages", "application/octet-stream", []byte("bytes")).expect(t, http.StatusOK)
	m := s.receive("q", 1)[0]

	s.request(http.MethodGet, "/api/queues/q/data/xyz", "", nil).expectError(t, http.StatusBadRequest, "queueMessageId", "xyz")
	s.request(http.MethodGet, "/api/queues/q/data/"+uuid.NewString(), "", nil).expectError(t, http.StatusNotFound, "message not found")
	s.request(http.MethodGet, m.Href, "", nil).expect(t, http.StatusOK)
	s.request(http.MethodDelete, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK)
	s.request(http.MethodGet, m.Href, "", nil).expectError(t, http.StatusNotFound, "message not found")
}

func TestBatchAck(t *testing.T) { forEachBackend(t, testBatchAck) }

func testBatchAck(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	for i := range 3 {
		s.sendJSON("q", jsonPayload(i))
	}
	msgs := s.receive("q", 3)
	stranger := uuid.NewString()
	req := client.BatchAckRequest{QueueMessageIDs: []string{
		msgs[0].QueueMessageID, msgs[1].QueueMessageID, "bad", stranger, msgs[0].QueueMessageID,
	}}

	var res client.BatchAckResponse
	s.doJSON(http.MethodPost, "/api/queues/q/messages/ack", req).expect(t, http.StatusOK).decode(t, &res)
	if res.Count != 2 {
		t.Errorf("count %d, want 2", res.Count)
	}
	wantStatus := []int{200, 200, 400, 400, 400}
	wantPart := []string{"", "", "bad", "not inflight", "not inflight"}
	if len(res.Results) != len(wantStatus) {
		t.Fatalf("%d results, want %d", len(res.Results), len(wantStatus))
	}
	for i, r := range res.Results {
		if r.QueueMessageID != req.QueueMessageIDs[i] {
			t.Errorf("result %d for %q, want %q", i, r.QueueMessageID, req.QueueMessageIDs[i])
		}
		if r.Status != wantStatus[i] {
			t.Errorf("result %d: status %d, want %d (%s)", i, r.Status, wantStatus[i], r.Message)
		}
		if !strings.Contains(r.Message, wantPart[i]) {
			t.Errorf("result %d: message %q does not contain %q", i, r.Message, wantPart[i])
		}
	}
	if st := s.stats("q"); st.Inflight != 1 || st.Totals.Acked != 2 {
		t.Errorf("inflight %d acked %d after the batch, want 1 and 2", st.Inflight, st.Totals.Acked)
	}

	tooMany := client.BatchAckRequest{}
	for range 101 {
		tooMany.QueueMessageIDs = append(tooMany.QueueMessageIDs, uuid.NewString())
	}
	s.doJSON(http.MethodPost, "/api/queues/q/messages/ack", client.BatchAckRequest{}).expectError(t, http.StatusBadRequest, "at least one")
	s.doJSON(http.MethodPost, "/api/queues/q/messages/ack", tooMany).expectError(t, http.StatusBadRequest, "at most 100")
	s.request(http.MethodPost, "/api/queues/q/messages/ack", "application/json", []byte(`{"ids":[]}`)).expectError(t, http.StatusBadRequest, "ids")
}

func TestNack(t *testing.T) { forEachBackend(t, testNack) }

func testNack(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	s.sendJSON("q", `{"n":1}`)
	first := s.receive("q", 1)[0]

	var res client.NackResult
	s.request(http.MethodPut, "/api/queues/q/messages/"+first.QueueMessageID, "", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.QueueMessageID == "" || res.QueueMessageID == first.QueueMessageID {
		t.Fatalf("nack returned queueMessageId %q, want a new one", res.QueueMessageID)
	}
	if res.DeadLettered || res.DeliverDate != testStart.UnixMilli() {
		t.Errorf("nack result %+v, want immediate redelivery", res)
	}
	s.request(http.MethodDelete, "/api/queues/q/messages/"+first.QueueMessageID, "", nil).expectError(t, http.StatusBadRequest, "not inflight")

	second := s.receive("q", 1)
	if len(second) != 1 || second[0].QueueMessageID != res.QueueMessageID || second[0].ReceiveCount != 2 {
		t.Fatalf("after the nack received %+v, want the new id with receiveCount 2", second)
	}

	s.request(http.MethodPut, "/api/queues/q/messages/"+second[0].QueueMessageID+"?delay=1500", "", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.DeliverDate != testStart.UnixMilli()+1500 {
		t.Errorf("deliverDate %d after a nack with delay 1500, want %d", res.DeliverDate, testStart.UnixMilli()+1500)
	}
	if st := s.stats("q"); st.Delayed != 1 || st.Totals.Nacked != 2 {
		t.Errorf("delayed %d nacked %d, want 1 and 2", st.Delayed, st.Totals.Nacked)
	}

	s.request(http.MethodPut, "/api/queues/q/messages/"+uuid.NewString(), "", nil).expectError(t, http.StatusBadRequest, "not inflight")
	s.request(http.MethodPut, "/api/queues/q/messages/zzz", "", nil).expectError(t, http.StatusBadRequest, "zzz")
	s.request(http.MethodPut, "/api/queues/q/messages/"+uuid.NewString()+"?delay=later", "", nil).expectError(t, http.StatusBadRequest, "delay", "later")
}

func TestNackDeadLetters(t *testing.T) { forEachBackend(t, testNackDeadLetters) }

func testNackDeadLetters(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "dlq"})
	s.createQueue(client.Queue{Name: "q", DeadLetterQueue: "dlq", RetryCount: 0})
	sent := s.sendJSON("q", `{"poison":true}`)
	m := s.receive("q", 1)[0]

	var res client.NackResult
	s.request(http.MethodPut, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK).decode(t, &res)
	if !res.DeadLettered || res.QueueMessageID != "" {
		t.Fatalf("nack past the retry count returned %+v, want deadLettered and no new id", res)
	}

	var got []client.QueueMessage
	waitFor(t, "the message in the dead-letter queue", func() bool {
		got = s.receive("dlq", 1)
		return len(got) == 1
	})
	if got[0].SourceQueue != "q" || got[0].MessageID != sent.MessageID || got[0].Data != `{"poison":true}` {
		t.Errorf("dead-lettered message %+v, want sourceQueue q, the same messageId and payload", got[0])
	}
}

func TestExtend(t *testing.T) { forEachBackend(t, testExtend) }

func testExtend(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q", HandlingTimeoutSec: 10})
	s.sendJSON("q", `{}`)
	m := s.receive("q", 1)[0]
	now := testStart.UnixMilli()

	var res client.ExtendResult
	s.request(http.MethodPost, "/api/queues/q/messages/"+m.QueueMessageID+"/extend?visibility=60", "", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.VisibleUntil != now+60_000 || res.QueueMessageID != m.QueueMessageID {
		t.Errorf("extend returned %+v, want visibleUntil %d", res, now+60_000)
	}

	// Past the queue's 10 s timeout the extended message is still inflight.
	s.clock.Advance(30 * time.Second)
	s.request(http.MethodPost, "/api/queues/q/messages/"+m.QueueMessageID+"/extend", "", nil).expect(t, http.StatusOK).decode(t, &res)
	if want := now + 30_000 + 10_000; res.VisibleUntil != want {
		t.Errorf("extend without visibility: visibleUntil %d, want the queue's timeout from now, %d", res.VisibleUntil, want)
	}
	s.request(http.MethodDelete, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK)

	s.request(http.MethodPost, "/api/queues/q/messages/"+m.QueueMessageID+"/extend?visibility=5", "", nil).expectError(t, http.StatusBadRequest, "not inflight")
	s.request(http.MethodPost, "/api/queues/q/messages/"+m.QueueMessageID+"/extend?visibility=-5", "", nil).expectError(t, http.StatusBadRequest, "visibility")
	s.request(http.MethodPost, "/api/queues/q/messages/"+m.QueueMessageID+"/extend?visibility=x", "", nil).expectError(t, http.StatusBadRequest, "visibility", "x")
	s.request(http.MethodPost, "/api/queues/q/messages/bad/extend", "", nil).expectError(t, http.StatusBadRequest, "bad")
}

func TestPurge(t *testing.T) { forEachBackend(t, testPurge) }

func testPurge(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	for i := range 5 {
		s.sendJSON("q", jsonPayload(i))
	}
	s.request(http.MethodPost, "/api/queues/q/messages?delay=60000", "application/json", []byte(`{}`)).expect(t, http.StatusOK)
	s.receive("q", 2)

	s.request(http.MethodDelete, "/api/queues/q/messages", "", nil).expectError(t, http.StatusBadRequest, "confirm")
	if st := s.stats("q"); st.Available != 3 {
		t.Fatalf("available %d after a purge without confirm, want 3", st.Available)
	}

	var res client.PurgeResult
	s.request(http.MethodDelete, "/api/queues/q/messages?confirm=true", "", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.Count != 6 {
		t.Errorf("purged %d, want 6", res.Count)
	}
	st := s.stats("q")
	if st.Available != 0 || st.Inflight != 0 || st.Delayed != 0 || st.Totals.Purged != 6 {
		t.Errorf("stats after purge %+v, want empty with 6 purged", st)
	}
}

func TestPeekAfterReceive(t *testing.T) { forEachBackend(t, testPeekAfterReceive) }

func testPeekAfterReceive(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	for i := range 5 {
		s.sendJSON("q", strconv.Itoa(i))
	}
	m := s.receive("q", 1)[0]

	var page client.PeekPage
	s.request(http.MethodGet, "/api/queues/q/peek?state=inflight", "", nil).expect(t, http.StatusOK).decode(t, &page)
	if len(page.Entries) != 1 || page.Entries[0].QueueMessageID != m.QueueMessageID || page.Entries[0].State != "inflight" {
		t.Fatalf("inflight peek %+v, want the received message", page.Entries)
	}
	if page.Entries[0].DueDate != m.VisibleUntil {
		t.Errorf("dueDate %d, want visibleUntil %d", page.Entries[0].DueDate, m.VisibleUntil)
	}
}
