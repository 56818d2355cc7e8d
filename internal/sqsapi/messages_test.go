package sqsapi_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/qakka/qakka/internal/queue"
)

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func md5Of(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestSendReceiveDelete(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("roundtrip", nil)
	sentAt := r.clock.Now()

	attrs := map[string]types.MessageAttributeValue{
		"customer": stringAttr("c-42"),
		"amount":   {DataType: aws.String("Number"), StringValue: aws.String("12.50")},
		"blob":     {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 0xff}},
		"doc":      {DataType: aws.String("String.json"), StringValue: aws.String(`{"k":"v"}`)},
	}
	sent, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{
		QueueUrl:          aws.String(url),
		MessageBody:       aws.String("héllo wörld ✓"),
		MessageAttributes: attrs,
		MessageSystemAttributes: map[string]types.MessageSystemAttributeValue{
			"AWSTraceHeader": {DataType: aws.String("String"), StringValue: aws.String("Root=1-5759e988-bd862e3fe1be46a994272793")},
		},
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if aws.ToString(sent.MD5OfMessageBody) != md5Of("héllo wörld ✓") {
		t.Errorf("MD5OfMessageBody = %s", aws.ToString(sent.MD5OfMessageBody))
	}
	if aws.ToString(sent.MD5OfMessageAttributes) == "" || aws.ToString(sent.MD5OfMessageSystemAttributes) == "" {
		t.Errorf("send reply lacks attribute digests: %+v", sent)
	}

	r.clock.Advance(3 * time.Second)
	receivedAt := r.clock.Now()
	msgs := r.receive(&sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if len(msgs) != 1 {
		t.Fatalf("received %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if aws.ToString(m.Body) != "héllo wörld ✓" {
		t.Errorf("body = %q", aws.ToString(m.Body))
	}
	if aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) {
		t.Errorf("message id = %s, want %s", aws.ToString(m.MessageId), aws.ToString(sent.MessageId))
	}
	if aws.ToString(m.MD5OfMessageAttributes) != aws.ToString(sent.MD5OfMessageAttributes) {
		t.Errorf("MD5OfMessageAttributes = %s on receive, %s on send", aws.ToString(m.MD5OfMessageAttributes), aws.ToString(sent.MD5OfMessageAttributes))
	}
	if len(m.MessageAttributes) != 4 {
		t.Errorf("message attributes = %v, want 4", m.MessageAttributes)
	}
	if got := m.MessageAttributes["blob"]; !bytes.Equal(got.BinaryValue, []byte{0, 1, 2, 0xff}) || aws.ToString(got.DataType) != "Binary" {
		t.Errorf("blob = %+v", got)
	}
	if got := m.MessageAttributes["amount"]; aws.ToString(got.StringValue) != "12.50" || aws.ToString(got.DataType) != "Number" {
		t.Errorf("amount = %+v", got)
	}
	if got := m.MessageAttributes["doc"]; aws.ToString(got.DataType) != "String.json" {
		t.Errorf("doc = %+v", got)
	}

	wantSys := map[string]string{
		"SenderId":                         testAccountID,
		"SentTimestamp":                    strconv.FormatInt(sentAt.UnixMilli(), 10),
		"ApproximateReceiveCount":          "1",
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(receivedAt.UnixMilli(), 10),
		"AWSTraceHeader":                   "Root=1-5759e988-bd862e3fe1be46a994272793",
	}
	for k, v := range wantSys {
		if m.Attributes[k] != v {
			t.Errorf("system attribute %s = %q, want %q", k, m.Attributes[k], v)
		}
	}
	for _, k := range []string{"SequenceNumber", "MessageDeduplicationId", "DeadLetterQueueSourceArn", "MessageGroupId"} {
		if v, ok := m.Attributes[k]; ok {
			t.Errorf("system attribute %s = %q, want none", k, v)
		}
	}

	if _, err := r.client.DeleteMessage(r.ctx(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if s := r.stats("roundtrip"); s.Available+s.Inflight != 0 {
		t.Errorf("after delete available = %d, inflight = %d", s.Available, s.Inflight)
	}
	// A handle whose delivery is over deletes nothing and succeeds, as in
	// SQS.
	if _, err := r.client.DeleteMessage(r.ctx(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Errorf("second delete with the same handle: %v", err)
	}
}

func TestMessageAttributeDigest(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("digest", nil)

	// Published sample digests of the SQS algorithm.
	tests := []struct {
		name  string
		attrs map[string]types.MessageAttributeValue
		want  string
	}{
		{"two strings", map[string]types.MessageAttributeValue{
			"test_attribute_name_2": stringAttr("test_attribute_value_2"),
			"test_attribute_name_1": stringAttr("test_attribute_value_1"),
		}, "d53f3b558fe951154770f25cb63dbba9"},
		{"binary", map[string]types.MessageAttributeValue{
			"test_attribute_name": {DataType: aws.String("Binary"), BinaryValue: []byte("test_attribute_value")},
		}, "23f6bd27ea87aab7dfeadcc9aebee495"},
		{"string and number", map[string]types.MessageAttributeValue{
			"ordinal":  {DataType: aws.String("Number"), StringValue: aws.String("1")},
			"category": stringAttr("test"),
		}, "d21ae90c49061e927f57df5f5d72be1f"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), MessageAttributes: tc.attrs})
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if got := aws.ToString(out.MD5OfMessageAttributes); got != tc.want {
				t.Errorf("MD5OfMessageAttributes = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestReceiveSelectsAttributes(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("select", nil)
	attrs := map[string]types.MessageAttributeValue{
		"order.id":    stringAttr("1"),
		"order.state": stringAttr("new"),
		"orderly":     stringAttr("x"),
		"trace":       stringAttr("t"),
	}

	tests := []struct {
		name  string
		names []string
		want  []string
	}{
		{"none", nil, nil},
		{"prefix", []string{"order.*"}, []string{"order.id", "order.state"}},
		{"exact", []string{"trace", "missing"}, []string{"trace"}},
		{"all by pattern", []string{".*"}, []string{"order.id", "order.state", "orderly", "trace"}},
		{"all", []string{"All"}, []string{"order.id", "order.state", "orderly", "trace"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("b"), MessageAttributes: attrs})
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			msgs := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageAttributeNames: tc.names})
			if len(msgs) != 1 {
				t.Fatalf("received %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if len(m.MessageAttributes) != len(tc.want) {
				t.Errorf("attributes = %v, want %v", m.MessageAttributes, tc.want)
			}
			want := map[string]types.MessageAttributeValue{}
			for _, n := range tc.want {
				if _, ok := m.MessageAttributes[n]; !ok {
					t.Errorf("attribute %s missing", n)
				}
				want[n] = attrs[n]
			}
			if len(tc.want) == 0 {
				if m.MD5OfMessageAttributes != nil {
					t.Errorf("MD5OfMessageAttributes = %s without attributes", *m.MD5OfMessageAttributes)
				}
			} else if got := aws.ToString(m.MD5OfMessageAttributes); got != digestOf(t, r, want) {
				t.Errorf("MD5OfMessageAttributes = %s does not cover the returned attributes", got)
			}
			if _, err := r.client.DeleteMessage(r.ctx(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("delete: %v", err)
			}
		})
	}
}

// digestOf returns the MD5OfMessageAttributes that a send of attrs gets,
// sending to a scratch queue.
func digestOf(t *testing.T, r *rig, attrs map[string]types.MessageAttributeValue) string {
	t.Helper()
	url := r.createQueue("scratch", nil)
	out, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("d"), MessageAttributes: attrs})
	if err != nil {
		t.Fatalf("send to scratch: %v", err)
	}
	return aws.ToString(out.MD5OfMessageAttributes)
}

func TestSendLimits(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("limits", map[string]string{"MaximumMessageSize": "1024"})

	eleven := map[string]types.MessageAttributeValue{}
	for i := range 11 {
		eleven[fmt.Sprint("a", i)] = stringAttr("v")
	}
	tests := []struct {
		name string
		in   sqs.SendMessageInput
		code string
		says string
	}{
		{"body over the queue limit", sqs.SendMessageInput{MessageBody: aws.String(strings.Repeat("x", 1025))}, "InvalidParameterValue", "shorter than 1025 bytes"},
		{"body and attributes over the limit", sqs.SendMessageInput{
			MessageBody:       aws.String(strings.Repeat("x", 1000)),
			MessageAttributes: map[string]types.MessageAttributeValue{"name": stringAttr(strings.Repeat("v", 20))},
		}, "InvalidParameterValue", "shorter than"},
		{"eleven attributes", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: eleven}, "InvalidParameterValue", "[11]"},
		{"reserved attribute name", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"AWS.thing": stringAttr("v")}}, "InvalidParameterValue", "reserved"},
		{"attribute name with dots", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"a..b": stringAttr("v")}}, "InvalidParameterValue", "'..'"},
		{"attribute name with space", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"a b": stringAttr("v")}}, "InvalidParameterValue", "invalid"},
		{"empty attribute value", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"a": stringAttr("")}}, "InvalidParameterValue", "non-empty"},
		{"not a number", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String("12a")}}}, "InvalidParameterValue", "number"},
		{"number too precise", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String(strings.Repeat("9", 39))}}}, "InvalidParameterValue", "number"},
		{"unknown data type", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Date"), StringValue: aws.String("v")}}}, "InvalidParameterValue", "type"},
		{"string list", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("String"), StringListValues: []string{"v"}}}}, "InvalidParameterValue", "StringListValues"},
		{"binary with string value", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Binary"), StringValue: aws.String("v")}}}, "InvalidParameterValue", "Binary"},
		{"delay too long", sqs.SendMessageInput{MessageBody: aws.String("x"), DelaySeconds: 901}, "InvalidParameterValue", "DelaySeconds"},
		{"delay negative", sqs.SendMessageInput{MessageBody: aws.String("x"), DelaySeconds: -1}, "InvalidParameterValue", "DelaySeconds"},
		{"control character", sqs.SendMessageInput{MessageBody: aws.String("a\x00b")}, "InvalidMessageContents", "#x0"},
		{"deduplication id", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")}, "InvalidParameterValue", "MessageDeduplicationId"},
		{"other system attribute", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageSystemAttributes: map[string]types.MessageSystemAttributeValue{
			"SenderId": {DataType: aws.String("String"), StringValue: aws.String("me")},
		}}, "InvalidParameterValue", "AWSTraceHeader"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.QueueUrl = aws.String(url)
			_, err := r.client.SendMessage(r.ctx(), &in)
			wantError(t, err, tc.code, 400)
			wantMessage(t, err, tc.says)
		})
	}
	if s := r.stats("limits"); s.Available+s.Delayed != 0 {
		t.Errorf("rejected sends stored %d messages", s.Available+s.Delayed)
	}

	// Exactly at the limit is fine: 1000 body bytes and 24 attribute bytes.
	_, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{
		QueueUrl:          aws.String(url),
		MessageBody:       aws.String(strings.Repeat("x", 1000)),
		MessageAttributes: map[string]types.MessageAttributeValue{"name": stringAttr(strings.Repeat("v", 14))},
	})
	if err != nil {
		t.Errorf("send of exactly 1024 bytes: %v", err)
	}

	got := r.call("SendMessage", `{"QueueUrl":"`+url+`"}`)
	wantRawError(t, got, 400, "MissingParameter", "MissingParameter")
}

