package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/qakka/qakka/client"
)

// jsonPayload is the payload the original Qakka's REST test sent.
func jsonPayload(i int) string {
	return fmt.Sprintf(`{"message":"this is message #%d","valid":true}`, i)
}

func TestSendJSONThenReceiveEach(t *testing.T) { forEachBackend(t, testSendJSONThenReceiveEach) }

func testSendJSONThenReceiveEach(t *testing.T, b backend) {
	variants := []struct {
		name        string
		contentType string
		query       string
	}{
		{"application/json", "application/json", ""},
		{"octet-stream with contentType", "application/octet-stream", "?contentType=application/json"},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s := newTestServer(t, b)
			s.createQueue(client.Queue{Name: "q"})

			const n = 100
			for i := range n {
				var res client.SendResponse
				s.request(http.MethodPost, "/api/queues/q/messages"+v.query, v.contentType, []byte(jsonPayload(i))).
					expect(t, http.StatusOK).decode(t, &res)
				if res.Count != 1 || res.MessageID == "" || res.QueueMessageID == "" {
					t.Fatalf("send %d returned %+v, want count 1 and both ids", i, res)
				}
			}

			seen := make(map[string]bool)
			for i := range n {
				msgs := s.receive("q", 1)
				if len(msgs) != 1 {
					t.Fatalf("receive %d returned %d messages, want 1", i, len(msgs))
				}
				m := msgs[0]
				if seen[m.QueueMessageID] {
					t.Fatalf("queueMessageId %s received twice", m.QueueMessageID)
				}
				seen[m.QueueMessageID] = true
				if m.QueueName != "q" {
					t.Errorf("queueName %q, want q", m.QueueName)
				}
				if m.Href != "" {
					t.Errorf("href %q on a JSON message, want none", m.Href)
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(m.Data), &body); err != nil {
					t.Fatalf("data %q is not JSON: %v", m.Data, err)
				}
				if body["valid"] != true {
					t.Errorf("data %q lacks valid=true", m.Data)
				}
			}
			if len(seen) != n {
				t.Errorf("%d distinct ids, want %d", len(seen), n)
			}
			if msgs := s.receive("q", 1); len(msgs) != 0 {
				t.Errorf("receive after draining returned %d messages, want 0", len(msgs))
			}
		})
	}
}

func TestSendBinaryThenFetchData(t *testing.T) { forEachBackend(t, testSendBinaryThenFetchData) }

func testSendBinaryThenFetchData(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	// 11,188 bytes, the size of the JPEG the original test sent.
	image := make([]byte, 11188)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range image {
		image[i] = byte(rng.UintN(256))
	}

	const n = 100
	for range n {
		s.request(http.MethodPost, "/api/queues/q/messages?contentType=image/jpg", "application/octet-stream", image).expect(t, http.StatusOK)
	}

	seen := make(map[string]bool)
	for i := range n {
		msgs := s.receive("q", 1)
		if len(msgs) != 1 {
			t.Fatalf("receive %d returned %d messages, want 1", i, len(msgs))
		}
		m := msgs[0]
		if seen[m.QueueMessageID] {
			t.Fatalf("queueMessageId %s received twice", m.QueueMessageID)
		}
		seen[m.QueueMessageID] = true
		if m.Data != "" {
			t.Fatalf("binary message carries data %.20q", m.Data)
		}
		if want := "/api/queues/q/data/" + m.QueueMessageID; m.Href != want {
			t.Fatalf("href %q, want %q", m.Href, want)
		}
		if m.ContentType != "image/jpg" {
			t.Errorf("contentType %q, want image/jpg", m.ContentType)
		}

		r := s.request(http.MethodGet, m.Href, "", nil).expect(t, http.StatusOK)
		if ct := r.header.Get("Content-Type"); ct != "image/jpg" {
			t.Errorf("data Content-Type %q, want image/jpg", ct)
		}
		if !bytes.Equal(r.body, image) {
			t.Fatalf("data endpoint returned %d bytes that differ from the %d sent", len(r.body), len(image))
		}
	}
}

func TestSendContentTypes(t *testing.T) { forEachBackend(t, testSendContentTypes) }

