package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run if goroutines outlive the tests. memberlist's
// Shutdown does not wait for a probe in progress, which ends when its ack
// timeout fires, up to several probe intervals later. goleak.VerifyTestMain
// gives up after about a second, so the check repeats until exitTimeout.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := waitForGoroutinesToExit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func waitForGoroutinesToExit() error {
	const exitTimeout = 20 * time.Second
	deadline := time.Now().Add(exitTimeout)
	for {
		err := goleak.Find()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutines still running %s after the tests: %w", exitTimeout, err)
		}
	}
}

// waitTimeout bounds every wait for gossip in these tests. With
// ProfileLocal, the slowest step, failure detection, took about 5s in
// BenchmarkCrashDetection.
const waitTimeout = 60 * time.Second

func TestMembershipThreeNodes(t *testing.T) {
	a, b, c := startThree(t)
	nodes := []*Membership{a, b, c}
	for _, node := range nodes {
		want := expectedMembers(node, nodes...)
		if got := node.Live(); !slices.Equal(got, want) {
			t.Errorf("%s: Live() = %+v, want %+v", node.LocalName(), got, want)
		}
		if got := node.Members(); !slices.Equal(got, want) {
			t.Errorf("%s: Members() = %+v, want %+v", node.LocalName(), got, want)
		}
	}
}

func TestMembershipLocalAddr(t *testing.T) {
	a := newNode(t, "a")

	host, port, err := net.SplitHostPort(a.LocalAddr())
	if err != nil {
		t.Fatalf("LocalAddr() = %q: %v", a.LocalAddr(), err)
	}
	if host != "127.0.0.1" {
		t.Errorf("LocalAddr() host = %q, want 127.0.0.1", host)
	}
	if port == "0" {
		t.Errorf("LocalAddr() = %q, want the port picked for port 0", a.LocalAddr())
	}
	if got := a.LocalName(); got != "a" {
		t.Errorf("LocalName() = %q, want a", got)
	}
}

func TestMembershipChanges(t *testing.T) {
	a := newNode(t, "a")
	select {
	case <-a.Changes():
	default:
		t.Fatal("Changes() has no value after this node joined its own cluster")
	}

	b := startNode(t, "b", a.LocalAddr())
	waitForChange(t, a, "b's join")
	if got := names(a.Live()); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Live() after b's join = %v, want [a b]", got)
	}

	if err := b.Leave(5 * time.Second); err != nil {
		t.Fatalf("b.Leave: %v", err)
	}
	waitForChange(t, a, "b's leave")
}

func TestMembershipLeave(t *testing.T) {
	a, b, c := startThree(t)

	if err := c.Leave(5 * time.Second); err != nil {
		t.Fatalf("c.Leave: %v", err)
	}
	for _, node := range []*Membership{a, b} {
		waitForLive(t, node, "a", "b")
		checkState(t, node, "c", StateLeft)
	}
	checkState(t, c, "c", StateLeft)
	if got := names(c.Live()); slices.Contains(got, "c") {
		t.Errorf("c.Live() after c left = %v, want it without c", got)
	}

	if err := c.Leave(5 * time.Second); err != nil {
		t.Errorf("second c.Leave: %v", err)
	}
}

// TestMembershipLeaveNotice stops c after its leave notice alone, so a and b
// detect a failure yet must list c as left. After c rejoins and crashes,
// they must list it as dead.
func TestMembershipLeaveNotice(t *testing.T) {
	a, b, c := startThree(t)

	c.sendLeaveNotices(time.Now().Add(waitTimeout))
	shutdownAndCheck(t, c, StateLeft, a, b)

	restarted := startNode(t, "c", a.LocalAddr())
	for _, node := range []*Membership{a, b} {
		waitForLive(t, node, "a", "b", "c")
	}
	shutdownAndCheck(t, restarted, StateDead, a, b)
}