func TestSendMessageGroupID(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("groups", nil)
	_, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), MessageGroupId: aws.String("tenant-1")})
	if err != nil {
		t.Fatalf("send with group id: %v", err)
	}
	msgs := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageSystemAttributeNames: []types.MessageSystemAttributeName{"MessageGroupId"}})
	if len(msgs) != 1 || msgs[0].Attributes["MessageGroupId"] != "tenant-1" {
		t.Errorf("messages = %+v, want one with MessageGroupId tenant-1", msgs)
	}
}

func TestSendMessageBatch(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("batch", map[string]string{"MaximumMessageSize": "2048"})

	out, err := r.client.SendMessageBatch(r.ctx(), &sqs.SendMessageBatchInput{
		QueueUrl: aws.String(url),
		Entries: []types.SendMessageBatchRequestEntry{
			{Id: aws.String("ok-1"), MessageBody: aws.String("one")},
			{Id: aws.String("too-big"), MessageBody: aws.String(strings.Repeat("x", 2049))},
			{Id: aws.String("ok-2"), MessageBody: aws.String("two"), DelaySeconds: 10, MessageAttributes: map[string]types.MessageAttributeValue{"k": stringAttr("v")}},
			{Id: aws.String("bad-delay"), MessageBody: aws.String("x"), DelaySeconds: 1000},
			{Id: aws.String("bad-char"), MessageBody: aws.String("\x01")},
		},
	})
	if err != nil {
		t.Fatalf("send batch: %v", err)
	}
	if len(out.Successful) != 2 || aws.ToString(out.Successful[0].Id) != "ok-1" || aws.ToString(out.Successful[1].Id) != "ok-2" {
		t.Fatalf("successful = %+v, want ok-1 and ok-2", out.Successful)
	}
	if aws.ToString(out.Successful[0].MD5OfMessageBody) != md5Of("one") || aws.ToString(out.Successful[1].MD5OfMessageAttributes) == "" {
		t.Errorf("successful digests = %+v", out.Successful)
	}
	failed := map[string]string{}
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = aws.ToString(f.Code)
		if !f.SenderFault || aws.ToString(f.Message) == "" {
			t.Errorf("failure %s: sender fault %v, message %q", aws.ToString(f.Id), f.SenderFault, aws.ToString(f.Message))
		}
	}
	want := map[string]string{"too-big": "InvalidParameterValue", "bad-delay": "InvalidParameterValue", "bad-char": "InvalidMessageContents"}
	for id, code := range want {
		if failed[id] != code {
			t.Errorf("failure of %s = %q, want %q", id, failed[id], code)
		}
	}
	if s := r.stats("batch"); s.Available != 1 || s.Delayed != 1 {
		t.Errorf("available = %d, delayed = %d, want 1 and 1", s.Available, s.Delayed)
	}
}