func testSendContentTypes(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	cases := []struct {
		name        string
		contentType string
		query       string
		body        string
		wantStored  string
		wantInline  bool
	}{
		{"json with charset", "application/json; charset=UTF-8", "", `[1,2]`, "application/json", true},
		{"json in upper case", "Application/JSON", "", `"text"`, "application/json", true},
		{"json type param with params", "application/octet-stream", "?contentType=" + url.QueryEscape("Application/JSON; charset=utf-8"), `{"a":1}`, "Application/JSON; charset=utf-8", true},
		{"structured json param", "application/octet-stream", "?contentType=application/vnd.api%2Bjson", `{"a":1}`, "application/vnd.api+json", true},
		{"structured json header", "application/problem+json", "", `{"a":1}`, "application/problem+json", true},
		{"octet-stream", "application/octet-stream", "", "\x00\x01", "application/octet-stream", false},
		{"text kept as sent", "text/plain; charset=utf-8", "", "hello", "text/plain; charset=utf-8", false},
		{"image header", "image/png", "", "\x89PNG", "image/png", false},
		{"empty binary", "application/octet-stream", "", "", "application/octet-stream", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.request(http.MethodPost, "/api/queues/q/messages"+tc.query, tc.contentType, []byte(tc.body)).expect(t, http.StatusOK)
			msgs := s.receive("q", 1)
			if len(msgs) != 1 {
				t.Fatalf("received %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.ContentType != tc.wantStored {
				t.Errorf("contentType %q, want %q", m.ContentType, tc.wantStored)
			}
			if tc.wantInline {
				if m.Data != tc.body || m.Href != "" {
					t.Errorf("data %q href %q, want data %q inline", m.Data, m.Href, tc.body)
				}
			} else {
				if m.Data != "" || m.Href == "" {
					t.Fatalf("data %q href %q, want an href", m.Data, m.Href)
				}
				r := s.request(http.MethodGet, m.Href, "", nil).expect(t, http.StatusOK)
				if string(r.body) != tc.body {
					t.Errorf("data endpoint returned %q, want %q", r.body, tc.body)
				}
				if ct := r.header.Get("Content-Type"); ct != tc.wantStored {
					t.Errorf("data Content-Type %q, want %q", ct, tc.wantStored)
				}
			}
			s.request(http.MethodDelete, "/api/queues/q/messages/"+m.QueueMessageID, "", nil).expect(t, http.StatusOK)
		})
	}
}

func TestSendErrors(t *testing.T) { forEachBackend(t, testSendErrors) }

func testSendErrors(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	cases := []struct {
		name        string
		path        string
		contentType string
		body        string
		status      int
		parts       []string
	}{
		{"unknown queue", "/api/queues/nope/messages", "application/octet-stream", "x", http.StatusNotFound, []string{`"nope"`}},
		{"missing Content-Type", "/api/queues/q/messages", "", "{}", http.StatusUnsupportedMediaType, []string{"missing Content-Type", "application/json", "application/octet-stream"}},
		{"unparsable Content-Type", "/api/queues/q/messages", "not a type", "{}", http.StatusUnsupportedMediaType, []string{"not a type"}},
		{"Content-Type without subtype", "/api/queues/q/messages", "json", "{}", http.StatusUnsupportedMediaType, []string{"json"}},
		{"invalid JSON", "/api/queues/q/messages", "application/json", "{oops", http.StatusBadRequest, []string{"not valid JSON at byte", "Content-Type application/json", "fix the JSON"}},
		{"empty JSON", "/api/queues/q/messages", "application/json", "", http.StatusBadRequest, []string{"JSON"}},
		{"JSON not UTF-8", "/api/queues/q/messages", "application/json", "\"\xff\"", http.StatusBadRequest, []string{"UTF-8"}},
		{"invalid JSON by param", "/api/queues/q/messages?contentType=application/json", "application/octet-stream", "{oops", http.StatusBadRequest, []string{"not valid JSON", "contentType=application/json", "fix the JSON", "leave out the JSON contentType"}},
		{"param with JSON body", "/api/queues/q/messages?contentType=image/png", "application/json", "{}", http.StatusBadRequest, []string{"contentType", "image/png"}},
		{"param with other body", "/api/queues/q/messages?contentType=image/png", "image/jpeg", "x", http.StatusBadRequest, []string{"contentType", "image/jpeg"}},
		{"bad param", "/api/queues/q/messages?contentType=" + url.QueryEscape("no type"), "application/octet-stream", "x", http.StatusBadRequest, []string{"contentType", "no type"}},
		{"bogus delay", "/api/queues/q/messages?delay=" + url.QueryEscape("bogus value"), "application/json", "{}", http.StatusBadRequest, []string{"delay", "bogus value", "milliseconds"}},
		{"negative delay", "/api/queues/q/messages?delay=-1", "application/json", "{}", http.StatusBadRequest, []string{"delay"}},
		{"huge delay", "/api/queues/q/messages?delay=9223372036854775807", "application/json", "{}", http.StatusBadRequest, []string{"delay"}},
		{"bogus expiration", "/api/queues/q/messages?expiration=" + url.QueryEscape("bogus value"), "application/json", "{}", http.StatusBadRequest, []string{"expiration", "bogus value", "seconds"}},
		{"zero expiration", "/api/queues/q/messages?expiration=0", "application/json", "{}", http.StatusBadRequest, []string{"expiration"}},
		{"delay past expiration", "/api/queues/q/messages?delay=10000&expiration=5", "application/json", "{}", http.StatusBadRequest, []string{"delay"}},
		{"unknown region", "/api/queues/q/messages?regions=mars", "application/json", "{}", http.StatusBadRequest, []string{"regions", "mars", "LOCAL"}},
		{"unknown region in list", "/api/queues/q/messages?regions=LOCAL,mars", "application/json", "{}", http.StatusBadRequest, []string{"mars"}},
		{"no remote region", "/api/queues/q/messages?regions=REMOTE", "application/json", "{}", http.StatusBadRequest, []string{"REMOTE", "no remote regions"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.request(http.MethodPost, tc.path, tc.contentType, []byte(tc.body)).expectError(t, tc.status, tc.parts...)
		})
	}
	if st := s.stats("q"); st.Totals.Sent != 0 {
		t.Errorf("%d messages stored by rejected sends, want 0", st.Totals.Sent)
	}
}

