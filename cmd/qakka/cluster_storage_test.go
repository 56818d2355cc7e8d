package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qakka/qakka/client"
)

// Settings of TestClusterStorageLoss. The lease settings are the defaults,
// passed explicitly because the test's bounds derive from them.
const (
	storageLossLeaseTTL    = 5 * time.Second
	storageLossLeaseSettle = 2 * time.Second
	// storageLossCheckInterval is how often a node's coordinator checks its
	// leases (cluster.DefaultInterval).
	storageLossCheckInterval = time.Second
	// storageLossDriverTimeout is the victim's timeout of each Cassandra
	// request and connection, so that a blackholed request fails well
	// within a lease term instead of after the default 10 s.
	storageLossDriverTimeout = 2 * time.Second
	// storageLossVisibility keeps the message received before the cut
	// inflight for the whole test.
	storageLossVisibility = 10 * time.Minute
	// storageLossRecoveryBound bounds how long the victim may take to serve
	// its queues again once Cassandra responds. It took 1 to 2 s with a
	// single-node Cassandra 5.0 on the same machine.
	storageLossRecoveryBound = 15 * time.Second
	// storageLossRequestTimeout bounds one HTTP request to a node.
	storageLossRequestTimeout = 30 * time.Second
	// storageLossMaxQueues bounds how many queues the test creates to find
	// two that the victim serves.
	storageLossMaxQueues = 16
)

// storageLossFault is how the proxy cuts the victim off from Cassandra.
type storageLossFault int

const (
	// storageLossRefuse closes every relayed connection and the listener,
	// so the driver's requests and dials fail at once.
	storageLossRefuse storageLossFault = iota
	// storageLossBlackhole keeps every connection open and accepts new
	// ones, but drops all bytes in both directions, so the driver waits
	// for its timeouts.
	storageLossBlackhole
)

func (f storageLossFault) String() string {
	if f == storageLossBlackhole {
		return "blackhole"
	}
	return "refuse"
}

// TestClusterStorageLoss cuts one node of a two-node cluster, the victim,
// off from Cassandra while it serves two queues. The busy queue contains
// one inflight and two available messages and gets writes during the cut.
// The idle one gets only stats requests.
//
// The victim must reply 503 with Retry-After instead of serving a queue
// from memory once another node could have taken the queue's lease (its
// expiry plus the settle time), and must stop serving its queues by then.
// Once Cassandra responds again it must take the queues back by itself.
// No message may be lost: the inflight message stays inflight and can be
// acked, and the available ones and a message sent through the other node
// during the cut are delivered.
//
// The cut is a TCP proxy in the test process, the victim's only Cassandra
// contact point. It runs once with connections refused and once with
// traffic blackholed.
func TestClusterStorageLoss(t *testing.T) {
	host := os.Getenv("QAKKA_TEST_CASSANDRA")
	if host == "" {
		t.Skip("QAKKA_TEST_CASSANDRA is not set; start a node with scripts/cassandra-dev.sh start and set QAKKA_TEST_CASSANDRA=127.0.0.1:9042")
	}
	bin := buildQakka(t)
	for _, fault := range []storageLossFault{storageLossRefuse, storageLossBlackhole} {
		t.Run(fault.String(), func(t *testing.T) {
			storageLossRun(t, bin, host, fault)
		})
	}
}