func TestBatchRequestLimits(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("batch-limits", nil)

	entries := func(n int) []types.SendMessageBatchRequestEntry {
		var out []types.SendMessageBatchRequestEntry
		for i := range n {
			out = append(out, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", i)), MessageBody: aws.String("x")})
		}
		return out
	}
	big := entries(10)
	for i := range big {
		big[i].MessageBody = aws.String(strings.Repeat("b", 120<<10))
	}
	tests := []struct {
		name    string
		entries []types.SendMessageBatchRequestEntry
		code    string
	}{
		{"empty", []types.SendMessageBatchRequestEntry{}, "AWS.SimpleQueueService.EmptyBatchRequest"},
		{"eleven", entries(11), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"},
		{"invalid id", []types.SendMessageBatchRequestEntry{{Id: aws.String("no spaces"), MessageBody: aws.String("x")}}, "AWS.SimpleQueueService.InvalidBatchEntryId"},
		{"long id", []types.SendMessageBatchRequestEntry{{Id: aws.String(strings.Repeat("i", 81)), MessageBody: aws.String("x")}}, "AWS.SimpleQueueService.InvalidBatchEntryId"},
		{"repeated id", []types.SendMessageBatchRequestEntry{
			{Id: aws.String("same"), MessageBody: aws.String("x")},
			{Id: aws.String("same"), MessageBody: aws.String("y")},
		}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
		{"over 1 MiB in total", big, "AWS.SimpleQueueService.BatchRequestTooLong"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.SendMessageBatch(r.ctx(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: tc.entries})
			wantError(t, err, tc.code, 400)
		})
	}
	if s := r.stats("batch-limits"); s.Available != 0 {
		t.Errorf("rejected batches stored %d messages", s.Available)
	}

	// The same checks hold for the other batch actions.
	_, err := r.client.DeleteMessageBatch(r.ctx(), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{}})
	wantError(t, err, "AWS.SimpleQueueService.EmptyBatchRequest", 400)
	_, err = r.client.ChangeMessageVisibilityBatch(r.ctx(), &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("a"), ReceiptHandle: aws.String("h")},
		{Id: aws.String("a"), ReceiptHandle: aws.String("h")},
	}})
	wantError(t, err, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400)
}