func TestSendParams(t *testing.T) { forEachBackend(t, testSendParams) }

func testSendParams(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q", DefaultDelayMs: 2000, RetentionSec: 600})
	now := testStart.UnixMilli()
	cases := []struct {
		query          string
		wantDeliver    int64
		wantExpiration int64
	}{
		{"", now + 2000, now + 600_000},
		{"?delay=&expiration=", now + 2000, now + 600_000},
		{"?delay=NONE&expiration=NEVER", now + 2000, now + 600_000},
		{"?delay=none&expiration=never", now + 2000, now + 600_000},
		{"?delay=0", now, now + 600_000},
		{"?delay=5&expiration=5", now + 5, now + 5000},
		{"?regions=LOCAL", now + 2000, now + 600_000},
		{"?regions=ALL", now + 2000, now + 600_000},
		{"?regions=local", now + 2000, now + 600_000},
		{"?regions=LOCAL,local", now + 2000, now + 600_000},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			var res client.SendResponse
			s.request(http.MethodPost, "/api/queues/q/messages"+tc.query, "application/json", []byte("{}")).
				expect(t, http.StatusOK).decode(t, &res)
			if res.DeliverDate != tc.wantDeliver {
				t.Errorf("deliverDate %d, want %d", res.DeliverDate, tc.wantDeliver)
			}
			if res.ExpirationDate != tc.wantExpiration {
				t.Errorf("expirationDate %d, want %d", res.ExpirationDate, tc.wantExpiration)
			}
		})
	}
}

func TestSendDelayHonoured(t *testing.T) { forEachBackend(t, testSendDelayHonoured) }

func testSendDelayHonoured(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q"})
	s.request(http.MethodPost, "/api/queues/q/messages?delay=5000", "application/json", []byte(`{"late":true}`)).expect(t, http.StatusOK)

	if msgs := s.receive("q", 1); len(msgs) != 0 {
		t.Fatalf("a delayed message was received before its delay")
	}
	if st := s.stats("q"); st.Delayed != 1 {
		t.Fatalf("delayed %d, want 1", st.Delayed)
	}

	s.clock.Advance(5 * time.Second)
	var got []client.QueueMessage
	waitFor(t, "the delayed message", func() bool {
		got = s.receive("q", 1)
		return len(got) == 1
	})
	if got[0].Data != `{"late":true}` {
		t.Errorf("data %q, want the delayed payload", got[0].Data)
	}
}

