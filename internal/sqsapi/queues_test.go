package sqsapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

func TestCreateQueueReturnsWorkingURL(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("orders", nil)

	want := r.srv.URL + "/" + testAccountID + "/orders"
	if url != want {
		t.Errorf("queue url = %q, want %q", url, want)
	}
	if !r.engine.Exists("orders") {
		t.Fatal("engine has no queue orders")
	}
	r.send(url, "hello")
	if got := r.stats("orders").Available; got != 1 {
		t.Errorf("available = %d, want 1", got)
	}
}

func TestCreateQueueAppliesSQSDefaults(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("defaults", nil)

	attrs := r.attributes(url, types.QueueAttributeNameAll)
	want := map[string]string{
		"VisibilityTimeout":                     "30",
		"DelaySeconds":                          "0",
		"MessageRetentionPeriod":                "345600",
		"MaximumMessageSize":                    "1048576",
		"ReceiveMessageWaitTimeSeconds":         "0",
		"ApproximateNumberOfMessages":           "0",
		"ApproximateNumberOfMessagesNotVisible": "0",
		"ApproximateNumberOfMessagesDelayed":    "0",
		"QueueArn":                              "arn:aws:sqs:us-east-1:000000000000:defaults",
		"SqsManagedSseEnabled":                  "false",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	if _, ok := attrs["RedrivePolicy"]; ok {
		t.Errorf("RedrivePolicy = %q, want none", attrs["RedrivePolicy"])
	}
	created, err := strconv.ParseInt(attrs["CreatedTimestamp"], 10, 64)
	if err != nil || created != r.clock.Now().Unix() {
		t.Errorf("CreatedTimestamp = %q, want %d", attrs["CreatedTimestamp"], r.clock.Now().Unix())
	}
	if attrs["LastModifiedTimestamp"] != attrs["CreatedTimestamp"] {
		t.Errorf("LastModifiedTimestamp = %q, want %q", attrs["LastModifiedTimestamp"], attrs["CreatedTimestamp"])
	}
}

func TestCreateQueueStoresAttributesAndTags(t *testing.T) {
	r := newRig(t)
	r.createQueue("dlq", nil)
	policy := `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"4"}`
	_, err := r.client.CreateQueue(r.ctx(), &sqs.CreateQueueInput{
		QueueName: aws.String("work"),
		Attributes: map[string]string{
			"VisibilityTimeout":             "45",
			"DelaySeconds":                  "5",
			"MessageRetentionPeriod":        "3600",
			"MaximumMessageSize":            "2048",
			"ReceiveMessageWaitTimeSeconds": "7",
			"RedrivePolicy":                 policy,
		},
		Tags: map[string]string{"team": "payments"},
	})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}

	cfg, err := r.engine.Queue(context.Background(), "work")
	if err != nil {
		t.Fatalf("engine queue: %v", err)
	}
	if cfg.VisibilityTimeout != 45*time.Second {
		t.Errorf("visibility = %s, want 45s", cfg.VisibilityTimeout)
	}
	if cfg.DefaultDelay != 5*time.Second {
		t.Errorf("default delay = %s, want 5s", cfg.DefaultDelay)
	}
	if cfg.Retention != time.Hour {
		t.Errorf("retention = %s, want 1h", cfg.Retention)
	}
	if cfg.MaxMessageSize != 2048 {
		t.Errorf("max message size = %d, want 2048", cfg.MaxMessageSize)
	}
	if cfg.ReceiveWait != 7*time.Second {
		t.Errorf("receive wait = %s, want 7s", cfg.ReceiveWait)
	}
	if cfg.DeadLetterQueue != "dlq" {
		t.Errorf("dead-letter queue = %q, want dlq", cfg.DeadLetterQueue)
	}
	// maxReceiveCount 4 allows four receives: the engine dead-letters once
	// the receive count exceeds the retry count.
	if cfg.RetryCount != 3 {
		t.Errorf("retry count = %d, want 3", cfg.RetryCount)
	}
	if cfg.Tags["team"] != "payments" {
		t.Errorf("tags = %v, want team=payments", cfg.Tags)
	}

	url := r.srv.URL + "/" + testAccountID + "/work"
	attrs := r.attributes(url, "RedrivePolicy", "VisibilityTimeout")
	if attrs["RedrivePolicy"] != `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":4}` {
		t.Errorf("RedrivePolicy = %s", attrs["RedrivePolicy"])
	}
	if attrs["VisibilityTimeout"] != "45" {
		t.Errorf("VisibilityTimeout = %s, want 45", attrs["VisibilityTimeout"])
	}
	if len(attrs) != 2 {
		t.Errorf("attributes = %v, want only the two requested", attrs)
	}
}