func TestReceiveParameters(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("params", nil)
	for i := range 12 {
		r.send(url, fmt.Sprint("m", i))
	}

	msgs := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if len(msgs) != 10 {
		t.Errorf("received %d messages, want 10", len(msgs))
	}
	msgs = r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if len(msgs) != 1 {
		t.Errorf("received %d messages without MaxNumberOfMessages, want 1", len(msgs))
	}

	tests := []struct {
		name string
		in   sqs.ReceiveMessageInput
		code string
		says string
	}{
		{"eleven messages", sqs.ReceiveMessageInput{MaxNumberOfMessages: 11}, "InvalidParameterValue", "MaxNumberOfMessages"},
		{"negative messages", sqs.ReceiveMessageInput{MaxNumberOfMessages: -1}, "InvalidParameterValue", "MaxNumberOfMessages"},
		{"visibility too long", sqs.ReceiveMessageInput{VisibilityTimeout: 43201}, "InvalidParameterValue", "VisibilityTimeout"},
		{"wait too long", sqs.ReceiveMessageInput{WaitTimeSeconds: 21}, "InvalidParameterValue", "WaitTimeSeconds"},
		{"unknown system attribute", sqs.ReceiveMessageInput{MessageSystemAttributeNames: []types.MessageSystemAttributeName{"Colour"}}, "InvalidAttributeName", "Colour"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.QueueUrl = aws.String(url)
			_, err := r.client.ReceiveMessage(r.ctx(), &in)
			wantError(t, err, tc.code, 400)
			wantMessage(t, err, tc.says)
		})
	}
}

