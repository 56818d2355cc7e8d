// Package cluster lets several qakka nodes that share one store serve a
// region together. Nodes find each other by gossip (Membership), and each
// queue is owned by the live member that Owner picks by rendezvous hashing
// of the queue name.
//
// Membership is eventually consistent: for a short time two nodes can
// disagree on the live members, and so on the owner of a queue. Code that
// acts as a queue's owner must therefore hold a lease as well.
package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hashicorp/memberlist"
)

// Profiles of MembershipConfig. They select memberlist's timeouts and
// intervals.
const (
	// ProfileLAN uses memberlist.DefaultLANConfig. It is the default.
	ProfileLAN = "lan"
	// ProfileLocal uses memberlist.DefaultLocalConfig, which detects
	// failures faster, for nodes on one machine such as in tests.
	ProfileLocal = "local"
)

// States of a Member.
const (
	StateAlive = "alive"
	StateDead  = "dead"
	StateLeft  = "left"
)

const (
	// deadNodeReclaimTime is how long a member must have been dead before a
	// node with its name but a new address can take its place. That
	// happens when a node restarts with a new pod IP or a port picked by
	// the kernel. memberlist's default of 0 blocks the name until
	// memberlist removes the dead member, after GossipToTheDeadTime (30s
	// with ProfileLAN). The wait lets the gossip that declared the old
	// address dead die out first. Without it, a late copy of that gossip
	// can mark the new address dead again for a moment, because the new
	// node starts with a lower incarnation number.
	deadNodeReclaimTime = time.Second

	// joinRetryMin and joinRetryMax bound the wait between two join
	// attempts, which doubles after each failure.
	joinRetryMin = 200 * time.Millisecond
	joinRetryMax = 10 * time.Second
	// quietUnlistedAttempts is how many join attempts in a row may end with
	// errNotListed before Join logs them at warn level. Ten attempts take
	// about 2s, longer than deadNodeReclaimTime.
	quietUnlistedAttempts = 10
)

var (
	errShutdown = errors.New("cluster membership is shut down")
	// errNotListed means that the seeds responded but none of them listed
	// this node yet. Every first contact ends so, because a seed sends its
	// member list before it adds the joining node.
	errNotListed = errors.New("no seed lists this node yet")
)

// MembershipConfig configures a Membership.
//
// Gossip is neither encrypted nor authenticated, so Bind must be on a
// network that only the cluster's nodes can reach.
type MembershipConfig struct {
	// NodeName identifies this node. It must be unique in the cluster.
	// Required.
	NodeName string
	// Bind is the "host:port" that gossip listens on, over TCP and UDP.
	// The host must be an IP address. Port 0 picks a free port, which
	// LocalAddr returns. Required.
	Bind string
	// Advertise is the "host:port" that other nodes use to reach this
	// node's gossip port, when that differs from Bind (behind NAT, or when
	// Bind is 0.0.0.0). The host must be an IP address. Optional.
	Advertise string
	// Seeds are the gossip addresses ("host:port") of other nodes that
	// Join contacts. Host names are looked up on every join attempt. The
	// list may contain this node's own address, which Join skips, and is
	// empty for the first node of a cluster.
	Seeds []string
	// APIAddr is the base URL of this node's REST API, such as
	// http://10.0.0.5:8080. The other members read it from this node's
	// gossip metadata. Required.
	APIAddr string
	// Profile is ProfileLAN (the default when empty) or ProfileLocal.
	Profile string
	// Label names the cluster. memberlist puts it on every packet and drops
	// packets of another label, so nodes of different clusters never see
	// each other even when one is given the other's address as a seed. At
	// most 255 bytes.
	Label string
	// Logger receives membership events, and memberlist's own logs:
	// its warnings and errors at warn level, everything else at debug
	// level. Default slog.Default().
	Logger *slog.Logger
}

