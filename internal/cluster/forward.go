package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/qakka/qakka/internal/queue"
)

// Headers of requests between nodes.
const (
	// ForwardedHeader marks a request that a node forwarded to a queue's
	// owner, with the forwarding node's name. A node never forwards such a
	// request again.
	ForwardedHeader = "X-Qakka-Forwarded-By"
	// NotOwnerHeader marks a 503 reply of a node that does not serve the
	// queue, so the request was not applied and may go to another node.
	NotOwnerHeader = "X-Qakka-Not-Owner"
	// NodeHeader names the node that produced a reply.
	NodeHeader = "X-Qakka-Node"
)

// forwardPatience bounds how long a node keeps retrying a request whose
// owner is unreachable or moving, before it replies 503.
const forwardPatience = 10 * time.Second

// forwardRetryDelay is the pause between two attempts.
const forwardRetryDelay = 200 * time.Millisecond

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	// MaxBodyBytes bounds the request body a node buffers to forward.
	MaxBodyBytes int64
	// TLS is the client configuration for owners served over HTTPS.
	TLS *tls.Config
	// Timeout bounds a forwarded request, retries included. Default
	// DefaultForwardTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

// DefaultForwardTimeout is the default deadline of a forwarded request. It
// covers the longest receive wait, 20 s by default, and the retries while
// a queue moves.
const DefaultForwardTimeout = 90 * time.Second

// Forwarder sends the REST requests that must run on a queue's owner to
// that node. Sends, configuration and audit reads run on the node that
// receives them.
type Forwarder struct {
	members Members
	cfg     ForwarderConfig
	client  *http.Client
	log     *slog.Logger
}

// NewForwarder returns a forwarder over members.
func NewForwarder(members Members, cfg ForwarderConfig) *Forwarder {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultForwardTimeout
	}
	return &Forwarder{
		members: members,
		cfg:     cfg,
		client:  &http.Client{Transport: newTransport(cfg.TLS)},
		log:     cfg.Logger.With(slog.String("component", "forward")),
	}
}

// newTransport returns a transport that speaks HTTP/2 to every node: over
// TLS for https URLs and unencrypted for http URLs.
func newTransport(tlsConfig *tls.Config) *http.Transport {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 5 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return tr
}

// Close closes the forwarder's idle connections.
func (f *Forwarder) Close() { f.client.CloseIdleConnections() }

// ownerQueue returns the queue of a request that must run on the queue's
// owner, or "" when the request runs where it arrives.
func ownerQueue(r *http.Request) string {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/queues/")
	if !ok || rest == "" {
		return ""
	}
	name, sub, _ := strings.Cut(rest, "/")
	switch {
	case r.Method == http.MethodPost && (sub == "messages" || sub == "messages/batch"):
		// A send is stored where it arrives, as incoming entries.
		return ""
	case r.Method == http.MethodGet && (sub == "config" || strings.HasSuffix(sub, "/audit")):
		return ""
	}
	return name
}

// Wrap returns a handler that forwards to the owner every request that must
// run there, and passes the rest to next.
func (f *Forwarder) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queue := ownerQueue(r)
		if queue == "" || r.Header.Get(ForwardedHeader) != "" {
			next.ServeHTTP(w, r)
			return
		}
		owner, ok := Owner(queue, f.members.Live())
		if !ok || owner.Self {
			next.ServeHTTP(w, r)
			return
		}
		f.forward(w, r, next, queue)
	})
}

// forward sends r to the queue's owner and copies the reply. It retries
// only when the request was certainly not applied (see sendToOwner). Any
// other failure is returned as 502, because the owner may have applied the
// request.
func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, next http.Handler, queue string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes", tooLarge.Limit), false)
			return
		}
		writeError(w, http.StatusBadRequest, "reading the request body failed: "+err.Error(), false)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.Timeout)
	defer cancel()
	fr := r.WithContext(ctx)
	res := sendToOwner(ctx, f.members, f.log, queue, func(owner Member) (*http.Response, error) {
		return f.send(fr, owner, body)
	})
	switch res.outcome {
	case forwardLocal:
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	case forwardReplied:
		copyReply(w, res.resp)
	case forwardFailed:
		writeError(w, http.StatusBadGateway, fmt.Sprintf(
			"node %s, which serves queue %q, failed during the request, which may or may not have been applied: %v", res.owner.Name, queue, res.err), false)
	case forwardNoOwner:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"queue %q is moving between nodes and no node serves it yet: retry", queue), true)
	case forwardCanceled:
		// The client went away, so no reply is read.
	}
}

// forwardOutcome is the end state of sendToOwner.
type forwardOutcome int

const (
	// forwardLocal means that this node serves the queue now, or that no
	// member is live, so the request runs here.
	forwardLocal forwardOutcome = iota
	// forwardReplied means that the owner replied.
	forwardReplied
	// forwardFailed means that the owner failed during the request, which
	// it may or may not have applied.
	forwardFailed
	// forwardNoOwner means that no node took the request before
	// forwardPatience ran out.
	forwardNoOwner
	// forwardCanceled means that the client went away.
	forwardCanceled
)

// forwardResult is the result of sendToOwner.
type forwardResult struct {
	outcome forwardOutcome
	// owner is the node of the last attempt, for forwardReplied and
	// forwardFailed.
	owner Member
	// resp is the owner's reply, for forwardReplied. The caller closes its
	// body.
	resp *http.Response
	// err is the cause of the failure, for forwardFailed.
	err error
}

