package region

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// maxErrorBody bounds how much of an error reply is read for its message.
const maxErrorBody = 64 << 10

// transport POSTs transfer requests to the endpoints of one region.
type transport struct {
	client    *http.Client
	endpoints []string
	creds     Credentials
	timeout   time.Duration
	// preferred is the index of the endpoint that replied last. Requests
	// start there.
	preferred atomic.Int64
}

func newTransport(hc *http.Client, rc Remote, timeout time.Duration) *transport {
	return &transport{client: hc, endpoints: rc.Endpoints, creds: rc.Credentials, timeout: timeout}
}

// statusError is a reply other than 200 to a whole transfer request.
type statusError struct {
	endpoint string
	status   int
	message  string
}

func (e *statusError) Error() string {
	msg := e.message
	if msg == "" {
		msg = http.StatusText(e.status)
	}
	return fmt.Sprintf("POST %s: %d %s", transferURL(e.endpoint), e.status, msg)
}

// needsOperator reports whether the reply points to a configuration error
// that retries do not fix: wrong credentials, transfers off, a path that
// does not exist.
func (e *statusError) needsOperator() bool {
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return true
	}
	return false
}

// entryError reports entries that a region received but did not store.
type entryError struct {
	region string
	result EntryResult
	count  int
}

func (e *entryError) Error() string {
	return fmt.Sprintf("region %s did not store %d entries, the first with status %d: %s", e.region, e.count, e.result.Status, e.result.Message)
}

// post sends req to the region, trying each endpoint once, starting with
// the one that replied last. It returns the reply, with one result per
// entry, and the endpoint that sent it.
func (t *transport) post(ctx context.Context, req *TransferRequest) (TransferResponse, string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return TransferResponse{}, "", fmt.Errorf("encode transfer request: %w", err)
	}
	start := int(t.preferred.Load())
	var errs []error
	for i := range t.endpoints {
		idx := (start + i) % len(t.endpoints)
		endpoint := t.endpoints[idx]
		resp, err := t.postTo(ctx, endpoint, body, len(req.Entries))
		if err == nil {
			t.preferred.Store(int64(idx))
			return resp, endpoint, nil
		}
		if ctx.Err() != nil {
			return TransferResponse{}, "", ctx.Err()
		}
		errs = append(errs, err)
	}
	return TransferResponse{}, "", errors.Join(errs...)
}

// postTo sends one request to one endpoint within the request timeout.
func (t *transport) postTo(ctx context.Context, endpoint string, body []byte, entries int) (TransferResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()

	url := transferURL(endpoint)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return TransferResponse{}, fmt.Errorf("POST %s: %w", url, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.SetBasicAuth(t.creds.Username, t.creds.Password)
	hresp, err := t.client.Do(hreq)
	if err != nil {
		// The error names the method and URL already.
		return TransferResponse{}, err
	}
	defer hresp.Body.Close()

	if hresp.StatusCode != http.StatusOK {
		return TransferResponse{}, &statusError{endpoint: endpoint, status: hresp.StatusCode, message: errorMessage(hresp.Body)}
	}
	var out TransferResponse
	if err := json.NewDecoder(hresp.Body).Decode(&out); err != nil {
		return TransferResponse{}, fmt.Errorf("POST %s: decode reply: %w", url, err)
	}
	if len(out.Results) != entries {
		return TransferResponse{}, fmt.Errorf("POST %s: reply has %d results for %d entries", url, len(out.Results), entries)
	}
	return out, nil
}

// errorMessage returns the message of a JSON error body, or the start of
// any other body.
func errorMessage(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return strconv.Quote(string(b))
}
