package sqsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qakka/qakka/internal/queue"
)

// Defaults of Config.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "000000000000"
)

// maxRequestBytes bounds a request body. A batch holds at most 1 MiB of
// messages, but JSON escapes and base64 binary attributes make its body
// larger.
const maxRequestBytes = 10 << 20

// contentType is the media type of requests and replies.
const contentType = "application/x-amz-json-1.0"

// targetPrefix starts the X-Amz-Target header of every SQS request.
const targetPrefix = "AmazonSQS."

// Config configures the SQS-compatible API.
type Config struct {
	// Engine serves the queues. Required.
	Engine *queue.Engine
	// Logger receives the API's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer takes the request metrics. Nil means no metrics.
	Registerer prometheus.Registerer
	// Region names the region in queue ARNs. Default "us-east-1".
	Region string
	// AccountID is the 12-digit account id in queue URLs and ARNs. Default
	// "000000000000".
	AccountID string
	// Credentials maps access key ids to secret access keys. When it is
	// empty, requests are not authenticated.
	Credentials map[string]string
	// BaseURL returns what queue URLs start with for a request, such as
	// "http://localhost:9324". Default: "https://" for a TLS request, else
	// "http://", followed by the request's Host header. Set it when the
	// handler is mounted below a path prefix, and include the prefix.
	BaseURL func(r *http.Request) string
	// Now returns the time that request signatures are checked against.
	// Default time.Now.
	Now func() time.Time
	// RouteToOwner lets a cluster node send a request to the node that
	// serves its queue. The API calls it after authenticating a request
	// whose action needs that node (see ownerActions), with the queue's
	// name and the request's body, which r.Body no longer holds. It returns
	// true when it wrote the reply, and false to let this node serve the
	// request. Nil serves every request here.
	RouteToOwner func(w http.ResponseWriter, r *http.Request, queue string, body []byte) bool
}

var (
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern    = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
)

func (c *Config) withDefaults() Config {
	out := *c
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Region == "" {
		out.Region = DefaultRegion
	}
	if out.AccountID == "" {
		out.AccountID = DefaultAccountID
	}
	if out.BaseURL == nil {
		out.BaseURL = requestBaseURL
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Engine == nil:
		return errors.New("sqs api: an engine is required")
	case c.Region != "" && !regionPattern.MatchString(c.Region):
		return fmt.Errorf("sqs api: region %q must be lower-case letters, digits and '-'", c.Region)
	case c.AccountID != "" && !accountIDPattern.MatchString(c.AccountID):
		return fmt.Errorf("sqs api: account id %q must be 12 digits", c.AccountID)
	}
	for id, secret := range c.Credentials {
		if id == "" || secret == "" {
			return fmt.Errorf("sqs api: access key id %q needs a non-empty id and secret", id)
		}
	}
	return nil
}

func requestBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// API serves the SQS-compatible API. It is safe for concurrent use.
type API struct {
	cfg     Config
	engine  *queue.Engine
	log     *slog.Logger
	metrics *metrics
	actions map[string]action

	// adminMu serializes the read-modify-write of queue configurations, so
	// that concurrent SetQueueAttributes, TagQueue and UntagQueue calls of
	// this API do not undo each other.
	adminMu sync.Mutex

	purgeMu sync.Mutex
	// lastPurge holds when each queue was last purged.
	lastPurge map[string]time.Time
}

// action serves one SQS action. It returns the reply body, or an error.
type action func(ctx context.Context, rq *request) (any, error)

// request is one decoded call.
type request struct {
	http   *http.Request
	action string
	body   []byte
	// accessKey is the key the request was signed with, or empty.
	accessKey string
}

// New returns the API for cfg.
func New(cfg Config) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &API{
		cfg:       cfg,
		engine:    cfg.Engine,
		log:       cfg.Logger.With(slog.String("component", "sqsapi")),
		lastPurge: make(map[string]time.Time),
	}
	a.actions = map[string]action{
		"CreateQueue":                  a.createQueue,
		"GetQueueUrl":                  a.getQueueURL,
		"ListQueues":                   a.listQueues,
		"DeleteQueue":                  a.deleteQueue,
		"GetQueueAttributes":           a.getQueueAttributes,
		"SetQueueAttributes":           a.setQueueAttributes,
		"PurgeQueue":                   a.purgeQueue,
		"TagQueue":                     a.tagQueue,
		"UntagQueue":                   a.untagQueue,
		"ListQueueTags":                a.listQueueTags,
		"ListDeadLetterSourceQueues":   a.listDeadLetterSourceQueues,
		"SendMessage":                  a.sendMessage,
		"SendMessageBatch":             a.sendMessageBatch,
		"ReceiveMessage":               a.receiveMessage,
		"DeleteMessage":                a.deleteMessage,
		"DeleteMessageBatch":           a.deleteMessageBatch,
		"ChangeMessageVisibility":      a.changeMessageVisibility,
		"ChangeMessageVisibilityBatch": a.changeMessageVisibilityBatch,
		"AddPermission":                a.unsupported("permissions are not supported; use the server's credentials instead"),
		"RemovePermission":             a.unsupported("permissions are not supported; use the server's credentials instead"),
		"StartMessageMoveTask":         a.unsupported("message move tasks are not supported; use the REST API's redrive instead"),
		"CancelMessageMoveTask":        a.unsupported("message move tasks are not supported; use the REST API's redrive instead"),
		"ListMessageMoveTasks":         a.unsupported("message move tasks are not supported; use the REST API's redrive instead"),
	}
	m, err := newMetrics(cfg.Registerer, a.actions)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	return a, nil
}

