package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
)

// httpError is an error the API itself raises with a fixed status: an
// unsupported media type, an unknown route, a missing credential.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// invalid returns the error of a bad request value, in the engine's own
// type so that writeError treats both alike.
func invalid(field, value, format string, args ...any) error {
	return &queue.InvalidError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// NotOwnerHeader marks a 503 reply for a queue this node does not serve.
// The cluster package sets the same header name.
const NotOwnerHeader = "X-Qakka-Not-Owner"

// notInflightMessage explains a 400 for a queueMessageId that names no
// current delivery.
const notInflightMessage = "message not inflight: it was acked, purged or never delivered, or its visibility timeout ran out and it was delivered again under a new queueMessageId"

// writeError is the one place that turns an error into an HTTP status and
// the JSON body {"message": "..."}. Only errors that no rule maps are logged
// here, once, at Error; their text stays out of the response.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := a.classify(r, err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if errors.Is(err, queue.ErrNotOwner) {
		// The request was not applied, so the node that forwarded it may
		// send it to another node.
		w.Header().Set(NotOwnerHeader, "1")
	}
	writeJSON(w, status, client.Response{Message: msg})
}

// classify maps err to a status and a message for the client.
func (a *API) classify(r *http.Request, err error) (int, string) {
	var (
		he       *httpError
		invalidE *queue.InvalidError
		tooLarge *queue.TooLargeError
		maxBytes *http.MaxBytesError
	)
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.As(err, &invalidE):
		return http.StatusBadRequest, invalidE.Error()
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, tooLarge.Error()
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes", maxBytes.Limit)
	case errors.Is(err, queue.ErrQueueNotFound):
		if q := r.PathValue("q"); q != "" {
			return http.StatusNotFound, fmt.Sprintf("queue %s not found", strconv.Quote(q))
		}
		return http.StatusNotFound, "queue not found"
	case errors.Is(err, queue.ErrNotInflight):
		return http.StatusBadRequest, notInflightMessage
	case errors.Is(err, queue.ErrMessageNotFound):
		return http.StatusNotFound, "message not found: it was acked, purged or expired, or the id is wrong"
	case errors.Is(err, queue.ErrUnavailable):
		// The engine has logged the storage error.
		return http.StatusServiceUnavailable, "storage unavailable: retry later"
	case errors.Is(err, queue.ErrNotOwner):
		return http.StatusServiceUnavailable, fmt.Sprintf("queue %s is served by another node or is moving between nodes: retry", strconv.Quote(r.PathValue("q")))
	case errors.Is(err, queue.ErrClosed):
		return http.StatusServiceUnavailable, "server is shutting down: retry later"
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The client went away or the server is stopping, so the reply is
		// probably never read.
		return http.StatusServiceUnavailable, "request cancelled: retry later"
	}
	a.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Any("error", err))
	return http.StatusInternalServerError, "internal server error"
}

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value written here is a plain wire type, so this is a bug.
		panic(fmt.Sprintf("httpapi: encode %T: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