func TestSendTooLarge(t *testing.T) { forEachBackend(t, testSendTooLarge) }

func testSendTooLarge(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q", MaxMessageSize: 1024})

	s.request(http.MethodPost, "/api/queues/q/messages", "application/octet-stream", make([]byte, 1024)).expect(t, http.StatusOK)
	s.request(http.MethodPost, "/api/queues/q/messages", "application/octet-stream", make([]byte, 1025)).
		expectError(t, http.StatusRequestEntityTooLarge, "1024")
	s.request(http.MethodPost, "/api/queues/q/messages", "application/json", []byte(`"`+strings.Repeat("a", 2000)+`"`)).
		expectError(t, http.StatusRequestEntityTooLarge, "1024")

	// Without a Content-Length the body is cut off while it is read.
	chunked := io.MultiReader(bytes.NewReader(make([]byte, 1000)), bytes.NewReader(make([]byte, 1000)))
	s.requestReader(http.MethodPost, "/api/queues/q/messages", "application/octet-stream", chunked).
		expectError(t, http.StatusRequestEntityTooLarge, "1024")

	if st := s.stats("q"); st.Totals.Sent != 1 {
		t.Errorf("%d messages stored, want only the one within the limit", st.Totals.Sent)
	}
}

func TestSendBatch(t *testing.T) { forEachBackend(t, testSendBatch) }

func testSendBatch(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q", MaxMessageSize: 64})
	delay := int64(1000)
	negative := int64(-1)
	req := client.BatchSendRequest{Messages: []client.BatchSendEntry{
		{ID: "json", Data: json.RawMessage(`{"n":1}`)},
		{ID: "binary", Base64: base64.StdEncoding.EncodeToString([]byte{0, 1, 2}), ContentType: "image/png"},
		{ID: "both", Data: json.RawMessage(`1`), Base64: "AA=="},
		{ID: "neither"},
		{ID: "bad base64", Base64: "***"},
		{ID: "too large", Base64: base64.StdEncoding.EncodeToString(make([]byte, 65))},
		{ID: "bad JSON in base64", Base64: base64.StdEncoding.EncodeToString([]byte("{oops")), ContentType: "application/json"},
		{ID: "data with binary type", Data: json.RawMessage(`1`), ContentType: "image/png"},
		{ID: "negative delay", Data: json.RawMessage(`2`), DelayMs: &negative},
		{ID: "negative expiration", Data: json.RawMessage(`2`), ExpirationSec: -3},
		{ID: "delayed", Data: json.RawMessage(`"later"`), DelayMs: &delay, ExpirationSec: 60},
		{ID: "untyped binary", Base64: base64.StdEncoding.EncodeToString([]byte("raw"))},
	}}
	want := map[string]struct {
		status int
		part   string
	}{
		"json":                  {http.StatusOK, ""},
		"binary":                {http.StatusOK, ""},
		"both":                  {http.StatusBadRequest, "invalid messages[2]: set either data or base64, not both"},
		"neither":               {http.StatusBadRequest, "invalid messages[3]: set data"},
		"bad base64":            {http.StatusBadRequest, "invalid messages[4].base64: the value is not standard base64"},
		"too large":             {http.StatusRequestEntityTooLarge, "messages[5]: payload of 65 bytes is over the queue's limit of 64 bytes"},
		"bad JSON in base64":    {http.StatusBadRequest, "invalid messages[6].base64: the decoded payload is not valid JSON"},
		"data with binary type": {http.StatusBadRequest, `invalid messages[7].contentType "image/png"`},
		"negative delay":        {http.StatusBadRequest, `invalid messages[8].delayMs "-1"`},
		"negative expiration":   {http.StatusBadRequest, `invalid messages[9].expirationSec "-3"`},
		"delayed":               {http.StatusOK, ""},
		"untyped binary":        {http.StatusOK, ""},
	}

	var res client.BatchSendResponse
	s.doJSON(http.MethodPost, "/api/queues/q/messages/batch", req).expect(t, http.StatusOK).decode(t, &res)
	if res.Count != 4 {
		t.Errorf("count %d, want 4", res.Count)
	}
	if len(res.Results) != len(req.Messages) {
		t.Fatalf("%d results for %d entries", len(res.Results), len(req.Messages))
	}
	for i, r := range res.Results {
		if r.ID != req.Messages[i].ID {
			t.Errorf("result %d has id %q, want %q (request order)", i, r.ID, req.Messages[i].ID)
			continue
		}
		w := want[r.ID]
		if r.Status != w.status {
			t.Errorf("entry %q: status %d, want %d (%s)", r.ID, r.Status, w.status, r.Message)
		}
		if w.status == http.StatusOK && (r.MessageID == "" || r.QueueMessageID == "" || r.DeliverDate == 0 || r.ExpirationDate == 0) {
			t.Errorf("entry %q: stored without ids or dates: %+v", r.ID, r)
		}
		if w.status != http.StatusOK && !strings.Contains(r.Message, w.part) {
			t.Errorf("entry %q: message %q does not contain %q", r.ID, r.Message, w.part)
		}
	}
	if d := res.Results[10]; d.DeliverDate != testStart.UnixMilli()+1000 || d.ExpirationDate != testStart.UnixMilli()+60_000 {
		t.Errorf("delayed entry: deliverDate %d expirationDate %d, want +1s and +60s", d.DeliverDate, d.ExpirationDate)
	}

	msgs := s.receive("q", 10)
	if len(msgs) != 3 {
		t.Fatalf("received %d messages, want the 3 undelayed valid entries", len(msgs))
	}
	byType := make(map[string]client.QueueMessage)
	for _, m := range msgs {
		byType[m.ContentType] = m
	}
	if m := byType["application/json"]; m.Data != `{"n":1}` {
		t.Errorf("JSON entry data %q, want {\"n\":1}", m.Data)
	}
	if m := byType["image/png"]; m.Href == "" {
		t.Errorf("binary entry has no href")
	} else if r := s.request(http.MethodGet, m.Href, "", nil).expect(t, http.StatusOK); !bytes.Equal(r.body, []byte{0, 1, 2}) {
		t.Errorf("binary entry data %v, want [0 1 2]", r.body)
	}
	if _, ok := byType["application/octet-stream"]; !ok {
		t.Errorf("base64 entry without contentType not stored as application/octet-stream")
	}
}