func TestCreateQueueExisting(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("same", map[string]string{"VisibilityTimeout": "60"})

	tests := []struct {
		name  string
		attrs map[string]string
		code  string
	}{
		{"no attributes", nil, ""},
		{"same attributes", map[string]string{"VisibilityTimeout": "60"}, ""},
		{"same default", map[string]string{"DelaySeconds": "0"}, ""},
		{"different attributes", map[string]string{"VisibilityTimeout": "61"}, "QueueAlreadyExists"},
		{"different default", map[string]string{"DelaySeconds": "3"}, "QueueAlreadyExists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := r.client.CreateQueue(r.ctx(), &sqs.CreateQueueInput{QueueName: aws.String("same"), Attributes: tc.attrs})
			if tc.code != "" {
				wantError(t, err, tc.code, http.StatusBadRequest)
				var exists *types.QueueNameExists
				if !errors.As(err, &exists) {
					t.Errorf("error %v is not QueueNameExists", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("create existing queue: %v", err)
			}
			if aws.ToString(out.QueueUrl) != url {
				t.Errorf("url = %s, want %s", aws.ToString(out.QueueUrl), url)
			}
		})
	}
}

func TestCreateQueueRejects(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name   string
		queue  string
		attrs  map[string]string
		code   string
		status int
		says   string
	}{
		{"fifo name", "jobs.fifo", nil, "AWS.SimpleQueueService.UnsupportedOperation", 400, "FifoQueue"},
		{"fifo attribute", "jobs", map[string]string{"FifoQueue": "true"}, "AWS.SimpleQueueService.UnsupportedOperation", 400, "FifoQueue"},
		{"fifo only attribute", "jobs", map[string]string{"ContentBasedDeduplication": "true"}, "InvalidAttributeName", 400, "FIFO"},
		{"dot in name", "a.b", nil, "InvalidParameterValue", 400, "a.b"},
		{"long name", strings.Repeat("n", 81), nil, "InvalidParameterValue", 400, "1 to 80"},
		{"empty name", "", nil, "MissingParameter", 400, "QueueName"},
		{"unknown attribute", "jobs", map[string]string{"Colour": "blue"}, "InvalidAttributeName", 400, "Colour"},
		{"read-only attribute", "jobs", map[string]string{"QueueArn": "x"}, "InvalidAttributeName", 400, "read-only"},
		{"visibility too long", "jobs", map[string]string{"VisibilityTimeout": "43201"}, "InvalidAttributeValue", 400, "VisibilityTimeout"},
		{"visibility not a number", "jobs", map[string]string{"VisibilityTimeout": "ten"}, "InvalidAttributeValue", 400, "VisibilityTimeout"},
		{"delay too long", "jobs", map[string]string{"DelaySeconds": "901"}, "InvalidAttributeValue", 400, "DelaySeconds"},
		{"retention too short", "jobs", map[string]string{"MessageRetentionPeriod": "59"}, "InvalidAttributeValue", 400, "MessageRetentionPeriod"},
		{"retention too long", "jobs", map[string]string{"MessageRetentionPeriod": "1209601"}, "InvalidAttributeValue", 400, "MessageRetentionPeriod"},
		{"message size too small", "jobs", map[string]string{"MaximumMessageSize": "1023"}, "InvalidAttributeValue", 400, "MaximumMessageSize"},
		{"message size too large", "jobs", map[string]string{"MaximumMessageSize": "1048577"}, "InvalidAttributeValue", 400, "MaximumMessageSize"},
		{"wait too long", "jobs", map[string]string{"ReceiveMessageWaitTimeSeconds": "21"}, "InvalidAttributeValue", 400, "ReceiveMessageWaitTimeSeconds"},
		{"policy", "jobs", map[string]string{"Policy": `{"Version":"2012-10-17"}`}, "InvalidAttributeValue", 400, "Policy"},
		{"kms", "jobs", map[string]string{"KmsMasterKeyId": "alias/aws/sqs"}, "InvalidAttributeValue", 400, "KMS"},
		{"redrive to missing queue", "jobs", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nope","maxReceiveCount":3}`}, "InvalidAttributeValue", 400, "does not exist"},
		{"redrive to other account", "jobs", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:111111111111:x","maxReceiveCount":3}`}, "InvalidAttributeValue", 400, "deadLetterTargetArn"},
		{"redrive count zero", "jobs", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:x","maxReceiveCount":0}`}, "InvalidAttributeValue", 400, "maxReceiveCount"},
		{"redrive not json", "jobs", map[string]string{"RedrivePolicy": `maxReceiveCount=3`}, "InvalidAttributeValue", 400, "JSON"},
		{"redrive to itself", "jobs", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:jobs","maxReceiveCount":3}`}, "InvalidAttributeValue", 400, "own dead-letter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.CreateQueue(r.ctx(), &sqs.CreateQueueInput{QueueName: aws.String(tc.queue), Attributes: tc.attrs})
			wantError(t, err, tc.code, tc.status)
			wantMessage(t, err, tc.says)
		})
	}

	_, err := r.client.CreateQueue(r.ctx(), &sqs.CreateQueueInput{QueueName: aws.String("jobs"), Tags: map[string]string{"aws:owner": "me"}})
	wantError(t, err, "InvalidParameterValue", 400)
	if r.engine.Exists("jobs") {
		t.Error("a rejected CreateQueue created the queue")
	}
}

func TestGetQueueURL(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("lookup", nil)

	out, err := r.client.GetQueueUrl(r.ctx(), &sqs.GetQueueUrlInput{QueueName: aws.String("lookup")})
	if err != nil {
		t.Fatalf("get queue url: %v", err)
	}
	if aws.ToString(out.QueueUrl) != url {
		t.Errorf("url = %s, want %s", aws.ToString(out.QueueUrl), url)
	}

	_, err = r.client.GetQueueUrl(r.ctx(), &sqs.GetQueueUrlInput{QueueName: aws.String("missing")})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", http.StatusBadRequest)
	var notFound *types.QueueDoesNotExist
	if !errors.As(err, &notFound) {
		t.Errorf("error %v is not QueueDoesNotExist", err)
	}

	_, err = r.client.GetQueueUrl(r.ctx(), &sqs.GetQueueUrlInput{QueueName: aws.String("lookup"), QueueOwnerAWSAccountId: aws.String("123456789012")})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", http.StatusBadRequest)
}

func TestQueueCreatedByEngineWorks(t *testing.T) {
	r := newRig(t)
	// Qakka names may contain dots, which SQS names may not.
	if _, _, err := r.engine.CreateQueue(context.Background(), queue.Config{Name: "billing.events"}); err != nil {
		t.Fatalf("engine create queue: %v", err)
	}
	out, err := r.client.GetQueueUrl(r.ctx(), &sqs.GetQueueUrlInput{QueueName: aws.String("billing.events")})
	if err != nil {
		t.Fatalf("get queue url: %v", err)
	}
	r.send(aws.ToString(out.QueueUrl), "works")
	attrs := r.attributes(aws.ToString(out.QueueUrl), types.QueueAttributeNameAll)
	if attrs["ApproximateNumberOfMessages"] != "1" {
		t.Errorf("ApproximateNumberOfMessages = %s, want 1", attrs["ApproximateNumberOfMessages"])
	}
	// The engine's defaults show through: 30 s visibility, 14 days'
	// retention, 1 MiB messages.
	if attrs["VisibilityTimeout"] != "30" || attrs["MessageRetentionPeriod"] != "1209600" || attrs["MaximumMessageSize"] != "1048576" {
		t.Errorf("attributes = %v, want the engine defaults", attrs)
	}
}

func TestQueueURLFromAnotherHost(t *testing.T) {
	r := newRig(t)
	r.createQueue("moved", nil)
	// Only the path of a queue URL matters.
	out, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{
		QueueUrl:    aws.String("https://sqs.example.internal/" + testAccountID + "/moved"),
		MessageBody: aws.String("x"),
	})
	if err != nil {
		t.Fatalf("send via another host's url: %v", err)
	}
	if aws.ToString(out.MessageId) == "" {
		t.Error("send returned no message id")
	}

	tests := []struct {
		name, url, code string
		status          int
	}{
		{"other account", r.srv.URL + "/123456789012/moved", "AWS.SimpleQueueService.NonExistentQueue", 400},
		{"missing queue", r.srv.URL + "/" + testAccountID + "/gone", "AWS.SimpleQueueService.NonExistentQueue", 400},
		{"no account", r.srv.URL + "/moved", "InvalidAddress", 404},
		{"trailing slash", r.srv.URL + "/" + testAccountID + "/moved/", "InvalidAddress", 404},
		{"name where the account belongs", r.srv.URL + "/" + testAccountID + "/moved/x", "AWS.SimpleQueueService.NonExistentQueue", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(tc.url), MessageBody: aws.String("x")})
			wantError(t, err, tc.code, tc.status)
		})
	}
}