// Member is one node of the cluster, in the local node's view.
type Member struct {
	Name string
	// Addr is the member's gossip address, "host:port".
	Addr string
	// APIAddr is the base URL of the member's REST API.
	APIAddr string
	// State is StateAlive, StateDead or StateLeft.
	//
	// NOTE: memberlist v0.7.0 does not report suspicion through its API, so
	// a suspect member reads as alive until it is declared dead.
	State string
	// Self marks this node.
	Self bool
	// StorageDown is set while the member reports that it cannot reach
	// storage. Such a member owns no queues, so that others serve them.
	StorageDown bool
}

// Membership is this node's view of the cluster, kept up to date by
// gossip. Its methods are safe for concurrent use.
type Membership struct {
	cfg    MembershipConfig
	logger *slog.Logger
	list   *memberlist.Memberlist

	// localAddr is the gossip address that other nodes use, stored once
	// because memberlist stops tracking this node some time after it leaves.
	localAddr string
	// selfAddrs are the addresses at which Join finds this node among the
	// seeds: the bound address and the advertised one.
	selfAddrs []netip.AddrPort
	// forgetAfter is how long Members keeps a dead or left member. It is
	// memberlist's GossipToTheDeadTime, after which memberlist removes the
	// member too.
	forgetAfter time.Duration
	// gossipInterval is memberlist's GossipInterval: Leave lets a few of
	// them pass between its two messages, and after the second.
	gossipInterval time.Duration

	changes     chan struct{}
	leaving     atomic.Bool // read by metaDelegate.NodeMeta
	storageDown atomic.Bool // read by metaDelegate.NodeMeta
	// listed is set when another node's member list contains this node at
	// its own address, alive or suspect. Join waits for it.
	listed atomic.Bool
	done   chan struct{}

	mu      sync.Mutex
	members map[string]trackedMember

	lifecycleMu sync.Mutex // serializes Leave and Shutdown
	left        bool
	stopped     bool
}

// trackedMember is a Member with the time its State last changed.
type trackedMember struct {
	Member
	changed time.Time
	// leaving is set by the member's leave notice, and cleared when the
	// member joins again.
	leaving bool
}

// NewMembership validates cfg and starts listening for gossip on cfg.Bind.
// The node is a cluster of its own until Join contacts the seeds.
func NewMembership(cfg MembershipConfig) (*Membership, error) {
	addrs, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}

	m := &Membership{
		cfg:     cfg,
		logger:  logger,
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
		members: make(map[string]trackedMember),
	}
	mc := m.memberlistConfig(addrs)
	m.forgetAfter = mc.GossipToTheDeadTime
	m.gossipInterval = mc.GossipInterval

	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start cluster gossip on %s: %w", cfg.Bind, err)
	}
	m.list = list

	// memberlist.Create stores the port it picked for port 0 in mc.BindPort.
	bound := netip.AddrPortFrom(addrs.bind.Addr(), uint16(mc.BindPort))
	local := list.LocalNode()
	m.localAddr = local.Address()
	m.selfAddrs = []netip.AddrPort{bound}
	if ip, ok := netip.AddrFromSlice(local.Addr); ok {
		m.selfAddrs = append(m.selfAddrs, netip.AddrPortFrom(ip.Unmap(), local.Port))
	}

	logger.Info("cluster membership started",
		"node", cfg.NodeName, "addr", m.localAddr, "api_addr", cfg.APIAddr, "profile", cmp.Or(cfg.Profile, ProfileLAN))
	return m, nil
}

// memberlistConfig returns the memberlist configuration of cfg's profile
// with this node's name, addresses and delegates.
func (m *Membership) memberlistConfig(addrs configAddrs) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	if m.cfg.Profile == ProfileLocal {
		mc = memberlist.DefaultLocalConfig()
	}

	mc.Name = m.cfg.NodeName
	mc.BindAddr = addrs.bind.Addr().String()
	mc.BindPort = int(addrs.bind.Port())
	// With no advertise address, memberlist advertises the bound address
	// and port.
	mc.AdvertiseAddr, mc.AdvertisePort = "", 0
	if addrs.advertise.IsValid() {
		mc.AdvertiseAddr = addrs.advertise.Addr().String()
		mc.AdvertisePort = int(addrs.advertise.Port())
	}
	mc.DeadNodeReclaimTime = deadNodeReclaimTime
	mc.Label = m.cfg.Label

	mc.Delegate = metaDelegate{m}
	mc.Events = eventDelegate{m}
	mc.Merge = mergeDelegate{m}
	mc.Logger = log.New(logWriter{logger: m.logger, stopped: m.done}, "", 0)
	return mc
}