func storageLossRun(t *testing.T, bin, cassandra string, fault storageLossFault) {
	proxy := storageLossStartProxy(t, cassandra)
	api := &storageLossClient{t: t, http: &http.Client{}}
	t.Cleanup(api.http.CloseIdleConnections)

	healthy, victim := storageLossStartCluster(t, bin, cassandra, proxy.addr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("victim's log:\n%s", victim.log())
			t.Logf("healthy node's log:\n%s", healthy.log())
		}
	})
	if proxy.acceptedCount() == 0 {
		t.Fatalf("the victim started without connecting through the proxy at %s", proxy.addr)
	}

	// The busy queue gets requests that write during the cut. The idle one
	// gets only stats requests, which its owner serves from memory as long
	// as no commit failed.
	queues := storageLossVictimQueues(t, api, healthy, victim, 2)
	busy, idle := queues[0], queues[1]
	sent := make(map[string]string) // messageId -> payload
	for i := 1; i <= 3; i++ {
		id, payload := api.send(victim, busy, i)
		sent[id] = payload
	}
	inflight := api.receiveOne(victim, busy)
	if st := api.stats(victim, busy); st.Available != 2 || st.Inflight != 1 {
		t.Fatalf("stats of %s before the cut: available %d, inflight %d; want 2 and 1", busy, st.Available, st.Inflight)
	}
	idleID, idlePayload := api.send(victim, idle, 1)
	if st := api.stats(victim, idle); st.Available != 1 {
		t.Fatalf("stats of %s before the cut: available %d, want 1", idle, st.Available)
	}

	cutAt := time.Now()
	proxy.cut(fault)
	t.Logf("cut (%s) the victim's Cassandra connections; it had opened %d through the proxy", fault, proxy.acceptedCount())

	storageLossExpectUnavailable(t, "ack through the victim during the cut",
		api.do(victim, http.MethodDelete, "/api/queues/"+busy+"/messages/"+inflight.QueueMessageID, "", ""))
	prober := storageLossStartProber(t, api, victim, []storageLossTarget{
		{queue: busy, op: "receive", path: "/api/queues/" + busy + "/messages?count=1&wait=0"},
		{queue: busy, op: "stats", path: "/api/queues/" + busy + "/stats"},
		{queue: idle, op: "stats", path: "/api/queues/" + idle + "/stats"},
	})
	servingZeroAt := storageLossWaitStopped(t, api, victim, cutAt)
	storageLossWaitTakeover(t, healthy, queues, cutAt)
	probes := prober.stop()
	storageLossCheckProbes(t, probes, cutAt, servingZeroAt)
	// Receives that the victim forwarded to the node that took the queue
	// got real deliveries: ack them, and expect them no more.
	probeDelivered := 0
	for _, p := range probes {
		if p.target.op != "receive" || p.reply.status != http.StatusOK {
			continue
		}
		var res client.ReceiveResponse
		if err := json.Unmarshal(p.reply.body, &res); err != nil {
			t.Fatalf("decode receive reply %s: %v", p.reply.body, err)
		}
		for _, m := range res.QueueMessages {
			if r := api.do(healthy, http.MethodDelete, "/api/queues/"+busy+"/messages/"+m.QueueMessageID, "", ""); r.status != http.StatusOK {
				t.Errorf("ack of a message delivered through the victim during the cut: %s", r)
			}
			delete(sent, m.MessageID)
			probeDelivered++
		}
	}
	t.Logf("the victim forwarded receives that delivered %d messages during the cut", probeDelivered)

	// Only the owner lost Cassandra: sends through the other node are stored
	// there, and the victim cannot store one.
	id, payload := api.send(healthy, busy, 4)
	sent[id] = payload
	storageLossExpectUnavailable(t, "send through the victim during the cut",
		api.do(victim, http.MethodPost, "/api/queues/"+busy+"/messages", "application/json", `{"n":5}`))
	// The victim reported to the others that it cannot reach Cassandra, so
	// the healthy node takes its queues once their leases expired. It serves
	// their state from storage, where the delivery made before the cut is
	// still inflight.
	eventuallyStats := func() (bool, string) {
		st := api.stats(healthy, busy)
		want := int64(3 - probeDelivered)
		return st.Inflight == 1 && st.Available == want, fmt.Sprintf("available %d, inflight %d; want %d and 1", st.Available, st.Inflight, want)
	}
	storageLossPoll(t, "the send through the healthy node to reach "+busy, 10*time.Second, eventuallyStats)

	// Once Cassandra responds again, the victim takes its queues back by
	// itself, through the proxy.
	acceptedBeforeRestore := proxy.acceptedCount()
	restoreAt := time.Now()
	proxy.restore()
	recoveredAt := storageLossWaitServing(t, api, victim, queues)
	t.Logf("the victim served %v again %s after Cassandra responded (the cut lasted %s)",
		queues, recoveredAt.Sub(restoreAt).Round(time.Millisecond), restoreAt.Sub(cutAt).Round(time.Millisecond))
	if proxy.acceptedCount() == acceptedBeforeRestore {
		t.Errorf("the victim serves again without a new connection through the proxy, so it reaches Cassandra another way")
	}
	if got := api.status(victim).Serving; got != len(queues) {
		t.Errorf("victim's status after the cut: serving %d, want %d", got, len(queues))
	}

	storageLossCheckMessages(t, api, victim, busy, sent, inflight)
	storageLossCheckMessages(t, api, victim, idle, map[string]string{idleID: idlePayload}, client.QueueMessage{})
}