func (a *API) unsupported(reason string) action {
	return func(context.Context, *request) (any, error) {
		return nil, errUnsupportedOperation("%s", reason)
	}
}

// Handler returns the HTTP handler of the API. It serves POST requests on
// any path: SDKs post to the endpoint's root or to a queue's URL.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serveHTTP(w, r, fromClient)
	})
}

// origin is the source of a request.
type origin int

const (
	// fromClient is a request of an SQS client, served by Handler.
	fromClient origin = iota
	// fromNode is a request that another node of a cluster forwarded to
	// this one, served by ForwardedHandler.
	fromNode
)

// codeForwarded is the metrics code of a request whose reply RouteToOwner
// wrote.
const codeForwarded = "forwarded"

func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request, from origin) {
	start := time.Now()
	requestID := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", requestID)

	name := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	act, known := a.actions[name]
	label := name
	if !known {
		label = "unknown"
	}

	out, apiErr, routed := a.serve(w, r, name, act, from)
	code := "ok"
	switch {
	case routed:
		code = codeForwarded
	case apiErr != nil:
		a.writeError(w, apiErr)
		code = apiErr.QueryCode
	default:
		a.writeJSON(w, http.StatusOK, out)
	}
	a.metrics.observe(label, code, time.Since(start))
	a.log.Debug("sqs request", slog.String("action", name), slog.String("code", code),
		slog.String("request_id", requestID), slog.Duration("duration", time.Since(start)))
}

// serve checks, authenticates and runs one request. It returns routed=true
// when RouteToOwner wrote the reply.
func (a *API) serve(w http.ResponseWriter, r *http.Request, name string, act action, from origin) (out any, apiErr *apiError, routed bool) {
	if r.Method != http.MethodPost {
		return nil, errInvalidAction("Use POST with the AWS JSON 1.0 protocol; %s requests are not served.", r.Method), false
	}
	if r.Header.Get("X-Amz-Target") == "" {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
			return nil, errInvalidAction("The AWS Query protocol is not supported. Use an AWS SDK that speaks the AWS JSON 1.0 protocol to SQS."), false
		}
		return nil, errInvalidAction("The request has no X-Amz-Target header naming an AmazonSQS action."), false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != contentType && mt != "application/x-amz-json-1.1" && mt != "application/json" {
		return nil, errSerialization("Content-Type %q is not supported; use %s.", r.Header.Get("Content-Type"), contentType), false
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errRequestTooLarge(), false
		}
		return nil, errSerialization("Reading the request body failed: %v.", err), false
	}

	// The node that forwarded a request checked its signature. The request
	// arrives without it, so accessKey stays empty: only sends read it, and
	// sends are never forwarded.
	var accessKey string
	if from == fromClient {
		accessKey, apiErr = a.authenticate(r, body)
		if apiErr != nil {
			return nil, apiErr, false
		}
	}
	if act == nil {
		return nil, errInvalidAction("The action %s is not valid for this endpoint.", r.Header.Get("X-Amz-Target")), false
	}

	rq := &request{http: r, action: name, body: body, accessKey: accessKey}
	if from == fromClient && a.routeToOwner(w, rq) {
		return nil, nil, true
	}
	out, err = act(r.Context(), rq)
	if err != nil {
		apiErr := a.engineError(name, err)
		if apiErr == nil {
			// The client went away, so this reply is never read.
			apiErr = newError(http.StatusBadRequest, "RequestCanceled", "RequestCanceled", "The request was cancelled.")
		}
		return nil, apiErr, false
	}
	if out == nil {
		out = struct{}{}
	}
	return out, nil, false
}

func (a *API) writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		a.log.Error("encoding sqs reply failed", slog.Any("error", err))
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"__type":"com.amazonaws.sqs#InternalError","message":"encoding the reply failed"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *API) writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("x-amzn-query-error", e.QueryCode+";"+e.fault())
	if e.notOwner {
		w.Header().Set(notOwnerHeader, "1")
	}
	a.writeJSON(w, e.Status, struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{Type: "com.amazonaws.sqs#" + e.Code, Message: e.Message})
}

// decode reads the request's JSON body into v. An empty body decodes as {}.
func decode(rq *request, v any) error {
	body := bytes.TrimSpace(rq.body)
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errSerialization("The value of %s must be a JSON %s, not %s.", typeErr.Field, jsonKind(typeErr), typeErr.Value)
		}
		return errSerialization("The request body is not valid JSON for %s: %v.", rq.action, err)
	}
	if dec.More() {
		return errSerialization("The request body must hold one JSON object.")
	}
	return nil
}

func jsonKind(e *json.UnmarshalTypeError) string {
	t := e.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "array"
	default:
		return "object"
	}
}
