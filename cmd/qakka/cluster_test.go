package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/cluster"
	"github.com/qakka/qakka/internal/storage/backendtest"
)

// Timeouts of the cluster tests.
const (
	// settleTimeout bounds how long membership and queue ownership may take
	// to settle after a node starts, stops or dies.
	settleTimeout = time.Minute
	// stopTimeout bounds a graceful stop: the server's default shutdown
	// timeout of 30 s plus the handover of its queues.
	stopTimeout = time.Minute
	// failoverBound is the longest a queue of a killed node may stay
	// unserved with the default timing. memberlist's LAN failure detection
	// runs while the 5 s lease expires, and the 3 s settle time follows.
	// On one machine the total is about 8 s.
	failoverBound = 30 * time.Second
)

// Parameters of the workload of TestClusterFailover.
const (
	workloadQueues         = 8
	workloadSenders        = 4
	workloadConsumers      = 4
	workloadSendsPerSender = 2500
	workloadReceiveMax     = 10
	workloadReceiveWait    = 500 * time.Millisecond
	// workloadVisibility is short, so that the deliveries a killed node
	// held come back soon after its queues move.
	workloadVisibility = 5 * time.Second
	// ackPatience bounds how long a consumer retries one ack.
	ackPatience = time.Minute
	// progressAcks is how many acks the test waits for between two cluster
	// events, so that each event happens under load.
	progressAcks = 150
	drainTimeout = 2 * time.Minute
	// emptyPatience is how long the queues must stay empty before the
	// drain gives up on sends not received yet. Owners look for sends
	// stored by other nodes every 5 s, and stats do not count such sends
	// until then.
	emptyPatience = 15 * time.Second
)

// TestClusterFailover runs senders and consumers against three nodes while
// one node is killed and restarted under its name, a fourth node joins, and
// another node stops gracefully. Every request goes to a random live node.
// After the senders stop, the consumers drain every queue. Every send
// acknowledged with a 200 must be received, every queue must end empty,
// and no delivery may come from a send that was never made.
func TestClusterFailover(t *testing.T) {
	c := newTestCluster(t, cluster.ProfileLocal)
	for _, name := range []string{"n1", "n2", "n3"} {
		c.start(name)
	}
	c.waitMembers(alive("n1", "n2", "n3"))
	queues := make([]string, workloadQueues)
	for i := range queues {
		queues[i] = fmt.Sprintf("orders-%d", i)
		c.createQueue(queues[i])
	}
	c.waitServing(len(queues))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	w := startWorkload(ctx, c, queues)
	defer w.stop()

	victim := c.busiest()
	t.Logf("%s serves %d of %d queues", victim.name, victim.servingBefore, len(queues))
	held := w.holdDeliveries()
	w.disrupt(t, "SIGKILL "+victim.name, func() { c.kill(victim) })
	for _, d := range held {
		w.ackDelivery(d)
	}
	t.Logf("acked the %d deliveries held over the crash of %s after it", len(held), victim.name)
	w.disrupt(t, "restart "+victim.name, func() {
		c.start(victim.name)
		c.waitMembers(alive("n1", "n2", "n3"))
	})
	w.disrupt(t, "join n4", func() {
		c.start("n4")
		c.waitMembers(alive("n1", "n2", "n3", "n4"))
	})
	leaver := c.node("n1")
	if leaver == victim {
		leaver = c.node("n3")
	}
	w.disrupt(t, "SIGTERM "+leaver.name, func() {
		stopped := c.stop(leaver)
		t.Logf("%s exited with status 0 %s after SIGTERM", leaver.name, stopped.Round(time.Millisecond))
		c.waitMembers(map[string]string{leaver.name: "left"})
	})

	w.waitAcks(t, progressAcks)
	w.stopSenders()
	sendElapsed := time.Since(start)
	if err := w.drain(ctx); err != nil {
		t.Fatal(err)
	}
	w.stopConsumers()
	drainElapsed := time.Since(start)
	totals := c.checkEmpty(queues)

	sum := w.check.verify(t)
	logSummary(t, sum, totals, sendElapsed, drainElapsed)
	checkTotals(t, sum, totals)
	checkRedeliveryBound(t, sum)
}

// checkTotals compares the event counters of the queues with what the
// clients saw. Each commit of an owner stores the counters with the
// changes they count, so they survive crashes and handovers exactly.
func checkTotals(t *testing.T, sum historySummary, totals client.Totals) {
	t.Helper()
	if totals.Sent != int64(sum.distinct) {
		t.Errorf("the queues counted %d sends, but consumers received %d distinct messages", totals.Sent, sum.distinct)
	}
	if totals.Acked != int64(sum.distinct) {
		t.Errorf("the queues counted %d acks of %d distinct messages", totals.Acked, sum.distinct)
	}
	if totals.Received < int64(sum.deliveries) {
		t.Errorf("the queues counted %d receives, fewer than the %d deliveries consumers saw", totals.Received, sum.deliveries)
	}
	if totals.Received != totals.Acked+totals.TimedOut {
		t.Errorf("the queues counted %d receives, but %d acks and %d visibility timeouts", totals.Received, totals.Acked, totals.TimedOut)
	}
}

