package sqsapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/sqsapi"
	"github.com/qakka/qakka/internal/storage/pebblestore"
)

// routeCall is one call of Config.RouteToOwner.
type routeCall struct {
	action string
	queue  string
	body   string
}

// routeRecorder is a RouteToOwner that records its calls. When reply is
// set, it writes reply and returns true. Otherwise it lets the node serve
// the request.
type routeRecorder struct {
	reply string

	mu    sync.Mutex
	calls []routeCall
}

func (rr *routeRecorder) route(w http.ResponseWriter, r *http.Request, queue string, body []byte) bool {
	rr.mu.Lock()
	rr.calls = append(rr.calls, routeCall{
		action: strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS."),
		queue:  queue,
		body:   string(body),
	})
	rr.mu.Unlock()
	if rr.reply == "" {
		return false
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_, _ = io.WriteString(w, rr.reply)
	return true
}

// take returns the recorded calls and clears the record.
func (rr *routeRecorder) take() []routeCall {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	calls := rr.calls
	rr.calls = nil
	return calls
}

// routedAPI serves a second SQS API, with credentials and route as its
// RouteToOwner, over the rig's engine, and returns an SDK client for it.
func routedAPI(t *testing.T, r *rig, route func(http.ResponseWriter, *http.Request, string, []byte) bool, keyID, secret string) *sqs.Client {
	t.Helper()
	api, err := sqsapi.New(sqsapi.Config{
		Engine:       r.engine,
		Logger:       slog.New(slog.DiscardHandler),
		Region:       testRegion,
		AccountID:    testAccountID,
		Credentials:  map[string]string{testKeyID: testSecret},
		RouteToOwner: route,
	})
	if err != nil {
		t.Fatalf("new sqs api: %v", err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return sqs.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:  srv.Client(),
	}, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = aws.NopRetryer{}
	})
}

func TestRouteToOwnerActions(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("jobs", nil)
	r.createQueue("jobs-dlq", nil)
	rec := &routeRecorder{}
	client := routedAPI(t, r, rec.route, testKeyID, testSecret)
	ctx := r.ctx()

	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("hello")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	received, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
	if err != nil || len(received.Messages) != 1 {
		t.Fatalf("ReceiveMessage = %v, %v; want one message", received, err)
	}
	handle := received.Messages[0].ReceiptHandle

	steps := []struct {
		action string
		call   func() error
		routed bool
	}{
		{"SendMessageBatch", func() error {
			_, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url),
				Entries: []types.SendMessageBatchRequestEntry{{Id: aws.String("1"), MessageBody: aws.String("b")}}})
			return err
		}, false},
		{"CreateQueue", func() error {
			_, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("other")})
			return err
		}, false},
		{"GetQueueUrl", func() error {
			_, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("jobs")})
			return err
		}, false},
		{"ListQueues", func() error {
			_, err := client.ListQueues(ctx, &sqs.ListQueuesInput{})
			return err
		}, false},
		{"ListQueueTags", func() error {
			_, err := client.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
			return err
		}, false},
		{"ListDeadLetterSourceQueues", func() error {
			_, err := client.ListDeadLetterSourceQueues(ctx, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(url)})
			return err
		}, false},
		{"ChangeMessageVisibility", func() error {
			_, err := client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: handle, VisibilityTimeout: 60})
			return err
		}, true},
		{"ChangeMessageVisibilityBatch", func() error {
			_, err := client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url),
				Entries: []types.ChangeMessageVisibilityBatchRequestEntry{{Id: aws.String("1"), ReceiptHandle: handle, VisibilityTimeout: 60}}})
			return err
		}, true},
		{"DeleteMessage", func() error {
			_, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: handle})
			return err
		}, true},
		{"DeleteMessageBatch", func() error {
			_, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url),
				Entries: []types.DeleteMessageBatchRequestEntry{{Id: aws.String("1"), ReceiptHandle: handle}}})
			return err
		}, true},
		{"GetQueueAttributes", func() error {
			_, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
				AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
			return err
		}, true},
		{"SetQueueAttributes", func() error {
			_, err := client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url),
				Attributes: map[string]string{"DelaySeconds": "0"}})
			return err
		}, true},
		{"TagQueue", func() error {
			_, err := client.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: aws.String(url), Tags: map[string]string{"team": "a"}})
			return err
		}, true},
		{"UntagQueue", func() error {
			_, err := client.UntagQueue(ctx, &sqs.UntagQueueInput{QueueUrl: aws.String(url), TagKeys: []string{"team"}})
			return err
		}, true},
		{"PurgeQueue", func() error {
			_, err := client.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(url)})
			return err
		}, true},
		{"DeleteQueue", func() error {
			_, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
			return err
		}, true},
	}
	rec.take()
	for _, step := range steps {
		if err := step.call(); err != nil {
			t.Errorf("%s: %v", step.action, err)
		}
		calls := rec.take()
		if !step.routed {
			if len(calls) != 0 {
				t.Errorf("%s was offered to RouteToOwner: %+v", step.action, calls)
			}
			continue
		}
		if len(calls) != 1 {
			t.Errorf("%s was offered to RouteToOwner %d times, want once", step.action, len(calls))
			continue
		}
		if calls[0].action != step.action || calls[0].queue != "jobs" {
			t.Errorf("%s was offered as %s on queue %q, want queue jobs", step.action, calls[0].action, calls[0].queue)
		}
		if !strings.Contains(calls[0].body, url) {
			t.Errorf("%s was offered with body %s, want the request's body with QueueUrl %s", step.action, calls[0].body, url)
		}
	}
}