// shutdownAndCheck shuts node down without a leave, waits until each of
// others lists only the others as live, and checks that each lists node as
// want.
func shutdownAndCheck(t *testing.T, node *Membership, want string, others ...*Membership) {
	t.Helper()
	if err := node.Shutdown(); err != nil {
		t.Fatalf("%s.Shutdown: %v", node.LocalName(), err)
	}
	var live []string
	for _, other := range others {
		live = append(live, other.LocalName())
	}
	for _, other := range others {
		waitForLive(t, other, live...)
		checkState(t, other, node.LocalName(), want)
	}
}

// TestMembershipLeaveNoticeAfterFailure covers a notice that arrives after
// the member was declared dead: the member is relabeled as left.
func TestMembershipLeaveNoticeAfterFailure(t *testing.T) {
	a := startNode(t, "a")
	c := startNode(t, "c", a.LocalAddr())
	waitForLive(t, a, "a", "c")
	if err := c.Shutdown(); err != nil {
		t.Fatalf("c.Shutdown: %v", err)
	}
	waitForLive(t, a, "a")
	checkState(t, a, "c", StateDead)

	metaDelegate{a}.NotifyMsg(encodeNotice(memberNotice{Leaving: "c"}))
	checkState(t, a, "c", StateLeft)

	// Notices about unknown members, about this node, and invalid ones
	// change nothing.
	metaDelegate{a}.NotifyMsg(encodeNotice(memberNotice{Leaving: "x"}))
	metaDelegate{a}.NotifyMsg(encodeNotice(memberNotice{Leaving: "a"}))
	metaDelegate{a}.NotifyMsg([]byte("not json"))
	if _, ok := findMember(a.Members(), "x"); ok {
		t.Error("a notice about an unknown member added it")
	}
	checkState(t, a, "a", StateAlive)
}

func TestMembershipCrash(t *testing.T) {
	a, b, c := startThree(t)
	shutdownAndCheck(t, c, StateDead, a, b)
}

func TestMembershipRestartOnNewAddress(t *testing.T) {
	a, b, c := startThree(t)

	oldAddr := c.LocalAddr()
	if err := c.Shutdown(); err != nil {
		t.Fatalf("c.Shutdown: %v", err)
	}
	for _, node := range []*Membership{a, b} {
		waitForLive(t, node, "a", "b")
	}

	restarted := startNode(t, "c", a.LocalAddr())
	if restarted.LocalAddr() == oldAddr {
		t.Fatalf("restarted node got the old address %s again; the test needs a new one", oldAddr)
	}
	nodes := []*Membership{a, b, restarted}
	for _, node := range nodes {
		waitFor(t, node.LocalName()+" to see c at "+restarted.LocalAddr(), func() bool {
			m, ok := findMember(node.Live(), "c")
			return ok && m.Addr == restarted.LocalAddr() && len(node.Live()) == 3
		})
	}
	for _, node := range nodes {
		if got, want := node.Live(), expectedMembers(node, nodes...); !slices.Equal(got, want) {
			t.Errorf("%s: Live() = %+v, want %+v", node.LocalName(), got, want)
		}
	}
}

