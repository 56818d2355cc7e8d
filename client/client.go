package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultUserAgent is the User-Agent header of a Client made without
// WithUserAgent.
const DefaultUserAgent = "qakka-go-client/1"

// maxErrorBody bounds how much of an error response is read for its message.
const maxErrorBody = 64 << 10

// Client calls one Qakka server's REST API. It is safe for concurrent use by
// multiple goroutines. Every method takes a context first and returns as soon
// as the context is done.
type Client struct {
	base      *url.URL // the server's API root, ending in "/api"
	http      *http.Client
	userAgent string
	username  string
	password  string
	basicAuth bool
	retry     RetryPolicy
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc, for TLS
// settings, proxies or a transport of the caller's choice. Set a Timeout on
// hc only if it is longer than the longest receive wait, and prefer
// contexts.
// The default is a client with no timeout over http.DefaultTransport.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithBasicAuth makes every request carry HTTP basic-auth credentials.
func WithBasicAuth(username, password string) Option {
	return func(c *Client) {
		c.username = username
		c.password = password
		c.basicAuth = true
	}
}

// WithUserAgent sets the User-Agent header. The default is DefaultUserAgent.
func WithUserAgent(userAgent string) Option {
	return func(c *Client) {
		c.userAgent = userAgent
	}
}

// WithRetryPolicy replaces DefaultRetryPolicy. It governs only the requests
// that are safe to repeat (see RetryPolicy). RetryPolicy{MaxAttempts: 1}
// turns retries off.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) {
		c.retry = p
	}
}

// New returns a Client for the server at baseURL, such as
// "http://127.0.0.1:8080". A baseURL that already ends in "/api" is used as
// it is. New returns an error when baseURL is not an absolute http or https
// URL or when the retry policy is invalid. It sends no request.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:      u,
		http:      &http.Client{},
		userAgent: DefaultUserAgent,
		retry:     DefaultRetryPolicy,
	}
	for _, opt := range opts {
		opt(c)
	}
	if err := c.retry.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func parseBaseURL(baseURL string) (*url.URL, error) {
	trimmed := strings.TrimSpace(baseURL)
	if !strings.Contains(trimmed, "://") {
		return nil, fmt.Errorf("invalid server URL %q: the scheme is missing; use a URL such as http://%s", baseURL, trimmed)
	}
	u, err := url.Parse(trimmed)
	if err != nil {
		return nil, fmt.Errorf("invalid server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid server URL %q: the scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: the host is missing", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid server URL %q: a query or fragment is not allowed", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/api") {
		u.Path += "/api"
	}
	u.RawPath = ""
	return u, nil
}

// BaseURL returns the API root the Client sends to, such as
// "http://127.0.0.1:8080/api".
func (c *Client) BaseURL() string {
	return c.base.String()
}

// request describes one API call.
type request struct {
	method string
	// path is relative to the API root and already escaped, such as
	// "/queues/orders/stats".
	path        string
	query       url.Values
	body        []byte
	contentType string
	// retry marks a request that is safe to repeat: an idempotent read.
	retry bool
}

// do sends r, with retries if r.retry, and returns a response with a 2xx
// status whose body the caller must close. Any other status becomes a *Error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	if r.retry {
		return c.doWithRetry(ctx, r)
	}
	return c.doOnce(ctx, r)
}

func (c *Client) doOnce(ctx context.Context, r request) (*http.Response, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}

	resp, err := c.http.Do(req)
	if err != nil {
		// Prefer the context's error: the transport wraps it in a *url.Error
		// whose text is less clear.
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, req.URL.Path, ctxErr)
		}
		return nil, &transportError{err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}

	defer resp.Body.Close()
	return nil, readError(resp)
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	target := c.base.String() + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}

	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", r.method, r.path, err)
	}
	if body == nil && !r.retry && r.method == http.MethodGet {
		// net/http's Transport sends a GET again by itself when a reused
		// connection breaks after the request was written, if the body is
		// nil or can be replayed. For a receive that could move a second
		// batch to inflight. A non-nil body without GetBody turns the replay
		// off, and the Transport still sends no body for a GET whose body
		// reads as empty.
		req.Body = io.NopCloser(eofReader{})
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.basicAuth {
		req.SetBasicAuth(c.username, c.password)
	}
	return req, nil
}

// eofReader is an empty body.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// transportError is a failure to reach the server or to read its response
// headers: a refused connection, a reset, a TLS failure. It wraps the
// *url.Error that net/http returned.
type transportError struct {
	err error
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// readError turns a response outside 2xx into a *Error. The message comes
// from the JSON body {"message": "..."} when there is one. Otherwise it is
// the status text, followed by a trimmed form of the body when that is
// text, such as the "Client sent an HTTP request to an HTTPS server." of a
// Go TLS server reached over plain HTTP, or a proxy's error page.
func readError(resp *http.Response) *Error {
	apiErr := &Error{StatusCode: resp.StatusCode}
	apiErr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())

	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	contentType := resp.Header.Get("Content-Type")
	var body struct {
		Message string `json:"message"`
	}
	if isJSON(contentType) && json.Unmarshal(raw, &body) == nil && body.Message != "" {
		apiErr.Message = body.Message
		return apiErr
	}

	status := http.StatusText(resp.StatusCode)
	apiErr.Message = strings.ToLower(status)
	if apiErr.Message == "" {
		apiErr.Message = "unexpected status " + strconv.Itoa(resp.StatusCode)
	}
	text := errorBodyText(raw, contentType)
	// A body that only repeats the status, such as "502 Bad Gateway", adds nothing.
	if text != "" && !strings.EqualFold(strings.TrimPrefix(text, strconv.Itoa(resp.StatusCode)+" "), status) {
		apiErr.Message += ": " + text
	}
	return apiErr
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// doJSON sends r and decodes a JSON response body into out, unless out is
// nil, in which case the body is discarded.
func (c *Client) doJSON(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	return decodeBody(resp, out)
}

// decodeBody decodes a JSON response body into out, or discards the body
// when out is nil.
func decodeBody(resp *http.Response, out any) error {
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// jsonBody encodes v as a request body.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request body: %w", err)
	}
	return b, nil
}

// queuePath returns the escaped path of a queue, plus the escaped elements
// that follow it.
func queuePath(queue string, elems ...string) (string, error) {
	if queue == "" {
		return "", errors.New("queue name must not be empty")
	}
	var b strings.Builder
	b.WriteString("/queues/")
	b.WriteString(url.PathEscape(queue))
	for _, e := range elems {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(e))
	}
	return b.String(), nil
}
