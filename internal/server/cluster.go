package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/cluster"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/sqsapi"
	"github.com/qakka/qakka/internal/storage"
)

// minSafeSettle is Cassandra's default write_request_timeout. A shorter
// settle time is only safe on nodes configured with a shorter one.
const minSafeSettle = 2 * time.Second

// leaveTimeout bounds how long a stopping node waits for its leave message
// to spread.
const leaveTimeout = 2 * time.Second

// clusterNode is the cluster side of a server: membership, the coordinator
// of queue leases, the forwarders of REST and SQS requests to owners and the
// notifier.
type clusterNode struct {
	members      *cluster.Membership
	coord        *cluster.Coordinator
	forwarder    *cluster.Forwarder
	sqsForwarder *cluster.SQSForwarder
	notifier     *cluster.Notifier
	log          *slog.Logger

	// mux serves the REST API and the endpoints that nodes call on each
	// other.
	mux *http.ServeMux
	// username and password are the REST API's credentials, which every
	// node presents on the endpoints between nodes.
	username string
	password string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// clusterLabel names the cluster in gossip: the nodes of one cluster share
// the keyspace of their queue entries, so a node given the address of a
// node that uses other keyspaces does not join its cluster.
func (s *Server) clusterLabel() string {
	c := s.cfg.Storage.Cassandra.WithDefaults()
	return "qakka/" + c.Keyspace + "/" + c.RegionKeyspace
}

// nodeName returns the configured node name, or the gossip address.
func (s *Server) nodeName() string {
	c := s.cfg.Cluster
	switch {
	case c.NodeName != "":
		return c.NodeName
	case c.Advertise != "":
		return c.Advertise
	default:
		return c.Listen
	}
}

// advertiseURL returns the base URL other nodes reach this node's REST API
// at.
func (s *Server) advertiseURL(apiAddr net.Addr) (string, error) {
	if u := s.cfg.Cluster.AdvertiseURL; u != "" {
		return u, nil
	}
	tcp, ok := apiAddr.(*net.TCPAddr)
	if ok && tcp.IP.IsUnspecified() {
		return "", fmt.Errorf("listen address %s is on every interface, so other nodes cannot tell which one to use: set cluster-advertise-url", apiAddr)
	}
	scheme := "http"
	if s.cfg.HTTP.TLSCertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + apiAddr.String(), nil
}

// newClusterNode starts gossip and prepares the coordinator; start runs
// them. The engine must not have started yet.
func (s *Server) newClusterNode(engine *queue.Engine, store storage.Store, apiAddr net.Addr, password string, tlsConfig *tls.Config) (*clusterNode, error) {
	apiURL, err := s.advertiseURL(apiAddr)
	if err != nil {
		return nil, err
	}
	c := s.cfg.Cluster
	members, err := cluster.NewMembership(cluster.MembershipConfig{
		NodeName:  s.nodeName(),
		Bind:      c.Listen,
		Advertise: c.Advertise,
		Seeds:     c.Seeds,
		APIAddr:   apiURL,
		Profile:   c.Profile,
		Label:     s.clusterLabel(),
		Logger:    s.base,
	})
	if err != nil {
		return nil, fmt.Errorf("start cluster gossip: %w", err)
	}
	s.gossipAddr = members.LocalAddr()
	if c.LeaseSettle < minSafeSettle {
		s.log.Warn("cluster-lease-settle is shorter than Cassandra's default write timeout; a write of a node that lost a queue may land after the next owner read the queue",
			slog.Duration("cluster_lease_settle", c.LeaseSettle), slog.Duration("cassandra_write_request_timeout", minSafeSettle))
	}
	coord, err := cluster.NewCoordinator(engine, store, members, cluster.CoordinatorConfig{
		LeaseTTL: c.LeaseTTL,
		Settle:   c.LeaseSettle,
		Logger:   s.base,
	})
	if err != nil {
		_ = members.Shutdown()
		return nil, err
	}
	var clientTLS *tls.Config
	if tlsConfig != nil {
		clientTLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	n := &clusterNode{
		members: members,
		coord:   coord,
		forwarder: cluster.NewForwarder(members, cluster.ForwarderConfig{
			MaxBodyBytes: maxForwardBody,
			TLS:          clientTLS,
			Timeout:      s.forwardTimeout(),
			Logger:       s.base,
		}),
		sqsForwarder: cluster.NewSQSForwarder(members, cluster.SQSForwarderConfig{
			Username: s.cfg.HTTP.Username,
			Password: password,
			TLS:      clientTLS,
			Timeout:  s.forwardTimeout(),
			Logger:   s.base,
		}),
		notifier: cluster.NewNotifier(members, s.cfg.HTTP.Username, password, clientTLS, s.base),
		log:      s.base.With(slog.String("component", "cluster")),
		mux:      http.NewServeMux(),
		username: s.cfg.HTTP.Username,
		password: password,
	}
	engine.SetClusterHooks(queue.ClusterHooks{
		Stored:  n.notifier.Stored,
		Created: n.notifier.Created,
		Lost:    coord.Lost,
	})
	return n, nil
}

// forwardTimeout bounds a request that a node forwards to a queue's owner,
// as the HTTP server's write timeout bounds a reply: the longest receive
// wait and a margin.
func (s *Server) forwardTimeout() time.Duration {
	return s.cfg.Queue.MaxReceiveWait + writeTimeoutMargin
}

// maxForwardBody bounds the request body a node buffers to forward: the
// REST API's own limit.
const maxForwardBody = 16 << 20

// start joins the cluster in the background and runs the coordinator and
// the notifier.
func (n *clusterNode) start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(3)
	go func() {
		defer n.wg.Done()
		if err := n.members.Join(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("joining the cluster failed", slog.Any("error", err))
		}
	}()
	go func() {
		defer n.wg.Done()
		n.coord.Run(ctx)
	}()
	go func() {
		defer n.wg.Done()
		n.notifier.Run(ctx)
	}()
}

// stop leaves the cluster, hands every queue over with its lease released,
// and stops gossip. It is safe to call more than once.
func (n *clusterNode) stop() {
	n.once.Do(func() {
		if err := n.members.Leave(leaveTimeout); err != nil {
			n.log.Warn("leaving the cluster failed; other nodes find out when gossip times out", slog.Any("error", err))
		}
		if n.cancel != nil {
			n.cancel()
		}
		// Shutdown also ends a join that keeps retrying unreachable seeds,
		// which the wait below would otherwise wait for. The queues are
		// handed over without gossip.
		// NOTE: a dial to a seed already under way still takes up to
		// memberlist's TCP timeout (10 s with the lan profile).
		if err := n.members.Shutdown(); err != nil {
			n.log.Warn("stopping gossip failed", slog.Any("error", err))
		}
		n.wg.Wait()
		n.forwarder.Close()
		n.sqsForwarder.Close()
	})
}

// status returns the cluster section of GET /api/status.
func (n *clusterNode) status() *client.ClusterStatus {
	members := n.members.Members()
	out := &client.ClusterStatus{
		Node:    n.members.LocalName(),
		Serving: n.coord.Held(),
		Members: make([]client.ClusterMember, 0, len(members)),
	}
	for _, m := range members {
		out.Members = append(out.Members, client.ClusterMember{Name: m.Name, Address: m.Addr, URL: m.APIAddr, State: m.State, StorageDown: m.StorageDown})
	}
	return out
}

// handler wraps the REST API so requests reach the queue's owner, and adds
// the notification endpoint.
func (n *clusterNode) handler(api http.Handler, engine *queue.Engine, username, password string) http.Handler {
	n.mux.Handle(cluster.NotifyPath, requireBasicAuth(username, password, cluster.NotifyHandler(engine, n.coord)))
	n.mux.Handle("/", n.forwarder.Wrap(api))
	name := n.members.LocalName()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forwarded reply carries the owner's name instead.
		w.Header().Set(cluster.NodeHeader, name)
		n.mux.ServeHTTP(w, r)
	})
}

// serveForwardedSQS adds to the REST API the endpoint at which this node
// serves the SQS requests that other nodes forward to it. Those requests
// carry the REST API's credentials in place of the client's signature,
// which the forwarding node checked.
func (n *clusterNode) serveForwardedSQS(api *sqsapi.API) {
	forwarded := http.StripPrefix(cluster.SQSForwardPath, api.ForwardedHandler())
	n.mux.Handle(cluster.SQSForwardPath+"/", requireBasicAuth(n.username, n.password, forwarded))
}

// clusterStatusFunc returns node's status function, or nil without a
// cluster.
func clusterStatusFunc(node *clusterNode) func() *client.ClusterStatus {
	if node == nil {
		return nil
	}
	return node.status
}