// storageLossStartCluster starts the healthy node, which reaches Cassandra
// directly, and the victim, which reaches it through the proxy at via. It
// waits until each node's status lists both as alive.
func storageLossStartCluster(t *testing.T, bin, cassandra, via string) (healthy, victim *serverProcess) {
	t.Helper()
	// A keyspace of its own. The dev node starts empty each time, so it is
	// not dropped here.
	keyspace := fmt.Sprintf("qakka_loss_%d", time.Now().UnixNano())
	common := []string{
		"--listen=127.0.0.1:0",
		"--storage=cassandra",
		"--cassandra-keyspace=" + keyspace,
		"--cluster-listen=127.0.0.1:0",
		"--cluster-profile=local",
		"--cluster-lease-ttl=" + storageLossLeaseTTL.String(),
		"--cluster-lease-settle=" + storageLossLeaseSettle.String(),
	}
	// The healthy node starts first and creates the keyspace.
	healthy = startServer(t, bin, append(slices.Clone(common),
		"--cassandra-hosts="+cassandra, "--cluster-node-name=healthy"), nil)
	rec, _ := healthy.findRecord("started")
	seed, _ := rec["cluster_address"].(string)
	if seed == "" {
		t.Fatalf("started record of the healthy node has no cluster_address: %v", rec)
	}
	victim = startServer(t, bin, append(slices.Clone(common),
		"--cassandra-hosts="+via,
		"--cassandra-timeout="+storageLossDriverTimeout.String(),
		"--cassandra-connect-timeout="+storageLossDriverTimeout.String(),
		"--cluster-node-name=victim",
		"--cluster-seeds="+seed), nil)
	rec, _ = victim.findRecord("started")
	if got := rec["cassandra_hosts"]; got != via {
		t.Fatalf("victim started with cassandra_hosts %v, want the proxy %s", got, via)
	}

	api := &storageLossClient{t: t, http: &http.Client{}}
	defer api.http.CloseIdleConnections()
	storageLossPoll(t, "both nodes to see each other alive", 30*time.Second, func() (bool, string) {
		var views []string
		for _, p := range []*serverProcess{healthy, victim} {
			st := api.status(p)
			alive := 0
			for _, m := range st.Members {
				if m.State == "alive" {
					alive++
				}
			}
			if alive != 2 {
				views = append(views, fmt.Sprintf("%s sees %+v", st.Node, st.Members))
			}
		}
		return len(views) == 0, strings.Join(views, "; ")
	})
	return healthy, victim
}

// storageLossVictimQueues creates queues until n of them are served by the
// victim, and returns their names.
func storageLossVictimQueues(t *testing.T, api *storageLossClient, healthy, victim *serverProcess, n int) []string {
	t.Helper()
	var queues []string
	for i := 0; i < storageLossMaxQueues && len(queues) < n; i++ {
		q := fmt.Sprintf("loss-%d", i)
		r := api.do(healthy, http.MethodPost, "/api/queues", "application/json", fmt.Sprintf(`{"name":%q}`, q))
		if r.status != http.StatusCreated {
			t.Fatalf("create queue %s: %s", q, r)
		}
		storageLossPoll(t, "a node to serve queue "+q, 15*time.Second, func() (bool, string) {
			return storageLossServes(healthy, q) || storageLossServes(victim, q), "no node logged that it took the queue"
		})
		if storageLossServes(victim, q) {
			queues = append(queues, q)
		}
	}
	if len(queues) < n {
		t.Fatalf("the victim served %d of %d queues, want %d", len(queues), storageLossMaxQueues, n)
	}
	return queues
}

// storageLossServes reports whether the last ownership record of queue in
// p's log shows that p serves it.
func storageLossServes(p *serverProcess, queue string) bool {
	serving := false
	for _, rec := range p.records() {
		if rec["queue"] != queue {
			continue
		}
		msg, _ := rec["msg"].(string)
		switch {
		case msg == "took queue":
			serving = true
		case strings.Contains(msg, "stopped serving"):
			serving = false
		}
	}
	return serving
}

// storageLossTookCount counts the "took queue" records of queue in p's log.
func storageLossTookCount(p *serverProcess, queue string) int {
	n := 0
	for _, rec := range p.records() {
		if rec["msg"] == "took queue" && rec["queue"] == queue {
			n++
		}
	}
	return n
}

