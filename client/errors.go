package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors that a *Error matches with errors.Is, by status code.
// Check them as errors.Is(err, client.ErrNotFound), and use errors.As with a
// *Error to read the server's message and the exact status.
var (
	// ErrBadRequest matches a 400 response: an invalid value, a missing
	// confirmation, or an ack of a message that is no longer inflight.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized matches a 401 response: missing or wrong credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound matches a 404 response: an unknown queue, message or route.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge matches a 413 response: a payload or batch over the limit.
	ErrTooLarge = errors.New("request too large")
	// ErrUnavailable matches a 503 response: the server cannot serve the
	// request now (storage unavailable, shutting down). Retry later.
	ErrUnavailable = errors.New("service unavailable")
)

// Error is a response from the server with a status code outside 2xx.
type Error struct {
	// StatusCode is the HTTP status code, such as 404.
	StatusCode int
	// Message is the server's explanation from the JSON error body, or the
	// status text when the body carried none.
	Message string
	// RetryAfter is the wait the server asked for in a Retry-After header,
	// or zero.
	RetryAfter time.Duration
}

// Error returns the server's message with the status code.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode)
}

// Is reports whether target is the sentinel for e's status code, so that
// errors.Is(err, ErrNotFound) holds for any 404 response.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable
	}
	return false
}

// StatusCode returns the HTTP status code of the *Error in err's chain, or 0
// when err did not come from a server response (a connection failure, a
// cancelled context, a request that was never sent).
func StatusCode(err error) int {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}
