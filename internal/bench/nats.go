package bench

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds how long the NATS servers may take to accept
// connections and, in a cluster, to elect a JetStream meta leader.
const natsReadyTimeout = 30 * time.Second

// backend is the store of a server the bench starts.
type backend struct {
	// Name is what the table and the JSON call it: "pebble", "nats" or
	// "nats×3".
	Name string
	// NATS is how many NATS servers the bench runs for it, in its own
	// process: 0 for Pebble, 1 for a single server, 3 for a cluster (whose
	// streams then have 3 replicas).
	NATS int
}

// The backends a run measures: Pebble, then with Config.NATS a single
// JetStream server and a 3-server cluster.
var (
	backendPebble  = backend{Name: "pebble"}
	backendNATS    = backend{Name: "nats", NATS: 1}
	backendCluster = backend{Name: "nats×3", NATS: 3}
)

// NATSScenarios returns the scenarios --nats runs (and allows).
func NATSScenarios() []string { return []string{"throughput", "latency", "isolation"} }

// describe says where the backend's state is, in words.
func (b backend) describe() string {
	if b.NATS == 1 {
		return "one NATS JetStream server"
	}
	return fmt.Sprintf("a %d-server NATS JetStream cluster", b.NATS)
}

// note is what a result on the backend says of it.
func (b backend) note() string {
	return fmt.Sprintf("state in %s (R%d, default sync: not per message) in the bench's process; peak RSS is dcon's alone", b.describe(), b.NATS)
}

// serveFlags returns the `dcon serve` flags that put a node's state in the
// NATS servers at urls.
func (b backend) serveFlags(urls []string) []string {
	if b.NATS == 0 {
		return nil
	}
	return []string{"--nats", strings.Join(urls, ","), "--nats-replicas", strconv.Itoa(b.NATS)}
}

// natsServers are NATS servers with JetStream that the bench runs in its own
// process: one, or a cluster over routes on loopback. Each listens on
// 127.0.0.1 on random ports and keeps its files under the directory it was
// given.
type natsServers struct {
	servers []*server.Server
}

// startNATS starts n JetStream servers under dir (n > 1: a cluster) and
// waits until they accept connections and, in a cluster, a JetStream meta
// leader is elected. On error, what was started is shut down.
func startNATS(ctx context.Context, dir string, n int) (*natsServers, error) {
	ns := &natsServers{}
	routes := make([]*url.URL, 0, n)
	ports := make([]int, n)
	if n > 1 {
		for i := range ports {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			ports[i] = p
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
		}
	}
	for i := range n {
		opts := &server.Options{
			Host: "127.0.0.1", Port: -1, JetStream: true, NoLog: true, NoSigs: true,
			StoreDir: filepath.Join(dir, fmt.Sprintf("s%d", i+1)),
		}
		if n > 1 {
			opts.ServerName = fmt.Sprintf("s%d", i+1)
			opts.Cluster = server.ClusterOpts{Name: "dcon-bench", Host: "127.0.0.1", Port: ports[i]}
			opts.Routes = routes
		}
		s, err := server.NewServer(opts)
		if err != nil {
			ns.Stop()
			return nil, fmt.Errorf("nats server %d: %w", i+1, err)
		}
		go s.Start()
		ns.servers = append(ns.servers, s)
	}
	if err := ns.waitReady(ctx); err != nil {
		ns.Stop()
		return nil, err
	}
	return ns, nil
}

// waitReady waits until every server accepts connections and, in a cluster,
// sees the others and one of them leads JetStream.
func (ns *natsServers) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(natsReadyTimeout)
	for _, s := range ns.servers {
		if !s.ReadyForConnections(time.Until(deadline)) {
			return fmt.Errorf("nats server %s not ready within %s", s.Name(), natsReadyTimeout)
		}
	}
	for !ns.clusterReady() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster of %d nats servers elected no JetStream leader within %s", len(ns.servers), natsReadyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// clusterReady reports whether every server sees all the others as routes
// and the JetStream meta leader counts every server as a peer ready for
// placement (true for one server). A leader alone is not enough: until the
// others have sent it their statistics, a stream with 3 replicas fails with
// "no suitable peers for placement".
func (ns *natsServers) clusterReady() bool {
	if len(ns.servers) == 1 {
		return true
	}
	for _, s := range ns.servers {
		if s.NumRoutes() < len(ns.servers)-1 {
			return false
		}
	}
	for _, s := range ns.servers {
		if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == len(ns.servers) {
			return true
		}
	}
	return false
}

// URLs returns the servers' client URLs.
func (ns *natsServers) URLs() []string {
	urls := make([]string, len(ns.servers))
	for i, s := range ns.servers {
		urls[i] = s.ClientURL()
	}
	return urls
}

// Stop shuts the servers down and waits for them. A nil *natsServers does
// nothing.
func (ns *natsServers) Stop() {
	if ns == nil {
		return
	}
	for _, s := range ns.servers {
		s.Shutdown()
	}
	for _, s := range ns.servers {
		s.WaitForShutdown()
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
