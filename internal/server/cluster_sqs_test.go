package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/cluster"
	"github.com/qakka/qakka/internal/config"
	"github.com/qakka/qakka/internal/storage/backendtest"
)

// Credentials of the cluster test: the REST API's, which the nodes also
// present to each other, and the SQS API's.
const (
	clusterUser      = "node"
	clusterPassword  = "node-secret"
	clusterSQSKey    = "AKIDCLUSTER"
	clusterSQSSecret = "cluster-secret"
)

// clusterWait bounds every wait for the cluster to converge or a message to
// arrive.
const clusterWait = time.Minute

// testKeyspace returns a fresh keyspace name for a test and drops it, with
// its region keyspace, when the test ends. It skips the test when no
// Cassandra node is configured.
func testKeyspace(t *testing.T) (host, keyspace string) {
	t.Helper()
	host = os.Getenv(backendtest.CassandraEnv)
	if host == "" {
		t.Skipf("%s is not set; start a node with scripts/cassandra-dev.sh start and set %s=127.0.0.1:9042",
			backendtest.CassandraEnv, backendtest.CassandraEnv)
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatal(err)
	}
	keyspace = "qakka_cluster_sqs_" + hex.EncodeToString(suffix[:])
	t.Cleanup(func() {
		cassandra := gocql.NewCluster(host)
		cassandra.ConnectTimeout = 10 * time.Second
		cassandra.Timeout = time.Minute
		session, err := cassandra.CreateSession()
		if err != nil {
			t.Errorf("connect to %s to drop the test keyspaces: %v", host, err)
			return
		}
		defer session.Close()
		for _, ks := range []string{keyspace, keyspace + "_region"} {
			if err := session.Query("DROP KEYSPACE IF EXISTS " + ks).Exec(); err != nil {
				t.Errorf("drop keyspace %s: %v", ks, err)
			}
		}
	})
	return host, keyspace
}

// clusterConfig returns the configuration of one node of a test cluster on
// loopback, with both APIs authenticated.
func clusterConfig(t *testing.T, host, keyspace, node string, seeds []string) config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.HTTP.Username = clusterUser
	cfg.HTTP.Password = clusterPassword
	cfg.SQS.AccessKeyID = clusterSQSKey
	cfg.SQS.SecretAccessKey = clusterSQSSecret
	cfg.Storage.Backend = config.BackendCassandra
	cfg.Storage.Cassandra.Hosts = []string{host}
	cfg.Storage.Cassandra.Keyspace = keyspace
	cfg.Storage.Cassandra.RegionKeyspace = keyspace + "_region"
	cfg.Cluster.Listen = "127.0.0.1:0"
	cfg.Cluster.NodeName = node
	cfg.Cluster.Seeds = seeds
	cfg.Cluster.Profile = cluster.ProfileLocal
	if err := cfg.Validate(); err != nil {
		t.Fatalf("configuration of %s: %v", node, err)
	}
	return cfg
}

// getAuthenticated GETs a REST API path with the cluster's credentials and
// returns the status and body.
func getAuthenticated(t *testing.T, c *http.Client, r *running, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(clusterUser, clusterPassword)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read GET %s: %v", path, err)
	}
	return resp.StatusCode, body
}

// clusterStatus returns the cluster section of a node's /api/status.
func clusterStatus(t *testing.T, c *http.Client, r *running) client.ClusterStatus {
	t.Helper()
	status, body := getAuthenticated(t, c, r, "/api/status")
	if status != http.StatusOK {
		t.Fatalf("GET /api/status: %d %s", status, body)
	}
	var st client.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decode /api/status: %v", err)
	}
	if st.Cluster == nil {
		t.Fatalf("/api/status has no cluster section: %s", body)
	}
	return *st.Cluster
}