// logSummary logs the numbers of a workload run.
func logSummary(t *testing.T, sum historySummary, totals client.Totals, sendElapsed, drainElapsed time.Duration) {
	t.Helper()
	t.Logf("%d sends acknowledged in %s (%.0f/s with %d senders), %d with unknown outcome (%d of them delivered)",
		sum.sends, sendElapsed.Round(time.Millisecond), float64(sum.sends)/sendElapsed.Seconds(), workloadSenders,
		sum.unknownSends, sum.fromUnknownSends)
	t.Logf("%d deliveries of %d messages in %s (%.0f acks/s with %d consumers): %d redelivered to consumers, %d with a receive count above 1, %d receives with unknown outcome",
		sum.deliveries, sum.distinct, drainElapsed.Round(time.Millisecond), float64(sum.acks[ackSucceeded])/drainElapsed.Seconds(),
		workloadConsumers, sum.redeliveries, sum.serverRedelivered, sum.unknownReceives)
	t.Logf("acks: %d succeeded, %d rejected after their deadline, %d ambiguous, %d abandoned",
		sum.acks[ackSucceeded], sum.acks[ackRejected], sum.acks[ackAmbiguous], sum.acks[ackAbandoned])
	t.Logf("server totals over all queues: %d sent, %d received, %d acked, %d timed out",
		totals.Sent, totals.Received, totals.Acked, totals.TimedOut)
	for _, ev := range sum.events {
		t.Logf("%s: %s long, at most %d messages inflight at its start, %d deliveries while it lasted",
			ev.name, ev.ended.Sub(ev.began).Round(time.Millisecond), ev.inflightBound, ev.deliveries)
	}
}

// checkRedeliveryBound checks that redeliveries stay within what the
// cluster events could have caused. A message is delivered again only when
// no ack of it succeeded before its deadline. The bound assumes that
// outside the events every ack finishes within the 5 s visibility timeout,
// where it takes milliseconds, so that every redelivered message was
// inflight at the start of an event or was delivered while one lasted.
func checkRedeliveryBound(t *testing.T, sum historySummary) {
	t.Helper()
	atStart, during := sum.disruptionBound()
	failed := sum.acks[ackRejected] + sum.acks[ackAmbiguous] + sum.acks[ackAbandoned]
	t.Logf("%d redeliveries; bound: %d messages inflight at the start of the events plus %d deliveries during them; %d acks did not succeed",
		sum.redeliveries, atStart, during, failed)
	if sum.redeliveries > failed {
		t.Errorf("%d redeliveries, but only %d acks did not succeed", sum.redeliveries, failed)
	}
	if sum.redeliveries > atStart+during {
		t.Errorf("%d redeliveries, more than the %d messages that were inflight at the start of a cluster event or delivered during one",
			sum.redeliveries, atStart+during)
	}
}

// TestClusterFailoverTime measures how long a queue stays unserved after
// its owner is killed, with the default LAN profile and lease settings.
func TestClusterFailoverTime(t *testing.T) {
	c := newTestCluster(t, "")
	for _, name := range []string{"n1", "n2", "n3"} {
		c.start(name)
	}
	c.waitMembers(alive("n1", "n2", "n3"))
	const queue = "failover"
	c.createQueue(queue)
	c.waitServing(1)
	messageID := c.send(queue, `{"order":1}`)
	owner := c.busiest()
	c.waitStats(owner, queue, func(s client.Stats) bool { return s.Available == 1 })

	killedAt := time.Now()
	c.kill(owner)
	var got []client.QueueMessage
	for len(got) == 0 {
		if time.Since(killedAt) > failoverBound {
			t.Fatalf("no live node delivered message %s within %s of the kill of %s", messageID, failoverBound, owner.name)
		}
		got = c.receive(c.pick(), queue, 1, time.Second, time.Minute)
	}
	served := time.Since(killedAt)
	if served > failoverBound {
		t.Errorf("a live node delivered the message %s after the kill of its owner, want at most %s", served.Round(time.Millisecond), failoverBound)
	}
	if got[0].MessageID != messageID {
		t.Errorf("received message %s, want %s", got[0].MessageID, messageID)
	}
	t.Logf("a live node delivered the message of queue %q %s after the kill of its owner %s", queue, served.Round(time.Millisecond), owner.name)
	for _, n := range c.liveNodes() {
		if at, ok := n.recordTime("cluster member failed", "member", owner.name); ok {
			t.Logf("%s declared %s failed %s after the kill", n.name, owner.name, at.Sub(killedAt).Round(time.Millisecond))
		}
		if at, ok := n.recordTime("took queue", "queue", queue); ok {
			t.Logf("%s took queue %q %s after the kill", n.name, queue, at.Sub(killedAt).Round(time.Millisecond))
		}
	}
}