// Join contacts the seeds, skipping this node's own address, until one of
// them lists this node as a member. That takes two contacts at least: the
// first sends this node's state, and a later one finds it in the seed's
// member list. A seed does not accept a node that restarted on a new
// address until the old address has been dead for deadNodeReclaimTime.
//
// Join retries with exponential backoff and logs each failed attempt at
// warn level, so that a node whose seeds are all down can run Join in the
// background and start alone meanwhile. Attempts that reached a seed that
// does not list this node yet are retried sooner, and logged at debug
// level for the first quietUnlistedAttempts of them in a row. Join returns nil at once when no
// seed is another node. Otherwise it returns ctx's error once ctx ends, or
// an error once Shutdown is called.
//
// NOTE: memberlist's join does not take a context. An attempt that reaches
// a host that drops packets blocks for the profile's TCP timeout (10s with
// ProfileLAN, 1s with ProfileLocal) per seed address, so Join can return
// that much later than ctx ends.
func (m *Membership) Join(ctx context.Context) error {
	if len(m.cfg.Seeds) == 0 {
		return nil
	}

	seeds := strings.Join(m.cfg.Seeds, ", ")
	delay := joinRetryMin
	unlisted := 0
	for attempt := 1; ; attempt++ {
		joined, err := m.joinOnce(ctx)
		if joined {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("join cluster through seeds %s: %w (last attempt: %v)", seeds, ctx.Err(), err)
		}

		level := slog.LevelWarn
		if errors.Is(err, errNotListed) {
			// A seed responded, so one of the next contacts should find
			// this node.
			unlisted++
			delay = joinRetryMin
			if unlisted < quietUnlistedAttempts {
				level = slog.LevelDebug
			}
		} else {
			unlisted = 0
		}
		wait := jitter(delay)
		m.logger.Log(ctx, level, "cluster join failed, retrying",
			"node", m.cfg.NodeName, "seeds", seeds, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join cluster through seeds %s: %w (last attempt: %v)", seeds, ctx.Err(), err)
		case <-m.done:
			return fmt.Errorf("join cluster through seeds %s: %w", seeds, errShutdown)
		case <-time.After(wait):
		}
		delay = min(2*delay, joinRetryMax)
	}
}

// joinOnce makes one join attempt. It returns true when a seed listed this
// node as a member, or when every seed resolved to this node, so that
// there is no one to join.
func (m *Membership) joinOnce(ctx context.Context) (bool, error) {
	select {
	case <-m.done:
		return false, errShutdown
	default:
	}

	addrs, resolveErr := m.resolveSeeds(ctx)
	if len(addrs) == 0 {
		return resolveErr == nil, resolveErr
	}

	m.listed.Store(false)
	contacted, err := m.list.Join(addrs)
	if contacted == 0 {
		return false, errors.Join(resolveErr, oneLine(err))
	}
	if !m.listed.Load() {
		return false, errNotListed
	}
	m.logger.Info("cluster joined",
		"node", m.cfg.NodeName, "seeds_contacted", contacted, "live_members", len(m.Live()))
	return true, nil
}