// waitFor polls cond until it holds, or fails the test after clusterWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", clusterWait, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sqsRequests sums the node's qakka_sqs_requests_total series of action
// whose code is code, or of every code when code is empty.
func sqsRequests(t *testing.T, c *http.Client, r *running, action, code string) float64 {
	t.Helper()
	status, body := getAuthenticated(t, c, r, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	prefix := `qakka_sqs_requests_total{action="` + action + `",code="` + code
	if code != "" {
		prefix += `"}`
	}
	var sum float64
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// queueOwnedBy returns a queue name that rendezvous hashing over names gives
// to owner.
func queueOwnedBy(t *testing.T, owner string, names ...string) string {
	t.Helper()
	members := make([]cluster.Member, len(names))
	for i, n := range names {
		members[i] = cluster.Member{Name: n}
	}
	for i := range 1000 {
		q := fmt.Sprintf("orders-%d", i)
		if m, _ := cluster.Owner(q, members); m.Name == owner {
			return q
		}
	}
	t.Fatalf("no queue name among 1000 candidates is owned by %s", owner)
	return ""
}

// receiveOne long-polls through sq until it returns a message.
func receiveOne(t *testing.T, sq *sqs.Client, url string) types.Message {
	t.Helper()
	var msg types.Message
	waitFor(t, "a message to receive", func() bool {
		out, err := sq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 1, WaitTimeSeconds: 2,
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(out.Messages) == 0 {
			return false
		}
		msg = out.Messages[0]
		return true
	})
	return msg
}

// Three nodes share one Cassandra, and node-c owns the queue. Node-a stores
// the sends it receives as incoming entries for node-c, node-b forwards
// receives and deletes to node-c, and node-c serves its own.
func TestClusterSQSOnEveryNode(t *testing.T) {
	host, keyspace := testKeyspace(t)
	a := start(t, clusterConfig(t, host, keyspace, "node-a", nil))
	seeds := []string{a.srv.gossipAddr}
	b := start(t, clusterConfig(t, host, keyspace, "node-b", seeds))
	c := start(t, clusterConfig(t, host, keyspace, "node-c", seeds))
	rest := testClient(t)
	for _, n := range []*running{a, b, c} {
		waitFor(t, "three live members", func() bool {
			alive := 0
			for _, m := range clusterStatus(t, rest, n).Members {
				if m.State == cluster.StateAlive {
					alive++
				}
			}
			return alive == 3
		})
	}

	sqsA := sqsClient(a, clusterSQSKey, clusterSQSSecret)
	sqsB := sqsClient(b, clusterSQSKey, clusterSQSSecret)
	sqsC := sqsClient(c, clusterSQSKey, clusterSQSSecret)
	ctx := context.Background()

	name := queueOwnedBy(t, "node-c", "node-a", "node-b", "node-c")
	created, err := sqsA.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateQueue through node-a: %v", err)
	}
	url := aws.ToString(created.QueueUrl)
	waitFor(t, "node-c to serve "+name, func() bool { return clusterStatus(t, rest, c).Serving == 1 })

	for _, body := range []string{"first", "second"} {
		if _, err := sqsA.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
			t.Fatalf("SendMessage %s through node-a: %v", body, err)
		}
	}

	forwardedBefore := sqsRequests(t, rest, b, "ReceiveMessage", "forwarded")
	viaB := receiveOne(t, sqsB, url)
	if got := sqsRequests(t, rest, b, "ReceiveMessage", "forwarded"); got <= forwardedBefore {
		t.Errorf("node-b forwarded %v receives, want more than %v", got, forwardedBefore)
	}
	if _, err := sqsB.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: viaB.ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage through node-b: %v", err)
	}

	viaC := receiveOne(t, sqsC, url)
	if aws.ToString(viaC.MessageId) == aws.ToString(viaB.MessageId) {
		t.Errorf("node-c received message %s again after node-b deleted it", aws.ToString(viaC.MessageId))
	}
	if _, err := sqsB.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: viaC.ReceiptHandle, VisibilityTimeout: 120,
	}); err != nil {
		t.Fatalf("ChangeMessageVisibility through node-b of a message received through node-c: %v", err)
	}
	if _, err := sqsC.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: viaC.ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage through node-c: %v", err)
	}
	got := map[string]bool{aws.ToString(viaB.Body): true, aws.ToString(viaC.Body): true}
	if !got["first"] || !got["second"] {
		t.Errorf("received bodies %q and %q, want first and second", aws.ToString(viaB.Body), aws.ToString(viaC.Body))
	}

	attrs, err := sqsA.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes through node-a: %v", err)
	}
	for _, n := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"} {
		if attrs.Attributes[n] != "0" {
			t.Errorf("%s = %q after both messages were deleted, want 0", n, attrs.Attributes[n])
		}
	}
	if _, err := sqsB.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: aws.String(url), Tags: map[string]string{"team": "billing"}}); err != nil {
		t.Fatalf("TagQueue through node-b: %v", err)
	}
	tags, err := sqsA.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
	if err != nil {
		t.Fatalf("ListQueueTags through node-a: %v", err)
	}
	if tags.Tags["team"] != "billing" {
		t.Errorf("tags = %v, want team=billing", tags.Tags)
	}

	t.Run("wrong signature stays on the entry node", func(t *testing.T) {
		ownerBefore := sqsRequests(t, rest, c, "ReceiveMessage", "")
		forwardedBefore := sqsRequests(t, rest, b, "ReceiveMessage", "forwarded")

		bad := sqsClient(b, clusterSQSKey, "wrong-secret")
		_, err := bad.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "SignatureDoesNotMatch" {
			t.Fatalf("ReceiveMessage with a wrong secret through node-b: %v, want SignatureDoesNotMatch", err)
		}
		if got := sqsRequests(t, rest, c, "ReceiveMessage", ""); got != ownerBefore {
			t.Errorf("node-c served %v receives after a badly signed one through node-b, want %v", got, ownerBefore)
		}
		if got := sqsRequests(t, rest, b, "ReceiveMessage", "forwarded"); got != forwardedBefore {
			t.Errorf("node-b forwarded %v receives after a badly signed one, want %v", got, forwardedBefore)
		}

		// The same request, signed correctly, does reach node-c.
		if _, err := sqsB.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); err != nil {
			t.Fatalf("ReceiveMessage through node-b: %v", err)
		}
		if got := sqsRequests(t, rest, c, "ReceiveMessage", ""); got != ownerBefore+1 {
			t.Errorf("node-c served %v receives after a good one through node-b, want %v", got, ownerBefore+1)
		}
	})

	t.Run("forward endpoint requires node credentials", func(t *testing.T) {
		body := `{"QueueUrl":"` + url + `"}`
		req, err := http.NewRequest(http.MethodPost, c.url(cluster.SQSForwardPath+"/"), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "AmazonSQS.PurgeQueue")
		resp, err := rest.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", cluster.SQSForwardPath, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without credentials: status %d, want 401", cluster.SQSForwardPath, resp.StatusCode)
		}
	})
}