func TestReceiptHandleIsInvalid(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("handles", nil)
	other := r.createQueue("handles-other", nil)
	r.send(url, "x")
	m := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})[0]
	handle := aws.ToString(m.ReceiptHandle)

	tampered := []byte(handle)
	if tampered[10] == 'A' {
		tampered[10] = 'B'
	} else {
		tampered[10] = 'A'
	}
	tests := []struct {
		name, url, handle string
	}{
		{"garbage", url, "not-a-handle"},
		{"tampered", url, string(tampered)},
		{"cut short", url, handle[:len(handle)-4]},
		{"other queue", other, handle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.DeleteMessage(r.ctx(), &sqs.DeleteMessageInput{QueueUrl: aws.String(tc.url), ReceiptHandle: aws.String(tc.handle)})
			wantError(t, err, "ReceiptHandleIsInvalid", 404)
			_, err = r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(tc.url), ReceiptHandle: aws.String(tc.handle), VisibilityTimeout: 5})
			wantError(t, err, "ReceiptHandleIsInvalid", 404)
		})
	}
	if s := r.stats("handles"); s.Inflight != 1 {
		t.Errorf("inflight = %d, want the message still inflight", s.Inflight)
	}
}

func TestChangeMessageVisibility(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("visibility", nil)
	r.send(url, "x")
	first := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 30})[0]

	// Zero makes the message available at once.
	if _, err := r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: first.ReceiptHandle}); err != nil {
		t.Fatalf("change visibility to 0: %v", err)
	}
	second := r.receive(&sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), VisibilityTimeout: 30,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{"ApproximateReceiveCount"},
	})
	if len(second) != 1 || second[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("second receive = %+v, want the message with receive count 2", second)
	}

	// The first handle is stale now: the message exists under another one.
	_, err := r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 10})
	wantError(t, err, "AWS.SimpleQueueService.MessageNotInflight", 400)
	var notInflight *types.MessageNotInflight
	if !errors.As(err, &notInflight) {
		t.Errorf("error %v is not MessageNotInflight", err)
	}

	// Extending to 100 s keeps it hidden past the original 30 s.
	if _, err := r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 100}); err != nil {
		t.Fatalf("change visibility to 100: %v", err)
	}
	r.clock.Advance(31 * time.Second)
	if got := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(got) != 0 {
		t.Errorf("received %d messages 31 s after extending to 100 s", len(got))
	}
	if s := r.stats("visibility"); s.Inflight != 1 {
		t.Errorf("inflight = %d, want 1", s.Inflight)
	}
	r.clock.Advance(70 * time.Second)
	third := r.receiveEventually(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if _, err := r.client.DeleteMessage(r.ctx(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: third[0].ReceiptHandle}); err != nil {
		t.Fatalf("delete: %v", err)
	}

	// Once the message is deleted, SQS calls the handle invalid.
	_, err = r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: third[0].ReceiptHandle, VisibilityTimeout: 10})
	wantError(t, err, "InvalidParameterValue", 400)
	wantMessage(t, err, "does not exist")

	_, err = r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: third[0].ReceiptHandle, VisibilityTimeout: 43201})
	wantError(t, err, "InvalidParameterValue", 400)
	wantMessage(t, err, "43200")
}