// resolveSeeds returns the addresses of the seeds as "ip:port", without
// this node's own addresses, and the lookups that failed.
func (m *Membership) resolveSeeds(ctx context.Context) ([]string, error) {
	var addrs []string
	var errs []error
	for _, seed := range m.cfg.Seeds {
		ips, port, err := lookupSeed(ctx, seed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ip := range ips {
			addr := netip.AddrPortFrom(ip, port)
			if !m.isSelf(addr) {
				addrs = append(addrs, addr.String())
			}
		}
	}
	return addrs, errors.Join(errs...)
}

// lookupSeed returns the IP addresses and the port of a validated seed.
func lookupSeed(ctx context.Context, seed string) ([]netip.Addr, uint16, error) {
	host, portText, err := net.SplitHostPort(seed)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid seed %q: %w", seed, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid seed %q: %w", seed, err)
	}

	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, uint16(port), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, 0, fmt.Errorf("look up seed %s: %w", seed, err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, uint16(port), nil
}

// isSelf reports whether addr reaches this node's gossip port.
func (m *Membership) isSelf(addr netip.AddrPort) bool {
	if slices.Contains(m.selfAddrs, addr) {
		return true
	}
	bound := m.selfAddrs[0]
	return bound.Addr().IsUnspecified() && addr.Port() == bound.Port() && isInterfaceAddr(addr.Addr())
}

// isInterfaceAddr reports whether ip belongs to one of this machine's
// network interfaces.
func isInterfaceAddr(ip netip.Addr) bool {
	ifaceAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range ifaceAddrs {
		prefix, err := netip.ParsePrefix(a.String())
		if err == nil && prefix.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// jitter returns d scaled by a random factor from 0.5 to 1.5, so that
// nodes started together do not retry in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// LocalName returns this node's name.
func (m *Membership) LocalName() string {
	return m.cfg.NodeName
}

// LocalAddr returns the gossip address, "host:port", that other nodes use
// to reach this node: the Advertise address when set, or else the bound
// address with the port that was picked for port 0.
func (m *Membership) LocalAddr() string {
	return m.localAddr
}

// Members returns every member in this node's member list, sorted by
// name. Dead and left members stay in the list for memberlist's
// GossipToTheDeadTime (30s with ProfileLAN, 15s with ProfileLocal), after
// which memberlist removes them too.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()

	now := time.Now()
	out := make([]Member, 0, len(m.members))
	for name, tm := range m.members {
		if tm.State != StateAlive && !tm.Self && now.Sub(tm.changed) > m.forgetAfter {
			delete(m.members, name)
			continue
		}
		out = append(out, tm.Member)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// member returns the member with the given name.
func (m *Membership) member(name string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tm, ok := m.members[name]
	return tm.Member, ok
}

// Live returns the members that may own queues, sorted by name: those that
// are alive or suspect and reach storage. This node is among them until it
// leaves or reports its storage down, because memberlist refutes any claim
// that it failed.
func (m *Membership) Live() []Member {
	var live []Member
	for _, member := range m.Members() {
		if member.State == StateAlive && !member.StorageDown {
			live = append(live, member)
		}
	}
	return live
}

// SetStorageDown gossips whether this node can reach storage, waiting up
// to timeout for the update to go out. While it is down, no member counts
// this node as live, so other nodes take its queues once its leases expire.
func (m *Membership) SetStorageDown(down bool, timeout time.Duration) error {
	if m.storageDown.Swap(down) == down {
		return nil
	}
	m.mu.Lock()
	if tm, ok := m.members[m.cfg.NodeName]; ok {
		tm.StorageDown = down
		m.members[m.cfg.NodeName] = tm
	}
	m.mu.Unlock()
	select {
	case m.changes <- struct{}{}:
	default:
	}
	if err := m.list.UpdateNode(timeout); err != nil {
		return fmt.Errorf("gossip storage state: %w", err)
	}
	return nil
}

// Changes returns a channel that receives a value after a member joins,
// leaves, fails or updates its metadata. The channel has a buffer of one
// and coalesces changes that come before the receiver reads, so the
// receiver must read Live or Members again after each value. It is never
// closed.
func (m *Membership) Changes() <-chan struct{} {
	return m.changes
}

// Leave announces that this node is leaving, by gossip and by a notice to
// each member, so that the other members list it as left rather than dead.
// It waits up to timeout for the messages to go out. The node still
// responds to gossip until Shutdown, which should follow. Calling Leave
// again does nothing.
func (m *Membership) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("invalid cluster leave timeout %s: use a positive duration such as 5s", timeout)
	}
	m.lifecycleMu.Lock()
	defer m.lifecycleMu.Unlock()
	if m.stopped {
		return errShutdown
	}
	if m.left {
		return nil
	}
	m.left = true
	deadline := time.Now().Add(timeout)

	// memberlist reports a leave to the event delegates of the other
	// members exactly as it reports a failure, so the leaving flag goes out
	// in the metadata first. Both messages go out even when the wait for
	// the first times out.
	m.leaving.Store(true)
	if err := m.list.UpdateNode(max(timeout/2, time.Nanosecond)); err != nil {
		m.logger.Warn("cluster leave: metadata update timed out",
			"node", m.cfg.NodeName, "timeout", timeout/2, "err", err)
	}
	// Gossip passes the update to a few random members only, so a member
	// can miss it. The notice reaches every member that accepts a TCP
	// connection. The notices get at most a quarter of the timeout, so a
	// member that does not respond leaves time for the leave message.
	m.sendLeaveNotices(time.Now().Add(min(time.Until(deadline), timeout/4)))
	// UpdateNode returns once the update is queued for a few gossip
	// rounds, not once it arrived. Without a pause, the leave can reach a
	// member first, which then records a failure.
	m.pause(deadline, leaveGossipRounds*m.gossipInterval)
	if err := m.list.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		return fmt.Errorf("leave cluster: %w", err)
	}
	// Leave returns when the message is queued. Gossip keeps spreading it
	// only until Shutdown, which usually follows at once.
	m.pause(deadline, leaveGossipRounds*m.gossipInterval)
	m.logger.Info("cluster left", "node", m.cfg.NodeName)
	return nil
}