func TestListQueues(t *testing.T) {
	r := newRig(t)
	for _, name := range []string{"b-2", "a-1", "b-1", "c-1", "b-3"} {
		r.createQueue(name, nil)
	}
	urlsOf := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, r.srv.URL+"/"+testAccountID+"/"+n)
		}
		return out
	}

	out, err := r.client.ListQueues(r.ctx(), &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatalf("list queues: %v", err)
	}
	if !slices.Equal(out.QueueUrls, urlsOf("a-1", "b-1", "b-2", "b-3", "c-1")) {
		t.Errorf("queues = %v", out.QueueUrls)
	}
	if out.NextToken != nil {
		t.Errorf("next token = %q without MaxResults, want none", *out.NextToken)
	}

	out, err = r.client.ListQueues(r.ctx(), &sqs.ListQueuesInput{QueueNamePrefix: aws.String("b-")})
	if err != nil {
		t.Fatalf("list queues with prefix: %v", err)
	}
	if !slices.Equal(out.QueueUrls, urlsOf("b-1", "b-2", "b-3")) {
		t.Errorf("queues with prefix b- = %v", out.QueueUrls)
	}

	// Page through two at a time with the SDK's paginator.
	var pages [][]string
	p := sqs.NewListQueuesPaginator(r.client, &sqs.ListQueuesInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(r.ctx())
		if err != nil {
			t.Fatalf("list page: %v", err)
		}
		pages = append(pages, page.QueueUrls)
	}
	if len(pages) != 3 || !slices.Equal(slices.Concat(pages...), urlsOf("a-1", "b-1", "b-2", "b-3", "c-1")) {
		t.Errorf("pages = %v", pages)
	}

	_, err = r.client.ListQueues(r.ctx(), &sqs.ListQueuesInput{MaxResults: aws.Int32(1001)})
	wantError(t, err, "InvalidParameterValue", 400)
	_, err = r.client.ListQueues(r.ctx(), &sqs.ListQueuesInput{NextToken: aws.String("!!")})
	wantError(t, err, "InvalidParameterValue", 400)
}

