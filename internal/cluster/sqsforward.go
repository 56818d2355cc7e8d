package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// SQSForwardPath is the REST API's endpoint for SQS requests that a node
// forwards to a queue's owner. The path of the client's request follows it,
// because an SQS request may name its queue by its path.
const SQSForwardPath = "/api/cluster/sqs"

// sqsRequestIDHeader is set on every reply of the SQS API, so a reply
// without it did not come from the owner's SQS API.
const sqsRequestIDHeader = "X-Amzn-Requestid"

// SQSForwarderConfig configures an SQSForwarder.
type SQSForwarderConfig struct {
	// Username and Password are the REST API's basic authentication
	// credentials, which every node of a cluster shares and which owners
	// require on SQSForwardPath. Both are empty when the REST API has none.
	Username string
	Password string
	// TLS is the client configuration for owners served over HTTPS.
	TLS *tls.Config
	// Timeout bounds a forwarded request, retries included. Default
	// DefaultForwardTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

// SQSForwarder sends the SQS requests that must run on a queue's owner to
// that node's REST API, at SQSForwardPath. Its Route method is the
// sqsapi.Config.RouteToOwner of a cluster node.
type SQSForwarder struct {
	members Members
	cfg     SQSForwarderConfig
	client  *http.Client
	log     *slog.Logger
}

// NewSQSForwarder returns an SQS forwarder over members.
func NewSQSForwarder(members Members, cfg SQSForwarderConfig) *SQSForwarder {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultForwardTimeout
	}
	return &SQSForwarder{
		members: members,
		cfg:     cfg,
		client:  &http.Client{Transport: newTransport(cfg.TLS)},
		log:     cfg.Logger.With(slog.String("component", "sqs-forward")),
	}
}

// Close closes the forwarder's idle connections.
func (f *SQSForwarder) Close() { f.client.CloseIdleConnections() }

// Route sends an authenticated SQS request for queue to the queue's owner
// and copies the owner's reply. body is the request's body, which r.Body no
// longer holds. Route returns false, and writes nothing, when this node
// serves the queue or no member is live. It retries only while the request
// was certainly not applied, as Forwarder does. Any other failure is
// returned as an SQS error: 502 when the owner may have applied the request,
// 503 when no node took it in time.
func (f *SQSForwarder) Route(w http.ResponseWriter, r *http.Request, queue string, body []byte) bool {
	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.Timeout)
	defer cancel()
	r = r.WithContext(ctx)
	res := sendToOwner(r.Context(), f.members, f.log, queue, func(owner Member) (*http.Response, error) {
		return f.send(r, owner, body)
	})
	switch res.outcome {
	case forwardLocal:
		return false
	case forwardReplied:
		f.copySQSReply(w, res.owner, res.resp)
	case forwardFailed:
		writeSQSError(w, http.StatusBadGateway, "InternalError", fmt.Sprintf(
			"Node %s, which serves queue %s, failed during the request, which may or may not have been applied: %v.", res.owner.Name, queue, res.err))
	case forwardNoOwner:
		writeSQSError(w, http.StatusServiceUnavailable, "ServiceUnavailable", fmt.Sprintf(
			"Queue %s is moving between the nodes of the cluster and no node serves it yet; retry the request.", queue))
	case forwardCanceled:
		// The client went away, so no reply is read.
	}
	return true
}

// send posts the request to the owner's SQSForwardPath with the client's
// path, Host header, X-Amz-Target and Content-Type. It authenticates with
// the REST API's credentials in place of the client's signature.
func (f *SQSForwarder) send(r *http.Request, owner Member, body []byte) (*http.Response, error) {
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	target := strings.TrimSuffix(owner.APIAddr, "/") + SQSForwardPath + path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build the request to %s: %w", target, err)
	}
	req.Host = r.Host
	for _, name := range []string{"X-Amz-Target", "Content-Type"} {
		if v := r.Header.Get(name); v != "" {
			req.Header.Set(name, v)
		}
	}
	req.Header.Set(ForwardedHeader, f.members.LocalName())
	if f.cfg.Username != "" {
		req.SetBasicAuth(f.cfg.Username, f.cfg.Password)
	}
	return f.client.Do(req)
}

// copySQSReply copies the owner's reply when its SQS API wrote it. Any other
// reply comes from the owner's REST API instead, which rejected the request
// before it was applied: the owner's SQS API is off, or the nodes do not
// share the REST API's credentials.
func (f *SQSForwarder) copySQSReply(w http.ResponseWriter, owner Member, resp *http.Response) {
	if resp.Header.Get(sqsRequestIDHeader) != "" {
		copyReply(w, resp)
		return
	}
	resp.Body.Close()
	f.log.Warn("the node that serves the queue rejected a forwarded SQS request",
		slog.String("owner", owner.Name), slog.Int("status", resp.StatusCode))
	writeSQSError(w, http.StatusBadGateway, "InternalError", fmt.Sprintf(
		"Node %s, which serves the queue, rejected the request with HTTP status %d before applying it: enable the SQS API and set the same REST API credentials on every node of the cluster.",
		owner.Name, resp.StatusCode))
}

// writeSQSError writes an error in the SQS API's shape (AWS JSON 1.0): a
// body with __type and message, and the x-amzn-query-error header, from
// which SDKs read the error code. Every error it writes is a server fault.
func writeSQSError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{Type: "com.amazonaws.sqs#" + code, Message: msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", code+";Receiver")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