// oneLine returns err with memberlist's multi-line list of errors folded
// into one line, so that a log record stays on one line.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	fields := strings.Fields(err.Error())
	return errors.New(strings.Join(fields, " "))
}

// sendLeaveNotices sends every other member a notice over TCP that this
// node is leaving, and waits for the sends until deadline. A send that is
// still dialing then ends by itself within memberlist's TCP timeout.
func (m *Membership) sendLeaveNotices(deadline time.Time) {
	msg := encodeNotice(memberNotice{Leaving: m.cfg.NodeName})
	var wg sync.WaitGroup
	for _, node := range m.list.Members() {
		if node.Name == m.cfg.NodeName {
			continue
		}
		wg.Go(func() {
			if err := m.list.SendReliable(node, msg); err != nil {
				m.logger.Warn("cluster leave notice failed; the member may list this node as dead",
					"node", m.cfg.NodeName, "member", node.Name, "err", oneLine(err))
			}
		})
	}
	sent := make(chan struct{})
	go func() {
		wg.Wait()
		close(sent)
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-sent:
	case <-timer.C:
	}
}

// leaveGossipRounds is how many gossip intervals Leave waits after each of
// its two messages: memberlist sends a message to three members a round,
// so a few rounds reach every member of a small cluster.
const leaveGossipRounds = 3

// pause waits for d, but not past deadline.
func (m *Membership) pause(deadline time.Time, d time.Duration) {
	d = min(d, time.Until(deadline))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.done:
	}
}

// Shutdown stops gossip and closes the listeners without telling the
// other members, which then detect a failure unless Leave came first. It
// makes a running Join return. Calling Shutdown again does nothing.
//
// memberlist's listeners are closed when Shutdown returns. Its other
// goroutines exit on their own soon after. A probe in progress ends when
// its ack timeout fires, up to one probe interval later. The interval is
// 1s in both profiles, and memberlist stretches it up to 8 times while it
// finds this node slow.
func (m *Membership) Shutdown() error {
	m.lifecycleMu.Lock()
	defer m.lifecycleMu.Unlock()
	if m.stopped {
		return nil
	}
	m.stopped = true
	close(m.done)

	if err := m.list.Shutdown(); err != nil {
		return fmt.Errorf("shut down cluster gossip: %w", err)
	}
	m.logger.Info("cluster membership stopped", "node", m.cfg.NodeName)
	return nil
}