func TestDeleteQueue(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("doomed", nil)
	r.send(url, "bye")

	if _, err := r.client.DeleteQueue(r.ctx(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatalf("delete queue: %v", err)
	}
	if r.engine.Exists("doomed") {
		t.Error("queue still exists")
	}
	_, err := r.client.DeleteQueue(r.ctx(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", 400)
	_, err = r.client.GetQueueAttributes(r.ctx(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", 400)
}

func TestGetQueueAttributesCounts(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("counts", nil)
	for i := range 3 {
		r.send(url, fmt.Sprint("m", i))
	}
	_, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("later"), DelaySeconds: 60})
	if err != nil {
		t.Fatalf("send delayed: %v", err)
	}
	r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})

	attrs := r.attributes(url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
	want := map[string]string{
		"ApproximateNumberOfMessages":           "2",
		"ApproximateNumberOfMessagesNotVisible": "1",
		"ApproximateNumberOfMessagesDelayed":    "1",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}

	if got := r.attributes(url); len(got) != 0 {
		t.Errorf("attributes without names = %v, want none", got)
	}
	if got := r.attributes(url, "Policy", "FifoQueue"); len(got) != 0 {
		t.Errorf("unset attributes = %v, want none", got)
	}
	_, err = r.client.GetQueueAttributes(r.ctx(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"Colour"}})
	wantError(t, err, "InvalidAttributeName", 400)
	var bad *types.InvalidAttributeName
	if !errors.As(err, &bad) {
		t.Errorf("error %v is not InvalidAttributeName", err)
	}
}

func TestSetQueueAttributes(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("tunable", nil)
	dlqURL := r.createQueue("tunable-dlq", nil)
	before := r.attributes(url, "LastModifiedTimestamp")["LastModifiedTimestamp"]
	r.clock.Advance(2 * time.Second)

	_, err := r.client.SetQueueAttributes(r.ctx(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(url),
		Attributes: map[string]string{
			"VisibilityTimeout":             "0",
			"DelaySeconds":                  "2",
			"ReceiveMessageWaitTimeSeconds": "20",
			"RedrivePolicy":                 `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:tunable-dlq","maxReceiveCount":1}`,
			"RedriveAllowPolicy":            `{"redrivePermission":"allowAll"}`,
			"SqsManagedSseEnabled":          "false",
		},
	})
	if err != nil {
		t.Fatalf("set attributes: %v", err)
	}
	attrs := r.attributes(url, types.QueueAttributeNameAll)
	if attrs["VisibilityTimeout"] != "0" || attrs["DelaySeconds"] != "2" || attrs["ReceiveMessageWaitTimeSeconds"] != "20" {
		t.Errorf("attributes = %v", attrs)
	}
	if !strings.Contains(attrs["RedrivePolicy"], `"maxReceiveCount":1`) {
		t.Errorf("RedrivePolicy = %s", attrs["RedrivePolicy"])
	}
	if attrs["LastModifiedTimestamp"] == before {
		t.Errorf("LastModifiedTimestamp stayed %s", before)
	}

	sources, err := r.client.ListDeadLetterSourceQueues(r.ctx(), &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlqURL)})
	if err != nil {
		t.Fatalf("list dead-letter sources: %v", err)
	}
	if !slices.Equal(sources.QueueUrls, []string{url}) {
		t.Errorf("sources = %v, want [%s]", sources.QueueUrls, url)
	}

	// An empty RedrivePolicy removes the dead-letter queue.
	_, err = r.client.SetQueueAttributes(r.ctx(), &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"RedrivePolicy": ""}})
	if err != nil {
		t.Fatalf("clear redrive policy: %v", err)
	}
	if _, ok := r.attributes(url, "RedrivePolicy")["RedrivePolicy"]; ok {
		t.Error("RedrivePolicy still set")
	}
	sources, err = r.client.ListDeadLetterSourceQueues(r.ctx(), &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlqURL)})
	if err != nil {
		t.Fatalf("list dead-letter sources: %v", err)
	}
	if len(sources.QueueUrls) != 0 {
		t.Errorf("sources = %v, want none", sources.QueueUrls)
	}

	tests := []struct {
		name  string
		attrs map[string]string
		code  string
	}{
		{"read-only", map[string]string{"ApproximateNumberOfMessages": "3"}, "InvalidAttributeName"},
		{"out of range", map[string]string{"DelaySeconds": "-1"}, "InvalidAttributeValue"},
		{"redrive allow policy", map[string]string{"RedriveAllowPolicy": `{"redrivePermission":"denyAll"}`}, "InvalidAttributeValue"},
		{"fifo", map[string]string{"FifoQueue": "true"}, "AWS.SimpleQueueService.UnsupportedOperation"},
	}
	got := r.call("SetQueueAttributes", `{"QueueUrl":"`+url+`"}`)
	wantRawError(t, got, 400, "MissingParameter", "MissingParameter")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.SetQueueAttributes(r.ctx(), &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: tc.attrs})
			wantError(t, err, tc.code, 400)
		})
	}
}