func TestSendBatchDelayNames(t *testing.T) { forEachBackend(t, testSendBatchDelayNames) }

// testSendBatchDelayNames checks that a delay the engine rejects is named
// by the entry's delayMs field, or as the queue's default delay when the
// entry has none.
func testSendBatchDelayNames(t *testing.T, b backend) {
	s := newTestServer(t, b)
	s.createQueue(client.Queue{Name: "q", DefaultDelayMs: 5000})
	delay := int64(3000)
	req := client.BatchSendRequest{Messages: []client.BatchSendEntry{
		{ID: "own delay", Data: json.RawMessage(`1`), DelayMs: &delay, ExpirationSec: 2},
		{ID: "queue delay", Data: json.RawMessage(`2`), ExpirationSec: 2},
	}}
	want := []string{
		`invalid messages[0].delayMs "3000": must be shorter than the message's expiration of 2 seconds`,
		`invalid messages[1] delay (the queue's defaultDelayMs) "5000": must be shorter than the message's expiration of 2 seconds`,
	}

	var res client.BatchSendResponse
	s.doJSON(http.MethodPost, "/api/queues/q/messages/batch", req).expect(t, http.StatusOK).decode(t, &res)
	if len(res.Results) != len(want) {
		t.Fatalf("%d results for %d entries", len(res.Results), len(want))
	}
	for i, r := range res.Results {
		if r.Status != http.StatusBadRequest {
			t.Errorf("entry %q: status %d, want 400", r.ID, r.Status)
		}
		if r.Message != want[i] {
			t.Errorf("entry %q: message %q, want %q", r.ID, r.Message, want[i])
		}
	}
}

func TestSendBatchErrors(t *testing.T) { forEachBackend(t, testSendBatchErrors) }