// sendToOwner calls send with the queue's owner until the owner replies. It
// retries, for up to forwardPatience, only while the request was certainly
// not applied: the owner could not be reached, or it replied 503 with
// NotOwnerHeader. It picks the owner again before every attempt, so a
// request follows a queue that moves.
func sendToOwner(ctx context.Context, members Members, log *slog.Logger, queue string, send func(owner Member) (*http.Response, error)) forwardResult {
	deadline := time.Now().Add(forwardPatience)
	for {
		owner, ok := Owner(queue, members.Live())
		if !ok || owner.Self {
			return forwardResult{outcome: forwardLocal}
		}
		resp, err := send(owner)
		switch {
		case err != nil && notSent(err):
			log.Debug("owner unreachable; retrying", slog.String("queue", queue), slog.String("owner", owner.Name), slog.Any("error", err))
		case err != nil:
			if ctx.Err() != nil {
				return forwardResult{outcome: forwardCanceled}
			}
			log.Warn("forwarding a request failed", slog.String("queue", queue), slog.String("owner", owner.Name), slog.Any("error", err))
			return forwardResult{outcome: forwardFailed, owner: owner, err: err}
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(NotOwnerHeader) != "":
			resp.Body.Close()
		default:
			return forwardResult{outcome: forwardReplied, owner: owner, resp: resp}
		}
		if time.Now().Add(forwardRetryDelay).After(deadline) {
			return forwardResult{outcome: forwardNoOwner}
		}
		select {
		case <-ctx.Done():
			return forwardResult{outcome: forwardCanceled}
		case <-time.After(forwardRetryDelay):
		}
	}
}

func (f *Forwarder) send(r *http.Request, owner Member, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimSuffix(owner.APIAddr, "/")+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		if hopByHop[http.CanonicalHeaderKey(k)] {
			continue
		}
		req.Header[k] = vs
	}
	req.Header.Set(ForwardedHeader, f.members.LocalName())
	return f.client.Do(req)
}

// notSent reports whether err shows that a request never reached the
// server: the connection was refused or could not be made.
func notSent(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

func copyReply(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if hopByHop[k] {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func writeError(w http.ResponseWriter, status int, msg string, notOwner bool) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if notOwner {
		w.Header().Set(NotOwnerHeader, "1")
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"message\":%q}\n", msg)
}

// Notifier notifies owners of incoming entries and new queues, from one
// goroutine, so that a send never waits for it. A lost notification delays
// delivery until the owner's next sweep; it loses nothing.
type Notifier struct {
	members  Members
	client   *http.Client
	username string
	password string
	log      *slog.Logger
	pending  chan notice
}

type notice struct {
	queue string
	shard uint64
	// created announces a new queue instead of incoming entries.
	created bool
}

// NotifyPath is the endpoint of notifications between nodes.
const NotifyPath = "/api/cluster/notify"

// NewNotifier returns a notifier that authenticates with the REST API's
// credentials, which every node of a cluster shares.
func NewNotifier(members Members, username, password string, tlsConfig *tls.Config, logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.Default()
	}
	return &Notifier{
		members:  members,
		client:   &http.Client{Transport: newTransport(tlsConfig), Timeout: 5 * time.Second},
		username: username,
		password: password,
		log:      logger.With(slog.String("component", "notify")),
		pending:  make(chan notice, 4096),
	}
}

// Stored queues a notification of incoming entries. It never blocks: when
// the queue of notifications is full, it drops this one.
func (n *Notifier) Stored(queue string, shard uint64) {
	n.enqueue(notice{queue: queue, shard: shard})
}

// Created queues a notification of a new queue.
func (n *Notifier) Created(queue string) {
	n.enqueue(notice{queue: queue, created: true})
}

func (n *Notifier) enqueue(nt notice) {
	select {
	case n.pending <- nt:
	default:
	}
}

// Run sends notifications until ctx ends. Notifications already queued for
// the same queue and shard are sent once.
func (n *Notifier) Run(ctx context.Context) {
	defer n.client.CloseIdleConnections()
	for {
		var first notice
		select {
		case <-ctx.Done():
			return
		case first = <-n.pending:
		}
		batch := map[notice]bool{first: true}
	drain:
		for len(batch) < 1024 {
			select {
			case nt := <-n.pending:
				batch[nt] = true
			default:
				break drain
			}
		}
		for nt := range batch {
			n.send(ctx, nt)
		}
	}
}

func (n *Notifier) send(ctx context.Context, nt notice) {
	owner, ok := Owner(nt.queue, n.members.Live())
	if !ok {
		return
	}
	body := fmt.Sprintf(`{"queue":%q,"shard":%d,"created":%t}`, nt.queue, nt.shard, nt.created)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(owner.APIAddr, "/")+NotifyPath, strings.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ForwardedHeader, n.members.LocalName())
	if n.username != "" {
		req.SetBasicAuth(n.username, n.password)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		n.log.Debug("notifying the owner failed; it finds the entries at its next sweep",
			slog.String("queue", nt.queue), slog.String("owner", owner.Name), slog.Any("error", err))
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// NotifyHandler serves NotifyPath: it hands a notification of incoming
// entries to the engine when this node serves the queue, and otherwise makes
// the coordinator check ownership, since the queue may be new or moving here.
func NotifyHandler(engine *queue.Engine, coord *Coordinator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST", false)
			return
		}
		var nt struct {
			Queue   string `json:"queue"`
			Shard   uint64 `json:"shard"`
			Created bool   `json:"created"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&nt); err != nil || nt.Queue == "" {
			writeError(w, http.StatusBadRequest, `body must be {"queue": "...", "shard": N, "created": false}`, false)
			return
		}
		if nt.Created || engine.Incoming(r.Context(), nt.Queue, nt.Shard) != nil {
			coord.Wake()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