func TestListDeadLetterSourceQueuesPages(t *testing.T) {
	r := newRig(t)
	dlq := r.createQueue("dead", nil)
	policy := map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dead","maxReceiveCount":5}`}
	for _, n := range []string{"src-c", "src-a", "src-b"} {
		r.createQueue(n, policy)
	}
	r.createQueue("unrelated", nil)

	var got []string
	p := sqs.NewListDeadLetterSourceQueuesPaginator(r.client, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq), MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(r.ctx())
		if err != nil {
			t.Fatalf("list page: %v", err)
		}
		pages++
		got = append(got, page.QueueUrls...)
	}
	base := r.srv.URL + "/" + testAccountID + "/"
	if pages != 2 || !slices.Equal(got, []string{base + "src-a", base + "src-b", base + "src-c"}) {
		t.Errorf("%d pages of sources = %v", pages, got)
	}
}

func TestQueueTags(t *testing.T) {
	r := newRig(t)
	out, err := r.client.CreateQueue(r.ctx(), &sqs.CreateQueueInput{QueueName: aws.String("tagged"), Tags: map[string]string{"env": "test"}})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	url := out.QueueUrl

	if _, err := r.client.TagQueue(r.ctx(), &sqs.TagQueueInput{QueueUrl: url, Tags: map[string]string{"team": "core", "env": "prod"}}); err != nil {
		t.Fatalf("tag queue: %v", err)
	}
	tags, err := r.client.ListQueueTags(r.ctx(), &sqs.ListQueueTagsInput{QueueUrl: url})
	if err != nil {
		t.Fatalf("list tags: %v", err)
	}
	if len(tags.Tags) != 2 || tags.Tags["env"] != "prod" || tags.Tags["team"] != "core" {
		t.Errorf("tags = %v, want env=prod team=core", tags.Tags)
	}

	if _, err := r.client.UntagQueue(r.ctx(), &sqs.UntagQueueInput{QueueUrl: url, TagKeys: []string{"env", "absent"}}); err != nil {
		t.Fatalf("untag queue: %v", err)
	}
	tags, err = r.client.ListQueueTags(r.ctx(), &sqs.ListQueueTagsInput{QueueUrl: url})
	if err != nil {
		t.Fatalf("list tags: %v", err)
	}
	if len(tags.Tags) != 1 || tags.Tags["team"] != "core" {
		t.Errorf("tags = %v, want team=core", tags.Tags)
	}

	many := make(map[string]string)
	for i := range 50 {
		many[fmt.Sprint("k", i)] = "v"
	}
	_, err = r.client.TagQueue(r.ctx(), &sqs.TagQueueInput{QueueUrl: url, Tags: many})
	wantError(t, err, "InvalidParameterValue", 400)
	wantMessage(t, err, "51")
	_, err = r.client.TagQueue(r.ctx(), &sqs.TagQueueInput{QueueUrl: url, Tags: map[string]string{strings.Repeat("k", 129): "v"}})
	wantError(t, err, "InvalidParameterValue", 400)

	// The SDK checks required members itself, so these go without it.
	got := r.call("TagQueue", `{"QueueUrl":"`+*url+`"}`)
	wantRawError(t, got, 400, "MissingParameter", "MissingParameter")
	got = r.call("UntagQueue", `{"QueueUrl":"`+*url+`","TagKeys":[]}`)
	wantRawError(t, got, 400, "MissingParameter", "MissingParameter")
}