func testSendBatchErrors(t *testing.T, b backend) {
	s := newTestServer(t, b, func(st *setup) { st.api.MaxBodyBytes = 4096 })
	s.createQueue(client.Queue{Name: "q"})

	tooMany := client.BatchSendRequest{}
	for range 101 {
		tooMany.Messages = append(tooMany.Messages, client.BatchSendEntry{Data: json.RawMessage(`1`)})
	}
	big := client.BatchSendRequest{Messages: []client.BatchSendEntry{{Base64: base64.StdEncoding.EncodeToString(make([]byte, 5000))}}}

	s.doJSON(http.MethodPost, "/api/queues/nope/messages/batch", client.BatchSendRequest{Messages: []client.BatchSendEntry{{Data: json.RawMessage(`1`)}}}).
		expectError(t, http.StatusNotFound, `"nope"`)
	s.doJSON(http.MethodPost, "/api/queues/q/messages/batch", client.BatchSendRequest{}).expectError(t, http.StatusBadRequest, "at least one")
	s.doJSON(http.MethodPost, "/api/queues/q/messages/batch", tooMany).expectError(t, http.StatusBadRequest, "101", "100")
	s.doJSON(http.MethodPost, "/api/queues/q/messages/batch", big).expectError(t, http.StatusRequestEntityTooLarge, "4096")
	s.request(http.MethodPost, "/api/queues/q/messages/batch", "application/json", []byte(`{"messages":`)).expectError(t, http.StatusBadRequest, "request body")
	s.request(http.MethodPost, "/api/queues/q/messages/batch", "application/xml", []byte(`<a/>`)).expectError(t, http.StatusUnsupportedMediaType, "application/xml")
	s.request(http.MethodPost, "/api/queues/q/messages/batch", "application/json", []byte(`[{"data":1}]`)).
		expectError(t, http.StatusBadRequest, "invalid request body: must be a JSON object, not an array")
	s.request(http.MethodPost, "/api/queues/q/messages/batch", "application/json", []byte(`{"messages":{}}`)).
		expectError(t, http.StatusBadRequest, "invalid request body: field messages must be a JSON array, not an object")
	s.request(http.MethodPost, "/api/queues/q/messages/batch", "application/json", []byte(`{"messages":[{"delayMs":"soon"}]}`)).
		expectError(t, http.StatusBadRequest, "field messages.delayMs must be a JSON number, not a string")

	if st := s.stats("q"); st.Totals.Sent != 0 {
		t.Errorf("%d messages stored by rejected batches, want 0", st.Totals.Sent)
	}
}

// FuzzSendDecoding feeds arbitrary bodies and content types to the decoding
// of single and batch sends. Whatever they accept must be storable: a
// content type, and valid UTF-8 JSON whenever that type is JSON.
func FuzzSendDecoding(f *testing.F) {
	f.Add("application/json", "", []byte(`{"a":1}`))
	f.Add("application/octet-stream", "application/json; charset=utf-8", []byte(`[1]`))
	f.Add("image/png", "", []byte{0x89, 'P'})
	f.Add("application/json", "", []byte(`{"messages":[{"data":{"x":1}},{"base64":"AAE=","contentType":"text/plain"}]}`))
	f.Add("application/json", "", []byte(`{"messages":[{"base64":"e30=","contentType":"application/ld+json","delayMs":5}]}`))
	f.Add("text/plain; charset=\"", "a/b", []byte("\xff"))

	f.Fuzz(func(t *testing.T, header, param string, body []byte) {
		target := "/api/queues/q/messages"
		if param != "" {
			target += "?contentType=" + url.QueryEscape(param)
		}
		r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		if header != "" {
			r.Header.Set("Content-Type", header)
		}
		if ct, isJSON, err := sendContentType(r); err == nil {
			if ct == "" {
				t.Fatalf("accepted %q/%q without a content type", header, param)
			}
			if isJSON && jsonProblem(body) == "" && (!json.Valid(body) || !utf8.Valid(body)) {
				t.Fatalf("jsonProblem accepted %q", body)
			}
		}

		r = httptest.NewRequest(http.MethodPost, "/api/queues/q/messages/batch", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req client.BatchSendRequest
		if err := decodeJSON(httptest.NewRecorder(), r, 1<<20, &req); err != nil {
			return
		}
		for i := range req.Messages {
			m, err := batchMessage(i, &req.Messages[i])
			if err != nil {
				continue
			}
			mt, ok := parseMediaType(m.ContentType)
			if !ok {
				t.Fatalf("entry %d stored with unparsable content type %q", i, m.ContentType)
			}
			if isJSONType(mt) && (!json.Valid(m.Data) || !utf8.Valid(m.Data)) {
				t.Fatalf("entry %d stored as %s with invalid JSON %q", i, m.ContentType, m.Data)
			}
		}
	})
}