// TestClusterGracefulHandover stops the owner of a queue with SIGTERM while
// it has messages inflight. Another node must take the queue over, the
// inflight messages must stay inflight until their visibility timeout, and
// their acks must succeed on the new owner.
func TestClusterGracefulHandover(t *testing.T) {
	const (
		queue      = "handover"
		messages   = 20
		held       = 8
		visibility = 2 * time.Minute
	)
	c := newTestCluster(t, cluster.ProfileLocal)
	for _, name := range []string{"n1", "n2", "n3"} {
		c.start(name)
	}
	c.waitMembers(alive("n1", "n2", "n3"))
	c.createQueue(queue)
	c.waitServing(1)
	sent := make(map[string]bool)
	for i := range messages {
		sent[c.send(queue, fmt.Sprintf(`{"order":%d}`, i))] = true
	}
	owner := c.busiest()
	c.waitStats(owner, queue, func(s client.Stats) bool { return s.Available == messages })

	var deliveries []client.QueueMessage
	for len(deliveries) < held {
		deliveries = append(deliveries, c.receive(owner, queue, held-len(deliveries), time.Second, visibility)...)
	}

	signaled := time.Now()
	stopped := c.stop(owner)
	c.waitServing(1)
	handover := time.Since(signaled)
	t.Logf("stopped %s, the owner of queue %q, in %s; another node served the queue %s after the signal",
		owner.name, queue, stopped.Round(time.Millisecond), handover.Round(time.Millisecond))

	deadline := time.Now().Add(settleTimeout)
	for len(deliveries) < messages && time.Now().Before(deadline) {
		deliveries = append(deliveries, c.receive(c.pick(), queue, messages, time.Second, visibility)...)
	}
	for _, n := range c.liveNodes() {
		if extra := c.receive(n, queue, messages, 2*time.Second, visibility); len(extra) > 0 {
			t.Errorf("receive through %s after the handover returned %d messages, want none before the visibility timeout: first %s (receive count %d)",
				n.name, len(extra), extra[0].MessageID, extra[0].ReceiveCount)
			deliveries = append(deliveries, extra...)
		}
	}

	if len(deliveries) != messages {
		t.Errorf("received %d deliveries of %d messages", len(deliveries), messages)
	}
	seen := make(map[string]bool)
	for _, d := range deliveries {
		switch {
		case !sent[d.MessageID]:
			t.Errorf("received message %s, which no send made", d.MessageID)
		case seen[d.MessageID]:
			t.Errorf("message %s was delivered twice", d.MessageID)
		case d.ReceiveCount != 1:
			t.Errorf("message %s has receive count %d, want 1", d.MessageID, d.ReceiveCount)
		}
		seen[d.MessageID] = true
	}
	for i, d := range deliveries {
		n := c.pick()
		if status, body := c.ack(n, queue, d.QueueMessageID); status != http.StatusOK {
			t.Errorf("ack of delivery %d (%s) through %s: status %d: %s", i, d.QueueMessageID, n.name, status, body)
		}
	}
	totals := c.checkEmpty([]string{queue})
	if totals.Received != messages || totals.TimedOut != 0 {
		t.Errorf("queue totals after the handover: %d received, %d timed out; want %d received, none timed out",
			totals.Received, totals.TimedOut, messages)
	}
}

// TestClusterStatus checks the cluster section of GET /api/status on every
// node, after a graceful stop and after a crash.
func TestClusterStatus(t *testing.T) {
	c := newTestCluster(t, cluster.ProfileLocal)
	for _, name := range []string{"n1", "n2", "n3"} {
		c.start(name)
	}
	c.waitMembers(alive("n1", "n2", "n3"))
	for i := range 3 {
		c.createQueue(fmt.Sprintf("status-%d", i))
	}
	c.waitServing(3)

	nodes := c.liveNodes()
	for _, n := range nodes {
		st := c.status(n)
		if st.Storage != "cassandra" {
			t.Errorf("%s: storage %q, want cassandra", n.name, st.Storage)
		}
		if st.Cluster.Node != n.name {
			t.Errorf("%s: cluster node %q, want %q", n.name, st.Cluster.Node, n.name)
		}
		if len(st.Cluster.Members) != len(nodes) {
			t.Errorf("%s lists %d members, want %d: %+v", n.name, len(st.Cluster.Members), len(nodes), st.Cluster.Members)
		}
		for _, want := range nodes {
			m, ok := findMember(st.Cluster, want.name)
			switch {
			case !ok:
				t.Errorf("%s does not list member %s: %+v", n.name, want.name, st.Cluster.Members)
			case m.URL != "http://"+want.proc.addr:
				t.Errorf("%s lists member %s with url %q, want %q", n.name, want.name, m.URL, "http://"+want.proc.addr)
			case m.Address != want.gossipAddr:
				t.Errorf("%s lists member %s with address %q, want %q", n.name, want.name, m.Address, want.gossipAddr)
			case m.State != "alive":
				t.Errorf("%s lists member %s as %q, want alive", n.name, want.name, m.State)
			}
		}
	}

	// The crash comes first. Until memberlist v0.7.0 removes a member that
	// left, it counts that member among the nodes that could confirm a
	// suspicion. A crash right after a leave then waits out the longest
	// suspicion timeout: 18 s with the local profile instead of 3 s.
	c.kill(c.node("n2"))
	c.waitMembers(map[string]string{"n1": "alive", "n2": "dead", "n3": "alive"})
	c.waitServing(3)

	c.stop(c.node("n3"))
	c.waitMembers(map[string]string{"n1": "alive", "n3": "left"})
	c.waitServing(3)
	st := c.status(c.node("n1"))
	if st.Cluster.Serving != 3 {
		t.Errorf("the last node serves %d queues, want 3", st.Cluster.Serving)
	}
}

