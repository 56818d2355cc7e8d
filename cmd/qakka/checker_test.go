package main

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/qakka/qakka/client"
)

// clockMargin covers the millisecond rounding of visibleUntil when the
// checker compares it with the times the test recorded. The servers and the
// test read the same machine's clock.
const clockMargin = 100 * time.Millisecond

// ackOutcome is how a consumer's ack of one delivery ended.
type ackOutcome int

const (
	// ackPending: no reply has settled the ack yet.
	ackPending ackOutcome = iota
	// ackSucceeded: the ack got a 200.
	ackSucceeded
	// ackRejected: the ack got a 400 (not inflight) and no earlier attempt
	// had an unknown outcome, so the delivery had timed out and the message
	// comes back.
	ackRejected
	// ackAmbiguous: the ack got a 400 after an attempt whose outcome was
	// unknown, which may have applied it.
	ackAmbiguous
	// ackAbandoned: the consumer stopped retrying without a definite reply.
	ackAbandoned
)

// clusterDelivery is one message of a receive reply, as a consumer saw it.
type clusterDelivery struct {
	queue          string
	messageID      string
	queueMessageID string
	body           string
	receiveCount   int
	visibleUntil   time.Time
	// at is when the receive reply arrived. The server chose the message
	// before then.
	at time.Time

	ack ackOutcome
	// ackAt is when the reply that settled the ack arrived.
	ackAt time.Time
}

// sentMessage is a send that got a 200.
type sentMessage struct {
	queue     string
	messageID string
}

// disruption is a cluster event during the workload, such as a node crash,
// from its start until ownership settled again.
type disruption struct {
	name  string
	began time.Time
	ended time.Time
	// inflightBound is the most messages that could be inflight at the
	// start: the deliveries whose ack was not settled, plus a full receive
	// for each receive under way.
	inflightBound int
	// deliveries counts the deliveries that arrived while it lasted.
	deliveries int
}

// checker records what the clients of a cluster saw: every send with a
// definite or unknown outcome, every delivery and how its ack ended. From
// that history it checks that no acknowledged send was lost, that nothing
// was delivered that no send made, and that no message came back before
// its visibility timeout or after a successful ack. Its methods are safe
// for concurrent use.
type checker struct {
	mu sync.Mutex
	// sent maps the body of each send that got a 200 to its message.
	sent map[string]sentMessage
	// unknownSends maps the body of each send without a definite reply
	// (transport error, 5xx) to its queue. The message may exist. Senders
	// never send a body again, so each body names at most one message.
	unknownSends    map[string]string
	deliveries      []*clusterDelivery
	delivered       map[string]bool
	unknownReceives int
	// unacked counts the deliveries whose ack is not settled yet, and
	// receiving the receives without a reply yet.
	unacked   int
	receiving int
	open      []*disruption
	events    []*disruption
	errs      []string
}

func newChecker() *checker {
	return &checker{
		sent:         make(map[string]sentMessage),
		unknownSends: make(map[string]string),
		delivered:    make(map[string]bool),
	}
}

// fail records an unexpected reply for verify to report.
func (c *checker) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 50 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	}
}

func (c *checker) sendSucceeded(queue, body, messageID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[body] = sentMessage{queue: queue, messageID: messageID}
}

func (c *checker) sendUnknown(queue, body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unknownSends[body] = queue
}

func (c *checker) receiveStarted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.receiving++
}

// receiveEnded records the reply of a receive. unknown marks a receive
// without a definite reply, whose messages may have become inflight unseen.
func (c *checker) receiveEnded(queue string, msgs []client.QueueMessage, at time.Time, unknown bool) []*clusterDelivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.receiving--
	if unknown {
		c.unknownReceives++
	}
	out := make([]*clusterDelivery, 0, len(msgs))
	for _, m := range msgs {
		d := &clusterDelivery{
			queue:          queue,
			messageID:      m.MessageID,
			queueMessageID: m.QueueMessageID,
			body:           m.Data,
			receiveCount:   m.ReceiveCount,
			visibleUntil:   time.UnixMilli(m.VisibleUntil),
			at:             at,
		}
		c.deliveries = append(c.deliveries, d)
		c.delivered[m.MessageID] = true
		out = append(out, d)
	}
	c.unacked += len(msgs)
	for _, ev := range c.open {
		ev.deliveries += len(msgs)
	}
	return out
}

func (c *checker) ackEnded(d *clusterDelivery, outcome ackOutcome, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.ack = outcome
	d.ackAt = at
	c.unacked--
}

// begin opens a disruption, which end closes.
func (c *checker) begin(name string, receiveMax int) *disruption {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := &disruption{name: name, began: time.Now(), inflightBound: c.unacked + c.receiving*receiveMax}
	c.open = append(c.open, ev)
	c.events = append(c.events, ev)
	return ev
}

func (c *checker) end(ev *disruption) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev.ended = time.Now()
	c.open = slices.DeleteFunc(c.open, func(o *disruption) bool { return o == ev })
}

func (c *checker) successfulAcks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, d := range c.deliveries {
		if d.ack == ackSucceeded {
			n++
		}
	}
	return n
}

// awaitingAck returns the number of deliveries whose ack is not settled.
func (c *checker) awaitingAck() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unacked
}

// drained reports whether every acknowledged send was received at least
// once and no delivery waits for its ack.
func (c *checker) drained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unacked == 0 && len(c.missingLocked(1)) == 0
}

// missing returns up to limit acknowledged sends never received.
func (c *checker) missing(limit int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.missingLocked(limit)
}

