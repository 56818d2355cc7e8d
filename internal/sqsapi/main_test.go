package sqsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/qakka/qakka/internal/clock"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/sqsapi"
	"github.com/qakka/qakka/internal/storage"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testRegion    = "us-east-1"
	testAccountID = "000000000000"
	testKeyID     = "AKIDQAKKATEST"
	testSecret    = "qakka-test-secret"
)

// rig is the SQS API over an engine on Pebble in a temporary directory, on
// a fake clock, served by an httptest server on loopback, with an SDK client
// pointed at it.
type rig struct {
	t      *testing.T
	clock  *clock.Fake
	store  storage.Store
	engine *queue.Engine
	reg    *prometheus.Registry
	srv    *httptest.Server
	client *sqs.Client
	// skew is added to the real time that signatures are checked against.
	skew atomic.Int64
}

type rigOptions struct {
	credentials map[string]string
	engine      queue.Options
}

func newRig(t *testing.T) *rig {
	return newRigWith(t, rigOptions{})
}

func newRigWith(t *testing.T, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, clock: clock.NewFake(time.Now().UTC().Truncate(time.Millisecond))}

	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	r.store = st

	opts := o.engine
	opts.Clock = r.clock
	opts.Logger = slog.New(slog.DiscardHandler)
	e, err := queue.New(st, opts)
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	r.engine = e

	r.reg = prometheus.NewRegistry()
	api, err := sqsapi.New(sqsapi.Config{
		Engine:      e,
		Logger:      slog.New(slog.DiscardHandler),
		Registerer:  r.reg,
		Region:      testRegion,
		AccountID:   testAccountID,
		Credentials: o.credentials,
		Now:         func() time.Time { return time.Now().Add(time.Duration(r.skew.Load())) },
	})
	if err != nil {
		t.Fatalf("new sqs api: %v", err)
	}
	r.srv = httptest.NewServer(api.Handler())
	t.Cleanup(r.srv.Close)

	r.client = r.newClient(testKeyID, testSecret)
	return r
}

// newClient returns an SDK client that signs with the given key and does
// not retry.
func (r *rig) newClient(keyID, secret string) *sqs.Client {
	cfg := aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:  r.srv.Client(),
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(r.srv.URL)
		o.Retryer = aws.NopRetryer{}
	})
}

func (r *rig) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	r.t.Cleanup(cancel)
	return ctx
}

// createQueue creates a queue through the SDK and returns its URL.
func (r *rig) createQueue(name string, attrs map[string]string) string {
	r.t.Helper()
	out, err := r.client.CreateQueue(r.ctx(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		r.t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

func (r *rig) send(url, body string) *sqs.SendMessageOutput {
	r.t.Helper()
	out, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
	if err != nil {
		r.t.Fatalf("send to %s: %v", url, err)
	}
	return out
}

// receive makes one short-poll receive.
func (r *rig) receive(in *sqs.ReceiveMessageInput) []types.Message {
	r.t.Helper()
	out, err := r.client.ReceiveMessage(r.ctx(), in)
	if err != nil {
		r.t.Fatalf("receive from %s: %v", aws.ToString(in.QueueUrl), err)
	}
	return out.Messages
}

// receiveEventually polls with short receives until one returns messages.
func (r *rig) receiveEventually(in *sqs.ReceiveMessageInput) []types.Message {
	r.t.Helper()
	var msgs []types.Message
	r.eventually("a message to receive", func() bool {
		msgs = r.receive(in)
		return len(msgs) > 0
	})
	return msgs
}

// eventually polls cond until it holds or a deadline passes.
func (r *rig) eventually(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *rig) attributes(url string, names ...types.QueueAttributeName) map[string]string {
	r.t.Helper()
	out, err := r.client.GetQueueAttributes(r.ctx(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: names})
	if err != nil {
		r.t.Fatalf("get attributes of %s: %v", url, err)
	}
	return out.Attributes
}

// stats returns the engine's counts of a queue.
func (r *rig) stats(name string) queue.Stats {
	r.t.Helper()
	s, err := r.engine.Stats(context.Background(), name)
	if err != nil {
		r.t.Fatalf("stats of %s: %v", name, err)
	}
	return s
}

// rawReply is the reply to a request made without the SDK.
type rawReply struct {
	status int
	header http.Header
	body   map[string]any
}

// call posts a JSON body for an action, unsigned, and decodes the reply.
func (r *rig) call(action, body string) rawReply {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.ctx(), http.MethodPost, r.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		r.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
	return r.do(req)
}

func (r *rig) do(req *http.Request) rawReply {
	r.t.Helper()
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	out := rawReply{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&out.body); err != nil {
		r.t.Fatalf("decode reply to %s: %v", req.Header.Get("X-Amz-Target"), err)
	}
	return out
}

// wantRawError checks the status, the error type and the query error
// header of a reply.
func wantRawError(t *testing.T, got rawReply, status int, shape, queryCode string) {
	t.Helper()
	if got.status != status {
		t.Errorf("status = %d, want %d (%v)", got.status, status, got.body)
	}
	if got.body["__type"] != "com.amazonaws.sqs#"+shape {
		t.Errorf("__type = %v, want com.amazonaws.sqs#%s", got.body["__type"], shape)
	}
	if msg, _ := got.body["message"].(string); msg == "" {
		t.Errorf("reply %v has no message", got.body)
	}
	if h := got.header.Get("x-amzn-query-error"); h != queryCode+";Sender" {
		t.Errorf("x-amzn-query-error = %q, want %q", h, queryCode+";Sender")
	}
}

// wantError checks that err is an SQS error with the code and HTTP status.
func wantError(t *testing.T, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want an API error %s", err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("error code = %q (%v), want %q", apiErr.ErrorCode(), err, code)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) {
		t.Fatalf("got %v, want an HTTP response error", err)
	}
	if respErr.HTTPStatusCode() != status {
		t.Errorf("status = %d, want %d", respErr.HTTPStatusCode(), status)
	}
}

// wantMessage checks that the error message contains part.
func wantMessage(t *testing.T, err error, part string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || !strings.Contains(apiErr.ErrorMessage(), part) {
		t.Errorf("error %v does not mention %q", err, part)
	}
}
