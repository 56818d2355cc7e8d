package httpapi

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/qakka/qakka/client"
)

func TestCreateQueueLocationAndConfig(t *testing.T) {
	forEachBackend(t, testCreateQueueLocationAndConfig)
}

func testCreateQueueLocationAndConfig(t *testing.T, b backend) {
	s := newTestServer(t, b)

	r := s.doJSON(http.MethodPost, "/api/queues", client.Queue{Name: "q1"}).expect(t, http.StatusCreated)
	if loc := r.header.Get("Location"); loc != "/api/queues/q1" {
		t.Errorf("Location %q, want /api/queues/q1", loc)
	}
	var created client.Response
	r.decode(t, &created)
	if len(created.Queues) != 1 || created.Queues[0].Name != "q1" {
		t.Fatalf("create returned %+v, want one queue named q1", created.Queues)
	}

	var got client.Response
	s.request(http.MethodGet, "/api/queues/q1/config", "", nil).expect(t, http.StatusOK).decode(t, &got)
	if len(got.Queues) != 1 {
		t.Fatalf("config returned %d queues, want 1", len(got.Queues))
	}
	q := got.Queues[0]
	if q.Name != "q1" {
		t.Errorf("name %q, want q1", q.Name)
	}
	if q.QueueType != client.QueueTypeMultiRegion {
		t.Errorf("queueType %q, want %s", q.QueueType, client.QueueTypeMultiRegion)
	}
	if q.CreateDate != testStart.UnixMilli() {
		t.Errorf("createDate %d, want %d", q.CreateDate, testStart.UnixMilli())
	}

	s.request(http.MethodDelete, "/api/queues/q1?confirm=true", "", nil).expect(t, http.StatusOK)
}

func TestCreateQueueExistingReturnsStored(t *testing.T) {
	forEachBackend(t, testCreateQueueExistingReturnsStored)
}

func testCreateQueueExistingReturnsStored(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q", RetryCount: 3, HandlingTimeoutSec: 10})

	r := s.doJSON(http.MethodPost, "/api/queues", client.Queue{Name: "q", RetryCount: 7}).expect(t, http.StatusOK)
	if loc := r.header.Get("Location"); loc != "" {
		t.Errorf("Location %q on an existing queue, want none", loc)
	}
	var resp client.Response
	r.decode(t, &resp)
	if got := resp.Queues[0]; got.RetryCount != 3 || got.HandlingTimeoutSec != 10 {
		t.Errorf("create of an existing queue returned %+v, want the stored retryCount 3 and handlingTimeoutSec 10", got)
	}
}

func TestQueueConfigRoundTrip(t *testing.T) { forEachBackend(t, testQueueConfigRoundTrip) }

func testQueueConfigRoundTrip(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "dlq"})
	want := client.Queue{
		Name:                "q",
		QueueType:           client.QueueTypeMultiRegion,
		Regions:             "LOCAL",
		DefaultDestinations: "LOCAL",
		DefaultDelayMs:      1500,
		RetryCount:          4,
		HandlingTimeoutSec:  45,
		DeadLetterQueue:     "dlq",
		MaxMessageSize:      4096,
		RetentionSec:        3600,
		ReceiveWaitMs:       250,
		Tags:                map[string]string{"team": "billing"},
	}
	s.createQueue(want)

	var resp client.Response
	s.request(http.MethodGet, "/api/queues/q/config", "", nil).expect(t, http.StatusOK).decode(t, &resp)
	got := resp.Queues[0]
	got.CreateDate, got.UpdateDate = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config\n got %+v\nwant %+v", got, want)
	}
}

func TestUpdateConfig(t *testing.T) { forEachBackend(t, testUpdateConfig) }

func testUpdateConfig(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q", RetryCount: 3})

	var resp client.Response
	s.doJSON(http.MethodPut, "/api/queues/q/config", client.Queue{HandlingTimeoutSec: 60}).
		expect(t, http.StatusOK).decode(t, &resp)
	if got := resp.Queues[0]; got.Name != "q" || got.HandlingTimeoutSec != 60 {
		t.Errorf("update returned %+v, want name q and handlingTimeoutSec 60", got)
	}

	s.request(http.MethodGet, "/api/queues/q/config", "", nil).expect(t, http.StatusOK).decode(t, &resp)
	got := resp.Queues[0]
	if got.HandlingTimeoutSec != 60 {
		t.Errorf("handlingTimeoutSec %d after update, want 60", got.HandlingTimeoutSec)
	}
	if got.RetryCount != 0 {
		t.Errorf("retryCount %d after an update without it, want 0 (an update replaces the whole configuration)", got.RetryCount)
	}
}