func TestMembershipRestartBeforeFailureDetected(t *testing.T) {
	a, b, c := startThree(t)

	oldAddr := c.LocalAddr()
	if err := c.Shutdown(); err != nil {
		t.Fatalf("c.Shutdown: %v", err)
	}
	logs := &syncBuffer{}
	restarted := newNodeWithLogs(t, "c", logs, a.LocalAddr())
	if restarted.LocalAddr() == oldAddr {
		t.Fatalf("restarted node got the old address %s again; the test needs a new one", oldAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := restarted.Join(ctx); err != nil {
		t.Fatalf("join restarted c: %v", err)
	}

	if n := logs.count("level=WARN", `msg="cluster join failed, retrying"`, oldAddr); n == 0 {
		t.Errorf("Join logged no rejected attempt naming the old address %s", oldAddr)
	}
	nodes := []*Membership{a, b, restarted}
	for _, node := range nodes {
		waitForLive(t, node, "a", "b", "c")
		if got, want := node.Live(), expectedMembers(node, nodes...); !slices.Equal(got, want) {
			t.Errorf("%s: Live() = %+v, want %+v", node.LocalName(), got, want)
		}
	}
}

func TestMembershipJoinUnreachableSeed(t *testing.T) {
	logs := &syncBuffer{}
	m := newNodeWithLogs(t, "lonely", logs, closedAddr(t))

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := m.Join(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join() = %v, want context.DeadlineExceeded", err)
	}

	if n := logs.count("level=WARN", `msg="cluster join failed, retrying"`); n < 2 {
		t.Errorf("Join logged %d failed attempts at warn level, want at least 2", n)
	}
	if got := names(m.Live()); !slices.Equal(got, []string{"lonely"}) {
		t.Errorf("Live() = %v, want [lonely]", got)
	}
}

// Nodes of clusters with different labels, such as nodes on different
// keyspaces, never join each other.
func TestMembershipLabelSeparatesClusters(t *testing.T) {
	a := newLabeledNode(t, "a", "qakka/one")
	b := newLabeledNode(t, "b", "qakka/two", a.LocalAddr())

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := b.Join(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join() across labels = %v, want context.DeadlineExceeded", err)
	}
	if got := names(a.Live()); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Live() of a = %v, want [a]", got)
	}
	if got := names(b.Live()); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Live() of b = %v, want [b]", got)
	}

	same := newLabeledNode(t, "c", "qakka/one", a.LocalAddr())
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel2()
	if err := same.Join(ctx2); err != nil {
		t.Fatalf("Join() within a label: %v", err)
	}
	waitForLive(t, a, "a", "c")
}