// alive returns the membership in which every named node is alive.
func alive(names ...string) map[string]string {
	want := make(map[string]string, len(names))
	for _, name := range names {
		want[name] = "alive"
	}
	return want
}

func findMember(st *client.ClusterStatus, name string) (client.ClusterMember, bool) {
	for _, m := range st.Members {
		if m.Name == name {
			return m, true
		}
	}
	return client.ClusterMember{}, false
}

// clusterNode is one `qakka serve` process of a test cluster.
type clusterNode struct {
	name string
	proc *serverProcess
	// gossipAddr is the cluster_address of the node's "started" record.
	gossipAddr string
	// servingBefore is the number of queues the node served when busiest
	// picked it.
	servingBefore int
}

func (n *clusterNode) url(path string) string { return n.proc.url(path) }

// recordTime returns the time of the node's first log record with message
// msg and the attribute key set to value.
func (n *clusterNode) recordTime(msg, key, value string) (time.Time, bool) {
	for _, rec := range n.proc.records() {
		if rec["msg"] != msg || rec[key] != value {
			continue
		}
		s, _ := rec["time"].(string)
		at, err := time.Parse(time.RFC3339Nano, s)
		return at, err == nil
	}
	return time.Time{}, false
}

// testCluster runs `qakka serve` cluster nodes on loopback over a pair of
// keyspaces of their own on a real Cassandra node. Methods that take no
// context must run on the test's goroutine, since they may stop the test.
type testCluster struct {
	t        *testing.T
	bin      string
	host     string
	keyspace string
	// profile is the cluster-profile flag, or "" for the default.
	profile string
	http    *http.Client

	mu sync.Mutex
	// live holds the nodes that run and take test traffic.
	live []*clusterNode
	// all holds every node started, for the logs of a failed test.
	all []*clusterNode
}

// newTestCluster skips the test when QAKKA_TEST_CASSANDRA is unset, builds
// the binary, and drops the keyspaces when the test ends.
func newTestCluster(t *testing.T, profile string) *testCluster {
	t.Helper()
	host := os.Getenv("QAKKA_TEST_CASSANDRA")
	if host == "" {
		t.Skip("QAKKA_TEST_CASSANDRA is not set; start a node with scripts/cassandra-dev.sh start and set QAKKA_TEST_CASSANDRA=127.0.0.1:9042")
	}
	var suffix [6]byte
	for i := range suffix {
		suffix[i] = byte(rand.Uint32())
	}
	c := &testCluster{
		t:        t,
		bin:      buildQakka(t),
		host:     host,
		keyspace: "qakka_cl_" + hex.EncodeToString(suffix[:]),
		profile:  profile,
		http: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 2 * (workloadSenders + workloadConsumers)},
		},
	}
	// Cleanups run last-in first-out, so the nodes, whose cleanups come
	// later, are killed before their logs are read and the keyspaces dropped.
	t.Cleanup(func() {
		if err := backendtest.DropKeyspaces(host, c.keyspace, c.regionKeyspace()); err != nil {
			t.Errorf("drop test keyspaces: %v", err)
		}
	})
	t.Cleanup(c.logOnFailure)
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

func (c *testCluster) regionKeyspace() string { return c.keyspace + "_region" }

// start starts a node that joins through every live node, and waits for
// its "started" record.
func (c *testCluster) start(name string) *clusterNode {
	c.t.Helper()
	args := []string{
		"--listen=127.0.0.1:0",
		"--storage=cassandra",
		"--cassandra-hosts=" + c.host,
		"--cassandra-keyspace=" + c.keyspace,
		"--cassandra-region-keyspace=" + c.regionKeyspace(),
		"--cluster-listen=127.0.0.1:0",
		"--cluster-node-name=" + name,
	}
	if c.profile != "" {
		args = append(args, "--cluster-profile="+c.profile)
	}
	var seeds []string
	for _, n := range c.liveNodes() {
		seeds = append(seeds, n.gossipAddr)
	}
	if len(seeds) > 0 {
		args = append(args, "--cluster-seeds="+strings.Join(seeds, ","))
	}

	p := startServer(c.t, c.bin, args, nil)
	rec, _ := p.findRecord("started")
	gossipAddr, _ := rec["cluster_address"].(string)
	if gossipAddr == "" {
		c.t.Fatalf("started record of node %s has no cluster_address: %v", name, rec)
	}
	n := &clusterNode{name: name, proc: p, gossipAddr: gossipAddr}
	c.mu.Lock()
	c.live = append(c.live, n)
	c.all = append(c.all, n)
	c.mu.Unlock()
	return n
}

