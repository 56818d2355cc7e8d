package sqsapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/qakka/qakka/internal/sqsapi"
)

func TestProtocolErrors(t *testing.T) {
	r := newRig(t)
	r.createQueue("proto", nil)

	got := r.call("Frobnicate", `{}`)
	wantRawError(t, got, 400, "InvalidAction", "InvalidAction")

	got = r.call("ListQueues", `{"QueueNamePrefix":`)
	wantRawError(t, got, 400, "SerializationException", "SerializationException")

	got = r.call("ListQueues", `{"MaxResults":"ten"}`)
	wantRawError(t, got, 400, "SerializationException", "SerializationException")
	if msg, _ := got.body["message"].(string); !strings.Contains(msg, "MaxResults") {
		t.Errorf("message %q does not name MaxResults", msg)
	}

	got = r.call("GetQueueUrl", `{"QueueName":"absent"}`)
	wantRawError(t, got, 400, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")
	if got.header.Get("x-amzn-RequestId") == "" {
		t.Error("reply has no x-amzn-RequestId")
	}
	if ct := got.header.Get("Content-Type"); ct != "application/x-amz-json-1.0" {
		t.Errorf("content type = %q", ct)
	}

	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, r.srv.URL+"/", strings.NewReader("Action=ListQueues&Version=2012-11-05"))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	got = r.do(req)
	wantRawError(t, got, 400, "InvalidAction", "InvalidAction")
	if msg, _ := got.body["message"].(string); !strings.Contains(msg, "Query protocol") {
		t.Errorf("message %q does not name the Query protocol", msg)
	}

	req, err = http.NewRequestWithContext(context.Background(), http.MethodGet, r.srv.URL+"/", nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	wantRawError(t, r.do(req), 400, "InvalidAction", "InvalidAction")

	huge := `{"QueueName":"` + strings.Repeat("q", 10<<20) + `"}`
	got = r.call("GetQueueUrl", huge)
	wantRawError(t, got, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "RequestEntityTooLarge")
}

func TestRequestToQueueURLPath(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("by-path", nil)
	// Older clients post to the queue's URL and leave QueueUrl out.
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(`{"MessageBody":"via path"}`))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS.SendMessage")
	got := r.do(req)
	if got.status != http.StatusOK || got.body["MessageId"] == nil {
		t.Errorf("send to the queue url: status %d, reply %v", got.status, got.body)
	}
	if s := r.stats("by-path"); s.Available != 1 {
		t.Errorf("available = %d, want 1", s.Available)
	}
}

func TestMetrics(t *testing.T) {
	r := newRig(t)
	r.createQueue("measured", nil)
	_, err := r.client.GetQueueUrl(r.ctx(), &sqs.GetQueueUrlInput{QueueName: aws.String("absent")})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", 400)

	families, err := r.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	counts := map[string]float64{}
	var observations uint64
	for _, f := range families {
		switch f.GetName() {
		case "qakka_sqs_requests_total":
			for _, m := range f.GetMetric() {
				counts[labels(m)] = m.GetCounter().GetValue()
			}
		case "qakka_sqs_request_duration_seconds":
			for _, m := range f.GetMetric() {
				observations += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if counts["CreateQueue/ok"] != 1 {
		t.Errorf("CreateQueue ok = %v, want 1 (%v)", counts["CreateQueue/ok"], counts)
	}
	if counts["GetQueueUrl/AWS.SimpleQueueService.NonExistentQueue"] != 1 {
		t.Errorf("GetQueueUrl NonExistentQueue = %v, want 1", counts["GetQueueUrl/AWS.SimpleQueueService.NonExistentQueue"])
	}
	if observations != 2 {
		t.Errorf("duration observations = %d, want 2", observations)
	}
}

func labels(m *dto.Metric) string {
	var action, code string
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "action":
			action = l.GetValue()
		case "code":
			code = l.GetValue()
		}
	}
	return action + "/" + code
}

func TestNewValidatesConfig(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name string
		cfg  sqsapi.Config
		says string
	}{
		{"no engine", sqsapi.Config{}, "engine"},
		{"bad account", sqsapi.Config{Engine: r.engine, AccountID: "12345"}, "12 digits"},
		{"bad region", sqsapi.Config{Engine: r.engine, Region: "US East"}, "region"},
		{"empty secret", sqsapi.Config{Engine: r.engine, Credentials: map[string]string{"AKID": ""}}, "secret"},
		{"registered twice", sqsapi.Config{Engine: r.engine, Registerer: r.reg}, "register"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = slog.New(slog.DiscardHandler)
			_, err := sqsapi.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("New error = %v, want one mentioning %q", err, tc.says)
			}
		})
	}
	if _, err := sqsapi.New(sqsapi.Config{Engine: r.engine, Registerer: prometheus.NewRegistry()}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}