func newLabeledNode(t *testing.T, name, label string, seeds ...string) *Membership {
	t.Helper()
	m, err := NewMembership(MembershipConfig{
		NodeName: name,
		Bind:     "127.0.0.1:0",
		Seeds:    seeds,
		APIAddr:  apiAddrOf(name),
		Profile:  ProfileLocal,
		Label:    label,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func TestMembershipJoinStoppedByShutdown(t *testing.T) {
	logs := &syncBuffer{}
	m := newNodeWithLogs(t, "lonely", logs, closedAddr(t))

	joinErr := make(chan error, 1)
	go func() { joinErr <- m.Join(context.Background()) }()
	waitFor(t, "a failed join attempt", func() bool {
		return logs.count(`msg="cluster join failed, retrying"`) > 0
	})

	if err := m.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-joinErr:
		if !errors.Is(err, errShutdown) {
			t.Errorf("Join() = %v, want errShutdown", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Join still running after Shutdown")
	}
}

func TestMembershipJoinWithoutOtherNodes(t *testing.T) {
	// A Join that retried would wait for this context and return its error.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	alone := newNode(t, "alone")
	if err := alone.Join(ctx); err != nil {
		t.Errorf("Join() without seeds = %v, want nil", err)
	}

	self := newNode(t, "self")
	self.cfg.Seeds = []string{self.LocalAddr()}
	if err := self.Join(ctx); err != nil {
		t.Errorf("Join() with only its own address as seed = %v, want nil", err)
	}
}

func TestMembershipAfterShutdown(t *testing.T) {
	m := newNode(t, "a")
	if err := m.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	if err := m.Shutdown(); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if err := m.Leave(time.Second); !errors.Is(err, errShutdown) {
		t.Errorf("Leave after Shutdown = %v, want errShutdown", err)
	}
	m.cfg.Seeds = []string{closedAddr(t)}
	if err := m.Join(context.Background()); !errors.Is(err, errShutdown) {
		t.Errorf("Join after Shutdown = %v, want errShutdown", err)
	}
}

func TestMembershipLeaveTimeoutInvalid(t *testing.T) {
	m := newNode(t, "a")
	err := m.Leave(0)
	if err == nil || !strings.Contains(err.Error(), "invalid cluster leave timeout") {
		t.Errorf("Leave(0) = %v, want an invalid timeout error", err)
	}
	checkState(t, m, "a", StateAlive)
}

func TestNewMembershipValidation(t *testing.T) {
	valid := MembershipConfig{NodeName: "a", Bind: "127.0.0.1:0", APIAddr: "http://127.0.0.1:8080", Profile: ProfileLocal}
	tests := []struct {
		name   string
		change func(*MembershipConfig)
		want   string
	}{
		{"empty node name", func(c *MembershipConfig) { c.NodeName = "" }, "cluster NodeName is empty"},
		{"node name with space", func(c *MembershipConfig) { c.NodeName = "node a" }, `invalid cluster NodeName "node a"`},
		{"node name with control character", func(c *MembershipConfig) { c.NodeName = "a\x00" }, "invalid cluster NodeName"},
		{"empty bind", func(c *MembershipConfig) { c.Bind = "" }, "cluster Bind is empty"},
		{"bind without port", func(c *MembershipConfig) { c.Bind = "127.0.0.1" }, `invalid cluster Bind "127.0.0.1": use "host:port"`},
		{"bind host name", func(c *MembershipConfig) { c.Bind = "localhost:7946" }, "the host must be an IP address"},
		{"bind without host", func(c *MembershipConfig) { c.Bind = ":7946" }, "the host must be an IP address"},
		{"bind port too large", func(c *MembershipConfig) { c.Bind = "127.0.0.1:65536" }, "the port must be a number from 0 to 65535"},
		{"advertise port zero", func(c *MembershipConfig) { c.Advertise = "10.0.0.5:0" }, `invalid cluster Advertise "10.0.0.5:0": the port must be from 1 to 65535`},
		{"advertise host name", func(c *MembershipConfig) { c.Advertise = "node-a:7946" }, `invalid cluster Advertise "node-a:7946"`},
		{"seed without port", func(c *MembershipConfig) { c.Seeds = []string{"127.0.0.1:7946", "10.0.0.6"} }, `invalid cluster Seeds[1] "10.0.0.6"`},
		{"seed port zero", func(c *MembershipConfig) { c.Seeds = []string{"node-b:0"} }, "the port must be a number from 1 to 65535"},
		{"empty API address", func(c *MembershipConfig) { c.APIAddr = "" }, "cluster APIAddr is empty"},
		{"API address without scheme", func(c *MembershipConfig) { c.APIAddr = "127.0.0.1:8080" }, "invalid cluster APIAddr"},
		{"API address with credentials", func(c *MembershipConfig) { c.APIAddr = "http://u:p@127.0.0.1:8080" }, "without credentials"},
		{"API address too long", func(c *MembershipConfig) { c.APIAddr = "http://127.0.0.1:8080/" + strings.Repeat("x", 500) }, "cluster APIAddr is too long"},
		{"unknown profile", func(c *MembershipConfig) { c.Profile = "wan" }, `invalid cluster Profile "wan": use "lan" or "local"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			m, err := NewMembership(cfg)
			if err == nil {
				_ = m.Shutdown()
				t.Fatalf("NewMembership() succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewMembership() error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewMembershipValidationReportsEveryField(t *testing.T) {
	_, err := NewMembership(MembershipConfig{Profile: "wan"})
	if err == nil {
		t.Fatal("NewMembership() of an empty configuration succeeded")
	}
	for _, field := range []string{"NodeName", "Bind", "APIAddr", "Profile"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("NewMembership() error = %q, want it to name %s", err, field)
		}
	}
}

func TestMembershipBindInUse(t *testing.T) {
	a := newNode(t, "a")
	_, err := NewMembership(MembershipConfig{NodeName: "b", Bind: a.LocalAddr(), APIAddr: "http://b.test:8080", Profile: ProfileLocal})
	if err == nil || !strings.Contains(err.Error(), "start cluster gossip on "+a.LocalAddr()) {
		t.Errorf("NewMembership() on a used port = %v, want an error naming the address", err)
	}
}

func TestLogWriterLevels(t *testing.T) {
	logs := &syncBuffer{}
	w := logWriter{logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	lines := map[string]string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n":        "level=DEBUG",
		"[INFO] memberlist: Marking b as failed\n":                        "level=DEBUG",
		"[WARN] memberlist: Refuting a suspect message (from: b)\n":       "level=WARN",
		"[ERR] memberlist: Failed to send UDP ping: connection refused\n": "level=WARN",
		"[ERROR] memberlist: Failed to shutdown transport\n":              "level=WARN",
	}
	for line, level := range lines {
		logs.reset()
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatalf("Write(%q): %v", line, err)
		}
		got := logs.String()
		if !strings.Contains(got, level) {
			t.Errorf("Write(%q) logged %q, want %s", line, got, level)
		}
		if strings.Contains(got, "memberlist:") || strings.Contains(got, "msg=\"[") {
			t.Errorf("Write(%q) logged %q, want the message without its level and prefix", line, got)
		}
	}
}

func TestLogWriterAfterShutdown(t *testing.T) {
	logs := &syncBuffer{}
	stopped := make(chan struct{})
	close(stopped)
	w := logWriter{
		logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		stopped: stopped,
	}
	line := "[WARN] memberlist: Failed to send indirect UDP ping: use of closed network connection\n"
	if _, err := w.Write([]byte(line)); err != nil {
		t.Fatalf("Write(%q): %v", line, err)
	}
	if got := logs.String(); !strings.Contains(got, "level=DEBUG") {
		t.Errorf("Write(%q) after shutdown logged %q, want level=DEBUG", line, got)
	}
}

// BenchmarkCrashDetection measures how long the two other members of a
// three-node cluster take to drop a crashed member (Shutdown without
// Leave) from Live, with each profile. Each crash takes seconds, so run
// it with a small count:
//
//	go test ./internal/cluster -run '^$' -bench CrashDetection -benchtime 5x
func BenchmarkCrashDetection(b *testing.B) {
	for _, profile := range []string{ProfileLocal, ProfileLAN} {
		b.Run(profile, func(b *testing.B) {
			var first, last time.Duration
			for range b.N {
				f, l := measureCrashDetection(b, profile)
				first += f
				last += l
			}
			b.ReportMetric(first.Seconds()/float64(b.N), "s-first-detect")
			b.ReportMetric(last.Seconds()/float64(b.N), "s-all-detect")
		})
	}
}

// measureCrashDetection crashes one node of a new three-node cluster and
// returns the time until the first and until both of the other nodes no
// longer list it as live.
func measureCrashDetection(b *testing.B, profile string) (first, last time.Duration) {
	a := newNodeWithProfile(b, "a", profile, nil)
	n2 := newNodeWithProfile(b, "b", profile, nil, a.LocalAddr())
	n3 := newNodeWithProfile(b, "c", profile, nil, a.LocalAddr())
	for _, node := range []*Membership{n2, n3} {
		if err := node.Join(context.Background()); err != nil {
			b.Fatalf("join %s: %v", node.LocalName(), err)
		}
	}
	for _, node := range []*Membership{a, n2, n3} {
		waitForLive(b, node, "a", "b", "c")
	}

	start := time.Now()
	if err := n3.Shutdown(); err != nil {
		b.Fatalf("shut down c: %v", err)
	}
	waitFor(b, "the first node to drop c", func() bool {
		return len(a.Live()) == 2 || len(n2.Live()) == 2
	})
	first = time.Since(start)
	waitFor(b, "both nodes to drop c", func() bool {
		return len(a.Live()) == 2 && len(n2.Live()) == 2
	})
	last = time.Since(start)

	_ = a.Shutdown()
	_ = n2.Shutdown()
	return first, last
}

// startNode creates a node with ProfileLocal on 127.0.0.1 and joins it
// through seeds.
// startThree starts nodes a, b and c, with a as the seed of the others, and
// waits until each lists all three as live.
func startThree(t *testing.T) (a, b, c *Membership) {
	t.Helper()
	a = startNode(t, "a")
	b = startNode(t, "b", a.LocalAddr())
	c = startNode(t, "c", a.LocalAddr())
	for _, node := range []*Membership{a, b, c} {
		waitForLive(t, node, "a", "b", "c")
	}
	return a, b, c
}

func startNode(t testing.TB, name string, seeds ...string) *Membership {
	t.Helper()
	m := newNode(t, name, seeds...)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := m.Join(ctx); err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	return m
}

// newNode creates a node with ProfileLocal on 127.0.0.1 without joining.
// Its logs go to the test's output if the test fails.
func newNode(t testing.TB, name string, seeds ...string) *Membership {
	t.Helper()
	return newNodeWithLogs(t, name, &syncBuffer{}, seeds...)
}

func newNodeWithLogs(t testing.TB, name string, logs *syncBuffer, seeds ...string) *Membership {
	t.Helper()
	return newNodeWithProfile(t, name, ProfileLocal, logs, seeds...)
}

// newNodeWithProfile creates a node on 127.0.0.1 that logs to logs, or
// nowhere when logs is nil. Cleanup shuts it down.
func newNodeWithProfile(t testing.TB, name, profile string, logs *syncBuffer, seeds ...string) *Membership {
	t.Helper()
	handler := slog.DiscardHandler
	if logs != nil {
		handler = slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	m, err := NewMembership(MembershipConfig{
		NodeName: name,
		Bind:     "127.0.0.1:0",
		Seeds:    seeds,
		APIAddr:  apiAddrOf(name),
		Profile:  profile,
		Logger:   slog.New(handler),
	})
	if err != nil {
		t.Fatalf("new node %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("shut down %s: %v", name, err)
		}
		if t.Failed() && logs != nil {
			t.Logf("logs of node %s at %s:\n%s", name, m.LocalAddr(), logs)
		}
	})
	return m
}

func apiAddrOf(name string) string {
	return "http://" + name + ".test:8080"
}

// expectedMembers returns the members that node should list when all of
// nodes are alive.
func expectedMembers(node *Membership, nodes ...*Membership) []Member {
	var want []Member
	for _, n := range nodes {
		want = append(want, Member{
			Name:    n.LocalName(),
			Addr:    n.LocalAddr(),
			APIAddr: apiAddrOf(n.LocalName()),
			State:   StateAlive,
			Self:    n.LocalName() == node.LocalName(),
		})
	}
	slices.SortFunc(want, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return want
}

func waitForLive(t testing.TB, node *Membership, want ...string) {
	t.Helper()
	waitFor(t, node.LocalName()+" to see live members "+strings.Join(want, ", "), func() bool {
		return slices.Equal(names(node.Live()), want)
	})
}

func waitForChange(t *testing.T, node *Membership, event string) {
	t.Helper()
	select {
	case <-node.Changes():
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no value on Changes() within %s of %s", node.LocalName(), waitTimeout, event)
	}
}

// waitFor polls cond until it returns true, and fails the test after
// waitTimeout.
func waitFor(t testing.TB, description string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, description)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkState(t *testing.T, node *Membership, name, want string) {
	t.Helper()
	m, ok := findMember(node.Members(), name)
	if !ok {
		t.Errorf("%s: Members() has no %s, want it %s", node.LocalName(), name, want)
		return
	}
	if m.State != want {
		t.Errorf("%s: state of %s = %q, want %q", node.LocalName(), name, m.State, want)
	}
}

func findMember(members []Member, name string) (Member, bool) {
	i := slices.IndexFunc(members, func(m Member) bool { return m.Name == name })
	if i < 0 {
		return Member{}, false
	}
	return members[i], true
}

func names(members []Member) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = m.Name
	}
	return out
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

// syncBuffer is a bytes.Buffer that memberlist's goroutines and the test
// can use at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// count returns the number of lines that contain every one of parts.
func (b *syncBuffer) count(parts ...string) int {
	n := 0
	for line := range strings.Lines(b.String()) {
		if allIn(line, parts) {
			n++
		}
	}
	return n
}

func allIn(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
