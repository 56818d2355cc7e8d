package cluster

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// sqsRequestBody is the body of the SQS requests of these tests.
const sqsRequestBody = `{"QueueUrl":"http://sqs.example:9324/000000000000/q"}`

// sqsForwardSetup is a forwarding node "entry" whose SQS forwarder sends to
// an owner node "owner" that owns every queue, served by ownerHandler.
func sqsForwardSetup(t *testing.T, ownerHandler http.Handler) *SQSForwarder {
	t.Helper()
	owner := newH2CServer(ownerHandler)
	t.Cleanup(owner.Close)
	members := &staticMembers{self: "entry", live: []Member{{Name: "owner", APIAddr: owner.URL}}}
	f := NewSQSForwarder(members, SQSForwarderConfig{Username: "node", Password: "node-secret"})
	t.Cleanup(f.Close)
	return f
}

// routeSQS offers a ReceiveMessage request that a client sent to
// sqs.example:9324 to f.Route, and returns the reply and Route's result.
func routeSQS(f *SQSForwarder) (*httptest.ResponseRecorder, bool) {
	r := httptest.NewRequest(http.MethodPost, "http://sqs.example:9324/000000000000/q", strings.NewReader(sqsRequestBody))
	r.Header.Set("Content-Type", "application/x-amz-json-1.0")
	r.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00")
	w := httptest.NewRecorder()
	return w, f.Route(w, r, "q", []byte(sqsRequestBody))
}

// sqsReply writes a reply as the SQS API does, with a request id.
func sqsReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("x-amzn-RequestId", "owner-request")
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// wantSQSError checks that a reply is an SQS error of the given status and
// code, and returns its message.
func wantSQSError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	if w.Code != status {
		t.Errorf("status = %d, want %d (%s)", w.Code, status, w.Body)
	}
	var body struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("reply %q is not JSON: %v", w.Body, err)
	}
	if body.Type != "com.amazonaws.sqs#"+code {
		t.Errorf("__type = %q, want com.amazonaws.sqs#%s", body.Type, code)
	}
	if got := w.Header().Get("x-amzn-query-error"); got != code+";Receiver" {
		t.Errorf("x-amzn-query-error = %q, want %s;Receiver", got, code)
	}
	if body.Message == "" {
		t.Error("error reply has no message")
	}
	return body.Message
}

func TestSQSRouteCopiesOwnerReply(t *testing.T) {
	type seen struct {
		path, host, target, contentType, from, body string
		user, password                              string
		authOK                                      bool
	}
	var got seen
	f := sqsForwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{
			path: r.URL.Path, host: r.Host, target: r.Header.Get("X-Amz-Target"),
			contentType: r.Header.Get("Content-Type"), from: r.Header.Get(ForwardedHeader), body: string(b),
		}
		got.user, got.password, got.authOK = r.BasicAuth()
		sqsReply(w, http.StatusOK, `{"Messages":[]}`)
	}))

	w, routed := routeSQS(f)
	if !routed {
		t.Fatal("Route returned false for a queue another node owns")
	}
	if w.Code != http.StatusOK || w.Body.String() != `{"Messages":[]}` || w.Header().Get("x-amzn-RequestId") != "owner-request" {
		t.Errorf("reply %d %q (request id %q), want the owner's", w.Code, w.Body, w.Header().Get("x-amzn-RequestId"))
	}
	if got.path != SQSForwardPath+"/000000000000/q" {
		t.Errorf("owner got path %q, want %s/000000000000/q", got.path, SQSForwardPath)
	}
	if got.host != "sqs.example:9324" {
		t.Errorf("owner got Host %q, want the client's sqs.example:9324", got.host)
	}
	if got.target != "AmazonSQS.ReceiveMessage" || got.contentType != "application/x-amz-json-1.0" {
		t.Errorf("owner got X-Amz-Target %q and Content-Type %q", got.target, got.contentType)
	}
	if got.body != sqsRequestBody {
		t.Errorf("owner got body %q, want %q", got.body, sqsRequestBody)
	}
	if got.from != "entry" {
		t.Errorf("owner got %s %q, want entry", ForwardedHeader, got.from)
	}
	if !got.authOK || got.user != "node" || got.password != "node-secret" {
		t.Errorf("owner got basic auth %q/%q (%v), want the REST API's credentials", got.user, got.password, got.authOK)
	}
}

func TestSQSRouteLocalOwner(t *testing.T) {
	members := &staticMembers{self: "entry", live: []Member{{Name: "entry"}}}
	f := NewSQSForwarder(members, SQSForwarderConfig{})
	defer f.Close()
	w, routed := routeSQS(f)
	if routed {
		t.Error("Route returned true for a queue this node owns")
	}
	if w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Errorf("Route wrote %q with headers %v for a queue this node owns", w.Body, w.Header())
	}
}

func TestSQSRouteRetriesNotOwner(t *testing.T) {
	var calls atomic.Int32
	f := sqsForwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.Header().Set(NotOwnerHeader, "1")
			sqsReply(w, http.StatusServiceUnavailable, `{"__type":"com.amazonaws.sqs#ServiceUnavailable","message":"moving"}`)
			return
		}
		sqsReply(w, http.StatusOK, `{}`)
	}))
	w, routed := routeSQS(f)
	if !routed || w.Code != http.StatusOK || calls.Load() != 3 {
		t.Fatalf("routed %v, status %d after %d calls; want 200 after 3", routed, w.Code, calls.Load())
	}
}

// An owner that fails during a request may have applied it, so the entry
// node does not send it again.
func TestSQSRouteDoesNotRetryAmbiguousFailure(t *testing.T) {
	var calls atomic.Int32
	f := sqsForwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		panic(http.ErrAbortHandler)
	}))
	w, routed := routeSQS(f)
	if !routed {
		t.Fatal("Route returned false")
	}
	msg := wantSQSError(t, w, http.StatusBadGateway, "InternalError")
	if !strings.Contains(msg, "may or may not have been applied") {
		t.Errorf("message %q does not say the request may have been applied", msg)
	}
	if calls.Load() != 1 {
		t.Errorf("owner called %d times, want once", calls.Load())
	}
}

// A reply of the owner's REST API instead of its SQS API means the request
// never reached the SQS API: it is reported as an SQS error.
func TestSQSRouteRejectsNonSQSReply(t *testing.T) {
	f := sqsForwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "authentication required", http.StatusUnauthorized)
	}))
	w, routed := routeSQS(f)
	if !routed {
		t.Fatal("Route returned false")
	}
	msg := wantSQSError(t, w, http.StatusBadGateway, "InternalError")
	if !strings.Contains(msg, "401") || !strings.Contains(msg, "credentials") {
		t.Errorf("message %q names neither the owner's status nor the credentials", msg)
	}
}