// kill ends a node with SIGKILL. It takes no traffic from then on.
func (c *testCluster) kill(n *clusterNode) {
	c.t.Helper()
	c.remove(n)
	n.proc.signal(syscall.SIGKILL)
	if _, err := n.proc.wait(time.Minute); err != nil {
		c.t.Fatalf("kill %s: %v", n.name, err)
	}
}

// stop stops a node with SIGTERM, checks that it exits with status 0, and
// returns how long that took.
func (c *testCluster) stop(n *clusterNode) time.Duration {
	c.t.Helper()
	c.remove(n)
	start := time.Now()
	n.proc.signal(syscall.SIGTERM)
	code, err := n.proc.wait(stopTimeout)
	if err != nil {
		c.t.Fatalf("stop %s: %v", n.name, err)
	}
	if code != 0 {
		c.t.Fatalf("%s exited with status %d after SIGTERM, want 0", n.name, code)
	}
	return time.Since(start)
}

func (c *testCluster) remove(n *clusterNode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = slices.DeleteFunc(c.live, func(l *clusterNode) bool { return l == n })
}

func (c *testCluster) liveNodes() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.live)
}

// node returns the live node named name.
func (c *testCluster) node(name string) *clusterNode {
	c.t.Helper()
	for _, n := range c.liveNodes() {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no live node is named %s", name)
	return nil
}

// pick returns a random live node, or nil when none runs.
func (c *testCluster) pick() *clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.live) == 0 {
		return nil
	}
	return c.live[rand.IntN(len(c.live))]
}

// busiest returns the live node that serves the most queues.
func (c *testCluster) busiest() *clusterNode {
	c.t.Helper()
	var best *clusterNode
	for _, n := range c.liveNodes() {
		n.servingBefore = c.status(n).Cluster.Serving
		if best == nil || n.servingBefore > best.servingBefore {
			best = n
		}
	}
	return best
}

// do sends one request and returns the status, body and header of the
// reply.
func (c *testCluster) do(ctx context.Context, method, url, contentType string, body []byte) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header, err
}

// request sends one request that must get a reply, retrying 503s and
// failures to connect for up to settleTimeout, and returns the reply's
// status and body.
func (c *testCluster) request(method string, n *clusterNode, path, contentType string, body []byte) (int, []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	for b := newBackoff(); ; b.wait(ctx) {
		status, reply, _, err := c.do(ctx, method, n.url(path), contentType, body)
		switch {
		case ctx.Err() != nil:
			c.t.Fatalf("%s %s through %s: no reply within %s (last: status %d, error %v, body %s)",
				method, path, n.name, settleTimeout, status, err, reply)
		case err == nil && status != http.StatusServiceUnavailable:
			return status, reply
		}
	}
}

func (c *testCluster) status(n *clusterNode) client.Status {
	c.t.Helper()
	status, body := c.request(http.MethodGet, n, "/api/status", "", nil)
	if status != http.StatusOK {
		c.t.Fatalf("status of %s: %d: %s", n.name, status, body)
	}
	var st client.Status
	if err := json.Unmarshal(body, &st); err != nil {
		c.t.Fatalf("status of %s: decode %s: %v", n.name, body, err)
	}
	if st.Cluster == nil {
		c.t.Fatalf("status of %s has no cluster section: %s", n.name, body)
	}
	return st
}

// createQueue creates a queue with the default configuration through a
// random node.
func (c *testCluster) createQueue(name string) {
	c.t.Helper()
	body := fmt.Sprintf(`{"name":%q}`, name)
	n := c.pick()
	if status, reply := c.request(http.MethodPost, n, "/api/queues", "application/json", []byte(body)); status != http.StatusCreated {
		c.t.Fatalf("create queue %s through %s: status %d: %s", name, n.name, status, reply)
	}
}

// send sends a JSON body through a random node and returns the messageId.
func (c *testCluster) send(queue, body string) string {
	c.t.Helper()
	n := c.pick()
	status, reply := c.request(http.MethodPost, n, "/api/queues/"+queue+"/messages", "application/json", []byte(body))
	if status != http.StatusOK {
		c.t.Fatalf("send to %s through %s: status %d: %s", queue, n.name, status, reply)
	}
	var res client.SendResponse
	if err := json.Unmarshal(reply, &res); err != nil || res.MessageID == "" {
		c.t.Fatalf("send to %s through %s: reply %s has no messageId (%v)", queue, n.name, reply, err)
	}
	return res.MessageID
}

// receive receives up to count messages through n.
func (c *testCluster) receive(n *clusterNode, queue string, count int, wait, visibility time.Duration) []client.QueueMessage {
	c.t.Helper()
	path := fmt.Sprintf("/api/queues/%s/messages?count=%d&wait=%d&visibility=%d",
		queue, count, wait.Milliseconds(), int(visibility/time.Second))
	status, body := c.request(http.MethodGet, n, path, "", nil)
	if status != http.StatusOK {
		c.t.Fatalf("receive from %s through %s: status %d: %s", queue, n.name, status, body)
	}
	var res client.ReceiveResponse
	if err := json.Unmarshal(body, &res); err != nil {
		c.t.Fatalf("receive from %s through %s: decode %s: %v", queue, n.name, body, err)
	}
	return res.QueueMessages
}

