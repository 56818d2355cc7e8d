package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// staticMembers is a fixed membership view.
type staticMembers struct {
	self string
	mu   sync.Mutex
	live []Member
}

func (s *staticMembers) LocalName() string        { return s.self }
func (s *staticMembers) Changes() <-chan struct{} { return nil }
func (s *staticMembers) Live() []Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Member, len(s.live))
	for i, m := range s.live {
		m.Self = m.Name == s.self
		out[i] = m
	}
	return out
}

func TestOwnerQueueRoutes(t *testing.T) {
	cases := []struct {
		method, path, want string
	}{
		{"GET", "/api/queues/q/messages", "q"},
		{"DELETE", "/api/queues/q/messages/abc", "q"},
		{"POST", "/api/queues/q/messages/ack", "q"},
		{"PUT", "/api/queues/q/messages/abc", "q"},
		{"POST", "/api/queues/q/messages/abc/extend", "q"},
		{"DELETE", "/api/queues/q/messages", "q"},
		{"GET", "/api/queues/q/stats", "q"},
		{"GET", "/api/queues/q/peek", "q"},
		{"PUT", "/api/queues/q/config", "q"},
		{"DELETE", "/api/queues/q", "q"},
		{"GET", "/api/queues/q/data/abc", "q"},
		{"POST", "/api/queues/q/messages", ""},
		{"POST", "/api/queues/q/messages/batch", ""},
		{"GET", "/api/queues/q/config", ""},
		{"GET", "/api/queues/q/messages/abc/audit", ""},
		{"GET", "/api/queues", ""},
		{"POST", "/api/queues", ""},
		{"GET", "/api/status", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.path, nil)
		if got := ownerQueue(r); got != c.want {
			t.Errorf("%s %s: routed to the owner of %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// newH2CServer starts a test server that, like a node, also speaks
// unencrypted HTTP/2.
func newH2CServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	return srv
}

// forwardSetup is a forwarding node "entry" in front of a local handler, and
// an owner node "owner" that owns every queue, served by ownerHandler.
func forwardSetup(t *testing.T, ownerHandler http.Handler) (entry *httptest.Server, local *atomic.Int32) {
	t.Helper()
	owner := newH2CServer(ownerHandler)
	t.Cleanup(owner.Close)
	members := &staticMembers{self: "entry", live: []Member{{Name: "owner", APIAddr: owner.URL}}}
	f := NewForwarder(members, ForwarderConfig{MaxBodyBytes: 1 << 20})
	t.Cleanup(f.Close)
	local = new(atomic.Int32)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local.Add(1)
		w.WriteHeader(http.StatusTeapot)
	})
	entry = httptest.NewServer(f.Wrap(next))
	t.Cleanup(entry.Close)
	return entry, local
}

func TestForwardCopiesOwnerReply(t *testing.T) {
	var gotBody, gotFrom, gotAuth string
	entry, local := forwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotFrom, gotAuth = string(b), r.Header.Get(ForwardedHeader), r.Header.Get("Authorization")
		w.Header().Set("X-Test", "owner")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	req, _ := http.NewRequest(http.MethodPut, entry.URL+"/api/queues/q/messages/abc?delay=5", strings.NewReader(`{"x":1}`))
	req.SetBasicAuth("user", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || string(body) != `{"ok":true}` || resp.Header.Get("X-Test") != "owner" {
		t.Fatalf("reply %d %q, want the owner's 201", resp.StatusCode, body)
	}
	if gotBody != `{"x":1}` {
		t.Errorf("owner got body %q", gotBody)
	}
	if gotFrom != "entry" {
		t.Errorf("owner got %s %q, want entry", ForwardedHeader, gotFrom)
	}
	if gotAuth == "" {
		t.Error("owner got no credentials")
	}
	if local.Load() != 0 {
		t.Error("the entry node also ran the request")
	}
}

func TestForwardNeverForwardsTwice(t *testing.T) {
	var owner atomic.Int32
	entry, local := forwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		owner.Add(1)
	}))
	req, _ := http.NewRequest(http.MethodGet, entry.URL+"/api/queues/q/stats", nil)
	req.Header.Set(ForwardedHeader, "other")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || local.Load() != 1 || owner.Load() != 0 {
		t.Fatalf("a forwarded request went on to the owner (status %d)", resp.StatusCode)
	}
}

func TestForwardRetriesNotOwner(t *testing.T) {
	var calls atomic.Int32
	entry, _ := forwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.Header().Set(NotOwnerHeader, "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	req, _ := http.NewRequest(http.MethodDelete, entry.URL+"/api/queues/q/messages/abc", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || calls.Load() != 3 {
		t.Fatalf("status %d after %d calls, want 204 after 3", resp.StatusCode, calls.Load())
	}
}

// An owner that fails during a request may have applied it, so the entry
// node does not send it again.
func TestForwardDoesNotRetryAmbiguousFailure(t *testing.T) {
	var calls atomic.Int32
	entry, _ := forwardSetup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// The owner fails mid-request: the stream is reset.
		panic(http.ErrAbortHandler)
	}))
	req, _ := http.NewRequest(http.MethodDelete, entry.URL+"/api/queues/q/messages/abc", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d (%s), want 502", resp.StatusCode, body)
	}
	if calls.Load() != 1 {
		t.Fatalf("owner called %d times, want once", calls.Load())
	}
}

func TestForwardUnreachableOwnerRetriesThenFails(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the forwarding patience to run out")
	}
	owner := httptest.NewServer(http.NotFoundHandler())
	url := owner.URL
	owner.Close()
	members := &staticMembers{self: "entry", live: []Member{{Name: "owner", APIAddr: url}}}
	f := NewForwarder(members, ForwarderConfig{MaxBodyBytes: 1 << 20})
	defer f.Close()
	entry := httptest.NewServer(f.Wrap(http.NotFoundHandler()))
	defer entry.Close()
	resp, err := http.Get(entry.URL + "/api/queues/q/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