func TestChangeMessageVisibilityBatch(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("visibility-batch", nil)
	for i := range 2 {
		r.send(url, fmt.Sprint("m", i))
	}
	msgs := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 2})
	if len(msgs) != 2 {
		t.Fatalf("received %d messages, want 2", len(msgs))
	}

	out, err := r.client.ChangeMessageVisibilityBatch(r.ctx(), &sqs.ChangeMessageVisibilityBatchInput{
		QueueUrl: aws.String(url),
		Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
			{Id: aws.String("release"), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 0},
			{Id: aws.String("extend"), ReceiptHandle: msgs[1].ReceiptHandle, VisibilityTimeout: 600},
			{Id: aws.String("bogus"), ReceiptHandle: aws.String("bogus"), VisibilityTimeout: 5},
			{Id: aws.String("too-long"), ReceiptHandle: msgs[1].ReceiptHandle, VisibilityTimeout: 50000},
		},
	})
	if err != nil {
		t.Fatalf("change visibility batch: %v", err)
	}
	if len(out.Successful) != 2 {
		t.Errorf("successful = %+v, want release and extend", out.Successful)
	}
	codes := map[string]string{}
	for _, f := range out.Failed {
		codes[aws.ToString(f.Id)] = aws.ToString(f.Code)
	}
	if codes["bogus"] != "ReceiptHandleIsInvalid" || codes["too-long"] != "InvalidParameterValue" {
		t.Errorf("failures = %v", codes)
	}
	if s := r.stats("visibility-batch"); s.Available != 1 || s.Inflight != 1 {
		t.Errorf("available = %d, inflight = %d, want 1 and 1", s.Available, s.Inflight)
	}
}

func TestDeleteMessageBatch(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("delete-batch", nil)
	for i := range 3 {
		r.send(url, fmt.Sprint("m", i))
	}
	msgs := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 3})
	if len(msgs) != 3 {
		t.Fatalf("received %d messages, want 3", len(msgs))
	}
	if _, err := r.client.DeleteMessage(r.ctx(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[2].ReceiptHandle}); err != nil {
		t.Fatalf("delete: %v", err)
	}

	out, err := r.client.DeleteMessageBatch(r.ctx(), &sqs.DeleteMessageBatchInput{
		QueueUrl: aws.String(url),
		Entries: []types.DeleteMessageBatchRequestEntry{
			{Id: aws.String("a"), ReceiptHandle: msgs[0].ReceiptHandle},
			{Id: aws.String("b"), ReceiptHandle: msgs[1].ReceiptHandle},
			{Id: aws.String("stale"), ReceiptHandle: msgs[2].ReceiptHandle},
			{Id: aws.String("bad"), ReceiptHandle: aws.String("zzz")},
		},
	})
	if err != nil {
		t.Fatalf("delete batch: %v", err)
	}
	if len(out.Successful) != 3 {
		t.Errorf("successful = %+v, want a, b and stale", out.Successful)
	}
	if len(out.Failed) != 1 || aws.ToString(out.Failed[0].Id) != "bad" || aws.ToString(out.Failed[0].Code) != "ReceiptHandleIsInvalid" {
		t.Errorf("failed = %+v, want bad with ReceiptHandleIsInvalid", out.Failed)
	}
	if s := r.stats("delete-batch"); s.Available+s.Inflight != 0 {
		t.Errorf("available = %d, inflight = %d, want none", s.Available, s.Inflight)
	}
}

func TestVisibilityTimeoutRedelivers(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("redeliver", map[string]string{"VisibilityTimeout": "20"})
	r.send(url, "again")
	first := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if len(first) != 1 {
		t.Fatalf("received %d messages, want 1", len(first))
	}
	r.clock.Advance(19 * time.Second)
	if got := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(got) != 0 {
		t.Fatalf("redelivered before the visibility timeout")
	}
	r.clock.Advance(2 * time.Second)
	again := r.receiveEventually(&sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"},
	})
	if aws.ToString(again[0].MessageId) != aws.ToString(first[0].MessageId) {
		t.Errorf("redelivered message id %s, want %s", aws.ToString(again[0].MessageId), aws.ToString(first[0].MessageId))
	}
	if again[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("receive count = %s, want 2", again[0].Attributes["ApproximateReceiveCount"])
	}
	firstReceive, _ := strconv.ParseInt(again[0].Attributes["ApproximateFirstReceiveTimestamp"], 10, 64)
	if want := r.clock.Now().Add(-21 * time.Second).UnixMilli(); firstReceive != want {
		t.Errorf("ApproximateFirstReceiveTimestamp = %d, want the first receive at %d", firstReceive, want)
	}
	if aws.ToString(again[0].ReceiptHandle) == aws.ToString(first[0].ReceiptHandle) {
		t.Error("a new delivery kept the old receipt handle")
	}
}