func TestPurgeQueue(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("purgeable", nil)
	for i := range 4 {
		r.send(url, fmt.Sprint("m", i))
	}
	inflight := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})

	if _, err := r.client.PurgeQueue(r.ctx(), &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatalf("purge: %v", err)
	}
	s := r.stats("purgeable")
	if s.Available != 0 || s.Inflight != 0 {
		t.Errorf("after purge available = %d, inflight = %d, want 0 and 0", s.Available, s.Inflight)
	}
	// The purged delivery's handle no longer works for a visibility change.
	_, err := r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: inflight[0].ReceiptHandle, VisibilityTimeout: 10,
	})
	wantError(t, err, "InvalidParameterValue", 400)

	_, err = r.client.PurgeQueue(r.ctx(), &sqs.PurgeQueueInput{QueueUrl: aws.String(url)})
	wantError(t, err, "AWS.SimpleQueueService.PurgeQueueInProgress", http.StatusForbidden)
	var inProgress *types.PurgeQueueInProgress
	if !errors.As(err, &inProgress) {
		t.Errorf("error %v is not PurgeQueueInProgress", err)
	}

	// After 60 seconds a purge is allowed again.
	r.skew.Store(int64(61 * time.Second))
	if _, err := r.client.PurgeQueue(r.ctx(), &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatalf("second purge after 61 s: %v", err)
	}
}