// update records a member's state from a memberlist event, logs the
// change and signals Changes.
func (m *Membership) update(node *memberlist.Node, alive bool) {
	meta, err := decodeMeta(node.Meta)
	if err != nil {
		m.logger.Warn("cluster member has invalid metadata", "member", node.Name, "err", err)
	}
	member := Member{
		Name:        node.Name,
		Addr:        node.Address(),
		APIAddr:     meta.APIAddr,
		State:       StateAlive,
		Self:        node.Name == m.cfg.NodeName,
		StorageDown: meta.StorageDown,
	}

	m.mu.Lock()
	old, known := m.members[node.Name]
	// A member that joins again after a leave is not leaving any more.
	leaving := known && old.leaving && !(alive && old.State != StateAlive)
	if !alive {
		// memberlist v0.7.0 never sets Node.State, so the leave notice and
		// the leaving flag in the metadata distinguish a leave from a
		// failure. This node only stops being alive by leaving.
		member.State = StateDead
		if leaving || meta.Leaving || member.Self {
			member.State = StateLeft
		}
	}
	changed := time.Now()
	if known && old.State == member.State {
		changed = old.changed
	}
	m.members[node.Name] = trackedMember{Member: member, changed: changed, leaving: leaving}
	m.mu.Unlock()

	m.logChange(old.Member, known, member)
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// noteLeaving records a member's leave notice. A member that was already
// declared dead, because the leave arrived before the notice, is relabeled
// as left.
func (m *Membership) noteLeaving(name string) {
	m.mu.Lock()
	tm, known := m.members[name]
	if !known {
		m.mu.Unlock()
		return
	}
	old := tm.Member
	tm.leaving = true
	relabel := tm.State == StateDead
	if relabel {
		tm.State = StateLeft
		tm.changed = time.Now()
	}
	m.members[name] = tm
	m.mu.Unlock()

	if relabel {
		m.logChange(old, true, tm.Member)
		select {
		case m.changes <- struct{}{}:
		default:
		}
	}
}

func (m *Membership) logChange(old Member, known bool, member Member) {
	attrs := []any{"node", m.cfg.NodeName, "member", member.Name, "addr", member.Addr, "api_addr", member.APIAddr}
	switch {
	case member.State == StateDead:
		m.logger.Warn("cluster member failed", attrs...)
	case member.State == StateLeft:
		m.logger.Info("cluster member left", attrs...)
	case !known || old.State != StateAlive:
		m.logger.Info("cluster member joined", attrs...)
	default:
		m.logger.Debug("cluster member updated", attrs...)
	}
}

// eventDelegate passes memberlist's membership events to the Membership.
// memberlist calls it with its node lock held, so it must not block.
type eventDelegate struct{ m *Membership }

func (d eventDelegate) NotifyJoin(node *memberlist.Node)   { d.m.update(node, true) }
func (d eventDelegate) NotifyUpdate(node *memberlist.Node) { d.m.update(node, true) }
func (d eventDelegate) NotifyLeave(node *memberlist.Node)  { d.m.update(node, false) }

// mergeDelegate reads the member list that the other side of a join sends,
// from before it merged this node's state. memberlist calls NotifyMerge on
// both sides of a join. It sets Membership.listed when the list contains
// this node at its own address. It rejects the join, with an error that
// Join logs, when the list contains this node's name at another address
// as alive or suspect, because the cluster rejects this node until that
// address is declared dead.
type mergeDelegate struct{ m *Membership }

func (d mergeDelegate) NotifyMerge(peers []*memberlist.Node) error {
	self, ok := d.m.member(d.m.cfg.NodeName)
	if !ok {
		return nil
	}
	for _, peer := range peers {
		if peer.Name != self.Name {
			continue
		}
		if peer.State != memberlist.StateAlive && peer.State != memberlist.StateSuspect {
			return nil
		}
		if peer.Address() == self.Addr {
			d.m.listed.Store(true)
			return nil
		}
		return fmt.Errorf("the cluster lists node name %q at %s, alive or suspect: it accepts this node at %s once that address is declared dead; if the other node is still running, give this one another --cluster-node-name",
			self.Name, peer.Address(), self.Addr)
	}
	return nil
}

// nodeMeta is the metadata that each node gossips about itself, in JSON.
// Decoding ignores unknown fields, so later versions may add fields.
type nodeMeta struct {
	APIAddr string `json:"api_addr"`
	// Leaving is set just before the node leaves, so that the other
	// members can distinguish a leave from a failure.
	Leaving bool `json:"leaving,omitempty"`
	// StorageDown is set while the node cannot reach storage.
	StorageDown bool `json:"storage_down,omitempty"`
}

func encodeMeta(meta nodeMeta) []byte {
	b, err := json.Marshal(meta)
	if err != nil {
		panic(fmt.Sprintf("encode cluster node metadata: %v", err)) // a struct of a string and a bool always encodes
	}
	return b
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var meta nodeMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return nodeMeta{}, fmt.Errorf("decode node metadata %q: %w", b, err)
	}
	return meta, nil
}