func (c *checker) missingLocked(limit int) []string {
	var out []string
	for body, s := range c.sent {
		if !c.delivered[s.messageID] {
			out = append(out, fmt.Sprintf("%s in %s (%s)", s.messageID, s.queue, body))
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

func (c *checker) progress() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d sends acknowledged, %d with unknown outcome, %d deliveries, %d awaiting their ack, %d not received yet",
		len(c.sent), len(c.unknownSends), len(c.deliveries), c.unacked, len(c.missingLocked(len(c.sent))))
}

// historySummary counts what the workload did and saw.
type historySummary struct {
	sends, unknownSends  int
	deliveries, distinct int
	// redeliveries counts the deliveries of a message after the first one
	// a consumer saw. serverRedelivered counts deliveries with a receive
	// count above 1, so it also counts those whose earlier receive reply
	// was lost.
	redeliveries      int
	serverRedelivered int
	fromUnknownSends  int
	unknownReceives   int
	acks              map[ackOutcome]int
	events            []disruption
}

// verify checks the recorded history and reports every violation with
// t.Errorf. It must run after every client goroutine has returned.
func (c *checker) verify(t *testing.T) historySummary {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()

	for _, e := range c.errs {
		t.Errorf("unexpected reply: %s", e)
	}
	if lost := c.missingLocked(len(c.sent)); len(lost) > 0 {
		t.Errorf("%d of %d acknowledged sends were never received (lost), such as %q",
			len(lost), len(c.sent), lost[:min(len(lost), 10)])
	}
	fromUnknown := c.checkBodies(t)

	byMessage := make(map[string][]*clusterDelivery)
	for _, d := range c.deliveries {
		byMessage[d.messageID] = append(byMessage[d.messageID], d)
	}
	for id, ds := range byMessage {
		slices.SortFunc(ds, func(a, b *clusterDelivery) int { return a.at.Compare(b.at) })
		checkRedeliveries(t, id, ds)
	}

	sum := historySummary{
		sends:            len(c.sent),
		unknownSends:     len(c.unknownSends),
		deliveries:       len(c.deliveries),
		distinct:         len(byMessage),
		redeliveries:     len(c.deliveries) - len(byMessage),
		fromUnknownSends: fromUnknown,
		unknownReceives:  c.unknownReceives,
		acks:             make(map[ackOutcome]int),
	}
	for _, d := range c.deliveries {
		sum.acks[d.ack]++
		if d.receiveCount > 1 {
			sum.serverRedelivered++
		}
	}
	for _, ev := range c.events {
		sum.events = append(sum.events, *ev)
	}
	return sum
}

// checkBodies checks each delivery against the send that made it, and
// returns how many distinct messages came from sends of unknown outcome.
func (c *checker) checkBodies(t *testing.T) int {
	t.Helper()
	strays := 0
	unknownIDs := make(map[string]string) // body of an unknown send → messageId
	for _, d := range c.deliveries {
		if s, ok := c.sent[d.body]; ok {
			if s.messageID != d.messageID || s.queue != d.queue {
				t.Errorf("message %s in queue %s has the body %s, which a send acknowledged as message %s in queue %s",
					d.messageID, d.queue, d.body, s.messageID, s.queue)
			}
			continue
		}
		if queue, ok := c.unknownSends[d.body]; ok {
			if queue != d.queue {
				t.Errorf("message %s in queue %s has the body %s of a send to queue %s", d.messageID, d.queue, d.body, queue)
			}
			if id, seen := unknownIDs[d.body]; seen && id != d.messageID {
				t.Errorf("one send of body %s made two messages, %s and %s", d.body, id, d.messageID)
			}
			unknownIDs[d.body] = d.messageID
			continue
		}
		if strays < 10 {
			t.Errorf("message %s in queue %s has the body %q, which no send made", d.messageID, d.queue, d.body)
		}
		strays++
	}
	if strays > 10 {
		t.Errorf("%d deliveries in all had a body that no send made", strays)
	}
	return len(unknownIDs)
}

// checkRedeliveries checks the deliveries of one message, in the order
// their replies arrived. At most one ack may succeed, and no ack may be
// rejected before its deadline. Each delivery must come after the deadline
// of the one before it, with a higher receive count.
func checkRedeliveries(t *testing.T, id string, ds []*clusterDelivery) {
	t.Helper()
	succeeded := 0
	for i, d := range ds {
		if d.ack == ackSucceeded {
			succeeded++
		}
		if d.ack == ackRejected && d.ackAt.Before(d.visibleUntil.Add(-clockMargin)) {
			t.Errorf("message %s: ack of delivery %s was rejected at %s, before its deadline %s",
				id, d.queueMessageID, d.ackAt.Format(time.StampMilli), d.visibleUntil.Format(time.StampMilli))
		}
		if i == 0 {
			continue
		}
		prev := ds[i-1]
		if d.at.Before(prev.visibleUntil.Add(-clockMargin)) {
			t.Errorf("message %s: delivery %s arrived at %s, before the deadline %s of delivery %s",
				id, d.queueMessageID, d.at.Format(time.StampMilli), prev.visibleUntil.Format(time.StampMilli), prev.queueMessageID)
		}
		if d.receiveCount <= prev.receiveCount {
			t.Errorf("message %s: delivery %s has receive count %d, not above the %d of delivery %s",
				id, d.queueMessageID, d.receiveCount, prev.receiveCount, prev.queueMessageID)
		}
	}
	if succeeded > 1 {
		t.Errorf("message %s: %d deliveries were acked with success; an acked message was delivered again", id, succeeded)
	}
}

// disruptionBound returns the sum of the inflight bounds of the
// disruptions, and the deliveries that arrived while they lasted.
func (s historySummary) disruptionBound() (atStart, during int) {
	for _, ev := range s.events {
		atStart += ev.inflightBound
		during += ev.deliveries
	}
	return atStart, during
}