// storageLossWaitStopped polls the victim's status until it serves no
// queue, and returns when it first reported that. It fails the test when
// that came later than the moment another node may take the lease: the
// expiry of the last lease renewed before the cut, plus the settle time.
// The poll keeps going until two check intervals past that moment, so
// that the prober covers the whole window in which another node could have
// taken the queue.
func storageLossWaitStopped(t *testing.T, api *storageLossClient, victim *serverProcess, cutAt time.Time) time.Time {
	t.Helper()
	takeable := cutAt.Add(storageLossLeaseTTL + storageLossLeaseSettle)
	windowEnd := takeable.Add(2 * storageLossCheckInterval)
	var zeroAt time.Time
	storageLossPoll(t, "the victim to stop serving", time.Until(windowEnd)+30*time.Second, func() (bool, string) {
		st := api.status(victim)
		if st.Serving == 0 && zeroAt.IsZero() {
			zeroAt = time.Now()
		}
		return !zeroAt.IsZero() && time.Now().After(windowEnd), fmt.Sprintf("serving %d", st.Serving)
	})
	t.Logf("the victim's status showed serving 0 %s after the cut (lease TTL %s, settle %s)",
		zeroAt.Sub(cutAt).Round(time.Millisecond), storageLossLeaseTTL, storageLossLeaseSettle)
	if zeroAt.After(takeable) {
		t.Errorf("the victim still held a lease %s after the cut, past the lease TTL plus settle time (%s) when another node may take the queue",
			zeroAt.Sub(cutAt).Round(time.Millisecond), storageLossLeaseTTL+storageLossLeaseSettle)
	}
	return zeroAt
}

// storageLossWaitServing polls stats requests through the victim until
// they succeed for every queue, which needs the victim to serve them, and
// returns when they first did.
func storageLossWaitServing(t *testing.T, api *storageLossClient, victim *serverProcess, queues []string) time.Time {
	t.Helper()
	took := make(map[string]int)
	for _, q := range queues {
		took[q] = storageLossTookCount(victim, q)
	}
	// Stats through the victim succeed as soon as it forwards them, so
	// the victim's own log shows when it serves a queue again.
	storageLossPoll(t, fmt.Sprintf("the victim to serve %v again", queues), storageLossRecoveryBound, func() (bool, string) {
		for _, q := range queues {
			if !storageLossServes(victim, q) {
				return false, q + " is not served by the victim"
			}
		}
		return true, ""
	})
	at := time.Now()
	for _, q := range queues {
		if storageLossTookCount(victim, q) == took[q] {
			t.Errorf("the victim serves %s again without logging that it took the queue", q)
		}
	}
	return at
}

