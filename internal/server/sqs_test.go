package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func sqsClient(r *running, keyID, secret string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:  &http.Client{},
	}, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String("http://" + r.srv.SQSAddr().String())
	})
}

func TestSQSShareQueuesWithREST(t *testing.T) {
	cfg := testConfig(t)
	cfg.SQS.AccessKeyID = "test-key"
	cfg.SQS.SecretAccessKey = "test-secret"
	r := start(t, cfg)
	c := testClient(t)
	ctx := context.Background()

	if status, body := do(t, c, http.MethodPost, r.url("/api/queues"), `{"name":"shared"}`); status != http.StatusCreated {
		t.Fatalf("create queue over REST: %d %s", status, body)
	}
	sq := sqsClient(r, "test-key", "test-secret")
	url, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("shared")})
	if err != nil {
		t.Fatalf("GetQueueUrl over SQS: %v", err)
	}
	if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url.QueueUrl, MessageBody: aws.String("from sqs")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	status, body := do(t, c, http.MethodGet, r.url("/api/queues/shared/messages?count=1&wait=0"), "")
	if status != http.StatusOK || !strings.Contains(body, `"count":1`) {
		t.Errorf("receive over REST: %d %s", status, body)
	}

	bad := sqsClient(r, "test-key", "wrong-secret")
	if _, err := bad.ListQueues(ctx, &sqs.ListQueuesInput{}); err == nil {
		t.Errorf("ListQueues with a wrong secret succeeded")
	}
}

func TestSQSOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.SQS.Listen = ""
	r := start(t, cfg)
	if addr := r.srv.SQSAddr(); addr != nil {
		t.Errorf("SQS API listens on %s with sqs-listen empty", addr)
	}
}