func TestUnsupportedActions(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("perms", nil)
	_, err := r.client.AddPermission(r.ctx(), &sqs.AddPermissionInput{
		QueueUrl: aws.String(url), Label: aws.String("l"), AWSAccountIds: []string{"111111111111"}, Actions: []string{"SendMessage"},
	})
	wantError(t, err, "AWS.SimpleQueueService.UnsupportedOperation", 400)
	var unsupported *types.UnsupportedOperation
	if !errors.As(err, &unsupported) {
		t.Errorf("error %v is not UnsupportedOperation", err)
	}
	_, err = r.client.StartMessageMoveTask(r.ctx(), &sqs.StartMessageMoveTaskInput{SourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:perms")})
	wantError(t, err, "AWS.SimpleQueueService.UnsupportedOperation", 400)
}

func TestOutboxQueuesAreHidden(t *testing.T) {
	r := newRig(t)
	r.createQueue("visible", nil)
	outbox := region.OutboxName("west")
	if _, _, err := r.engine.CreateQueue(r.ctx(), queue.Config{Name: outbox}); err != nil {
		t.Fatalf("create outbox: %v", err)
	}

	out, err := r.client.ListQueues(r.ctx(), &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatalf("list queues: %v", err)
	}
	if !slices.Equal(out.QueueUrls, []string{r.srv.URL + "/" + testAccountID + "/visible"}) {
		t.Errorf("queues = %v, want only the visible one", out.QueueUrls)
	}

	_, err = r.client.GetQueueUrl(r.ctx(), &sqs.GetQueueUrlInput{QueueName: aws.String(outbox)})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", 400)
	_, err = r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{
		QueueUrl:    aws.String(r.srv.URL + "/" + testAccountID + "/" + outbox),
		MessageBody: aws.String("x"),
	})
	wantError(t, err, "AWS.SimpleQueueService.NonExistentQueue", 400)
	if s := r.stats(outbox); s.Available != 0 {
		t.Errorf("the outbox holds %d messages sent through the SQS API", s.Available)
	}
}