// storageLossWaitTakeover waits until the healthy node serves every queue
// of the victim, and logs how long after the cut that took.
func storageLossWaitTakeover(t *testing.T, healthy *serverProcess, queues []string, cutAt time.Time) {
	t.Helper()
	deadline := cutAt.Add(storageLossLeaseTTL + storageLossLeaseSettle + 10*time.Second)
	for {
		missing := 0
		for _, q := range queues {
			if !storageLossServes(healthy, q) {
				missing++
			}
		}
		if missing == 0 {
			t.Logf("the healthy node served %v %s after the cut", queues, time.Since(cutAt).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the healthy node did not take the victim's queues within %s of the cut", deadline.Sub(cutAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storageLossCheckMessages checks that every message of sent is still in q
// after the cut. The delivery inflight, if it has a MessageID, stays
// inflight and its ack works. Every other message is delivered once.
func storageLossCheckMessages(t *testing.T, api *storageLossClient, victim *serverProcess, q string, sent map[string]string, inflight client.QueueMessage) {
	t.Helper()
	want := make(map[string]string)
	for id, payload := range sent {
		if id != inflight.MessageID {
			want[id] = payload
		}
	}
	inflightCount := 0
	if inflight.MessageID != "" {
		inflightCount = 1
	}

	got := make(map[string]client.QueueMessage)
	storageLossPoll(t, "the available messages of "+q, 20*time.Second, func() (bool, string) {
		path := fmt.Sprintf("/api/queues/%s/messages?count=10&wait=1000&visibility=%d", q, int(storageLossVisibility/time.Second))
		r := api.do(victim, http.MethodGet, path, "", "")
		if r.status != http.StatusOK {
			return false, "receive: " + r.String()
		}
		var res client.ReceiveResponse
		if err := json.Unmarshal(r.body, &res); err != nil {
			t.Fatalf("decode receive reply %s: %v", r.body, err)
		}
		for _, m := range res.QueueMessages {
			if _, dup := got[m.MessageID]; dup {
				t.Errorf("message %s of %s delivered twice after the cut", m.MessageID, q)
			}
			got[m.MessageID] = m
		}
		return len(got) >= len(want), fmt.Sprintf("received %d of %d", len(got), len(want))
	})

	if _, ok := got[inflight.MessageID]; ok {
		t.Errorf("message %s of %s, inflight since before the cut with a visibility timeout of %s, was delivered again",
			inflight.MessageID, q, storageLossVisibility)
	}
	for id, payload := range want {
		m, ok := got[id]
		if !ok {
			t.Errorf("message %s (%s) of %s was not delivered after the cut", id, payload, q)
			continue
		}
		if m.Data != payload {
			t.Errorf("message %s of %s has data %q, want %q", id, q, m.Data, payload)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected message %s delivered from %s after the cut", id, q)
		}
	}

	st := api.stats(victim, q)
	if st.Available != 0 || st.Inflight != int64(len(got)+inflightCount) {
		t.Errorf("stats of %s after the receives: available %d, inflight %d; want 0 and %d", q, st.Available, st.Inflight, len(got)+inflightCount)
	}
	acks := slices.Collect(maps.Values(got))
	if inflightCount == 1 {
		acks = append(acks, inflight)
	}
	for _, m := range acks {
		if r := api.do(victim, http.MethodDelete, "/api/queues/"+q+"/messages/"+m.QueueMessageID, "", ""); r.status != http.StatusOK {
			t.Errorf("ack of message %s of %s: %s", m.MessageID, q, r)
		}
	}
	st = api.stats(victim, q)
	if st.Available != 0 || st.Inflight != 0 || st.Delayed != 0 {
		t.Errorf("stats of %s after every ack: available %d, inflight %d, delayed %d; want none", q, st.Available, st.Inflight, st.Delayed)
	}
	t.Logf("totals of %s: %+v", q, st.Totals)
}

// storageLossExpectUnavailable fails the test unless r is a 503 with
// Retry-After.
func storageLossExpectUnavailable(t *testing.T, request string, r storageLossReply) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("%s: %s; want 503", request, r)
		return
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After: %s", request, r)
	}
}

// storageLossTarget is a request the prober repeats.
type storageLossTarget struct {
	queue, op, path string
}

// storageLossProbe is one request of the prober.
type storageLossProbe struct {
	target storageLossTarget
	sentAt time.Time
	reply  storageLossReply
}

// storageLossProber sends each target's request to one node every
// storageLossProbeInterval, without waiting for earlier replies, so that a
// request stuck on a storage timeout does not leave a gap.
type storageLossProber struct {
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu     sync.Mutex
	probes []storageLossProbe
}

const storageLossProbeInterval = 200 * time.Millisecond

func storageLossStartProber(t *testing.T, api *storageLossClient, p *serverProcess, targets []storageLossTarget) *storageLossProber {
	pr := &storageLossProber{quit: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { pr.stop() })
	go func() {
		defer close(pr.done)
		tick := time.NewTicker(storageLossProbeInterval)
		defer tick.Stop()
		for {
			for _, target := range targets {
				pr.wg.Add(1)
				go func() {
					defer pr.wg.Done()
					sentAt := time.Now()
					r := api.do(p, http.MethodGet, target.path, "", "")
					pr.mu.Lock()
					pr.probes = append(pr.probes, storageLossProbe{target: target, sentAt: sentAt, reply: r})
					pr.mu.Unlock()
				}()
			}
			select {
			case <-pr.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return pr
}

// stop stops sending, waits for every reply and returns the probes in the
// order they were sent.
func (pr *storageLossProber) stop() []storageLossProbe {
	pr.stopOnce.Do(func() {
		close(pr.quit)
		<-pr.done
		pr.wg.Wait()
		slices.SortFunc(pr.probes, func(a, b storageLossProbe) int { return a.sentAt.Compare(b.sentAt) })
	})
	return pr.probes
}

// storageLossCheckProbes checks the victim's replies during the cut. No
// receive may succeed, because a delivery needs a commit and an empty reply
// would hide the queue's available messages. The owner serves a stats
// request from memory, so it may succeed while the owner's lease lasts.
// It must fail once another node could have taken the lease, which is the
// expiry of the last lease renewed before the cut plus the settle time.
func storageLossCheckProbes(t *testing.T, probes []storageLossProbe, cutAt, servingZeroAt time.Time) {
	t.Helper()
	takeable := cutAt.Add(storageLossLeaseTTL + storageLossLeaseSettle)
	type summary struct {
		sent, late, ok, forwarded int
		lastOK                    time.Time
		lateOK                    []string
	}
	var order []storageLossTarget
	sums := make(map[storageLossTarget]*summary)
	for _, p := range probes {
		s := sums[p.target]
		if s == nil {
			s = &summary{}
			sums[p.target] = s
			order = append(order, p.target)
		}
		s.sent++
		late := p.sentAt.After(takeable)
		if late {
			s.late++
		}
		since := p.sentAt.Sub(cutAt).Round(time.Millisecond)
		if node := p.reply.header.Get("X-Qakka-Node"); node != "" && node != "victim" {
			// The victim forwarded the request to the node that took the
			// queue over, which serves it from storage.
			s.forwarded++
			continue
		}
		if p.target.op == "stats" && p.reply.status == http.StatusOK {
			s.ok++
			s.lastOK = p.sentAt
			if late {
				s.lateOK = append(s.lateOK, since.String())
			}
			continue
		}
		storageLossExpectUnavailable(t, fmt.Sprintf("%s of %s through the victim %s after the cut", p.target.op, p.target.queue, since), p.reply)
	}
	for _, target := range order {
		s := sums[target]
		t.Logf("during the cut the victim replied to %d %s requests of %s: %d with 200 from its memory, the last one sent %s after the cut (serving 0 from %s after the cut), and %d with the reply of the node that took the queue",
			s.sent, target.op, target.queue, s.ok, storageLossSince(s.lastOK, cutAt), storageLossSince(servingZeroAt, cutAt), s.forwarded)
		if s.late == 0 {
			t.Errorf("the prober sent no %s request of %s after %s, when another node could have taken the lease", target.op, target.queue, storageLossLeaseTTL+storageLossLeaseSettle)
		}
		if len(s.lateOK) > 0 {
			t.Errorf("the victim served %d stats requests of %s from memory after another node could have taken its lease (%s after the cut); they were sent %s after the cut",
				len(s.lateOK), target.queue, storageLossLeaseTTL+storageLossLeaseSettle, strings.Join(s.lateOK, ", "))
		}
	}
}

func storageLossSince(at, from time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(from).Round(time.Millisecond).String()
}

// storageLossPoll calls cond every 100 ms until it returns true, and fails
// the test with cond's last description after timeout.
func storageLossPoll(t *testing.T, condition string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, condition, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storageLossReply is an HTTP reply, or the error of a request that got
// none.
type storageLossReply struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r storageLossReply) String() string {
	if r.err != nil {
		return "no reply: " + r.err.Error()
	}
	return fmt.Sprintf("%d from node %s: %s", r.status, r.header.Get("X-Qakka-Node"), strings.TrimSpace(string(r.body)))
}

// storageLossClient sends REST requests to the nodes.
type storageLossClient struct {
	t    *testing.T
	http *http.Client
}

// do sends a request and returns its reply. It is safe for concurrent use.
func (c *storageLossClient) do(p *serverProcess, method, path, contentType, body string) storageLossReply {
	ctx, cancel := context.WithTimeout(context.Background(), storageLossRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.url(path), strings.NewReader(body))
	if err != nil {
		return storageLossReply{err: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return storageLossReply{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return storageLossReply{status: resp.StatusCode, header: resp.Header, body: data, err: err}
}

// decode sends a request that must succeed with 200 and decodes its reply
// into v.
func (c *storageLossClient) decode(p *serverProcess, method, path, contentType, body string, v any) {
	c.t.Helper()
	r := c.do(p, method, path, contentType, body)
	if r.err != nil || r.status != http.StatusOK {
		c.t.Fatalf("%s %s: %s", method, path, r)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		c.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
	}
}

func (c *storageLossClient) status(p *serverProcess) client.ClusterStatus {
	c.t.Helper()
	var st client.Status
	c.decode(p, http.MethodGet, "/api/status", "", "", &st)
	if st.Cluster == nil {
		c.t.Fatalf("status of %s has no cluster section", p.addr)
	}
	return *st.Cluster
}

func (c *storageLossClient) stats(p *serverProcess, q string) client.Stats {
	c.t.Helper()
	var st client.Stats
	c.decode(p, http.MethodGet, "/api/queues/"+q+"/stats", "", "", &st)
	return st
}

// send sends the JSON message {"n":n} and returns its messageId and
// payload.
func (c *storageLossClient) send(p *serverProcess, q string, n int) (string, string) {
	c.t.Helper()
	payload := fmt.Sprintf(`{"n":%d}`, n)
	var res client.SendResponse
	c.decode(p, http.MethodPost, "/api/queues/"+q+"/messages", "application/json", payload, &res)
	return res.MessageID, payload
}

func (c *storageLossClient) receiveOne(p *serverProcess, q string) client.QueueMessage {
	c.t.Helper()
	var res client.ReceiveResponse
	path := fmt.Sprintf("/api/queues/%s/messages?count=1&wait=5000&visibility=%d", q, int(storageLossVisibility/time.Second))
	c.decode(p, http.MethodGet, path, "", "", &res)
	if len(res.QueueMessages) != 1 {
		c.t.Fatalf("receive from %s returned %d messages, want 1", q, len(res.QueueMessages))
	}
	return res.QueueMessages[0]
}

// storageLossProxy relays TCP connections from a local port to a target,
// and can cut and restore them.
type storageLossProxy struct {
	t      *testing.T
	target string
	addr   string

	mu        sync.Mutex
	ln        net.Listener // nil while connections are refused
	blackhole bool
	conns     map[net.Conn]struct{}
	accepted  int
	closed    bool
	wg        sync.WaitGroup
}

func storageLossStartProxy(t *testing.T, target string) *storageLossProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &storageLossProxy{t: t, target: target, addr: ln.Addr().String(), conns: make(map[net.Conn]struct{})}
	p.mu.Lock()
	p.serveLocked(ln)
	p.mu.Unlock()
	t.Cleanup(p.close)
	return p
}

func (p *storageLossProxy) serveLocked(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.handle(conn)
		}
	}()
}

// handle relays conn to the target. The accept loop's goroutine calls it,
// so wg cannot reach zero before the relay is counted.
func (p *storageLossProxy) handle(conn net.Conn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		conn.Close()
		return
	}
	p.accepted++
	p.conns[conn] = struct{}{}
	p.mu.Unlock()

	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.forget(conn)
		upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.t.Logf("proxy: dial %s: %v", p.target, err)
			return
		}
		if !p.track(upstream) {
			return
		}
		defer p.forget(upstream)
		done := make(chan struct{}, 2)
		go func() { p.pipe(upstream, conn); done <- struct{}{} }()
		go func() { p.pipe(conn, upstream); done <- struct{}{} }()
		<-done
		conn.Close()
		upstream.Close()
		<-done
	}()
}

// pipe copies src to dst, dropping the bytes while the proxy blackholes.
func (p *storageLossProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.dropping() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *storageLossProxy) dropping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackhole
}

// track registers a connection so that a cut closes it, and closes it at
// once when the proxy is closed.
func (p *storageLossProxy) track(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		conn.Close()
		return false
	}
	p.conns[conn] = struct{}{}
	return true
}

func (p *storageLossProxy) forget(conn net.Conn) {
	conn.Close()
	p.mu.Lock()
	delete(p.conns, conn)
	p.mu.Unlock()
}

func (p *storageLossProxy) acceptedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// cut refuses or blackholes the victim's traffic to Cassandra.
func (p *storageLossProxy) cut(fault storageLossFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch fault {
	case storageLossRefuse:
		p.ln.Close()
		p.ln = nil
		p.closeConnsLocked()
	case storageLossBlackhole:
		p.blackhole = true
	}
}

// restore relays again on the same port. Connections open during a
// blackhole lost bytes mid-stream, so they are closed.
func (p *storageLossProxy) restore() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blackhole {
		p.blackhole = false
		p.closeConnsLocked()
	}
	if p.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serveLocked(ln)
}

func (p *storageLossProxy) closeConnsLocked() {
	for conn := range p.conns {
		conn.Close()
	}
}

func (p *storageLossProxy) close() {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
	}
	p.closeConnsLocked()
	p.mu.Unlock()
	p.wg.Wait()
}