func TestUpdateConfigErrors(t *testing.T) { forEachBackend(t, testUpdateConfigErrors) }

func testUpdateConfigErrors(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})

	s.doJSON(http.MethodPut, "/api/queues/missing/config", client.Queue{}).expectError(t, http.StatusNotFound, `"missing"`)
	s.doJSON(http.MethodPut, "/api/queues/q/config", client.Queue{Name: "other"}).expectError(t, http.StatusBadRequest, "name", "other")
	s.doJSON(http.MethodPut, "/api/queues/q/config", client.Queue{HandlingTimeoutSec: -1}).expectError(t, http.StatusBadRequest, "handlingTimeoutSec")
	s.request(http.MethodPut, "/api/queues/q/config", "application/json", nil).expectError(t, http.StatusBadRequest, "empty")
}

func TestCreateQueueErrors(t *testing.T) { forEachBackend(t, testCreateQueueErrors) }

func testCreateQueueErrors(t *testing.T, b backend) {
	s := newTestServer(t, b)
	cases := []struct {
		name        string
		contentType string
		body        string
		status      int
		parts       []string
	}{
		{"empty name", "application/json", `{"name":""}`, http.StatusBadRequest, []string{"queue name"}},
		{"bad name", "application/json", `{"name":"a/b"}`, http.StatusBadRequest, []string{"a/b"}},
		{"own dead-letter queue", "application/json", `{"name":"q","deadLetterQueue":"q"}`, http.StatusBadRequest, []string{"deadLetterQueue"}},
		{"negative delay", "application/json", `{"name":"q","defaultDelayMs":-5}`, http.StatusBadRequest, []string{"defaultDelayMs"}},
		{"overflowing timeout", "application/json", `{"name":"q","handlingTimeoutSec":9223372036854775807}`, http.StatusBadRequest, []string{"handlingTimeoutSec"}},
		{"unknown queue type", "application/json", `{"name":"q","queueType":"_FANCY"}`, http.StatusBadRequest, []string{"queueType", "_FANCY"}},
		{"unknown field", "application/json", `{"name":"q","retries":3}`, http.StatusBadRequest, []string{"retries"}},
		{"wrong type", "application/json", `{"name":"q","retryCount":"3"}`, http.StatusBadRequest, []string{"retryCount", "number"}},
		{"broken JSON", "application/json", `{"name":`, http.StatusBadRequest, []string{"request body"}},
		{"two values", "application/json", `{"name":"q"} {"name":"r"}`, http.StatusBadRequest, []string{"one JSON value"}},
		{"empty body", "application/json", ``, http.StatusBadRequest, []string{"empty"}},
		{"not JSON", "text/plain", `{"name":"q"}`, http.StatusUnsupportedMediaType, []string{"text/plain"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.request(http.MethodPost, "/api/queues", tc.contentType, []byte(tc.body)).expectError(t, tc.status, tc.parts...)
		})
	}
}

func TestListQueuesBareArray(t *testing.T) { forEachBackend(t, testListQueuesBareArray) }

func testListQueuesBareArray(t *testing.T, b backend) {
	s := newTestServer(t, b)

	var names []string
	s.request(http.MethodGet, "/api/queues", "", nil).expect(t, http.StatusOK).decode(t, &names)
	if names == nil || len(names) != 0 {
		t.Errorf("list of no queues %v, want an empty array", names)
	}

	s.createQueue(client.Queue{Name: "b"})
	s.createQueue(client.Queue{Name: "a"})
	s.request(http.MethodGet, "/api/queues", "", nil).expect(t, http.StatusOK).decode(t, &names)
	if !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Errorf("list %v, want [a b]", names)
	}
}

func TestDeleteQueue(t *testing.T) { forEachBackend(t, testDeleteQueue) }

func testDeleteQueue(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})

	s.request(http.MethodDelete, "/api/queues/q", "", nil).expectError(t, http.StatusBadRequest, "confirm", "must be true")
	s.request(http.MethodDelete, "/api/queues/q?confirm=yes", "", nil).expectError(t, http.StatusBadRequest, "confirm")
	s.request(http.MethodGet, "/api/queues/q/config", "", nil).expect(t, http.StatusOK)

	r := s.request(http.MethodDelete, "/api/queues/q?confirm=TRUE", "", nil).expect(t, http.StatusOK)
	if string(r.body) != "{}\n" {
		t.Errorf("delete body %q, want {}", r.body)
	}
	s.request(http.MethodGet, "/api/queues/q/config", "", nil).expectError(t, http.StatusNotFound, `queue "q" not found`)
	s.request(http.MethodDelete, "/api/queues/q?confirm=true", "", nil).expectError(t, http.StatusNotFound, `"q"`)
}