func TestQueueVisibilityZero(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("instant", map[string]string{"VisibilityTimeout": "0"})
	if got := r.attributes(url, "VisibilityTimeout")["VisibilityTimeout"]; got != "0" {
		t.Errorf("VisibilityTimeout = %s, want 0", got)
	}
	r.send(url, "x")
	r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	r.clock.Advance(time.Millisecond)
	again := r.receiveEventually(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageSystemAttributeNames: []types.MessageSystemAttributeName{"ApproximateReceiveCount"}})
	if again[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("receive count = %s, want 2", again[0].Attributes["ApproximateReceiveCount"])
	}
}

func TestDelaySeconds(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("delayed", map[string]string{"DelaySeconds": "30"})
	r.send(url, "queue default")
	_, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("own delay"), DelaySeconds: 5})
	if err != nil {
		t.Fatalf("send with delay: %v", err)
	}
	if s := r.stats("delayed"); s.Delayed != 2 {
		t.Fatalf("delayed = %d, want 2", s.Delayed)
	}
	if got := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(got) != 0 {
		t.Fatalf("received a delayed message early")
	}

	r.clock.Advance(5 * time.Second)
	got := r.receiveEventually(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if len(got) != 1 || aws.ToString(got[0].Body) != "own delay" {
		t.Fatalf("after 5 s received %+v, want the message with its own delay", got)
	}
	r.clock.Advance(25 * time.Second)
	got = r.receiveEventually(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if aws.ToString(got[0].Body) != "queue default" {
		t.Errorf("after 30 s received %q, want the queue's delayed message", aws.ToString(got[0].Body))
	}
}

func TestLongPollWokenBySend(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("longpoll", nil)

	type result struct {
		msgs []types.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		out, err := r.client.ReceiveMessage(r.ctx(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{msgs: out.Messages}
	}()

	r.eventually("the receive to wait", func() bool { return r.stats("longpoll").Waiters == 1 })
	r.send(url, "wake up")

	res := <-done
	if res.err != nil {
		t.Fatalf("long-poll receive: %v", res.err)
	}
	if len(res.msgs) != 1 || aws.ToString(res.msgs[0].Body) != "wake up" {
		t.Errorf("long poll got %+v, want the sent message", res.msgs)
	}
}

func TestLongPollFromQueueWaitTime(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("queue-wait", map[string]string{"ReceiveMessageWaitTimeSeconds": "20"})

	done := make(chan []types.Message, 1)
	go func() {
		// No WaitTimeSeconds: the queue's 20 s applies.
		out, err := r.client.ReceiveMessage(r.ctx(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
		if err != nil {
			t.Errorf("receive: %v", err)
			done <- nil
			return
		}
		done <- out.Messages
	}()
	r.eventually("the receive to wait", func() bool { return r.stats("queue-wait").Waiters == 1 })
	// The wait ends with no message once the clock passes 20 s.
	r.clock.Advance(20 * time.Second)
	if msgs := <-done; len(msgs) != 0 {
		t.Errorf("received %d messages, want none", len(msgs))
	}
}

func TestRedriveToDeadLetterQueue(t *testing.T) {
	r := newRig(t)
	dlqURL := r.createQueue("work-dlq", nil)
	url := r.createQueue("work", map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:work-dlq","maxReceiveCount":3}`,
	})
	_, err := r.client.SendMessage(r.ctx(), &sqs.SendMessageInput{
		QueueUrl: aws.String(url), MessageBody: aws.String("poison"),
		MessageAttributes: map[string]types.MessageAttributeValue{"kind": stringAttr("bad")},
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}

	// maxReceiveCount 3: three receives, each given back at once.
	for i := 1; i <= 3; i++ {
		msgs := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageSystemAttributeNames: []types.MessageSystemAttributeName{"ApproximateReceiveCount"}})
		if len(msgs) != 1 {
			t.Fatalf("receive %d got %d messages, want 1", i, len(msgs))
		}
		if got := msgs[0].Attributes["ApproximateReceiveCount"]; got != strconv.Itoa(i) {
			t.Errorf("receive %d: receive count = %s", i, got)
		}
		if _, err := r.client.ChangeMessageVisibility(r.ctx(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}

	dead := r.receiveEventually(&sqs.ReceiveMessageInput{
		QueueUrl: aws.String(dlqURL), MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{"DeadLetterQueueSourceArn"},
	})
	if aws.ToString(dead[0].Body) != "poison" {
		t.Errorf("dead-letter body = %q", aws.ToString(dead[0].Body))
	}
	if got := dead[0].Attributes["DeadLetterQueueSourceArn"]; got != "arn:aws:sqs:us-east-1:000000000000:work" {
		t.Errorf("DeadLetterQueueSourceArn = %q", got)
	}
	if got := aws.ToString(dead[0].MessageAttributes["kind"].StringValue); got != "bad" {
		t.Errorf("attribute kind = %q after dead-lettering, want bad", got)
	}
	if got := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); len(got) != 0 {
		t.Errorf("source queue still delivers %d messages", len(got))
	}
}

func TestEngineSendReceivedBySDK(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("from-engine", nil)
	ctx := context.Background()

	sent, err := r.engine.Send(ctx, "from-engine", []queue.SendRequest{
		{ContentType: "application/json", Data: []byte(`{"order":7}`)},
		{ContentType: "application/octet-stream", Data: []byte{0xff, 0x00, 0xfe}},
	})
	if err != nil {
		t.Fatalf("engine send: %v", err)
	}

	msgs := r.receive(&sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if len(msgs) != 2 {
		t.Fatalf("received %d messages, want 2", len(msgs))
	}
	if aws.ToString(msgs[0].Body) != `{"order":7}` || aws.ToString(msgs[0].MessageId) != sent[0].MessageID.String() {
		t.Errorf("first message = %q (%s)", aws.ToString(msgs[0].Body), aws.ToString(msgs[0].MessageId))
	}
	// Bytes that are not UTF-8 come back in base64.
	if aws.ToString(msgs[1].Body) != "/wD+" {
		t.Errorf("binary body = %q, want /wD+", aws.ToString(msgs[1].Body))
	}
	if len(msgs[0].MessageAttributes) != 0 || msgs[0].MD5OfMessageAttributes != nil {
		t.Errorf("engine message has attributes %v", msgs[0].MessageAttributes)
	}
	for _, m := range msgs {
		if _, err := r.client.DeleteMessage(r.ctx(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Errorf("delete: %v", err)
		}
	}
	if s := r.stats("from-engine"); s.Inflight != 0 || s.Available != 0 {
		t.Errorf("inflight = %d, available = %d after deletes", s.Inflight, s.Available)
	}
}

func TestSDKSendReceivedByEngine(t *testing.T) {
	r := newRig(t)
	url := r.createQueue("to-engine", nil)
	sent := r.send(url, "from the sdk")
	ctx := context.Background()

	wait := time.Duration(0)
	ds, err := r.engine.Receive(ctx, "to-engine", queue.ReceiveRequest{Count: 1, Wait: &wait})
	if err != nil {
		t.Fatalf("engine receive: %v", err)
	}
	if len(ds) != 1 {
		t.Fatalf("engine received %d messages, want 1", len(ds))
	}
	if ds[0].MessageID.String() != aws.ToString(sent.MessageId) {
		t.Errorf("message id = %s, want %s", ds[0].MessageID, aws.ToString(sent.MessageId))
	}
	p, err := r.engine.Payload(ctx, "to-engine", ds[0].MessageID)
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	if string(p.Data) != "from the sdk" {
		t.Errorf("data = %q", p.Data)
	}
	if p.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("content type = %q", p.ContentType)
	}
	if err := r.engine.Ack(ctx, "to-engine", ds[0].QueueMessageID); err != nil {
		t.Errorf("engine ack: %v", err)
	}
}