// ack acks one delivery through n and returns the reply.
func (c *testCluster) ack(n *clusterNode, queue, queueMessageID string) (int, []byte) {
	c.t.Helper()
	return c.request(http.MethodDelete, n, "/api/queues/"+queue+"/messages/"+url.PathEscape(queueMessageID), "", nil)
}

func (c *testCluster) stats(n *clusterNode, queue string) client.Stats {
	c.t.Helper()
	status, body := c.request(http.MethodGet, n, "/api/queues/"+queue+"/stats", "", nil)
	if status != http.StatusOK {
		c.t.Fatalf("stats of %s through %s: status %d: %s", queue, n.name, status, body)
	}
	var s client.Stats
	if err := json.Unmarshal(body, &s); err != nil {
		c.t.Fatalf("stats of %s through %s: decode %s: %v", queue, n.name, body, err)
	}
	return s
}

// waitStats polls the stats of a queue through n until cond holds.
func (c *testCluster) waitStats(n *clusterNode, queue string, cond func(client.Stats) bool) client.Stats {
	c.t.Helper()
	deadline := time.Now().Add(settleTimeout)
	for {
		s := c.stats(n, queue)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("stats of queue %s through %s did not reach the expected state within %s: %+v", queue, n.name, settleTimeout, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkEmpty checks that every queue has no available, inflight or delayed
// message, and returns the sum of their totals.
func (c *testCluster) checkEmpty(queues []string) client.Totals {
	c.t.Helper()
	var sum client.Totals
	for _, q := range queues {
		n := c.pick()
		s := c.stats(n, q)
		if s.Available != 0 || s.Inflight != 0 || s.Delayed != 0 {
			c.t.Errorf("queue %s is not empty after the drain (stats through %s): %d available, %d inflight, %d delayed",
				q, n.name, s.Available, s.Inflight, s.Delayed)
		}
		sum.Sent += s.Totals.Sent
		sum.Received += s.Totals.Received
		sum.Acked += s.Totals.Acked
		sum.TimedOut += s.Totals.TimedOut
	}
	return sum
}

// waitMembers waits until every live node lists each member of want in its
// state. A member that should be "left" may also be missing. One listed as
// "dead" instead fails the test but counts as settled, because a node that
// stopped gracefully must never look crashed.
func (c *testCluster) waitMembers(want map[string]string) {
	c.t.Helper()
	deadline := time.Now().Add(settleTimeout)
	reported := make(map[string]bool)
	for {
		mismatch := ""
		for _, n := range c.liveNodes() {
			st := c.status(n)
			for name, state := range want {
				m, ok := findMember(st.Cluster, name)
				switch {
				case !ok && state == "left":
				case !ok:
					mismatch = fmt.Sprintf("%s does not list %s", n.name, name)
				case m.State == "dead" && state == "left":
					if key := n.name + "/" + name; !reported[key] {
						reported[key] = true
						c.t.Errorf("%s lists %s as dead after its graceful stop, want left", n.name, name)
					}
				case m.State != state:
					mismatch = fmt.Sprintf("%s lists %s as %s, want %s", n.name, name, m.State, state)
				}
			}
		}
		if mismatch == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster membership did not settle within %s: %s", settleTimeout, mismatch)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitServing waits until the live nodes together serve want queues, and
// returns how long that took.
func (c *testCluster) waitServing(want int) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		total := 0
		var counts []string
		for _, n := range c.liveNodes() {
			serving := c.status(n).Cluster.Serving
			total += serving
			counts = append(counts, fmt.Sprintf("%s %d", n.name, serving))
		}
		if total == want {
			return time.Since(start)
		}
		if time.Since(start) > settleTimeout {
			c.t.Fatalf("the live nodes serve %d queues after %s, want %d (%s)", total, settleTimeout, want, strings.Join(counts, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logOnFailure logs the warnings and errors of every node of a failed
// test.
func (c *testCluster) logOnFailure() {
	if !c.t.Failed() {
		return
	}
	c.mu.Lock()
	nodes := slices.Clone(c.all)
	c.mu.Unlock()
	for _, n := range nodes {
		var lines []string
		for _, rec := range n.proc.records() {
			if rec["level"] == "WARN" || rec["level"] == "ERROR" {
				line, _ := json.Marshal(rec)
				lines = append(lines, string(line))
			}
		}
		if len(lines) > 40 {
			lines = append(lines[:20], append([]string{fmt.Sprintf("... %d more ...", len(lines)-40)}, lines[len(lines)-20:]...)...)
		}
		c.t.Logf("warnings and errors of node %s (%s):\n%s", n.name, n.proc.addr, strings.Join(lines, "\n"))
	}
}

// workload runs senders and consumers against a test cluster and records
// what they see in a checker. Senders and consumers never stop the test,
// because they run on goroutines of their own. They report unexpected
// replies through the checker.
type workload struct {
	c      *testCluster
	queues []string
	check  *checker
	// ctx ends every request when the test gives up.
	ctx    context.Context
	cancel context.CancelFunc

	sendersStop   chan struct{}
	consumersStop chan struct{}
	senders       sync.WaitGroup
	consumers     sync.WaitGroup
	stopSendOnce  sync.Once
	stopConsOnce  sync.Once
}

func startWorkload(ctx context.Context, c *testCluster, queues []string) *workload {
	ctx, cancel := context.WithCancel(ctx)
	w := &workload{
		c:             c,
		queues:        queues,
		check:         newChecker(),
		ctx:           ctx,
		cancel:        cancel,
		sendersStop:   make(chan struct{}),
		consumersStop: make(chan struct{}),
	}
	for i := range workloadSenders {
		w.senders.Go(func() { w.sendLoop(i) })
	}
	for range workloadConsumers {
		w.consumers.Go(w.consumeLoop)
	}
	return w
}

// stopSenders lets each sender finish its request and waits for them.
func (w *workload) stopSenders() {
	w.stopSendOnce.Do(func() { close(w.sendersStop) })
	w.senders.Wait()
}

// stopConsumers lets each consumer finish its receive and the acks of its
// deliveries, and waits for them.
func (w *workload) stopConsumers() {
	w.stopConsOnce.Do(func() { close(w.consumersStop) })
	w.consumers.Wait()
}

// stop ends every request and waits for every goroutine.
func (w *workload) stop() {
	w.cancel()
	w.stopSenders()
	w.stopConsumers()
}

func stopped(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sendLoop sends unique bodies to random queues through random nodes. A
// send without a definite reply is recorded as unknown and not repeated,
// so that each body names at most one message.
func (w *workload) sendLoop(sender int) {
	b := newBackoff()
	for seq := 0; seq < workloadSendsPerSender && !stopped(w.sendersStop) && w.ctx.Err() == nil; seq++ {
		queue := w.queues[rand.IntN(len(w.queues))]
		body := fmt.Sprintf(`{"sender":%d,"seq":%d}`, sender, seq)
		n := w.c.pick()
		status, reply, _, err := w.c.do(w.ctx, http.MethodPost, n.url("/api/queues/"+queue+"/messages"), "application/json", []byte(body))
		switch {
		case err != nil || status >= http.StatusInternalServerError:
			w.check.sendUnknown(queue, body)
			if status == http.StatusInternalServerError {
				w.check.fail("send to %s through %s: status %d: %s", queue, n.name, status, reply)
			}
			b.wait(w.ctx)
		case status == http.StatusOK:
			var res client.SendResponse
			if err := json.Unmarshal(reply, &res); err != nil || res.MessageID == "" {
				w.check.fail("send to %s through %s: reply %s has no messageId (%v)", queue, n.name, reply, err)
				continue
			}
			w.check.sendSucceeded(queue, body, res.MessageID)
			b.reset()
		default:
			w.check.fail("send to %s through %s: status %d: %s", queue, n.name, status, reply)
		}
	}
}

// consumeLoop receives from random queues through random nodes and acks
// every delivery.
func (w *workload) consumeLoop() {
	b := newBackoff()
	for !stopped(w.consumersStop) && w.ctx.Err() == nil {
		deliveries, ok := w.receive(w.queues[rand.IntN(len(w.queues))], workloadReceiveWait)
		if !ok {
			b.wait(w.ctx)
			continue
		}
		b.reset()
		for _, d := range deliveries {
			w.ackDelivery(d)
		}
	}
}

// receive receives up to workloadReceiveMax messages from a queue through a
// random node and records them. ok is false when the receive failed and
// should be retried later.
func (w *workload) receive(queue string, wait time.Duration) (deliveries []*clusterDelivery, ok bool) {
	n := w.c.pick()
	path := fmt.Sprintf("/api/queues/%s/messages?count=%d&wait=%d&visibility=%d",
		queue, workloadReceiveMax, wait.Milliseconds(), int(workloadVisibility/time.Second))
	w.check.receiveStarted()
	status, reply, header, err := w.c.do(w.ctx, http.MethodGet, n.url(path), "", nil)
	at := time.Now()

	var res client.ReceiveResponse
	if err == nil && status == http.StatusOK {
		if err := json.Unmarshal(reply, &res); err != nil {
			w.check.fail("receive from %s through %s: decode %s: %v", queue, n.name, reply, err)
		}
	}
	notApplied := status == http.StatusServiceUnavailable && header.Get(cluster.NotOwnerHeader) != ""
	unknown := status != http.StatusOK && !notApplied
	deliveries = w.check.receiveEnded(queue, res.QueueMessages, at, unknown)
	switch {
	case err != nil || status == http.StatusBadGateway || status == http.StatusServiceUnavailable:
		return nil, false
	case status != http.StatusOK:
		w.check.fail("receive from %s through %s: status %d: %s", queue, n.name, status, reply)
		return nil, false
	}
	if len(res.QueueMessages) > workloadReceiveMax {
		w.check.fail("receive of %d from %s returned %d messages", workloadReceiveMax, queue, len(res.QueueMessages))
	}
	return deliveries, true
}

// holdDeliveries receives from every queue without acking, as a stalled
// consumer would, so that a crash finds deliveries of its queues inflight.
// The caller acks them later with ackDelivery.
func (w *workload) holdDeliveries() []*clusterDelivery {
	var held []*clusterDelivery
	for _, q := range w.queues {
		deliveries, _ := w.receive(q, workloadReceiveWait)
		held = append(held, deliveries...)
	}
	return held
}

// ackDelivery acks one delivery through random nodes until a reply
// settles it. A transport error, a 502 or a 503 without the not-owner
// header leaves the outcome unknown, so a later 400 is ambiguous.
func (w *workload) ackDelivery(d *clusterDelivery) {
	path := "/api/queues/" + d.queue + "/messages/" + url.PathEscape(d.queueMessageID)
	deadline := time.Now().Add(ackPatience)
	unknown := false
	for b := newBackoff(); ; b.wait(w.ctx) {
		if w.ctx.Err() != nil || time.Now().After(deadline) {
			w.check.ackEnded(d, ackAbandoned, time.Now())
			return
		}
		n := w.c.pick()
		status, reply, header, err := w.c.do(w.ctx, http.MethodDelete, n.url(path), "", nil)
		at := time.Now()
		switch {
		case err == nil && status == http.StatusOK:
			w.check.ackEnded(d, ackSucceeded, at)
			return
		case err == nil && status == http.StatusBadRequest:
			outcome := ackRejected
			if unknown {
				outcome = ackAmbiguous
			}
			w.check.ackEnded(d, outcome, at)
			return
		case err == nil && status == http.StatusServiceUnavailable && header.Get(cluster.NotOwnerHeader) != "":
			// Not applied: no node served the queue.
		case err != nil || status == http.StatusBadGateway || status == http.StatusServiceUnavailable:
			unknown = true
		default:
			unknown = true
			w.check.fail("ack %s of queue %s through %s: status %d: %s", d.queueMessageID, d.queue, n.name, status, reply)
		}
	}
}

// disrupt waits for progress, then runs a cluster event under load and
// waits until the live nodes serve every queue again.
func (w *workload) disrupt(t *testing.T, name string, event func()) {
	t.Helper()
	w.waitAcks(t, progressAcks)
	ev := w.check.begin(name, workloadReceiveMax)
	event()
	settled := time.Since(ev.began)
	w.c.waitServing(len(w.queues))
	w.check.end(ev)
	t.Logf("%s: membership settled after %s, and the live nodes served every queue again after %s",
		name, settled.Round(time.Millisecond), ev.ended.Sub(ev.began).Round(time.Millisecond))
}

// waitAcks waits until the consumers acked n more deliveries.
func (w *workload) waitAcks(t *testing.T, n int) {
	t.Helper()
	want := w.check.successfulAcks() + n
	deadline := time.Now().Add(settleTimeout)
	for w.check.successfulAcks() < want {
		if time.Now().After(deadline) {
			t.Fatalf("consumers did not ack %d more deliveries within %s: %s", n, settleTimeout, w.check.progress())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drain waits until every acknowledged send was received, no delivery
// awaits its ack and every queue's stats show no message. When the queues
// stay empty for emptyPatience while sends are still missing, it returns
// and leaves those sends to verify, which reports them as lost.
func (w *workload) drain(ctx context.Context) error {
	deadline := time.Now().Add(drainTimeout)
	var emptySince time.Time
	for {
		busy := w.busyQueues(ctx)
		empty := len(busy) == 0 && w.check.awaitingAck() == 0
		switch {
		case empty && w.check.drained():
			return nil
		case !empty:
			emptySince = time.Time{}
		case emptySince.IsZero():
			emptySince = time.Now()
		case time.Since(emptySince) > emptyPatience:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queues not drained within %s: %s; not received yet: %q; non-empty queues: %q",
				drainTimeout, w.check.progress(), w.check.missing(10), busy)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %w: %s", ctx.Err(), w.check.progress())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// busyQueues returns the queues whose stats show a message, or that could
// not be read.
func (w *workload) busyQueues(ctx context.Context) []string {
	var busy []string
	for _, q := range w.queues {
		n := w.c.pick()
		status, reply, _, err := w.c.do(ctx, http.MethodGet, n.url("/api/queues/"+q+"/stats"), "", nil)
		var s client.Stats
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(reply, &s)
		}
		switch {
		case err != nil || status != http.StatusOK:
			busy = append(busy, fmt.Sprintf("%s: status %d, error %v", q, status, err))
		case s.Available != 0 || s.Inflight != 0 || s.Delayed != 0:
			busy = append(busy, fmt.Sprintf("%s: %d available, %d inflight, %d delayed", q, s.Available, s.Inflight, s.Delayed))
		}
	}
	return busy
}
