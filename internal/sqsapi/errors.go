package sqsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/qakka/qakka/internal/queue"
)

// apiError is an SQS error reply. Code is the error shape's name, which goes
// into the body's __type; QueryCode is the code of the older Query protocol,
// which goes into the x-amzn-query-error header and is what SDKs report.
type apiError struct {
	Status    int
	Code      string
	QueryCode string
	// Receiver marks a server fault; anything else is the sender's fault.
	Receiver bool
	Message  string
	// notOwner marks a request that was not applied because this node does
	// not serve the queue. The reply carries notOwnerHeader.
	notOwner bool
}

// notOwnerHeader marks a 503 reply for a queue this node does not serve, so
// that a node that forwarded the request may send it to the queue's new
// owner. The cluster package reads the same header name.
const notOwnerHeader = "X-Qakka-Not-Owner"

func (e *apiError) Error() string { return e.QueryCode + ": " + e.Message }

// fault returns the fault half of the x-amzn-query-error header.
func (e *apiError) fault() string {
	if e.Receiver {
		return "Receiver"
	}
	return "Sender"
}

func newError(status int, code, queryCode, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, QueryCode: queryCode, Message: fmt.Sprintf(format, args...)}
}

// Errors the SQS model declares, with the status and query code it gives them.

func errQueueDoesNotExist() *apiError {
	return newError(http.StatusBadRequest, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
		"The specified queue does not exist.")
}

func errQueueNameExists(name string) *apiError {
	return newError(http.StatusBadRequest, "QueueNameExists", "QueueAlreadyExists",
		"A queue named %s already exists with different attributes.", name)
}

func errInvalidAttributeName(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidAttributeName", "InvalidAttributeName", format, args...)
}

func errInvalidAttributeValue(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidAttributeValue", "InvalidAttributeValue", format, args...)
}

func errInvalidAddress(url string) *apiError {
	return newError(http.StatusNotFound, "InvalidAddress", "InvalidAddress",
		"The address %s is not valid for this endpoint. Use a queue URL of the form <endpoint>/<account id>/<queue name>.", url)
}

func errReceiptHandleIsInvalid(handle string) *apiError {
	return newError(http.StatusNotFound, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid",
		"The input receipt handle %q is not a valid receipt handle for this queue.", handle)
}

func errMessageNotInflight() *apiError {
	return newError(http.StatusBadRequest, "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight",
		"The message referred to is not in flight under this receipt handle.")
}

func errInvalidMessageContents(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidMessageContents", "InvalidMessageContents", format, args...)
}

func errEmptyBatchRequest() *apiError {
	return newError(http.StatusBadRequest, "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest",
		"There should be at least one entry in the request.")
}

func errTooManyEntries(n int) *apiError {
	return newError(http.StatusBadRequest, "TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
		"Maximum number of entries per request are %d. You have sent %d.", maxBatchEntries, n)
}

func errInvalidBatchEntryID(id string) *apiError {
	return newError(http.StatusBadRequest, "InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId",
		"A batch entry id %q is invalid: use 1 to 80 letters, digits, '-' and '_'.", id)
}

func errBatchEntryIDsNotDistinct(id string) *apiError {
	return newError(http.StatusBadRequest, "BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
		"Id %s repeated.", id)
}

func errBatchRequestTooLong(size, limit int) *apiError {
	return newError(http.StatusBadRequest, "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong",
		"Batch requests cannot be longer than %d bytes. You have sent %d bytes.", limit, size)
}

func errPurgeQueueInProgress(name string) *apiError {
	return newError(http.StatusForbidden, "PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress",
		"Only one PurgeQueue operation on %s is allowed every 60 seconds.", name)
}

func errUnsupportedOperation(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", format, args...)
}

// Errors common to AWS query-compatible services, which the SQS model does
// not declare. SDKs report them by the code in x-amzn-query-error.

func errInvalidParameterValue(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidParameterValue", "InvalidParameterValue", format, args...)
}

func errMissingParameter(name string) *apiError {
	return newError(http.StatusBadRequest, "MissingParameter", "MissingParameter",
		"The request must contain the parameter %s.", name)
}

func errInvalidAction(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidAction", "InvalidAction", format, args...)
}

func errSerialization(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "SerializationException", "SerializationException", format, args...)
}

func errMissingAuthenticationToken(format string, args ...any) *apiError {
	return newError(http.StatusForbidden, "MissingAuthenticationToken", "MissingAuthenticationToken", format, args...)
}

func errIncompleteSignature(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "IncompleteSignature", "IncompleteSignature", format, args...)
}

func errInvalidClientTokenID() *apiError {
	return newError(http.StatusForbidden, "InvalidClientTokenId", "InvalidClientTokenId",
		"The security token included in the request is invalid.")
}

func errSignatureDoesNotMatch(format string, args ...any) *apiError {
	return newError(http.StatusForbidden, "SignatureDoesNotMatch", "SignatureDoesNotMatch", format, args...)
}

func errServiceUnavailable(format string, args ...any) *apiError {
	e := newError(http.StatusServiceUnavailable, "ServiceUnavailable", "ServiceUnavailable", format, args...)
	e.Receiver = true
	return e
}

// errNotOwner is returned in a cluster for a queue that this node does not
// serve at the moment: the node that serves it changed while the request
// was on its way, or this node is still taking the queue over.
func errNotOwner() *apiError {
	e := errServiceUnavailable("The queue is moving between the nodes of the cluster and this node does not serve it at the moment; retry the request.")
	e.notOwner = true
	return e
}

func errInternal() *apiError {
	e := newError(http.StatusInternalServerError, "InternalError", "InternalError",
		"The request processing has failed because of an unknown error.")
	e.Receiver = true
	return e
}

// errRequestTooLarge is returned for a body over maxRequestBytes.
func errRequestTooLarge() *apiError {
	return newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "RequestEntityTooLarge",
		"The request body is larger than %d bytes.", maxRequestBytes)
}

// engineError maps an error of the queue engine to an SQS error. It returns
// nil for a context error, because the client has gone away.
func (a *API) engineError(action string, err error) *apiError {
	var ae *apiError
	var invalid *queue.InvalidError
	var tooLarge *queue.TooLargeError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, queue.ErrQueueNotFound):
		return errQueueDoesNotExist()
	case errors.As(err, &invalid):
		return errInvalidParameterValue("One or more parameters are invalid. Reason: %s.", invalid.Error())
	case errors.As(err, &tooLarge):
		return errInvalidParameterValue("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", tooLarge.Limit+1)
	case errors.Is(err, queue.ErrUnavailable):
		return errServiceUnavailable("The storage is unavailable; retry later.")
	case errors.Is(err, queue.ErrNotOwner):
		return errNotOwner()
	case errors.Is(err, queue.ErrClosed):
		return errServiceUnavailable("The server is shutting down; retry later.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	}
	a.log.Error("sqs request failed", "action", action, "error", err)
	return errInternal()
}
