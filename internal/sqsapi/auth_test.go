package sqsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/qakka/qakka/internal/sqsapi"
)

func newAuthRig(t *testing.T) *rig {
	return newRigWith(t, rigOptions{credentials: map[string]string{testKeyID: testSecret, "AKIDSECOND": "second-secret"}})
}

func TestSignedRequestsAccepted(t *testing.T) {
	r := newAuthRig(t)
	url := r.createQueue("signed", nil)
	r.send(url, "hi")

	// A second key works too, and the sender is the signing key.
	second := r.newClient("AKIDSECOND", "second-secret")
	out, err := second.ReceiveMessage(r.ctx(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MessageSystemAttributeNames: []types.MessageSystemAttributeName{"SenderId"},
	})
	if err != nil {
		t.Fatalf("receive with the second key: %v", err)
	}
	if len(out.Messages) != 1 || out.Messages[0].Attributes["SenderId"] != testKeyID {
		t.Errorf("messages = %+v, want one sent by %s", out.Messages, testKeyID)
	}
}

func TestSignatureRejected(t *testing.T) {
	r := newAuthRig(t)

	_, err := r.newClient(testKeyID, "wrong-secret").ListQueues(r.ctx(), &sqs.ListQueuesInput{})
	wantError(t, err, "SignatureDoesNotMatch", http.StatusForbidden)

	_, err = r.newClient("AKIDUNKNOWN", testSecret).ListQueues(r.ctx(), &sqs.ListQueuesInput{})
	wantError(t, err, "InvalidClientTokenId", http.StatusForbidden)

	got := r.call("ListQueues", `{}`)
	wantRawError(t, got, http.StatusForbidden, "MissingAuthenticationToken", "MissingAuthenticationToken")
}

func TestSignatureClockSkew(t *testing.T) {
	r := newAuthRig(t)
	tests := []struct {
		name string
		skew time.Duration
		says string
	}{
		{"server ahead", 16 * time.Minute, "Signature expired"},
		{"server behind", -16 * time.Minute, "Signature not yet current"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.skew.Store(int64(tc.skew))
			_, err := r.client.ListQueues(r.ctx(), &sqs.ListQueuesInput{})
			wantError(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
			wantMessage(t, err, tc.says)
		})
	}
	r.skew.Store(int64(14 * time.Minute))
	if _, err := r.client.ListQueues(r.ctx(), &sqs.ListQueuesInput{}); err != nil {
		t.Errorf("list queues 14 minutes off: %v", err)
	}
}

// signedRequest builds a request to path with body, signed by the SDK's
// signer for service.
func (r *rig) signedRequest(path, body, service, secret string) *http.Request {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.ctx(), http.MethodPost, r.srv.URL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		r.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS.ListQueues")
	req.Header.Set("X-Custom", "  spaced   out  value ")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, testRegion, time.Now()); err != nil {
		r.t.Fatalf("sign: %v", err)
	}
	return req
}

func TestSignatureCanonicalRequest(t *testing.T) {
	r := newAuthRig(t)
	r.createQueue("canon", nil)

	// A queue URL path, a query string with characters that need escaping
	// and a header with runs of spaces, as the SDK's signer signs them.
	req := r.signedRequest("/"+testAccountID+"/canon?b=2&a=x%20y&a=%2F&empty=", `{}`, "sqs", testSecret)
	if got := r.do(req); got.status != http.StatusOK {
		t.Errorf("signed request: status %d, reply %v", got.status, got.body)
	}

	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		shape  string
	}{
		{"body changed after signing", func() *http.Request {
			req := r.signedRequest("/", `{}`, "sqs", testSecret)
			req.Body = http.NoBody
			req.ContentLength = 0
			req.Header.Set("Content-Length", "0")
			return req
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"signed header changed", func() *http.Request {
			req := r.signedRequest("/", `{}`, "sqs", testSecret)
			req.Header.Set("X-Custom", "other")
			return req
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"other service", func() *http.Request {
			return r.signedRequest("/", `{}`, "sns", testSecret)
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"no date", func() *http.Request {
			req := r.signedRequest("/", `{}`, "sqs", testSecret)
			req.Header.Del("X-Amz-Date")
			return req
		}, http.StatusBadRequest, "IncompleteSignature"},
		{"other algorithm", func() *http.Request {
			req := r.signedRequest("/", `{}`, "sqs", testSecret)
			req.Header.Set("Authorization", "AWS "+testKeyID+":c2lnbmF0dXJl")
			return req
		}, http.StatusBadRequest, "IncompleteSignature"},
		{"short signature", func() *http.Request {
			req := r.signedRequest("/", `{}`, "sqs", testSecret)
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKeyID+"/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=abcd")
			return req
		}, http.StatusBadRequest, "IncompleteSignature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.do(tc.req())
			if got.status != tc.status || got.body["__type"] != "com.amazonaws.sqs#"+tc.shape {
				t.Errorf("status %d, reply %v, want %d %s", got.status, got.body, tc.status, tc.shape)
			}
		})
	}
}

func TestSignatureBelowPathPrefix(t *testing.T) {
	r := newAuthRig(t)
	// A second API on the same engine, mounted below /sqs/ as a server
	// might mount it next to other handlers.
	var base string
	api, err := sqsapi.New(sqsapi.Config{
		Engine:      r.engine,
		Logger:      slog.New(slog.DiscardHandler),
		Credentials: map[string]string{testKeyID: testSecret},
		BaseURL:     func(*http.Request) string { return base },
	})
	if err != nil {
		t.Fatalf("new sqs api: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sqs", http.StripPrefix("/sqs", api.Handler()))
	mux.Handle("/sqs/", http.StripPrefix("/sqs", api.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL + "/sqs"

	client := sqs.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
		HTTPClient:  srv.Client(),
	}, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(base)
		o.Retryer = aws.NopRetryer{}
	})
	out, err := client.CreateQueue(r.ctx(), &sqs.CreateQueueInput{QueueName: aws.String("prefixed")})
	if err != nil {
		t.Fatalf("create queue below a prefix: %v", err)
	}
	if want := base + "/" + testAccountID + "/prefixed"; aws.ToString(out.QueueUrl) != want {
		t.Errorf("queue url = %s, want %s", aws.ToString(out.QueueUrl), want)
	}
	if _, err := client.SendMessage(r.ctx(), &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String("x")}); err != nil {
		t.Errorf("send below a prefix: %v", err)
	}
}