func TestRouteToOwnerWritesReply(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("jobs", nil)
	r.send(url, "stays here")
	rec := &routeRecorder{reply: `{}`}
	client := routedAPI(t, r, rec.route, testKeyID, testSecret)

	out, err := client.ReceiveMessage(r.ctx(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(out.Messages) != 0 {
		t.Errorf("ReceiveMessage returned %d messages, want the route's empty reply", len(out.Messages))
	}
	if calls := rec.take(); len(calls) != 1 {
		t.Errorf("RouteToOwner called %d times, want once", len(calls))
	}
	if s := r.stats("jobs"); s.Available != 1 || s.Inflight != 0 {
		t.Errorf("after a routed receive: available %d, inflight %d; want the message still available here", s.Available, s.Inflight)
	}
}

func TestRouteToOwnerAfterAuthentication(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("jobs", nil)
	rec := &routeRecorder{reply: `{}`}

	bad := routedAPI(t, r, rec.route, testKeyID, "wrong-secret")
	_, err := bad.ReceiveMessage(r.ctx(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	wantError(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
	if calls := rec.take(); len(calls) != 0 {
		t.Errorf("a request with a wrong signature was offered to RouteToOwner: %+v", calls)
	}

	good := routedAPI(t, r, rec.route, testKeyID, testSecret)
	_, err = good.ReceiveMessage(r.ctx(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url + "-missing")})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", http.StatusBadRequest)
	if calls := rec.take(); len(calls) != 0 {
		t.Errorf("a request for a missing queue was offered to RouteToOwner: %+v", calls)
	}
}

func TestForwardedHandlerSkipsSignature(t *testing.T) {
	r := newRigWith(t, rigOptions{credentials: map[string]string{testKeyID: testSecret}})
	url := r.createQueue("jobs", nil)
	r.send(url, "forwarded")

	api, err := sqsapi.New(sqsapi.Config{
		Engine:      r.engine,
		Logger:      slog.New(slog.DiscardHandler),
		AccountID:   testAccountID,
		Credentials: map[string]string{testKeyID: testSecret},
		RouteToOwner: func(http.ResponseWriter, *http.Request, string, []byte) bool {
			panic("a forwarded request was routed again")
		},
	})
	if err != nil {
		t.Fatalf("new sqs api: %v", err)
	}
	forwarded := httptest.NewServer(api.ForwardedHandler())
	t.Cleanup(forwarded.Close)
	direct := httptest.NewServer(api.Handler())
	t.Cleanup(direct.Close)

	post := func(base, path string) rawReply {
		req, err := http.NewRequestWithContext(r.ctx(), http.MethodPost, base+path, strings.NewReader(`{"MaxNumberOfMessages":1}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
		return r.do(req)
	}

	// The queue is named by the request's path, which a forwarding node
	// keeps.
	unsigned := post(direct.URL, "/"+testAccountID+"/jobs")
	wantRawError(t, unsigned, http.StatusForbidden, "MissingAuthenticationToken", "MissingAuthenticationToken")

	got := post(forwarded.URL, "/"+testAccountID+"/jobs")
	if got.status != http.StatusOK {
		t.Fatalf("forwarded ReceiveMessage: status %d %v", got.status, got.body)
	}
	msgs, _ := got.body["Messages"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("forwarded ReceiveMessage returned %v, want one message", got.body)
	}
	if body := msgs[0].(map[string]any)["Body"]; body != "forwarded" {
		t.Errorf("message body = %v, want forwarded", body)
	}
}

func TestNotOwnerIsRetryable(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	// A cluster node serves only the queues whose lease it holds, and this
	// one holds none.
	e, err := queue.New(st, queue.Options{Node: "node-a", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	defer e.Close()
	if _, _, err := e.CreateQueue(context.Background(), queue.Config{Name: "jobs"}); err != nil {
		t.Fatalf("create queue: %v", err)
	}

	api, err := sqsapi.New(sqsapi.Config{Engine: e, Logger: slog.New(slog.DiscardHandler), AccountID: testAccountID})
	if err != nil {
		t.Fatalf("new sqs api: %v", err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	for _, action := range []string{"ReceiveMessage", "PurgeQueue", "GetQueueAttributes"} {
		body := `{"QueueUrl":"` + srv.URL + "/" + testAccountID + `/jobs","AttributeNames":["All"]}`
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d (%s), want 503", action, resp.StatusCode, reply)
		}
		if q := resp.Header.Get("x-amzn-query-error"); q != "ServiceUnavailable;Receiver" {
			t.Errorf("%s: x-amzn-query-error = %q, want ServiceUnavailable;Receiver", action, q)
		}
		if resp.Header.Get("X-Qakka-Not-Owner") == "" {
			t.Errorf("%s: reply lacks X-Qakka-Not-Owner", action)
		}
		if !strings.Contains(string(reply), "moving between the nodes") {
			t.Errorf("%s: reply %s does not say the queue is moving", action, reply)
		}
	}
}