// memberNotice is a message that a node sends to other members directly, in
// JSON. Decoding ignores unknown fields, so later versions may add fields.
type memberNotice struct {
	// Leaving names a node that is about to leave the cluster.
	Leaving string `json:"leaving,omitempty"`
}

func encodeNotice(n memberNotice) []byte {
	b, err := json.Marshal(n)
	if err != nil {
		panic(fmt.Sprintf("encode cluster notice: %v", err)) // a struct of a string always encodes
	}
	return b
}

// metaDelegate gives memberlist this node's metadata and receives leave
// notices. The cluster gossips no messages of its own.
type metaDelegate struct{ m *Membership }

// NodeMeta returns the metadata, which validate checked against
// memberlist.MetaMaxSize. memberlist panics on metadata over limit, so
// NodeMeta sends none rather than more.
func (d metaDelegate) NodeMeta(limit int) []byte {
	b := encodeMeta(nodeMeta{APIAddr: d.m.cfg.APIAddr, Leaving: d.m.leaving.Load(), StorageDown: d.m.storageDown.Load()})
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg receives a notice that another member sent with SendReliable.
func (d metaDelegate) NotifyMsg(b []byte) {
	var n memberNotice
	if err := json.Unmarshal(b, &n); err != nil {
		d.m.logger.Warn("invalid cluster notice ignored", "node", d.m.cfg.NodeName, "notice", string(b), "err", err)
		return
	}
	if n.Leaving != "" && n.Leaving != d.m.cfg.NodeName {
		d.m.noteLeaving(n.Leaving)
	}
}

func (metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (metaDelegate) LocalState(bool) []byte          { return nil }
func (metaDelegate) MergeRemoteState([]byte, bool)   {}

// logWriter passes memberlist's log lines, such as "[WARN] memberlist:
// ...", to slog: warnings and errors at warn level, the rest at debug
// level.
type logWriter struct {
	logger *slog.Logger
	// stopped is closed when Shutdown starts. memberlist's probes still
	// under way then fail on closed sockets, so their warnings are logged
	// at debug level.
	stopped <-chan struct{}
}

func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	if strings.HasPrefix(line, "[WARN]") || strings.HasPrefix(line, "[ERR") {
		level = slog.LevelWarn
		select {
		case <-w.stopped:
			level = slog.LevelDebug
		default:
		}
	}
	ctx := context.Background()
	if !w.logger.Enabled(ctx, level) {
		return len(p), nil
	}

	if strings.HasPrefix(line, "[") {
		if _, rest, ok := strings.Cut(line, "] "); ok {
			line = rest
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.logger.Log(ctx, level, line, "component", "memberlist")
	return len(p), nil
}

// configAddrs are the parsed addresses of a MembershipConfig. advertise
// is the zero AddrPort when the configuration has none.
type configAddrs struct {
	bind, advertise netip.AddrPort
}

// validate checks every field of c and returns its parsed addresses.
func (c *MembershipConfig) validate() (configAddrs, error) {
	var addrs configAddrs
	var errs []error
	if err := validateNodeName(c.NodeName); err != nil {
		errs = append(errs, err)
	}
	if len(c.Label) > 255 {
		errs = append(errs, fmt.Errorf("cluster label of %d bytes is over memberlist's limit of 255: use shorter keyspace names", len(c.Label)))
	}

	var err error
	if c.Bind == "" {
		errs = append(errs, errors.New("cluster Bind is empty: set the gossip address to listen on, such as 10.0.0.5:7946"))
	} else if addrs.bind, err = parseIPPort("Bind", c.Bind); err != nil {
		errs = append(errs, err)
	}
	if c.Advertise != "" {
		addrs.advertise, err = parseIPPort("Advertise", c.Advertise)
		if err == nil && addrs.advertise.Port() == 0 {
			err = fmt.Errorf("invalid cluster Advertise %q: the port must be from 1 to 65535", c.Advertise)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}

	for i, seed := range c.Seeds {
		if err := validateSeed(seed); err != nil {
			errs = append(errs, fmt.Errorf("invalid cluster Seeds[%d] %q: %w", i, seed, err))
		}
	}
	if err := validateAPIAddr(c.APIAddr); err != nil {
		errs = append(errs, err)
	}
	if c.Profile != "" && c.Profile != ProfileLAN && c.Profile != ProfileLocal {
		errs = append(errs, fmt.Errorf("invalid cluster Profile %q: use %q or %q", c.Profile, ProfileLAN, ProfileLocal))
	}
	return addrs, errors.Join(errs...)
}

func validateNodeName(name string) error {
	if name == "" {
		return errors.New("cluster NodeName is empty: set a name that is unique in the cluster, such as the host name")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return fmt.Errorf("invalid cluster NodeName %q: use a name without spaces or control characters", name)
	}
	return nil
}

// parseIPPort parses the "ip:port" value of the named field. It rejects
// host names and IPv6 zones, for which memberlist would listen on every
// interface.
func parseIPPort(field, value string) (netip.AddrPort, error) {
	host, portText, err := net.SplitHostPort(value)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("invalid cluster %s %q: use \"host:port\" with an IP address as host, such as 10.0.0.5:7946", field, value)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("invalid cluster %s %q: the host must be an IP address without a zone, such as 10.0.0.5", field, value)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("invalid cluster %s %q: the port must be a number from 0 to 65535", field, value)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

func validateSeed(seed string) error {
	host, portText, err := net.SplitHostPort(seed)
	if err != nil || host == "" {
		return errors.New("use \"host:port\", such as 10.0.0.6:7946")
	}
	if port, err := strconv.ParseUint(portText, 10, 16); err != nil || port == 0 {
		return errors.New("the port must be a number from 1 to 65535")
	}
	return nil
}

// validateAPIAddr checks the base URL of the REST API, and that the
// metadata that carries it fits memberlist.MetaMaxSize even with both
// flags set.
func validateAPIAddr(apiAddr string) error {
	if apiAddr == "" {
		return errors.New("cluster APIAddr is empty: set the base URL of this node's REST API, such as http://10.0.0.5:8080")
	}
	u, err := url.Parse(apiAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid cluster APIAddr %q: use an http or https base URL such as http://10.0.0.5:8080", apiAddr)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid cluster APIAddr %q: give a base URL without credentials, query or fragment", apiAddr)
	}
	if size := len(encodeMeta(nodeMeta{APIAddr: apiAddr, Leaving: true, StorageDown: true})); size > memberlist.MetaMaxSize {
		return fmt.Errorf("cluster APIAddr is too long: node metadata would take %d bytes, over memberlist's limit of %d, so use a shorter URL",
			size, memberlist.MetaMaxSize)
	}
	return nil
}
